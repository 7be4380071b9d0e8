"""Position-prior removal without labels, on simulated critics with known bias and accuracy."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.aggregate import aggregate, calibrate_positions, position_priors
from oversight.aggregate._calibration import debias, pride_prior
from oversight.constitution import builtin

PRIOR = 0.8      # the critic's prior on the first position
ACCURACY = 0.75  # the share of items whose content verdict is right


def _u(item_id: str, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{item_id}".encode()).hexdigest()[:8], 16) / 16**8


def _biased(ctx) -> float:
    """Content belief: right with P = ACCURACY, confidence in [0.6, 0.9]; then the position
    prior multiplies in: P(first) ∝ pc * PRIOR vs (1 - pc) * (1 - PRIOR)."""
    iid = ctx.item.id
    believed = ctx.item.reference if _u(iid, "right") < ACCURACY else 1 - ctx.item.reference
    conf = 0.6 + 0.3 * _u(iid, "conf")
    pc = conf if ctx.shown[0] == believed else 1 - conf
    return pc * PRIOR / (pc * PRIOR + (1 - pc) * (1 - PRIOR))


def _items(n: int) -> list[Comparison]:
    rng = np.random.default_rng(0)
    return [Comparison(f"q{i}", (f"a{i}", f"b{i}"), reference=int(rng.integers(0, 2)))
            for i in range(n)]


def _unbiased_accuracy(items: list[Comparison]) -> float:
    return float(np.mean([_u(it.id, "right") < ACCURACY for it in items]))


def _accuracy(decisions: pd.DataFrame, items: list[Comparison]) -> float:
    ref = {it.id: it.reference for it in items}
    final = decisions.set_index("item_id")["final"]
    return float(np.mean([final[i] == r for i, r in ref.items()]))


def test_pure_pieces():
    assert debias(np.array([0.8]), np.array([0.8]))[0] == pytest.approx(0.5)
    assert debias(np.array([0.6]), np.array([0.5]))[0] == pytest.approx(0.6)
    # PriDe: the content cancels in the geometric mean over both orders
    pc = np.array([0.7, 0.9, 0.2])
    fwd = pc * 0.8 / (pc * 0.8 + (1 - pc) * 0.2)
    rev = (1 - pc) * 0.8 / ((1 - pc) * 0.8 + pc * 0.2)
    assert pride_prior(fwd, rev) == pytest.approx(0.8)


def test_batch_calibration_recovers_accuracy_on_one_order():
    items = _items(400)
    crit = Critic(builtin("harmlessness"), FunctionBackend(_biased, name="biased"),
                  name="biased", principles=1, swap=False)
    judg = Panel([crit]).judge(items).judgments
    raw = aggregate(judg, items)
    cal = aggregate(judg, items, calibrate="batch")
    truth = _unbiased_accuracy(items)
    assert truth - _accuracy(raw.decisions, items) > 0.1  # the prior costs accuracy
    assert _accuracy(cal.decisions, items) == pytest.approx(truth, abs=0.03)
    prior = cal.calibration.set_index("critic").at["biased", "prior"]
    assert 0.7 < prior < 0.85  # the batch mean of P(first): biased low of 0.8, reported
    assert raw.calibration is None


def test_pride_recovers_prior_and_accuracy_from_a_small_sample():
    items = _items(400)
    crit = Critic(builtin("harmlessness"), FunctionBackend(_biased, name="biased"),
                  name="biased", principles=1, swap=True)
    judg = Panel([crit]).judge(items).judgments
    priors = position_priors(judg, "pride", sample_share=0.05)
    row = priors.set_index("critic").loc["biased"]
    assert row["prior"] == pytest.approx(PRIOR, abs=1e-6) and row["n_items"] == 20
    fixed, _ = calibrate_positions(judg, "pride", sample_share=0.05)
    fwd = fixed[fixed["order"] == "0,1"]
    cal = aggregate(fwd, items)  # one order only, debiased with the PriDe prior
    raw = aggregate(judg[judg["order"] == "0,1"], items)
    truth = _unbiased_accuracy(items)
    assert truth - _accuracy(raw.decisions, items) > 0.1
    assert _accuracy(cal.decisions, items) == pytest.approx(truth, abs=0.03)
    assert (fixed["value_raw"] != fixed["value"]).mean() > 0.99


def test_unknown_calibration_is_named():
    items = _items(4)
    crit = Critic(builtin("harmlessness"), FunctionBackend(_biased, name="biased"),
                  name="biased", principles=1)
    judg = Panel([crit]).judge(items).judgments
    with pytest.raises(ValueError, match="calibrate='nope': use one of batch, pride"):
        aggregate(judg, items, calibrate="nope")
