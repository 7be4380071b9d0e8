"""The `oversight` command line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from oversight.cli._aggregate import method_help
from oversight.errors import DataError, OversightError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multi-critic oversight of language models.")
model_app = typer.Typer(no_args_is_help=True, help="The embedded default model.")
app.add_typer(model_app, name="model")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

from oversight.cli._constitution import constitution_app  # noqa: E402

app.add_typer(constitution_app, name="constitution")


def _fail(exc: BaseException | str) -> NoReturn:
    err.print(f"error: {exc}", highlight=False, markup=False)
    raise typer.Exit(2)


@model_app.command("fetch")
def model_fetch() -> None:
    """Fetch and convert the default model now (otherwise done on first use)."""
    from oversight.backends import default_model_path

    try:
        path = default_model_path(log=lambda m: err.print(m, highlight=False, markup=False))
    except OversightError as exc:
        _fail(exc)
    console.print(f"default model ready: {path}", highlight=False)


@app.command()
def demo(
    limit: int | None = typer.Option(None, help="Judge only the first N example pairs."),
    principles: int = typer.Option(1, help="Principles sampled per pair and critic (CAI-style)."),
    store: Path | None = typer.Option(None, help="Keep judgments in this store directory."),
) -> None:
    """Judge ~24 built-in pairs with a 3-critic panel on the embedded SmolLM2 model."""
    from oversight.cli._demo import run_demo

    try:
        run_demo(console, limit=limit, principles=principles, store=store)
    except OversightError as exc:
        _fail(exc)


@app.command()
def judge(
    panel: Path = typer.Option(..., help="Python file defining `panel` or `build_panel()`, or "
                               "an example panel by name (checks_and_balances, ...). Loading "
                               "it RUNS that file's code: only use files you trust."),
    data: Path = typer.Option(..., help=".jsonl or .parquet with pairs, TRL or HH rows, or a "
                              "built-in data set by name (demo, hh-harmless-sample)."),
    out: Path = typer.Option(..., help="Run directory: judgments.parquet + the store."),
    limit: int | None = typer.Option(None, help="Judge only the first N items."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad rows."),
    seed: int = typer.Option(0, help="Seed for the position of `chosen` in labelled data."),
    batch_size: int = typer.Option(16, help="Judgments per backend call and per store commit."),
    resume: bool = typer.Option(True, "--resume/--fresh",
                                help="Reuse judgments already in the store (default)."),
    ray: str | None = typer.Option(None, help="Run the critics' backends as Ray actors: "
                                   "'local' starts Ray here, or a cluster address "
                                   "('auto', 'ray://host:10001'). Needs the `ray` extra."),
    actors: int = typer.Option(1, help="With --ray: actors per backend."),
    actor_cpus: float = typer.Option(1.0, help="With --ray: CPUs each actor reserves."),
    actor_gpus: float = typer.Option(0.0, help="With --ray: GPUs each actor reserves."),
) -> None:
    """Run a panel over a data file. Resumes from the run directory's store by default."""
    from oversight.cli._panelfile import load_panel
    from oversight.cli._progress import judging_progress
    from oversight.cli._tables import run_summary
    from oversight.data import load_comparisons
    from oversight.panel import write_run
    from oversight.store import JudgmentStore, run_lock

    try:
        p = load_panel(panel)
        items = load_comparisons(data, seed=seed, skip_bad=skip_bad, limit=limit)
        if not items:
            raise DataError(str(data), "no comparisons to judge" + (
                f" ({len(items.skipped)} bad rows skipped)" if items.skipped else ""))
        out.mkdir(parents=True, exist_ok=True)
        db_path = out / "judgments.sqlite"
        # The run lock covers the whole run (deleting for --fresh, judging, writing the run
        # files): a second `oversight judge` on this directory waits, then resumes.
        with run_lock(db_path, notify=lambda m: err.print(f"waiting: {m}", highlight=False,
                                                          markup=False)):
            if not resume and db_path.exists():
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            console.print(f"{p!r}: {len(items)} items from {data}"
                          + (f", {len(items.skipped)} bad rows skipped" if items.skipped else ""),
                          highlight=False)
            for _row, reason in items.skipped[:5]:
                err.print(f"skipped: {reason}", highlight=False, markup=False)
            with JudgmentStore(db_path) as db:
                before = db.count()
                t0 = time.perf_counter()
                executor = None
                if ray is not None:
                    from oversight.panel import RayExecutor

                    executor = RayExecutor(None if ray == "local" else ray,
                                           actors_per_backend=actors,
                                           resources={"num_cpus": actor_cpus,
                                                      "num_gpus": actor_gpus})
                try:
                    with judging_progress(console) as progress:
                        result = p.judge(items, store=db, batch_size=batch_size,
                                         progress=progress, executor=executor)
                finally:
                    if executor is not None:
                        executor.close()
                seconds = time.perf_counter() - t0
                computed = db.count() - before
            result.judgments.to_parquet(out / "judgments.parquet", index=False)
            summary = result.summary()
            summary.astype({c: str for c in summary.columns if c.endswith("verdict")}) \
                .to_parquet(out / "summary.parquet", index=False)
            write_run(out, critics=result.critics, aggregator=p.aggregator,
                      aggregator_options=p.aggregator_options, rules=p.rules,
                      panel=str(panel), data=str(data), seed=seed, items=len(items),
                      skipped=items.skipped, status_counts=result.status_counts(),
                      reason_counts=result.reason_counts(), seconds=seconds,
                      computed=computed)
            run_summary(console, result, seconds, computed)
            console.print(f"wrote {out}/judgments.parquet, summary.parquet, run.json, "
                          "judgments.sqlite", highlight=False)
    except OversightError as exc:
        _fail(exc)
    except OSError as exc:  # e.g. --out names an existing file, or a read-only directory
        _fail(f"{exc.filename or out}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        err.print("interrupted: every finished batch is in the store; rerun to resume")
        raise typer.Exit(130) from None


@app.command("aggregate")
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
    from oversight.cli._aggregate import run_aggregate

    try:
        run_aggregate(console, run_dir, method=method, out=out, quorum=quorum,
                      supermajority=supermajority, min_margin=min_margin,
                      drop_flags=[f.strip() for f in drop_flagged.split(",") if f.strip()],
                      gold=gold, panel=panel, calibrate=calibrate)
    except (OversightError, ValueError) as exc:
        _fail(exc)


@app.command("report")
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
    from oversight.cli._report import run_report

    try:
        run_report(console, run_dir, out=out, method=method, contested=contested,
                   conflict_min_items=conflict_min_items, quiet=quiet)
    except (OversightError, ValueError) as exc:
        _fail(exc)


review_app = typer.Typer(no_args_is_help=True,
                         help="Send flagged items to human reviewers; bring labels back.")
app.add_typer(review_app, name="review")


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
    from oversight.report import Analysis, export_queue

    try:
        a = Analysis.from_run(run_dir, method=method)
        path, n = export_queue(a, out, [f.strip() for f in flags.split(",") if f.strip()],
                               fmt=format, blind=blind, limit=limit)
    except (OversightError, ValueError) as exc:
        _fail(exc)
    extra = (f" and {path.stem}.label_config.xml" if format == "label-studio" else "")
    console.print(f"wrote {n} items to {path}{extra}", highlight=False)


@review_app.command("import")
def review_import(
    run_dir: Path = typer.Argument(..., help="The run directory the queue came from."),
    labels: Path = typer.Argument(..., help="Filled-in queue.jsonl or a Label Studio export."),
    reviewer: str = typer.Option("reviewer", help="Name for labels that carry none."),
) -> None:
    """Store human labels as the `human` critic, for the report and Dawid-Skene."""
    from oversight.report import import_labels

    try:
        counts = import_labels(run_dir, labels, reviewer=reviewer)
    except (OversightError, ValueError) as exc:
        _fail(exc)
    total = sum(counts.values())
    console.print(f"imported {total} labels (" + ", ".join(f"{k}: {v}" for k, v in
                                                          counts.items())
                  + f") as critic 'human' into {run_dir}", highlight=False)


@app.command()
def serve(
    model: str = typer.Option("default", help="HF id or local path; 'default' is the embedded "
                                      "SmolLM2-135M-Instruct-Q4_1."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000),
    max_logprobs: int = typer.Option(20, help="Largest top_logprobs a request may ask for."),
    dtype: str = typer.Option("float32", help="float32 or bfloat16"),
) -> None:
    """Serve a model over the OpenAI chat-completions protocol, with log-probs."""
    from oversight.serve import serve as run_server

    try:
        run_server(model, host=host, port=port,
                   max_logprobs=max_logprobs, dtype=dtype)
    except OversightError as exc:
        _fail(exc)


# Training under panel feedback (oversight/cli/_train.py): export, revise, train, serve-reward.
from oversight.cli._train import (  # noqa: E402
    export_cmd,
    revise_cmd,
    serve_reward_cmd,
    train_app,
)

app.command("export")(export_cmd)
app.command("revise")(revise_cmd)
app.command("serve-reward")(serve_reward_cmd)
app.add_typer(train_app, name="train")

from oversight.cli._overopt import overopt_cmd  # noqa: E402

app.command("overopt")(overopt_cmd)

# Participatory drafting and inverse constitutions (oversight/cli/_draft.py).
from oversight.cli._draft import draft_app, inverse_cmd  # noqa: E402

app.add_typer(draft_app, name="draft")
app.command("inverse")(inverse_cmd)


# Judge quality against reference labels (oversight/cli/_evaluate.py).
from oversight.cli._evaluate import evaluate_cmd  # noqa: E402

app.command("evaluate")(evaluate_cmd)


def main() -> None:
    try:
        app()
    except OversightError as exc:  # a last guard: never a traceback for bad input
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("OVERSIGHT_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        print(f"internal error: {type(exc).__name__}: {text} (set OVERSIGHT_DEBUG=1 to see "
              "the traceback)", file=sys.stderr)
        sys.exit(1)
