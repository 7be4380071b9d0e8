"""Turning a backend's answer into a verdict, or into an abstention with a reason.

Log-prob answers are normalised over the choices. Text answers (backends without log-probs)
are parsed strictly: no verdict, or two different verdicts, is an abstention, never a tie.

Every abstention's reason starts with a short code, then ": " and the detail, so that a run's
summary can count abstentions by cause (`reason_code`):

  empty                  the output is empty or whitespace;
  truncated              the output stops before its verdict (a dangling "Answer:", or the
                         backend reports that generation hit its token limit);
  no-verdict             no choice is named;
  doubled-verdict        the bare answer repeats the verdict token ("A A", "AA"): a degenerate
                         answer, not a deliberate one;
  conflicting-verdicts   two different choices are named ("A B", "Answer: A ... Answer: B");
  no-choice-probability  log-probs put no mass on any choice;
  low-choice-mass        the choices hold less probability than `min_choice_mass`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_ANSWER = re.compile(r"(?:answer|verdict|score|choice)\s*(?:is)?\s*[:=\-]?\s*\**\s*\"?'?"
                     r"([A-Za-z]+|\d+)", re.IGNORECASE)
_STRIP = " \t\r\n*\"'`.:()[]"
_isfinite, _exp = math.isfinite, math.exp


def normalize(logprobs: Sequence[float]) -> tuple[list[float], float]:
    """Probabilities renormalised over the choices, and the mass the choices held."""
    if len(logprobs) == 2:
        return normalize_pair(logprobs[0], logprobs[1])
    finite = [lp for lp in logprobs if math.isfinite(lp)]
    if not finite:
        return [math.nan] * len(logprobs), 0.0
    top = max(finite)
    exps = [math.exp(lp - top) if math.isfinite(lp) else 0.0 for lp in logprobs]
    total = sum(exps)
    mass = total * math.exp(top)
    return [e / total for e in exps], mass


def normalize_pair(a: float, b: float) -> tuple[list[float], float]:
    """`normalize` of two log-probs (every pairwise and pass/fail verdict), with the same
    arithmetic in the same order, so the same bits, at a third of the cost."""
    if _isfinite(a):
        if _isfinite(b):
            top = a if a >= b else b  # max() keeps the first of equals, as here
            ea, eb = _exp(a - top), _exp(b - top)
        else:
            top, ea, eb = a, 1.0, 0.0
    elif _isfinite(b):
        top, ea, eb = b, 0.0, 1.0
    else:
        return [math.nan, math.nan], 0.0
    total = ea + eb
    return [ea / total, eb / total], total * _exp(top)


def reason_code(reason: str | None) -> str:
    """The short cause at the head of an abstention's or error's reason ("no-verdict")."""
    if not reason:
        return "unspecified"
    return reason.split(":", 1)[0].strip()[:40] or "unspecified"


_DANGLING = re.compile(r"(?:answer|verdict|score|choice)\s*(?:is)?\s*[:=\-]?\s*\**\s*$",
                       re.IGNORECASE)
_TOKENS = re.compile(r"[A-Za-z]+|\d+")


def parse_choice(text: str | None, choices: Sequence[str], *,
                 truncated: bool = False) -> tuple[str | None, str]:
    """The single choice a text answer names, or (None, "code: reason").

    `truncated` says the backend stopped generating at its token limit; an answer without a
    verdict is then reported as truncated rather than as naming no verdict.
    """
    if text is None or not text.strip():
        return None, "empty: empty output"
    norm = {c.lower(): c for c in choices}
    whole = text.strip().strip(_STRIP).lower()
    if whole in norm:
        return norm[whole], ""
    bare = _TOKENS.findall(whole)
    if bare and all(t in norm for t in bare) and len(bare) > 1:
        distinct = sorted(set(bare))
        if len(distinct) > 1:
            return None, (f"conflicting-verdicts: conflicting verdicts "
                          f"{[norm[d] for d in distinct]} in the output")
        return None, f"doubled-verdict: the verdict {norm[bare[0]]!r} is repeated"
    if len(bare) == 1 and len(bare[0]) > 1:
        for c in sorted(norm, key=len, reverse=True):
            if len(bare[0]) % len(c) == 0 and bare[0] == c * (len(bare[0]) // len(c)):
                return None, f"doubled-verdict: the verdict {norm[c]!r} is repeated"
    found = [m.group(1).lower() for m in _ANSWER.finditer(text)]
    found = [f for f in found if f in norm]
    if not found:
        if truncated or _DANGLING.search(text.rstrip()):
            return None, "truncated: the output stops before a verdict"
        return None, f"no-verdict: no verdict among {list(choices)} found in the output"
    distinct = sorted(set(found))
    if len(distinct) > 1:
        return None, (f"conflicting-verdicts: conflicting verdicts "
                      f"{[norm[d] for d in distinct]} in the output")
    return norm[distinct[0]], ""
