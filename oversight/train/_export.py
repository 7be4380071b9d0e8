"""Panel results -> `datasets.Dataset`s in TRL's column conventions, provenance kept.

Three shapes (TRL 1.x):
  preference  prompt, chosen, rejected, margin (+ soft_label, flags, provenance)
              -> RewardTrainer (uses `margin`), DPOTrainer
  kto         prompt, completion, label (True = desirable)  -> KTOTrainer
  sft         messages (the prompt turns + the preferred response)  -> SFTTrainer

Chat prompts give TRL's conversational format (`chosen`/`rejected`/`completion` become one
assistant message); string prompts give the standard text format. Filters: a minimum margin,
dropping flagged items (any flag, or the ones named) and dropping veto conflicts.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oversight.errors import OversightError

FORMATS = ("preference", "kto", "sft")


def load_run(run_dir: str | Path) -> Any:
    """A PanelResult rebuilt from a run directory (`oversight.panel.open_run`): exactly the
    run's critics by fingerprint, its aggregator, options and rules; human review labels are
    evidence, never a vote, so they are left out."""
    from oversight.panel import open_run

    return open_run(run_dir).result()


def _flag_list(drop_flagged: str | bool | Sequence[str] | None) -> list[str]:
    """Flag names whose items are dropped: a list of names, "all", or a comma-separated string
    (the CLI's `--drop-flagged split,veto_conflict`). `True` is a deprecated alias of "all"."""
    from oversight.aggregate import FLAG_COLUMNS

    if drop_flagged is True:
        warnings.warn('drop_flagged=True is deprecated; use drop_flagged="all" (or a list of '
                      "flag names)", DeprecationWarning, stacklevel=3)
        return list(FLAG_COLUMNS)
    if drop_flagged is False or drop_flagged is None:
        return []
    if isinstance(drop_flagged, str):
        flags = [f.strip() for f in drop_flagged.split(",") if f.strip()]
    else:
        flags = list(drop_flagged)
    if flags == ["all"]:
        return list(FLAG_COLUMNS)
    bad = [f for f in flags if f not in FLAG_COLUMNS]
    if bad:
        raise OversightError(f"drop_flagged: unknown flag(s) {bad}; valid: "
                             f"{', '.join(FLAG_COLUMNS)}, or all")
    return flags


def preference_frame(result: Any, *, method: str | None = None, min_margin: float = 0.0,
                     drop_flagged: str | Sequence[str] | bool = (),
                     drop_veto_conflicts: bool = True, **options: Any) -> Any:
    """The filtered preference rows as pandas (one per decided item and losing response)."""
    if isinstance(result, (str, Path)):
        result = load_run(result)
    agg = result.aggregate(method, **options)
    frame = agg.preferences(result.items, min_margin=min_margin,
                            drop_flags=_flag_list(drop_flagged),
                            drop_veto_conflicts=drop_veto_conflicts)
    return _with_amendments(frame, result.critics)


def _with_amendments(frame: Any, critics: Sequence[dict[str, Any]]) -> Any:
    """Add `amendments`: for each row's critics, the constitution amendment it judged under
    ('privacy@00ba1f5eec29=amendment 1 (9776e8af1a66)'), when a critic's constitution has a
    log; rows of unlogged constitutions get an empty string."""
    labels = {c["name"]: f"{c.get('constitution')}@{c.get('constitution_hash')}="
              f"{c['amendment']}" for c in critics if c.get("amendment")}
    if not labels or "critics" not in frame.columns:
        return frame
    frame = frame.copy()
    frame["amendments"] = [",".join(sorted({labels[c] for c in str(cs).split(",")
                                            if c in labels})) for cs in frame["critics"]]
    return frame


def _chat_frame(frame: Any) -> bool:
    """One format per dataset (Arrow columns have one type): conversational if any prompt is
    chat messages, and then string prompts become one user turn."""
    return any(not isinstance(p, str) for p in frame["prompt"])


def _prompt(prompt: Any, chat: bool) -> Any:
    if not chat:
        return prompt
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _provenance(row: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in skip:
            continue
        if hasattr(v, "item"):  # numpy scalar -> python
            v = v.item()
        if k == "reference":
            v = None if v is None or v != v else int(v)
        out[k] = v
    return out


def _dataset(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    from datasets import Dataset

    if not rows:
        return Dataset.from_dict({c: [] for c in columns})
    return Dataset.from_list(rows)


def preference_dataset(result: Any, **filters: Any) -> Any:
    """TRL preference rows: prompt, chosen, rejected, margin, plus soft_label, the flags and
    provenance (item id, critics, principles, constitutions@hash, models, method)."""
    frame = preference_frame(result, **filters)
    rows = []
    chat = _chat_frame(frame)
    for rec in frame.to_dict("records"):
        row = {"prompt": _prompt(rec["prompt"], chat),
               "chosen": _assistant(rec["chosen"]) if chat else rec["chosen"],
               "rejected": _assistant(rec["rejected"]) if chat else rec["rejected"],
               "margin": float(rec["margin"])}
        row.update(_provenance(rec, set(row)))
        rows.append(row)
    return _dataset(rows, ["prompt", "chosen", "rejected", "margin"])


def kto_dataset(result: Any, **filters: Any) -> Any:
    """TRL KTO rows: prompt, completion, label (True for a panel-preferred response, False for
    a rejected one). A K-way winner appears once, however many responses it beat."""
    frame = preference_frame(result, **filters)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    chat = _chat_frame(frame)
    for rec in frame.to_dict("records"):
        prompt = _prompt(rec["prompt"], chat)
        prov = _provenance(rec, {"prompt", "chosen", "rejected", "chosen_index",
                                 "rejected_index"})
        for key, label in (("chosen", True), ("rejected", False)):
            idx = int(rec[f"{key}_index"])
            if (rec["item_id"], idx) in seen:
                continue
            seen.add((rec["item_id"], idx))
            rows.append({"prompt": prompt,
                         "completion": _assistant(rec[key]) if chat else rec[key],
                         "label": label, "response_index": idx, **prov})
    return _dataset(rows, ["prompt", "completion", "label"])


def sft_dataset(result: Any, **filters: Any) -> Any:
    """TRL SFT rows: `messages` = the prompt's turns + the panel-preferred response."""
    frame = preference_frame(result, **filters)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in frame.to_dict("records"):
        if rec["item_id"] in seen:
            continue
        seen.add(rec["item_id"])
        turns = _prompt(rec["prompt"], True)
        prov = _provenance(rec, {"prompt", "chosen", "rejected", "rejected_index"})
        rows.append({"messages": [*turns, {"role": "assistant", "content": rec["chosen"]}],
                     **prov})
    return _dataset(rows, ["messages"])


def export_dataset(result: Any, format: str, **filters: Any) -> Any:
    """One of the three exports by name: 'preference', 'kto' or 'sft'."""
    makers = {"preference": preference_dataset, "kto": kto_dataset, "sft": sft_dataset}
    if format not in makers:
        raise OversightError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    return makers[format](result, **filters)
