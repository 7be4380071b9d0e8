"""`evaluate`: how far to trust each critic and the panel, the way judge benchmarks measure it.

Arranges `oversight.aggregate._quality` over a run: per critic and for the panel, agreement
with the reference (both orders averaged, 95% Wilson CIs), position consistency, mean
P(first shown), the trivial baselines on the same items (first shown, longer, shorter,
random), AlpacaEval-style length control, and every figure per subset (item metadata such
as `topic` or `category`, and RewardBench's "chosen longer" / "chosen shorter" split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate import aggregate
from oversight.aggregate._quality import judge_scores, quality_table, verdict_of
from oversight.errors import OversightError
from oversight.report._analysis import Analysis

SUBSET_KEYS = ("category", "subset", "topic")
_MAX_SUBSET_VALUES = 30


@dataclass
class Evaluation:
    """The quality table (one row per judge or baseline and subset) and its headline."""

    table: pd.DataFrame
    source: str
    method: str

    @property
    def overall(self) -> pd.DataFrame:
        return self.table[self.table["subset"] == "all"].reset_index(drop=True)

    def headline(self) -> dict[str, Any]:
        """best_critic, panel, best_baseline and lc_panel on all items."""
        t = self.overall
        critics = t[t["kind"] == "critic"].sort_values("agreement", ascending=False)
        panel = t[t["kind"] == "panel"]
        base = t[t["kind"] == "baseline"].sort_values("agreement", ascending=False)
        def first(df: pd.DataFrame, col: str) -> Any:
            return df[col].iloc[0] if len(df) else math.nan
        return {"n": int(first(t, "n")) if len(t) else 0,
                "best_critic": first(critics, "name"),
                "best_critic_agreement": float(first(critics, "agreement")),
                "panel": float(first(panel, "agreement")),
                "best_baseline": first(base, "name"),
                "best_baseline_agreement": float(first(base, "agreement")),
                "lc_panel": float(first(panel, "lc_agreement"))}

    def bench_line(self) -> str:
        h = self.headline()
        ratio = h["panel"] / h["best_baseline_agreement"] \
            if h["best_baseline_agreement"] else math.nan
        return (f"BENCH workload=evaluate n={h['n']} "
                f"best_critic={str(h['best_critic']).replace(' ', '_')}:"
                f"{h['best_critic_agreement']:.3f} panel={h['panel']:.3f} "
                f"best_baseline={str(h['best_baseline']).replace(' ', '_')}:"
                f"{h['best_baseline_agreement']:.3f} lc_panel={h['lc_panel']:.3f} "
                f"ratio={ratio:.3f}")


def _as_verdicts(final: Any) -> np.ndarray:
    """Aggregation `final` (an index, "tie", "abstain", ...) -> verdict codes (tie -1)."""
    out = []
    for v in final:
        if isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, bool) \
                and not math.isnan(float(v)):
            out.append(float(v))
        else:
            out.append(-1.0 if v == "tie" else math.nan)
    return np.array(out, dtype=float)


def _subset_columns(items: list[Any]) -> list[str]:
    cols = []
    for key in SUBSET_KEYS:
        values = [it.meta.get(key) for it in items]
        if all(isinstance(v, str) for v in values) and \
                2 <= len(set(values)) <= _MAX_SUBSET_VALUES:
            cols.append(key)
    return cols


def evaluate(run: Analysis | str | Path, *, source: str = "reference", method: str | None = None,
             seed: int = 0) -> Evaluation:
    """Evaluate a run's critics and panel against reference labels (see module docstring).

    `run`: a run directory or an `Analysis`. `source`: "reference" (data labels) or "human"
    (imported review labels). `method`: the panel's aggregation (default: the analysis').
    """
    a = run if isinstance(run, Analysis) else Analysis.from_run(run, method=method or "vote")
    labels = a.references().get(source)
    if not labels:
        raise OversightError(f"no {source} labels in this run: evaluate needs items with a "
                             "reference (a human `chosen`, a `reference` column) or imported "
                             "review labels (source='human')")
    judged = set(a.judgments["item_id"])  # baselines on the same items as the judges
    items = [it for it in a.items if it.k == 2 and it.id in labels and it.id in judged]
    if not items:
        raise OversightError("evaluate needs judged two-response items with labels; none "
                             "found")
    subsets = _subset_columns(items)
    frame = pd.DataFrame({
        "item_id": [it.id for it in items],
        "reference": [labels[it.id] for it in items],
        "len0": [len(it.responses[0]) for it in items],
        "len1": [len(it.responses[1]) for it in items],
        **{k: [it.meta[k] for it in items] for k in subsets}})
    judg = a.judgments[a.judgments["item_id"].isin(set(frame["item_id"]))]
    scores = judge_scores(judg)
    parts = []
    for name in a.critic_names:
        s = scores[scores["critic"] == name]
        parts.append(pd.DataFrame({
            "item_id": s["item_id"], "name": name, "kind": "critic",
            "verdict": verdict_of(s["score"]), "verdict_fwd": verdict_of(s["score_fwd"]),
            "verdict_rev": verdict_of(s["score_rev"]), "p_first": s["p_first"]}))
    dec = a.decisions.set_index("item_id")
    final = dec["final"].reindex(frame["item_id"])
    panel_v = _as_verdicts(final)
    by_order = {}
    order = judg["order"].astype(str)
    pointwise = judg["mode"] != "pairwise"
    weights = {c["name"]: float(c.get("weight", 1.0)) for c in a.critics}
    for key, shown in (("verdict_fwd", "0,1"), ("verdict_rev", "1,0")):
        part = judg[pointwise | (order == shown)]
        if part.empty or not (part["mode"] == "pairwise").any():
            by_order[key] = np.full(len(frame), math.nan)
            continue
        agg = aggregate(part, items, method=a.method, rules=a.rules, critic_weights=weights)
        f = agg.decisions.set_index("item_id")["final"].reindex(frame["item_id"])
        by_order[key] = _as_verdicts(f)
    p_first = scores.groupby("item_id")["p_first"].mean().reindex(frame["item_id"])
    parts.append(pd.DataFrame({
        "item_id": frame["item_id"], "name": f"panel:{a.method}", "kind": "panel",
        "verdict": panel_v, **by_order, "p_first": p_first.to_numpy()}))
    verdicts = pd.concat(parts, ignore_index=True)
    return Evaluation(quality_table(frame, verdicts, subsets=subsets, seed=seed), source,
                      a.method)
