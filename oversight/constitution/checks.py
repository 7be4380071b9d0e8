"""Ready-made predicates and classifiers for verifier principles, referenced by import path
(`predicate = "oversight.constitution.checks:balanced_code_fences"`). Each is deterministic."""

from __future__ import annotations

import re

from oversight.constitution._verifiers import Verdict

_WORD = re.compile(r"\S+")


def balanced_code_fences(response: str) -> Verdict:
    """Fails when a ``` code fence is left open (an odd number of fences)."""
    n = response.count("```")
    if n % 2:
        return Verdict("fail", f"{n} code fences: one is never closed")
    return Verdict("pass", f"{n} code fences, all closed")


def non_empty(response: str) -> bool:
    """Fails on an empty or whitespace-only response."""
    return bool(response.strip())


def answers_in_language(response: str, prompt: object = None) -> Verdict:
    """Abstains on prompts with no letters (nothing to compare); fails when the prompt is in
    Latin script and the response has no Latin letters at all. A crude, exact check."""
    turns = prompt if isinstance(prompt, (list, tuple)) else ()
    text = prompt if isinstance(prompt, str) else " ".join(
        str(m.get("content", "")) for m in turns if isinstance(m, dict))
    if not re.search(r"[^\W\d_]", text):
        return Verdict("abstain", "the prompt has no letters to compare against")
    latin = re.compile(r"[A-Za-z]")
    if latin.search(text) and response.strip() and not latin.search(response):
        return Verdict("fail", "Latin-script prompt, response without Latin letters")
    return Verdict("pass", "script matches")


def shouting_score(response: str) -> float:
    """Share of letters that are upper case (a deterministic 'classifier'); NaN when there are
    no letters, so a verifier using it abstains instead of guessing."""
    letters = [c for c in response if c.isalpha()]
    if not letters:
        return float("nan")
    return sum(c.isupper() for c in letters) / len(letters)
