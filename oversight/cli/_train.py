"""`oversight revise`, `oversight train MODE`, `oversight serve-reward`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from oversight._deprecated import moved
from oversight.cli._common import console, fail
from oversight.errors import DataError, OversightError

__getattr__ = moved("oversight.cli._train",
                    {"load_training_data": "oversight.train.load_training_data"})

train_app = typer.Typer(no_args_is_help=True,
                        help="Train with TRL on panel data or against the panel as a reward.")


def revise_cmd(
    policy: str = typer.Option("default", help="HF id or local path; 'default' is the embedded "
                                      "SmolLM2-135M-Instruct-Q4_1."),
    constitution: Path = typer.Option(..., help="Constitution TOML file."),
    prompts: Path = typer.Option(..., help=".txt (one per line), .jsonl or .parquet prompts."),
    out: Path = typer.Option(..., help="Directory: revisions.jsonl, sft/ and preference/."),
    rounds: int = typer.Option(1, help="Critique -> revision rounds per prompt."),
    seed: int = typer.Option(0, help="Seed for the principle sampled in each round."),
    max_new_tokens: int = typer.Option(128, help="Tokens per response, critique, revision."),
    limit: int | None = typer.Option(None, help="Only the first N prompts."),
    panel: Path | None = typer.Option(None, help="Panel file: keep a revision only if the "
                                      "panel prefers it to the initial response."),
    batch_size: int = typer.Option(8, help="Prompts per generation call and per save."),
) -> None:
    """SL-CAI: critique and revise the policy's responses; resumable from OUT."""
    from oversight.backends import TransformersBackend
    from oversight.cli._panelfile import load_panel
    from oversight.constitution import load_constitution
    from oversight.data import load_prompts
    from oversight.revise import revise

    try:
        cons = load_constitution(constitution)
        msgs = load_prompts(prompts, limit=limit)
        gate = load_panel(panel) if panel is not None else None
        model = TransformersBackend(policy)
        with _bar("revising") as update:
            run = revise(msgs, model, cons, rounds=rounds, seed=seed,
                         max_new_tokens=max_new_tokens, batch_size=batch_size, panel=gate,
                         store=out / "judgments.sqlite" if gate is not None else None,
                         out=out, progress=update)
        sft, pref = run.sft_dataset(), run.preference_dataset()
        sft.save_to_disk(str(out / "sft"))
        pref.save_to_disk(str(out / "preference"))
    except OversightError as exc:
        fail(exc)
    console.print(f"{len(run.records)} prompts, {len(run.kept())} revisions kept; wrote "
                  f"{out}/revisions.jsonl, {out}/sft ({len(sft)} rows), {out}/preference "
                  f"({len(pref)} rows)", highlight=False)


def _bar(label: str) -> Any:
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    @contextmanager
    def ctx() -> Any:
        with Progress(label, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            task = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)

    return ctx()


_NEEDS = {"sft": ("messages",), "reward": ("chosen", "rejected"),
          "dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion", "label")}


def _offline(mode: str, model: str, data: Path, out: Path, max_steps: int, lr: float,
             batch_size: int, max_length: int, seed: int) -> None:
    from oversight.train import (
        TrainOptions,
        load_training_data,
        train_dpo,
        train_kto,
        train_reward,
        train_sft,
    )

    fmt = {"sft": "sft", "reward": "preference", "dpo": "preference", "kto": "kto"}[mode]
    try:
        ds = load_training_data(data, fmt)
        missing = [c for c in _NEEDS[mode] if c not in ds.column_names]
        if missing:
            raise DataError(str(data), f"`train {mode}` needs column(s) {missing}; found "
                            f"{ds.column_names[:8]} (export with --format {fmt})")
        if len(ds) == 0:
            raise DataError(str(data), "no rows to train on")
        opts = TrainOptions(output_dir=out, max_steps=max_steps, learning_rate=lr,
                            batch_size=batch_size, max_length=max_length, seed=seed)
        fn = {"sft": train_sft, "reward": train_reward, "dpo": train_dpo, "kto": train_kto}[mode]
        trainer = fn(model, ds, opts)
    except (OversightError, ValueError) as exc:
        fail(exc)
    _report(mode, trainer, out, len(ds))


