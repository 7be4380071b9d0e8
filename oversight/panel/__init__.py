"""Panels: several critics, one cached and resumable run."""

from oversight._deprecated import moved
from oversight.panel._escalation import ESCALATION_FLAGS, Escalation, EscalationRecord
from oversight.panel._executors import (
    Executor,
    LocalExecutor,
    WorkUnit,
    judge_unit,
    work_units,
)
from oversight.panel._panel import Panel, PanelResult, StoreSource, TableSource
from oversight.panel._ray import RayExecutor
from oversight.panel._run import Run, open_run, read_run_info, write_run
from oversight.panel._scorer import PanelScorer, ScoredBatch, completion_text

__all__ = ["ESCALATION_FLAGS", "Escalation", "EscalationRecord",
           "Executor", "LocalExecutor", "Panel", "PanelResult", "PanelScorer", "RayExecutor",
           "Run", "ScoredBatch", "StoreSource", "TableSource", "WorkUnit", "completion_text",
           "judge_unit", "open_run", "read_run_info", "work_units", "write_run"]

# wilson_ci lives in oversight.aggregate (one definition); the old name warns for one release.
__getattr__ = moved("oversight.panel", {"wilson_ci": "oversight.aggregate.wilson_ci"})
