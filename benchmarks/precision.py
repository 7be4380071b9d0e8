"""bf16 against fp32 on CPU: accuracy cost and speed, on the dev data.

Both precisions judge the same tasks (3 critics x 1 sampled principle x 2 orders over the first
N pairs of ../shared/data/hh_harmless_dev.jsonl). Prints the mean and max absolute change in
P(first is better), the panel's agreement with the human `chosen` label under each precision
(95% Wilson intervals), and the time ratio.

Run:  python benchmarks/precision.py [--pairs 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from oversight import Critic, Panel, TransformersBackend, load_comparisons
from oversight.constitution import builtin

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_harmless_dev.jsonl"


def run(dtype: str, items):
    backend = TransformersBackend(dtype=dtype)
    backend.load()
    panel = Panel([Critic(builtin(n), backend, principles=1)
                   for n in ("harmlessness", "helpfulness", "honesty")])
    panel.judge(items[:1])  # warm-up
    t0 = time.perf_counter()
    result = panel.judge(items)
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(2)
    items = load_comparisons(DATA, limit=args.pairs)
    r32, t32 = run("float32", items)
    r16, t16 = run("bfloat16", items)
    key = ["item_id", "critic", "principle", "order"]
    j = r32.judgments.merge(r16.judgments, on=key, suffixes=("_32", "_16"))
    dp = np.abs(j["value_32"].astype(float) - j["value_16"].astype(float))
    flips = (np.sign(j["value_32"] - 0.5) != np.sign(j["value_16"] - 0.5)).mean()
    print(f"{len(j)} judgments; mean |dP| = {dp.mean():.4f}, max |dP| = {dp.max():.4f}, "
          f"verdict flips = {flips:.3f}")
    for name, r in (("fp32", r32), ("bf16", r16)):
        a = r.agreement().set_index("critic").loc["panel"]
        print(f"{name}: panel agreement with human labels {a['agreement']:.3f} "
              f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}] (n={a['n']})")
    print(f"time fp32 {t32:.1f} s, bf16 {t16:.1f} s")
    print(f"BENCH workload=bf16 ours_s={t16:.3f} baseline_s={t32:.3f} ratio={t32 / t16:.2f} "
          f"check=mean_abs_dp:{dp.mean():.4f}")


if __name__ == "__main__":
    main()
