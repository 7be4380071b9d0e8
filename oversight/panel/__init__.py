"""Panels: several critics, one cached and resumable run."""

from oversight.panel._executors import (
    Executor,
    LocalExecutor,
    WorkUnit,
    judge_unit,
    work_units,
)
from oversight.panel._panel import Panel, PanelResult, StoreSource, TableSource
from oversight.panel._ray import RayExecutor
from oversight.panel._scorer import PanelScorer, ScoredBatch, completion_text
from oversight.panel._stats import wilson_ci

__all__ = ["Executor", "LocalExecutor", "Panel", "PanelResult", "PanelScorer", "RayExecutor",
           "ScoredBatch", "StoreSource", "TableSource", "WorkUnit", "completion_text",
           "judge_unit", "work_units", "wilson_ci"]
