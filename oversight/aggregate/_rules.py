"""Panel rules (veto, quorum, supermajority) and per-item disagreement flags.

Veto: a principle of kind "veto", or any principle of a critic marked `veto=True`, is a hard
constraint. A veto source that confidently prefers one response (P >= 0.5 + veto_margin, the
boundary included, within TIE_TOL) vetoes the other; in pass/fail mode a response with
P(pass) <= 0.5 - veto_margin is vetoed. With veto_margin = 0 the inequalities are strict (an
exact 0.5 is no preference and vetoes nothing). The rules
run after aggregation and nothing runs after them, so no aggregation can undo a veto. When every
response of an item is vetoed the item is `contested` and flagged `veto_conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from oversight.aggregate._ballots import (
    TIE_TOL,
    codes_of,
    columnar,
    dense_rank,
    item_positions,
    pairwise_rows,
    response_support,
    shared_rows,
)
from oversight.aggregate._stats import position_flips


@dataclass
class PanelRules:
    """quorum: minimum non-abstaining critics per item; supermajority: share the winner needs;
    veto_margin: how far from 0.5 a veto source must be to veto; confident: how far from 0.5 a
    critic must be to count as confident for the `split` flag."""

    quorum: int = 1
    supermajority: float | None = None
    veto_margin: float = 0.1
    confident: float = 0.1
    veto_critics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.quorum < 1:
            raise ValueError(f"quorum={self.quorum} must be >= 1")
        if self.supermajority is not None and not 0.5 <= self.supermajority <= 1.0:
            raise ValueError(f"supermajority={self.supermajority} must be in [0.5, 1]")
        if not 0.0 <= self.veto_margin < 0.5:
            raise ValueError(f"veto_margin={self.veto_margin} must be in [0, 0.5)")


def _beyond(p: float, margin: float) -> bool:
    """P >= 0.5 + margin (boundary included, within TIE_TOL); strictly above 0.5 when the
    margin is 0, since an exact 0.5 prefers nothing."""
    if margin == 0:
        return p > 0.5 + TIE_TOL
    return p >= 0.5 + margin - TIE_TOL


def infer_k(judgments: pd.DataFrame) -> dict[str, int]:
    """item_id -> number of responses, from the highest response index any judgment shows
    (at least 2). Used when no items are given, so K-way vetoes and flags see every response."""
    if len(judgments) == 0:
        return {}
    # each distinct order string is parsed once; the per-item maximum is a ufunc over codes
    order_codes, orders = pd.factorize(judgments["order"])
    shown = np.array([_highest_shown(str(o)) for o in orders] + [0], dtype=np.int64)
    idx = shown[order_codes]  # code -1 (a missing order) reads the trailing 0, as "nan" did
    item_codes, item_ids = pd.factorize(judgments["item_id"], sort=True)
    keep = item_codes >= 0  # groupby leaves out rows without an item id
    top = np.full(len(item_ids), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, item_codes[keep], idx[keep])
    return {str(i): max(2, int(v) + 1) for i, v in zip(item_ids, top.tolist())}


def _highest_shown(order: str) -> int:
    """The highest response index an order string shows ("2,0" -> 2); 0 when it shows none."""
    shown = [int(x) for x in order.split(",") if x.strip().lstrip("-").isdigit()]
    return max(shown) if shown else 0


def vetoed_responses(judgments: pd.DataFrame, rules: PanelRules) -> dict[str, set[int]]:
    """item_id -> responses vetoed by some veto principle or veto critic."""
    out: dict[str, set[int]] = {}
    for item, r in zip(*_veto_pairs(judgments, rules)):
        out.setdefault(item, set()).add(int(r))
    return out


def _veto_pairs(judgments: pd.DataFrame, rules: PanelRules) -> tuple[np.ndarray, np.ndarray]:
    """The (item_id, response) pairs some veto source vetoes, as two columns (a pair may
    repeat, once per source)."""
    is_veto = judgments.get("principle_kind", pd.Series("soft", index=judgments.index)) == "veto"
    is_veto |= judgments["critic"].isin(rules.veto_critics)
    v = judgments[is_veto & (judgments["status"] == "ok")]
    items: list[np.ndarray] = [np.zeros(0, dtype=object)]
    responses: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    if v.empty:
        return items[0], responses[0]
    m = rules.veto_margin
    pw = pairwise_rows(v)
    if not pw.empty:
        # Per (item, critic, principle, pair), both orders averaged, P(lo beats hi), lo < hi.
        a, b = pw["a"].to_numpy(dtype=np.int64), pw["b"].to_numpy(dtype=np.int64)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        p_ab = pw["p_ab"].to_numpy(dtype=float)
        group, first = _groups([codes_of(pw["item_id"]), codes_of(pw["critic"]),
                                codes_of(pw["principle"]), lo, hi])
        p = _group_mean(group, np.where(a < b, p_ab, 1 - p_ab), len(first))
        vetoes_hi = _beyond_all(p, m)
        vetoes_lo = ~vetoes_hi & _beyond_all(1.0 - p, m)
        item = pw["item_id"].iloc[first]
        items += [item[vetoes_hi].to_numpy(dtype=object), item[vetoes_lo].to_numpy(dtype=object)]
        responses += [hi[first][vetoes_hi], lo[first][vetoes_lo]]
    pf = v[v["mode"] == "passfail"]
    if not pf.empty:
        group, first = _groups([codes_of(pf[c]) for c in ("item_id", "critic", "principle",
                                                          "order")])
        mean = _group_mean(group, pf["value"].to_numpy(dtype=float), len(first))
        fails = first[_beyond_all(1.0 - mean, m)]
        items.append(pf["item_id"].iloc[fails].to_numpy(dtype=object))
        responses.append(np.array([int(o) for o in pf["order"].iloc[fails].tolist()],
                                  dtype=np.int64))
    return np.concatenate(items), np.concatenate(responses)


def _groups(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each row over the distinct combinations of the code columns (rows with
    a missing code, -1, in group -1, as groupby drops them), and one row of each group."""
    keep = np.ones(len(codes[0]), dtype=bool)
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        keep &= c >= 0
        key = key * (int(c.max()) + 1 if len(c) else 1) + np.maximum(c, 0)
    _, group = dense_rank(np.where(keep, key, -1) if not keep.all() else key)
    if not keep.all():
        group = np.where(keep, group - 1, -1)  # -1 ranked first
    n = int(group.max()) + 1 if len(group) else 0
    first = np.full(n, len(group), dtype=np.int64)
    np.minimum.at(first, group[group >= 0], np.flatnonzero(group >= 0))
    return group, first


