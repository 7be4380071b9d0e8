"""A Comparison is one unit to judge: a prompt and two or more candidate responses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Union

Message = dict[str, str]
PromptLike = Union[str, tuple[Message, ...]]  # noqa: UP007 (a runtime alias on 3.10)


@dataclass(frozen=True)
class Comparison:
    """A prompt (a string, or chat messages) with K >= 2 responses.

    `reference` is the index of a reference-preferred response (e.g. the human `chosen`), kept
    for measuring agreement and never shown to a critic. `id` is derived from the content, so
    the same item gets the same id in every run and the cache can key on it.
    """

    prompt: PromptLike
    responses: tuple[str, ...]
    reference: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.prompt, list):
            object.__setattr__(self, "prompt", tuple(dict(m) for m in self.prompt))
        object.__setattr__(self, "responses", tuple(self.responses))
        if len(self.responses) < 2:
            raise ValueError(f"a Comparison needs at least 2 responses, got {len(self.responses)}")
        if self.reference is not None and not 0 <= self.reference < len(self.responses):
            raise ValueError(f"reference {self.reference} is out of range for "
                             f"{len(self.responses)} responses")

    @cached_property
    def id(self) -> str:
        """Computed once per object (prompt and responses are frozen)."""
        blob = json.dumps({"prompt": self.prompt, "responses": self.responses},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def messages(self) -> tuple[Message, ...]:
        """The prompt as chat messages (a string prompt is one user turn)."""
        if isinstance(self.prompt, str):
            return ({"role": "user", "content": self.prompt},)
        return self.prompt

    @property
    def k(self) -> int:
        return len(self.responses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt if isinstance(self.prompt, str) else list(self.prompt),
            "responses": list(self.responses),
            "reference": self.reference,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        prompt = d["prompt"]
        return cls(prompt=prompt if isinstance(prompt, str) else tuple(prompt),
                   responses=tuple(d["responses"]), reference=d.get("reference"),
                   meta=d.get("meta") or {})

    def prompt_text(self) -> str:
        """The last user turn, for compact display."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return m.get("content", "")
        return self.messages[-1].get("content", "")
