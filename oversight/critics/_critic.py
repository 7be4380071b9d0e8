"""A Critic is one constitution bound to one backend, with a judging mode.

Modes:
  pairwise  P(first shown is better) from the normalised log-probs of "A"/"B";
  score     the expected 1-10 score over the digit tokens;
  passfail  P(the response upholds the principle) from "Yes"/"No";
  likelihood  pointwise and position-free: how much more likely the model finds the response
            after a context stating the principle than after a reference context, the
            neutral conversation or one stating the principle's breach:
            d = log p(r | upheld) - log p(r | reference), per token by default. The value is
            sigmoid(d); all four contrasts (violation/neutral, summed/per token) and the three
            log-likelihoods are kept in the judgment's `raw` for audit.

Options: position swap (both orders kept, so position bias is measurable), principle sampling
(k per item with a seed, as in the CAI paper), a rationale generated before the verdict, and
`hardened=True`: the prompt-injection-hardened template (random fences around untrusted text,
chat-control tokens neutralised; see `oversight.critics._templates`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

from oversight.backends import Backend, ChatPrompt, ChoiceRequest, ChoiceResult
from oversight.constitution import Constitution, Principle, load_constitution
from oversight.critics import _templates as T
from oversight.critics._judgment import JUDGMENT_COLUMNS, Judgment, Mode
from oversight.critics._parse import normalize, normalize_pair, parse_choice
from oversight.data import Comparison

MODES = ("pairwise", "score", "passfail", "likelihood")
CONTRASTS = ("violation", "neutral")
# The order strings of 2- and 3-way items, made once (one shared string per order).
_ORDER_TEXT = {shown: ",".join(map(str, shown)) for shown in
               [(0,), (1,), (2,), (0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]}


def _frozen(cls: type[Any], fields: dict[str, Any]) -> Any:
    """`cls(**fields)` for a frozen dataclass given every field, already valid: the same
    object, made by filling its `__dict__` instead of one `object.__setattr__` per field (a
    third of the cost; the panel makes two per judgment)."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


@dataclass(frozen=True)
class JudgeContext:
    """What a FunctionBackend sees: the structured request behind a prompt."""

    item: Comparison
    shown: tuple[int, ...]
    principle: Principle
    mode: str
    choices: tuple[str, ...]

    @property
    def responses(self) -> tuple[str, ...]:
        """The responses in the order shown."""
        return tuple(self.item.responses[i] for i in self.shown)


@dataclass
class Prepared:
    """Requests built for a batch of tasks, with what `finish` needs to make judgments."""

    tasks: list[Task]
    requests: list[ChoiceRequest]
    rationales: list[str | None]
    gen_tokens: list[int]
    gen_latency: list[float]
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Task:
    """One judgment to compute: an item, a principle and the order the responses are shown."""

    item: Comparison
    principle: Principle
    shown: tuple[int, ...]
    order: str = field(default="", compare=False)  # "1,0"; filled in from `shown` if empty

    def __post_init__(self) -> None:
        if not self.order:
            object.__setattr__(self, "order", _ORDER_TEXT.get(self.shown)
                               or ",".join(str(i) for i in self.shown))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.item.id, self.principle.id, self.order)


