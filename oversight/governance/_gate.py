"""The declared gate an amendment must pass, and its old-versus-new evaluation.

The gate lives beside the constitution (`privacy.gate.toml`) so that a proposer does not pick
their own bar; its SHA-256 goes into the log entry.

    [gate]
    max_agreement_drop = 0.02        # upper end of the paired CI of (old - new) agreement
    confidence = 0.95                # of that interval (paired bootstrap over items)
    max_position_consistency_drop = 0.0
    min_items = 20                   # labelled items needed
    method = "vote"                  # aggregation method for the panel's decision
    approvers = ["alice", "bob", "carol"]
    veto_quorum = 2                  # named approvers needed to remove or weaken a veto

Both constitutions are judged on the same labelled items by the same backend: model
principles by a pairwise critic (both orders), verifier principles by a verifier critic.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oversight.aggregate import (
    METHODS,
    agreement_credit,
    baseline_agreement,
    paired_bootstrap,
    position_consistency,
)
from oversight.backends import Backend
from oversight.constitution import Constitution, ConstitutionError
from oversight.critics import Critic, verifier_critic
from oversight.data import Comparison
from oversight.governance._change import weakened_vetoes
from oversight.panel import Panel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GATE_SUFFIX = ".gate.toml"


@dataclass(frozen=True)
class Gate:
    """A declared gate; see the module docstring for each field."""

    max_agreement_drop: float = 0.02
    confidence: float = 0.95
    max_position_consistency_drop: float = 0.0
    min_items: int = 20
    method: str = "vote"
    approvers: tuple[str, ...] = ()
    veto_quorum: int = 1
    path: str | None = field(default=None, compare=False)
    sha256: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = self.path or "<gate>"
        checks = [
            (0 <= self.max_agreement_drop <= 1, "max_agreement_drop", "must be in [0, 1]"),
            (0 < self.confidence < 1, "confidence", "must be in (0, 1)"),
            (0 <= self.max_position_consistency_drop <= 1, "max_position_consistency_drop",
             "must be in [0, 1]"),
            (self.min_items >= 1, "min_items", "must be >= 1"),
            (self.method in METHODS, "method", f"use one of {', '.join(METHODS)}"),
            (self.veto_quorum >= 1, "veto_quorum", "must be >= 1"),
            (self.veto_quorum <= len(self.approvers) or not self.approvers, "veto_quorum",
             f"{self.veto_quorum} exceeds the {len(self.approvers)} named approvers"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConstitutionError(where, message, field=name)

    def declaration(self) -> dict[str, Any]:
        d = asdict(self)
        d["approvers"] = list(self.approvers)
        d.pop("path")
        return d


def gate_path(constitution_path: str | Path) -> Path:
    p = Path(constitution_path)
    return p.with_name(p.stem + GATE_SUFFIX)


def load_gate(path: str | Path) -> Gate:
    p = str(path)
    try:
        raw = Path(path).read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConstitutionError(p, "gate file not found; declare the gate beside the "
                                "constitution (see `oversight constitution amend --help`)"
                                ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConstitutionError(p, f"invalid TOML: {exc}") from None
    table = doc.get("gate")
    if set(doc) != {"gate"} or not isinstance(table, dict):
        raise ConstitutionError(p, "a gate file holds exactly one [gate] table", field="gate")
    types: dict[str, Any] = {"max_agreement_drop": (int, float), "confidence": (int, float),
                             "max_position_consistency_drop": (int, float), "min_items": int,
                             "method": str, "approvers": list, "veto_quorum": int}
    for k, v in table.items():
        if k not in types:
            raise ConstitutionError(p, f"unknown key in [gate]; valid keys: "
                                    f"{', '.join(types)}", field=k)
        if isinstance(v, bool) or not isinstance(v, types[k]):
            raise ConstitutionError(p, f"wrong type {type(v).__name__}", field=k)
    if not all(isinstance(a, str) and a.strip() for a in table.get("approvers", [])):
        raise ConstitutionError(p, "must be a list of names", field="approvers")
    kw = dict(table)
    kw["approvers"] = tuple(table.get("approvers", ()))
    return Gate(**kw, path=p, sha256=hashlib.sha256(raw).hexdigest())


@dataclass
class GateResult:
    """The figures, each check's verdict, and the decision."""

    accepted: bool
    figures: dict[str, Any]
    checks: dict[str, dict[str, Any]]
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "figures": self.figures, "checks": self.checks,
                "reasons": self.reasons}


def critics_for(constitution: Constitution, backend: Backend, suffix: str) -> list[Critic]:
    """A pairwise critic for model principles (both orders) and a verifier critic, if any."""
    out: list[Critic] = []
    if any(not p.is_verifier for p in constitution.principles):
        out.append(Critic(constitution, backend, mode="pairwise", swap=True,
                          name=f"{constitution.name}-{suffix}"))
    if any(p.is_verifier for p in constitution.principles):
        out.append(verifier_critic(constitution, name=f"{constitution.name}-{suffix}-verifiers"))
    return out


