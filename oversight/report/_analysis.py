"""The tables behind a disagreement report, computed once from items and judgments.

`Analysis` holds a run (items, the long judgments table, critic configs) and derives every
table the report shows: Cohen's kappa between critics, disagreement per principle, position
bias, Bradley-Terry strengths, Dawid-Skene reliability, the principle-conflict graph, panel
margins, the most contested items, and agreement and calibration against reference labels.
Most statistics come from `oversight.aggregate` and `oversight.panel`; the calibration error,
some intervals and the Dawid-Skene bootstrap are still computed here (their move to
`oversight.aggregate` is open work). A critic named `human` (labels imported by `oversight
review import`) is a reference, never a panel member: it is kept out of the panel's
aggregation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from oversight.aggregate import (
    FLAG_COLUMNS,
    BradleyTerry,
    DawidSkene,
    PanelRules,
    aggregate,
    ballots,
    cohen_kappa_matrix,
    critic_labels,
    critic_p0,
    dawid_skene_triples,
    label_matrix,
    principle_conflict_graph,
)
from oversight.critics import JUDGMENT_COLUMNS, Judgment
from oversight.data import Comparison
from oversight.errors import OversightError
from oversight.panel import PanelResult, wilson_ci

HUMAN = "human"  # the critic name human review labels are stored under
_Z = 1.959963984540054


def expected_calibration_error(p0: Any, reference: Any, n_bins: int = 10
                               ) -> tuple[float, pd.DataFrame]:
    """Top-label expected calibration error of P(response 0 is better) against labels.

    Each prediction's confidence is max(p, 1 - p) and it is correct when the favoured
    response is the reference (an exact 0.5 counts as half correct). Confidences fall in
    `n_bins` equal bins over [0.5, 1]; ECE = sum_b (n_b / N) |acc_b - conf_b| (Naeini et al.
    2015; Guo et al. 2017). Returns (ece, bins table: lo, hi, n, confidence, accuracy).
    """
    p = np.asarray(p0, dtype=float)
    y = np.asarray(reference, dtype=float)
    keep = ~np.isnan(p) & ~np.isnan(y)
    p, y = p[keep], y[keep]
    if np.any((p < 0) | (p > 1)) or np.any((y != 0) & (y != 1)):
        raise ValueError("expected_calibration_error: p0 must lie in [0, 1] and reference "
                         "must be 0 or 1 (the index of the better response)")
    conf = np.maximum(p, 1 - p)
    correct = np.where(np.isclose(p, 0.5), 0.5, ((p > 0.5) == (y == 0)).astype(float))
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.bincount(idx, weights=conf, minlength=n_bins) / n
        a = np.bincount(idx, weights=correct, minlength=n_bins) / n
    bins = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n": n, "confidence": c,
                         "accuracy": a})
    if len(p) == 0:
        return math.nan, bins
    ece = float(np.nansum(n / len(p) * np.abs(a - c)))
    return ece, bins


def _mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    half = _Z * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else math.nan
    return m, m - half, m + half


def _as_frame(judgments: Any) -> pd.DataFrame:
    if isinstance(judgments, pd.DataFrame):
        return judgments
    return pd.DataFrame([j.to_dict() for j in judgments], columns=JUDGMENT_COLUMNS)


class Analysis:
    """Every table of a disagreement report, computed lazily and cached.

    Build it with `Analysis.from_run(run_dir)`, `Analysis.from_result(panel_result)` or from
    items and a judgments table. `method` picks the panel aggregator (vote, majority, bt, ds,
    conservative) used for margins and contested items; `rules` the panel rules.
    """

    def __init__(self, items: Sequence[Comparison], judgments: Any,
                 critics: Sequence[dict[str, Any]] | None = None, *, method: str = "vote",
                 rules: PanelRules | None = None, title: str = "oversight report",
                 meta: dict[str, Any] | None = None, n_boot: int = 200, seed: int = 0,
                 conflict_min_items: int = 20, conflict_threshold: float = -0.3) -> None:
        frame = _as_frame(judgments)
        if frame.empty:
            raise OversightError("the run holds no judgments: nothing to report")
        self.items = list(items)
        self.all_judgments = frame
        self.judgments = frame[frame["critic"] != HUMAN].reset_index(drop=True)
        self.human_judgments = frame[frame["critic"] == HUMAN].reset_index(drop=True)
        if self.judgments.empty:
            raise OversightError("the run holds only human labels: nothing to report")
        present = list(pd.unique(self.judgments["critic"]))
        configured = [c["name"] for c in (critics or []) if c.get("name") in present]
        names = list(dict.fromkeys([*configured, *present]))  # the panel's order first
        by_name = {c["name"]: c for c in (critics or []) if c.get("name") != HUMAN}
        self.critics = [by_name.get(n, {"name": n}) for n in names]
        self.critic_names = names
        self.method = method
        veto = tuple(c["name"] for c in self.critics if c.get("veto"))
        self.rules = rules or PanelRules(veto_critics=veto)
        self.title = title
        self.meta = dict(meta or {})
        self.n_boot = n_boot
        self.seed = seed
        self.conflict_min_items = conflict_min_items
        self.conflict_threshold = conflict_threshold

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_result(cls, result: PanelResult, **options: Any) -> Analysis:
        options.setdefault("method", result.aggregator)
        if result.rules is not None:
            options.setdefault("rules", result.rules)
        return cls(result.items, result.judgments, result.critics, **options)

    @classmethod
    def from_run(cls, run_dir: str | Path, **options: Any) -> Analysis:
        """Load a run directory written by `oversight judge` (its SQLite store)."""
        from oversight.store import JudgmentStore, run_store

        run_dir = Path(run_dir)
        db_path = run_store(run_dir)
        with JudgmentStore(db_path) as db:
            items, frame, critics = db.items(), db.to_frame(), db.critics()
        meta: dict[str, Any] = {"run": str(run_dir)}
        run_json = db_path.parent / "run.json"
        if run_json.exists():
            try:
                info = json.loads(run_json.read_text())
                meta.update({k: info[k] for k in ("panel", "data", "seed") if k in info})
            except (OSError, json.JSONDecodeError):
                pass
        options.setdefault("title", f"oversight report: {db_path.parent.name}")
        options.setdefault("meta", meta)
        return cls(items, frame, critics, **options)

    # -- the panel, without and with a reference ------------------------------------------
    @cached_property
    def result(self) -> PanelResult:
        rows = [Judgment.from_dict(r) for r in self.judgments.to_dict("records")]
        return PanelResult(items=self.items, judgment_rows=rows, critics=self.critics,
                           aggregator=self.method, rules=self.rules)

    @cached_property
    def aggregation(self) -> Any:
        weights = {c["name"]: float(c.get("weight", 1.0)) for c in self.critics}
        return aggregate(self.judgments, self.items, method=self.method, rules=self.rules,
                         critic_weights=weights)

    @cached_property
    def human_labels(self) -> dict[str, int]:
        """item_id -> the response human reviewers prefer (ties and abstentions left out)."""
        if self.human_judgments.empty:
            return {}
        labs = critic_labels(self.human_judgments)
        return {i: int(v) for i, v in zip(labs["item_id"], labs["label"])}

    def references(self) -> dict[str, dict[str, int]]:
        """Reference label sets present: 'reference' (data labels) and 'human' (reviews)."""
        out: dict[str, dict[str, int]] = {}
        ref = {it.id: int(it.reference) for it in self.items if it.reference is not None}
        if ref:
            out["reference"] = ref
        if self.human_labels:
            out[HUMAN] = self.human_labels
        return out

    # -- agreement between critics --------------------------------------------------------
    @cached_property
    def labels(self) -> pd.DataFrame:
        """Each critic's verdict per item (critic_labels), human reviewers included."""
        parts = [critic_labels(self.all_judgments, m) for m in ("pairwise", "score")
                 if (self.all_judgments["mode"] == m).any()]
        return pd.concat(parts, ignore_index=True) if parts else critic_labels(
            self.all_judgments)

    @cached_property
    def kappa(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(Cohen's kappa matrix, matrix of jointly labelled item counts)."""
        x, critics, _ = label_matrix(self.labels)
        order = [*self.critic_names, *([HUMAN] if HUMAN in critics else [])]
        # a critic with no verdict at all (e.g. only ties) keeps an all-missing row
        x = np.vstack([x[critics.index(c)] if c in critics else np.full(x.shape[1], np.nan)
                       for c in order]) if x.size else np.full((len(order), 0), np.nan)
        k = cohen_kappa_matrix(x, order)
        m = (~np.isnan(x)).astype(float)
        n = pd.DataFrame(m @ m.T, index=order, columns=order).astype(int)
        return k, n

    @cached_property
    def principle_disagreement(self) -> pd.DataFrame:
        """Per (critic, principle): how often its verdict differs from the other critics'.

        Each principle's ballot on an item is compared with every other (model) critic's
        verdict on that item; ties and abstentions are left out. `rate` = share of those
        comparisons that differ, with a 95% Wilson interval (comparisons on one item are not
        independent, so the interval is a little optimistic).
        """
        p = ballots(self.judgments, unit="principle")
        c = ballots(self.judgments, unit="critic")
        cols = ["critic", "principle", "n_items", "n", "disagree", "rate", "ci_low", "ci_high"]
        if p.empty or c.empty:
            return pd.DataFrame(columns=cols)
        p = p[p["vote"] >= 0][["item_id", "critic", "principle", "vote"]]
        c = c[c["vote"] >= 0][["item_id", "critic", "vote"]]
        m = p.merge(c, on="item_id", suffixes=("", "_other"))
        m = m[m["critic"] != m["critic_other"]]
        rows = []
        for (critic, principle), g in m.groupby(["critic", "principle"], sort=True):
            n = len(g)
            d = int((g["vote"] != g["vote_other"]).sum())
            lo, hi = wilson_ci(d, n)
            rows.append({"critic": critic, "principle": principle,
                         "n_items": int(g["item_id"].nunique()), "n": n, "disagree": d,
                         "rate": d / n, "ci_low": lo, "ci_high": hi})
        out = pd.DataFrame(rows, columns=cols)
        return out.sort_values("rate", ascending=False, kind="stable").reset_index(drop=True)

    # -- position bias --------------------------------------------------------------------
    @cached_property
    def position_bias(self) -> pd.DataFrame:
        """Per critic: mean P(first shown is better) by the order shown, with 95% CIs.

        `p_first_forward`: mean over judgments with the lower index shown first;
        `p_first_reverse`: with it shown second. An order-blind judge has both near 0.5 on
        balanced data; `bias` = mean P(first shown) - 0.5 over all pairwise judgments, and
        `flip_rate` is the share of pairs whose verdict flips when the order is swapped.
        """
        pw = self.judgments[(self.judgments["mode"] == "pairwise")
                            & (self.judgments["status"] == "ok")
                            & self.judgments["value"].notna()]
        shown = pw["order"].astype(str).str.split(",", expand=True)
        fwd = (shown[0].astype(int) < shown[1].astype(int)) if len(pw) else pd.Series(
            dtype=bool)
        flips = self.result.position_flips().set_index("critic")
        rows = []
        for name in self.critic_names:
            sel = (pw["critic"] == name).to_numpy()
            v = pw["value"].to_numpy(dtype=float)[sel]
            f = fwd.to_numpy(dtype=bool)[sel] if len(pw) else np.zeros(0, dtype=bool)
            row: dict[str, Any] = {"critic": name, "n": int(sel.sum())}
            for key, part in (("forward", v[f]), ("reverse", v[~f]), ("all", v)):
                m, lo, hi = _mean_ci(part)
                suffix = "" if key == "all" else f"_{key}"
                row[f"p_first{suffix}"] = m
                row[f"p_first{suffix}_low"] = lo
                row[f"p_first{suffix}_high"] = hi
            row["bias"] = row["p_first"] - 0.5
            row["flip_rate"] = float(flips.at[name, "flip_rate"]) if name in flips.index \
                else math.nan
            rows.append(row)
        return pd.DataFrame(rows)

    # -- strengths and reliability --------------------------------------------------------
    @cached_property
    def strengths(self) -> tuple[pd.DataFrame | None, str]:
        """Bradley-Terry strengths with CIs: (table or None, what they are / why absent).

        Global when items name the entity behind each response (`meta["models"]`, one per
        response): one strength per entity. Otherwise per item for K-way items (K >= 3).
        Plain two-response items without entities have no strengths worth plotting: a
        two-response BT fit is just the panel's P(A).
        """
        ok = self.judgments[(self.judgments["mode"] == "pairwise")
                            & (self.judgments["status"] == "ok")]
        if ok.empty:
            return None, "no pairwise judgments"
        ents = [(it.id, r, str(m)) for it in self.items
                if isinstance(it.meta.get("models"), (list, tuple))
                and len(it.meta["models"]) == it.k for r, m in enumerate(it.meta["models"])]
        if ents:
            table = pd.DataFrame(ents, columns=["item_id", "response", "entity"])
            sub = ok[ok["item_id"].isin(set(table["item_id"]))]
            bt = BradleyTerry(scope="global").fit(sub, entity_of=table)
            s = bt.strengths_.reset_index()
            return s, "global: one strength per model (items' meta['models'])"
        kway = {it.id for it in self.items if it.k >= 3}
        if not kway:
            return None, ("all items have two responses and name no model per response "
                          "(meta['models']), so there is nothing to rank beyond P(A)")
        bt = BradleyTerry(scope="item").fit(ok[ok["item_id"].isin(kway)])
        s = bt.strengths_.copy()
        s["entity"] = s["item_id"].str[:8] + ":" + s["response"].astype(str)
        return s, "per item: the K-way items' responses"

    def _critic_triples(self) -> tuple[pd.DataFrame, pd.Index, pd.Index]:
        labs = critic_labels(self.judgments)
        items = pd.Index(np.sort(pd.unique(labs["item_id"])))
        critics = pd.Index(self.critic_names)
        labs = labs[labs["critic"].isin(critics)]
        return labs, items, critics

    @cached_property
    def reliability(self) -> pd.DataFrame:
        """Dawid-Skene reliability per critic with bootstrap 95% CIs (items resampled).

        `reliability` is unsupervised; `reliability_human` is semi-supervised, with imported
        human labels clamped as gold (present only when human labels exist).
        """
        labs, items, critics = self._critic_triples()
        cols = ["critic", "reliability", "ci_low", "ci_high"]
        if labs.empty:
            return pd.DataFrame(columns=cols)
        task = items.get_indexer(labs["item_id"])
        worker = critics.get_indexer(labs["critic"])
        y = labs["label"].to_numpy(dtype=np.int64)
        k = max(2, int(y.max()) + 1)
        ds = DawidSkene().fit(self.judgments)
        out = pd.DataFrame({"critic": list(critics)})
        out["reliability"] = out["critic"].map(ds.reliability_)
        rng = np.random.default_rng(self.seed)
        by_task = pd.Series(np.arange(len(labs))).groupby(task).apply(np.asarray)
        boots = np.full((self.n_boot, len(critics)), np.nan)
        for b in range(self.n_boot):
            pick = rng.integers(0, len(by_task), len(by_task))
            rows = np.concatenate([by_task.iloc[t] for t in pick])
            new_task = np.repeat(np.arange(len(pick)),
                                 [len(by_task.iloc[t]) for t in pick])
            res = dawid_skene_triples(new_task, worker[rows], y[rows], n_tasks=len(pick),
                                      n_workers=len(critics), n_classes=k, max_iter=50)
            seen = np.bincount(worker[rows], minlength=len(critics)) > 0
            rel = np.diagonal(res.confusions, axis1=1, axis2=2) @ res.priors
            boots[b] = np.where(seen, rel, np.nan)
        with warnings.catch_warnings():  # a critic with no verdict has an all-NaN column
            warnings.simplefilter("ignore", RuntimeWarning)
            out["ci_low"] = np.nanquantile(boots, 0.025, axis=0) if self.n_boot else np.nan
            out["ci_high"] = np.nanquantile(boots, 0.975, axis=0) if self.n_boot else np.nan
        if self.human_labels:
            semi = DawidSkene().fit(self.judgments, gold=self.human_labels)
            out["reliability_human"] = out["critic"].map(semi.reliability_)
            out.attrs["n_gold"] = semi.n_gold_
        return out

    # -- principles that pull apart -------------------------------------------------------
    @cached_property
    def conflict_graph(self) -> nx.Graph:
        return principle_conflict_graph(self.judgments, min_items=self.conflict_min_items,
                                        threshold=self.conflict_threshold)

    # -- items ----------------------------------------------------------------------------
    @cached_property
    def decisions(self) -> pd.DataFrame:
        return self.aggregation.decisions

    def contested(self, n: int = 10) -> pd.DataFrame:
        """The `n` most contested items: split first, then veto conflicts, then the widest
        spread of critics' P(A), then the smallest panel margin."""
        d = self.decisions.copy()
        d["_std"] = d["critic_p0_std"].fillna(-1.0)
        d = d.sort_values(["split", "veto_conflict", "_std", "margin"],
                          ascending=[False, False, False, True], kind="stable")
        return d.drop(columns="_std").head(n).reset_index(drop=True)

    def item(self, item_id: str) -> Comparison:
        return self._items_by_id[item_id]

    @cached_property
    def _items_by_id(self) -> dict[str, Comparison]:
        return {it.id: it for it in self.items}

    def critic_views(self, item_id: str) -> list[dict[str, Any]]:
        """Each critic's verdict, support and judgments (with rationales) on one item."""
        sup = self._support.get(item_id, {})
        j = self._judgments_by_item.get(item_id)
        out = []
        for name in [*self.critic_names, *([HUMAN] if not self.human_judgments.empty
                                          else [])]:
            s = sup.get(name)
            records = [] if j is None else j[j["critic"] == name].to_dict("records")
            if s is None and not records:
                continue
            verdict: Any = "abstain"
            vals = [v for v in (s or []) if not math.isnan(v)]
            if vals:
                winners = [i for i, v in enumerate(s or []) if v == max(vals)]
                verdict = winners[0] if len(winners) == 1 else "tie"
            out.append({"critic": name, "support": s, "verdict": verdict, "judgments": [
                {"principle": r["principle"], "order": r["order"], "status": r["status"],
                 "value": None if pd.isna(r["value"]) else float(r["value"]),
                 "rationale": r["rationale"] or None, "reason": r["reason"] or None}
                for r in records]})
        return out

    @cached_property
    def _support(self) -> dict[str, dict[str, list[float]]]:
        from oversight.aggregate import response_support

        sup = response_support(self.all_judgments)
        k_of = {it.id: it.k for it in self.items}
        out: dict[str, dict[str, list[float]]] = {}
        for item, critic, r, v in zip(sup["item_id"], sup["critic"], sup["response"],
                                      sup["support"]):
            if item in k_of:
                out.setdefault(item, {}).setdefault(critic, [math.nan] * k_of[item])[
                    int(r)] = float(v)
        return out

    @cached_property
    def _judgments_by_item(self) -> dict[str, pd.DataFrame]:
        return dict(tuple(self.all_judgments.groupby("item_id")))

    # -- against reference labels ---------------------------------------------------------
    def reference_agreement(self, source: str = "reference") -> pd.DataFrame:
        """Each critic's and the panel's agreement with a reference label set, 95% Wilson CIs.

        `panel` is the simple majority of critics (PanelResult.agreement); `panel:<method>`
        the configured aggregation's final decision. For source="reference", a `human` row
        gives the reviewers' own agreement with the data labels where both exist.
        """
        labels = self.references().get(source)
        if not labels:
            return pd.DataFrame(columns=["critic", "n", "agreement", "ci_low", "ci_high"])
        items = [dataclasses.replace(it, reference=labels.get(it.id)) for it in self.items]
        res = dataclasses.replace(self.result, items=items)
        out = res.agreement()
        extra = [(f"panel:{self.method}", dict(zip(self.decisions["item_id"],
                                                   self.decisions["final"])))]
        if source != HUMAN and self.human_labels:
            extra.append((HUMAN, dict(self.human_labels)))
        rows = []
        for name, verdicts in extra:
            hits, n = 0.0, 0
            for item, ref in labels.items():
                v = verdicts.get(item)
                if isinstance(v, (int, np.integer)):
                    n += 1
                    hits += float(int(v) == ref)
                elif v == "tie":
                    n += 1
                    hits += 0.5
            lo, hi = wilson_ci(hits, n)
            rows.append({"critic": name, "n": n, "agreement": hits / n if n else math.nan,
                         "ci_low": lo, "ci_high": hi})
        return pd.concat([out, pd.DataFrame(rows)], ignore_index=True)

    def calibration(self, source: str = "reference", n_bins: int = 10
                    ) -> dict[str, tuple[float, pd.DataFrame, int]]:
        """name -> (ECE, bins, n) for each critic's and the panel's P(response 0 better)
        on two-response items with a label in `source`."""
        labels = self.references().get(source, {})
        two = {it.id for it in self.items if it.k == 2}
        labels = {i: v for i, v in labels.items() if i in two}
        out: dict[str, tuple[float, pd.DataFrame, int]] = {}
        if not labels:
            return out
        p0 = critic_p0(self.judgments)
        # Only pairwise critics give a probability; a score critic's support is an expected
        # 1-10 score and a pass/fail critic's is P(pass) per response, neither P(0 better).
        pairwise = set(self.judgments.loc[self.judgments["mode"] == "pairwise", "critic"])
        series: list[tuple[str, pd.Series]] = [
            (name, p0[p0["critic"] == name].set_index("item_id")["p0"])
            for name in self.critic_names if name in pairwise]
        series.append((f"panel:{self.method}", self.decisions.set_index("item_id")["p0"]))
        ref = pd.Series(labels, dtype=float)
        for name, s in series:
            s = s.astype(float).reindex(ref.index)
            keep = s.notna()
            if not keep.any():
                continue
            ece, bins = expected_calibration_error(s[keep].to_numpy(), ref[keep].to_numpy(),
                                                   n_bins)
            out[name] = (ece, bins, int(keep.sum()))
        return out

    @cached_property
    def flag_counts(self) -> dict[str, int]:
        return {f: int(self.decisions[f].sum()) for f in FLAG_COLUMNS}
