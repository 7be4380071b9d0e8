"""Turning a backend's answer into a verdict, or into an abstention with a reason.

Log-prob answers are normalised over the choices. Text answers (backends without log-probs)
are parsed strictly: no verdict, or two different verdicts, is an abstention, never a tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_ANSWER = re.compile(r"(?:answer|verdict|score|choice)\s*(?:is)?\s*[:=\-]?\s*\**\s*\"?'?"
                     r"([A-Za-z]+|\d+)", re.IGNORECASE)
_STRIP = " \t\r\n*\"'`.:()[]"


def normalize(logprobs: Sequence[float]) -> tuple[list[float], float]:
    """Probabilities renormalised over the choices, and the mass the choices held."""
    finite = [lp for lp in logprobs if math.isfinite(lp)]
    if not finite:
        return [math.nan] * len(logprobs), 0.0
    top = max(finite)
    exps = [math.exp(lp - top) if math.isfinite(lp) else 0.0 for lp in logprobs]
    total = sum(exps)
    mass = total * math.exp(top)
    return [e / total for e in exps], mass


def parse_choice(text: str, choices: Sequence[str]) -> tuple[str | None, str]:
    """The single choice a text answer names, or (None, reason)."""
    if text is None or not text.strip():
        return None, "empty output"
    norm = {c.lower(): c for c in choices}
    whole = text.strip().strip(_STRIP).lower()
    if whole in norm:
        return norm[whole], ""
    found = [m.group(1).lower() for m in _ANSWER.finditer(text)]
    found = [f for f in found if f in norm]
    if not found:
        return None, f"no verdict among {list(choices)} found in the output"
    distinct = sorted(set(found))
    if len(distinct) > 1:
        return None, f"conflicting verdicts {[norm[d] for d in distinct]} in the output"
    return norm[distinct[0]], ""
