"""`oversight report` and `oversight review`: the HTML report, its terminal summary, and the
human-review queue."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from oversight.cli._aggregate import method_help
from oversight.cli._common import console, fail
from oversight.errors import OversightError
from oversight.report import HUMAN, Analysis, export_queue, import_labels


def _f(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _kappa_color(v: float) -> str:
    if math.isnan(v):
        return "-"
    color = "green" if v >= 0.6 else "yellow" if v >= 0.2 else "red"
    return f"[{color}]{v:.2f}[/]"


def print_summary(console: Console, a: Analysis, contested: int = 5) -> None:
    """The report's headline numbers as rich tables."""
    from oversight.aggregate import agreement_summary

    console.print(f"{len(a.items)} items, {len(a.critic_names)} critics, {len(a.judgments)} "
                  f"judgments; flags: " + ", ".join(f"{k}={v}" for k, v in
                                                     a.flag_counts.items()), highlight=False)
    if len(a.critic_names) > 1:
        s = agreement_summary(a.judgments)
        console.print(f"Krippendorff alpha {_f(s['alpha'])}, Fleiss kappa "
                      f"{_f(s['fleiss_kappa'])}, mean Cohen kappa {_f(s['mean_cohen_kappa'])}",
                      highlight=False)
    kappa, n = a.kappa
    t = Table(title="Cohen's kappa between critics")
    t.add_column("")
    for c in kappa.columns:
        t.add_column(c, justify="right")
    for r in kappa.index:
        t.add_row(r, *[_kappa_color(float(kappa.at[r, c])) for c in kappa.columns])
    console.print(t)
    pb = a.position_bias
    t = Table(title="Position bias (mean P(first shown is better); 0.5 = order-blind)")
    for col in ("critic", "judgments", "P(first) fwd", "P(first) rev", "bias ±95% CI",
                "flip rate"):
        t.add_column(col, justify="left" if col == "critic" else "right")
    for r in pb.to_dict("records"):
        half = (r["p_first_high"] - r["p_first_low"]) / 2
        t.add_row(r["critic"], str(r["n"]), _f(r["p_first_forward"]), _f(r["p_first_reverse"]),
                  f"{r['bias']:+.3f} ±{half:.3f}" if not math.isnan(half)
                  else f"{r['bias']:+.3f}", _f(r["flip_rate"], 2))
    console.print(t)
    rel = a.reliability
    t = Table(title="Dawid-Skene reliability (95% bootstrap CI)")
    for col in ("critic", "reliability", "95% CI", *(["with human gold"]
                                                      if "reliability_human" in rel else [])):
        t.add_column(col, justify="left" if col == "critic" else "right")
    for r in rel.to_dict("records"):
        t.add_row(r["critic"], _f(r["reliability"]), f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
                  *([_f(r["reliability_human"])] if "reliability_human" in r else []))
    console.print(t)
    pd_ = a.principle_disagreement.head(5)
    if len(pd_):
        console.print("most disagreeing principles: " + "; ".join(
            f"{r['critic']}:{r['principle']} {r['rate']:.2f} (n={r['n_items']})"
            for r in pd_.to_dict("records")), highlight=False)
    for source in a.references():
        name = "human review" if source == HUMAN else "reference"
        t = Table(title=f"Agreement with {name} labels (95% Wilson CI)")
        for col in ("critic", "n", "agreement", "95% CI", "ECE"):
            t.add_column(col, justify="left" if col == "critic" else "right")
        cal = a.calibration(source)
        for r in a.reference_agreement(source).to_dict("records"):
            ece = cal.get(r["critic"])
            t.add_row(r["critic"], str(r["n"]), _f(r["agreement"]),
                      f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
                      _f(ece[0]) if ece else "")
        console.print(t)
    top = a.contested(contested)
    t = Table(title=f"Most contested items (top {len(top)})")
    t.add_column("item")
    t.add_column("flags")
    for c in a.critic_names:
        t.add_column(f"{c}\nP(A)", justify="right")
    t.add_column("panel", justify="center")
    t.add_column("margin", justify="right")
    for d in top.to_dict("records"):
        views = {v["critic"]: v for v in a.critic_views(d["item_id"])}
        cells = []
        for c in a.critic_names:
            sup = views.get(c, {}).get("support")
            cells.append("-" if not sup else _f(sup[0], 2))
        flags = ",".join(short for f, short in (("split", "split"), ("veto_conflict", "veto"),
                                                ("position_inconsistent", "position"),
                                                ("low_quorum", "quorum"), ("cycle", "cycle"),
                                                ("undecided", "undecided"))
                         if d.get(f))
        t.add_row(d["item_id"], flags, *cells, str(d["final"]), _f(d["margin"], 2))
    console.print(t)


