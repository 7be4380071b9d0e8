"""Amend a constitution through its gate and record the result in its hash-chained log."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oversight.backends import Backend
from oversight.constitution import (
    Constitution,
    ConstitutionError,
    load_constitution,
    log_path,
    read_log,
    to_toml,
    verify_log,
)
from oversight.constitution._log import append_entry, file_sha256
from oversight.data import Comparison
from oversight.governance._change import Proposal, apply_proposal, structural_diff
from oversight.governance._gate import Gate, GateResult, evaluate_gate, gate_path, load_gate


@dataclass
class AmendResult:
    """The new constitution, the gate's result, and the log entry (None when rejected or a
    dry run)."""

    old: Constitution
    new: Constitution
    gate: GateResult
    changes: dict[str, Any]
    diff: str
    entry: dict[str, Any] | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def text_diff(old: Constitution, new: Constitution, name: str) -> str:
    """Unified diff of the canonical TOML of both versions."""
    return "".join(difflib.unified_diff(
        to_toml(old).splitlines(keepends=True), to_toml(new).splitlines(keepends=True),
        fromfile=f"{name}@{old.hash}", tofile=f"{name}@{new.hash}"))


def init_log(constitution_path: str | Path, *, proposer: str = "") -> dict[str, Any]:
    """Record the constitution as it is now as the log's genesis entry (seq 0)."""
    lp = log_path(constitution_path)
    if read_log(lp):
        raise ConstitutionError(str(lp), "the log already exists; amend the constitution "
                                "instead")
    c = load_constitution(constitution_path)
    return append_entry(lp, old_hash=None, new_hash=c.hash,
                        file_sha256=file_sha256(constitution_path),
                        summary="original: the constitution as first recorded",
                        proposer=proposer, approvers=[], time=_now(), diff="",
                        changes={"added": c.ids, "removed": [], "edited": {}, "header": {}},
                        gate=None)


def amend(constitution_path: str | Path, proposal: Proposal, items: Sequence[Comparison],
          backend: Backend, *, gate: Gate | None = None, approvers: Sequence[str] = (),
          dry_run: bool = False, store: Any = None, seed: int = 0) -> AmendResult:
    """Apply `proposal`, evaluate old against new through the gate, and if accepted rewrite the
    file (canonical TOML) and append a log entry. The log must verify before anything is
    judged; a first amendment records the current file as the genesis entry."""
    path = Path(constitution_path)
    old = load_constitution(path)
    lp = log_path(path)
    if read_log(lp):
        check = verify_log(path)
        if not check.ok:
            raise ConstitutionError(str(lp), "the log does not verify; resolve this before "
                                    "amending: " + "; ".join(check.problems))
    gate = gate or load_gate(gate_path(path))
    new = apply_proposal(old, proposal)
    if new.hash == old.hash:
        raise ConstitutionError(proposal.path, f"the proposal leaves '{old.name}' unchanged "
                                f"(content hash {old.hash})")
    result = evaluate_gate(old, new, items, backend, gate, approvers, store=store, seed=seed)
    changes = structural_diff(old, new)
    diff = text_diff(old, new, path.name)
    entry = None
    if result.accepted and not dry_run:
        if not read_log(lp):
            init_log(path)
        text = to_toml(new)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        gate_doc = {"declaration": gate.declaration(), "gate_file": gate.path,
                    "gate_sha256": gate.sha256, **result.to_dict()}
        entry = append_entry(lp, old_hash=old.hash, new_hash=new.hash,
                             file_sha256=file_sha256(path), summary=proposal.summary,
                             proposer=proposal.proposer, approvers=sorted(set(approvers)),
                             time=_now(), diff=diff, changes=changes, gate=gate_doc)
    return AmendResult(old=old, new=new, gate=result, changes=changes, diff=diff, entry=entry)
