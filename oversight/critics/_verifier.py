"""Verifier critics: a constitution's verifier principles judged by code, through the same
critic -> backend -> judgment path as a model, so verdicts reach the store and the panel.

`verifier_critic(constitution)` is a pass/fail Critic over the verifier principles, on a
`VerifierBackend`. A pass is P(pass) = 1, a fail P(pass) = 0 (its reason goes into the
judgment's `rationale`), an abstention is status "abstain" with the verifier's reason, and a
verifier that raises is status "error". Bound to a `kind = "veto"` principle, a fail vetoes
(P(pass) = 0 <= 0.5 - veto_margin for every allowed margin).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from oversight.backends import ChatPrompt, ChoiceRequest, ChoiceResult, Generation
from oversight.constitution import Constitution, run_verifier
from oversight.critics._critic import Critic, JudgeContext

VERIFIER_VERSION = "verifier-1"


class VerifierBackend:
    """Runs verifier principles' code. Only pass/fail requests; no generation."""

    runs_verifiers = True

    def __init__(self, constitution: Constitution) -> None:
        self.constitution = constitution
        self.model_id = f"verifier:{constitution.name}"
        parts = [VERIFIER_VERSION, constitution.hash]
        parts += [p.verifier.code_fingerprint() for p in constitution.principles
                  if p.verifier is not None]
        self._fingerprint = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Changes with the constitution and with the source of any referenced callable."""
        return f"{self.model_id}#{self._fingerprint}"

    def spec(self) -> Any:
        from oversight.backends import BackendSpec

        return BackendSpec(VerifierBackend, {"constitution": self.constitution})

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        out = []
        for req in requests:
            t0 = time.perf_counter()
            ctx = req.context
            if not isinstance(ctx, JudgeContext) or ctx.mode != "passfail":
                out.append(ChoiceResult(error="a verifier judges pass/fail requests only "
                                        "(use verifier_critic(...))"))
                continue
            if ctx.principle.verifier is None:
                out.append(ChoiceResult(error=f"principle '{ctx.principle.id}' has no "
                                        "verifier"))
                continue
            try:
                v = run_verifier(ctx.principle.verifier, ctx.responses[0], ctx.item.prompt)
            except Exception as exc:  # a user's predicate failing must not kill the run
                out.append(ChoiceResult(error=f"verifier raised {type(exc).__name__}: {exc}",
                                        latency_s=time.perf_counter() - t0))
                continue
            dt = time.perf_counter() - t0
            if v.outcome == "abstain":
                out.append(ChoiceResult(note=v.reason or "verifier abstained", latency_s=dt))
            else:
                passed = v.outcome == "pass"
                logprobs = (0.0, -math.inf) if passed else (-math.inf, 0.0)
                out.append(ChoiceResult(logprobs=logprobs, note=f"{v.outcome}: {v.reason}",
                                        latency_s=dt))
        return out

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        raise NotImplementedError("a verifier backend does not generate text")


def verifier_critic(constitution: Constitution | str, *, name: str | None = None,
                    veto: bool = False, weight: float = 1.0) -> Critic:
    """A pass/fail critic over `constitution`'s verifier principles.

    Its default name is `<constitution>-verifiers`. A verifier principle of kind "veto" vetoes
    on failure whatever `veto` says; `veto=True` makes every verifier of this critic a veto.
    """
    if not isinstance(constitution, Constitution):
        from oversight.constitution import load_constitution

        constitution = load_constitution(constitution)
    if not any(p.is_verifier for p in constitution.principles):
        raise ValueError(f"constitution '{constitution.name}' has no verifier principles "
                         "(add a [principles.verifier] table to one)")
    return Critic(constitution, VerifierBackend(constitution), mode="passfail",
                  name=name or f"{constitution.name}-verifiers", swap=False, weight=weight,
                  veto=veto)
