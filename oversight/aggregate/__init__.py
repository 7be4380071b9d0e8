"""Aggregation: fuse critics' judgments into preferences, flags and agreement statistics.

Aggregators follow sklearn/crowd-kit: `fit(judgments)` on the long judgments table, fitted
results end in `_`. Numeric cores are pure numpy/scipy functions.
"""

from oversight._deprecated import moved
from oversight.aggregate._aggregate import (
    FLAG_COLUMNS,
    METHODS,
    Aggregation,
    aggregate,
    check_judgments,
    check_weights,
)
from oversight.aggregate._agreement import (
    agreement_summary,
    cohen_kappa_matrix,
    critic_agreement_graph,
    effective_panel_size,
    error_correlation,
    fleiss_kappa,
    fleiss_kappa_from_labels,
    krippendorff_alpha,
    label_matrix,
    principle_conflict_graph,
)
from oversight.aggregate._ballots import (
    TIE_TOL,
    WORKING_COLUMNS,
    columnar,
    critic_p0,
    is_tie,
    pairwise_rows,
    response_support,
)
from oversight.aggregate._baselines import BASELINES, baseline_agreement
from oversight.aggregate._bradley_terry import (
    BradleyTerry,
    StrengthFit,
    bt_fit,
    bt_strengths,
    bt_strengths_batched,
)
from oversight.aggregate._calibration import (
    CALIBRATIONS,
    calibrate_positions,
    position_priors,
)
from oversight.aggregate._conservative import Conservative, calibrate, conservative_scores
from oversight.aggregate._dawid_skene import (
    DawidSkene,
    critic_labels,
    dawid_skene_em,
    dawid_skene_triples,
    fit_confusions_from_gold,
    reliability_bootstrap,
)
from oversight.aggregate._paired import (
    agreement_credit,
    paired_bootstrap,
    position_consistency,
)
from oversight.aggregate._plackett_luce import (
    PlackettLuce,
    pl_fit,
    pl_strengths,
    pl_strengths_batched,
)
from oversight.aggregate._quality import (
    baseline_verdicts,
    judge_scores,
    length_control,
    quality_table,
    wilson_interval,
)
from oversight.aggregate._registry import (
    AggregationContext,
    Aggregator,
    aggregator_spec,
    available_aggregators,
    register_aggregator,
)
from oversight.aggregate._rules import PanelRules, apply_rules, disagreement_flags, infer_k
from oversight.aggregate._stats import (
    agreement_table,
    agreement_with_reference,
    critic_verdicts,
    expected_calibration_error,
    mean_ci,
    position_flip_rates,
    position_flips,
    verdict_of,
    wilson_ci,
)
from oversight.aggregate._vote import Vote, ballots, decide, tally

__all__ = [
    "agreement_credit",
    "paired_bootstrap",
    "position_consistency",
    "BASELINES",
    "CALIBRATIONS",
    "baseline_verdicts",
    "calibrate_positions",
    "judge_scores",
    "length_control",
    "position_priors",
    "quality_table",
    "wilson_interval",
    "FLAG_COLUMNS",
    "TIE_TOL",
    "AggregationContext",
    "Aggregator",
    "agreement_table",
    "agreement_with_reference",
    "aggregator_spec",
    "available_aggregators",
    "check_judgments",
    "check_weights",
    "critic_verdicts",
    "expected_calibration_error",
    "infer_k",
    "is_tie",
    "mean_ci",
    "position_flip_rates",
    "position_flips",
    "register_aggregator",
    "reliability_bootstrap",
    "verdict_of",
    "wilson_ci",
    "baseline_agreement",
    "BradleyTerry",
    "PlackettLuce",
    "StrengthFit",
    "bt_fit",
    "bt_strengths",
    "bt_strengths_batched",
    "pl_fit",
    "pl_strengths",
    "pl_strengths_batched",
    "DawidSkene",
    "agreement_summary",
    "cohen_kappa_matrix",
    "critic_agreement_graph",
    "critic_labels",
    "dawid_skene_em",
    "dawid_skene_triples",
    "effective_panel_size",
    "error_correlation",
    "fit_confusions_from_gold",
    "fleiss_kappa",
    "fleiss_kappa_from_labels",
    "krippendorff_alpha",
    "label_matrix",
    "principle_conflict_graph",
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
    "columnar",
    "WORKING_COLUMNS",
    "decide",
    "disagreement_flags",
    "pairwise_rows",
    "response_support",
    "tally",
]

# Old names, kept for one release.
__getattr__ = moved("oversight.aggregate",
                    {"AggregationWarning": "oversight.errors.AggregationWarning",
                     "bt_mm": "oversight.aggregate.bt_strengths",
                     "bt_batched": "oversight.aggregate.bt_strengths_batched",
                     "plackett_luce": "oversight.aggregate.pl_strengths",
                     "plackett_luce_batched": "oversight.aggregate.pl_strengths_batched"})
