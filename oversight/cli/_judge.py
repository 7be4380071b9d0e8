"""`oversight judge`: run a panel over a data file into a resumable run directory."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from oversight.cli._common import console, err, fail
from oversight.errors import DataError, OversightError


def judge_cmd(
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
            write_run(out, critics=result.critics, method=p.method,
                      method_options=p.method_options, rules=p.rules,
                      panel=str(panel), data=str(data), seed=seed, items=len(items),
                      skipped=items.skipped, status_counts=result.status_counts(),
                      reason_counts=result.reason_counts(), seconds=seconds,
                      computed=computed)
            run_summary(console, result, seconds, computed)
            console.print(f"wrote {out}/judgments.parquet, summary.parquet, run.json, "
                          "judgments.sqlite", highlight=False)
    except OversightError as exc:
        fail(exc)
    except OSError as exc:  # e.g. --out names an existing file, or a read-only directory
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        err.print("interrupted: every finished batch is in the store; rerun to resume")
        raise typer.Exit(130) from None
