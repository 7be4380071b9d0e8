"""Panels: several critics, one cached and resumable run."""

from oversight.panel._panel import Panel, PanelResult
from oversight.panel._stats import wilson_ci

__all__ = ["Panel", "PanelResult", "wilson_ci"]