def run_report(console: Console, run_dir: Path, *, out: Path | None, method: str | None,
               contested: int, conflict_min_items: int, quiet: bool) -> Path:
    from oversight.report import is_overopt_run, write_overopt_report, write_report

    t0 = time.perf_counter()
    if is_overopt_run(run_dir):  # an `oversight overopt` run: its own self-contained section
        path = write_overopt_report(run_dir, out)
        console.print(f"wrote {path} in {time.perf_counter() - t0:.1f} s", highlight=False)
        return path
    a = Analysis.from_run(run_dir, method=method, conflict_min_items=conflict_min_items)
    if not quiet:
        print_summary(console, a)
    target = out if out is not None else (run_dir if run_dir.is_dir() else run_dir.parent)
    path = write_report(a, target, contested=contested)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s", highlight=False)
    return path


def report_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `oversight judge`."),
    out: Path | None = typer.Option(None, help="report.html path or directory "
                                    "(default: RUN_DIR/report.html)."),
    method: str | None = typer.Option(None, help=f"Panel aggregation: {method_help()} "
                                      "(default: the panel's, from run.json)"),
    contested: int = typer.Option(10, help="Contested items shown with their rationales."),
    conflict_min_items: int = typer.Option(20, help="Shared items a principle-conflict edge "
                                           "needs."),
    quiet: bool = typer.Option(False, "--quiet", help="Skip the terminal summary."),
) -> None:
    """Write a self-contained report.html (plots embedded) and print a summary of where
    critics agree, disagree, lean on position, and match reference or human labels."""
    try:
        run_report(console, run_dir, out=out, method=method, contested=contested,
                   conflict_min_items=conflict_min_items, quiet=quiet)
    except (OversightError, ValueError) as exc:
        fail(exc)


review_app = typer.Typer(no_args_is_help=True,
                         help="Send flagged items to human reviewers; bring labels back.")


@review_app.command("export")
def review_export(
    run_dir: Path = typer.Argument(..., help="A run directory written by `oversight judge`."),
    out: Path = typer.Option(..., help="queue.jsonl, or a .json task list for Label Studio."),
    flags: str = typer.Option("split,veto_conflict", help="Comma-separated flags; an item "
                              "with any of them is exported."),
    format: str = typer.Option("jsonl", "--format", help="jsonl | label-studio"),
    method: str | None = typer.Option(None, help="Panel aggregation that sets the flags "
                                      "(default: the panel's)."),
    blind: bool = typer.Option(False, "--blind", help="Leave out critics' verdicts."),
    limit: int | None = typer.Option(None, help="Export at most N items (most spread first)."),
) -> None:
    """Export flagged items, with each critic's verdict and rationale, for human review."""
    try:
        a = Analysis.from_run(run_dir, method=method)
        path, n = export_queue(a, out, [f.strip() for f in flags.split(",") if f.strip()],
                               fmt=format, blind=blind, limit=limit)
    except (OversightError, ValueError) as exc:
        fail(exc)
    extra = (f" and {path.stem}.label_config.xml" if format == "label-studio" else "")
    console.print(f"wrote {n} items to {path}{extra}", highlight=False)


@review_app.command("import")
def review_import(
    run_dir: Path = typer.Argument(..., help="The run directory the queue came from."),
    labels: Path = typer.Argument(..., help="Filled-in queue.jsonl or a Label Studio export."),
    reviewer: str = typer.Option("reviewer", help="Name for labels that carry none."),
) -> None:
    """Store human labels as the `human` critic, for the report and Dawid-Skene."""
    try:
        counts = import_labels(run_dir, labels, reviewer=reviewer)
    except (OversightError, ValueError) as exc:
        fail(exc)
    total = sum(counts.values())
    console.print(f"imported {total} labels (" + ", ".join(f"{k}: {v}" for k, v in
                                                          counts.items())
                  + f") as critic 'human' into {run_dir}", highlight=False)
