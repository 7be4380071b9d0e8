"""Training under panel feedback on SmolLM2-135M, two figures with same-run baselines.

A. GRPO with the panel as the reward. Three critics (harmlessness, helpfulness, honesty; one
   sampled principle each, pointwise 1-10 scores rescaled to [0, 1]) judge the policy's
   completions through `critic_rewards(panel)` (one TRL reward per critic, weights 1/3 each,
   so the total is the panel mean). Before and after training, the policy answers a fixed
   set of prompts greedily and the panel scores those answers: the step-0 policy is the
   baseline. The per-step training log gives the per-critic trend and the disagreement (std of
   the critics' rewards per completion).
B. A reward model trained on the panel's preferences from an existing judged run
   (runs/hh: HH harmless pairs judged by panels/checks_and_balances.py). Agreement with the
   panel on a held-out split and with the human `chosen` labels, against the same model with
   its untrained reward head (the baseline) and chance (0.5).

Run (a few minutes on 2 CPU cores):
  OVERSIGHT_CACHE=/tmp/ovcache nice -n 19 python benchmarks/grpo_panel.py
"""

from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _first_user_turns(data: Path, n: int, seed: int) -> list[list[dict[str, str]]]:
    from oversight.data import load_comparisons

    items = list(load_comparisons(data))
    firsts = sorted({it.messages[0]["content"].strip() for it in items
                     if it.messages and 10 < len(it.messages[0]["content"]) < 120})
    random.Random(seed).shuffle(firsts)
    return [[{"role": "user", "content": t}] for t in firsts[:n]]


def grpo_part(args: argparse.Namespace, model_path: str) -> None:
    from datasets import Dataset

    from oversight import Critic, Panel, TransformersBackend, load_constitution
    from oversight.backends import ChatPrompt
    from oversight.panel import PanelScorer
    from oversight.train import TrainOptions, critic_rewards, train_grpo

    judge = TransformersBackend(model_path)  # a frozen copy: the policy trains separately
    panel = Panel([Critic(load_constitution(REPO / "constitutions" / f"{n}.toml"), judge,
                          mode="score", principles=1, seed=0)
                   for n in ("harmlessness", "helpfulness", "honesty")], name="grpo_panel")
    prompts = _first_user_turns(args.data, args.prompts, args.seed)
    store = Path(tempfile.mkdtemp()) / "reward.sqlite"
    scorer = PanelScorer(panel, store=store)

    def evaluate(model_obj, tok, label: str):
        policy = TransformersBackend(model_obj=model_obj, tokenizer=tok, model_id=label)
        gens = policy.generate([ChatPrompt(tuple(p)) for p in prompts],
                               max_new_tokens=args.completion_tokens)
        batch = scorer.score(prompts, [g.text for g in gens])
        return batch, [g.text for g in gens]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    policy = AutoModelForCausalLM.from_pretrained(model_path)
    t0 = time.perf_counter()
    before, texts_before = evaluate(policy.eval(), tok, "policy-step0")
    funcs = critic_rewards(panel, store=store)
    opts = TrainOptions(output_dir=tempfile.mkdtemp(), max_steps=args.steps,
                        learning_rate=args.lr, batch_size=args.generations * 2,
                        seed=args.seed, save=False)
    trainer = train_grpo(policy.train(), Dataset.from_dict({"prompt": prompts}), funcs, opts,
                         num_generations=args.generations,
                         max_completion_length=args.completion_tokens,
                         reward_weights=[1 / 3] * 3, tokenizer=tok)
    after, texts_after = evaluate(trainer.model.eval(), tok, "policy-trained")
    seconds = time.perf_counter() - t0

    names = before.critics
    print(f"\nA. GRPO, {args.steps} steps x {args.generations * 2} completions "
          f"({args.generations} per prompt), lr {args.lr}, {seconds:.0f} s")
    print("per-step training log (sampled completions):")
    print("  step  reward  " + "  ".join(f"{n[:6]:>6}" for n in names) + "  disagree")
    logs = [h for h in trainer.state.log_history if "reward" in h]
    for h in logs:
        per = [h.get(f"rewards/critic_{n}/mean", math.nan) for n in names]
        print(f"  {int(h.get('step', 0)):>4}  {h['reward']:.4f}  "
              + "  ".join(f"{v:6.3f}" for v in per)
              + f"  {h.get('panel/disagreement', math.nan):.4f}")
    print(f"fixed {len(prompts)} prompts, greedy answers scored by the panel "
          "(step 0 = baseline):")
    print("                 step0    last   last/step0")
    for label, b, a in [("panel mean", before.fused("mean"), after.fused("mean")),
                        *[(n, before.support[:, c], after.support[:, c])
                          for c, n in enumerate(names)],
                        ("disagreement", before.disagreement(), after.disagreement())]:
        mb, ma = float(_nanmean(b)), float(_nanmean(a))
        print(f"  {label:<13} {mb:7.4f} {ma:7.4f}   {ma / mb if mb else math.nan:7.3f}")
    changed = sum(x != y for x, y in zip(texts_before, texts_after))
    print(f"  greedy answers that changed: {changed}/{len(prompts)}")
    mb, ma = float(_nanmean(before.fused("mean"))), float(_nanmean(after.fused("mean")))
    print(f"BENCH workload=grpo_panel_reward ours={ma:.4f} baseline={mb:.4f} "
          f"ratio={ma / mb:.3f}")
    first, last = logs[0], logs[-1]
    print(f"BENCH workload=grpo_train_reward_first_vs_last ours={last['reward']:.4f} "
          f"baseline={first['reward']:.4f} ratio={last['reward'] / first['reward']:.3f}")


