"""Judging throughput: naive full prompts against shared-prefix KV reuse, on SmolLM2.

Setup: the embedded SmolLM2-135M-Instruct, a panel of 3 critics (harmlessness, helpfulness,
honesty) sharing the model, all 8 principles each, both orders, over the first N pairs of
../shared/data/hh_harmless_dev.jsonl.

  naive      one full prompt per judgment (as TRL's former HfPairwiseJudge did), batched by
             length with left padding -- a stronger baseline than one prompt at a time;
  optimized  the item prefix (chat header, conversation, both responses) runs once per item
             and order, followed in the same packed sequence by every critic's principle
             questions as suffixes that attend to it (cascade attention): several items per
             forward, no padding, no KV cache;
  floor      one forward pass over just the unique tokens: each shared prefix once and each
             suffix once as its own sequence (no attention back to the prefix, so the floor is
             slightly optimistic and the efficiency figure conservative).

The paths are timed interleaved over chunks of --chunk pairs, so machine load that comes
and goes during the run affects all three alike.

--contention starts one process per core that spins for the whole run (a fixed competing
load), so both paths are timed while the cores are shared; --threads sets torch's intra-op
threads (default 2), to separate thread oversubscription from the rest.

Run:  python benchmarks/judging.py [--pairs 32] [--principles 8] [--chunk 8]
      python benchmarks/judging.py --pairs 4 --principles 2 --chunk 2 --contention [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from oversight import Critic, TransformersBackend, load_comparisons
from oversight.constitution import builtin

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_harmless_dev.jsonl"


def probs(results):
    out = []
    for r in results:
        m = max(r.logprobs)
        e = [math.exp(v - m) for v in r.logprobs]
        out.append(e[0] / sum(e))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--principles", type=int, default=8)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--chunk", type=int, default=8, help="pairs per interleaved chunk")
    ap.add_argument("--contention", action="store_true",
                    help="run one spinning process per core for the whole run")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spinners = []
    if args.contention:
        # Each spins until its parent is gone, so none outlives an interrupted run.
        spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
        spinners = [subprocess.Popen([sys.executable, "-c", spin])
                    for _ in range(os.cpu_count() or 2)]
    try:
        run(args)
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def run(args: argparse.Namespace) -> None:

    base = TransformersBackend()
    base.load()
    model, tok = base.model, base.tokenizer
    naive = TransformersBackend(model_obj=model, tokenizer=tok, model_id=base.model_id,
                                prefix_sharing=False)
    shared = TransformersBackend(model_obj=model, tokenizer=tok, model_id=base.model_id,
                                 prefix_sharing=True)
    items = load_comparisons(args.data, limit=args.pairs)
    critics = [Critic(builtin(n), shared, principles=args.principles, swap=True)
               for n in ("harmlessness", "helpfulness", "honesty")]
    # Requests chunk by chunk of pairs (every critic, principle and order of those pairs).
    chunks = [[r for c in critics for r in c.prepare(c.tasks(items[i:i + args.chunk])).requests]
              for i in range(0, len(items), max(1, args.chunk))]
    requests = [r for part in chunks for r in part]
    n = len(requests)
    print(f"{len(items)} pairs x 3 critics x {args.principles} principles x 2 orders = "
          f"{n} judgments", flush=True)

    # Warm-up (first-call allocations), not timed.
    naive.score_choices(requests[:2])
    shared.score_choices(requests[:2])

    # The three paths run interleaved, chunk by chunk of pairs, so a change in machine load
    # during the run (2 shared cores) hits all three alike instead of whichever ran then.
    ours = baseline = floor = 0.0
    got, want = [], []
    total_tokens = unique_tokens = 0
    for k, part in enumerate(chunks):
        t0 = time.perf_counter()
        got += shared.score_choices(part)
        ours += time.perf_counter() - t0
        t0 = time.perf_counter()
        want += naive.score_choices(part)
        baseline += time.perf_counter() - t0

        # Floor: the unique tokens, each once, in length-bucketed batches.
        seqs = [shared.render(r.prompt) for r in part]
        groups = shared._prefix_groups(seqs, [[len(s) - 1] for s in seqs])
        unique: list[list[int]] = []
        for p, members in groups:
            if p == 0:
                unique.extend(seqs[m] for m in members)
            else:
                unique.append(seqs[members[0]][:p])
                unique.extend(seqs[m][p:] for m in members)
        t0 = time.perf_counter()
        for batch in shared._batches([len(u) for u in unique]):
            shared._forward_last([unique[i] for i in batch],
                                 [[len(unique[i]) - 1] for i in batch])
        floor += time.perf_counter() - t0
        total_tokens += sum(len(s) for s in seqs)
        unique_tokens += sum(len(u) for u in unique)
        print(f"  chunk {k + 1}/{len(chunks)}: optimized {ours:.1f} s, naive {baseline:.1f} s,"
              f" floor {floor:.1f} s (cumulative)", flush=True)
    max_dp = max(abs(a - b) for a, b in zip(probs(got), probs(want)))

    print()
    print(f"{'path':<12}{'seconds':>10}{'judgments/s':>14}{'tokens':>10}")
    print(f"{'naive':<12}{baseline:>10.1f}{n / baseline:>14.2f}{total_tokens:>10}")
    print(f"{'optimized':<12}{ours:>10.1f}{n / ours:>14.2f}{unique_tokens:>10}")
    print(f"{'floor':<12}{floor:>10.1f}{n / floor:>14.2f}{unique_tokens:>10}")
    print(f"ratio naive/optimized = {baseline / ours:.2f}x; efficiency floor/optimized = "
          f"{floor / ours:.2f}; max |dP| = {max_dp:.2e}")
    print(f"BENCH workload=judging{'_contention' if args.contention else ''} ours_s={ours:.3f} "
          f"baseline_s={baseline:.3f} ratio={baseline / ours:.2f} efficiency={floor / ours:.2f} "
          f"max_abs_dp={max_dp:.2e} threads={args.threads}")


if __name__ == "__main__":
    main()
