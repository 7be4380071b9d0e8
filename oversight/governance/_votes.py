"""Stakeholder votes on statements: the input of participatory drafting.

Two formats are read:

* **simple**: CSV or JSONL rows with `participant`, `statement` (its text), `vote`
  (`agree`/`disagree`/`pass`, or 1/-1/0) and an optional `statement_id`;
* **Polis export**: `participants-votes.csv` (one row per participant, one column per comment
  id, 1 = agree, -1 = disagree, 0 = pass, empty = not seen) with `comments.csv` beside it
  (`comment-id`, `comment-body`, `moderated`). Comments moderated out (`moderated` = -1) are
  left out of the statements, and their ids are recorded in `excluded`.

The vote matrix is participants x statements: +1 agree, -1 disagree, 0 pass, NaN not seen.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oversight.errors import DataError

VOTE_WORDS = {"agree": 1.0, "disagree": -1.0, "pass": 0.0, "1": 1.0, "-1": -1.0, "0": 0.0,
              "+1": 1.0}


@dataclass
class Votes:
    """A participants x statements vote matrix with the statements' text and its source."""

    participants: list[str]
    statement_ids: list[str]
    statements: list[str]
    matrix: np.ndarray
    source: str = "<votes>"
    source_sha256: str = ""
    format: str = "simple"
    excluded: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=float)
        shape = (len(self.participants), len(self.statement_ids))
        if self.matrix.shape != shape:
            raise ValueError(f"vote matrix has shape {self.matrix.shape}; expected {shape} "
                             "(participants x statements)")
        if len(self.statements) != len(self.statement_ids):
            raise ValueError(f"{len(self.statements)} statement texts for "
                             f"{len(self.statement_ids)} statement ids")
        seen = self.matrix[~np.isnan(self.matrix)]
        bad = seen[~np.isin(seen, (-1.0, 0.0, 1.0))]
        if bad.size:
            raise ValueError(f"votes must be +1, -1, 0 or NaN; found {bad[0]!r}")

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.matrix)

    def counts(self) -> dict[str, int]:
        m = self.matrix
        return {"participants": len(self.participants), "statements": len(self.statement_ids),
                "votes": int(self.observed.sum()), "agree": int((m == 1).sum()),
                "disagree": int((m == -1).sum()), "pass": int((m == 0).sum()),
                "unseen": int((~self.observed).sum())}


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _vote(source: str, row: int, value: Any) -> float:
    if isinstance(value, bool):
        raise DataError(source, f"vote {value!r} is not valid; use agree, disagree or pass "
                        "(or 1, -1, 0)", row=row, field="vote")
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        key = str(int(value)) if float(value).is_integer() else str(value)
    else:
        key = str(value).strip().lower()
    if key not in VOTE_WORDS:
        raise DataError(source, f"vote {value!r} is not valid; use agree, disagree or pass "
                        "(or 1, -1, 0)", row=row, field="vote")
    return VOTE_WORDS[key]


