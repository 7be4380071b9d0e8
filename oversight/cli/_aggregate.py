"""`oversight aggregate RUN_DIR`: preferences, flags and agreement statistics for a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from oversight.aggregate import FLAG_COLUMNS, agreement_with_reference
from oversight.cli._common import console, fail
from oversight.errors import OversightError
from oversight.panel import open_run


def method_help() -> str:
    """The registered aggregators, for the CLI's --method help."""
    from oversight.aggregate import available_aggregators

    return " | ".join(available_aggregators())


def run_aggregate(console: Console, run_dir: Path, *, method: str | None, out: Path | None,
                  quorum: int | None, supermajority: float | None, min_margin: float,
                  drop_flags: list[str], gold: bool, panel: Path | None = None,
                  calibrate: str | None = None) -> None:
    if drop_flags == ["all"]:
        drop_flags = list(FLAG_COLUMNS)
    bad = [f for f in drop_flags if f not in FLAG_COLUMNS]
    if bad:
        raise OversightError(f"--drop-flagged: unknown flag(s) {bad}; valid: "
                             f"{', '.join(FLAG_COLUMNS)}, or all")
    if panel is not None:  # registers the aggregators the panel file defines
        from oversight.cli._panelfile import load_panel

        load_panel(panel)
    run = open_run(run_dir)
    from oversight.aggregate import available_aggregators

    wanted = method or run.method
    if wanted not in available_aggregators():
        raise OversightError(f"--method {wanted}: no aggregator of that name is registered "
                             f"(registered: {method_help()}); pass --panel FILE with the panel "
                             "file that registers it")
    items, judgments = run.items, run.working_table()  # the columns the statistics read
    rules = run.rules
    if quorum is not None or supermajority is not None:
        rules = dataclasses.replace(
            rules, quorum=rules.quorum if quorum is None else quorum,
            supermajority=rules.supermajority if supermajority is None else supermajority)
    ref = run.references()
    options: dict = {"rules": rules}
    if gold:
        options["gold"] = ref
    if calibrate is not None:
        options["calibrate"] = calibrate
    agg = run.aggregate(method, **options)
    dec = agg.decisions
    if agg.calibration is not None:
        console.print(f"position priors removed ({calibrate}): " + ", ".join(
            f"{r.critic} P(first)={r.prior:.3f} from {r.n_items} items"
            for r in agg.calibration.itertuples()), highlight=False)
    console.print(f"{agg.method}: {len(dec)} items, {judgments['critic'].nunique()} critics, "
                  f"{len(judgments)} judgments", highlight=False)
    for critic, why in agg.left_out.items():
        console.print(f"left out of {agg.method}: {critic} ({why})", highlight=False)
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
        a = agreement_with_reference(dict(zip(dec["item_id"], dec["final"])), ref)
        console.print(f"agreement with reference labels: {a['agreement']:.3f} "
                      f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}] over {a['n']} items "
                      f"(a tie counts half: {a['n_ties']} ties)", highlight=False)
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


def aggregate_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `oversight judge`."),
    method: str | None = typer.Option(None, help=f"{method_help()} (default: the panel's, "
                                      "from run.json)"),
    out: Path | None = typer.Option(None, help="Write TRL preference rows (Parquet)."),
    quorum: int | None = typer.Option(None, help="Minimum non-abstaining critics per item "
                                      "(default: the panel's rules)."),
    supermajority: float | None = typer.Option(None, help="Share the winner needs, e.g. 0.67 "
                                               "(default: the panel's rules)."),
    min_margin: float = typer.Option(0.0, help="Drop preferences with a smaller margin."),
    drop_flagged: str = typer.Option(
        "", "--drop-flagged", "--drop-flags",
        help="Drop items with these flags: comma-separated names or 'all' (as export's "
             "--drop-flagged and Python's drop_flagged=). --drop-flags is the old name."),
    gold: bool = typer.Option(False, help="ds only: use reference labels as gold "
                              "(semi-supervised Dawid-Skene)."),
    calibrate: str | None = typer.Option(None, help="Remove each critic's position prior "
                                         "before voting, without labels: batch | pride."),
    panel: Path | None = typer.Option(None, help="A panel file that registers your own "
                                      "aggregators (it is RUN: only use files you trust)."),
) -> None:
    """Fuse a run's judgments into preferences; print flags and agreement statistics."""
    try:
        run_aggregate(console, run_dir, method=method, out=out, quorum=quorum,
                      supermajority=supermajority, min_margin=min_margin,
                      drop_flags=[f.strip() for f in drop_flagged.split(",") if f.strip()],
                      gold=gold, panel=panel, calibrate=calibrate)
    except (OversightError, ValueError) as exc:
        fail(exc)
