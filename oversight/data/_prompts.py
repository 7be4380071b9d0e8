"""Prompts for revision and RL: from .txt (one per line), .jsonl/.parquet or a Dataset.

A row gives its prompt as `prompt` (a string or chat messages), as `messages` (a trailing
assistant turn is dropped), or as any comparison row the data loaders accept (HH dialogue,
TRL pairs), whose prompt is used. Prompts are returned as chat messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oversight.data._loaders import _iter_source, row_to_comparison
from oversight.errors import DataError

Messages = list[dict[str, str]]


def _messages(value: Any, source: str, row: int, field: str) -> Messages:
    if isinstance(value, str):
        if not value.strip():
            raise DataError(source, "empty prompt", row=row, field=field)
        return [{"role": "user", "content": value}]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise DataError(source, "expected a string or a list of {role, content} messages",
                    row=row, field=field)


def load_prompts(source: Any, *, limit: int | None = None) -> list[Messages]:
    """Prompts as chat messages; a bad row raises DataError naming the file, row and field."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".txt":
        path = Path(source)
        if not path.exists():
            raise DataError(str(path), "file not found")
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        out = [[{"role": "user", "content": ln}] for ln in lines if ln]
        return out[:limit] if limit is not None else out
    name, rows = _iter_source(source)
    out = []
    for row, rec in rows:
        if limit is not None and len(out) >= limit:
            break
        if isinstance(rec, DataError):
            raise rec
        if not isinstance(rec, dict):
            raise DataError(name, "expected a JSON object", row=row)
        if "prompt" in rec:
            out.append(_messages(rec["prompt"], name, row, "prompt"))
        elif "messages" in rec:
            msgs = _messages(rec["messages"], name, row, "messages")
            if msgs[-1]["role"] == "assistant":
                msgs = msgs[:-1]
            if not msgs:
                raise DataError(name, "no turns before the assistant's", row=row,
                                field="messages")
            out.append(msgs)
        else:
            item = row_to_comparison(rec, source=name, row=row, seed=0)
            out.append([dict(m) for m in item.messages])
    if not out:
        raise DataError(name, "no prompts found")
    return out
