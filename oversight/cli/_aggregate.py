"""`oversight aggregate RUN_DIR`: preferences, flags and agreement statistics for a run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from oversight.aggregate import FLAG_COLUMNS, PanelRules, aggregate
from oversight.errors import OversightError
from oversight.panel import wilson_ci
from oversight.store import JudgmentStore, run_store


def run_aggregate(console: Console, run_dir: Path, *, method: str, out: Path | None,
                  quorum: int, supermajority: float | None, min_margin: float,
                  drop_flags: list[str], gold: bool) -> None:
    db_path = run_store(run_dir)
    if drop_flags == ["all"]:
        drop_flags = list(FLAG_COLUMNS)
    bad = [f for f in drop_flags if f not in FLAG_COLUMNS]
    if bad:
        raise OversightError(f"--drop-flagged: unknown flag(s) {bad}; valid: "
                             f"{', '.join(FLAG_COLUMNS)}, or all")
    with JudgmentStore(db_path) as db:
        items = db.items()
        judgments = db.to_frame()
        critics = db.critics()
    # Imported human review labels (critic "human") are a reference, never a panel vote.
    judgments = judgments[judgments["critic"] != "human"].reset_index(drop=True)
    critics = [c for c in critics if c.get("name") != "human"]
    if judgments.empty:
        raise OversightError(f"{db_path}: the store holds no judgments")
    # A store can hold several runs' critics; keep the latest config per critic name.
    weights = {c["name"]: float(c.get("weight", 1.0)) for c in critics}
    veto = tuple(sorted({c["name"] for c in critics if c.get("veto")}))
    rules = PanelRules(quorum=quorum, supermajority=supermajority, veto_critics=veto)
    ref = {it.id: it.reference for it in items if it.reference is not None}
    agg = aggregate(judgments, items, method=method, rules=rules, critic_weights=weights,
                    gold=ref if gold else None)
    dec = agg.decisions
    console.print(f"{method}: {len(dec)} items, {judgments['critic'].nunique()} critics, "
                  f"{len(judgments)} judgments", highlight=False)
    flags = Table(title="Disagreement flags")
    flags.add_column("flag")
    flags.add_column("items", justify="right")
    for f, n in agg.flag_counts().items():
        flags.add_row(f, str(n))
    flags.add_row("veto_override", str(int(dec["veto_override"].sum())))
    console.print(flags)
    finals = dec["final"].map(lambda v: "decided" if isinstance(v, (int, np.integer)) else str(v))
    console.print("decisions: " + ", ".join(f"{k}={v}" for k, v in
                                            finals.value_counts().items()), highlight=False)
    if ref:
        hits, n = 0.0, 0
        for item, final in zip(dec["item_id"], dec["final"]):
            if item in ref and isinstance(final, (int, np.integer)):
                n += 1
                hits += float(final == ref[item])
        lo, hi = wilson_ci(hits, n)
        console.print(f"agreement with reference labels: {hits / n if n else math.nan:.3f} "
                      f"[{lo:.3f}, {hi:.3f}] over {int(n)} decided items", highlight=False)
    from oversight.aggregate import agreement_summary

    if judgments["critic"].nunique() > 1:
        stats = agreement_summary(judgments)
        console.print("agreement between critics: " + ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()),
            highlight=False)
    if ref and judgments["critic"].nunique() > 1:
        from oversight.aggregate import effective_panel_size, error_correlation

        corr = error_correlation(judgments, ref)
        console.print(f"effective panel size (error correlation vs reference): "
                      f"{effective_panel_size(corr):.2f} of {len(corr)} critics", highlight=False)
    if out is not None:
        prefs = agg.preferences(items, min_margin=min_margin, drop_flags=drop_flags)
        out.parent.mkdir(parents=True, exist_ok=True)
        prefs.to_parquet(out, index=False)
        console.print(f"wrote {len(prefs)} preference rows to {out}", highlight=False)
