"""One short GPU run: judgments/s for the transformers backend on CUDA, and vLLM if present.

Run on a GPU machine:  python benchmarks/gpu_check.py [--pairs 16]
Prints one BENCH line per backend; the baseline is the transformers backend without prefix
sharing, on the same GPU, in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from oversight import Critic, TransformersBackend, load_comparisons
from oversight.backends import default_model_path
from oversight.constitution import builtin

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_harmless_dev.jsonl"


def judge_rate(backend, items, principles: int) -> tuple[float, int]:
    critics = [Critic(builtin(n), backend, principles=principles)
               for n in ("harmlessness", "helpfulness", "honesty")]
    requests = [r for c in critics for r in c.prepare(c.tasks(items)).requests]
    backend.score_choices(requests[:4])  # warm-up
    t0 = time.perf_counter()
    backend.score_choices(requests)
    return time.perf_counter() - t0, len(requests)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--principles", type=int, default=8)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    items = load_comparisons(DATA, limit=args.pairs)
    path = str(default_model_path())
    print(torch.cuda.get_device_name(0))
    naive = TransformersBackend(path, device="cuda", prefix_sharing=False, max_batch=64,
                                batch_tokens=65536)
    shared = TransformersBackend(path, device="cuda", prefix_sharing=True, max_batch=64,
                                 batch_tokens=65536)
    base_s, n = judge_rate(naive, items, args.principles)
    ours_s, _ = judge_rate(shared, items, args.principles)
    print(f"transformers cuda: naive {n / base_s:.1f} judgments/s, shared-prefix "
          f"{n / ours_s:.1f} judgments/s")
    print(f"BENCH workload=gpu_transformers ours_s={ours_s:.3f} baseline_s={base_s:.3f} "
          f"ratio={base_s / ours_s:.2f} check=judgments:{n}")
    if importlib.util.find_spec("vllm") is not None:
        from oversight.backends import VLLMBackend

        v = VLLMBackend(path, gpu_memory_utilization=0.5)
        v_s, _ = judge_rate(v, items, args.principles)
        print(f"vllm: {n / v_s:.1f} judgments/s")
        print(f"BENCH workload=gpu_vllm ours_s={v_s:.3f} baseline_s={base_s:.3f} "
              f"ratio={base_s / v_s:.2f} check=judgments:{n}")
    else:
        print("vllm not installed: skipped")


if __name__ == "__main__":
    main()
