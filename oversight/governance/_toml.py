"""A small TOML writer for the constitutions that governance tools produce.

It covers what a constitution file holds: tables of strings, numbers, booleans and arrays,
nested tables and arrays of tables. Output is re-read with `tomllib` by the callers' tests, so
what is written is what the loader sees.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def _string(value: str) -> str:
    # JSON basic-string escapes are TOML escapes, except DEL, which TOML also forbids raw.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _is_table_array(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str) and bool(value)
            and all(isinstance(v, Mapping) for v in value))


def _table(lines: list[str], name: str, table: Mapping[str, Any], array: bool) -> None:
    lines.append(f"[[{name}]]" if array else f"[{name}]")
    nested: list[tuple[str, Any]] = []
    for k, v in table.items():
        if isinstance(v, Mapping) or _is_table_array(v):
            nested.append((k, v))
        else:
            lines.append(f"{_key(str(k))} = {_value(v)}")
    lines.append("")
    for k, v in nested:
        sub = f"{name}.{_key(str(k))}"
        if isinstance(v, Mapping):
            _table(lines, sub, v, array=False)
        else:
            for row in v:
                _table(lines, sub, row, array=True)


def dumps(doc: Mapping[str, Any], header: str = "") -> str:
    """TOML text for `doc`, whose top-level values are tables or arrays of tables."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    for name, value in doc.items():
        if isinstance(value, Mapping):
            _table(lines, _key(name), value, array=False)
        elif _is_table_array(value):
            for row in value:
                _table(lines, _key(name), row, array=True)
        else:
            raise TypeError(f"top-level TOML value {name!r} must be a table or array of tables")
    return "\n".join(lines).rstrip() + "\n"
