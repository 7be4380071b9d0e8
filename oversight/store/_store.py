"""JudgmentStore: an SQLite (WAL) cache of judgments, keyed for resumable runs.

The key is (critic fingerprint, item id, principle, order). Every batch of judgments is written
in one transaction, so a run killed at any point (even SIGKILL) keeps whole batches or nothing;
a rerun computes only the keys that are missing or ended in `error`. Values are plain SQL
columns and JSON text: nothing is ever unpickled. Concurrent writers wait on SQLite's lock
(busy timeout) instead of failing, and a whole judging run holds the store's run lock
(`run_lock`): a second run on the same store says who holds it and waits, then resumes, so two
runs never compute the same judgments twice. The lock is an OS file lock, released by the
kernel when its holder dies, even by SIGKILL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oversight.critics import JUDGMENT_COLUMNS, Judgment
from oversight.data import Comparison
from oversight.errors import OversightError, StoreBusyError

SCHEMA_VERSION = 1
_KEY = ("fingerprint", "item_id", "principle", "order")
_COLS = ", ".join(f'"{c}"' for c in JUDGMENT_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in JUDGMENT_COLUMNS)
_UPDATES = ", ".join(f'"{c}" = excluded."{c}"' for c in JUDGMENT_COLUMNS if c not in _KEY)


INSERT_SQL = (f"INSERT INTO judgments ({_COLS}) VALUES ({_PLACEHOLDERS}) "
              f'ON CONFLICT (fingerprint, item_id, principle, "order") DO UPDATE SET '
              f"{_UPDATES} WHERE judgments.status = 'error'")
_HELD: dict[str, int] = {}  # lock paths this process holds, with a re-entry count
# Write-path settings (issue 17; benchmarks/store_write.py): 16 KiB pages for a new store (an
# existing store keeps its page size), a 64 MiB page cache (SQLite's 2 MiB default is outgrown
# by the key index near 10^5 rows) and 64 MiB of WAL between automatic checkpoints (the default
# 4 MiB checkpointed, with its fsyncs, after nearly every large commit). On 10^6 rows written
# 8,192 per transaction: 15% less CPU in random key order, 7% less CPU and 18% less wall time
# in key order, as `Panel.judge` writes them now.
PAGE_SIZE = 16384
CACHE_KIB = 65536
WAL_CHECKPOINT_BYTES = 64 << 20


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_store(run_dir: str | Path) -> Path:
    """The SQLite store of a run directory written by `oversight judge` (or the file itself)."""
    run_dir = Path(run_dir)
    db_path = run_dir / "judgments.sqlite" if run_dir.is_dir() else run_dir
    if not db_path.exists():
        raise OversightError(f"{run_dir}: no judgments.sqlite here; run `oversight judge` "
                             "with --out pointing at this directory first")
    return db_path


@contextmanager
def run_lock(db_path: str | Path, *, wait: bool = True,
             notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive run lock of the store at `db_path` (a `<db>.lock` file beside it).

    If another process holds it, `notify` gets one line naming that process, then this call
    blocks until the lock is free (or raises `StoreBusyError` with `wait=False`). Re-entrant
    within a process. Where `fcntl` is missing (Windows) it only relies on SQLite's locking.
    """
    lock_path = str(Path(f"{db_path}.lock").resolve())
    if _HELD.get(lock_path):
        _HELD[lock_path] += 1
        try:
            yield
        finally:
            _HELD[lock_path] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            message = (f"{db_path}: another run (pid {holder}) is writing to this store; "
                       "waiting for it to finish, then resuming")
            if not wait:
                raise StoreBusyError(message.replace("; waiting for it to finish, then "
                                                     "resuming", "")) from None
            (notify or _stderr)(message)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _HELD[lock_path] = 1
        try:
            yield
        finally:
            del _HELD[lock_path]
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


