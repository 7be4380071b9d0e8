"""The overoptimization harness under GRPO: train against each proxy, watch the gold.

For each objective, a fresh copy of the initial policy trains with TRL's GRPOTrainer (with
`oversight.train.train_grpo`'s CPU-friendly defaults) on one reward function,
`ObjectiveReward`: each completion is judged against the prompt's baseline by the proxy panel
(through the store) and fused by the objective. Every `eval_every` steps (and at step 0 and
the end) the policy samples `eval_samples` completions for each fixed held-out prompt; we record

  kl     the Monte Carlo KL(policy || initial policy) on those samples: the mean over samples of
         sum_t [log pi(y_t | x, y_<t) - log pi_0(y_t | x, y_<t)] (unbiased for the sequence KL)
  gold   the gold objective of the samples (never optimized against)
  proxy  the objective being optimized

with percentile-bootstrap intervals over held-out prompts, into grpo.csv, and each objective's
hacking gap (gold at its peak step minus gold at the last) into overopt.json's "grpo" entry.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.data import Comparison
from oversight.experiments._bon import bootstrap_means, hacking_gap
from oversight.experiments._objectives import (
    Objective,
    objective_values,
    parse_objective,
    score_samples,
)
from oversight.experiments._overopt import (
    DEFAULT_BASELINE,
    FORMAT_VERSION,
    RUN_FILE,
    OveroptPrompt,
    _as_prompts,
    _json_default,
)


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return "".join(str(m.get("content", "")) for m in completion)


def _prompt_of(prompt: Any) -> str | tuple[dict[str, str], ...]:
    if isinstance(prompt, str):
        return prompt
    return tuple(dict(m) for m in prompt)


class ObjectiveReward:
    """A TRL reward function: the proxy panel's objective for each completion (None when no
    critic answered). Reads the dataset's `reference` and `baseline` columns when present."""

    def __init__(self, panel: Any, objective: str | Objective, *, store: Any = None,
                 baseline: str = DEFAULT_BASELINE, batch_size: int = 64) -> None:
        self.panel, self.objective = panel, parse_objective(objective)
        self.store, self.baseline, self.batch_size = store, baseline, batch_size
        self.__name__ = f"overopt_{self.objective.name}"

    def items(self, prompts: Sequence[Any], texts: Sequence[str],
              references: Sequence[str | None] | None = None,
              baselines: Sequence[str | None] | None = None) -> list[list[Comparison]]:
        refs = references or [None] * len(texts)
        bases = baselines or [None] * len(texts)
        return [[Comparison(_prompt_of(p), (t, b or self.baseline), meta={"reference": r})]
                for p, t, r, b in zip(prompts, texts, refs, bases)]

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 log_metric: Callable[[str, float], None] | None = None,
                 **kwargs: Any) -> list[float | None]:
        items = self.items(prompts, [_text(c) for c in completions], kwargs.get("reference"),
                           kwargs.get("baseline"))
        scores = score_samples(self.panel, items, store=self.store, batch_size=self.batch_size)
        vals = objective_values(self.objective, scores)[:, 0]
        if log_metric is not None:
            for c, name in enumerate(scores.critics):
                col = scores.support[:, 0, c]
                if not np.isnan(col).all():
                    log_metric(f"proxy/{name}", float(np.nanmean(col)))
        return [None if math.isnan(v) else float(v) for v in vals]


def sample_with_kl(model: Any, ref: Any, tokenizer: Any, prompts: Sequence[OveroptPrompt],
                   k: int, max_new_tokens: int, seed: int) -> tuple[list[list[str]], np.ndarray]:
    """k sampled completions per prompt from `model`, and per (prompt, sample) the log-ratio
    sum_t log pi(y_t) - log pi_0(y_t) over the completion's tokens ([P, k])."""
    import torch

    texts: list[list[str]] = []
    ratios = np.zeros((len(prompts), k))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
        tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    try:
        for i, p in enumerate(prompts):
            enc = tokenizer.apply_chat_template(list(p.messages), add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
            ids = enc["input_ids"].repeat(k, 1)
            mask = torch.ones_like(ids)
            torch.manual_seed(seed + i)
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True,
                                     temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, pad_token_id=pad)
                new = out[:, ids.shape[1]:]
                keep = torch.ones_like(new, dtype=torch.bool)
                for r in range(new.shape[0]):  # tokens after the first EOS are not sampled
                    eos = (new[r] == tokenizer.eos_token_id).nonzero()
                    if len(eos):
                        keep[r, int(eos[0]) + 1:] = False
                full_mask = torch.cat([mask, keep.long()], dim=1)
                lp = _token_logprobs(model, out, full_mask)[:, ids.shape[1] - 1:]
                lp0 = _token_logprobs(ref, out, full_mask)[:, ids.shape[1] - 1:]
                ratios[i] = ((lp - lp0) * keep).sum(1).cpu().numpy()
            texts.append([tokenizer.decode(new[r][keep[r]], skip_special_tokens=True)
                          for r in range(k)])
    finally:
        model.train(was_training)
    return texts, ratios