def _judge(constitution: Constitution, backend: Backend, items: Sequence[Comparison],
           method: str, suffix: str, store: Any) -> tuple[dict[str, Any], Any]:
    panel = Panel(critics_for(constitution, backend, suffix), method=method)
    res = panel.judge(list(items), store=store)
    dec = res.aggregate(method).decisions
    return dict(zip(dec["item_id"], dec["final"])), res.judgments


def evaluate_gate(old: Constitution, new: Constitution, items: Sequence[Comparison],
                  backend: Backend, gate: Gate, approvers: Sequence[str] = (), *,
                  store: Any = None, seed: int = 0) -> GateResult:
    """Judge `items` under old and new, compare agreement with their references (paired
    bootstrap), position consistency, and approvals for weakened vetoes."""
    labelled = [it for it in items if it.reference is not None and it.k == 2]
    reasons: list[str] = []
    ids = [it.id for it in labelled]
    ref = {it.id: int(it.reference) for it in labelled}  # type: ignore[arg-type]
    final_old, j_old = _judge(old, backend, labelled, gate.method, "old", store)
    final_new, j_new = _judge(new, backend, labelled, gate.method, "new", store)
    a_old = agreement_credit(final_old, ref, ids)
    a_new = agreement_credit(final_new, ref, ids)
    drop, lo, hi = paired_bootstrap(a_old, a_new, confidence=gate.confidence, seed=seed)
    base = baseline_agreement(labelled)
    pc_old, n_old = position_consistency(j_old)
    pc_new, n_new = position_consistency(j_new)
    r_old = pc_old / n_old if n_old else math.nan
    r_new = pc_new / n_new if n_new else math.nan
    changed = int(sum(final_old.get(i) != final_new.get(i) for i in ids))
    figures: dict[str, Any] = {
        "n_items": len(labelled), "n_items_given": len(items), "method": gate.method,
        "model": getattr(backend, "model_id", "?"),
        "agreement_old": float(a_old.mean()) if len(ids) else math.nan,
        "agreement_new": float(a_new.mean()) if len(ids) else math.nan,
        "agreement_drop": drop, "agreement_drop_ci": [lo, hi], "confidence": gate.confidence,
        "baselines": {str(b): float(a) for b, a in zip(base["baseline"], base["agreement"])},
        "position_consistency_old": r_old, "position_consistency_new": r_new,
        "position_pairs_old": n_old, "position_pairs_new": n_new,
        "decisions_changed": changed,
    }
    checks: dict[str, dict[str, Any]] = {}
    enough = len(labelled) >= gate.min_items
    checks["min_items"] = {"pass": enough, "value": len(labelled), "bound": gate.min_items}
    if not enough:
        reasons.append(f"{len(labelled)} labelled two-response items, the gate needs "
                       f"{gate.min_items}")
    agree_ok = bool(np.isfinite(hi) and hi <= gate.max_agreement_drop + 1e-12)
    checks["agreement"] = {"pass": agree_ok, "value": hi, "bound": gate.max_agreement_drop}
    if not agree_ok:
        reasons.append(f"agreement may drop by up to {hi:.3f} ({gate.confidence:.0%} CI "
                       f"[{lo:.3f}, {hi:.3f}], point {drop:.3f}); the gate allows "
                       f"{gate.max_agreement_drop}")
    if n_old and n_new:
        pc_drop = r_old - r_new
        pc_ok = bool(pc_drop <= gate.max_position_consistency_drop + 1e-12)
    else:
        pc_drop, pc_ok = math.nan, True  # no pairwise model critic: nothing to compare
    checks["position_consistency"] = {"pass": pc_ok, "value": pc_drop,
                                      "bound": gate.max_position_consistency_drop}
    if not pc_ok:
        reasons.append(f"position consistency drops from {r_old:.3f} to {r_new:.3f}; the gate "
                       f"allows {gate.max_position_consistency_drop}")
    weakened = weakened_vetoes(old, new)
    named = sorted(set(approvers) & set(gate.approvers))
    unknown = sorted(set(approvers) - set(gate.approvers))
    veto_ok = not weakened or len(named) >= gate.veto_quorum
    checks["veto_approval"] = {"pass": veto_ok, "weakened": weakened, "approvers": named,
                               "unknown_approvers": unknown, "quorum": gate.veto_quorum}
    if not veto_ok:
        reasons.append(f"weakens veto(s) {weakened}: needs {gate.veto_quorum} of the named "
                       f"approvers {list(gate.approvers)}, got {named}"
                       + (f" (not named in the gate: {unknown})" if unknown else ""))
    return GateResult(accepted=not reasons, figures=figures, checks=checks, reasons=reasons)
