"""SL-CAI: a policy critiques its own response against a principle, then revises it.

Bai et al. (2022), "Constitutional AI", stage 1: for each prompt the policy answers; then, for
N rounds, one principle is sampled (seeded per prompt and round, weighted by the principles'
weights), the policy writes a critique following the principle's critique request and a
revision following its revision request. The last revision becomes supervised data, and
(revision > initial) becomes a preference pair. A panel can gate: a revision is kept only if
the panel prefers it to the initial response.

Every record keeps the prompt, the initial response, each round's principle id, critique and
revision, the constitution's name and hash and the policy model. With `out`, records are
appended to `revisions.jsonl` after each batch, and a rerun skips prompts already done with
the same settings (resumable).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oversight.backends import ChatPrompt
from oversight.constitution import Constitution, Principle, load_constitution

Messages = list[dict[str, str]]
Progress = Callable[[int, int], None]


@dataclass
class RevisionRound:
    principle: str
    critique: str
    revision: str


@dataclass
class RevisionRecord:
    prompt: Messages
    initial: str
    rounds: list[RevisionRound]
    constitution: str
    constitution_hash: str
    policy: str
    key: str
    kept: bool = True
    panel_margin: float | None = None
    panel_p_revision: float | None = None

    @property
    def final(self) -> str:
        return self.rounds[-1].revision if self.rounds else self.initial

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["final"] = self.final
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RevisionRecord:
        d = {k: v for k, v in d.items() if k != "final"}
        d["rounds"] = [RevisionRound(**r) for r in d["rounds"]]
        return cls(**d)


@dataclass
class RevisionRun:
    """All records of a run; `sft_dataset()` and `preference_dataset()` give TRL data."""

    records: list[RevisionRecord] = field(default_factory=list)

    def kept(self) -> list[RevisionRecord]:
        return [r for r in self.records if r.kept and r.final.strip() != r.initial.strip()]

    def sft_dataset(self) -> Any:
        """`messages` = prompt + final revision, for each kept record (SFTTrainer)."""
        from datasets import Dataset

        rows = [{"messages": [*r.prompt, {"role": "assistant", "content": r.final}],
                 **_prov(r)} for r in self.kept()]
        return Dataset.from_list(rows) if rows else Dataset.from_dict({"messages": []})

    def preference_dataset(self) -> Any:
        """revision > initial pairs, conversational (RewardTrainer, DPOTrainer)."""
        from datasets import Dataset

        rows = []
        for r in self.kept():
            row = {"prompt": r.prompt,
                   "chosen": [{"role": "assistant", "content": r.final}],
                   "rejected": [{"role": "assistant", "content": r.initial}], **_prov(r)}
            if r.panel_margin is not None:
                row["margin"] = float(r.panel_margin)
            rows.append(row)
        if not rows:
            return Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []})
        return Dataset.from_list(rows)


def _prov(r: RevisionRecord) -> dict[str, Any]:
    return {"principles": ",".join(x.principle for x in r.rounds),
            "constitution": f"{r.constitution}@{r.constitution_hash}", "policy": r.policy,
            "key": r.key}


def sample_principle(constitution: Constitution, key: str, round_: int,
                     seed: int) -> Principle:
    """One principle per (prompt, round), weighted by weight; the same seed gives the same."""
    rng = random.Random(f"{seed}:{key}:{round_}")
    ps = list(constitution.principles)
    return rng.choices(ps, weights=[p.weight for p in ps], k=1)[0]


def _key(prompt: Messages, settings: dict[str, Any]) -> str:
    blob = json.dumps({"prompt": prompt, **settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _continue(history: Messages, request: str) -> ChatPrompt:
    return ChatPrompt(messages=tuple({**m} for m in [*history,
                                                     {"role": "user", "content": request}]))


def revise(prompts: Sequence[Messages | str], policy: Any,
           constitution: Constitution | str | Path, *, rounds: int = 1, seed: int = 0,
           max_new_tokens: int = 128, temperature: float = 0.0, batch_size: int = 8,
           panel: Any = None, store: Any = None, out: str | Path | None = None,
           progress: Progress | None = None) -> RevisionRun:
    """Critique -> revision for each prompt, `rounds` times; see the module docstring.

    `policy` is any backend with `generate` (TransformersBackend, OpenAIBackend, VLLMBackend,
    a FunctionBackend built with a generate function).
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds} must be >= 1")
    if not isinstance(constitution, Constitution):
        constitution = load_constitution(constitution)
    msgs = [[{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p]
            for p in prompts]
    settings = {"policy": policy.fingerprint(), "constitution": constitution.hash,
                "rounds": rounds, "seed": seed, "max_new_tokens": max_new_tokens,
                "temperature": temperature,
                "panel": [c.fingerprint for c in panel.critics] if panel is not None else None}
    keys = [_key(m, settings) for m in msgs]
    path = Path(out) / "revisions.jsonl" if out is not None else None
    done: dict[str, RevisionRecord] = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = RevisionRecord.from_dict(json.loads(line))
                    done[rec.key] = rec
    todo = [i for i, k in enumerate(keys) if k not in done]
    finished = len(msgs) - len(todo)
    if progress:
        progress(finished, len(msgs))
    gen_opts = dict(max_new_tokens=max_new_tokens, temperature=temperature)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        initial = [g.text.strip() for g in policy.generate(
            [ChatPrompt(messages=tuple(msgs[i])) for i in batch], seed=seed, **gen_opts)]
        current = list(initial)
        history: list[list[RevisionRound]] = [[] for _ in batch]
        for r in range(rounds):
            principles = [sample_principle(constitution, keys[i], r, seed) for i in batch]
            convo = [[*msgs[i], {"role": "assistant", "content": current[n]}]
                     for n, i in enumerate(batch)]
            critiques = [g.text.strip() for g in policy.generate(
                [_continue(c, p.critique_request) for c, p in zip(convo, principles)],
                seed=seed + r, **gen_opts)]
            revs = [g.text.strip() for g in policy.generate(
                [_continue([*c, {"role": "user", "content": p.critique_request},
                            {"role": "assistant", "content": crit}], p.revision_request)
                 for c, p, crit in zip(convo, principles, critiques)],
                seed=seed + r, **gen_opts)]
            for n, (p, crit, rev) in enumerate(zip(principles, critiques, revs)):
                history[n].append(RevisionRound(p.id, crit, rev or current[n]))
                current[n] = rev or current[n]
        records = [RevisionRecord(prompt=msgs[i], initial=initial[n], rounds=history[n],
                                  constitution=constitution.name,
                                  constitution_hash=constitution.hash,
                                  policy=policy.model_id, key=keys[i])
                   for n, i in enumerate(batch)]
        if panel is not None:
            _gate(records, panel, store)
        for rec in records:
            done[rec.key] = rec
        if path is not None:
            with open(path, "a", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
        finished += len(batch)
        if progress:
            progress(finished, len(msgs))
    return RevisionRun([done[k] for k in keys])


def _gate(records: list[RevisionRecord], panel: Any, store: Any) -> None:
    """Keep a revision only if the panel's decision prefers it to the initial response."""
    import numpy as np

    from oversight.data import Comparison

    items = {}
    for rec in records:
        if rec.final.strip() == rec.initial.strip():
            rec.kept = False
            continue
        items[rec.key] = Comparison(tuple(rec.prompt), (rec.initial, rec.final))
    if not items:
        return
    result = panel.judge(list(items.values()), store=store)
    dec = result.aggregate().decisions.set_index("item_id")
    for rec in records:
        item = items.get(rec.key)
        if item is None or item.id not in dec.index:
            continue
        d = dec.loc[item.id]
        final = d["final"]
        rec.kept = isinstance(final, (int, np.integer)) and int(final) == 1
        rec.panel_margin = float(d["margin"])
        rec.panel_p_revision = None if d["p0"] != d["p0"] else float(1.0 - d["p0"])
