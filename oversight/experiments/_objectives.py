"""Per-completion rewards: score samples with a panel once, then fuse under an objective.

Every sample j of prompt p becomes one two-response Comparison (sample, baseline): pointwise
critics (score, passfail) score the sample, pairwise critics give P(sample beats the
baseline). A reward must be a function of the one sample, never of its siblings, or
best-of-n's estimator would not apply, hence the fixed per-prompt baseline. Judgments go
through the panel's store, so each (critic, item) is computed once across runs.

Objectives (strings, as in the CLI):
  critic:NAME   one critic's support
  mean          mean support over critics
  wco | min     worst case over critics (Coste et al. 2023)
  uwo[:LAM]     mean - LAM * variance over critics (default LAM = 1; Coste et al. 2023)
  veto          mean over the soft critics, 0 for a sample the panel's veto rules veto
  agg:METHOD    any aggregator `oversight.aggregate.aggregate(method=METHOD)` knows: the fused
                P(sample preferred over the baseline) (its `p0`), with the panel's rules
Supports are in [0, 1]: P(pass), P(win) or a 1-10 score rescaled by (s - 1) / 9. Abstentions
are NaN and never count as zero; a sample every critic abstained on has a NaN reward.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from oversight.data import Comparison

KINDS = ("critic", "mean", "wco", "uwo", "veto", "agg")


@dataclass(frozen=True)
class Objective:
    """What a policy is optimized against (or, for the gold, what it is scored by)."""

    kind: str
    critic: str | None = None
    lam: float = 1.0
    method: str | None = None
    label: str | None = None
    critics: tuple[str, ...] | None = None  # a sub-panel; None = every critic

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"objective kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.kind == "critic" and not self.critic:
            raise ValueError("objective 'critic' needs a critic name: 'critic:NAME'")
        if self.kind == "agg" and not self.method:
            raise ValueError("objective 'agg' needs a method: 'agg:vote', 'agg:bt', ...")
        if self.lam < 0:
            raise ValueError(f"objective {self.spec!r}: lambda={self.lam} must be >= 0")

    @property
    def spec(self) -> str:
        sub = "" if self.critics is None else "@" + "+".join(self.critics)
        if self.kind == "critic":
            return f"critic:{self.critic}"
        if self.kind == "uwo":
            return f"uwo:{self.lam:g}{sub}"
        if self.kind == "agg":
            return f"agg:{self.method}{sub}"
        return self.kind + sub

    @property
    def name(self) -> str:
        return self.label or self.spec


def parse_objective(spec: str | Objective, label: str | None = None) -> Objective:
    """'critic:NAME', 'mean', 'wco' (or 'min'), 'uwo' or 'uwo:0.5', 'veto', 'agg:METHOD';
    an optional 'LABEL=' prefix names it in tables and figures ('single=critic:lm'), and an
    optional '@A+B+C' suffix restricts a panel objective to those critics ('wco@lm+length')."""
    if isinstance(spec, Objective):
        return spec
    text = spec.strip()
    if "=" in text:
        label, text = (s.strip() for s in text.split("=", 1))
    text, at, sub = text.partition("@")
    critics = tuple(c.strip() for c in sub.split("+") if c.strip()) if at else None
    if at and not critics:
        raise ValueError(f"objective {spec!r}: '@' needs critic names, e.g. 'mean@a+b'")
    head, _, arg = text.partition(":")
    head = head.strip().lower()
    if head == "critic":
        if critics:
            raise ValueError(f"objective {spec!r}: 'critic:NAME' takes no '@' sub-panel")
        return Objective("critic", critic=arg.strip(), label=label)
    if head in ("wco", "min"):
        return Objective("wco", label=label, critics=critics)
    if head == "uwo":
        try:
            lam = float(arg) if arg.strip() else 1.0
        except ValueError:
            raise ValueError(f"objective {spec!r}: lambda {arg!r} is not a number") from None
        return Objective("uwo", lam=lam, label=label, critics=critics)
    if head in ("mean", "veto"):
        return Objective(head, label=label, critics=critics)
    if head == "agg":
        return Objective("agg", method=arg.strip(), label=label, critics=critics)
    raise ValueError(f"objective {spec!r}: use critic:NAME, mean, wco, uwo[:LAMBDA], veto or "
                     "agg:METHOD")


@dataclass
class Scores:
    """A panel's per-critic support for every (prompt, sample), and what produced it."""

    critics: list[str]
    support: np.ndarray  # [P, N, C], NaN = abstained
    items: list[list[Comparison]]  # [P][N], each (sample, baseline)
    judgments: pd.DataFrame
    panel: Any = field(repr=False, default=None)

    def frame(self) -> pd.DataFrame:
        """Long table: prompt, sample, one column per critic."""
        p, n, _ = self.support.shape
        df = pd.DataFrame({"prompt": np.repeat(np.arange(p), n), "sample": np.tile(np.arange(n),
                                                                                   p)})
        for c, name in enumerate(self.critics):
            df[name] = self.support[:, :, c].reshape(-1)
        return df