class JudgmentStore:
    """Open (or create) a store at `path`: a .sqlite file, or a directory to hold one."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        p = Path(path)
        if p.suffix not in (".sqlite", ".db", ".sqlite3"):
            p.mkdir(parents=True, exist_ok=True)
            p = p / "judgments.sqlite"
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
        self.path = p
        self._db = sqlite3.connect(p, timeout=timeout_s, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a no-op on an existing store
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA wal_autocheckpoint = {max(1000, WAL_CHECKPOINT_BYTES // page)}")
        self._create()

    def _check_version(self) -> None:
        """Refuse a store written in another schema version, before touching it."""
        has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                    "name = 'meta'").fetchone()
        if not has_meta:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = None if row is None else row[0]
        if found is not None and str(found) != str(SCHEMA_VERSION):
            self._db.close()
            newer = str(found).isdigit() and int(found) > SCHEMA_VERSION
            raise OversightError(
                f"{self.path}: store schema version {found}, but this oversight reads version "
                f"{SCHEMA_VERSION}; " + ("upgrade oversight to read it" if newer else
                                         "judge into a fresh directory to rebuild it"))

    def _create(self) -> None:
        self._check_version()
        cols = []
        for c in JUDGMENT_COLUMNS:
            typ = {"value": "REAL", "choice_mass": "REAL", "latency_s": "REAL",
                   "principle_weight": "REAL", "tokens": "INTEGER"}.get(c, "TEXT")
            cols.append(f'"{c}" {typ}')
        with self._tx():
            self._db.execute(f"""CREATE TABLE IF NOT EXISTS judgments (
                {', '.join(cols)},
                PRIMARY KEY (fingerprint, item_id, principle, "order"))""")
            self._db.execute("CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, "
                             "body TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS critics (fingerprint TEXT, name TEXT, "
                             "body TEXT NOT NULL, PRIMARY KEY (fingerprint, name))")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))

    def run_lock(self, *, wait: bool = True,
                 notify: Callable[[str], None] | None = None) -> Any:
        """This store's run lock; see the module function `run_lock`."""
        return run_lock(self.path, wait=wait, notify=notify)

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JudgmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------
    def put(self, judgments: Sequence[Judgment]) -> None:
        """Write a batch atomically. An existing `error` row is replaced; others are kept."""
        self.put_rows([tuple(getattr(j, c) for c in JUDGMENT_COLUMNS) for j in judgments])

    def put_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """`put` for rows as tuples in `JUDGMENT_COLUMNS` order: one transaction, one
        `executemany`, no object per judgment."""
        with self._tx():
            self._db.executemany(INSERT_SQL, rows)

    def put_items(self, items: Iterable[Comparison]) -> None:
        rows = [(it.id, json.dumps(it.to_dict(), ensure_ascii=False)) for it in items]
        with self._tx():
            self._db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?)", rows)

    def replace(self, fingerprint: str, judgments: Sequence[Judgment]) -> None:
        """Atomically drop this fingerprint's rows for the items in `judgments`, then write
        them: a relabelled item (e.g. an imported human review) keeps only its new rows."""
        items = sorted({j.item_id for j in judgments})
        rows = [tuple(getattr(j, c) for c in JUDGMENT_COLUMNS) for j in judgments]
        with self._tx():
            self._db.executemany("DELETE FROM judgments WHERE fingerprint = ? AND item_id = ?",
                                 [(fingerprint, i) for i in items])
            self._db.executemany(f"INSERT INTO judgments ({_COLS}) VALUES ({_PLACEHOLDERS})",
                                 rows)

    def put_critic(self, config: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO critics VALUES (?, ?, ?)",
                             (config["fingerprint"], config["name"],
                              json.dumps(config, sort_keys=True)))

    # -- reads -----------------------------------------------------------------------------
    def done_keys(self, fingerprint: str, item_ids: Sequence[str] | None = None
                  ) -> set[tuple[str, str, str]]:
        """Keys already judged (ok or abstain) by this critic fingerprint; with `item_ids`,
        only those items' keys (so a resumed large run never holds every key at once)."""
        sql = ('SELECT item_id, principle, "order" FROM judgments '
               "WHERE fingerprint = ? AND status != 'error'")
        if item_ids is None:
            return {(a, b, c) for a, b, c in self._db.execute(sql, (fingerprint,))}
        out: set[tuple[str, str, str]] = set()
        ids = list(item_ids)
        for start in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
            chunk = ids[start:start + 900]
            cur = self._db.execute(f"{sql} AND item_id IN ({', '.join('?' * len(chunk))})",
                                   (fingerprint, *chunk))
            out.update((a, b, c) for a, b, c in cur)
        return out

    def has_judgments(self, fingerprint: str) -> bool:
        return self._db.execute("SELECT 1 FROM judgments WHERE fingerprint = ? LIMIT 1",
                                (fingerprint,)).fetchone() is not None

    def judgments(self, fingerprint: str | None = None,
                  item_ids: Iterable[str] | None = None,
                  fingerprints: Sequence[str] | None = None) -> list[Judgment]:
        """Stored judgments, optionally of one `fingerprint` or of several `fingerprints`."""
        sql = f"SELECT {_COLS} FROM judgments"
        where: list[str] = []
        args: list[Any] = []
        if fingerprint is not None:
            where.append("fingerprint = ?")
            args.append(fingerprint)
        if fingerprints is not None:
            fps = list(fingerprints)
            if not fps:
                return []
            where.append(f"fingerprint IN ({', '.join('?' for _ in fps)})")
            args.extend(fps)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY critic, item_id, principle, "order"'
        wanted = set(item_ids) if item_ids is not None else None
        out = []
        for row in self._db.execute(sql, args):
            j = Judgment(**dict(zip(JUDGMENT_COLUMNS, row)))
            if wanted is None or j.item_id in wanted:
                out.append(j)
        return out

    def item_ids(self, fingerprints: Sequence[str]) -> set[str]:
        """The ids of the items some of `fingerprints` judged."""
        fps = list(fingerprints)
        if not fps:
            return set()
        cur = self._db.execute("SELECT DISTINCT item_id FROM judgments WHERE fingerprint IN "
                               f"({', '.join('?' for _ in fps)})", fps)
        return {i for (i,) in cur}

    def items(self) -> list[Comparison]:
        return [Comparison.from_dict(json.loads(body))
                for (body,) in self._db.execute("SELECT body FROM items ORDER BY rowid")]

    def critics(self) -> list[dict[str, Any]]:
        return [json.loads(body) for (body,) in self._db.execute("SELECT body FROM critics")]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self._db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM judgments WHERE status = ?",
                                    (status,)).fetchone()[0])

    def to_frame(self) -> Any:
        """Every stored judgment as one pandas table, read as Arrow columns in batches."""
        from oversight.store._columns import to_pandas

        return to_pandas(self.to_arrow())

    def to_arrow(self) -> Any:
        """Every stored judgment as one `pyarrow.Table`, ordered as `judgments()`."""
        from oversight.store._columns import SCHEMA, read_all

        return read_all(self._db, SCHEMA)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so writers queue cleanly."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
