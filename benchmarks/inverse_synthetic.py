"""Inverse constitution on synthetic labels whose generating principles are known.

Each response carries random feature tags (polite, accurate, safe, concise, emoji, formal,
cites, humor). The labeller prefers the response that wins the majority of the three TRUE
principles that tell the two apart (a coin flip on a tie), and 10% of labels are flipped.
Eight candidate principles, one per feature, vote through a rule critic (FunctionBackend):
A or B when exactly one response has the feature, "not relevant" otherwise. Half the pairs are
held out of the selection.

Run: python benchmarks/inverse_synthetic.py   (5 seeds, 160 pairs each; about a minute)
"""

from __future__ import annotations

import random

import pandas as pd

from oversight import Comparison, FunctionBackend
from oversight.governance import (
    candidate_pool,
    infer_constitution,
    labels_from_items,
    principle_from_statement,
    principle_votes,
)

FEATURES = ["polite", "accurate", "safe", "concise", "emoji", "formal", "cites", "humor"]
TRUE = ["accurate", "polite", "safe"]


def synthetic(n: int, seed: int, noise: float = 0.1) -> list[Comparison]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        fa = {f for f in FEATURES if rng.random() < 0.5}
        fb = {f for f in FEATURES if rng.random() < 0.5}
        ra = f"reply {i}a " + " ".join(f"[{f}]" for f in sorted(fa)) + " x" * rng.randint(0, 20)
        rb = f"reply {i}b " + " ".join(f"[{f}]" for f in sorted(fb)) + " x" * rng.randint(0, 20)
        lean = sum((f in fa) - (f in fb) for f in TRUE)
        label = 0 if lean > 0 else 1 if lean < 0 else rng.randint(0, 1)
        if rng.random() < noise:
            label = 1 - label
        items.append(Comparison(f"prompt {i}", (ra, rb), reference=label))
    return items


def feature_rule(ctx):
    feature = next(t[8:] for t in ctx.principle.tags if t.startswith("feature:"))
    a, b = (f"[{feature}]" in r for r in ctx.responses)
    return None if a == b else ("A" if a else "B")


def main() -> None:
    pool = candidate_pool(principles=[
        principle_from_statement(f"Prefer the {f} reply.", f, tags=(f"feature:{f}",))
        for f in FEATURES])
    print("seed  chosen                    held-out agreement [95% CI]: chosen | random 3 "
          "(2.5-97.5%) | full pool | first shown | longer | shorter")
    for seed in range(5):
        items = synthetic(160, seed)
        votes = principle_votes(items, pool, FunctionBackend(feature_rule, name="features"))
        res = infer_constitution(votes, labels_from_items(items), items=items, n=3, pool=pool,
                                 holdout=0.5, seed=seed)
        s = res.summary[res.summary["split"] == "held-out"].set_index("method")

        def fmt(m: str, s: pd.DataFrame = s) -> str:
            r = s.loc[m]
            return f"{r['agreement']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

        print(f"{seed:<5} {','.join(sorted(res.chosen)):<25} {fmt('chosen set')} | "
              f"{fmt('random 3 (mean of 1000)')} | {fmt('full pool')} | "
              f"{fmt('baseline: first shown')} | {fmt('baseline: longer')} | "
              f"{fmt('baseline: shorter')}")


if __name__ == "__main__":
    main()
