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

--contention adds a fixed competing load: one process per core that spins (a busy loop, no
memory traffic) while the paths are timed. `--contention both` times every chunk twice in
one run, first all chunks on the quiet machine (spinners stopped with SIGSTOP), then all
again under the load (SIGCONT), and prints a table and a BENCH line for each plus how much
each path slowed down. --threads: "auto" (the backend's default, num_threads=None: each
forward pass runs with the thread count measured fastest lately, see
oversight/backends/_threads.py) or a fixed count for every path (2 = the old behaviour).

Run:  python benchmarks/judging.py [--pairs 32] [--principles 8] [--chunk 8]
      python benchmarks/judging.py --pairs 4 --principles 2 --chunk 2 --contention both
      python benchmarks/judging.py --pairs 4 --principles 2 --chunk 2 --contention both --threads 2
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from oversight import Critic, TransformersBackend, load_comparisons
from oversight.constitution import builtin

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_harmless_dev.jsonl"
if not DATA.exists():  # a git worktree under /work/wt/<name> rather than /work/main
    DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh_harmless_dev.jsonl"


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
    ap.add_argument("--contention", nargs="?", const="on", default="off",
                    choices=("off", "on", "both"),
                    help="time under one spinning process per core ('both': quiet, then "
                         "under the load, in one run)")
    ap.add_argument("--threads", default="auto",
                    help="torch intra-op threads: 'auto' (measured per forward) or a count")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="leave glibc malloc's thresholds alone (tune_malloc=False)")
    args = ap.parse_args()
    threads = None if args.threads == "auto" else int(args.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    spinners = []
    if args.contention != "off":
        # Each spins until its parent is gone, so none outlives an interrupted run.
        spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
        spinners = [subprocess.Popen([sys.executable, "-c", spin])
                    for _ in range(os.cpu_count() or 2)]

    def load(on: bool) -> None:
        for p in spinners:
            p.send_signal(signal.SIGCONT if on else signal.SIGSTOP)

    phases = {"off": [False], "on": [True], "both": [False, True]}[args.contention]
    try:
        load(phases[0])
        run(args, threads, phases, load)
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def run(args: argparse.Namespace, threads: int | None, phases: list[bool], load) -> None:
    tune = not args.no_malloc_tuning
    base = TransformersBackend(num_threads=threads, tune_malloc=tune)
    base.load()
    model, tok = base.model, base.tokenizer
    naive = TransformersBackend(model_obj=model, tokenizer=tok, model_id=base.model_id,
                                prefix_sharing=False, num_threads=threads, tune_malloc=tune)
    shared = TransformersBackend(model_obj=model, tokenizer=tok, model_id=base.model_id,
                                 prefix_sharing=True, num_threads=threads, tune_malloc=tune)
    items = load_comparisons(args.data, limit=args.pairs)
    critics = [Critic(builtin(n), shared, principles=args.principles, swap=True)
               for n in ("harmlessness", "helpfulness", "honesty")]
    # Requests chunk by chunk of pairs (every critic, principle and order of those pairs).
    chunks = [[r for c in critics for r in c.prepare(c.tasks(items[i:i + args.chunk])).requests]
              for i in range(0, len(items), max(1, args.chunk))]
    requests = [r for part in chunks for r in part]
    n = len(requests)
    print(f"{len(items)} pairs x 3 critics x {args.principles} principles x 2 orders = "
          f"{n} judgments; threads={args.threads}; malloc tuning {'on' if tune else 'off'}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}", flush=True)

    # Warm-up (first-call allocations), not timed.
    naive.score_choices(requests[:2])
    shared.score_choices(requests[:2])

    seconds: dict[bool, tuple[float, float, float]] = {}
    for contended in phases:
        load(contended)
        label = "under contention" if contended else "quiet"
        ours, baseline, floor, max_dp, total, unique = time_paths(chunks, shared, naive, label)
        seconds[contended] = (ours, baseline, floor)
        print(f"\n{label}:")
        print(f"{'path':<12}{'seconds':>10}{'judgments/s':>14}{'tokens':>10}")
        print(f"{'naive':<12}{baseline:>10.1f}{n / baseline:>14.2f}{total:>10}")
        print(f"{'optimized':<12}{ours:>10.1f}{n / ours:>14.2f}{unique:>10}")
        print(f"{'floor':<12}{floor:>10.1f}{n / floor:>14.2f}{unique:>10}")
        print(f"ratio naive/optimized = {baseline / ours:.2f}x; efficiency floor/optimized = "
              f"{floor / ours:.2f}; max |dP| = {max_dp:.2e}")
        tuned = {k: dict(t.uses) for k, t in shared.thread_tuners.items()}
        if tuned:
            print(f"passes per thread count (optimized backend, cumulative): {tuned}")
        print(f"BENCH workload=judging{'_contention' if contended else ''} ours_s={ours:.3f} "
              f"baseline_s={baseline:.3f} ratio={baseline / ours:.2f} "
              f"efficiency={floor / ours:.2f} max_abs_dp={max_dp:.2e} threads={args.threads} "
              f"malloc_tuning={int(tune)}",
              flush=True)
    if len(seconds) == 2:
        (q_ours, q_base, _), (c_ours, c_base, _) = seconds[False], seconds[True]
        print(f"\nslowdown under contention: optimized {c_ours / q_ours:.2f}x, naive "
              f"{c_base / q_base:.2f}x; ratio naive/optimized {q_base / q_ours:.2f}x quiet, "
              f"{c_base / c_ours:.2f}x under contention")
        print(f"BENCH workload=judging_slowdown ours_s={c_ours / q_ours:.3f} "
              f"baseline_s={c_base / q_base:.3f} ratio={(c_base / q_base) / (c_ours / q_ours):.2f}"
              f" threads={args.threads}")


def time_paths(chunks, shared, naive, label: str):
    """The three paths interleaved chunk by chunk of pairs, so that a change in machine load
    during the run (2 shared cores) hits all three alike instead of whichever ran then."""
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
        print(f"  {label} chunk {k + 1}/{len(chunks)}: optimized {ours:.1f} s, naive "
              f"{baseline:.1f} s, floor {floor:.1f} s (cumulative)", flush=True)
    max_dp = max(abs(a - b) for a, b in zip(probs(got), probs(want)))
    return ours, baseline, floor, max_dp, total_tokens, unique_tokens


if __name__ == "__main__":
    main()
