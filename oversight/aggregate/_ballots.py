"""From the long judgments table to ballots: each critic's support per item and response.

Pairwise judgments are put in canonical orientation: a row with order "a,b" and value v says
P(a beats b) = v. A critic's support for a response is the weighted mean probability that it
wins its comparisons (principle weights), averaged over both orders when swapped. Only rows
with status "ok" count: an abstention is missing data, never a vote and never a tie.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

PAIRWISE_FIELDS = ("item_id", "critic", "principle", "order", "mode", "value", "status")

TIE_TOL = 1e-9
"""Supports, shares or margins no further apart than this (absolute, the bound included) are
tied, everywhere in the package."""


_MEMO: ContextVar[dict[tuple[Any, ...], tuple[pd.DataFrame, Any]] | None] = \
    ContextVar("oversight_aggregate_rows_memo", default=None)


@contextmanager
def shared_rows() -> Iterator[None]:
    """Within the block, `pairwise_rows` and `response_support` of one judgments frame (the
    same object, same arguments) are computed once: `aggregate` reads them for the vote, the
    flags and the rules. The frames must not be changed inside the block (nothing here does);
    the results are read-only by convention and never mutated by their callers."""
    token = _MEMO.set({}) if _MEMO.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _MEMO.reset(token)


def _memoized(key: tuple[Any, ...], judgments: pd.DataFrame, compute: Callable[[], Any]
              ) -> Any:
    memo = _MEMO.get()
    if memo is None:
        return compute()
    full = (id(judgments), *key)
    hit = memo.get(full)
    if hit is not None and hit[0] is judgments:
        return hit[1]
    out = compute()
    memo[full] = (judgments, out)  # holding the frame keeps its id from being reused
    return out


WORKING_COLUMNS = (*PAIRWISE_FIELDS, "principle_weight", "principle_kind", "model",
                   "constitution", "constitution_hash")


def columnar(judgments: pd.DataFrame) -> pd.DataFrame:
    """The columns aggregation reads, each string column dictionary-encoded once (a pandas
    categorical): every later mask, group and factorize then moves integer codes, not strings.
    A run's table has millions of rows but a handful of distinct critics, principles, orders
    and statuses, and each item id repeats once per judgment; filtering the full table's
    text columns (raw output, reasons, templates) was most of the time at 10^6 judgments.
    A table that is already the working table is returned as is."""
    cols = [c for c in WORKING_COLUMNS if c in judgments.columns]
    encode = [c for c in cols if judgments[c].dtype == object
              or isinstance(judgments[c].dtype, pd.StringDtype)
              or (isinstance(judgments[c].dtype, pd.CategoricalDtype)
                  and not _sorted_objects(judgments[c].cat.categories))]
    if not encode and len(cols) == len(judgments.columns):
        return judgments
    out = {}
    for c in cols:
        if c in encode and isinstance(judgments[c].dtype, pd.CategoricalDtype):
            # e.g. read from the store dictionary-encoded: its categories, sorted, as objects
            cat = judgments[c].cat
            values = np.asarray(cat.categories, dtype=object)
            order = np.argsort(values.astype(str), kind="stable")
            rank = np.append(np.argsort(order), -1)  # code -1 (missing) stays -1
            out[c] = pd.Categorical.from_codes(
                rank[np.asarray(cat.codes, dtype=np.int64)],
                categories=pd.Index(values[order], dtype=object))
        elif c in encode:
            # sorted categories: code order is value order, so the grouped tables come out
            # sorted with no string sort of their own
            codes, uniques = pd.factorize(judgments[c], sort=True)
            # categories as plain objects: turning codes back into values (masks, isin, the
            # output frames) is then a numpy take, not an Arrow round trip
            cats = pd.Index(np.asarray(uniques, dtype=object), dtype=object)
            out[c] = pd.Categorical.from_codes(codes, categories=cats)
        else:
            out[c] = judgments[c]
    return pd.DataFrame(out, index=judgments.index)


def _sorted_objects(categories: pd.Index) -> bool:
    return categories.dtype == object and categories.is_monotonic_increasing


def is_tie(a: Any, b: Any = 0.0) -> Any:
    """True where `a` and `b` are equal within `TIE_TOL` (scalars or arrays)."""
    out = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) <= TIE_TOL
    return bool(out) if out.ndim == 0 else out


def _check_columns(judgments: pd.DataFrame, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in judgments.columns]
    if missing:
        raise ValueError(f"judgments table lacks column(s) {missing}; it needs {list(needed)} "
                         "(the long format that Panel.judge returns)")


def pairwise_rows(judgments: pd.DataFrame) -> pd.DataFrame:
    """OK pairwise judgments as (item_id, critic, principle, a, b, p_ab, forward, weight).

    `a` is the response shown first and p_ab = P(a beats b); `forward` is True when the lower
    index was shown first (the unswapped order).
    """
    return _memoized(("pairwise_rows",), judgments, lambda: _pairwise_rows(judgments))


def _pairwise_rows(judgments: pd.DataFrame) -> pd.DataFrame:
    _check_columns(judgments, PAIRWISE_FIELDS)
    cols = [*PAIRWISE_FIELDS, *(["principle_weight"] if "principle_weight" in judgments else [])]
    judgments = judgments[cols]  # filter only the columns used, not the whole table
    ok = judgments[(judgments["status"] == "ok") & (judgments["mode"] == "pairwise")
                   & judgments["value"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=["item_id", "critic", "principle", "a", "b", "p_ab",
                                     "forward", "weight"])
    a, b = _shown_pairs(ok["order"])
    weight = ok["principle_weight"] if "principle_weight" in ok else 1.0
    out = pd.DataFrame({
        "item_id": _column(ok["item_id"]), "critic": _column(ok["critic"]),
        "principle": _column(ok["principle"]), "a": a,
        "b": b, "p_ab": ok["value"].astype(float).to_numpy(),
        "weight": np.asarray(weight, dtype=float) * np.ones(len(ok)),
    })
    out["forward"] = out["a"] < out["b"]
    return out


def _column(s: pd.Series) -> Any:
    """A column's values for a new frame: a string column as its own (Arrow) array, which a
    new frame takes as is, rather than as objects that it would convert back one by one."""
    return s.array if isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype)) \
        else s.to_numpy()


def _shown_pairs(order: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two shown indices of each "a,b" order string, parsing each distinct string once
    (a run has a handful of distinct orders and millions of rows)."""
    codes, uniques = pd.factorize(order)
    parsed = np.array([[int(x) for x in str(u).split(",")][:2] for u in uniques],
                      dtype=np.int64).reshape(-1, 2)
    if len(parsed) and 0 <= parsed.min() and parsed.max() < 2**15:  # small response indices
        parsed = parsed.astype(np.int16)
    return parsed[codes, 0], parsed[codes, 1]


