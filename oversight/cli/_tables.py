"""Terminal tables for run summaries."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from oversight.panel import PanelResult


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def verdict_label(v: Any) -> str:
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return "ABCDEFGHIJ"[v]
    return str(v)


def pairs_table(result: PanelResult, title: str, topics: dict[str, str] | None = None,
                max_rows: int | None = None) -> Table:
    summ = result.summary()
    table = Table(title=title, show_lines=False)
    table.add_column("#", justify="right")
    if topics:
        table.add_column("topic")
    for name in result.critic_names:
        table.add_column(f"{name}\nP(A)", justify="right")
    table.add_column("panel", justify="center")
    table.add_column("mean\nP(A)", justify="right")
    table.add_column("split", justify="center")
    for n, (_, row) in enumerate(summ.iterrows(), start=1):
        if max_rows is not None and n > max_rows:
            break
        cells = [str(n)]
        if topics:
            cells.append(topics.get(row["item_id"], ""))
        for name in result.critic_names:
            p = row[name]
            cell = _fmt(p)
            if isinstance(p, float) and not math.isnan(p):
                cell = f"[green]{cell}[/]" if p > 0.5 else f"[red]{cell}[/]" if p < 0.5 else cell
            cells.append(cell)
        cells += [verdict_label(row["verdict"]), _fmt(row["mean_p_a"]),
                  "[yellow]⚑ split[/]" if row["disagree"] else ""]
        table.add_row(*cells)
    return table


def run_summary(console: Console, result: PanelResult, seconds: float, computed: int) -> None:
    counts = result.status_counts()
    console.print(f"judgments: {sum(counts.values())} "
                  + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                  + f"; computed now: {computed} in {seconds:.1f} s"
                  + (f" ({computed / seconds:.2f} judgments/s)"
                     if computed and seconds > 0 else ""))
    for status, by in result.reason_counts().items():
        console.print(f"{status} by reason: "
                      + ", ".join(f"{code}={n}" for code, n in by.items()), highlight=False,
                      markup=False)
    if result.skipped:
        console.print(f"[yellow]skipped {len(result.skipped)} bad rows[/] "
                      f"(first: {result.skipped[0][1]})")
    flips = result.position_flips()
    t = Table(title="Position consistency (pairwise)")
    for col in ("critic", "pairs", "flip rate", "mean P(first shown)"):
        t.add_column(col, justify="right" if col != "critic" else "left")
    for _, r in flips.iterrows():
        t.add_row(r["critic"], str(r["n_pairs"]), _fmt(r["flip_rate"]), _fmt(r["mean_p_first"]))
    console.print(t)
    if any(it.reference is not None for it in result.items):
        t = Table(title="Agreement with reference labels (95% Wilson CI)")
        for col in ("critic", "orders", "n", "agreement", "95% CI"):
            t.add_column(col)
        for orders, label in (("all", "both (swap)"), ("forward", "one order")):
            for _, r in result.agreement(orders).iterrows():
                t.add_row(r["critic"], label, str(r["n"]), _fmt(r["agreement"]),
                          f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]")
        console.print(t)
