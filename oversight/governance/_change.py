"""A proposed change to a constitution (CHANGE.toml), applied to give the new constitution.

    [amendment]
    summary = "Add an exact e-mail verifier as a veto"   # required
    proposer = "dana"                                     # optional
    version = "1.1"                                       # optional new version label
    remove = ["no-aggregation"]                           # optional principle ids

    [[add]]        # a whole principle table, as in the constitution file
    id = "no-email-addresses"
    ...

    [[edit]]       # id plus the fields to set (weight, kind, statement, verifier, ...)
    id = "data-minimisation"
    weight = 1.5
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.constitution import Constitution, ConstitutionError, parse_constitution
from oversight.constitution import principle_dict as _pdict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_AMENDMENT_KEYS = {"summary": str, "proposer": str, "version": str, "remove": list}
_EDITABLE = ("statement", "critique_request", "revision_request", "comparison_question",
             "weight", "kind", "tags", "verifier")


@dataclass(frozen=True)
class Proposal:
    """What CHANGE.toml asks for. `path` names the file in every error."""

    summary: str
    path: str = "<proposal>"
    proposer: str = ""
    version: str | None = None
    add: tuple[dict[str, Any], ...] = ()
    edit: tuple[dict[str, Any], ...] = ()
    remove: tuple[str, ...] = field(default=())


def load_proposal(path: str | Path) -> Proposal:
    """Read and check CHANGE.toml; errors name the file and the key."""
    p = str(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConstitutionError(p, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConstitutionError(p, f"invalid TOML: {exc}") from None
    return parse_proposal(doc, p)


def parse_proposal(doc: dict[str, Any], path: str = "<proposal>") -> Proposal:
    for key in doc:
        if key not in ("amendment", "add", "edit"):
            raise ConstitutionError(path, "unknown top-level key; valid keys: amendment, add, "
                                    "edit", field=key)
    head = doc.get("amendment")
    if not isinstance(head, dict):
        raise ConstitutionError(path, "missing the [amendment] table (with a summary)",
                                field="amendment")
    for key, value in head.items():
        if key not in _AMENDMENT_KEYS:
            raise ConstitutionError(path, f"unknown key in [amendment]; valid keys: "
                                    f"{', '.join(_AMENDMENT_KEYS)}", field=key)
        if not isinstance(value, _AMENDMENT_KEYS[key]):
            raise ConstitutionError(path, f"expected {_AMENDMENT_KEYS[key].__name__}, got "
                                    f"{type(value).__name__}", field=key)
    if not str(head.get("summary", "")).strip():
        raise ConstitutionError(path, "every amendment needs a one-line summary",
                                field="summary")
    remove = head.get("remove", [])
    if not all(isinstance(r, str) for r in remove):
        raise ConstitutionError(path, "must be a list of principle ids", field="remove")
    for name in ("add", "edit"):
        tables = doc.get(name, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConstitutionError(path, f"use [[{name}]] tables", field=name)
        for n, t in enumerate(tables, 1):
            if not isinstance(t.get("id"), str):
                raise ConstitutionError(path, f"[[{name}]] #{n} needs an id", field=f"{name}.id")
    for t in doc.get("edit", []):
        bad = [k for k in t if k != "id" and k not in _EDITABLE]
        if bad:
            raise ConstitutionError(path, f"cannot edit {bad}; editable fields: "
                                    f"{', '.join(_EDITABLE)}", principle=t["id"],
                                    field=bad[0])
    if not (remove or doc.get("add") or doc.get("edit") or "version" in head):
        raise ConstitutionError(path, "the proposal changes nothing (no add, edit, remove or "
                                "version)")
    return Proposal(summary=head["summary"].strip(), path=path,
                    proposer=head.get("proposer", ""), version=head.get("version"),
                    add=tuple(doc.get("add", [])), edit=tuple(doc.get("edit", [])),
                    remove=tuple(remove))


def apply_proposal(old: Constitution, proposal: Proposal) -> Constitution:
    """The constitution after the proposal. Unknown ids, duplicate adds and an invalid result
    are errors naming the proposal file and the principle."""
    rows = [_pdict(p) for p in old.principles]
    ids = [r["id"] for r in rows]
    where = f"{proposal.path} (applied to {old.name})"
    for pid in proposal.remove:
        if pid not in ids:
            raise ConstitutionError(where, f"cannot remove: no such principle; ids: "
                                    f"{', '.join(ids)}", principle=pid, field="remove")
    rows = [r for r in rows if r["id"] not in proposal.remove]
    by_id = {r["id"]: r for r in rows}
    for t in proposal.edit:
        if t["id"] not in by_id:
            raise ConstitutionError(where, "cannot edit: no such principle", principle=t["id"],
                                    field="id")
        by_id[t["id"]].update({k: v for k, v in t.items() if k != "id"})
    for t in proposal.add:
        if t["id"] in by_id:
            raise ConstitutionError(where, "cannot add: a principle with this id exists (use "
                                    "[[edit]])", principle=t["id"], field="id")
        rows.append(dict(t))
        by_id[t["id"]] = rows[-1]
    for r in rows:  # drop empty model-question strings of verifier principles
        for k in ("critique_request", "revision_request", "comparison_question"):
            if r.get(k) == "" and "verifier" in r:
                del r[k]
    doc = {"constitution": {"name": old.name, "version": proposal.version or old.version,
                            "description": old.description},
           "principles": rows}
    try:
        new = parse_constitution(doc)
    except ConstitutionError as exc:
        raise ConstitutionError(where, f"the result is not a valid constitution: "
                                f"{str(exc).removeprefix('<constitution>: ')}") from None
    return Constitution(new.name, new.version, new.description, new.principles, path=old.path,
                        provenance=old.provenance)


def structural_diff(old: Constitution, new: Constitution) -> dict[str, Any]:
    """{added: [ids], removed: [ids], edited: {id: {field: [old, new]}}, header: {...}}."""
    o = {p.id: _pdict(p) for p in old.principles}
    n = {p.id: _pdict(p) for p in new.principles}
    edited: dict[str, dict[str, list[Any]]] = {}
    for pid in o.keys() & n.keys():
        fields = {k: [o[pid].get(k), n[pid].get(k)] for k in set(o[pid]) | set(n[pid])
                  if o[pid].get(k) != n[pid].get(k)}
        if fields:
            edited[pid] = fields
    header = {k: [getattr(old, k), getattr(new, k)] for k in ("version", "description")
              if getattr(old, k) != getattr(new, k)}
    return {"added": [p for p in n if p not in o], "removed": [p for p in o if p not in n],
            "edited": dict(sorted(edited.items())), "header": header}


def weakened_vetoes(old: Constitution, new: Constitution) -> list[str]:
    """Veto principles the change removes, turns soft, or whose verifier it changes/removes:
    each needs the gate's quorum of named approvers."""
    out = []
    new_by = {p.id: p for p in new.principles}
    for p in old.principles:
        if p.kind != "veto":
            continue
        q = new_by.get(p.id)
        if q is None:
            out.append(f"{p.id}: removed")
        elif q.kind != "veto":
            out.append(f"{p.id}: veto -> {q.kind}")
        elif p.verifier != q.verifier:
            out.append(f"{p.id}: verifier {'removed' if q.verifier is None else 'changed'}")
    return out
