"""Framework overhead: function critics (no model), so every second measured is the framework's.

The workload (tests/scale_workload.py): 3 function critics x 2 principles (one a veto) x both
orders = 12 judgments per item, with abstentions and errors. For each size (judgments), in a
fresh subprocess so peak RSS is that size's own:

  judge      `panel.judge(items, store=dir)`: plan, judge, and commit every row to SQLite (WAL);
  floor      the same rows, read back from that store beforehand, written to a fresh store with
             one `executemany` per batch of `commit_rows` rows (one transaction each): the cost
             of the store alone. Measured in the same process right after `judge`, twice
             (before and after a second read), and averaged. ratio = judge s / floor s;
  aggregate  vote, Dawid-Skene, Bradley-Terry and the disagreement flags over the run's
             working table (`PanelResult.working_table()`, the columns aggregation reads, as
             `PanelResult.aggregate` reads them), each reported as seconds per million
             judgments (the BENCH line also gives the slowest one's CPU seconds);
  cpu        the same two timings in this process's CPU seconds (time.process_time), which
             other load on a shared machine inflates far less than wall time;
  peak RSS   the child's maximum resident set (ru_maxrss), covering judge and aggregation.

Prints one table row per size and, at the largest size run,
  BENCH workload=overhead judgments_per_s=... aggregate_s_per_million=... peak_rss_mib=...
        ratio=...
where aggregate_s_per_million is the slowest of the four aggregations.

With --ray N it instead judges N judgments with the critics on 3 local Ray actors and prints
the driver's CPU microseconds and peak memory per run (ratio = driver CPU s / wall s: the
share of one core the driver needs to keep up).

Run:  nice -n 19 python benchmarks/overhead.py [--sizes 1e4,1e5,1e6] [--no-aggregate]
      nice -n 19 python benchmarks/overhead.py --ray 1e5
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def floor_write(src_db: Path, dst: Path, commit_rows: int) -> tuple[float, float, int]:
    """Copy every judgment row of `src_db` into a fresh store, one executemany per batch.
    Only the writes are timed; the reads that feed them are not."""
    import sqlite3

    from oversight.critics import JUDGMENT_COLUMNS
    from oversight.store import JudgmentStore
    from oversight.store._store import INSERT_SQL

    cols = ", ".join(f'"{c}"' for c in JUDGMENT_COLUMNS)
    src = sqlite3.connect(src_db)
    cur = src.execute(f"SELECT {cols} FROM judgments ORDER BY rowid")
    spent, cpu, n = 0.0, 0.0, 0
    with JudgmentStore(dst) as db:
        con = db._db
        while rows := cur.fetchmany(commit_rows):
            t0, c0 = time.perf_counter(), time.process_time()
            con.execute("BEGIN IMMEDIATE")
            con.executemany(INSERT_SQL, rows)
            con.execute("COMMIT")
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
            n += len(rows)
    src.close()
    return spent, cpu, n


def ray_child(n_judgments: int) -> dict:
    """The same run with the critics on a local Ray session (one actor per function backend,
    3 actors, 1 CPU each): how much CPU and memory the driver spends per judgment while the
    actors judge. Only the driver's own CPU seconds are counted (time.process_time)."""
    import os

    import ray
    import scale_workload as W

    from oversight.panel import RayExecutor

    n_items = max(1, round(n_judgments / W.JUDGMENTS_PER_ITEM))
    items = W.items(n_items)
    panel = W.panel()
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    out: dict = {"items": n_items}
    with tempfile.TemporaryDirectory() as tmp, RayExecutor() as ex:
        ex.start(panel.critics)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0, c0 = time.perf_counter(), time.process_time()
        result = panel.judge(items, store=Path(tmp) / "run", batch_size=256, executor=ex)
        out["judge_s"] = time.perf_counter() - t0
        out["driver_cpu_s"] = time.process_time() - c0
        out["judgments"] = len(result)
        out["actors"] = len(ex.actors)
        out["units"] = ex.stats["units_done"]
    out["driver_rss_before_mib"] = rss0
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ray.shutdown()
    return out


