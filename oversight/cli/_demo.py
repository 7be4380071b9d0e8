"""`oversight demo`: three critics with distinct constitutions on the embedded SmolLM2."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console

from oversight.backends import TransformersBackend
from oversight.cli._common import console, fail
from oversight.cli._progress import judging_progress
from oversight.cli._tables import pairs_table
from oversight.constitution import builtin
from oversight.critics import Critic
from oversight.data import load_comparisons
from oversight.errors import OversightError
from oversight.panel import Panel, PanelResult, TableSource

DEMO_CONSTITUTIONS = ("harmlessness", "helpfulness", "honesty")


def demo_panel(backend: TransformersBackend, principles: int = 1) -> Panel:
    """Harmlessness, helpfulness and honesty critics sharing one model: checks and balances."""
    return Panel([Critic(builtin(name), backend, principles=principles, swap=True)
                  for name in DEMO_CONSTITUTIONS], name="demo")


def run_demo(console: Console, *, limit: int | None = None, principles: int = 1,
             store: Path | None = None) -> None:
    t_start = time.perf_counter()
    backend = TransformersBackend()
    console.print("Loading the default model (SmolLM2-135M-Instruct; fetched and converted on "
                  "first use)...")
    backend.load()
    console.print(f"model loaded in {backend.load_seconds:.1f} s", highlight=False)
    items = load_comparisons("demo", limit=limit)
    panel = demo_panel(backend, principles)
    topics = {it.id: str(it.meta.get("topic", "")) for it in items}
    with tempfile.TemporaryDirectory() as tmp:
        db = store or Path(tmp)
        t0 = time.perf_counter()
        with judging_progress(console, "demo") as progress:
            result = panel.judge(items, store=db, progress=progress)
        judge_s = time.perf_counter() - t0
        # the result reads its judgments from the store, which goes with `tmp`: keep them
        result = dataclasses.replace(result, source=TableSource(result.to_arrow()))
    console.print(pairs_table(result, f"{panel.name}: {len(items)} pairs, "
                              f"{len(result)} judgments (both orders, "
                              f"{principles} principle(s) per critic and pair)", topics))
    flips = result.position_flips()
    console.print("Position bias: " + ", ".join(
        f"{r.critic} mean P(first shown)={r.mean_p_first:.2f}, flip rate={r.flip_rate:.2f}"
        for r in flips.itertuples()), highlight=False)
    console.print("P(A) averages both orders, so position bias cancels; SmolLM2-135M is a weak "
                  "judge, and P(A) near 0.5 means no preference beyond position.", style="dim")
    _print_quality(console, result)
    split = int(result.summary()["disagree"].sum())
    console.print(f"{split} of {len(items)} pairs split the panel. Judging took {judge_s:.1f} s "
                  f"({len(result) / judge_s:.2f} judgments/s); total "
                  f"{time.perf_counter() - t_start:.1f} s.", highlight=False)
    console.print(json.dumps(result.status_counts()), style="dim")


def _print_quality(console: Console, result: PanelResult) -> None:
    """Agreement with the pairs' intended labels next to the length baselines, and a verdict."""
    from oversight.report import Analysis, evaluate

    if not any(it.reference is not None for it in result.items):
        return
    ev = evaluate(Analysis.from_result(result))
    t = ev.overall
    judges = t[t["kind"].isin(["critic", "panel"])]
    base = t[t["name"].isin(["longer", "shorter"]) & (t["kind"] == "baseline")]
    console.print("Agreement with the intended labels (95% CI): " + ", ".join(
        f"{r.name} {r.agreement:.2f} ({r.ci_low:.2f}-{r.ci_high:.2f})"
        for r in judges.itertuples()) + "; baselines on the same pairs: " + ", ".join(
        f"prefer {r.name} {r.agreement:.2f}" for r in base.itertuples()), highlight=False)
    panel = judges[judges["kind"] == "panel"].iloc[0]
    best = base.sort_values("agreement", ascending=False).iloc[0]
    if panel["ci_low"] > best["agreement"]:
        verdict = (f"the panel beats the best length baseline (prefer {best['name']}, "
                   f"{best['agreement']:.2f}): its 95% interval lies above it.")
    elif panel["agreement"] > best["agreement"]:
        verdict = (f"the panel scores above the best length baseline (prefer {best['name']}, "
                   f"{best['agreement']:.2f}) but its 95% interval does not clear it, so this "
                   "is no evidence that it judges better than length.")
    else:
        verdict = (f"the panel does not beat the best length baseline (prefer {best['name']}, "
                   f"{best['agreement']:.2f}).")
    console.print(f"Verdict: {verdict}", highlight=False)


def demo_cmd(
    limit: int | None = typer.Option(None, help="Judge only the first N example pairs."),
    principles: int = typer.Option(1, help="Principles sampled per pair and critic (CAI-style)."),
    store: Path | None = typer.Option(None, help="Keep judgments in this store directory."),
) -> None:
    """Judge ~24 built-in pairs with a 3-critic panel on the embedded SmolLM2 model."""
    try:
        run_demo(console, limit=limit, principles=principles, store=store)
    except OversightError as exc:
        fail(exc)
