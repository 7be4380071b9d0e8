"""The amendment log: a hash-chained JSON-lines file beside a constitution.

`privacy.toml` has its log in `privacy.amendments.jsonl`. Each line is one entry:

  seq        0 for the genesis entry (the constitution as first recorded), then 1, 2, ...
  prev       the previous entry's `hash` ("0" * 64 for genesis)
  old_hash   the constitution's content hash before the amendment (null for genesis)
  new_hash   its content hash after
  file_sha256  SHA-256 of the TOML file's bytes after
  summary, proposer, approvers, time (UTC ISO 8601), diff (unified diff of the TOML text),
  changes (structural: added, removed, edited fields), gate (the gate's declaration, figures
  and decision)
  hash       SHA-256 over the canonical JSON of every other field

Editing, reordering or deleting past entries breaks a `hash`, a `seq` or a `prev` link; a
constitution file edited outside the process no longer matches the head's `new_hash`.
Deleting the newest entries *and* reverting the file to match is only caught against a head
hash kept elsewhere (`verify_log(..., expect_head=...)`): the log alone cannot prove its own
length. This module owns the format; `oversight.governance` writes entries through it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.errors import ConstitutionError

GENESIS_PREV = "0" * 64
LOG_SUFFIX = ".amendments.jsonl"
ENTRY_FIELDS = ("seq", "prev", "old_hash", "new_hash", "file_sha256", "summary", "proposer",
                "approvers", "time", "diff", "changes", "gate", "hash")


def log_path(constitution_path: str | Path) -> Path:
    p = Path(constitution_path)
    return p.with_name(p.stem + LOG_SUFFIX)


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Entries in file order. A line that is not a JSON object is an error naming the line."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConstitutionError(str(p), f"line {n}: not JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise ConstitutionError(str(p), f"line {n}: an entry must be a JSON object")
        out.append(entry)
    return out


def append_entry(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Chain a new entry onto the log (seq, prev and hash filled in) and write it durably."""
    entries = read_log(path)
    entry = {k: fields.get(k) for k in ENTRY_FIELDS if k not in ("seq", "prev", "hash")}
    entry["seq"] = len(entries)
    entry["prev"] = entries[-1]["hash"] if entries else GENESIS_PREV
    entry["hash"] = entry_hash(entry)
    line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


@dataclass
class LogCheck:
    """What `verify_log` found. `ok` is False when any problem was found; notes are benign."""

    log: str
    entries: int
    head: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(constitution_path: str | Path, *, expect_head: str | None = None) -> LogCheck:
    """Check every entry's hash, sequence number and links, and the file against the head."""
    from oversight.constitution._constitution import load_constitution

    lp = log_path(constitution_path)
    name = lp.name
    if not lp.exists():
        return LogCheck(str(lp), 0, None, problems=[f"{name}: no amendment log"])
    try:
        entries = read_log(lp)
    except ConstitutionError as exc:
        return LogCheck(str(lp), 0, None, problems=[str(exc)])
    check = LogCheck(str(lp), len(entries), entries[-1].get("hash") if entries else None)
    if not entries:
        check.problems.append(f"{name}: the log is empty")
        return check
    prev_hash: Any = GENESIS_PREV
    prev_new: Any = None
    for i, e in enumerate(entries):
        where = f"{name}: line {i + 1} (entry seq {e.get('seq')!r})"
        missing = [k for k in ENTRY_FIELDS if k not in e]
        if missing:
            check.problems.append(f"{where}: missing field(s) {', '.join(missing)}")
        if e.get("hash") != entry_hash(e):
            check.problems.append(f"{where}: its hash does not match its content: the entry "
                                  "was edited")
        if e.get("seq") != i:
            check.problems.append(f"{where}: expected seq {i}: entries were reordered, "
                                  "deleted or inserted")
        if e.get("prev") != prev_hash:
            check.problems.append(f"{where}: prev does not match the hash of the entry before "
                                  "it: the chain is broken (reordered, deleted or edited)")
        if i > 0 and e.get("old_hash") != prev_new:
            check.problems.append(f"{where}: old_hash {e.get('old_hash')} is not the previous "
                                  f"entry's new_hash {prev_new}")
        prev_hash, prev_new = e.get("hash"), e.get("new_hash")
    head = entries[-1]
    try:
        current = load_constitution(constitution_path)
    except ConstitutionError as exc:
        check.problems.append(f"cannot load the constitution: {exc}")
        return check
    if current.hash != head.get("new_hash"):
        check.problems.append(
            f"{Path(constitution_path).name}: content hash {current.hash} does not match the "
            f"log head's new_hash {head.get('new_hash')} (seq {head.get('seq')}): the file was "
            "changed outside `oversight constitution amend`, or the newest log entries were "
            "deleted")
    elif file_sha256(constitution_path) != head.get("file_sha256"):
        check.notes.append(f"{Path(constitution_path).name}: same content hash as the head but "
                           "different bytes (comments or formatting were edited)")
    if expect_head is not None and not str(head.get("hash", "")).startswith(expect_head):
        known = [e.get("hash", "") for e in entries]
        where = ("is an older entry: newer entries were deleted"
                 if any(h.startswith(expect_head) for h in known) else "is not in the log")
        check.problems.append(f"{name}: expected head {expect_head} {where}; "
                              f"the head is {head.get('hash')}")
    return check


def amendment_of(constitution_path: str | Path, content_hash: str) -> dict[str, Any] | None:
    """The newest log entry whose new_hash is `content_hash` (what a run was judged under)."""
    try:
        entries = read_log(log_path(constitution_path))
    except ConstitutionError:
        return None
    for e in reversed(entries):
        if e.get("new_hash") == content_hash:
            return e
    return None


def amendment_label(entry: dict[str, Any] | None) -> str | None:
    """'amendment 2 (3f2a9c1e0b7d)', or 'original (…)' for the genesis entry."""
    if entry is None:
        return None
    seq = entry.get("seq")
    h = str(entry.get("hash", ""))[:12]
    return f"original ({h})" if seq == 0 else f"amendment {seq} ({h})"
