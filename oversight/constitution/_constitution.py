"""Principles and constitutions, loaded from TOML with strict validation.

A constitution's version is the content hash of its parsed principles: editing a comment or
whitespace keeps it, changing any field changes it. That hash goes into every judgment's
provenance, so a cached verdict is never reused under a different constitution.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from oversight.constitution._verifiers import VerifierSpec, parse_verifier
from oversight.errors import ConstitutionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PrincipleKind = Literal["soft", "veto"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Principle:
    """One principle: what it asks for, and the prompts a critic uses to apply it.

    `comparison_question` is phrased so that its answer names the response that better
    upholds the principle. `kind="veto"` marks a hard constraint that no aggregation may override.
    With `verifier` set, the principle is a deterministic check (regex, Python predicate, JSON
    Schema, classifier threshold) judged by a verifier critic, not a question to a model; its
    three request strings are then optional.
    """

    id: str
    statement: str
    critique_request: str
    revision_request: str
    comparison_question: str
    weight: float = 1.0
    kind: PrincipleKind = "soft"
    tags: tuple[str, ...] = ()
    verifier: VerifierSpec | None = None

    @property
    def is_verifier(self) -> bool:
        return self.verifier is not None


def principle_dict(p: Principle) -> dict[str, Any]:
    """A principle as plain data. `verifier` appears only when set, so constitutions without
    verifiers keep the content hash they had before verifiers existed."""
    d = asdict(p)
    d.pop("verifier")
    d["tags"] = list(p.tags)
    if p.verifier is not None:
        d["verifier"] = p.verifier.to_dict()
    return d


@dataclass(frozen=True)
class Constitution:
    """A named set of principles. `hash` is its version in every judgment's provenance."""

    name: str
    version: str
    description: str
    principles: tuple[Principle, ...]
    path: str | None = field(default=None, compare=False)
    # Where the principles came from (a participatory draft's votes, an inverse constitution's
    # labels): a free-form [provenance] table. Part of the content hash when present.
    provenance: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @cached_property
    def hash(self) -> str:
        """The content hash, computed once: the constitution is frozen, so it cannot change."""
        return content_hash(self)

    def __len__(self) -> int:
        return len(self.principles)

    def __getitem__(self, principle_id: str) -> Principle:
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise KeyError(f"constitution '{self.name}' has no principle '{principle_id}'; "
                       f"ids: {', '.join(p.id for p in self.principles)}")

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.principles]

    @classmethod
    def load(cls, path: str | Path) -> Constitution:
        return load_constitution(path)


def content_hash(constitution: Constitution) -> str:
    """First 12 hex digits of SHA-256 over the canonical (sorted-key JSON) content."""
    doc: dict[str, Any] = {
        "name": constitution.name,
        "version": constitution.version,
        "description": constitution.description,
        "principles": [principle_dict(p) for p in constitution.principles],
    }
    if constitution.provenance is not None:
        doc["provenance"] = constitution.provenance
    blob = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_HEADER_FIELDS: dict[str, tuple[type, bool]] = {
    "name": (str, True),
    "version": (str, True),
    "description": (str, True),
}
_PRINCIPLE_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "id": (str, True),
    "statement": (str, True),
    "critique_request": (str, True),
    "revision_request": (str, True),
    "comparison_question": (str, True),
    "weight": ((int, float), False),
    "kind": (str, False),
    "tags": (list, False),
    "verifier": (dict, False),
}
_MODEL_ONLY = ("critique_request", "revision_request", "comparison_question")


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check_table(path: str, table: Any, spec: dict[str, Any], principle: str | None,
                 where: str) -> None:
    if not isinstance(table, dict):
        raise ConstitutionError(path, f"{where} must be a table", principle=principle,
                                field=None if principle else where.strip("[]"))
    for key in table:
        if key not in spec:
            raise ConstitutionError(
                path, f"unknown key in {where}; valid keys: {', '.join(spec)}",
                principle=principle, field=key)
    for key, (typ, required) in spec.items():
        if key not in table:
            if required:
                raise ConstitutionError(path, f"missing required field in {where}",
                                        principle=principle, field=key)
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            raise ConstitutionError(
                path, f"expected {_type_name(typ)}, got {type(value).__name__} {value!r}",
                principle=principle, field=key)
        if isinstance(value, str) and not value.strip():
            raise ConstitutionError(path, "must not be empty", principle=principle, field=key)


