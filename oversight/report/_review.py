"""The human-review loop: export flagged items to reviewers, import their labels as a critic.

Export writes one record per flagged item with what a reviewer needs (the conversation, the
responses, the flags, each critic's verdict, support and rationales) as JSONL, or as Label
Studio tasks plus a labelling config. Import reads the filled-in JSONL or a Label Studio
export (JSON or JSON-MIN) and stores each label as pairwise judgments of a critic named
`human` (value 1.0: the chosen response beats each other one; a tie is 0.5 everywhere), so
agreement with humans shows in the report and human labels can anchor Dawid-Skene.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from oversight.aggregate import FLAG_COLUMNS
from oversight.critics import Judgment
from oversight.errors import DataError, OversightError
from oversight.report._analysis import HUMAN, Analysis

FORMATS = ("jsonl", "label-studio")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LABEL_HELP = "set 'label' to the better response's letter (A, B, ...) or 'tie'; 'note' is optional"


def _letter(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return _LETTERS[v]
    try:
        return _LETTERS[int(v)]
    except (TypeError, ValueError):
        return v


def _conversation(messages: Sequence[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in messages)


def _record(a: Analysis, d: dict[str, Any], blind: bool) -> dict[str, Any]:
    it = a.item(d["item_id"])
    rec: dict[str, Any] = {
        "item_id": it.id, "k": it.k, "prompt": list(it.messages),
        "responses": {_LETTERS[i]: r for i, r in enumerate(it.responses)},
        "flags": [f for f in FLAG_COLUMNS if d.get(f)],
    }
    if not blind:
        rec["panel"] = {"method": a.method, "final": _letter(d["final"]),
                        "p_a": None if d["p0"] != d["p0"] else round(float(d["p0"]), 4),
                        "margin": round(float(d["margin"]), 4)}
        rec["critics"] = []
        for v in a.critic_views(it.id):
            if v["critic"] == HUMAN:
                continue
            sup = v["support"] or []
            rec["critics"].append({
                "critic": v["critic"], "verdict": _letter(v["verdict"]),
                "support": {_LETTERS[i]: (None if s != s else round(s, 4))
                            for i, s in enumerate(sup)},
                "judgments": [{"principle": j["principle"],
                               "shown": ",".join(_letter(x) for x in str(j["order"]).split(",")),
                               "p_first_better": None if j["value"] is None
                               else round(j["value"], 4),
                               "status": j["status"], "rationale": j["rationale"]}
                              for j in v["judgments"]]})
    rec.update({"label": None, "note": None, "reviewer": None, "help": LABEL_HELP})
    return rec


def _critic_text(rec: dict[str, Any]) -> str:
    lines = []
    for c in rec.get("critics", []):
        lines.append(f"{c['critic']}: prefers {c['verdict']} "
                     f"(support {', '.join(f'{k} {v}' for k, v in c['support'].items())})")
        for j in c["judgments"]:
            why = f" - {j['rationale']}" if j.get("rationale") else ""
            lines.append(f"  {j['principle']} [{j['shown']}] P(first better) "
                         f"{j['p_first_better']}{why}")
    return "\n".join(lines)


def label_studio_config(k: int, blind: bool = False) -> str:
    """A Label Studio labelling config for tasks written by `export_queue`."""
    parts = ["<View>", '  <Header value="Conversation"/>',
             '  <Text name="prompt" value="$prompt"/>']
    for i in range(k):
        parts += [f'  <Header value="Response {_LETTERS[i]}"/>',
                  f'  <Text name="response_{_LETTERS[i]}" value="$response_{_LETTERS[i]}"/>']
    if not blind:
        parts += ['  <Header value="What the critics said"/>',
                  '  <Text name="critics" value="$critics"/>']
    parts.append('  <Choices name="preference" toName="prompt" choice="single" '
                 'showInLine="true" required="true">')
    parts += [f"    <Choice value={quoteattr(_LETTERS[i])}/>" for i in range(k)]
    parts += ['    <Choice value="tie"/>', "  </Choices>",
              '  <TextArea name="note" toName="prompt" placeholder="why (optional)"/>',
              "</View>"]
    return "\n".join(parts) + "\n"


def export_queue(a: Analysis, out: str | Path, flags: Sequence[str] = ("split",
                                                                        "veto_conflict"),
                 *, fmt: str = "jsonl", blind: bool = False, limit: int | None = None
                 ) -> tuple[Path, int]:
    """Write the items carrying any of `flags` for human review; returns (path, count).

    fmt="jsonl": one record per line, fill in `label` (and `note`, `reviewer`).
    fmt="label-studio": a JSON task list, plus `<out stem>.label_config.xml` to paste into
    the project's labelling interface. `blind` leaves out the panel's and critics' verdicts.
    """
    if fmt not in FORMATS:
        raise OversightError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    bad = [f for f in flags if f not in FLAG_COLUMNS]
    if bad or not flags:
        raise OversightError(f"--flags: unknown or no flag(s) {bad}; valid: "
                             f"{', '.join(FLAG_COLUMNS)}")
    picked = a.aggregation.flagged(list(flags))
    picked = picked.sort_values("critic_p0_std", ascending=False, kind="stable",
                                na_position="last")
    if limit is not None:
        picked = picked.head(limit)
    records = [_record(a, d, blind) for d in picked.to_dict("records")]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        return path, len(records)
    tasks = []
    for r in records:
        data = {"item_id": r["item_id"], "prompt": _conversation(r["prompt"]),
                "flags": ", ".join(r["flags"])}
        data.update({f"response_{k}": v for k, v in r["responses"].items()})
        if not blind:
            data["critics"] = _critic_text(r)
        tasks.append({"data": data})
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    k = max((r["k"] for r in records), default=2)
    path.with_name(path.stem + ".label_config.xml").write_text(label_studio_config(k, blind))
    return path, len(records)


# --------------------------------------------------------------------------- import


def _parse_label(value: Any, k: int, source: str, row: int, field: str) -> int | None:
    """A response index, or None for a tie."""
    if isinstance(value, str):
        v = value.strip()
        if v.lower() == "tie":
            return None
        if len(v) == 1 and v.upper() in _LETTERS[:k]:
            return _LETTERS.index(v.upper())
        if v.isdigit() and int(v) < k:
            return int(v)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < k:
        return value
    raise DataError(source, f"must be one of {', '.join(_LETTERS[:k])}, a response index "
                    f"< {k} or 'tie', got {value!r}", row=row, field=field)


def _label_studio_rows(tasks: list[Any], source: str) -> list[tuple[int, dict[str, Any]]]:
    """(task number, {item_id, label, note, reviewer}) from a Label Studio JSON export."""
    rows = []
    for n, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise DataError(source, "expected a task object", row=n)
        if "annotations" not in task:  # JSON-MIN: data fields and results side by side
            if "preference" in task:
                rows.append((n, {"item_id": task.get("item_id"), "label": task["preference"],
                                 "note": task.get("note"),
                                 "reviewer": task.get("annotator")}))
            continue
        data = task.get("data") or {}
        for ann in task["annotations"] or []:
            if ann.get("was_cancelled"):
                continue
            label = note = None
            for res in ann.get("result") or []:
                value = res.get("value") or {}
                if res.get("from_name") == "preference" and value.get("choices"):
                    label = value["choices"][0]
                elif res.get("from_name") == "note" and value.get("text"):
                    note = "\n".join(value["text"])
            if label is None:
                continue
            who = ann.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            rows.append((n, {"item_id": data.get("item_id"), "label": label, "note": note,
                             "reviewer": who}))
    return rows


def read_labels(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(row, record) pairs with a non-empty label from a JSONL queue or Label Studio export."""
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise DataError(source, "no such file")
    text = p.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            tasks = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(source, f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
        return _label_studio_rows(tasks, source)
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(source, f"invalid JSON: {exc.msg} (column {exc.colno})",
                            row=n) from None
        if not isinstance(rec, dict):
            raise DataError(source, "expected an object", row=n)
        if rec.get("label") is not None:
            rows.append((n, rec))
    return rows


def human_judgments(item_id: str, k: int, label: int | None, *, reviewer: str,
                    note: str | None = None) -> list[Judgment]:
    """One human label as pairwise judgments of the `human` critic."""
    if label is None:
        pairs = [(i, j, 0.5) for i in range(k) for j in range(i + 1, k)]
    else:
        pairs = [(label, o, 1.0) for o in range(k) if o != label]
    raw = json.dumps({"label": "tie" if label is None else _LETTERS[label],
                      "reviewer": reviewer})
    return [Judgment(item_id=item_id, critic=HUMAN, fingerprint=f"{HUMAN}:{reviewer}",
                     model=HUMAN, constitution="human-review", constitution_hash="",
                     principle="overall", principle_kind="soft", principle_weight=1.0,
                     template="review-v1", order=f"{a},{b}", mode="pairwise", value=v,
                     status="ok", reason=None, raw=raw, rationale=note)
            for a, b, v in pairs]


def import_labels(run_dir: str | Path, path: str | Path, *, reviewer: str = "reviewer"
                  ) -> dict[str, int]:
    """Store the labels in `path` as the `human` critic of the run; returns counts per
    reviewer. Re-importing replaces that reviewer's earlier labels for the same items."""
    from oversight.store import JudgmentStore, run_store

    run_dir = Path(run_dir)
    db_path = run_store(run_dir)
    rows = read_labels(path)
    with JudgmentStore(db_path) as db:
        k_of = {it.id: it.k for it in db.items()}
        by_reviewer: dict[str, list[Judgment]] = {}
        for n, rec in rows:
            item = rec.get("item_id")
            if item not in k_of:
                raise DataError(str(path), f"item {item!r} is not in {db_path}", row=n,
                                field="item_id")
            label = _parse_label(rec["label"], k_of[item], str(path), n, "label")
            who = str(rec.get("reviewer") or reviewer)
            note = rec.get("note")
            by_reviewer.setdefault(who, []).extend(human_judgments(
                item, k_of[item], label, reviewer=who,
                note=str(note) if note not in (None, "") else None))
        for who, js in by_reviewer.items():
            fp = f"{HUMAN}:{who}"
            db.put_critic({"name": HUMAN, "fingerprint": fp, "model": HUMAN, "mode": "pairwise",
                           "constitution": "human-review", "reviewer": who, "weight": 1.0,
                           "veto": False, "template": "review-v1"})
            db.replace(fp, js)
    return {who: len({j.item_id for j in js}) for who, js in by_reviewer.items()}
