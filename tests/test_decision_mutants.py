"""Tests for the survivors of the mutmut run over the decision layer (issue 13 §9,
benchmarks/mutation.sh). Each asserts a number, label, column or error message that the
surviving fault changed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_decision_layer import row, table

from oversight.aggregate import Conservative, calibrate


# -- conservative ---------------------------------------------------------------------------
def test_calibrate_defaults_to_identity_and_rejects_a_zero_temperature():
    p = np.array([0.1, 0.5, 0.8])
    assert calibrate(p).tolist() == pytest.approx([0.1, 0.5, 0.8])
    # T = 2 halves the logit: logit(0.8) = ln 4 -> sigmoid(ln 2) = 2/3
    assert calibrate(np.array([0.8]), 2.0)[0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="temperature=0 must be > 0"):
        calibrate(p, 0)


def test_conservative_checks_its_options_when_built():
    with pytest.raises(ValueError, match="kind='max'"):
        Conservative(kind="max")
    with pytest.raises(ValueError, match=r"clamp=\(0.6, 0.7\)"):
        Conservative(clamp=(0.6, 0.7))
    with pytest.raises(ValueError, match="temperature=-1"):
        Conservative(temperature=-1)


def test_conservative_default_penalises_variance_once():
    j = table([row("x", "a", "0,1", 0.9), row("x", "b", "0,1", 0.5)])
    s = Conservative().fit(j).scores_.set_index("response")
    # response 0: supports 0.9 and 0.5 -> mean 0.7, population variance 0.04, lam = 1
    assert s.loc[0, "mean"] == pytest.approx(0.7)
    assert s.loc[0, "var"] == pytest.approx(0.04)
    assert s.loc[0, "score"] == pytest.approx(0.66)
    assert s.loc[0, "n_critics"] == 2


def test_conservative_maps_scores_onto_zero_one_and_keeps_labels():
    j = table([row("b", "s", "0", 7.0, mode="score"), row("b", "s", "1", 4.0, mode="score"),
               row("a", "p", "0,1", 0.8)])
    c = Conservative().fit(j)
    s = c.scores_.set_index(["item_id", "response"])["score"]
    assert s[("b", 0)] == pytest.approx(6 / 9) and s[("b", 1)] == pytest.approx(3 / 9)
    assert s[("a", 0)] == pytest.approx(0.8)
    res = c.results_.set_index("item_id")
    assert res.loc["b", "margin"] == pytest.approx(3 / 9)
    assert res.loc["b", "n_critics"] == 1
    assert c.labels_.to_dict() == {"a": 0, "b": 0}


def test_conservative_clamp_band_limits_each_critic():
    j = table([row("x", "a", "0,1", 0.9), row("x", "b", "0,1", 0.7)])
    s = Conservative(clamp=(0.4, 0.6)).fit(j).scores_.set_index("response")["score"]
    assert s.tolist() == pytest.approx([0.6, 0.4])


def test_conservative_one_response_item_has_no_margin():
    res = Conservative().fit(table([row("one", "s", "0", 7.0, mode="score")])).results_
    assert res["margin"].tolist() == [0.0] and res["label"].tolist() == ["tie"]
    assert math.isclose(res["p0"].iloc[0], 6 / 9)


def test_conservative_with_no_usable_judgment_is_empty_with_its_columns():
    res = Conservative().fit(table([row("x", "a", "0,1", None)])).results_
    assert res.empty
    assert list(res.columns) == ["item_id", "label", "margin", "p0", "n_critics"]


# -- exports and the run directory -----------------------------------------------------------
def _shorter(ctx):
    a, b = ctx.responses
    return 0.8 if len(a) < len(b) else 0.2


def _panel(**kw):
    from oversight import Critic, FunctionBackend, Panel
    from oversight.constitution import builtin

    return Panel([Critic(builtin("helpfulness"), FunctionBackend(_shorter, name="s"), name="s",
                         principles=1)], **kw)


def _items():
    from oversight import Comparison

    return [Comparison("three", ("ok", "a longer one", "the longest answer of all")),
            Comparison("two", ("short", "much longer"), reference=0)]


def test_sft_and_kto_keep_every_item_after_a_kway_winner_and_their_own_columns():
    from oversight.train import kto_dataset, preference_dataset, sft_dataset

    res = _panel().judge(_items())
    pref = preference_dataset(res)
    assert pref.num_rows == 3  # the K-way winner beats two responses, the pair one
    assert pref["reference"] == [None, None, 0]
    sft = sft_dataset(res)
    assert [m[-1]["content"] for m in sft["messages"]] == ["ok", "short"]
    assert not {"chosen", "rejected", "rejected_index", "prompt"} & set(sft.column_names)
    assert sft["chosen_index"] == [0, 0]
    kto = kto_dataset(res)
    assert kto["label"] == [True, False, False, True, False]
    assert kto["response_index"] == [0, 1, 2, 0, 1]
    assert not {"chosen", "rejected", "chosen_index", "rejected_index"} & set(kto.column_names)


def test_empty_exports_keep_their_columns():
    from oversight.train import kto_dataset, preference_dataset, sft_dataset

    res = _panel().judge(_items())
    assert preference_dataset(res, min_margin=2.0).column_names == ["prompt", "chosen",
                                                                   "rejected", "margin"]
    assert kto_dataset(res, min_margin=2.0).column_names == ["prompt", "completion", "label"]
    assert sft_dataset(res, min_margin=2.0).column_names == ["messages"]


def test_drop_flagged_true_warns_and_bad_flags_list_the_valid_ones():
    from oversight.errors import OversightError
    from oversight.train import preference_frame

    res = _panel().judge(_items())
    with pytest.warns(DeprecationWarning, match="drop_flagged"):
        frame = preference_frame(res, drop_flagged=True)
    assert len(frame) == 3
    with pytest.raises(OversightError, match="valid: split, veto_conflict, "
                       "position_inconsistent, low_quorum, cycle, undecided, or all"):
        preference_frame(res, drop_flagged="splitt")


def test_run_json_keeps_seed_rules_and_options_and_run_aggregate_takes_a_method(tmp_path):
    from oversight.aggregate import PanelRules
    from oversight.panel import open_run
    from oversight.panel._run import read_run_info, write_run

    write_run(tmp_path / "w", critics=[], method="vote", seed=7, data="d.jsonl")
    info = read_run_info(tmp_path / "w")
    assert info["seed"] == 7 and info["data"] == "d.jsonl"

    panel = _panel(method="bt", method_options={"prior": 0.5},
                   rules=PanelRules(quorum=2))
    panel.judge(_items(), store=tmp_path / "run")
    run = open_run(tmp_path / "run")
    assert run.method == "bt" and run.method_options == {"prior": 0.5}
    assert run.rules.quorum == 2
    # one critic < quorum 2: every item is no_quorum under the saved rules
    assert set(run.aggregate().decisions["final"]) == {"no_quorum"}
    assert run.aggregate("vote").method == "vote"
    assert run.aggregate().method == "bt"


# -- ballots and rules ------------------------------------------------------------------------
def test_a_clamp_band_may_be_one_half_alone_or_all_of_zero_one():
    assert calibrate(np.array([0.1, 0.9]), clamp=(0.5, 0.5)).tolist() == [0.5, 0.5]
    # ... or the whole of [0, 1], which clamps nothing
    assert calibrate(np.array([0.1, 0.9]), clamp=(0.0, 1.0)).tolist() == pytest.approx([0.1, 0.9])


def test_is_tie_includes_its_tolerance():
    from oversight.aggregate import TIE_TOL, is_tie

    assert is_tie(TIE_TOL) and not is_tie(2 * TIE_TOL)
    assert is_tie(np.array([0.0, TIE_TOL, 3 * TIE_TOL])).tolist() == [True, True, False]


def test_pairwise_rows_of_a_table_without_pairwise_judgments_keeps_its_columns():
    from oversight.aggregate import pairwise_rows

    out = pairwise_rows(table([row("x", "s", "0", 7.0, mode="score")]))
    assert out.empty
    assert list(out.columns) == ["item_id", "critic", "principle", "a", "b", "p_ab",
                                 "forward", "weight"]


def test_principle_weights_apply_to_score_and_passfail_support():
    from oversight.aggregate import response_support

    rows = [row("x", "s", "0", 8.0, mode="score"), row("x", "s", "0", 2.0, mode="score")]
    rows[0].update(principle="heavy", principle_weight=3.0)
    sup = response_support(table(rows))
    assert sup["support"].tolist() == pytest.approx([(3 * 8.0 + 2.0) / 4])
    assert sup["n"].tolist() == [2]


def test_apply_rules_without_k_and_without_vetoes_keeps_the_labels():
    import pandas as pd

    from oversight.aggregate import PanelRules, apply_rules

    dec = pd.DataFrame({"item_id": ["x", "y"], "label": [1, "tie"], "share": [1.0, 0.5],
                        "n_critics": [1, 2]})
    j = table([row("x", "a", "0,1", 0.2), row("y", "a", "0,1", 0.5),
               row("y", "b", "0,1", 0.5)])
    out = apply_rules(dec, j, {}, PanelRules())
    assert out["final"].tolist() == [1, "tie"]
    assert out["vetoed"].tolist() == [[], []] and not out["veto_override"].any()


def test_vote_of_reads_p0_as_a_vote_with_ties_within_the_tolerance():
    from oversight.aggregate._ballots import vote_of

    assert vote_of([0.9, 0.1, 0.5, 0.5 + 1e-12, 0.5 - 1e-12]).tolist() == [0, 1, -1, -1, -1]
    assert vote_of([0.55, 0.45], eps=0.1).tolist() == [-1, -1]


def test_clamp_band_above_one_is_refused():
    with pytest.raises(ValueError, match="clamp"):
        calibrate(np.array([0.5]), clamp=(0.4, 1.5))


def test_critic_p0_std_is_the_population_spread():
    from oversight.aggregate import aggregate

    d = aggregate(table([row("x", "a", "0,1", 0.9), row("x", "b", "0,1", 0.5)])).decisions
    assert d["critic_p0_std"].tolist() == pytest.approx([0.2])


def test_export_dataset_by_name_and_run_json_fields(tmp_path):
    import platform

    from oversight.panel._run import RUN_FORMAT, package_versions, read_run_info, write_run
    from oversight.train import export_dataset

    res = _panel().judge(_items())
    assert export_dataset(res, "kto").column_names[:3] == ["prompt", "completion", "label"]
    assert package_versions()["python"] == platform.python_version()
    with pytest.warns(DeprecationWarning, match="aggregator= is renamed method="):
        write_run(tmp_path, critics=[], aggregator="bt")
    info = read_run_info(tmp_path)
    assert info["format"] == RUN_FORMAT and info["aggregator"]["method"] == "bt"
    assert info["rules"] is None


def test_run_result_keeps_the_runs_critics(tmp_path):
    from oversight.panel import open_run

    _panel().judge(_items(), store=tmp_path / "run")
    run = open_run(tmp_path / "run")
    assert [c["name"] for c in run.result().critics] == ["s"]
