"""Experiments above the panel: the overoptimization harness (gold vs proxy objectives).

`best_of_n(...)` runs best-of-n against each proxy objective and scores the choice with a gold
judge that is never optimized; `grpo_overopt(...)` does the same under GRPO. Both write a run
directory that `oversight report` renders. See `oversight.experiments._overopt`.
"""

from oversight.experiments._bon import best_of_n as best_of_n_estimate
from oversight.experiments._bon import (
    best_of_n_brute_force,
    bon_kl,
    bootstrap_means,
    hacking_gap,
    max_weights,
)
from oversight.experiments._grpo import ObjectiveReward, grpo_overopt, sample_with_kl
from oversight.experiments._objectives import (
    Objective,
    Scores,
    objective_values,
    parse_objective,
    sample_items,
    score_samples,
)
from oversight.experiments._overopt import (
    OveroptPrompt,
    OveroptResult,
    best_of_n,
    load_overopt_prompts,
    read_run,
    sample_completions,
)
from oversight.experiments._rules import (
    answer_overlap,
    answers_critic,
    length_budget_critic,
    no_judge_talk_critic,
    rule_gold_panel,
    safe_critic,
)

__all__ = [
    "Objective",
    "ObjectiveReward",
    "OveroptPrompt",
    "OveroptResult",
    "Scores",
    "answer_overlap",
    "answers_critic",
    "best_of_n",
    "best_of_n_brute_force",
    "best_of_n_estimate",
    "bon_kl",
    "bootstrap_means",
    "grpo_overopt",
    "hacking_gap",
    "length_budget_critic",
    "load_overopt_prompts",
    "max_weights",
    "no_judge_talk_critic",
    "objective_values",
    "parse_objective",
    "read_run",
    "rule_gold_panel",
    "safe_critic",
    "sample_completions",
    "sample_items",
    "sample_with_kl",
    "score_samples",
]
