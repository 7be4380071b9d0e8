"""Aggregation speed against the reference libraries, each measured in this same run.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/aggregation.py

Workloads, in order: bt_pairwise, bt_large, bt_batched, bt_global (benchmarks/_bt_workloads.py)
and dawid_skene, krippendorff_alpha (benchmarks/_ds_workloads.py). Each prints a readable
table row and one machine-checkable line:
  BENCH workload=<name> ours_s=<s> baseline_s=<s> ratio=<baseline/ours> check=<what>:<value>
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bt_workloads import WORKLOADS as BT  # noqa: E402
from _ds_workloads import WORKLOADS as DS  # noqa: E402


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def main() -> None:
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("note: run with OPENBLAS_NUM_THREADS=1 for comparable figures", file=sys.stderr)
    only = set(sys.argv[1:])
    rows = []
    for fn in [*BT, *DS]:
        if only and fn.__name__ not in only:
            continue
        r = fn()
        rows.append(r)
        ratio = (r["baseline_s"] / r["ours_s"]) if r.get("baseline_s") else None
        print(f"BENCH workload={r['workload']} ours_s={r['ours_s']:.4f} "
              f"baseline_s={fmt(r.get('baseline_s'))} ratio={fmt(ratio)} check={r['check']}",
              flush=True)
    print()
    print(f"{'workload':<20}{'ours s':>10}{'baseline s':>12}{'ratio':>9}  check")
    for r in rows:
        ratio = (r["baseline_s"] / r["ours_s"]) if r.get("baseline_s") else None
        print(f"{r['workload']:<20}{r['ours_s']:>10.4f}{fmt(r.get('baseline_s')):>12}"
              f"{fmt(ratio):>9}  {r['check']}")


if __name__ == "__main__":
    main()
