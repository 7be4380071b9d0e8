"""Aggregation: fuse critics' judgments into preferences, flags and agreement statistics.

Aggregators follow sklearn/crowd-kit: `fit(judgments)` on the long judgments table, fitted
results end in `_`. Numeric cores are pure numpy/scipy functions.
"""

from oversight.aggregate._aggregate import FLAG_COLUMNS, METHODS, Aggregation, aggregate
from oversight.aggregate._ballots import critic_p0, pairwise_rows, response_support
from oversight.aggregate._conservative import Conservative, calibrate, conservative_scores
from oversight.aggregate._rules import PanelRules, apply_rules, disagreement_flags
from oversight.aggregate._vote import Vote, ballots, decide, tally

__all__ = [
    "FLAG_COLUMNS",
    "METHODS",
    "Aggregation",
    "Conservative",
    "PanelRules",
    "Vote",
    "aggregate",
    "apply_rules",
    "ballots",
    "calibrate",
    "conservative_scores",
    "critic_p0",
    "decide",
    "disagreement_flags",
    "pairwise_rows",
    "response_support",
    "tally",
]