def _report(mode: str, trainer: Any, out: Path, rows: int) -> None:
    hist = [h for h in trainer.state.log_history if "loss" in h]
    last = hist[-1] if hist else {}
    shown = {k: v for k, v in last.items() if k in ("loss", "reward", "rewards/margins",
                                                    "accuracy", "panel/disagreement")}
    console.print(f"train {mode}: {trainer.state.global_step} steps on {rows} rows; last "
                  + ", ".join(f"{k}={float(v):.4g}" for k, v in shown.items())
                  + f"; saved to {out}", highlight=False)


_MODEL = typer.Option("default", help="HF id or local path; 'default' is the embedded "
                                      "SmolLM2-135M-Instruct-Q4_1.")
_OUT = typer.Option(..., help="Output directory (the trained model).")
_STEPS = typer.Option(10, help="Optimizer steps.")
_LR = typer.Option(1e-5, help="Learning rate.")
_BATCH = typer.Option(2, help="Per-device batch size.")
_MAXLEN = typer.Option(512, help="Maximum tokens per example.")
_SEED = typer.Option(0)
_DATA = typer.Option(..., help="Export dir, run dir, revise dir, or TRL .jsonl/.parquet.")


@train_app.command("sft")
def train_sft_cmd(model: str = _MODEL, data: Path = _DATA, out: Path = _OUT,
                  max_steps: int = _STEPS, lr: float = _LR, batch_size: int = _BATCH,
                  max_length: int = _MAXLEN, seed: int = _SEED) -> None:
    """Supervised fine-tuning on panel-preferred responses or revisions (`messages`)."""
    _offline("sft", model, data, out, max_steps, lr, batch_size, max_length, seed)


@train_app.command("reward")
def train_reward_cmd(model: str = _MODEL, data: Path = _DATA, out: Path = _OUT,
                     max_steps: int = _STEPS, lr: float = _LR, batch_size: int = _BATCH,
                     max_length: int = _MAXLEN, seed: int = _SEED) -> None:
    """A reward model on panel preferences (with the panel's margins)."""
    _offline("reward", model, data, out, max_steps, lr, batch_size, max_length, seed)


@train_app.command("dpo")
def train_dpo_cmd(model: str = _MODEL, data: Path = _DATA, out: Path = _OUT,
                  max_steps: int = _STEPS, lr: float = _LR, batch_size: int = _BATCH,
                  max_length: int = _MAXLEN, seed: int = _SEED) -> None:
    """DPO on panel preferences."""
    _offline("dpo", model, data, out, max_steps, lr, batch_size, max_length, seed)


@train_app.command("kto")
def train_kto_cmd(model: str = _MODEL, data: Path = _DATA, out: Path = _OUT,
                  max_steps: int = _STEPS, lr: float = _LR, batch_size: int = _BATCH,
                  max_length: int = _MAXLEN, seed: int = _SEED) -> None:
    """KTO on panel-labelled responses (desirable = preferred)."""
    _offline("kto", model, data, out, max_steps, lr, batch_size, max_length, seed)


def _online(mode: str, model: str, panel: Path, prompts: Path, out: Path, max_steps: int,
            lr: float, batch_size: int, seed: int, num_generations: int,
            max_completion_length: int, aggregate: str, lam: float, per_critic: bool,
            limit: int | None) -> None:
    from datasets import Dataset

    from oversight.cli._panelfile import load_panel
    from oversight.data import load_prompts
    from oversight.train import (
        TrainOptions,
        critic_rewards,
        panel_reward,
        train_grpo,
        train_rloo,
    )

    try:
        p = load_panel(panel)
        rows = Dataset.from_dict({"prompt": load_prompts(prompts, limit=limit)})
        store = out / "judgments.sqlite"
        out.mkdir(parents=True, exist_ok=True)
        if per_critic:
            funcs: Any = critic_rewards(p, store=store)
            weights = [float(c.weight) for c in p.critics]
        else:
            funcs, weights = [panel_reward(p, aggregate, lam=lam, store=store)], None
        opts = TrainOptions(output_dir=out, max_steps=max_steps, learning_rate=lr,
                            batch_size=batch_size, seed=seed)
        fn = train_grpo if mode == "grpo" else train_rloo
        trainer = fn(model, rows, funcs, opts, num_generations=num_generations,
                     max_completion_length=max_completion_length, reward_weights=weights)
    except (OversightError, ValueError) as exc:
        fail(exc)
    _report(mode, trainer, out, len(rows))