def child(n_judgments: int, aggregate: bool, no_floor: bool = False) -> dict:
    import scale_workload as W

    from oversight.aggregate import aggregate as run_aggregate
    from oversight.aggregate._rules import disagreement_flags

    n_items = max(1, round(n_judgments / W.JUDGMENTS_PER_ITEM))
    items = W.items(n_items)
    panel = W.panel()
    out: dict = {"items": n_items}
    with tempfile.TemporaryDirectory(dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None
                                     ) as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = panel.judge(items, store=Path(tmp) / "run", batch_size=256)
        out["judge_s"] = time.perf_counter() - t0
        out["judge_cpu_s"] = time.process_time() - c0
        out["judgments"] = n = len(result)
        out["judge_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        floors, floor_cpu = [], []
        for k in range(0 if no_floor else 2):
            s, c, rows = floor_write(result.source.db_path, Path(tmp) / f"floor{k}.sqlite",
                                     8192)
            assert rows == n, (rows, n)
            floors.append(s)
            floor_cpu.append(c)
        out["floor_s"] = sum(floors) / len(floors) if floors else float("nan")
        out["floor_cpu_s"] = sum(floor_cpu) / len(floor_cpu) if floors else float("nan")
        if aggregate:
            # what PanelResult.aggregate reads: the working columns, text dictionary-encoded
            # batch by batch (not the full table with raw outputs and reasons)
            t0 = time.perf_counter()
            frame = result.working_table()
            out["read_s"] = time.perf_counter() - t0
            ids = [it.id for it in items]
            for method in ("vote", "ds", "bt", "flags"):
                t0, c0 = time.perf_counter(), time.process_time()
                if method == "flags":
                    disagreement_flags(frame, ids, panel.rules)
                else:
                    run_aggregate(frame, items, method=method)
                out[f"{method}_s"] = time.perf_counter() - t0
                out[f"{method}_cpu_s"] = time.process_time() - c0
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="judgments per run, comma-separated")
    ap.add_argument("--no-aggregate", action="store_true", help="time judge and floor only")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the executemany floor (e.g. at 1e7, for the memory figure)")
    ap.add_argument("--ray", type=float, help="instead: judge this many judgments on Ray "
                    "actors and report the driver's CPU and memory per judgment")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child), not args.no_aggregate, args.no_floor)))
        return
    if args.ray:
        r = ray_child(int(args.ray))
        n = r["judgments"]
        print(json.dumps(r))
        print(f"BENCH workload=overhead_ray judgments={n} actors={r['actors']} "
              f"judgments_per_s={n / r['judge_s']:.0f} "
              f"driver_cpu_us_per_judgment={r['driver_cpu_s'] * 1e6 / n:.1f} "
              f"driver_rss_mib={r['peak_rss_mib']:.0f} "
              f"ratio={r['driver_cpu_s'] / r['judge_s']:.2f}")
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print("wall seconds (the machine is shared: see the CPU columns too)")
    print(f"{'judgments':>10} {'judge s':>8} {'judg/s':>8} {'floor s':>8} {'ratio':>6} "
          f"{'cpu/s':>8} {'cpu ratio':>9} "
          f"{'vote':>6} {'ds':>6} {'bt':>6} {'flags':>6} {'(s per 1e6)':>11} {'RSS MiB':>8}")
    last = None
    for size in sizes:
        cmd = [sys.executable, __file__, "--child", str(size)]
        if args.no_aggregate:
            cmd.append("--no-aggregate")
        if args.no_floor:
            cmd.append("--no-floor")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"size {size}: child failed")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print("# " + json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in r.items()}), flush=True)
        n = r["judgments"]
        per_m = {m: r.get(f"{m}_s", float("nan")) * 1e6 / n for m in ("vote", "ds", "bt", "flags")}
        r["per_million"] = per_m
        r["rate"] = n / r["judge_s"]
        r["ratio"] = r["judge_s"] / r["floor_s"]
        r["cpu_rate"] = n / r["judge_cpu_s"]
        r["cpu_ratio"] = r["judge_cpu_s"] / r["floor_cpu_s"]
        print(f"{n:>10} {r['judge_s']:>8.2f} {r['rate']:>8.0f} {r['floor_s']:>8.2f} "
              f"{r['ratio']:>6.2f} {r['cpu_rate']:>8.0f} {r['cpu_ratio']:>9.2f} "
              f"{per_m['vote']:>6.2f} {per_m['ds']:>6.2f} {per_m['bt']:>6.2f} "
              f"{per_m['flags']:>6.2f} {'':>11} {r['peak_rss_mib']:>8.0f}", flush=True)
        last = r
    agg = max(last["per_million"].values())
    agg_cpu = max(last.get(f"{m}_cpu_s", float("nan")) for m in ("vote", "ds", "bt", "flags")
                  ) * 1e6 / last["judgments"]
    print(f"BENCH workload=overhead judgments={last['judgments']} "
          f"judgments_per_s={last['rate']:.0f} aggregate_s_per_million={agg:.2f} "
          f"aggregate_cpu_s_per_million={agg_cpu:.2f} "
          f"peak_rss_mib={last['peak_rss_mib']:.0f} ratio={last['ratio']:.2f} "
          f"judgments_per_cpu_s={last['cpu_rate']:.0f} cpu_ratio={last['cpu_ratio']:.2f}")


if __name__ == "__main__":
    main()