def _token_logprobs(model: Any, ids: Any, mask: Any) -> Any:
    """log p(ids[:, t+1] | ids[:, :t+1]) for t = 0..T-2."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]


class _Evaluator:
    """Evaluates the policy on held-out prompts at chosen steps (a TRL TrainerCallback)."""

    def __init__(self, objective: Objective, ref: Any, tokenizer: Any,
                 eval_prompts: list[OveroptPrompt], proxy: Any, gold: Any,
                 gold_objective: Objective, reward: ObjectiveReward, every: int, k: int,
                 max_new_tokens: int, seed: int, n_boot: int, store: Any) -> None:
        self.objective, self.ref, self.tok = objective, ref, tokenizer
        self.prompts, self.proxy, self.gold = eval_prompts, proxy, gold
        self.gobj = gold_objective
        self.reward, self.every, self.k = reward, every, k
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.n_boot, self.store = n_boot, store
        self.rows: list[dict[str, Any]] = []
        self.per_prompt_gold: list[np.ndarray] = []
        self.done_steps: set[int] = set()

    def evaluate(self, model: Any, step: int) -> None:
        if step in self.done_steps:
            return
        self.done_steps.add(step)
        texts, ratios = sample_with_kl(model, self.ref, self.tok, self.prompts, self.k,
                                       self.max_new_tokens, self.seed)
        items = [[Comparison(p.prompt, (t, p.baseline or self.reward.baseline),
                             meta={"reference": p.reference}) for t in row]
                 for p, row in zip(self.prompts, texts)]
        proxy = objective_values(self.objective, score_samples(self.proxy, items,
                                                               store=self.store))
        gold = objective_values(self.gobj, score_samples(self.gold, items, store=self.store))
        per_gold = np.nanmean(gold, axis=1)
        self.per_prompt_gold.append(per_gold)
        gm, glo, ghi = bootstrap_means(per_gold[:, None], self.n_boot, self.seed)
        pm, plo, phi = bootstrap_means(np.nanmean(proxy, axis=1)[:, None], self.n_boot,
                                       self.seed)
        km, klo, khi = bootstrap_means(ratios.mean(1)[:, None], self.n_boot, self.seed)
        kl = max(float(km[0]), 0.0)
        self.rows.append({"objective": self.objective.name, "spec": self.objective.spec,
                          "step": step, "kl": float(km[0]), "kl_lo": float(klo[0]),
                          "kl_hi": float(khi[0]), "sqrt_kl": math.sqrt(kl),
                          "gold": float(gm[0]), "gold_lo": float(glo[0]),
                          "gold_hi": float(ghi[0]), "proxy": float(pm[0]),
                          "proxy_lo": float(plo[0]), "proxy_hi": float(phi[0])})

    def callback(self) -> Any:
        from transformers import TrainerCallback

        ev = self

        class OveroptCallback(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                ev.evaluate(kw["model"], 0)

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if state.global_step % ev.every == 0:
                    ev.evaluate(kw["model"], state.global_step)

            def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                ev.evaluate(kw["model"], state.global_step)

        return OveroptCallback()


def _grpo_trainer(model: Any, data: Any, reward: Any, tokenizer: Any, callback: Any, *,
                  output_dir: Path, steps: int, learning_rate: float, batch_size: int,
                  seed: int, num_generations: int, max_completion_length: int,
                  config: dict[str, Any]) -> Any:
    """TRL's GRPOTrainer with the CPU-friendly defaults of `oversight.train.train_grpo` (fp32,
    no checkpointing or reporting; the batch holds whole groups). Built here, not through
    `oversight.train`, because the layers contract keeps sibling layers apart."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    if num_generations < 2:
        raise ValueError(f"num_generations={num_generations} must be >= 2: group-relative "
                         "advantages need several completions per prompt")
    batch = max(batch_size, num_generations)
    batch -= batch % num_generations
    args = dict(output_dir=str(output_dir), max_steps=steps, learning_rate=learning_rate,
                per_device_train_batch_size=batch, seed=seed, logging_steps=1,
                report_to="none", save_strategy="no", bf16=False,
                gradient_checkpointing=False, use_cpu=not torch.cuda.is_available(),
                dataloader_num_workers=0, disable_tqdm=True, num_generations=num_generations,
                max_completion_length=max_completion_length, temperature=1.0)
    return GRPOTrainer(model=model, reward_funcs=[reward], args=GRPOConfig(**{**args, **config}),
                       train_dataset=data, processing_class=tokenizer, callbacks=[callback])


