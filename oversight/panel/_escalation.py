"""Escalation: cheap critics judge everything, only contested items go further.

After the panel's critics have judged every item, the items carrying any of the chosen
flags go to stronger critics (which then decide them) or to the human review queue (they
get no automatic decision). Flags:

* ``split``: the critics' verdicts differ;
* ``low_margin``: the winner's vote margin is below ``min_margin``;
* ``position_inconsistent``: a critic's verdict flips when the order is swapped;
* ``veto_conflict``: a veto critic opposes the panel's choice;
* ``abstained``: some critic abstained or erred on the item, or the panel has no decision.

The result records which items escalated and why, how many judgments the strong critics
spent against judging every item, and every decision's provenance (`decided_by`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from oversight.critics import Critic

if TYPE_CHECKING:  # pandas loads when an escalation runs, not on `import oversight`
    import pandas as pd

ESCALATION_FLAGS = ("split", "low_margin", "position_inconsistent", "veto_conflict",
                    "abstained")
TARGETS = ("critic", "review")


@dataclass
class Escalation:
    """Where contested items go: `to="critic"` (the `critics`) or `to="review"` (humans)."""

    critics: Sequence[Critic] = ()
    flags: Sequence[str] = ("split", "low_margin", "position_inconsistent")
    min_margin: float = 0.2
    to: str = "critic"

    def __post_init__(self) -> None:
        bad = [f for f in self.flags if f not in ESCALATION_FLAGS]
        if bad:
            raise ValueError(f"escalation flags {bad} are unknown; valid: "
                             f"{', '.join(ESCALATION_FLAGS)}")
        if not self.flags:
            raise ValueError("escalation needs at least one flag")
        if self.to not in TARGETS:
            raise ValueError(f"escalation to={self.to!r}: use 'critic' or 'review'")
        if self.to == "critic" and not self.critics:
            raise ValueError("escalation to='critic' needs critics=[...] (the stronger critics)")
        if self.to == "review" and self.critics:
            raise ValueError("escalation to='review' sends items to humans; drop critics=[...]"
                             " or use to='critic'")
        if not 0.0 <= self.min_margin <= 1.0:
            raise ValueError(f"escalation min_margin={self.min_margin} must be in [0, 1]")
        self.critics = list(self.critics)


@dataclass
class EscalationRecord:
    """What escalation did: `items` (item_id, reasons, to), the strong critics' result, and
    the judgment counts."""

    items: pd.DataFrame
    to: str
    strong: Any = None  # PanelResult of the strong critics on the escalated items
    spent: int = 0
    if_all: int = 0
    n_items: int = 0
    critics: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"items": self.n_items, "escalated": len(self.items), "to": self.to,
                "critics": self.critics, "strong_judgments": self.spent,
                "strong_judgments_if_all": self.if_all,
                "share_spent": self.spent / self.if_all if self.if_all else 0.0,
                "reasons": self.reason_counts()}

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.items["reasons"]:
            for f in str(r).split(","):
                if f:
                    counts[f] = counts.get(f, 0) + 1
        return dict(sorted(counts.items()))


def contested(decisions: pd.DataFrame, judgments: pd.DataFrame, flags: Sequence[str],
              min_margin: float) -> pd.DataFrame:
    """(item_id, reasons): the items with any chosen flag, reasons comma-joined."""
    import pandas as pd

    bad_status = set(judgments.loc[judgments["status"] != "ok", "item_id"]) \
        if len(judgments) else set()
    rows = []
    for d in decisions.itertuples(index=False):
        why = []
        for f in flags:
            if f == "low_margin":
                hit = float(d.margin) < min_margin
            elif f == "abstained":
                decided = isinstance(d.final, (int, np.integer)) or (
                    isinstance(d.final, (float, np.floating)) and not np.isnan(d.final))
                hit = d.item_id in bad_status or not decided
            else:
                hit = bool(getattr(d, f))
            if hit:
                why.append(f)
        if why:
            rows.append({"item_id": d.item_id, "reasons": ",".join(why)})
    return pd.DataFrame(rows, columns=["item_id", "reasons"])


def apply_escalation(agg: Any, record: EscalationRecord, judgments: pd.DataFrame) -> Any:
    """Decisions with escalated items decided by the strong critics (or held for review).

    Adds `decided_by` ("panel", "escalated:<critics>" or "review") and `escalation` (the
    reasons) to the decisions, and the strong critics to the provenance of escalated items.
    """
    from oversight.aggregate._aggregate import _provenance

    dec = agg.decisions.copy()
    dec["decided_by"] = "panel"
    dec["escalation"] = ""
    reasons = dict(zip(record.items["item_id"], record.items["reasons"], strict=True))
    mask = dec["item_id"].isin(set(reasons))
    dec.loc[mask, "escalation"] = dec.loc[mask, "item_id"].map(reasons)
    dec["final"] = dec["final"].astype(object)
    dec["label"] = dec["label"].astype(object)
    if record.to == "review":
        dec.loc[mask, ["final", "label"]] = "review"
        dec.loc[mask, "decided_by"] = "review"
    elif record.strong is not None:
        strong = record.strong.aggregate().decisions.set_index("item_id")
        cols = ["final", "label", "p0", "margin", "share", "entropy"]
        for idx in dec.index[mask]:
            item = dec.at[idx, "item_id"]
            if item in strong.index:
                for c in cols:
                    dec.at[idx, c] = strong.at[item, c]
        dec.loc[mask, "decided_by"] = "escalated:" + ",".join(record.critics)
        import pandas as pd

        both = pd.concat([judgments, record.strong.judgments], ignore_index=True)
        agg.provenance = _provenance(both) if len(both) else agg.provenance
    agg.decisions = dec
    return agg

