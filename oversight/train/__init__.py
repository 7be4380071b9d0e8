"""Training under checks-and-balances feedback, through TRL 1.x.

Exports of panel results to TRL datasets (preference, KTO, SFT), the panel as online reward
functions (GRPO, RLOO), and thin trainer wrappers. TRL and datasets are imported only when a
function needs them.
"""

from oversight._deprecated import moved
from oversight.panel._scorer import AGGREGATES
from oversight.train._datasets import load_training_data
from oversight.train._export import (
    FORMATS,
    export_dataset,
    kto_dataset,
    load_run,
    preference_dataset,
    preference_frame,
    sft_dataset,
)
from oversight.train._reward import (
    CriticReward,
    PanelReward,
    critic_rewards,
    panel_reward,
)
from oversight.train._trainers import (
    TRAINERS,
    TrainOptions,
    resolve_model,
    train_dpo,
    train_grpo,
    train_kto,
    train_reward,
    train_rloo,
    train_sft,
)

__all__ = [
    "AGGREGATES",
    "FORMATS",
    "TRAINERS",
    "CriticReward",
    "PanelReward",
    "TrainOptions",
    "critic_rewards",
    "export_dataset",
    "kto_dataset",
    "load_run",
    "load_training_data",
    "panel_reward",
    "preference_dataset",
    "preference_frame",
    "resolve_model",
    "sft_dataset",
    "train_dpo",
    "train_grpo",
    "train_kto",
    "train_reward",
    "train_rloo",
    "train_sft",
]

__getattr__ = moved("oversight.train", {
    "MODES": "oversight.train.TRAINERS",
    "PanelScorer": "oversight.panel.PanelScorer",
    "ScoredBatch": "oversight.panel.ScoredBatch",
    "completion_text": "oversight.panel.completion_text",
})