def grpo_overopt(model: Any, tokenizer: Any, prompts: Sequence[Any],
                 eval_prompts: Sequence[Any], *, proxy: Any, gold: Any,
                 objectives: Sequence[str | Objective], run_dir: str | Path,
                 gold_objective: str | Objective = "mean", steps: int = 20,
                 eval_every: int = 5, eval_samples: int = 4, num_generations: int = 4,
                 batch_size: int = 8, max_completion_length: int = 48,
                 learning_rate: float = 1e-5, baseline: str = DEFAULT_BASELINE,
                 seed: int = 0, n_boot: int = 1000, config: dict[str, Any] | None = None,
                 progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """GRPO against each proxy objective from the same initial `model` (a transformers model
    object, copied per objective; it is never trained itself). Returns grpo.csv's table."""
    from datasets import Dataset

    if eval_every < 1:
        raise ValueError(f"eval_every={eval_every} must be >= 1")
    if isinstance(model, (str, Path)):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(model), trust_remote_code=False)
    objs = [parse_objective(o) for o in objectives]
    gobj = parse_objective(gold_objective)
    clash = {c.name for c in proxy.critics} & {c.name for c in gold.critics}
    if clash:
        raise ValueError(f"critic(s) {sorted(clash)} are in both the proxy and the gold panel")
    train_p, eval_p = _as_prompts(prompts), _as_prompts(eval_prompts)
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    store = rd / "judgments.sqlite"
    data = Dataset.from_dict({
        "prompt": [list(p.messages) for p in train_p],
        "reference": [p.reference or "" for p in train_p],
        "baseline": [p.baseline or baseline for p in train_p]})
    ref = copy.deepcopy(model).eval()
    for prm in ref.parameters():
        prm.requires_grad_(False)
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for o in objs:
        policy = copy.deepcopy(model).train()
        reward = ObjectiveReward(proxy, o, store=store, baseline=baseline)
        ev = _Evaluator(o, ref, tokenizer, eval_p, proxy, gold, gobj, reward, eval_every,
                        eval_samples, max_completion_length, seed, n_boot, store)
        trainer = _grpo_trainer(policy, data, reward, tokenizer, ev.callback(),
                                output_dir=rd / "grpo" / o.name, steps=steps,
                                learning_rate=learning_rate, batch_size=batch_size, seed=seed,
                                num_generations=num_generations,
                                max_completion_length=max_completion_length,
                                config=config or {})
        trainer.train()
        ev.evaluate(trainer.model, trainer.state.global_step)
        rows.extend(ev.rows)
        gap = hacking_gap(np.stack(ev.per_prompt_gold, axis=1), n_boot, seed)
        steps_done = [r["step"] for r in ev.rows]
        gap["peak_step"] = steps_done[int(gap.pop("peak_index"))]
        gap["gold_first"] = ev.rows[0]["gold"]
        gap["proxy_first"], gap["proxy_last"] = ev.rows[0]["proxy"], ev.rows[-1]["proxy"]
        gap["kl_last"] = ev.rows[-1]["kl"]
        summary[o.name] = gap
        if progress:
            progress(f"GRPO {o.name}: {steps} steps, gold {gap['gold_first']:.4f} -> "
                     f"{gap['gold_last']:.4f}, proxy {gap['proxy_first']:.4f} -> "
                     f"{gap['proxy_last']:.4f} ({time.perf_counter() - t0:.0f} s)")
        del policy, trainer
    table = pd.DataFrame(rows)
    table.to_csv(rd / "grpo.csv", index=False)
    path = rd / RUN_FILE
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {
        "format": "oversight-overopt", "version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": {},
        "summary": {}}
    doc["grpo"] = {"objectives": {o.name: o.spec for o in objs}, "gold_objective": gobj.spec,
                   "steps": steps, "eval_every": eval_every, "eval_samples": eval_samples,
                   "eval_prompts": len(eval_p), "train_prompts": len(train_p),
                   "num_generations": num_generations, "learning_rate": learning_rate,
                   "seconds": time.perf_counter() - t0, "summary": summary,
                   "note": f"GRPO for {steps} steps per objective from one initial policy; "
                           f"gold, proxy and KL on {len(eval_p)} held-out prompts x "
                           f"{eval_samples} samples every {eval_every} steps."}
    path.write_text(json.dumps(doc, indent=2, default=_json_default), encoding="utf-8")
    return table