def sample_items(prompts: Sequence[Any], samples: Sequence[Sequence[str]],
                 baselines: Sequence[str]) -> list[list[Comparison]]:
    """[P][N] Comparisons (sample, baseline); `meta` carries the prompt's reference, if any."""
    out = []
    for p, (prompt, row, base) in enumerate(zip(prompts, samples, baselines)):
        text = prompt.prompt if hasattr(prompt, "prompt") else prompt
        meta = {"prompt_index": p, "reference": getattr(prompt, "reference", None)}
        out.append([Comparison(text, (s, base), meta=meta) for s in row])
    return out


def score_samples(panel: Any, items: list[list[Comparison]], *, store: Any = None,
                  batch_size: int = 64) -> Scores:
    """Judge every (sample, baseline) item with every critic of `panel`, once, through the
    store; return each critic's support for the sample."""
    from oversight.aggregate import response_support

    flat = [it for row in items for it in row]
    unique = list({it.id: it for it in flat}.values())
    result = panel.judge(unique, store=store, batch_size=batch_size)
    judgments = result.judgments
    critics = [c.name for c in panel.critics]
    modes = {c.name: c.mode for c in panel.critics}
    sup = response_support(judgments)
    sup = sup[sup["response"] == 0]
    value = {(i, c): float(s) for i, c, s in zip(sup["item_id"], sup["critic"], sup["support"])}
    out = np.full((len(items), len(items[0]) if items else 0, len(critics)), np.nan)
    for p, row in enumerate(items):
        for j, it in enumerate(row):
            for c, name in enumerate(critics):
                v = value.get((it.id, name), math.nan)
                out[p, j, c] = (v - 1.0) / 9.0 if modes[name] == "score" else v
    return Scores(critics, out, items, judgments, panel)


def _nan_quiet(fn: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def objective_values(objective: Objective | str, scores: Scores) -> np.ndarray:
    """[P, N] rewards of `objective` on scored samples (NaN where no critic answered)."""
    from oversight.aggregate import conservative_scores

    obj = parse_objective(objective)
    s = scores.support
    if obj.kind == "critic":
        if obj.critic not in scores.critics:
            raise ValueError(f"objective {obj.spec!r}: no critic {obj.critic!r} in the panel; "
                             f"critics: {', '.join(scores.critics)}")
        return s[:, :, scores.critics.index(obj.critic)].copy()
    names = list(obj.critics) if obj.critics is not None else list(scores.critics)
    unknown = [c for c in names if c not in scores.critics]
    if unknown:
        raise ValueError(f"objective {obj.spec!r}: no critic(s) {unknown} in the panel; "
                         f"critics: {', '.join(scores.critics)}")
    cols = [scores.critics.index(c) for c in names]
    vals = np.moveaxis(s[:, :, cols], 2, 0)  # [C', P, N]
    judgments = scores.judgments[scores.judgments["critic"].isin(names)]
    if obj.kind == "mean":
        return _nan_quiet(np.nanmean, vals, axis=0)
    if obj.kind == "wco":
        return _nan_quiet(conservative_scores, vals, kind="min")
    if obj.kind == "uwo":
        return _nan_quiet(conservative_scores, vals, lam=obj.lam, kind="mean_var")
    flat = [it for row in scores.items for it in row]
    unique = list({it.id: it for it in flat}.values())
    panel = scores.panel
    if obj.kind == "veto":
        from oversight.aggregate import aggregate

        rules = panel.rules
        soft = [c for c, name in enumerate(names) if name not in rules.veto_critics]
        if not soft:
            raise ValueError("objective 'veto': every critic is a veto critic; the objective "
                             "needs at least one soft critic to score samples")
        dec = aggregate(judgments, unique, method="vote", rules=rules).decisions
        vetoed = {i: 0 in v for i, v in zip(dec["item_id"], dec["vetoed"])}
        base = _nan_quiet(np.nanmean, vals[soft], axis=0)
        mask = np.array([[vetoed.get(it.id, False) for it in row] for row in scores.items])
        return np.where(mask, 0.0, base)
    from oversight.aggregate import aggregate

    weights = {c.name: float(c.weight) for c in panel.critics if c.name in names}
    try:
        agg = aggregate(judgments, unique, method=str(obj.method), rules=panel.rules,
                        critic_weights=weights)
    except ValueError as exc:
        raise ValueError(f"objective {obj.spec!r}: {exc}") from exc
    p0 = dict(zip(agg.decisions["item_id"], agg.decisions["p0"].astype(float)))
    return np.array([[p0.get(it.id, math.nan) for it in row] for row in scores.items])
