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
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from oversight.aggregate._ballots import TIE_TOL, critic_p0, pairwise_rows, shared_rows
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
    is_veto = judgments.get("principle_kind", pd.Series("soft", index=judgments.index)) == "veto"
    is_veto |= judgments["critic"].isin(rules.veto_critics)
    v = judgments[is_veto & (judgments["status"] == "ok")]
    out: dict[str, set[int]] = {}
    if v.empty:
        return out
    m = rules.veto_margin
    pw = pairwise_rows(v)
    if not pw.empty:
        # Per (item, critic, principle), both orders averaged, P(a beats b) with a < b.
        pw = pw.assign(lo=np.minimum(pw["a"], pw["b"]), hi=np.maximum(pw["a"], pw["b"]),
                       p_lo=np.where(pw["a"] < pw["b"], pw["p_ab"], 1 - pw["p_ab"]))
        g = pw.groupby(["item_id", "critic", "principle", "lo", "hi"])["p_lo"].mean()
        p = g.to_numpy(dtype=float)
        item = g.index.get_level_values("item_id").to_numpy(dtype=object)
        vetoes_hi = _beyond_all(p, m)
        vetoes_lo = ~vetoes_hi & _beyond_all(1.0 - p, m)
        _add(out, item[vetoes_hi], g.index.get_level_values("hi")[vetoes_hi])
        _add(out, item[vetoes_lo], g.index.get_level_values("lo")[vetoes_lo])
    pf = v[v["mode"] == "passfail"]
    if not pf.empty:
        g = pf.groupby(["item_id", "critic", "principle", "order"])["value"].mean()
        fails = _beyond_all(1.0 - g.to_numpy(dtype=float), m)
        _add(out, g.index.get_level_values("item_id").to_numpy(dtype=object)[fails],
             g.index.get_level_values("order")[fails])
    return out


def _beyond_all(p: np.ndarray, margin: float) -> np.ndarray:
    """`_beyond` on an array (NaN is never beyond)."""
    if margin == 0:
        return p > 0.5 + TIE_TOL
    return p >= 0.5 + margin - TIE_TOL


def _add(out: dict[str, set[int]], items: Iterable[Any], responses: Iterable[Any]) -> None:
    for item, r in zip(items, responses):
        out.setdefault(item, set()).add(int(r))


def apply_rules(decisions: pd.DataFrame, judgments: pd.DataFrame, k_of: dict[str, int],
                rules: PanelRules) -> pd.DataFrame:
    """Final labels after quorum, supermajority and veto. `decisions` needs item_id, label,
    share, n_critics. Adds: final, vetoed, veto_override, veto_conflict, low_quorum."""
    vetoes = vetoed_responses(judgments, rules)
    inferred = infer_k(judgments) if vetoes else {}
    final, vetoed, override, conflict, low_q = [], [], [], [], []
    for item, label, share, n in zip(decisions["item_id"].to_numpy(dtype=object).tolist(),
                                     decisions["label"].to_numpy(dtype=object).tolist(),
                                     decisions["share"].to_numpy(dtype=float).tolist(),
                                     decisions["n_critics"].to_numpy().tolist()):
        lab: Any = label
        lq = int(n) < rules.quorum
        if lq:
            lab = "no_quorum"
        elif (rules.supermajority is not None and isinstance(lab, (int, np.integer))
              and share < rules.supermajority - TIE_TOL):
            lab = "no_supermajority"
        v = vetoes.get(item, set())
        allowed = [r for r in range(k_of.get(item) or inferred.get(item, 2)) if r not in v]
        ov = cf = False
        if v:
            if not allowed:
                lab, cf = "contested", True
            elif len(allowed) == 1:
                ov = lab != allowed[0]
                lab = allowed[0]
            elif isinstance(lab, (int, np.integer)) and lab in v:
                # K-way: the majority winner was vetoed; no aggregate may restore it.
                lab, ov = "vetoed", True
        final.append(lab)
        vetoed.append(sorted(v))
        override.append(ov)
        conflict.append(cf)
        low_q.append(lq)
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
        return _disagreement_flags(judgments, list(items), rules)


def _disagreement_flags(judgments: pd.DataFrame, items: list[str],
                        rules: PanelRules) -> pd.DataFrame:
    p_all = critic_p0(judgments)
    res = pd.DataFrame({"item_id": items})
    if not p_all.empty:
        c = rules.confident
        g = p_all.groupby("item_id")["p0"]
        hi = g.max()
        lo = g.min()
        split = (hi >= 0.5 + c) & (lo <= 0.5 - c)
        res["split"] = res["item_id"].isin(set(split[split].index))
        res["critic_p0_std"] = res["item_id"].map(g.std(ddof=0))
    else:
        res["split"] = False
        res["critic_p0_std"] = np.nan
    flips = position_flips(judgments)
    per_item = flips.groupby("item_id")["flip"].sum() if len(flips) else pd.Series(dtype=int)
    res["n_position_flips"] = res["item_id"].map(per_item.to_dict()).fillna(0).astype(int)
    res["position_inconsistent"] = res["n_position_flips"] > 0
    res["cycle"] = res["item_id"].isin({i for i, c in _cycles(judgments).items() if c})
    return res


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
