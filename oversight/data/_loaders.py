"""Loading comparisons from JSONL, Parquet, Hugging Face datasets, or Python rows.

Four row shapes are recognised per row:

* pair: ``prompt``, ``response_a``, ``response_b`` (optional ``reference``: "a"/"b"/0/1);
* TRL preference: ``prompt``, ``chosen``, ``rejected`` (strings, or chat-message lists);
* HH dialogue: ``chosen``, ``rejected`` as full "\\n\\nHuman: ... \\n\\nAssistant: ..." text,
  split into the shared dialogue and the two final assistant turns;
* K-way: ``prompt``, ``responses`` (a list).

For labelled shapes the human ``chosen`` is kept as ``reference`` and its position is
randomised with a seed (per row, from the content) so that order never leaks the label.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from oversight.data._comparison import Comparison
from oversight.errors import DataError

_ROLE_MARK = re.compile(r"\n\n(Human|Assistant): ")


class Comparisons(list):  # type: ignore[type-arg]
    """A list of Comparison with the rows that were skipped (``skipped``: (row, reason))."""

    def __init__(self, items: Iterable[Comparison] = (),
                 skipped: list[tuple[int, str]] | None = None, source: str = "<rows>") -> None:
        super().__init__(items)
        self.skipped: list[tuple[int, str]] = skipped or []
        self.source = source


def _seeded_swap(seed: int, key: str) -> bool:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return bool(digest[0] & 1)


def _require_str(source: str, row: int, rec: Mapping[str, Any], key: str) -> str:
    if key not in rec or rec[key] is None:
        raise DataError(source, "missing", row=row, field=key)
    value = rec[key]
    if not isinstance(value, str):
        raise DataError(source, f"expected a string, got {type(value).__name__}", row=row,
                        field=key)
    if not value.strip():
        raise DataError(source, "is empty", row=row, field=key)
    return value


def _messages(source: str, row: int, key: str, value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(source, "expected a non-empty list of chat messages", row=row, field=key)
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            raise DataError(source, f"message {i} must have string 'role' and 'content'",
                            row=row, field=key)
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def split_hh_dialogue(text: str) -> list[dict[str, str]]:
    """Split HH-RLHF dialogue text into chat messages (user/assistant)."""
    parts = _ROLE_MARK.split(text)
    # parts: [preamble, role, content, role, content, ...]
    if len(parts) < 3 or parts[0].strip():
        raise ValueError("does not start with '\\n\\nHuman: '")
    return [{"role": "user" if parts[i] == "Human" else "assistant", "content": parts[i + 1]}
            for i in range(1, len(parts), 2)]


def _labelled(source: str, row: int, prompt: Any, chosen: str, rejected: str, seed: int,
              meta: dict[str, Any]) -> Comparison:
    if chosen == rejected:
        raise DataError(source, "chosen and rejected are identical", row=row, field="rejected")
    key = json.dumps([prompt, chosen, rejected], ensure_ascii=False, sort_keys=True)
    if _seeded_swap(seed, key):
        return Comparison(prompt=prompt, responses=(rejected, chosen), reference=1, meta=meta)
    return Comparison(prompt=prompt, responses=(chosen, rejected), reference=0, meta=meta)


def _hh_row(source: str, row: int, rec: Mapping[str, Any], seed: int,
            meta: dict[str, Any]) -> Comparison:
    chosen_text = _require_str(source, row, rec, "chosen")
    rejected_text = _require_str(source, row, rec, "rejected")
    # The shared dialogue ends at the last assistant marker both texts have in common. Splitting
    # on the common prefix (not on every marker) keeps responses that themselves contain
    # "Human:" text intact, which HH data does have.
    marker = "\n\nAssistant:"
    common = os.path.commonprefix([chosen_text, rejected_text])
    cut = common.rfind(marker)
    if cut < 0:
        raise DataError(source, "chosen and rejected share no dialogue ending in "
                        "'\\n\\nAssistant:'", row=row, field="rejected")
    try:
        prompt = tuple(split_hh_dialogue(chosen_text[:cut]))
    except ValueError as exc:
        raise DataError(source, f"HH dialogue {exc}", row=row, field="chosen") from None
    chosen = chosen_text[cut + len(marker):].strip()
    rejected = rejected_text[cut + len(marker):].strip()
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not value:
            raise DataError(source, "final assistant turn is empty", row=row, field=key)
    return _labelled(source, row, prompt, chosen, rejected, seed, meta)


def _trl_row(source: str, row: int, rec: Mapping[str, Any], seed: int,
             meta: dict[str, Any]) -> Comparison:
    prompt_value = rec["prompt"]
    if isinstance(prompt_value, str):
        prompt: Any = _require_str(source, row, rec, "prompt")
    else:
        prompt = _messages(source, row, "prompt", prompt_value)
    responses = []
    for key in ("chosen", "rejected"):
        value = rec.get(key)
        if isinstance(value, (list, tuple)):
            msgs = _messages(source, row, key, value)
            if msgs[-1]["role"] != "assistant":
                raise DataError(source, "last message must be the assistant's", row=row,
                                field=key)
            responses.append(msgs[-1]["content"])
        else:
            responses.append(_require_str(source, row, rec, key))
    return _labelled(source, row, prompt, responses[0], responses[1], seed, meta)


def _reference(source: str, row: int, value: Any, k: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in ("a", "b"):
        return 0 if value.lower() == "a" else 1
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < k:
        return value
    raise DataError(source, f"must be 'a', 'b' or a response index < {k}, got {value!r}",
                    row=row, field="reference")


def row_to_comparison(rec: Any, *, source: str = "<rows>", row: int = 1,
                      seed: int = 0) -> Comparison:
    """Turn one row (a mapping) into a Comparison, or raise DataError naming row and field."""
    if not isinstance(rec, Mapping):
        raise DataError(source, f"expected an object, got {type(rec).__name__}", row=row)
    meta: dict[str, Any] = {"row": row}
    for key in ("id", "topic", "category", "subset"):
        if isinstance(rec.get(key), (str, int)) and not isinstance(rec.get(key), bool):
            meta["source_id" if key == "id" else key] = rec[key]
    if "responses" in rec:
        responses = rec["responses"]
        if not isinstance(responses, (list, tuple)) or len(responses) < 2:
            raise DataError(source, "expected a list of at least 2 strings", row=row,
                            field="responses")
        for i, r in enumerate(responses):
            if not isinstance(r, str) or not r.strip():
                raise DataError(source, f"response {i} must be a non-empty string", row=row,
                                field="responses")
        prompt = _prompt_field(source, row, rec)
        return Comparison(prompt=prompt, responses=tuple(responses),
                          reference=_reference(source, row, rec.get("reference"), len(responses)),
                          meta=meta)
    if "response_a" in rec or "response_b" in rec:
        prompt = _prompt_field(source, row, rec)
        a = _require_str(source, row, rec, "response_a")
        b = _require_str(source, row, rec, "response_b")
        return Comparison(prompt=prompt, responses=(a, b),
                          reference=_reference(source, row, rec.get("reference"), 2), meta=meta)
    if "chosen" in rec or "rejected" in rec:
        if "prompt" in rec and rec["prompt"] is not None:
            return _trl_row(source, row, rec, seed, meta)
        return _hh_row(source, row, rec, seed, meta)
    raise DataError(source, "unrecognised row shape; expected one of (prompt, response_a, "
                    "response_b), (prompt, chosen, rejected), (chosen, rejected) HH dialogue, "
                    f"or (prompt, responses); got keys {sorted(rec)}", row=row)


def _prompt_field(source: str, row: int, rec: Mapping[str, Any]) -> Any:
    value = rec.get("prompt")
    if isinstance(value, (list, tuple)):
        return _messages(source, row, "prompt", value)
    return _require_str(source, row, rec, "prompt")


# Data sets shipped inside the package (package data), reachable by name from any folder.
BUILTIN_DATASETS: dict[str, tuple[str, str]] = {
    # 24 hand-written pairs across topics, with reference labels: `oversight demo`.
    "demo": ("demo_pairs.jsonl", "hand-written example pairs used by `oversight demo`"),
    # The first 64 rows (a fixed rule, chosen without looking at any critic's output) of the
    # development split of Anthropic's HH-RLHF harmless-base test set (every 8th row of
    # harmless-base/test.jsonl.gz); MIT licence, shipped beside it as LICENSE.hh-rlhf.
    "hh-harmless-sample": ("hh_harmless_sample.jsonl",
                           "64 Anthropic HH-RLHF harmless pairs with the human choice (MIT)"),
}


def builtin_datasets() -> dict[str, str]:
    """Names of the data sets shipped in the package, with a one-line description each."""
    return {name: desc for name, (_, desc) in BUILTIN_DATASETS.items()}


def builtin_dataset_path(name: str) -> Path:
    """The file of a built-in data set ("demo", "hh-harmless-sample") inside the package."""
    if name not in BUILTIN_DATASETS:
        raise DataError(name, f"no such file, and no built-in data set of that name; built-in "
                        f"data sets: {', '.join(BUILTIN_DATASETS)} (or give a .jsonl/.parquet "
                        "path)")
    return Path(str(resources.files("oversight.data").joinpath(BUILTIN_DATASETS[name][0])))


def _is_bare_name(text: str) -> bool:
    return bool(text) and "/" not in text and "\\" not in text and not Path(text).suffix


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        fh = open(path, "rb")
    except OSError as exc:  # a directory, no permission, ...
        raise DataError(str(path), f"cannot read: {exc.strerror or exc}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, DataError(str(path), f"not UTF-8 text (byte {exc.start})",
                                        row=lineno)
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, DataError(str(path), f"invalid JSON: {exc.msg} (column {exc.colno})",
                                        row=lineno)
            except RecursionError:
                yield lineno, DataError(str(path), "invalid JSON: nested too deeply", row=lineno)


def _iter_source(source: Any) -> tuple[str, Iterator[tuple[int, Any]]]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists() and _is_bare_name(str(source)):
            path = builtin_dataset_path(str(source))
            return str(source), _iter_jsonl(path)
        if not path.exists():
            raise DataError(str(path), "file not found")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json", ".ndjson"):
            return str(path), _iter_jsonl(path)
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path)
            except Exception as exc:  # pyarrow raises several types for corrupt files
                raise DataError(str(path), f"cannot read Parquet: {exc}") from None
            return str(path), enumerate(table.to_pylist(), start=1)
        raise DataError(str(path), f"unsupported file type '{suffix}'; use .jsonl or .parquet")
    name = type(source).__name__
    if hasattr(source, "column_names") and hasattr(source, "__getitem__"):  # datasets.Dataset
        return f"<datasets.{name}>", enumerate(iter(source), start=1)
    if isinstance(source, Iterable):
        return "<rows>", enumerate(source, start=1)
    raise DataError(f"<{name}>", "expected a path, a datasets.Dataset or an iterable of rows")


def load_comparisons(source: Any, *, seed: int = 0, skip_bad: bool = False,
                     limit: int | None = None) -> Comparisons:
    """Load comparisons from a .jsonl/.parquet path, a built-in data set by name, a
    `datasets.Dataset`, or rows.

    Built-in names: "demo" (24 example pairs) and "hh-harmless-sample" (64 HH-RLHF harmless
    pairs with the human choice as `reference`); see `builtin_datasets()`.

    A bad row raises DataError naming the row and field; with ``skip_bad=True`` it is skipped
    and recorded in ``result.skipped``.
    """
    if isinstance(source, Comparisons):
        return source
    name, rows = _iter_source(source)
    items: list[Comparison] = []
    skipped: list[tuple[int, str]] = []
    for row, rec in rows:
        if limit is not None and len(items) >= limit:
            break
        try:
            if isinstance(rec, Comparison):
                items.append(rec)
                continue
            if isinstance(rec, DataError):
                raise rec
            items.append(row_to_comparison(rec, source=name, row=row, seed=seed))
        except DataError as exc:
            if not skip_bad:
                raise
            skipped.append((row, str(exc)))
    return Comparisons(items, skipped, source=name)


def demo_pairs_path() -> Path:
    """The example pairs shipped in the package, used by `oversight demo`."""
    return builtin_dataset_path("demo")
