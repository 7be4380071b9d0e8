"""Reports: the figures and tables for studying where critics disagree.

`Analysis` derives the tables from a run, `Plots` (also `PanelResult.plot`) turns them into
matplotlib Figures, `write_report` writes one self-contained report.html, and the review
helpers send contested items to humans and bring their labels back as a `human` critic.
"""

from oversight.aggregate import expected_calibration_error
from oversight.report._analysis import HUMAN, Analysis
from oversight.report._evaluate import Evaluation, evaluate
from oversight.report._html import render_html, write_report
from oversight.report._overopt import (
    is_overopt_run,
    overopt_figures,
    render_overopt_html,
    write_overopt_report,
)
from oversight.report._plots import Plots
from oversight.report._review import export_queue, import_labels

__all__ = [
    "HUMAN",
    "Analysis",
    "Evaluation",
    "Plots",
    "evaluate",
    "expected_calibration_error",
    "export_queue",
    "import_labels",
    "is_overopt_run",
    "overopt_figures",
    "render_overopt_html",
    "write_overopt_report",
    "render_html",
    "write_report",
]
