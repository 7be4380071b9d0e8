"""`oversight evaluate RUN_DIR`: critics and the panel against reference labels and baselines."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from oversight.cli._aggregate import method_help
from oversight.errors import OversightError


def _f(x: float, fmt: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _mark(row: pd.Series) -> str:
    if row["kind"] not in ("critic", "panel"):
        return ""
    return "clears" if bool(row["clears_baseline"]) else "[yellow]does not clear[/]"


def quality_table_view(t: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, caption="agreement: both orders averaged, ties half, 95% Wilson "
                  "CI; lc: length-controlled (AlpacaEval-style fit at dlen=0); len coef > 0 "
                  "follows the longer response; len share: verdicts the length term alone "
                  "predicts")
    for col in ("judge", "n", "agreement", "95% CI", "vs best baseline", "pos. consistency",
                "P(first)", "len coef", "len share", "lc agreement"):
        table.add_column(col, justify="left" if col in ("judge", "vs best baseline")
                         else "right")
    for _, r in t.iterrows():
        name = r["name"] if r["kind"] != "baseline" else f"[dim]baseline: {r['name']}[/]"
        if r["kind"] == "reference":
            name = "[dim]reference labels[/]"
        table.add_row(name, str(int(r["n"])), _f(r["agreement"]),
                      f"{_f(r['ci_low'])}-{_f(r['ci_high'])}", _mark(r),
                      _f(r["position_consistency"], ".2f"), _f(r["mean_p_first"]),
                      _f(r["length_coef"], "+.2f"), _f(r["length_share"], ".2f"),
                      _f(r["lc_agreement"]) if r["kind"] != "reference" else "-")
    return table


def subset_table_view(t: pd.DataFrame) -> Table:
    table = Table(title="per subset: agreement (lc agreement); * = CI clears the subset's best "
                  "baseline")
    names = list(dict.fromkeys(t.loc[t["kind"] != "reference", "name"]))
    table.add_column("subset")
    table.add_column("n", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for subset, part in t.groupby("subset", sort=False):
        p = part.set_index("name")
        cells = []
        for n in names:
            if n not in p.index:
                cells.append("-")
                continue
            r = p.loc[n]
            r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
            star = "*" if r["kind"] in ("critic", "panel") and bool(r["clears_baseline"]) \
                else ""
            cells.append(f"{_f(r['agreement'], '.2f')}{star} ({_f(r['lc_agreement'], '.2f')})")
        table.add_row(str(subset), str(int(part["n"].iloc[0])), *cells)
    return table


def evaluate_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `oversight judge`."),
    source: str = typer.Option("reference", help="Labels: reference (data) or human (review)."),
    method: str = typer.Option("vote", help=f"Panel aggregation: {method_help()}"),
    out: Path | None = typer.Option(None, help="Also write the full table (CSV or Parquet)."),
    seed: int = typer.Option(0, help="Seed of the random baseline."),
) -> None:
    """Agreement of each critic and the panel with reference labels, next to trivial baselines
    (first shown, longer, shorter, random), with position and length control, per subset."""
    from oversight.report import evaluate

    console = Console()
    if not console.is_terminal:  # files and pipes get the whole table, unwrapped
        console = Console(width=180)
    try:
        ev = evaluate(run_dir, source=source, method=method, seed=seed)
    except (OversightError, ValueError) as exc:
        Console(stderr=True).print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    console.print(quality_table_view(ev.overall, f"{run_dir}: agreement with {source} labels"))
    if ev.table["subset"].nunique() > 1:
        console.print(subset_table_view(ev.table))
    h = ev.headline()
    below = ev.overall[(ev.overall["kind"].isin(["critic", "panel"]))
                       & ~ev.overall["clears_baseline"].fillna(False).astype(bool)]
    if len(below):
        console.print(f"{len(below)} of {int(ev.overall['kind'].isin(['critic', 'panel']).sum())}"
                      f" judges do not clear the best baseline ({h['best_baseline']}, "
                      f"{h['best_baseline_agreement']:.3f}): " + ", ".join(below["name"]),
                      highlight=False)
    if out is not None:
        if out.suffix == ".parquet":
            ev.table.to_parquet(out, index=False)
        else:
            ev.table.to_csv(out, index=False)
        console.print(f"wrote {out}", highlight=False)
    console.print(ev.bench_line(), highlight=False, markup=False)
