"""Panels: several critics, one cached and resumable run."""

from oversight.panel._executors import (
    Executor,
    LocalExecutor,
    RayExecutor,
    WorkUnit,
    judge_unit,
    work_units,
)
from oversight.panel._panel import Panel, PanelResult
from oversight.panel._run import Run, open_run, read_run_info, write_run
from oversight.panel._stats import wilson_ci

__all__ = ["Executor", "LocalExecutor", "Panel", "PanelResult", "RayExecutor", "Run",
           "WorkUnit", "judge_unit", "open_run", "read_run_info", "work_units", "wilson_ci",
           "write_run"]
