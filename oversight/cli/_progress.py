"""A rich progress bar with ETA, fed by Panel.judge's progress callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from oversight.panel._panel import Progress as ProgressFn


@contextmanager
def judging_progress(console: Console, label: str = "judging") -> Iterator[ProgressFn]:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[critic]}"), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(label, total=None, critic="")
        started = {"cached": 0}

        def update(done: int, total: int, critic: str) -> None:
            if critic == "cached":
                started["cached"] = done
                # Cached judgments are not work done now: keep them out of the ETA.
                bar.update(task, total=total, completed=done, critic=f"{done} cached")
                bar.reset(task, total=total - done, completed=0, critic=f"{done} cached")
                return
            bar.update(task, completed=done - started["cached"], critic=critic)

        yield update
