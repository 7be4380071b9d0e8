"""Conservative aggregation over critics, as for reward-model ensembles (Coste et al. 2023).

Each critic gives each response a support s in [0, 1] (a score critic's 1-10 expected score is
mapped onto [0, 1] first). Two conservative fusions:
  mean_var:  mean_c(s) - lam * var_c(s)    (uncertainty-weighted optimisation)
  min:       min_c(s)                       (worst-case optimisation)
Calibration first: a temperature on the logit, p' = sigmoid(logit(p) / T), and optionally the
CAI paper's clamping of probabilities to a band such as [0.4, 0.6] (Bai et al. 2022), which
stops over-confident AI labels from dominating a preference model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import is_tie, response_support

SCORE_LOW, SCORE_HIGH = 1.0, 10.0  # a score critic's expected score lies in [1, 10]


def calibrate(p: np.ndarray, temperature: float = 1.0,
              clamp: tuple[float, float] | None = None) -> np.ndarray:
    """Temperature-scale probabilities on the logit scale, then clamp to a band."""
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    out = 1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))
    if clamp is not None:
        lo, hi = clamp
        if not 0.0 <= lo <= 0.5 <= hi <= 1.0:
            raise ValueError(f"clamp={clamp} must satisfy 0 <= low <= 0.5 <= high <= 1")
        out = np.clip(out, lo, hi)
    return out


def conservative_scores(values: np.ndarray, lam: float = 1.0, kind: str = "mean_var"
                        ) -> np.ndarray:
    """Fuse a [n_critics, ...] array (NaN = abstained) into one conservative score per column."""
    if kind == "mean_var":
        return np.nanmean(values, axis=0) - lam * np.nanvar(values, axis=0)
    if kind == "min":
        return np.nanmin(values, axis=0)
    raise ValueError(f"kind={kind!r}: use 'mean_var' or 'min'")


class Conservative:
    """Per item and response: conservative support over critics; label = the best response.

    Fitted: `scores_` (item_id, response, score, mean, var, n_critics), `results_` (item_id,
    label, margin, p0 = the calibrated-then-fused score of response 0 for two-response items).
    """

    def __init__(self, *, lam: float = 1.0, kind: str = "mean_var", temperature: float = 1.0,
                 clamp: tuple[float, float] | None = None) -> None:
        conservative_scores(np.zeros((1, 1)), lam, kind)  # validates kind
        calibrate(np.array([0.5]), temperature, clamp)  # validates calibration
        self.lam, self.kind, self.temperature, self.clamp = lam, kind, temperature, clamp

    def fit(self, judgments: pd.DataFrame) -> Conservative:
        sup = response_support(judgments)
        score = set(judgments.loc[judgments["mode"] == "score", "critic"])
        is_score = sup["critic"].isin(score).to_numpy()
        s = sup["support"].to_numpy(dtype=float)
        # Probabilities are calibrated; scores are mapped from [1, 10] onto [0, 1] so that
        # every critic's support is on one scale before the fusion.
        s = np.where(is_score, (s - SCORE_LOW) / (SCORE_HIGH - SCORE_LOW),
                     calibrate(np.clip(s, 0.0, 1.0), self.temperature, self.clamp))
        sup = sup.assign(s=s)
        g = sup.groupby(["item_id", "response"])["s"]
        if self.kind == "mean_var":
            score = g.mean() - self.lam * g.var(ddof=0)
        else:
            score = g.min()
        scores = pd.DataFrame({"score": score, "mean": g.mean(), "var": g.var(ddof=0),
                               "n_critics": g.count()}).reset_index()
        self.scores_ = scores
        rows = []
        for item, sub in scores.groupby("item_id", sort=False):
            vals = sub.sort_values("response")["score"].to_numpy()
            order = np.argsort(-vals)
            best = int(sub.sort_values("response")["response"].to_numpy()[order[0]])
            margin = float(vals[order[0]] - vals[order[1]]) if len(vals) > 1 else 0.0
            label: int | str = "tie" if is_tie(margin) else best
            rows.append({"item_id": item, "label": label, "margin": margin,
                         "p0": float(vals[0]), "n_critics": int(sub["n_critics"].max())})
        self.results_ = pd.DataFrame(rows, columns=["item_id", "label", "margin", "p0",
                                                    "n_critics"])
        self.labels_ = self.results_.set_index("item_id")["label"]
        return self