def parse_constitution(doc: dict[str, Any], path: str = "<constitution>") -> Constitution:
    """Validate a parsed TOML document and build the Constitution."""
    allowed = {"constitution", "principles", "provenance"}
    for key in doc:
        if key not in allowed:
            raise ConstitutionError(
                path, f"unknown top-level key; valid keys: {', '.join(allowed)}", field=key)
    if "constitution" not in doc:
        raise ConstitutionError(path, "missing the [constitution] table", field="constitution")
    header = doc["constitution"]
    _check_table(path, header, _HEADER_FIELDS, None, "[constitution]")
    name = header["name"]
    if not _NAME_RE.match(name):
        raise ConstitutionError(path, f"name {name!r} must match [a-z0-9_-]+", field="name")
    stem = Path(path).stem
    if path != "<constitution>" and stem != name:
        raise ConstitutionError(path, f"name {name!r} must equal the file stem {stem!r}",
                                field="name")

    provenance = doc.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise ConstitutionError(path, "must be a table ([provenance])", field="provenance")

    raw = doc.get("principles")
    if raw is None:
        raise ConstitutionError(path, "no [[principles]] defined", field="principles")
    if not isinstance(raw, list) or not raw:
        raise ConstitutionError(path, "must be a non-empty array of tables ([[principles]])",
                                field="principles")
    principles: list[Principle] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(raw):
        pid = table.get("id") if isinstance(table, dict) else None
        label = pid if isinstance(pid, str) else f"#{index + 1}"
        spec = _PRINCIPLE_FIELDS
        if isinstance(table, dict) and "verifier" in table:  # a verifier asks no model question
            spec = {k: (t, req and k not in _MODEL_ONLY) for k, (t, req) in spec.items()}
        _check_table(path, table, spec, label, "[[principles]]")
        pid = str(table["id"])
        if not _ID_RE.match(pid):
            raise ConstitutionError(path, f"id {pid!r} must match [a-z0-9-]+", principle=label,
                                    field="id")
        if pid in seen:
            raise ConstitutionError(
                path, f"duplicate id (principles #{seen[pid] + 1} and #{index + 1})",
                principle=pid, field="id")
        seen[pid] = index
        kind = table.get("kind", "soft")
        if kind not in ("soft", "veto"):
            raise ConstitutionError(path, f"{kind!r} is not valid; use 'soft' or 'veto'",
                                    principle=pid, field="kind")
        weight = float(table.get("weight", 1.0))
        if not weight > 0:
            raise ConstitutionError(path, f"must be > 0, got {weight}", principle=pid,
                                    field="weight")
        tags = table.get("tags", [])
        if not all(isinstance(t, str) for t in tags):
            raise ConstitutionError(path, "must be a list of strings", principle=pid,
                                    field="tags")
        verifier = parse_verifier(path, pid, table["verifier"]) if "verifier" in table else None
        principles.append(Principle(
            id=pid,
            statement=table["statement"].strip(),
            critique_request=table.get("critique_request", "").strip(),
            revision_request=table.get("revision_request", "").strip(),
            comparison_question=table.get("comparison_question", "").strip(),
            weight=weight,
            kind=kind,
            tags=tuple(tags),
            verifier=verifier,
        ))
    return Constitution(name=name, version=header["version"],
                        description=header["description"].strip(),
                        principles=tuple(principles),
                        path=None if path == "<constitution>" else path,
                        provenance=_plain(provenance) if provenance is not None else None)


def _plain(value: Any) -> Any:
    """TOML values as JSON-able data (dates become ISO strings), so the hash can cover them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def load_constitution(path: str | Path) -> Constitution:
    """Load and validate a constitution TOML file, or a built-in one by name ("harmlessness").

    A bare name (no folder, no suffix) that is not an existing file is looked up among the
    constitutions shipped in the package (see `builtin`). Errors name file, principle and field.
    """
    if _is_bare_name(path) and not Path(path).exists():
        return builtin(str(path))
    path_str = str(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConstitutionError(path_str, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConstitutionError(path_str, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConstitutionError(path_str, f"not UTF-8 text: {exc}") from None
    except IsADirectoryError:
        raise ConstitutionError(path_str, "is a directory, not a TOML file") from None
    except RecursionError:
        raise ConstitutionError(path_str, "invalid TOML: nested too deeply") from None
    except OSError as exc:
        raise ConstitutionError(path_str, f"cannot read: {exc.strerror or exc}") from None
    return parse_constitution(doc, path_str)


_BUILTIN_PACKAGE = "oversight.constitution"
_BUILTIN_FOLDER = "builtin"


def _is_bare_name(path: str | Path) -> bool:
    """A name such as "harmlessness": no folder part and no file suffix."""
    text = str(path)
    return bool(text) and "/" not in text and "\\" not in text and not Path(text).suffix


def builtin_names() -> list[str]:
    """Names of the constitutions shipped inside the package (package data)."""
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER)
    return sorted(entry.name[:-len(".toml")] for entry in folder.iterdir()
                  if entry.name.endswith(".toml"))


def builtin_dir() -> Path:
    """The folder of the built-in constitutions inside the installed package.

    The repository's top-level `constitutions/` folder is the documented, editable copy and the
    source of truth; `.ci/sync_package_data.py` copies it here and a test checks the two are
    identical.
    """
    return Path(str(resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER)))


def builtin(name: str) -> Constitution:
    """Load one of the constitutions that ship with oversight, by name ("harmlessness")."""
    names = builtin_names()
    if name not in names:
        raise ConstitutionError(name, f"no built-in constitution '{name}'; built-in: "
                                f"{', '.join(names)} (or give the path of a .toml file)")
    resource = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER).joinpath(f"{name}.toml")
    label = str(resource)  # the file's path in the installed package
    try:
        doc = tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - shipped files are tested
        raise ConstitutionError(label, f"invalid TOML: {exc}") from None
    return parse_constitution(doc, label)
