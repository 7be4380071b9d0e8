"""Panels: several critics, one cached and resumable run."""

from oversight.panel._escalation import ESCALATION_FLAGS, Escalation, EscalationRecord
from oversight.panel._executors import (
    Executor,
    LocalExecutor,
    RayExecutor,
    WorkUnit,
    judge_unit,
    work_units,
)
from oversight.panel._panel import Panel, PanelResult
from oversight.panel._stats import wilson_ci

__all__ = ["ESCALATION_FLAGS", "Escalation", "EscalationRecord",
           "Executor", "LocalExecutor", "Panel", "PanelResult", "RayExecutor", "WorkUnit",
           "judge_unit", "work_units", "wilson_ci"]
