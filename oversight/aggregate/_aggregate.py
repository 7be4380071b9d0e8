"""One entry point: judgments -> per-item decisions, flags and TRL-shaped preferences.

`aggregate(judgments, items, method=...)` runs the chosen aggregator, then the panel rules
(quorum, supermajority, veto: always last, so no aggregator can override a veto), then the
disagreement flags. Every decision keeps its provenance: which critics and principles voted,
under which constitution hashes and models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate._conservative import Conservative
from oversight.aggregate._rules import PanelRules, apply_rules, disagreement_flags
from oversight.aggregate._vote import Vote
from oversight.data import Comparison

METHODS = ("vote", "majority", "bt", "ds", "conservative")
FLAG_COLUMNS = ("split", "veto_conflict", "position_inconsistent", "low_quorum", "cycle")


@dataclass
class Aggregation:
    """Per-item decisions with flags (`decisions`), and the aggregator that made them."""

    method: str
    decisions: pd.DataFrame
    rules: PanelRules
    model: Any = None
    provenance: pd.DataFrame = field(default_factory=pd.DataFrame)

    def flagged(self, flags: Sequence[str] = FLAG_COLUMNS) -> pd.DataFrame:
        bad = [f for f in flags if f not in FLAG_COLUMNS]
        if bad:
            raise ValueError(f"unknown flag(s) {bad}; valid: {', '.join(FLAG_COLUMNS)}")
        mask = np.zeros(len(self.decisions), dtype=bool)
        for f in flags:
            mask |= self.decisions[f].to_numpy(dtype=bool)
        return self.decisions[mask]

    def flag_counts(self) -> dict[str, int]:
        return {f: int(self.decisions[f].sum()) for f in FLAG_COLUMNS}

    def preferences(self, items: Sequence[Comparison], *, min_margin: float = 0.0,
                    drop_flags: Sequence[str] = (), drop_veto_conflicts: bool = True
                    ) -> pd.DataFrame:
        """TRL preference rows: prompt, chosen, rejected, margin, soft_label, flags, provenance.

        For K-way items the winner is paired with every other response. Items without a
        decided winner (tie, abstain, no quorum, contested) yield no row.
        """
        by_id = {it.id: it for it in items}
        prov = self.provenance.set_index("item_id") if len(self.provenance) else None
        rows = []
        for d in self.decisions.itertuples(index=False):
            item = by_id.get(d.item_id)
            if item is None or not isinstance(d.final, (int, np.integer)):
                continue
            if d.margin < min_margin or (drop_veto_conflicts and d.veto_conflict):
                continue
            if any(getattr(d, f) for f in drop_flags):
                continue
            win = int(d.final)
            for other in range(item.k):
                if other == win:
                    continue
                soft = d.p0 if win == 0 else 1 - d.p0 if item.k == 2 else np.nan
                row = {
                    "prompt": item.prompt if isinstance(item.prompt, str) else list(item.prompt),
                    "chosen": item.responses[win], "rejected": item.responses[other],
                    "margin": float(d.margin), "soft_label": float(soft),
                    "item_id": d.item_id, "chosen_index": win, "rejected_index": other,
                    "reference": item.reference, "method": self.method,
                    "veto_override": bool(d.veto_override),
                }
                for f in FLAG_COLUMNS:
                    row[f] = bool(getattr(d, f))
                if prov is not None and d.item_id in prov.index:
                    for col in prov.columns:
                        row[col] = prov.at[d.item_id, col]
                rows.append(row)
        if not rows:
            return pd.DataFrame(columns=["prompt", "chosen", "rejected", "margin", "soft_label",
                                         "item_id", "chosen_index", "rejected_index"])
        return pd.DataFrame(rows)


def _provenance(judgments: pd.DataFrame) -> pd.DataFrame:
    """Per item (sorted by id): the sorted, comma-joined distinct critics, models,
    critic:principle pairs and constitution@hash of its ok judgments, and their count."""
    ok = judgments[judgments["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=["item_id"])
    item_codes, item_ids = pd.factorize(ok["item_id"].to_numpy(dtype=object), sort=True)

    def text(col: str) -> np.ndarray:
        return ok[col].to_numpy(dtype=object).astype(str).astype(object)

    out = {"item_id": item_ids,
           "critics": _joined_sets(item_codes, len(item_ids), text("critic")),
           "models": _joined_sets(item_codes, len(item_ids), text("model")),
           "principles": _joined_sets(item_codes, len(item_ids),
                                      text("critic") + ":" + text("principle")),
           "constitutions": _joined_sets(item_codes, len(item_ids),
                                         text("constitution") + "@" + text("constitution_hash")),
           "n_judgments": np.bincount(item_codes, minlength=len(item_ids))}
    return pd.DataFrame(out)


def _joined_sets(item_codes: np.ndarray, n_items: int, values: np.ndarray) -> np.ndarray:
    """Per item: ",".join(sorted(set(values of the item))), on columns. Each distinct set is
    joined once: an item's set is a bit mask over the (sorted) distinct values."""
    value_codes, uniques = pd.factorize(values, sort=True)
    if len(uniques) > 62:  # too many distinct values for a mask: join per item
        frame = pd.DataFrame({"i": item_codes, "v": values}).drop_duplicates()
        frame = frame.sort_values(["i", "v"])
        joined = frame.groupby("i", sort=True)["v"].agg(",".join)
        return joined.reindex(range(n_items)).to_numpy(dtype=object)
    masks = np.zeros(n_items, dtype=np.int64)
    np.bitwise_or.at(masks, item_codes, np.left_shift(np.int64(1), value_codes.astype(np.int64)))
    distinct, inverse = np.unique(masks, return_inverse=True)
    names = [",".join(str(uniques[b]) for b in range(len(uniques)) if (int(m) >> b) & 1)
             for m in distinct]
    return np.array(names, dtype=object)[inverse]


