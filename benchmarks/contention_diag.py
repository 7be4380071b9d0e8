"""Why the packed judging path degrades under CPU contention: interleaved, in one process.

Runs the same requests (N pairs x 3 critics x P principles x 2 orders) through the packed
and the naive path with torch intra-op threads = each of --threads, round-robin, for
--rounds rounds, optionally under the same fixed competing load as `judging.py
--contention` (one spinning process per core). Prints, per (path, threads), the wall time,
the process CPU time (user + sys) and the context switches, and once (quiet, before the
spinners start) the number of aten ops per judgment of each path (each op is at most one
OpenMP parallel region, so this counts barriers).

Settings read before torch starts (OMP_WAIT_POLICY, GOMP_SPINCOUNT) cannot change in a
process; run this script once per setting, alternately, e.g.

  python benchmarks/contention_diag.py --contention
  OMP_WAIT_POLICY=PASSIVE python benchmarks/contention_diag.py --contention
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from oversight import Critic, TransformersBackend, load_comparisons
from oversight.constitution import builtin

DATA = Path("/work/shared/data/hh_harmless_dev.jsonl")


def usage() -> tuple[float, int, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw, r.ru_nivcsw


def count_ops(backend: TransformersBackend, requests: list) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        backend.score_choices(requests)
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--principles", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--contention", action="store_true")
    ap.add_argument("--no-malloc-tuning", action="store_true")
    args = ap.parse_args()

    base = TransformersBackend(tune_malloc=not args.no_malloc_tuning)
    base.load()
    kw = dict(model_obj=base.model, tokenizer=base.tokenizer, model_id=base.model_id,
              tune_malloc=not args.no_malloc_tuning)
    paths = {"packed": TransformersBackend(prefix_sharing=True, **kw),
             "naive": TransformersBackend(prefix_sharing=False, **kw)}
    items = load_comparisons(args.data, limit=args.pairs)
    critics = [Critic(builtin(n), paths["packed"], principles=args.principles, swap=True)
               for n in ("harmlessness", "helpfulness", "honesty")]
    requests = [r for c in critics for r in c.prepare(c.tasks(items)).requests]
    n = len(requests)
    threads = [int(t) for t in args.threads.split(",")]
    print(f"{n} judgments; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} "
          f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')} "
          f"malloc tuning={'off' if args.no_malloc_tuning else 'on'}", flush=True)
    for name, b in paths.items():
        b.score_choices(requests[:2])  # warm-up
        torch.set_num_threads(threads[0])
        print(f"  {name}: {count_ops(b, requests) / n:.0f} aten ops per judgment", flush=True)

    spinners = []
    if args.contention:
        spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
        spinners = [subprocess.Popen([sys.executable, "-c", spin])
                    for _ in range(os.cpu_count() or 2)]
    wall: dict[tuple[str, int], float] = defaultdict(float)
    cpu: dict[tuple[str, int], float] = defaultdict(float)
    vol: dict[tuple[str, int], int] = defaultdict(int)
    invol: dict[tuple[str, int], int] = defaultdict(int)
    try:
        for k in range(args.rounds):
            # rotate the order so neither config always runs first after a switch
            configs = [(p, t) for t in threads for p in paths]
            configs = configs[k % len(configs):] + configs[:k % len(configs)]
            for p, t in configs:
                torch.set_num_threads(t)
                c0, v0, i0 = usage()
                t0 = time.perf_counter()
                paths[p].score_choices(requests)
                wall[p, t] += time.perf_counter() - t0
                c1, v1, i1 = usage()
                cpu[p, t] += c1 - c0
                vol[p, t] += v1 - v0
                invol[p, t] += i1 - i0
            print(f"  round {k + 1}/{args.rounds}: " + ", ".join(
                f"{p}@{t} {wall[p, t]:.1f}s" for p, t in sorted(wall)), flush=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    print(f"\n{'path':<8}{'threads':>8}{'wall s':>9}{'cpu s':>9}{'cpu/wall':>9}"
          f"{'vol cs':>9}{'invol cs':>9}")
    for p, t in sorted(wall):
        print(f"{p:<8}{t:>8}{wall[p, t]:>9.1f}{cpu[p, t]:>9.1f}{cpu[p, t] / wall[p, t]:>9.2f}"
              f"{vol[p, t]:>9}{invol[p, t]:>9}")
    for t in threads:
        print(f"threads={t}: naive/packed = {wall['naive', t] / wall['packed', t]:.2f}x")
    print(f"packed 1 thread / {threads[0]} threads = "
          f"{wall['packed', threads[0]] / wall['packed', 1]:.2f}x, naive "
          f"{wall['naive', threads[0]] / wall['naive', 1]:.2f}x" if 1 in threads else "")


if __name__ == "__main__":
    main()