def _simple_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    source = str(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8-sig") as fh:
            for row, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(source, f"invalid JSON: {exc.msg}", row=row) from None
                if not isinstance(rec, dict):
                    raise DataError(source, "each line must be a JSON object", row=row)
                yield row, rec
        return
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for row, rec in enumerate(reader, start=2):  # row 1 is the header
            yield row, rec


def load_votes(path: str | Path) -> Votes:
    """Read stakeholder votes: a simple CSV/JSONL file, or a Polis export (a directory holding
    participants-votes.csv and comments.csv, or the participants-votes.csv file itself)."""
    p = Path(path)
    if p.is_dir() or p.name == "participants-votes.csv":
        return load_polis(p)
    if not p.exists():
        raise DataError(str(p), "file not found")
    source = str(p)
    participants: dict[str, int] = {}
    statements: dict[str, int] = {}
    texts: list[str] = []
    first_row: dict[str, int] = {}
    cells: dict[tuple[int, int], tuple[float, int]] = {}
    try:
        rows = list(_simple_rows(p))
    except UnicodeDecodeError as exc:
        raise DataError(source, f"not UTF-8 text: {exc}") from None
    if not rows:
        raise DataError(source, "no vote rows")
    for row, rec in rows:
        for key in ("participant", "statement", "vote"):
            if key not in rec or rec[key] is None or str(rec[key]).strip() == "":
                raise DataError(source, "missing required field; rows need participant, "
                                "statement, vote (and optionally statement_id)", row=row,
                                field=key)
        who = str(rec["participant"]).strip()
        text = str(rec["statement"]).strip()
        sid_raw = rec.get("statement_id")
        sid = str(sid_raw).strip() if sid_raw not in (None, "") else text
        if sid in statements:
            if texts[statements[sid]] != text:
                raise DataError(source, f"statement_id {sid!r} has a different text than on "
                                f"row {first_row[sid]}", row=row, field="statement")
        else:
            statements[sid] = len(statements)
            texts.append(text)
            first_row[sid] = row
        i = participants.setdefault(who, len(participants))
        j = statements[sid]
        if (i, j) in cells:
            raise DataError(source, f"participant {who!r} already voted on this statement on "
                            f"row {cells[(i, j)][1]}; keep one vote per participant and "
                            "statement", row=row, field="vote")
        cells[(i, j)] = (_vote(source, row, rec["vote"]), row)
    matrix = np.full((len(participants), len(statements)), np.nan)
    for (i, j), (v, _) in cells.items():
        matrix[i, j] = v
    ids = list(statements)
    if all(sid == t for sid, t in zip(ids, texts)):  # no ids given: number them
        ids = [str(k + 1) for k in range(len(ids))]
    return Votes(list(participants), ids, texts, matrix, source=source,
                 source_sha256=_sha256([p]), format="simple")


POLIS_META = ("participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree")


def load_polis(path: str | Path) -> Votes:
    """Read a Polis export: participants-votes.csv plus comments.csv in the same folder."""
    try:
        return _load_polis(Path(path))
    except UnicodeDecodeError as exc:
        raise DataError(str(path), f"not UTF-8 text: {exc}") from None


def _load_polis(p: Path) -> Votes:
    votes_path = p / "participants-votes.csv" if p.is_dir() else p
    comments_path = votes_path.parent / "comments.csv"
    for f in (votes_path, comments_path):
        if not f.exists():
            raise DataError(str(f), "file not found; a Polis export needs participants-votes.csv "
                            "and comments.csv in one folder")
    texts: dict[str, str] = {}
    moderated_out: set[str] = set()
    with open(comments_path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for key in ("comment-id", "comment-body"):
            if key not in (reader.fieldnames or []):
                raise DataError(str(comments_path), f"missing column; found "
                                f"{', '.join(reader.fieldnames or [])}", row=1, field=key)
        for row, rec in enumerate(reader, start=2):
            cid = str(rec["comment-id"]).strip()
            if not cid:
                raise DataError(str(comments_path), "empty comment id", row=row,
                                field="comment-id")
            texts[cid] = str(rec["comment-body"] or "").strip()
            if str(rec.get("moderated") or "").strip() == "-1":
                moderated_out.add(cid)
    with open(votes_path, encoding="utf-8-sig", newline="") as fh:
        vote_lines = csv.reader(fh)
        header = next(vote_lines, None)
        if not header or header[0].strip() != "participant":
            raise DataError(str(votes_path), "the first column must be 'participant' (a Polis "
                            "participants-votes.csv)", row=1, field="participant")
        columns = [(k, c.strip()) for k, c in enumerate(header) if c.strip() not in POLIS_META]
        for _, cid in columns:
            if cid not in texts:
                raise DataError(str(votes_path), f"comment {cid!r} is not in {comments_path}",
                                row=1, field=cid)
        keep = [(k, cid) for k, cid in columns if cid not in moderated_out]
        participants: list[str] = []
        rows: list[list[float]] = []
        for row, line in enumerate(vote_lines, start=2):
            if not line:
                continue
            participants.append(line[0].strip())
            values = []
            for k, cid in keep:
                cell = line[k].strip() if k < len(line) else ""
                values.append(np.nan if cell == "" else _polis_vote(str(votes_path), row, cid,
                                                                     cell))
            rows.append(values)
    if not participants:
        raise DataError(str(votes_path), "no participant rows")
    ids = [cid for _, cid in keep]
    return Votes(participants, ids, [texts[c] for c in ids], np.array(rows, dtype=float),
                 source=str(votes_path), source_sha256=_sha256([votes_path, comments_path]),
                 format="polis", excluded=sorted(moderated_out & {c for _, c in columns}))


def _polis_vote(source: str, row: int, cid: str, cell: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        v = math.nan
    if v not in (-1.0, 0.0, 1.0):
        raise DataError(source, f"vote {cell!r} is not valid; Polis exports use 1 (agree), "
                        "-1 (disagree), 0 (pass) or empty (not seen)", row=row, field=cid)
    return v