def _group_mean(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of `values` per group (NaN values skipped, as pandas' mean does)."""
    ok = (group >= 0) & ~np.isnan(values)
    total = np.bincount(group[ok], weights=values[ok], minlength=n)
    count = np.bincount(group[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _beyond_all(p: np.ndarray, margin: float) -> np.ndarray:
    """`_beyond` on an array (NaN is never beyond)."""
    if margin == 0:
        return p > 0.5 + TIE_TOL
    return p >= 0.5 + margin - TIE_TOL


def _is_response(labels: np.ndarray) -> np.ndarray:
    """Which labels are response indices (ints), not "tie", "abstain" or a rule's verdict."""
    return np.fromiter((isinstance(v, (int, np.integer)) for v in labels.tolist()),
                       dtype=bool, count=len(labels))


def apply_rules(decisions: pd.DataFrame, judgments: pd.DataFrame, k_of: dict[str, int],
                rules: PanelRules) -> pd.DataFrame:
    """Final labels after quorum, supermajority and veto. `decisions` needs item_id, label,
    share, n_critics. Adds: final, vetoed, veto_override, veto_conflict, low_quorum."""
    veto_items, veto_responses = _veto_pairs(judgments, rules)
    items = decisions["item_id"].to_numpy(dtype=object)
    labels = decisions["label"].to_numpy(dtype=object)
    n = len(items)
    low_q = decisions["n_critics"].to_numpy().astype(np.int64) < rules.quorum
    final = labels.copy()
    final[low_q] = "no_quorum"
    if rules.supermajority is not None:
        share = decisions["share"].to_numpy(dtype=float)
        final[~low_q & _is_response(final) & (share < rules.supermajority - TIE_TOL)] = \
            "no_supermajority"
    vetoed: list[list[int]] = [[] for _ in range(n)]
    override = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    codes, distinct = pd.factorize(pd.Index(items, dtype=object))  # items may repeat
    at = distinct.get_indexer(veto_items) if len(veto_items) else np.zeros(0, dtype=np.int64)
    hit = at >= 0
    if hit.any():
        # the veto stage on a [distinct item, response] matrix of vetoed responses
        at, resp = at[hit], veto_responses[hit]
        touched = np.unique(at)
        names = distinct[touched].tolist()
        inferred = {} if all(k_of.get(i) for i in names) else infer_k(judgments)
        k = np.array([k_of.get(i) or inferred.get(i, 2) for i in names],
                     dtype=np.int64)
        width = int(max(k.max(), resp.max() + 1))
        row_of = np.full(len(distinct), -1, dtype=np.int64)
        row_of[touched] = np.arange(len(touched))
        vmat = np.zeros((len(touched), width), dtype=bool)
        vmat[row_of[at], resp] = True
        allowed = (np.arange(width)[None, :] < k[:, None]) & ~vmat
        n_allowed = allowed.sum(axis=1)
        rows = row_of[codes]  # each decision's row in the matrix, -1 when no veto touched it
        mine = rows >= 0
        r = rows[mine]
        lab = final[mine]
        is_resp = _is_response(lab)
        lab_int = np.full(len(lab), -1, dtype=np.int64)
        lab_int[is_resp] = lab[is_resp].astype(np.int64)
        contested = n_allowed[r] == 0
        single = n_allowed[r] == 1
        only = allowed.argmax(axis=1)[r]
        in_range = (lab_int >= 0) & (lab_int < width)
        kway_vetoed = (n_allowed[r] > 1) & is_resp & in_range \
            & vmat[r, np.clip(lab_int, 0, width - 1)]
        new_lab = lab.copy()
        new_lab[contested] = "contested"
        new_lab[single] = only[single].tolist()
        new_lab[kway_vetoed] = "vetoed"  # K-way: no aggregate may restore a vetoed winner
        final[mine] = new_lab
        conflict[mine] = contested
        override[mine] = (single & ~(is_resp & (lab_int == only))) | kway_vetoed
        # each distinct set of vetoed responses is listed once (an item has a handful of
        # responses, so a run has few such sets); every decision gets its own copy
        if width <= 62:  # each row's vetoed set as one integer bit mask
            bits = vmat.astype(np.int64) @ np.left_shift(np.int64(1), np.arange(width))
            kinds_bits, kind_of = np.unique(bits, return_inverse=True)
            patterns = [[b for b in range(width) if (int(m) >> b) & 1] for m in kinds_bits]
        else:
            kinds, kind_of = np.unique(vmat, axis=0, return_inverse=True)
            patterns = [np.flatnonzero(row).tolist() for row in kinds]
        for i, kind in zip(np.flatnonzero(mine).tolist(), kind_of.reshape(-1)[r].tolist()):
            vetoed[i] = list(patterns[kind])
    out = decisions.copy()
    out["final"] = final
    out["vetoed"] = vetoed
    out["veto_override"] = override
    out["veto_conflict"] = conflict
    out["low_quorum"] = low_q
    return out


def disagreement_flags(judgments: pd.DataFrame, items: Iterable[str],
                       rules: PanelRules) -> pd.DataFrame:
    """Per item: split, position_inconsistent, cycle, and the number of answering critics."""
    with shared_rows():
        return _disagreement_flags(columnar(judgments), list(items), rules)


def _disagreement_flags(judgments: pd.DataFrame, items: list[str],
                        rules: PanelRules) -> pd.DataFrame:
    item_codes, distinct = pd.factorize(pd.Index(items, dtype=object))  # items may repeat
    nd = len(distinct)
    res = pd.DataFrame({"item_id": pd.Index(items, dtype=object)})
    # each critic's support for response 0 (critic_p0), per item: the highest, the lowest and
    # their spread; an item is split when one critic is confidently for it and one against
    sup = response_support(judgments)
    zero = sup[sup["response"] == 0] if len(sup) else sup
    split = np.zeros(nd, dtype=bool)
    std = np.full(nd, np.nan)
    if len(zero):
        at = item_positions(zero["item_id"], distinct)
        p0 = zero["support"].to_numpy(dtype=float)
        keep = (at >= 0) & ~np.isnan(p0)
        at, p0 = at[keep], p0[keep]
        hi = np.full(nd, -np.inf)
        lo = np.full(nd, np.inf)
        np.maximum.at(hi, at, p0)
        np.minimum.at(lo, at, p0)
        c = rules.confident
        split = (hi >= 0.5 + c) & (lo <= 0.5 - c)
        count = np.bincount(at, minlength=nd)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(at, weights=p0, minlength=nd) / count
            std = np.sqrt(np.bincount(at, weights=(p0 - mean[at]) ** 2, minlength=nd) / count)
    res["split"] = split[item_codes]
    res["critic_p0_std"] = std[item_codes]
    flips = position_flips(judgments)
    per_item = np.zeros(nd, dtype=np.int64)
    if len(flips):
        at = item_positions(flips["item_id"], distinct)
        f = flips["flip"].to_numpy(dtype=bool) & (at >= 0)
        per_item = np.bincount(at[f], minlength=nd)
    res["n_position_flips"] = per_item[item_codes].astype(int)
    res["position_inconsistent"] = res["n_position_flips"] > 0
    cyclic = [i for i, cyc in _cycles(judgments).items() if cyc]
    in_cycle = np.zeros(nd, dtype=bool)
    at = distinct.get_indexer(cyclic) if cyclic else np.zeros(0, dtype=np.int64)
    in_cycle[at[at >= 0]] = True
    res["cycle"] = in_cycle[item_codes]
    return res[["item_id", "split", "critic_p0_std", "n_position_flips",
                "position_inconsistent", "cycle"]]


def _cycles(judgments: pd.DataFrame) -> dict[str, bool]:
    """K-way items whose panel-level pairwise majorities are intransitive (a directed cycle)."""
    pw = pairwise_rows(judgments)
    if pw.empty:
        return {}
    pw = pw.assign(lo=np.minimum(pw["a"], pw["b"]), hi=np.maximum(pw["a"], pw["b"]),
                   p_lo=np.where(pw["a"] < pw["b"], pw["p_ab"], 1 - pw["p_ab"]))
    kway = pw.groupby("item_id")["hi"].max()
    kway = set(kway[kway >= 2].index)
    out: dict[str, bool] = {}
    if not kway:
        return out
    mean = pw[pw["item_id"].isin(kway)].groupby(["item_id", "lo", "hi"])["p_lo"].mean()
    for item, sub in mean.groupby(level=0):
        g = nx.DiGraph()
        for (_, lo, hi), p in sub.items():
            if p > 0.5 + TIE_TOL:
                g.add_edge(lo, hi)
            elif p < 0.5 - TIE_TOL:
                g.add_edge(hi, lo)
        out[item] = not nx.is_directed_acyclic_graph(g)
    return out
