"""The panel as a scorer: batches of (prompt, completion) judged by a panel, one support in
[0, 1] per completion and critic. Reward functions (`oversight.train`) and the remote reward
server (`oversight.serve`) are built on it.

* completions that share a prompt (GRPO/RLOO generate a group per prompt) form one K-way
  comparison, so a pairwise critic compares siblings: the support is each completion's mean
  probability of winning; a pointwise critic's score is rescaled to [0, 1];
* with a `baseline` (a fixed response, or the name of a dataset column such as `reference`),
  the baseline joins every group, so a lone completion is still compared with something;
* a lone completion with no baseline gets nothing from a pairwise critic (abstain) and is
  scored alone by pointwise critics.

Judgments go through the panel's store, so a completion seen before costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oversight._deprecated import renamed_value
from oversight.data import Comparison

# Reward fusions over critics. "mean_var" and "min" are the two kinds of the `conservative`
# aggregation method (Conservative(kind=...)); "conservative" was this fusion's old name.
AGGREGATES = ("mean", "mean_var", "min")


def fusion_name(aggregate: str) -> str:
    """The reward fusion's current spelling; the old "conservative" warns and maps to
    "mean_var"; an unknown name is a ValueError listing the valid ones."""
    aggregate = renamed_value("aggregate", aggregate, {"conservative": "mean_var"})
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate={aggregate!r}: use one of {', '.join(AGGREGATES)}")
    return aggregate


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or the assistant messages' contents joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return "".join(str(m.get("content", "")) for m in completion)


def _prompt_key(prompt: Any) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class ScoredBatch:
    """Per completion: each critic's support in [0, 1] (NaN = abstained) and the fusions."""

    critics: list[str]
    support: np.ndarray  # [n_completions, n_critics]
    weights: np.ndarray  # [n_critics]

    def fused(self, aggregate: str = "mean", lam: float = 1.0) -> np.ndarray:
        """Weighted mean, mean - lam * variance ("mean_var", Coste et al. 2023), or min over
        critics."""
        aggregate = fusion_name(aggregate)
        s = self.support
        ok = ~np.isnan(s)
        w = np.where(ok, self.weights[None, :], 0.0)
        wsum = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (np.where(ok, s, 0.0) * w).sum(1) / wsum
            if aggregate == "mean":
                out = mean
            elif aggregate == "mean_var":
                var = (np.where(ok, (s - mean[:, None]) ** 2, 0.0) * w).sum(1) / wsum
                out = mean - lam * var
            else:
                out = np.where(ok.any(1), np.nanmin(np.where(ok, s, np.inf), axis=1), np.nan)
        return np.where(wsum > 0, out, np.nan)

    def disagreement(self) -> np.ndarray:
        """Per completion: the standard deviation of the critics' supports (NaN if < 2)."""
        ok = ~np.isnan(self.support)
        out = np.full(len(self.support), np.nan)
        for i in range(len(self.support)):
            if ok[i].sum() >= 2:
                out[i] = float(np.std(self.support[i, ok[i]]))
        return out


class PanelScorer:
    """Judges batches of (prompt, completion) with a panel; remembers the last batch so several
    reward functions built on one scorer (`critic_rewards`) cost one judging pass per step."""

    def __init__(self, panel: Any, *, store: Any = None, baseline: str | None = None,
                 baseline_column: str | None = None, batch_size: int = 16) -> None:
        self.panel = panel
        # A path is opened per call (any thread may score, as in the reward server).
        self.store = str(store) if isinstance(store, Path) else store
        self.baseline = baseline
        self.baseline_column = baseline_column
        self.batch_size = batch_size
        self.critics = [c.name for c in panel.critics]
        self.modes = {c.name: c.mode for c in panel.critics}
        self.weights = np.array([float(c.weight) for c in panel.critics])
        self._last: tuple[str, ScoredBatch] | None = None
        self.calls = 0

    def score(self, prompts: Sequence[Any], completions: Sequence[Any],
              baselines: Sequence[str | None] | None = None) -> ScoredBatch:
        texts = [completion_text(c) for c in completions]
        if baselines is None:
            baselines = [self.baseline] * len(texts)
        key = hashlib.sha256(json.dumps([[_prompt_key(p) for p in prompts], texts,
                                         list(baselines)]).encode()).hexdigest()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        self.calls += 1
        groups: dict[str, list[int]] = {}
        for i, (p, b) in enumerate(zip(prompts, baselines)):
            groups.setdefault(_prompt_key([p, b]), []).append(i)
        items: list[Comparison] = []
        where: dict[int, tuple[str, int, bool]] = {}  # completion -> (item, response, alone)
        for idx in groups.values():
            prompt, base = prompts[idx[0]], baselines[idx[0]]
            unique = list(dict.fromkeys(texts[i] for i in idx))
            responses = [*unique, base] if base is not None and base not in unique else unique
            alone = len(responses) == 1
            if alone:
                responses = responses * 2  # judged alone: only pointwise critics answer
            item = Comparison(prompt if isinstance(prompt, str) else tuple(prompt),
                              tuple(responses))
            items.append(item)
            for i in idx:
                where[i] = (item.id, unique.index(texts[i]), alone)
        result = self.panel.judge(items, store=self.store, batch_size=self.batch_size)
        sup = result.support()
        out = np.full((len(texts), len(self.critics)), np.nan)
        for i, (item_id, r, alone) in where.items():
            for c, name in enumerate(self.critics):
                if alone and self.modes[name] == "pairwise":
                    continue
                vals = sup.get((item_id, name))
                if vals is None or math.isnan(vals[r]):
                    continue
                v = vals[r]
                out[i, c] = (v - 1.0) / 9.0 if self.modes[name] == "score" else v
        batch = ScoredBatch(list(self.critics), out, self.weights)
        self._last = (key, batch)
        return batch

    def _baselines(self, n: int, kwargs: dict[str, Any]) -> list[str | None] | None:
        if self.baseline_column is None:
            return None
        col = kwargs.get(self.baseline_column)
        if col is None:
            raise KeyError(f"baseline_column={self.baseline_column!r} is not a dataset column; "
                           f"columns passed: {sorted(k for k in kwargs if k != 'trainer_state')}")
        return [None if v is None else completion_text(v) for v in col][:n]