def _nanmean(x) -> float:
    import numpy as np

    return float(np.nanmean(x)) if not np.isnan(x).all() else math.nan


def reward_model_part(args: argparse.Namespace, model_path: str) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from oversight.train import TrainOptions, load_run, preference_dataset, train_reward

    result = load_run(args.run)
    prefs = preference_dataset(result).shuffle(seed=args.seed)
    n_test = max(1, int(len(prefs) * args.test_share))
    test, train = prefs.select(range(n_test)), prefs.select(range(n_test, len(prefs)))
    items = {it.id: it for it in result.items}
    tok = AutoTokenizer.from_pretrained(model_path)
    torch.manual_seed(args.seed)
    rm = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    rm.config.pad_token_id = tok.pad_token_id

    def score(model, prompt, response) -> float:
        text = tok.apply_chat_template([*prompt, {"role": "assistant", "content": response}],
                                       tokenize=False)
        enc = tok(text, return_tensors="pt", truncation=True, max_length=args.max_length,
                  add_special_tokens=False)
        with torch.inference_mode():
            return float(model(**enc).logits[0, 0])

    def agreement(model):
        model.eval()
        panel_hits = human_hits = human_n = 0
        for row in test:
            it = items[row["item_id"]]
            s = [score(model, row["prompt"], r) for r in it.responses]
            rm_pick = int(s[1] > s[0])
            panel_hits += int(rm_pick == row["chosen_index"])
            if it.reference is not None:
                human_n += 1
                human_hits += int(rm_pick == it.reference)
        return panel_hits / len(test), human_hits / max(human_n, 1), human_n

    t0 = time.perf_counter()
    base_panel, base_human, n_h = agreement(rm)
    opts = TrainOptions(output_dir=tempfile.mkdtemp(), max_steps=args.rm_steps,
                        learning_rate=args.rm_lr, batch_size=4, seed=args.seed,
                        max_length=args.max_length, save=False)
    train_reward(rm.train(), train, opts, tokenizer=tok)
    rm_panel, rm_human, _ = agreement(rm)
    seconds = time.perf_counter() - t0
    panel_human = sum(int(items[r["item_id"]].reference == r["chosen_index"]) for r in test
                      if items[r["item_id"]].reference is not None) / max(n_h, 1)
    print(f"\nB. reward model on panel preferences from {args.run}: {len(train)} train / "
          f"{len(test)} held-out pairs, {args.rm_steps} steps x 4, {seconds:.0f} s")
    print("                      trained  untrained  chance")
    print(f"  agree with panel     {rm_panel:7.3f}  {base_panel:9.3f}   0.500")
    print(f"  agree with humans    {rm_human:7.3f}  {base_human:9.3f}   0.500   "
          f"(the panel itself: {panel_human:.3f}; n={n_h})")
    print(f"BENCH workload=rm_agree_panel ours={rm_panel:.3f} baseline={base_panel:.3f} "
          f"ratio={rm_panel / base_panel if base_panel else math.nan:.3f} "
          f"vs_chance={rm_panel / 0.5:.3f}")
    print(f"BENCH workload=rm_agree_human ours={rm_human:.3f} baseline={base_human:.3f} "
          f"ratio={rm_human / base_human if base_human else math.nan:.3f} "
          f"vs_chance={rm_human / 0.5:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/hh_harmless_dev.jsonl")
    ap.add_argument("--run", type=Path, default=REPO / "runs/hh")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--completion-tokens", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--rm-steps", type=int, default=30)
    ap.add_argument("--rm-lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=["grpo", "rm"], default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    from oversight.backends import default_model_path

    model_path = str(default_model_path())
    if args.skip != "rm":
        reward_model_part(args, model_path)
    if args.skip != "grpo":
        grpo_part(args, model_path)


if __name__ == "__main__":
    main()
