"""Judgments as columns: Arrow batches read from the store, Parquet written in parts.

The store keeps one SQL row per judgment (the crash-safe write path); everything downstream
reads columns. `read_batches` streams a run's judgments out of SQLite in Arrow record batches
(a bounded number of rows in Python at a time), `rows_to_table` turns an in-memory list of
row tuples into one Arrow table, and `write_parquet_parts` writes batches as numbered Parquet
files that pandas, Polars, DuckDB and `datasets` read as one dataset without a conversion step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from oversight.critics import JUDGMENT_COLUMNS

_FLOAT = ("value", "choice_mass", "latency_s", "principle_weight")
SCHEMA = pa.schema([(c, pa.float64() if c in _FLOAT else pa.int64() if c == "tokens"
                     else pa.string()) for c in JUDGMENT_COLUMNS])
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Selection:
    """One critic's part of a run: its fingerprint, the name its rows carry, and which
    principles and orders its plan asked for (None: any). `keep(item_id, principle)` filters
    per item when principles were sampled per item."""

    critic: str
    fingerprint: str
    principles: frozenset[str] | None = None
    orders: frozenset[str] | None = None
    keep: Callable[[str, str], bool] | None = None


def rows_to_batch(rows: Sequence[tuple[Any, ...]], columns: Sequence[str] | None = None
                  ) -> pa.RecordBatch:
    """Row tuples (in `JUDGMENT_COLUMNS` order) -> one Arrow record batch."""
    cols = list(columns or JUDGMENT_COLUMNS)
    at = [JUDGMENT_COLUMNS.index(c) for c in cols]
    if rows:
        transposed = list(zip(*rows))
        # from_pandas: a NaN in a text column (rows that came through pandas) is a null
        arrays = [pa.array(transposed[i], type=SCHEMA.field(c).type,
                           from_pandas=c not in _FLOAT) for c, i in zip(cols, at)]
    else:
        arrays = [pa.array([], type=SCHEMA.field(c).type) for c in cols]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([SCHEMA.field(c) for c in cols]))


def rows_to_table(rows: Sequence[tuple[Any, ...]], columns: Sequence[str] | None = None
                  ) -> pa.Table:
    batches = [rows_to_batch(rows[i:i + BATCH_ROWS], columns)
               for i in range(0, max(len(rows), 1), BATCH_ROWS)]
    return pa.Table.from_batches(batches)


def read_batches(db_path: str | Path, selections: Sequence[Selection],
                 item_ids: Iterable[str] | None = None, columns: Sequence[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream the selected judgments from the store at `db_path`, critic by critic (in the
    order given), each ordered by item id, principle and order (the primary key's order).
    Only `item_ids` are read when given. The `critic` column carries the selection's name."""
    cols = list(columns or JUDGMENT_COLUMNS)
    con = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=60)
    try:
        join = ""
        if item_ids is not None:
            con.execute("CREATE TEMP TABLE run_items (item_id TEXT PRIMARY KEY)")
            con.executemany("INSERT OR IGNORE INTO run_items VALUES (?)",
                            ((i,) for i in item_ids))
            join = " AND item_id IN (SELECT item_id FROM temp.run_items)"
        need = list(dict.fromkeys([*cols, "item_id", "principle"]))
        sql_cols = ", ".join("?" if c == "critic" else f'"{c}"' for c in need)
        for sel in selections:
            where, args = "fingerprint = ?" + join, [sel.fingerprint]
            for col, allowed in (("principle", sel.principles), ("order", sel.orders)):
                if allowed is not None:
                    where += f' AND "{col}" IN ({", ".join("?" * len(allowed))})'
                    args.extend(sorted(allowed))
            args = ([sel.critic] if "critic" in need else []) + args
            cur = con.execute(f"SELECT {sql_cols} FROM judgments WHERE {where} "
                              'ORDER BY item_id, principle, "order"', args)
            ii, pi = need.index("item_id"), need.index("principle")
            pick = [need.index(c) for c in cols]
            while True:
                chunk = cur.fetchmany(batch_rows)
                if not chunk:
                    break
                if sel.keep is not None:
                    chunk = [r for r in chunk if sel.keep(r[ii], r[pi])]
                if pick != list(range(len(need))):
                    chunk = [tuple(r[i] for i in pick) for r in chunk]
                if chunk:
                    yield _batch(chunk, cols)
    finally:
        con.close()


def read_all(con: sqlite3.Connection, schema: pa.Schema = SCHEMA) -> pa.Table:
    """Every row of the judgments table on `con`, ordered as `JudgmentStore.judgments()`."""
    return pa.Table.from_batches(list(_all_batches(con, list(JUDGMENT_COLUMNS))),
                                 schema=schema)


def read_all_batches(db_path: str | Path, columns: Sequence[str] | None = None
                     ) -> Iterator[pa.RecordBatch]:
    """Every stored row, as stored, in Arrow batches (ordered as `JudgmentStore.judgments`)."""
    con = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=60)
    try:
        yield from _all_batches(con, list(columns or JUDGMENT_COLUMNS))
    finally:
        con.close()


