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


_MEMO: ContextVar[dict[tuple[Any, ...], tuple[pd.DataFrame, pd.DataFrame]] | None] = \
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


def _memoized(key: tuple[Any, ...], judgments: pd.DataFrame,
              compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
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
    return s.array if isinstance(s.dtype, pd.StringDtype) else s.to_numpy()


def _shown_pairs(order: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two shown indices of each "a,b" order string, parsing each distinct string once
    (a run has a handful of distinct orders and millions of rows)."""
    codes, uniques = pd.factorize(order)
    parsed = np.array([[int(x) for x in str(u).split(",")][:2] for u in uniques],
                      dtype=np.int64).reshape(-1, 2)
    return parsed[codes, 0], parsed[codes, 1]


def response_support(judgments: pd.DataFrame, by: tuple[str, ...] = ("item_id", "critic"),
                     orders: str = "all") -> pd.DataFrame:
    """Weighted mean support per (by..., response).

    Pairwise rows: P(response wins); score rows: expected score; passfail rows: P(pass).
    `orders` = "all", "forward" (lower index shown first) or "reverse"; with "forward" or
    "reverse" only pairwise rows count (a score or pass/fail judgment shows one response, so
    it has no order).
    """
    return _memoized(("response_support", tuple(by), orders), judgments,
                     lambda: _response_support(judgments, tuple(by), orders))


def _response_support(judgments: pd.DataFrame, by: tuple[str, ...], orders: str
                      ) -> pd.DataFrame:
    _check_columns(judgments, PAIRWISE_FIELDS)
    pw = pairwise_rows(judgments)
    if orders != "all":
        pw = pw[pw["forward"] == (orders == "forward")]
    parts = []
    if not pw.empty:
        win = pw.assign(response=pw["a"], s=pw["p_ab"])
        lose = pw.assign(response=pw["b"], s=1.0 - pw["p_ab"])
        parts += [win, lose]
    cols = [*PAIRWISE_FIELDS, *(["principle_weight"] if "principle_weight" in judgments else [])]
    point = judgments[cols]
    point = point[(point["status"] == "ok") & (point["mode"] != "pairwise")
                  & point["value"].notna()]
    if not point.empty and orders == "all":
        weight = point["principle_weight"] if "principle_weight" in point else 1.0
        parts.append(pd.DataFrame({
            "item_id": _column(point["item_id"]), "critic": _column(point["critic"]),
            "principle": _column(point["principle"]),
            "response": point["order"].astype(int).to_numpy(),
            "s": point["value"].astype(float).to_numpy(),
            "weight": np.asarray(weight, dtype=float) * np.ones(len(point))}))
    cols = [*by, "response", "support", "n"]
    if not parts:
        return pd.DataFrame(columns=cols)
    rows = pd.concat(parts, ignore_index=True)
    return _grouped_support(rows, [*by, "response"])


def _grouped_support(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """sum(s * weight) / sum(weight) and the row count per distinct `keys`, sorted by them
    (what `groupby(keys, sort=True)` gives), on integer codes: each key column is factorized
    once, the codes combine into one int64 key, and the sums are `np.bincount`s."""
    combined = np.zeros(len(rows), dtype=np.int64)
    levels = []
    for k in keys:
        codes, uniques = pd.factorize(rows[k], sort=True)
        if (codes < 0).any():  # a missing key: groupby drops those rows
            keep = codes >= 0
            return _grouped_support(rows[keep].reset_index(drop=True), keys)
        combined = combined * len(uniques) + codes
        levels.append(uniques)
    uniq, inverse = np.unique(combined, return_inverse=True)
    ws = rows["s"].to_numpy(dtype=float) * rows["weight"].to_numpy(dtype=float)
    ws_sum = np.bincount(inverse, weights=ws, minlength=len(uniq))
    w_sum = np.bincount(inverse, weights=rows["weight"].to_numpy(dtype=float),
                        minlength=len(uniq))
    out: dict[str, Any] = {}
    rest = uniq
    for k, uniques in zip(reversed(keys), reversed(levels)):
        out[k] = (uniques.take(rest % len(uniques)).array
                  if isinstance(uniques.dtype, pd.StringDtype)  # no round trip via objects
                  else np.asarray(uniques)[rest % len(uniques)])
        rest = rest // len(uniques)
    with np.errstate(invalid="ignore", divide="ignore"):
        support = ws_sum / w_sum
    frame = pd.DataFrame({k: out[k] for k in keys})
    frame["support"] = support
    frame["n"] = np.bincount(inverse, minlength=len(uniq)).astype(np.int64)
    return frame


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
