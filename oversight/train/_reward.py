"""The panel as an online reward: TRL reward functions (GRPO, RLOO) over a `PanelScorer`.

TRL calls a reward function with `prompts`, `completions`, `completion_ids`, the dataset's
other columns, `trainer_state` and `log_metric`, and wants one `float | None` per completion
(None = abstain). The scorer (`oversight.panel.PanelScorer`) turns a batch into Comparisons the
panel judges (completions sharing a prompt are compared with each other); the reward is each
completion's support, fused over critics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from oversight.panel._scorer import PanelScorer, ScoredBatch, fusion_name


def _to_list(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def _log(log_metric: Callable[[str, float], None] | None, batch: ScoredBatch,
         rewards: np.ndarray) -> None:
    if log_metric is None:
        return
    dis = batch.disagreement()
    if not np.isnan(dis).all():
        log_metric("panel/disagreement", float(np.nanmean(dis)))
    log_metric("panel/abstain_rate", float(np.isnan(rewards).mean()))
    for c, name in enumerate(batch.critics):
        col = batch.support[:, c]
        if not np.isnan(col).all():
            log_metric(f"panel/{name}", float(np.nanmean(col)))


class PanelReward:
    """One TRL reward function: the panel's fused support for each completion."""

    def __init__(self, scorer: PanelScorer, aggregate: str = "mean", lam: float = 1.0,
                 name: str = "panel") -> None:
        self.scorer, self.aggregate, self.lam = scorer, fusion_name(aggregate), lam
        self.__name__ = name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 log_metric: Callable[[str, float], None] | None = None,
                 **kwargs: Any) -> list[float | None]:
        batch = self.scorer.score(prompts, completions,
                                  self.scorer._baselines(len(prompts), kwargs))
        rewards = batch.fused(self.aggregate, self.lam)
        _log(log_metric, batch, rewards)
        return _to_list(rewards)


class CriticReward:
    """One critic's support as its own TRL reward function (for `reward_weights`)."""

    def __init__(self, scorer: PanelScorer, critic: str) -> None:
        self.scorer, self.critic = scorer, critic
        self.__name__ = f"critic_{critic}"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 log_metric: Callable[[str, float], None] | None = None,
                 **kwargs: Any) -> list[float | None]:
        batch = self.scorer.score(prompts, completions,
                                  self.scorer._baselines(len(prompts), kwargs))
        col = batch.support[:, batch.critics.index(self.critic)]
        if log_metric is not None and self.critic == batch.critics[0]:
            _log(log_metric, batch, batch.fused("mean"))
        return _to_list(col)


def panel_reward(panel: Any, aggregate: str = "mean", *, lam: float = 1.0, store: Any = None,
                 baseline: str | None = None, baseline_column: str | None = None,
                 batch_size: int = 16, scorer: PanelScorer | None = None) -> PanelReward:
    """The whole panel as one TRL reward function.

    aggregate: "mean" (critic-weighted mean support), "mean_var" (mean - lam * variance
    across critics, damping rewards the critics dispute) or "min" (worst case): the same
    fusions as the `conservative` aggregation method's kinds. "conservative" is the old name of
    "mean_var" (deprecated). Returns None
    for a completion on which every critic abstained. Logs `panel/disagreement` (mean std of
    critic supports), `panel/abstain_rate` and each critic's mean through `log_metric`.
    """
    scorer = scorer or PanelScorer(panel, store=store, baseline=baseline,
                                   baseline_column=baseline_column, batch_size=batch_size)
    return PanelReward(scorer, aggregate, lam)


def critic_rewards(panel: Any, *, store: Any = None, baseline: str | None = None,
                   baseline_column: str | None = None, batch_size: int = 16,
                   scorer: PanelScorer | None = None) -> list[CriticReward]:
    """One reward function per critic, sharing one scorer (one judging pass per batch).

    Pass them as GRPO's `reward_funcs` with `reward_weights` (e.g. the critics' weights) and
    `multi_objective_aggregation`; TRL then logs each critic's reward separately.
    """
    scorer = scorer or PanelScorer(panel, store=store, baseline=baseline,
                                   baseline_column=baseline_column, batch_size=batch_size)
    return [CriticReward(scorer, name) for name in scorer.critics]
