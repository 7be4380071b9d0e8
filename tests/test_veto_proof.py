"""The z3 proof of the veto guarantee, its failure on broken decision rules, and property tests
that run the real aggregation code on random panels and check that the symbolic model agrees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oversight.aggregate import PanelRules, aggregate
from oversight.critics import JUDGMENT_COLUMNS

z3 = pytest.importorskip("z3")

from oversight.governance._proof import (  # noqa: E402
    CODES,
    VETOED,
    concrete_case,
    decode,
    evaluate,
    prove_veto_guarantee,
    rules_stage,
)

ALL_METHODS = ("vote", "majority", "bt", "ds", "conservative")


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("k", [2, 3])
def test_z3_proves_no_response_a_veto_verifier_failed_is_chosen(method, k):
    res = prove_veto_guarantee(method, k=k, n_critics=3)
    assert res.proved, str(res)


# -- deliberately broken decision rules: the proof must fail, with a counterexample ---------
def ignores_vetoes(case, label, share, n, vetoed):
    return rules_stage(case, label, share, n, [z3.BoolVal(False)] * case.k)


def consensus_overrides_veto(case, label, share, n, vetoed):
    final = rules_stage(case, label, share, n, vetoed)
    return z3.If(z3.And(label >= 0, share >= z3.RealVal("9/10")), label, final)


def forgets_kway_vetoed_winner(case, label, share, n, vetoed):
    """Correct for two responses; with three, keeps a vetoed winner when two remain allowed."""
    final = rules_stage(case, label, share, n, vetoed)
    return z3.If(final == VETOED, label, final)


@pytest.mark.parametrize("broken", [ignores_vetoes, consensus_overrides_veto])
@pytest.mark.parametrize("method", ["vote", "majority", "bt"])
def test_proof_fails_for_a_broken_rule(broken, method):
    res = prove_veto_guarantee(method, k=2, n_critics=3, rules=broken)
    assert not res.proved
    cex = res.counterexample
    r = int(cex["final"])  # the chosen response is one the verifier failed
    assert cex[f"v_{r}"] == "0" and cex[f"ok_{r}"] == "True"


def test_kway_bug_is_only_found_with_three_responses():
    assert prove_veto_guarantee("vote", k=2, rules=forgets_kway_vetoed_winner).proved
    res = prove_veto_guarantee("vote", k=3, rules=forgets_kway_vetoed_winner)
    assert not res.proved and res.counterexample["final"] in {"0", "1", "2"}


# -- property tests on the real code ----------------------------------------------------
GRID = [i / 20 for i in range(21)]  # exact comparisons mean the same thing in both worlds


def row(critic, order, value, *, mode, kind="soft", status="ok", principle="p"):
    d = dict.fromkeys(JUDGMENT_COLUMNS)
    d.update(item_id="item", critic=critic, fingerprint=critic, model="m", constitution="c",
             constitution_hash="h", principle=principle, principle_kind=kind,
             principle_weight=1.0, template="t", order=order, mode=mode,
             value=None if status != "ok" else value, status=status, tokens=0, latency_s=0.0)
    return d


@st.composite
def panels(draw, k=None):
    k = k or draw(st.sampled_from([2, 3]))
    n = draw(st.integers(1, 4))
    supports, abstain, weights = [], [], []
    for _ in range(n):
        if k == 2:
            p = draw(st.sampled_from(GRID))
            supports.append([p, 1.0 - p])
        else:
            supports.append([draw(st.sampled_from(GRID)) for _ in range(k)])
        abstain.append(draw(st.booleans()) and draw(st.booleans()))
        weights.append(draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])))
    # A verifier says 0 or 1; grid values in between (0.4 with margin 0.1, 0.5 with margin 0)
    # put the veto source on the veto boundary, so the model must match the code's inequality.
    values = st.one_of(st.sampled_from([0.0, 1.0, None]), st.sampled_from(GRID))
    verdict = [draw(values) for _ in range(k)]
    return dict(supports=supports, abstain=abstain, weights=weights, verdict=verdict,
                verifier_weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
                margin=draw(st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.3, 0.45])),
                quorum=draw(st.integers(1, 5)),
                supermajority=draw(st.sampled_from([None, 0.5, 0.6, 2 / 3, 0.75, 1.0])))


def judgments_of(p):
    k = len(p["verdict"])
    rows = []
    for c, (sup, ab) in enumerate(zip(p["supports"], p["abstain"])):
        status = "abstain" if ab else "ok"
        if k == 2:
            rows.append(row(f"c{c}", "0,1", sup[0], mode="pairwise", status=status))
        else:
            rows += [row(f"c{c}", str(r), sup[r], mode="passfail", status=status)
                     for r in range(k)]
    for r, v in enumerate(p["verdict"]):
        rows.append(row("verifier", str(r), v, mode="passfail", kind="veto",
                        status="abstain" if v is None else "ok", principle="check"))
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


def run_code(p, method):
    weights = {f"c{c}": w for c, w in enumerate(p["weights"])}
    weights["verifier"] = p["verifier_weight"]
    rules = PanelRules(quorum=p["quorum"], supermajority=p["supermajority"],
                       veto_margin=p["margin"])
    from oversight import Comparison

    k = len(p["verdict"])
    item = Comparison("q", tuple(f"r{i}" for i in range(k)))
    j = judgments_of(p).assign(item_id=item.id)
    return aggregate(j, [item], method=method, rules=rules,
                     critic_weights=weights).decisions.iloc[0]


def code_final(dec):
    f = dec["final"]
    return int(f) if isinstance(f, (int, np.integer)) else str(f)


@settings(max_examples=150, deadline=None)
@given(panels(), st.sampled_from(["vote", "majority"]))
def test_vote_code_and_symbolic_model_agree_and_never_pick_a_failed_response(p, method):
    dec = run_code(p, method)
    final = code_final(dec)
    case = concrete_case(p["supports"], p["abstain"], p["weights"], p["verdict"],
                         p["verifier_weight"], p["margin"], p["quorum"], p["supermajority"])
    assert decode(evaluate(case, method)) == final
    if isinstance(final, int):
        assert p["verdict"][final] != 0.0


@settings(max_examples=60, deadline=None)
@given(panels(k=2), st.sampled_from(["bt", "ds", "conservative"]))
def test_veto_stage_after_bt_ds_conservative_agrees_with_the_model(p, method):
    # Bradley-Terry and Dawid-Skene need some pairwise rows (two responses, one critic answering)
    assume(not all(p["abstain"]))
    dec = run_code(p, method)
    final = code_final(dec)
    label = dec["label"]
    label = int(label) if isinstance(label, (int, np.integer)) else str(label)
    case = concrete_case(p["supports"], p["abstain"], p["weights"], p["verdict"],
                         p["verifier_weight"], p["margin"], p["quorum"], p["supermajority"],
                         label=label, share=float(dec["share"]),
                         n_ballots=int(dec["n_critics"]))
    assert decode(evaluate(case, method)) == final
    if isinstance(final, int):
        assert p["verdict"][final] != 0.0


def test_veto_boundary_matches_the_code():
    """P(pass) exactly at 0.5 - margin: the model and the code must draw the line alike."""
    for margin, v in ((0.1, 0.4), (0.0, 0.5), (0.25, 0.25), (0.1, 0.35)):
        p = dict(supports=[[0.9, 0.1]], abstain=[False], weights=[1.0], verdict=[v, 1.0],
                 verifier_weight=1.0, margin=margin, quorum=1, supermajority=None)
        case = concrete_case(p["supports"], p["abstain"], p["weights"], p["verdict"],
                             p["verifier_weight"], p["margin"], p["quorum"], None)
        assert decode(evaluate(case, "vote")) == code_final(run_code(p, "vote")), (margin, v)


def test_model_and_code_agree_on_hand_picked_cases():
    """Numbers: three critics for response 0 outvoted by nothing, then the verifier fails 0."""
    p = dict(supports=[[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], abstain=[False] * 3,
             weights=[1.0, 1.0, 1.0], verdict=[1.0, 1.0], verifier_weight=1.0, margin=0.1,
             quorum=1, supermajority=None)
    assert code_final(run_code(p, "vote")) == 0  # 2 of 3 critics, verifier tie ballot
    p["verdict"] = [0.0, 1.0]
    assert code_final(run_code(p, "vote")) == 1
    p["verdict"] = [0.0, 0.0]
    assert code_final(run_code(p, "vote")) == "contested"
    p["quorum"] = 5
    p["verdict"] = [1.0, 1.0]
    assert code_final(run_code(p, "vote")) == "no_quorum"
    assert set(CODES.values()) >= {"no_quorum", "contested"}


def test_ballot_votes_name_responses_not_table_columns():
    """Found by the property test above: when no critic supports response 0 at all (the model
    critic abstained, the verifier abstained on 0 and passed 1), the verifier's ballot is for
    response 1; the code used to count it for column 0, i.e. response 0."""
    p = dict(supports=[[0.0, 1.0]], abstain=[True], weights=[0.5], verdict=[None, 1.0],
             verifier_weight=0.5, margin=0.0, quorum=1, supermajority=None)
    assert code_final(run_code(p, "vote")) == 1
    case = concrete_case(p["supports"], p["abstain"], p["weights"], p["verdict"],
                         p["verifier_weight"], p["margin"], p["quorum"], p["supermajority"])
    assert decode(evaluate(case, "vote")) == 1
