"""The Judgment row: one critic's verdict on one item, under one principle, in one order."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Mode = Literal["pairwise", "score", "passfail", "likelihood"]


@dataclass
class Judgment:
    """Long-format judgment with full provenance.

    `order` lists the response indices in the order shown ("1,0": response 1 shown as A).
    `value` is P(first shown is better) for pairwise, the expected 1-10 score for `score`, and
    P(pass) for `passfail`, and for `likelihood` sigmoid of the per-token (or summed) log
    p(response | principle upheld) - log p(response | reference context). It is None unless
    status is "ok": an abstention is never a number.
    """

    item_id: str
    critic: str
    fingerprint: str
    model: str
    constitution: str
    constitution_hash: str
    principle: str
    principle_kind: str
    principle_weight: float
    template: str
    order: str
    mode: str
    value: float | None
    status: str
    reason: str | None = None
    raw: str | None = None
    rationale: str | None = None
    choice_mass: float | None = None
    tokens: int = 0
    latency_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Judgment:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def shown(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.order.split(","))


JUDGMENT_COLUMNS = [f.name for f in fields(Judgment)]