_PANEL = typer.Option(..., help="Panel file (Python defining `panel`); it is RUN: trust it.")
_PROMPTS = typer.Option(..., help=".txt, .jsonl or .parquet prompts.")
_GENS = typer.Option(4, help="Completions per prompt (one group, judged together).")
_CLEN = typer.Option(64, help="Maximum completion tokens.")
_AGG = typer.Option("mean", help="Reward fusion over critics: mean | mean_var (mean - lam*var) "
                    "| min ('conservative' is the old name of mean_var).")
_LAM = typer.Option(1.0, help="lam for the mean_var fusion.")
_PER = typer.Option(False, "--per-critic", help="One reward per critic, weighted by the "
                    "critics' weights, instead of one fused panel reward.")
_LIMIT = typer.Option(None, help="Only the first N prompts.")


@train_app.command("grpo")
def train_grpo_cmd(model: str = _MODEL, panel: Path = _PANEL, prompts: Path = _PROMPTS,
                   out: Path = _OUT, max_steps: int = _STEPS, lr: float = _LR,
                   batch_size: int = _BATCH, seed: int = _SEED, num_generations: int = _GENS,
                   max_completion_length: int = _CLEN, aggregate: str = _AGG,
                   lam: float = _LAM, per_critic: bool = _PER, limit: int | None = _LIMIT
                   ) -> None:
    """GRPO with the panel as the reward."""
    _online("grpo", model, panel, prompts, out, max_steps, lr, batch_size, seed,
            num_generations, max_completion_length, aggregate, lam, per_critic, limit)


@train_app.command("rloo")
def train_rloo_cmd(model: str = _MODEL, panel: Path = _PANEL, prompts: Path = _PROMPTS,
                   out: Path = _OUT, max_steps: int = _STEPS, lr: float = _LR,
                   batch_size: int = _BATCH, seed: int = _SEED, num_generations: int = _GENS,
                   max_completion_length: int = _CLEN, aggregate: str = _AGG,
                   lam: float = _LAM, per_critic: bool = _PER, limit: int | None = _LIMIT
                   ) -> None:
    """RLOO with the panel as the reward."""
    _online("rloo", model, panel, prompts, out, max_steps, lr, batch_size, seed,
            num_generations, max_completion_length, aggregate, lam, per_critic, limit)


def serve_reward_cmd(
    panel: Path = typer.Option(..., help="Panel file (Python defining `panel`); it is RUN."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(5000),
    aggregate: str = _AGG,
    lam: float = _LAM,
    store: Path | None = typer.Option(None, help="Judgment store used as a cache."),
    baseline: str | None = typer.Option(None, help="A response every query is compared with "
                                        "(pairwise critics need something to compare)."),
    baseline_from_labels: bool = typer.Option(False, "--baseline-from-labels",
                                              help="Use each request's label as its baseline."),
    abstain_reward: float = typer.Option(0.0, help="Reward sent when the panel abstains."),
) -> None:
    """Serve the panel as a remote reward model (OpenRLHF --remote_rm_url .../get_reward)."""
    from oversight.cli._panelfile import load_panel
    from oversight.serve import serve_reward

    try:
        p = load_panel(panel)
        console.print(f"{p!r} on http://{host}:{port}/get_reward", highlight=False)
        serve_reward(p, host=host, port=port, aggregate=aggregate, lam=lam, store=store,
                     baseline=baseline, baseline_from_labels=baseline_from_labels,
                     abstain_reward=abstain_reward)
    except (OversightError, ValueError) as exc:
        fail(exc)
