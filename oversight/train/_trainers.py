"""Thin wrappers over TRL 1.x trainers that wire in our datasets and reward functions.

Each `train_*` builds the TRL config from `TrainOptions` (CPU-friendly defaults: fp32, no
gradient checkpointing, no reporting), runs `trainer.train()` and returns the trainer. Anything
else TRL's config accepts goes in `TrainOptions.config`. Users who drive TRL themselves need
only the building blocks: `preference_dataset`, `kto_dataset`, `sft_dataset`, `panel_reward`,
`critic_rewards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The trainers (`oversight train NAME`); a critic's judging modes are `oversight.critics.MODES`.
TRAINERS = ("sft", "reward", "dpo", "kto", "grpo", "rloo")


@dataclass
class TrainOptions:
    """What every mode shares. `config` overrides or adds any field of the TRL config."""

    output_dir: str | Path
    max_steps: int = 10
    learning_rate: float = 1e-5
    batch_size: int = 2
    seed: int = 0
    max_length: int = 512
    logging_steps: int = 1
    save: bool = True
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps} must be >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")


def resolve_model(model: Any) -> Any:
    """'default' (or DEFAULT_MODEL) -> the embedded default model's converted folder; any other
    string or object as is."""
    from oversight.backends._default_model import default_model_path, is_default

    if isinstance(model, str) and is_default(model):
        return str(default_model_path())
    return str(model) if isinstance(model, Path) else model


def _config(cls: Any, opts: TrainOptions, **defaults: Any) -> Any:
    base = dict(output_dir=str(opts.output_dir), max_steps=opts.max_steps,
                learning_rate=opts.learning_rate, per_device_train_batch_size=opts.batch_size,
                seed=opts.seed, logging_steps=opts.logging_steps, report_to="none",
                save_strategy="no", bf16=False, gradient_checkpointing=False,
                use_cpu=_no_gpu(), dataloader_num_workers=0, disable_tqdm=True)
    return cls(**{**base, **defaults, **opts.config})


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def _finish(trainer: Any, opts: TrainOptions) -> Any:
    trainer.train()
    if opts.save:
        trainer.save_model(str(opts.output_dir))
    return trainer


def _offline(kind: str, model: Any, dataset: Any, opts: TrainOptions, tokenizer: Any) -> Any:
    """TRL's `<kind>Config` and `<kind>Trainer` on a fixed dataset, then train (and save)."""
    import trl

    cfg = _config(getattr(trl, f"{kind}Config"), opts, max_length=opts.max_length)
    trainer = getattr(trl, f"{kind}Trainer")(model=resolve_model(model), args=cfg,
                                             train_dataset=dataset, processing_class=tokenizer)
    return _finish(trainer, opts)


def train_sft(model: Any, dataset: Any, opts: TrainOptions, tokenizer: Any = None) -> Any:
    """Supervised fine-tuning on `messages` rows (panel-preferred responses, revisions)."""
    return _offline("SFT", model, dataset, opts, tokenizer)


def train_reward(model: Any, dataset: Any, opts: TrainOptions, tokenizer: Any = None) -> Any:
    """A reward model on preference rows; the panel's `margin` enters TRL's margin loss."""
    return _offline("Reward", model, dataset, opts, tokenizer)


def train_dpo(model: Any, dataset: Any, opts: TrainOptions, tokenizer: Any = None) -> Any:
    """Direct preference optimisation on preference rows."""
    return _offline("DPO", model, dataset, opts, tokenizer)


def train_kto(model: Any, dataset: Any, opts: TrainOptions, tokenizer: Any = None) -> Any:
    """KTO on unpaired rows (panel-preferred = desirable)."""
    return _offline("KTO", model, dataset, opts, tokenizer)


def _rl_defaults(opts: TrainOptions, num_generations: int, max_completion_length: int,
                 reward_weights: Sequence[float] | None, temperature: float) -> dict[str, Any]:
    if num_generations < 2:
        raise ValueError(f"num_generations={num_generations} must be >= 2: group-relative "
                         "advantages need several completions per prompt")
    batch = max(opts.batch_size, num_generations)
    batch -= batch % num_generations
    return dict(per_device_train_batch_size=batch, num_generations=num_generations,
                max_completion_length=max_completion_length, temperature=temperature,
                reward_weights=list(reward_weights) if reward_weights is not None else None)


def train_grpo(model: Any, prompts: Any, reward_funcs: Any, opts: TrainOptions, *,
               num_generations: int = 4, max_completion_length: int = 64,
               reward_weights: Sequence[float] | None = None, temperature: float = 1.0,
               tokenizer: Any = None, callbacks: Sequence[Any] | None = None) -> Any:
    """GRPO against reward functions (`panel_reward(panel)` or `critic_rewards(panel)`).

    The batch is rounded to a multiple of `num_generations`, so it holds whole groups.
    """
    from trl import GRPOConfig, GRPOTrainer

    cfg = _config(GRPOConfig, opts, **_rl_defaults(opts, num_generations,
                                                   max_completion_length, reward_weights,
                                                   temperature))
    return _finish(GRPOTrainer(model=resolve_model(model), reward_funcs=reward_funcs, args=cfg,
                               train_dataset=prompts, processing_class=tokenizer,
                               callbacks=list(callbacks or [])), opts)


def train_rloo(model: Any, prompts: Any, reward_funcs: Any, opts: TrainOptions, *,
               num_generations: int = 4, max_completion_length: int = 64,
               reward_weights: Sequence[float] | None = None, temperature: float = 1.0,
               tokenizer: Any = None, callbacks: Sequence[Any] | None = None) -> Any:
    """RLOO (leave-one-out baseline) against reward functions."""
    from trl import RLOOConfig, RLOOTrainer

    cfg = _config(RLOOConfig, opts, **_rl_defaults(opts, num_generations,
                                                   max_completion_length, reward_weights,
                                                   temperature))
    return _finish(RLOOTrainer(model=resolve_model(model), reward_funcs=reward_funcs, args=cfg,
                               train_dataset=prompts, processing_class=tokenizer,
                               callbacks=list(callbacks or [])), opts)
