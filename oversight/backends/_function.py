"""FunctionBackend: a plain Python callable or rule acts as a critic's model.

The callable receives the structured request (`JudgeContext`: item, shown order, principle,
mode, choices) and returns one of:

* a choice string (e.g. "A", "Yes", "7") -- a deterministic verdict;
* a mapping {choice: probability};
* a float -- the probability of the first choice (binary choices only);
* any other string -- raw text, which the critic parses (unparseable text abstains);
* None -- abstain.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from oversight.backends._base import (
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
)


def logs(probs: list[float]) -> tuple[float, ...]:
    return tuple(math.log(p) if p > 0 else -math.inf for p in probs)


class FunctionBackend:
    def __init__(self, judge: Callable[[Any], Any],
                 generate: Callable[[ChatPrompt], str] | None = None,
                 name: str | None = None) -> None:
        self._judge = judge
        self._generate = generate
        self.model_id = name or f"function:{getattr(judge, '__qualname__', repr(judge))}"

    def fingerprint(self) -> str:
        """Name + a hash of the judge's source, read once (getsource costs a file read)."""
        digest = self.__dict__.get("_source_digest")
        if digest is None:
            try:
                src = inspect.getsource(self._judge)
            except (OSError, TypeError):
                src = repr(self._judge)
            digest = self._source_digest = hashlib.sha256(src.encode()).hexdigest()[:12]
        return f"{self.model_id}#{digest}"

    def spec(self) -> BackendSpec:
        """Rebuild on a Ray actor: the functions travel by reference (module-level functions
        must be importable there) or by value (lambdas, closures), as cloudpickle does.
        A subclass with its own constructor overrides this."""
        return BackendSpec(FunctionBackend, dict(judge=self._judge, generate=self._generate,
                                                 name=self.model_id))

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        out: list[ChoiceResult] = []
        append, clock, judge, to_result = out.append, time.perf_counter, self._judge, \
            self._to_result
        for req in requests:
            t0 = clock()
            try:
                verdict = judge(req.context if req.context is not None else req)
            except Exception as exc:  # a user's rule failing must not kill the run
                append(ChoiceResult(error=f"{type(exc).__name__}: {exc}",
                                    latency_s=clock() - t0))
                continue
            append(to_result(verdict, req.choices, clock() - t0))
        return out

    @staticmethod
    def _to_result(verdict: Any, choices: tuple[str, ...], latency: float) -> ChoiceResult:
        # ChoiceResult's fields by position: logprobs, text, tokens, latency_s
        if type(verdict) is float and len(choices) == 2 and 0.0 <= verdict <= 1.0:
            q = 1.0 - verdict  # the common case first, as below
            return ChoiceResult((math.log(verdict) if verdict > 0 else -math.inf,
                                 math.log(q) if q > 0 else -math.inf), None, 0, latency)
        if verdict is None:
            return ChoiceResult(None, "", 0, latency)
        if isinstance(verdict, str):
            stripped = verdict.strip()
            if stripped in choices:  # log(1) = 0, log(0) = -inf, as `logs` gives
                return ChoiceResult(tuple([0.0 if c == stripped else -math.inf
                                           for c in choices]), None, 0, latency)
            return ChoiceResult(None, verdict, 0, latency)
        if isinstance(verdict, Mapping):
            unknown = [c for c in verdict if c not in choices]
            if unknown:
                return ChoiceResult(error=f"returned unknown choices {sorted(unknown)}; "
                                    f"valid: {list(choices)}", latency_s=latency)
            return ChoiceResult(logprobs=logs([float(verdict.get(c, 0.0)) for c in choices]),
                                latency_s=latency)
        if isinstance(verdict, (int, float)) and not isinstance(verdict, bool):
            p = float(verdict)
            if len(choices) != 2 or not 0.0 <= p <= 1.0:
                return ChoiceResult(error=f"returned {p!r}: a float verdict must be a "
                                    "probability in [0, 1] for two choices", latency_s=latency)
            return ChoiceResult(logprobs=logs([p, 1.0 - p]), latency_s=latency)
        return ChoiceResult(error=f"returned {type(verdict).__name__}; expected a choice "
                            "string, a {choice: prob} mapping, a float or None",
                            latency_s=latency)

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        if self._generate is None:
            raise NotImplementedError(f"{self.model_id} was built without a generate function")
        return [Generation(text=self._generate(p)) for p in prompts]