def _shown_index(order: pd.Series) -> np.ndarray:
    """The response index of each single-response order string ("2"), parsing each distinct
    string once."""
    codes, uniques = pd.factorize(order)
    return np.array([int(u) for u in uniques], dtype=np.int64)[codes]


def response_support(judgments: pd.DataFrame, by: tuple[str, ...] = ("item_id", "critic"),
                     orders: str = "all") -> pd.DataFrame:
    """Weighted mean support per (by..., response).

    Pairwise rows: P(response wins); score rows: expected score; passfail rows: P(pass).
    `orders` = "all", "forward" (lower index shown first) or "reverse"; with "forward" or
    "reverse" only pairwise rows count (a score or pass/fail judgment shows one response, so
    it has no order).
    """
    frame: pd.DataFrame = _support_sums(judgments, tuple(by), orders)[0]
    return frame


def _support_sums(judgments: pd.DataFrame, by: tuple[str, ...], orders: str
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """`response_support` and each row's sum of weights (so that supports can be merged)."""
    return _memoized(("response_support", by, orders), judgments,
                     lambda: _response_support(judgments, by, orders))


def _response_support(judgments: pd.DataFrame, by: tuple[str, ...], orders: str
                      ) -> tuple[pd.DataFrame, np.ndarray]:
    _check_columns(judgments, PAIRWISE_FIELDS)
    pw = pairwise_rows(judgments)
    if orders == "all" and not pw.empty:
        # both orders' sums (which the position flips read too) plus the point rows': the
        # pairwise rows are grouped once per order, not a third time for "all"
        parts = [_support_sums(judgments, by, "forward"), _support_sums(judgments, by, "reverse"),
                 _response_support(judgments, by, "point")]
        parts = [(f, w) for f, w in parts if len(f)]
        weight = np.concatenate([w for _, w in parts])
        support = np.concatenate([f["support"].to_numpy(dtype=float) for f, _ in parts])
        return _grouped_support(
            {k: _concat([f[k] for f, _ in parts]) for k in by},
            np.concatenate([f["response"].to_numpy(dtype=np.int64) for f, _ in parts]),
            np.where(weight != 0, support, 0.0), weight,
            np.concatenate([f["n"].to_numpy(dtype=np.int64) for f, _ in parts]))
    if orders in ("forward", "reverse"):
        pw = pw[pw["forward"].to_numpy() == (orders == "forward")]
    elif orders == "point":
        pw = pw.iloc[:0]
    # every row's (by..., response, support s, weight), gathered as columns: a pairwise row
    # supports its first-shown response with p_ab and the other with 1 - p_ab
    keys: dict[str, list[Any]] = {k: [] for k in by}
    response: list[np.ndarray] = []
    s: list[np.ndarray] = []
    w: list[np.ndarray] = []
    if not pw.empty:
        for k in by:
            keys[k] += [pw[k], pw[k]]
        p = pw["p_ab"].to_numpy(dtype=float)
        weight = pw["weight"].to_numpy(dtype=float)
        response += [pw["a"].to_numpy(), pw["b"].to_numpy()]
        s += [p, 1.0 - p]
        w += [weight, weight]
    if orders in ("all", "point"):
        cols = [*PAIRWISE_FIELDS, *(["principle_weight"] if "principle_weight" in judgments
                                    else [])]
        point = judgments[cols]
        point = point[((point["status"] == "ok") & (point["mode"] != "pairwise")
                       & point["value"].notna()).to_numpy()]
        if not point.empty:
            for k in by:
                keys[k].append(point[k])
            response.append(_shown_index(point["order"]))
            s.append(point["value"].to_numpy(dtype=float))
            w.append(point["principle_weight"].to_numpy(dtype=float)
                     if "principle_weight" in point else np.ones(len(point)))
    if not response:
        return pd.DataFrame(columns=[*by, "response", "support", "n"]), np.zeros(0)
    return _grouped_support({k: _concat(v) for k, v in keys.items()}, np.concatenate(response),
                            np.concatenate(s), np.concatenate(w))


def _concat(parts: list[pd.Series]) -> Any:
    """One column from several: categoricals of one dtype by their codes, others by pandas."""
    dtype = parts[0].dtype
    if isinstance(dtype, pd.CategoricalDtype) and all(p.dtype == dtype for p in parts):
        return pd.Categorical.from_codes(np.concatenate([p.cat.codes for p in parts]),
                                         dtype=dtype)
    return pd.concat(parts, ignore_index=True)


def _grouped_support(keys: dict[str, Any], response: np.ndarray, s: np.ndarray,
                     weight: np.ndarray, count: np.ndarray | None = None
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """sum(s * weight) / sum(weight) and the row count (or the sum of `count`) per distinct
    (keys..., response), sorted by them (what `groupby(keys, sort=True)` gives), and each
    group's sum of weights. On integer codes: each key column is factorized once (a
    categorical's codes are reused), the codes combine into one int64 key, and the sums are
    `np.bincount`s. Rows with a missing key are left out, as groupby leaves them out."""
    columns = {**keys, "response": response}
    combined = np.zeros(len(response), dtype=np.int64)
    keep = np.ones(len(response), dtype=bool)
    levels = []
    for values in columns.values():
        codes, uniques = sorted_codes(values, dense=False)
        keep &= codes >= 0
        combined *= max(len(uniques), 1)  # in place: at 10^7 rows each temporary is 80 MB
        combined += codes  # a missing code (-1) spoils only its own row, which is dropped
        levels.append(uniques)
    if not keep.all():
        combined, s, weight = combined[keep], s[keep], weight[keep]
        count = None if count is None else count[keep]
    uniq, inverse = dense_rank(combined)
    ws_sum = np.bincount(inverse, weights=s * weight, minlength=len(uniq))
    w_sum = np.bincount(inverse, weights=weight, minlength=len(uniq))
    out: dict[str, Any] = {}
    rest = uniq
    for k, uniques in zip(reversed(list(columns)), reversed(levels)):
        n = max(len(uniques), 1)
        out[k] = uniques.take(rest % n)  # a string column stays strings, a categorical one
        # keeps its categories (and the working table's codes)
        rest = rest // n
    with np.errstate(invalid="ignore", divide="ignore"):
        support = ws_sum / w_sum
    frame = pd.DataFrame({k: out[k] for k in columns})
    frame["support"] = support
    frame["n"] = np.bincount(inverse, weights=count, minlength=len(uniq)).astype(np.int64)
    return frame, w_sum


def sorted_codes(values: Any, dense: bool = True) -> tuple[np.ndarray, Any]:
    """(codes, sorted distinct values) as `pd.factorize(values, sort=True)` gives them, missing
    values coded -1, without hashing where the values already are codes: a categorical's own
    codes are remapped through its (few) categories, and small non-negative integers (response
    indices) are ranked with one `np.bincount`. With `dense=False` a categorical whose
    categories are sorted keeps its own codes and all its categories (values no row holds
    included): for grouping, where only the order of the codes matters."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = values.array if isinstance(values, pd.Series) else values
        raw = np.asarray(cat.codes, dtype=np.int64)
        cats = cat.categories
        if not dense and cats.is_monotonic_increasing:  # the codes as they are, no copy
            return (np.asarray(cat.codes),
                    pd.Categorical.from_codes(np.arange(len(cats)), dtype=cat.dtype))
        present = np.bincount(raw[raw >= 0], minlength=len(cats)) > 0
        order = np.argsort(np.asarray(cats, dtype=object).astype(str), kind="stable") \
            if not cats.is_monotonic_increasing else np.arange(len(cats))
        order = order[present[order]]
        rank = np.full(len(cats) + 1, -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
        # the distinct values as a categorical of the same categories, so that every table
        # derived from the working table shares its codes
        return rank[raw], pd.Categorical.from_codes(order, dtype=cat.dtype)
    arr = np.asarray(values)
    if arr.dtype.kind in "iu" and len(arr) and arr.min() >= 0 and arr.max() < 4 * len(arr) + 64:
        present = np.bincount(arr) > 0
        rank = np.cumsum(present) - 1
        return rank[arr].astype(np.int64), np.flatnonzero(present)
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), uniques


def codes_of(values: pd.Series) -> np.ndarray:
    """Integer codes that are equal exactly where the values are (missing: -1); a
    categorical's own codes, no hashing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes, dtype=np.int64)
    return np.asarray(pd.factorize(values)[0], dtype=np.int64)


def item_positions(values: Any, index: pd.Index) -> np.ndarray:
    """Position of each value in `index` (-1 where absent): a categorical's (few) categories
    are looked up once and its codes map through them."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = values.array if isinstance(values, pd.Series) else values
        at = np.append(index.get_indexer(cat.categories), -1)  # code -1 (missing) -> -1
        return at[np.asarray(cat.codes, dtype=np.int64)]
    return np.asarray(index.get_indexer(values), dtype=np.int64)


def dense_rank(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(key, return_inverse=True)` for non-negative int64 keys; when the key range
    is not much larger than the array, by counting instead of sorting."""
    if len(key) and key.min() >= 0 and key.max() < 4 * len(key) + 64:
        present = np.bincount(key) > 0
        rank = np.cumsum(present) - 1
        small = np.int32 if len(rank) < 2**31 else np.int64  # half the memory per row
        return np.flatnonzero(present), rank.astype(small)[key]
    uniq, inverse = np.unique(key, return_inverse=True)
    return uniq, inverse.reshape(-1)


def critic_p0(judgments: pd.DataFrame, orders: str = "all",
              by: tuple[str, ...] = ("item_id", "critic")) -> pd.DataFrame:
    """For two-response items: each critic's support for response 0, one row per (by...)."""
    sup = response_support(judgments, by=by, orders=orders)
    wide = sup.pivot_table(index=list(by), columns="response", values="support")
    if 0 not in wide.columns:
        return pd.DataFrame(columns=[*by, "p0"])
    out = wide[[0]].rename(columns={0: "p0"}).reset_index()
    return out


def vote_of(p: Any, eps: float = TIE_TOL) -> np.ndarray:
    """0 if response 0 is preferred, 1 if response 1 is, -1 for a tie (p = 0.5 within eps)."""
    p = np.asarray(p, dtype=float)
    return np.where(p > 0.5 + eps, 0, np.where(p < 0.5 - eps, 1, -1))
