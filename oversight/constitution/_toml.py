"""Write a Constitution back to TOML in canonical form (what `constitution amend` writes).

Comments and layout of the original file are not kept; the content (and so the content hash)
is, and `to_toml` checks that by parsing its own output.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from oversight.constitution._constitution import Constitution, parse_constitution, principle_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_ORDER = ("id", "statement", "critique_request", "revision_request", "comparison_question",
          "weight", "kind", "tags")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        # JSON basic-string escapes are TOML escapes, except DEL, which TOML forbids raw
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(constitution: Constitution) -> str:
    """The constitution as TOML text whose parsed content hash equals `constitution.hash`."""
    lines = ["[constitution]", f"name = {_value(constitution.name)}",
             f"version = {_value(constitution.version)}",
             f"description = {_value(constitution.description)}"]
    for p in constitution.principles:
        d = principle_dict(p)
        lines += ["", "[[principles]]"]
        for k in _ORDER:
            v = d[k]
            if k in ("critique_request", "revision_request", "comparison_question") and not v:
                continue
            if k == "tags" and not v:
                continue
            lines.append(f"{k} = {_value(v)}")
        if "verifier" in d:
            lines.append("[principles.verifier]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in d["verifier"].items()]
    if constitution.provenance is not None:  # votes or labels it came from; hashed
        lines += ["", "[provenance]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in constitution.provenance.items()]
    text = "\n".join(lines) + "\n"
    back = parse_constitution(tomllib.loads(text))
    if back.hash != constitution.hash:  # pragma: no cover - a writer bug, never user input
        raise RuntimeError(f"TOML writer lost content of '{constitution.name}': "
                           f"{constitution.hash} -> {back.hash}")
    return text
