"""The backend contract: the only code that touches a model.

A backend answers two calls: the log-probabilities of a few choice strings after each prompt
(one forward pass gives a verdict with a probability), and text generation (rationales,
critiques, revisions). Any object with these methods is a backend; no base class is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]


@dataclass(frozen=True)
class ChatPrompt:
    """Chat messages, plus text the assistant's turn already starts with."""

    messages: tuple[Message, ...]
    assistant_prefix: str = ""


class ChoiceRequest:
    """Score `choices` as the continuation of `prompt`.

    `context` carries the structured request (item, principle, order, mode) for backends that
    judge without a language model, such as FunctionBackend; model backends ignore it. The
    prompt may be given as `build`, a function that renders it on first access: a backend that
    never reads it (a function critic) then never pays for the templating.
    """

    __slots__ = ("_prompt", "_build", "choices", "context")

    def __init__(self, prompt: ChatPrompt | None = None, choices: tuple[str, ...] = (),
                 context: Any = None, *, build: Callable[[], ChatPrompt] | None = None) -> None:
        if prompt is None and build is None:
            raise ValueError("ChoiceRequest needs a prompt or a build function")
        self._prompt = prompt
        self._build = build
        self.choices = tuple(choices)
        self.context = context

    @property
    def prompt(self) -> ChatPrompt:
        if self._prompt is None:
            self._prompt = self._build()  # type: ignore[misc]
            self._build = None
        return self._prompt

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.prompt, self.choices, self.context)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._prompt, self.choices, self.context = state
        self._build = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChoiceRequest):
            return NotImplemented
        return (self.prompt, self.choices, self.context) == (other.prompt, other.choices,
                                                              other.context)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChoiceRequest(prompt={self.prompt!r}, choices={self.choices!r})"


@dataclass
class ChoiceResult:
    """log P(choice | prompt) for each choice, or raw text for backends without log-probs.

    Exactly one of `logprobs` and `text` is set, unless `error` is.
    """

    logprobs: tuple[float, ...] | None = None
    text: str | None = None
    tokens: int = 0
    latency_s: float = 0.0
    top: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    truncated: bool = False  # text generation stopped at its token limit
    choice_tokens: tuple[int, ...] | None = None  # tokens per choice, where the backend knows
    # A backend's own explanation: the reason for an abstention when neither logprobs nor text
    # is set (e.g. a verifier that cannot decide), otherwise why it gave its verdict.
    note: str | None = None


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@runtime_checkable
class Backend(Protocol):
    """What a critic needs from a model. `fingerprint` must change whenever outputs could."""

    model_id: str

    def fingerprint(self) -> str: ...

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]: ...

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]: ...


@dataclass(frozen=True)
class BackendSpec:
    """How to build a backend elsewhere (a Ray actor): a factory and its keyword arguments.

    A live model is never shipped; the actor calls `build()` once and keeps the result. The
    factory and arguments must pickle (a class, or a module-level function, and plain values).
    """

    factory: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        return self.factory(**self.kwargs)

    @property
    def key(self) -> str:
        """A stable text identity: same key, same backend (pools actors across runs)."""
        name = f"{getattr(self.factory, '__module__', '?')}." \
               f"{getattr(self.factory, '__qualname__', repr(self.factory))}"
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in sorted(self.kwargs.items()))})"


def backend_spec(backend: Any) -> BackendSpec:
    """The spec of a backend, from its `spec()` method; an error says how to add one."""
    make = getattr(backend, "spec", None)
    if make is None:
        raise TypeError(f"backend {type(backend).__name__} ({getattr(backend, 'model_id', '?')})"
                        " has no spec() method, so it cannot be rebuilt on a Ray actor; add "
                        "spec() returning BackendSpec(<class or factory>, <constructor kwargs>)")
    spec = make()
    if not isinstance(spec, BackendSpec):
        raise TypeError(f"{type(backend).__name__}.spec() returned {type(spec).__name__}, "
                        "not a BackendSpec")
    return spec