def aggregate(judgments: pd.DataFrame, items: Sequence[Comparison] | None = None, *,
              method: str = "vote", rules: PanelRules | None = None,
              critic_weights: Mapping[str, float] | str | None = None,
              gold: Mapping[str, int] | None = None, **options: Any) -> Aggregation:
    """Fuse judgments into per-item decisions. `method`: vote, majority, bt, ds, conservative."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: use one of {', '.join(METHODS)}")
    rules = rules or PanelRules()
    item_ids = [it.id for it in items] if items is not None else list(
        pd.unique(judgments["item_id"]))
    k_of = {it.id: it.k for it in items} if items is not None else {}
    if isinstance(critic_weights, str):
        if critic_weights != "ds":
            raise ValueError(f"critic_weights={critic_weights!r}: use a mapping or 'ds' "
                             "(Dawid-Skene reliability weights)")
        from oversight.aggregate._bridges import ds_weights

        critic_weights = ds_weights(judgments, gold)
    votes = Vote(weighted=method != "majority", critic_weights=critic_weights).fit(judgments)
    vres = votes.results_.set_index("item_id")
    model: Any = votes
    if method in ("vote", "majority"):
        dec = vres[["label", "share", "margin", "entropy", "p0"]].copy()
    elif method == "conservative":
        model = Conservative(**options).fit(judgments)
        dec = model.results_.set_index("item_id")[["label", "margin", "p0"]].copy()
        dec["share"] = vres["share"].reindex(dec.index)
        dec["entropy"] = vres["entropy"].reindex(dec.index)
    elif method == "bt":
        from oversight.aggregate._bridges import bt_decisions

        model, dec = bt_decisions(judgments, **options)
        dec["share"] = vres["share"].reindex(dec.index)
        dec["entropy"] = vres["entropy"].reindex(dec.index)
    else:
        from oversight.aggregate._bridges import ds_decisions

        model, dec = ds_decisions(judgments, gold=gold, **options)
        dec["share"] = vres["share"].reindex(dec.index)
        dec["entropy"] = vres["entropy"].reindex(dec.index)
    dec = dec.reindex(item_ids)
    dec["n_critics"] = vres["n_ballots"].reindex(dec.index).fillna(0).astype(int)
    dec["label"] = dec["label"].astype(object).where(dec["label"].notna(), "abstain")
    dec = dec.reset_index().rename(columns={"index": "item_id"})
    flags = disagreement_flags(judgments, item_ids, rules)
    dec = dec.merge(flags, on="item_id", how="left")
    dec["margin"] = dec["margin"].fillna(0.0)
    dec["share"] = dec["share"].fillna(0.0)
    dec = apply_rules(dec, judgments, k_of, rules)
    cols = ["item_id", "final", "label", "p0", "margin", "share", "entropy", "n_critics",
            *FLAG_COLUMNS, "veto_override", "vetoed", "n_position_flips", "critic_p0_std"]
    return Aggregation(method=method, decisions=dec[cols], rules=rules, model=model,
                       provenance=_provenance(judgments))
