"""The store's write path alone: the same judgment rows, in two orders, under two settings.

The rows are those of benchmarks/overhead.py's workload (3 function critics x 2 principles x
both orders), judged once into a temporary store and read back. Each variant then writes all
of them into a fresh store with one `executemany` per 8,192 rows, one transaction each (as
`Panel.judge` commits), and the final checkpoint is timed too:

  order     given: items in the order the workload lists them (random content-hash ids), the
            order `Panel.judge` wrote before issue 17; key: item-id order, as it writes now;
  settings  sqlite: 4 KiB pages, 2 MiB page cache, checkpoint every 1,000 WAL pages (SQLite's
            defaults, what every store had before); store: `JudgmentStore`'s own settings.

Variants run in turn, each in a fresh subprocess, `--rounds` times. Prints CPU and wall
seconds per variant (median over rounds), then
  BENCH workload=store_write rows=... ratio=...
where ratio = CPU of (given, sqlite) / CPU of (key, store): the old write path over the new.

Run:  nice -n 19 python benchmarks/store_write.py [--size 1e6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
VARIANTS = [("given", "sqlite"), ("given", "store"), ("key", "sqlite"), ("key", "store")]
COMMIT_ROWS = 8192


def make_rows(n_judgments: int, out: Path) -> int:
    """Judge the workload once and pickle its rows in the two orders."""
    import scale_workload as W

    from oversight.critics import JUDGMENT_COLUMNS

    items = W.items(max(1, round(n_judgments / W.JUDGMENTS_PER_ITEM)))
    with tempfile.TemporaryDirectory() as tmp:
        W.panel().judge(items, store=Path(tmp) / "run", batch_size=256)
        cols = ", ".join(f'"{c}"' for c in JUDGMENT_COLUMNS)
        con = sqlite3.connect(Path(tmp) / "run" / "judgments.sqlite")
        rows = con.execute(f"SELECT {cols} FROM judgments ORDER BY rowid").fetchall()
        con.close()
    rank = {it.id: n for n, it in enumerate(items)}
    given = sorted(rows, key=lambda r: rank[r[0]])  # stable: critics stay interleaved
    key = sorted(rows, key=lambda r: r[0])
    with open(out, "wb") as fh:
        pickle.dump({"given": given, "key": key}, fh)
    return len(rows)


def write(rows_file: Path, order: str, settings: str) -> dict:
    from oversight.store import JudgmentStore
    from oversight.store._store import INSERT_SQL

    with open(rows_file, "rb") as fh:
        rows = pickle.load(fh)[order]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "judgments.sqlite"
        if settings == "sqlite":
            con = sqlite3.connect(path)
            con.execute("PRAGMA page_size = 4096")
            con.execute("PRAGMA journal_mode = WAL")
            con.close()
        db = JudgmentStore(path)
        if settings == "sqlite":
            db._db.execute("PRAGMA cache_size = -2000")
            db._db.execute("PRAGMA wal_autocheckpoint = 1000")
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(rows), COMMIT_ROWS):
            db._db.execute("BEGIN IMMEDIATE")
            db._db.executemany(INSERT_SQL, rows[start:start + COMMIT_ROWS])
            db._db.execute("COMMIT")
        db.close()  # the final checkpoint
        return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                "rows": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=1e6, help="judgments (rows) to write")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(write(Path(args.child[0]), args.child[1], args.child[2])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.pickle"
        n = make_rows(int(args.size), rows_file)
        got: dict[tuple[str, str], list[dict]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for order, settings in VARIANTS:
                proc = subprocess.run([sys.executable, __file__, "--child", str(rows_file),
                                       order, settings], capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{order}/{settings}: child failed")
                got[(order, settings)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{n} rows, {COMMIT_ROWS} per transaction, median of {args.rounds} round(s)")
    print(f"{'order':>6} {'settings':>8} {'cpu s':>7} {'wall s':>7} {'cpu us/row':>10}")
    med = {}
    for v in VARIANTS:
        cpu = statistics.median(r["cpu_s"] for r in got[v])
        wall = statistics.median(r["wall_s"] for r in got[v])
        med[v] = cpu
        print(f"{v[0]:>6} {v[1]:>8} {cpu:>7.2f} {wall:>7.2f} {cpu * 1e6 / n:>10.2f}")
    print(f"BENCH workload=store_write rows={n} old_cpu_s={med[('given', 'sqlite')]:.2f} "
          f"new_cpu_s={med[('key', 'store')]:.2f} "
          f"ratio={med[('given', 'sqlite')] / med[('key', 'store')]:.2f}")


if __name__ == "__main__":
    main()
