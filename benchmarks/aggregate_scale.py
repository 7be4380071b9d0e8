"""Aggregation at scale: this tree's vote, Dawid-Skene, Bradley-Terry and disagreement flags
against a baseline commit's, on the same judgments, interleaved, in wall and CPU seconds.

The judgments are `benchmarks/overhead.py`'s workload (tests/scale_workload.py: 3 function
critics x 2 principles, one a veto, x both orders, with abstentions and errors), judged once
without a store and pickled. Each round runs the baseline (the package exported from
`--baseline` with `git archive`) and then this tree, each in a fresh process; a process warms
up on the first 1,000 items, then times each method once. Reported: seconds per 10^6
judgments, wall (`perf_counter`, inflated by other load on a shared machine) and CPU
(`time.process_time`, the comparable figure). Prints per method and round, then
  BENCH workload=aggregate_scale judgments=... aggregate_s_per_million=... cpu_s_per_million=...
        ratio=...
with the slowest method's figures for this tree; ratio = baseline CPU s / this tree's CPU s
for that method (medians over rounds).

Run:  nice -n 19 python benchmarks/aggregate_scale.py --size 1e6 --baseline 480e0e9 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("vote", "ds", "bt", "flags")


def make(n_judgments: int, path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import scale_workload as W

    items = W.items(max(1, round(n_judgments / W.JUDGMENTS_PER_ITEM)))
    panel = W.panel()
    with tempfile.TemporaryDirectory() as tmp:
        frame = panel.judge(items, store=Path(tmp) / "run", batch_size=256).judgments
    with open(path, "wb") as f:
        pickle.dump((frame, items, panel.rules), f)


def child(path: Path) -> dict:
    from oversight.aggregate import aggregate
    from oversight.aggregate._rules import disagreement_flags

    with open(path, "rb") as f:
        frame, items, rules = pickle.load(f)
    warm = set(it.id for it in items[:1000])
    small = frame[frame["item_id"].isin(warm)]
    out: dict = {"judgments": len(frame)}
    for rows, its in ((small, items[:1000]), (frame, items)):
        for m in METHODS:
            t0, c0 = time.perf_counter(), time.process_time()
            if m == "flags":
                disagreement_flags(rows, [it.id for it in its], rules)
            else:
                aggregate(rows, its, method=m)
            out[m] = (time.perf_counter() - t0, time.process_time() - c0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=1e6, help="judgments")
    ap.add_argument("--baseline", default="main", help="git ref of the baseline package")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "frame.pkl"
        make(int(args.size), data)
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "oversight"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {"baseline": base, "this": ROOT}
        res: dict[str, list[dict]] = {k: [] for k in trees}
        for r in range(args.rounds):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                proc = subprocess.run([sys.executable, __file__, "--child", str(data)],
                                      env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{name}: child failed\n{proc.stderr[-3000:]}")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                res[name].append(out)
                n = out["judgments"]
                print(f"round {r} {name:>8}: " + "  ".join(
                    f"{m} {out[m][0] * 1e6 / n:.2f}s wall {out[m][1] * 1e6 / n:.2f}s cpu"
                    for m in METHODS) + "  (per 10^6 judgments)", flush=True)
    n = res["this"][0]["judgments"]

    def med(name: str, m: str, i: int) -> float:
        return statistics.median(o[m][i] for o in res[name]) * 1e6 / n

    for m in METHODS:
        print(f"{m:>6}: baseline {med('baseline', m, 0):.2f} wall {med('baseline', m, 1):.2f} "
              f"cpu -> this {med('this', m, 0):.2f} wall {med('this', m, 1):.2f} cpu "
              f"(s per 10^6; cpu ratio {med('baseline', m, 1) / med('this', m, 1):.1f}x)")
    worst = max(METHODS, key=lambda m: med("this", m, 1))
    print(f"BENCH workload=aggregate_scale judgments={n} method={worst} "
          f"aggregate_s_per_million={med('this', worst, 0):.2f} "
          f"cpu_s_per_million={med('this', worst, 1):.2f} "
          f"ratio={med('baseline', worst, 1) / med('this', worst, 1):.2f}")


if __name__ == "__main__":
    main()