def _all_batches(con: sqlite3.Connection, cols: list[str]) -> Iterator[pa.RecordBatch]:
    names = ", ".join(f'"{c}"' for c in cols)
    cur = con.execute(f'SELECT {names} FROM judgments ORDER BY critic, item_id, principle, '
                      '"order"')
    while chunk := cur.fetchmany(BATCH_ROWS):
        yield _batch(chunk, cols)


def _batch(rows: list[tuple[Any, ...]], cols: list[str]) -> pa.RecordBatch:
    transposed = list(zip(*rows))
    return pa.RecordBatch.from_arrays(
        [pa.array(transposed[n], type=SCHEMA.field(c).type) for n, c in enumerate(cols)],
        schema=pa.schema([SCHEMA.field(c) for c in cols]))


def concat(batches: Iterable[pa.RecordBatch], columns: Sequence[str] | None = None) -> pa.Table:
    schema = pa.schema([SCHEMA.field(c) for c in (columns or JUDGMENT_COLUMNS)])
    return pa.Table.from_batches(list(batches), schema=schema)


def write_parquet_parts(batches: Iterable[pa.RecordBatch], out_dir: str | Path, *,
                        rows_per_part: int = 1_000_000, compression: str = "zstd") -> list[Path]:
    """Write batches as `part-00000.parquet`, ... of at most `rows_per_part` rows each.

    The directory is one dataset: `pd.read_parquet(dir)`, `pl.scan_parquet(f"{dir}/*.parquet")`,
    DuckDB's `read_parquet('dir/*.parquet')` and `datasets.load_dataset("parquet",
    data_dir=dir)` read it as is. Memory stays at one batch plus the writer's buffer."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    paths: list[Path] = []
    writer: Any = None
    in_part = 0
    try:
        for batch in batches:
            offset = 0
            while offset < batch.num_rows:
                if writer is None or in_part >= rows_per_part:
                    if writer is not None:
                        writer.close()
                    paths.append(out / f"part-{len(paths):05d}.parquet")
                    writer = pq.ParquetWriter(paths[-1], batch.schema, compression=compression)
                    in_part = 0
                take = min(rows_per_part - in_part, batch.num_rows - offset)
                writer.write_batch(batch.slice(offset, take))
                in_part += take
                offset += take
    finally:
        if writer is not None:
            writer.close()
    return paths


def categorical_frame(batches: Iterable[pa.RecordBatch], columns: Sequence[str]) -> Any:
    """The batches as one pandas table whose text columns are categoricals with sorted
    categories, built a batch at a time: each batch's text is dictionary-encoded and its few
    distinct values looked up in a running dictionary per column, so memory holds one batch
    of text, the integer codes (the smallest integer type that fits) and the distinct values,
    never every row's strings (a run repeats a handful of critics, principles and orders, and
    each item id once per judgment)."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    cols = list(columns)
    seen: dict[str, dict[Any, int]] = {}
    parts: dict[str, list[Any]] = {c: [] for c in cols}
    text: set[str] = set()
    for batch in batches:
        for c in cols:
            col = batch.column(c)
            if not pa.types.is_string(col.type):
                parts[c].append(col.to_numpy(zero_copy_only=False))
                continue
            text.add(c)
            enc = pc.dictionary_encode(col)
            lookup = seen.setdefault(c, {})
            values = enc.dictionary.to_pylist()
            local = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values),
                                dtype=np.int64, count=len(values))
            idx = enc.indices.to_numpy(zero_copy_only=False)  # nulls come back as floats
            codes = np.full(len(col), -1, dtype=np.int32)
            valid = enc.indices.is_valid().to_numpy(zero_copy_only=False)
            codes[valid] = local[idx[valid].astype(np.int64)]
            parts[c].append(codes)
    if not any(parts.values()):
        return to_pandas(concat([], cols))
    out: dict[str, Any] = {}
    for c in cols:
        chunks = parts.pop(c)
        if c not in text:
            typ = SCHEMA.field(c).type
            out[c] = (np.concatenate(chunks) if chunks else
                      np.zeros(0, dtype=np.float64 if pa.types.is_floating(typ) else np.int64))
            continue
        codes = np.concatenate(chunks)
        del chunks
        values = np.array(list(seen[c]), dtype=object)
        order = np.argsort(values.astype(str), kind="stable")
        rank = np.empty(len(order) + 1, dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        rank[-1] = -1  # a missing value (-1) stays missing
        out[c] = pd.Categorical.from_codes(rank[codes], categories=pd.Index(values[order],
                                                                          dtype=object))
    return pd.DataFrame(out)


def to_pandas(table: pa.Table) -> Any:
    """Arrow -> pandas, as the per-row table was: a text column with no value at all holds
    None (object dtype), the others pandas' string dtype."""
    import numpy as np

    df = table.to_pandas()
    for name in table.column_names:
        col = table.column(name)
        if len(col) and col.null_count == len(col) and name not in _FLOAT:
            df[name] = np.full(len(col), None, dtype=object)
    return df