class Critic:
    """One constitution, one backend, one mode. See the module docstring for options."""

    def __init__(self, constitution: Constitution | str | Path, backend: Backend, *,
                 mode: Mode = "pairwise", name: str | None = None, swap: bool = True,
                 principles: str | int | Sequence[str] = "all", seed: int = 0,
                 rationale: bool = False, rationale_tokens: int = 96,
                 min_choice_mass: float = 0.0, weight: float = 1.0, veto: bool = False,
                 hardened: bool = False, fence_key: bytes | None = None,
                 contrast: str = "violation", per_token: bool = True) -> None:
        if not isinstance(constitution, Constitution):
            constitution = load_constitution(constitution)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not valid; use one of {', '.join(MODES)}")
        if isinstance(principles, int) and not isinstance(principles, bool):
            n_eligible = sum(p.is_verifier == bool(getattr(backend, "runs_verifiers", False))
                             for p in constitution.principles)
            if not 1 <= principles <= n_eligible:
                raise ValueError(f"principles={principles} must be between 1 and "
                                 f"{n_eligible} for constitution '{constitution.name}'")
        elif isinstance(principles, str):
            if principles != "all":
                raise ValueError(f"principles={principles!r}: use 'all', an int k, or a list "
                                 "of principle ids")
        else:
            runs_verifiers = bool(getattr(backend, "runs_verifiers", False))
            for pid in list(principles):  # type: ignore[arg-type]
                p = constitution[pid]  # raises KeyError naming the valid ids
                if p.is_verifier != runs_verifiers:
                    raise ValueError(
                        f"principle '{pid}' of constitution '{constitution.name}' is "
                        + ("a verifier: judge it with oversight.verifier_critic(...)"
                           if p.is_verifier else "not a verifier: a verifier critic judges "
                           "only principles with a [principles.verifier] table"))
        if not 0.0 <= min_choice_mass < 1.0:
            raise ValueError(f"min_choice_mass={min_choice_mass} must be in [0, 1)")
        if weight <= 0:
            raise ValueError(f"weight={weight} must be > 0")
        if contrast not in CONTRASTS:
            raise ValueError(f"contrast={contrast!r} is not valid; use one of "
                             f"{', '.join(CONTRASTS)}")
        if mode == "likelihood" and (hardened or rationale):
            raise ValueError("mode='likelihood' scores the response itself, with no judge prompt:"
                             " hardened=True and rationale=True do not apply to it")
        self.constitution = constitution
        self.backend = backend
        self.mode: Mode = mode
        self.name = name or constitution.name
        self.swap = swap
        self.principles = principles
        self.seed = seed
        self.rationale = rationale
        self.rationale_tokens = rationale_tokens
        self.min_choice_mass = min_choice_mass
        self.weight = weight
        self.veto = veto
        self.hardened = hardened
        self._fence_key = fence_key
        self.contrast = contrast
        self.per_token = per_token

    def __repr__(self) -> str:
        return (f"Critic(name={self.name!r}, constitution={self.constitution.name}@"
                f"{self.constitution.hash}, model={self.backend.model_id!r}, mode={self.mode!r})")

    # -- identity --------------------------------------------------------------------------
    @property
    def template(self) -> str:
        """The prompt template's version (part of the fingerprint and of every judgment)."""
        if self.mode == "likelihood":
            return T.LIKELIHOOD_VERSION
        return T.HARDENED_VERSION if self.hardened else T.TEMPLATE_VERSION

    def __setattr__(self, name: str, value: Any) -> None:
        # Any change (a new backend, mode, ...) may change the identity: compute it again.
        self.__dict__.pop("_fingerprint", None)
        object.__setattr__(self, name, value)

    @property
    def fingerprint(self) -> str:
        """Model + constitution hash + template + mode + verdict options: keys the cache.

        Computed once and kept on the critic (assigning any attribute recomputes it), so a
        judgment costs no hashing."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            fp = self.__dict__["_fingerprint"] = self._compute_fingerprint()
        return fp

    def _compute_fingerprint(self) -> str:
        doc = {
            "backend": self.backend.fingerprint(),
            "constitution": self.constitution.hash,
            "template": self.template,
            "mode": self.mode,
            "rationale": [self.rationale, self.rationale_tokens],
            "min_choice_mass": self.min_choice_mass,
        }
        if self.mode == "likelihood":
            doc["likelihood"] = [self.contrast, self.per_token]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name, "constitution": self.constitution.name,
            "constitution_hash": self.constitution.hash, "model": self.backend.model_id,
            "mode": self.mode, "swap": self.swap,
            "principles": self.principles if isinstance(self.principles, (str, int))
            else list(self.principles),
            "seed": self.seed, "rationale": self.rationale, "weight": self.weight,
            "veto": self.veto, "template": self.template, "fingerprint": self.fingerprint,
            "amendment": self.amendment,
            **({"contrast": self.contrast, "per_token": self.per_token}
               if self.mode == "likelihood" else {}),
        }

    @property
    def amendment(self) -> str | None:
        """Which recorded amendment of the constitution this critic judges under, from the
        hash-chained log beside its file ('amendment 2 (3f2a9c1e0b7d)'); None if unlogged."""
        if self.constitution.path is None:
            return None
        from oversight.constitution import amendment_label, amendment_of

        return amendment_label(amendment_of(self.constitution.path, self.constitution.hash))

    # -- what to judge ---------------------------------------------------------------------
    @property
    def judges_verifiers(self) -> bool:
        """True for a verifier critic (its backend runs verifier principles' code)."""
        return bool(getattr(self.backend, "runs_verifiers", False))

    def eligible_principles(self) -> list[Principle]:
        """Verifier principles go to verifier critics, the others to model critics."""
        return [p for p in self.constitution.principles
                if p.is_verifier == self.judges_verifiers]

    def select_principles(self, item: Comparison) -> list[Principle]:
        all_p = self.eligible_principles()
        if self.principles == "all":
            return all_p
        if isinstance(self.principles, int):
            rng = random.Random(f"{self.seed}:{self.name}:{item.id}")
            chosen = set(p.id for p in rng.sample(all_p, self.principles))
            return [p for p in all_p if p.id in chosen]
        wanted = set(self.principles)
        return [p for p in all_p if p.id in wanted]

    def orders(self, item: Comparison) -> list[tuple[int, ...]]:
        if self.mode != "pairwise":
            return [(i,) for i in range(item.k)]
        out: list[tuple[int, ...]] = []
        for i, j in combinations(range(item.k), 2):
            out.append((i, j))
            if self.swap:
                out.append((j, i))
        return out

    def tasks(self, items: Iterable[Comparison]) -> list[Task]:
        out: list[Task] = []
        sampled = isinstance(self.principles, int) and not isinstance(self.principles, bool)
        # Only sampling depends on the item; the order strings are made once per K.
        fixed = None if sampled else self.select_principles(None)  # type: ignore[arg-type]
        orders: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        for item in items:
            shown_list = orders.get(item.k)
            if shown_list is None:
                shown_list = orders[item.k] = [(o, _ORDER_TEXT.get(o) or ",".join(map(str, o)))
                                               for o in self.orders(item)]
            for p in fixed if fixed is not None else self.select_principles(item):
                out.extend([_frozen(Task, {"item": item, "principle": p, "shown": shown,
                                           "order": order})
                            for shown, order in shown_list])
        return out

    # -- judging ---------------------------------------------------------------------------
    def _choices(self) -> tuple[str, ...]:
        base = {"pairwise": T.PAIRWISE_CHOICES, "score": T.SCORE_CHOICES,
                "passfail": T.PASSFAIL_CHOICES}[self.mode]
        return T.spaced(base) if self.rationale else base

    def _prompt(self, task: Task, rationale: str | None) -> ChatPrompt:
        if self.mode == "pairwise":
            prompt = T.pairwise_prompt(task.item, task.shown, task.principle, rationale)
        elif self.mode == "score":
            prompt = T.score_prompt(task.item, task.shown[0], task.principle, rationale)
        else:
            prompt = T.passfail_prompt(task.item, task.shown[0], task.principle, rationale)
        if self.hardened:
            prompt = T.harden(prompt, task.item, task.shown, self._fence_key)
        return prompt

    def prepare(self, tasks: Sequence[Task]) -> Prepared:
        """Build the backend requests for tasks (generating rationales first if enabled)."""
        rationales: list[str | None] = [None] * len(tasks)
        gen_tokens = [0] * len(tasks)
        gen_latency = [0.0] * len(tasks)
        if self.rationale and tasks:
            gens = self.backend.generate(
                [T.rationale_prompt(self._prompt(t, "")) for t in tasks],
                max_new_tokens=self.rationale_tokens)
            for i, g in enumerate(gens):
                rationales[i] = g.text
                gen_tokens[i] = g.prompt_tokens + g.completion_tokens
                gen_latency[i] = g.latency_s
        if self.mode == "likelihood":
            return self._prepare_likelihood(tasks)
        choices = self._choices()
        # Prompts render on first access: a backend that never reads them (a function
        # critic) skips the templating.
        mode, render = self.mode, self._prompt
        requests = [ChoiceRequest(None, choices,
                                  _frozen(JudgeContext, {"item": t.item, "shown": t.shown,
                                                         "principle": t.principle,
                                                         "mode": mode, "choices": choices}),
                                  build=partial(render, t, rationales[i]))
                    for i, t in enumerate(tasks)]
        return Prepared(list(tasks), requests, rationales, gen_tokens, gen_latency, choices)

    def _prepare_likelihood(self, tasks: Sequence[Task]) -> Prepared:
        """Three requests per task: the response as the one 'choice' after each context."""
        requests = []
        for t in tasks:
            response = t.item.responses[t.shown[0]]
            for ctx in T.likelihood_contexts(t.item, t.principle):
                requests.append(ChoiceRequest(ctx, (response,), JudgeContext(
                    t.item, t.shown, t.principle, self.mode, (response,))))
        n = len(tasks)
        return Prepared(list(tasks), requests, [None] * n, [0] * n, [0.0] * n, ())

    def finish(self, prepared: Prepared, results: Sequence[ChoiceResult]) -> list[Judgment]:
        """Turn the backend's results for prepared requests into judgments."""
        return [Judgment(*row) for row in self.finish_rows(prepared, results)]

    def finish_rows(self, prepared: Prepared, results: Sequence[ChoiceResult]
                    ) -> list[tuple[Any, ...]]:
        """The judgments of `finish` as plain tuples in `JUDGMENT_COLUMNS` order: what the
        panel writes to the store, without a Python object per judgment. The critic's
        identity columns are computed once per call, not once per judgment."""
        if len(results) != len(prepared.requests):
            raise RuntimeError(f"backend {self.backend.model_id} returned {len(results)} "
                               f"results for {len(prepared.requests)} requests")
        if self.mode == "likelihood":
            return [tuple(getattr(j, c) for c in JUDGMENT_COLUMNS)
                    for j in (self._likelihood_verdict(t, results[3 * i:3 * i + 3])
                              for i, t in enumerate(prepared.tasks))]
        head = (self.name, self.fingerprint, self.backend.model_id, self.constitution.name,
                self.constitution.hash)
        template, mode, choices = self.template, self.mode, prepared.choices
        keys = tuple(json.dumps(c, ensure_ascii=False) for c in choices)
        verdict = self._verdict_columns
        # Two choices read from log-probs (nearly every pairwise and pass/fail verdict) take
        # a short path here that computes what `_verdict_columns` would, byte for byte; any
        # other result (an error, text, top tokens, too little mass) goes through it.
        pair = mode in ("pairwise", "passfail") and len(choices) == 2
        raw_a = '{"choices": {' + keys[0] + ": " if pair else ""
        raw_b = ", " + keys[1] + ": " if pair else ""
        min_mass = self.min_choice_mass
        value: float | None
        raw: str | None
        mass: float | None
        out = []
        for task, res, rationale, gen_tokens, gen_latency in zip(
                prepared.tasks, results, prepared.rationales, prepared.gen_tokens,
                prepared.gen_latency):
            lp = res.logprobs
            if pair and lp is not None and res.error is None and not res.top and len(lp) == 2:
                (pa, pb), mass = normalize_pair(lp[0], lp[1])
                if mass > 0.0 and not mass < min_mass:
                    value, status, reason = float(pa), "ok", None
                    raw = f'{raw_a}{round(pa, 6)!r}{raw_b}{round(pb, 6)!r}}}, "top": {{}}}}'
                else:
                    value, status, reason, raw, mass = verdict(res, choices, keys)
            else:
                value, status, reason, raw, mass = verdict(res, choices, keys)
            p = task.principle
            # a backend's note (a verifier's reason) is the rationale unless one was generated
            out.append((task.item.id, *head, p.id, p.kind, p.weight, template, task.order,
                        mode, value, status, reason, raw,
                        res.note if rationale is None else rationale, mass,
                        res.tokens + gen_tokens, res.latency_s + gen_latency))
        return out

    def judge_tasks(self, tasks: Sequence[Task]) -> list[Judgment]:
        """Judge a batch of tasks in one backend call (plus one generation call for rationales)."""
        if not tasks:
            return []
        prepared = self.prepare(tasks)
        return self.finish(prepared, self.backend.score_choices(prepared.requests))

    def judge(self, items: Iterable[Comparison]) -> list[Judgment]:
        """Judge items directly (no cache). Panels add caching and progress on top."""
        return self.judge_tasks(self.tasks(items))

    def _likelihood_verdict(self, task: Task, results: Sequence[ChoiceResult]) -> Judgment:
        j = self._blank(task, results)
        rec = _likelihood_fields(results)
        if isinstance(rec, str):
            j.status = "error" if any(r.error for r in results) else "abstain"
            j.reason = rec
            return j
        rec["value_from"] = {"contrast": self.contrast, "per_token": self.per_token}
        j.raw = json.dumps(rec)
        table = rec["per_token"] if self.per_token else rec["sum"]
        if table is None:
            j.status, j.reason = "abstain", ("no-token-count: the backend does not report the "
                                             "response's token count; use per_token=False")
            return j
        d = float(table[self.contrast])
        j.value = 1.0 / (1.0 + math.exp(-max(min(d, 700.0), -700.0)))
        return j

    def _blank(self, task: Task, results: Sequence[ChoiceResult]) -> Judgment:
        return Judgment(
            item_id=task.item.id, critic=self.name, fingerprint=self.fingerprint,
            model=self.backend.model_id, constitution=self.constitution.name,
            constitution_hash=self.constitution.hash, principle=task.principle.id,
            principle_kind=task.principle.kind, principle_weight=task.principle.weight,
            template=self.template, order=task.order, mode=self.mode, value=None,
            status="ok", tokens=sum(r.tokens for r in results),
            latency_s=sum(r.latency_s for r in results))

    def _verdict_columns(self, res: ChoiceResult, choices: tuple[str, ...],
                         keys: tuple[str, ...]
                         ) -> tuple[float | None, str, str | None, str | None, float | None]:
        """(value, status, reason, raw, choice_mass) of one backend result."""
        if res.error is not None:
            return None, "error", res.error, res.text, None
        if res.note is not None and res.logprobs is None and res.text is None:
            return None, "abstain", res.note, None, None  # an abstention with a reason
        if res.logprobs is not None:
            if self.mode == "score":
                probs, mass = _score_probs(res.logprobs)
            else:
                probs, mass = normalize(res.logprobs)
            # normalize/_score_probs give finite probabilities exactly when mass > 0
            raw = _raw_json(choices, keys, probs, res.top, mass > 0.0)
            if not mass > 0.0:
                return None, "abstain", ("no-choice-probability: no probability on any "
                                         "choice"), raw, mass
            if mass < self.min_choice_mass:
                return None, "abstain", (
                    f"low-choice-mass: choice tokens hold {mass:.3g} of the probability, below "
                    f"min_choice_mass={self.min_choice_mass}"), raw, mass
            return _value(self.mode, probs), "ok", None, raw, mass
        picked, reason = parse_choice(res.text or "", [c.strip() for c in choices],
                                      truncated=res.truncated)
        if picked is None:
            return None, "abstain", reason, res.text, None
        onehot = [1.0 if c.strip() == picked else 0.0 for c in choices]
        return _value(self.mode, onehot), "ok", None, res.text, None


def _raw_json(choices: tuple[str, ...], keys: tuple[str, ...], probs: Sequence[float],
              top: dict[str, float], finite: bool) -> str:
    """`json.dumps({"choices": {choice: round(p, 6)}, "top": top})`, byte for byte, with the
    choice keys encoded once per batch instead of once per judgment."""
    rounded = [round(p, 6) for p in probs]
    if top or not finite:
        return json.dumps({"choices": dict(zip(choices, rounded)), "top": top},
                          ensure_ascii=False)
    body = ", ".join([f"{k}: {float.__repr__(p)}" for k, p in zip(keys, rounded)])
    return f'{{"choices": {{{body}}}, "top": {{}}}}'


def _likelihood_fields(results: Sequence[ChoiceResult]) -> dict[str, Any] | str:
    """The audit record of one likelihood judgment, or the reason it cannot be made."""
    lls = []
    for res in results:
        if res.error is not None:
            return res.error
        if res.logprobs is None or not res.logprobs or not math.isfinite(res.logprobs[0]):
            return ("no-likelihood: the backend gave no finite log-likelihood for the response "
                    "(mode='likelihood' needs a backend with log-probs of a continuation)")
        lls.append(float(res.logprobs[0]))
    n_tok = results[0].choice_tokens[0] if results[0].choice_tokens else None
    up, neutral, bad = lls
    rec: dict[str, Any] = {"loglik": {"upheld": up, "neutral": neutral, "violation": bad},
                           "tokens": n_tok, "sum": {"violation": up - bad, "neutral": up - neutral}}
    rec["per_token"] = ({k: v / n_tok for k, v in rec["sum"].items()} if n_tok else None)
    return rec


def _score_probs(logprobs: Sequence[float]) -> tuple[list[float], float]:
    """Digit probabilities for scores 1..10; P("1") includes P("10"), so subtract it."""
    p = [math.exp(lp) if math.isfinite(lp) else 0.0 for lp in logprobs]
    p[0] = max(p[0] - p[9], 0.0)
    mass = sum(p)
    if mass <= 0:
        return [math.nan] * len(p), 0.0
    return [x / mass for x in p], mass


def _value(mode: str, probs: Sequence[float]) -> float:
    if mode == "score":
        return float(sum((i + 1) * p for i, p in enumerate(probs)))
    return float(probs[0])
