"""One concept, one name (issue 14 §4): the new names work, and each old name still works for
one release with a DeprecationWarning that names its replacement."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest

from oversight.aggregate import DawidSkene, aggregate, bt_strengths, pl_strengths


def _judgments() -> pd.DataFrame:
    """Three pairwise critics on four items, both orders; critic c dissents on item 3."""
    from oversight.critics import JUDGMENT_COLUMNS

    p = {"a": [0.9, 0.2, 0.8, 0.7], "b": [0.8, 0.3, 0.7, 0.6], "c": [0.7, 0.1, 0.9, 0.3]}
    rows = []
    for critic, ps in p.items():
        for i, v in enumerate(ps):
            for order, val in (("0,1", v), ("1,0", 1 - v)):
                d = dict.fromkeys(JUDGMENT_COLUMNS)
                d.update(item_id=f"i{i}", critic=critic, fingerprint=critic, model="m",
                         constitution=critic, constitution_hash="h", principle="p",
                         principle_kind="soft", principle_weight=1.0, template="v1",
                         order=order, mode="pairwise", value=val, status="ok", tokens=0,
                         latency_s=0.0)
                rows.append(d)
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


# -- DawidSkene(n_iter) -> max_iter, as BradleyTerry and PlackettLuce --------------------------
def test_dawid_skene_takes_max_iter_and_the_old_n_iter_warns():
    j = _judgments()
    new = DawidSkene(max_iter=3, tol=None).fit(j)
    assert new.max_iter == 3 and new.n_iter_ == 3
    with pytest.warns(DeprecationWarning, match=r"DawidSkene: n_iter= is renamed max_iter="):
        old = DawidSkene(n_iter=3, tol=None).fit(j)
    assert old.max_iter == 3 and old.n_iter_ == 3
    pd.testing.assert_frame_equal(old.probas_, new.probas_)
    with pytest.raises(TypeError, match="unexpected keyword argument.*n_iters"):
        DawidSkene(n_iters=3)


def test_aggregate_ds_option_max_iter_and_the_old_n_iter():
    j = _judgments()
    one = aggregate(j, method="ds", max_iter=1, tol=None)
    with pytest.warns(DeprecationWarning, match="n_iter= is renamed max_iter="):
        old = aggregate(j, method="ds", n_iter=1, tol=None)
    assert one.model.n_iter_ == 1 and old.model.n_iter_ == 1
    pd.testing.assert_frame_equal(one.decisions[["item_id", "label", "p0"]],
                                  old.decisions[["item_id", "label", "p0"]])


# -- bt_mm / bt_batched / plackett_luce / plackett_luce_batched -> {bt,pl}_strengths[_batched] --
def test_strength_functions_have_one_naming_scheme():
    # 0 beat 1 twice, 1 beat 0 once: the MLE log-strength gap is log 2
    theta = bt_strengths(2, [0, 0, 1], [1, 1, 0])
    assert theta[0] - theta[1] == pytest.approx(np.log(2), abs=1e-6)
    # the rankings (0 > 1) twice and (1 > 0) once are the same evidence for Plackett-Luce
    pl = pl_strengths(2, [[0, 1], [0, 1], [1, 0]])
    np.testing.assert_allclose(pl, theta, atol=1e-6)
    from oversight.aggregate import bt_strengths_batched, pl_strengths_batched

    flat = bt_strengths_batched([0, 0, 0, 1, 1, 1], 2, [0, 0, 1, 1, 1, 0],
                                [1, 1, 0, 0, 0, 1])
    assert flat[0] - flat[1] == pytest.approx(np.log(2), abs=1e-6)
    # group 1: response 1 beat 0 twice and lost once
    assert flat[3] - flat[2] == pytest.approx(np.log(2), abs=1e-6)
    flat_pl = pl_strengths_batched([0, 0, 0], 2, [[0, 1], [0, 1], [1, 0]])
    np.testing.assert_allclose(flat_pl, theta, atol=1e-6)


_AGG, _BT, _PL = ("oversight.aggregate", "oversight.aggregate._bradley_terry",
                  "oversight.aggregate._plackett_luce")


@pytest.mark.parametrize("module,old,new", [
    (_AGG, "bt_mm", "bt_strengths"), (_AGG, "bt_batched", "bt_strengths_batched"),
    (_AGG, "plackett_luce", "pl_strengths"),
    (_AGG, "plackett_luce_batched", "pl_strengths_batched"),
    (_BT, "bt_mm", "bt_strengths"), (_BT, "bt_batched", "bt_strengths_batched"),
    (_PL, "plackett_luce", "pl_strengths"), (_PL, "plackett_luce_batched", "pl_strengths_batched"),
])
def test_old_strength_names_warn_and_are_the_new_functions(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to .*\.{new}"):
        alias = getattr(mod, old)
    assert alias is getattr(mod, new)


# -- the figure functions are named as their Plots methods -------------------------------------
@pytest.mark.parametrize("old,new", [("agreement_heatmap", "agreement"),
                                     ("principle_disagreement", "principles"),
                                     ("conflict_graph", "conflicts")])
def test_figure_functions_are_named_as_their_plots_methods(old, new):
    from oversight.report import Plots, _plots

    assert hasattr(Plots, new) and callable(getattr(_plots, new))
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to .*_plots\.{new}"):
        assert getattr(_plots, old) is getattr(_plots, new)


def test_every_plots_method_has_a_module_function_of_the_same_name():
    from oversight.report import Plots, _plots

    methods = [m for m in vars(Plots) if not m.startswith("_")]
    assert len(methods) == 9
    assert [m for m in methods if not callable(getattr(_plots, m, None))] == []


# -- the reward fusion "conservative" -> "mean_var" (the aggregation method keeps the word) ----
def test_reward_fusion_mean_var_and_the_old_conservative_spelling():
    from oversight.panel._scorer import AGGREGATES, ScoredBatch

    batch = ScoredBatch(critics=["a", "b"], support=np.array([[0.2, 0.8], [0.5, np.nan]]),
                        weights=np.array([1.0, 1.0]))
    assert AGGREGATES == ("mean", "mean_var", "min")
    # item 0: mean 0.5, variance 0.09; item 1: one critic, variance 0
    np.testing.assert_allclose(batch.fused("mean_var", lam=2.0), [0.5 - 0.18, 0.5])
    np.testing.assert_allclose(batch.fused("min"), [0.2, 0.5])
    with pytest.warns(DeprecationWarning, match="aggregate='conservative' is renamed 'mean_var'"):
        old = batch.fused("conservative", lam=2.0)
    np.testing.assert_allclose(old, [0.32, 0.5])
    with pytest.raises(ValueError, match="use one of mean, mean_var, min"):
        batch.fused("mean-var")


def test_panel_reward_accepts_mean_var_and_warns_on_conservative():
    from oversight.panel import PanelScorer
    from oversight.train import PanelReward

    class _P:
        critics: list = []

    scorer = PanelScorer(_P())
    assert PanelReward(scorer, "mean_var").aggregate == "mean_var"
    with pytest.warns(DeprecationWarning, match="'conservative' is renamed 'mean_var'"):
        assert PanelReward(scorer, "conservative").aggregate == "mean_var"
    with pytest.raises(ValueError, match="aggregate='avg'"):
        PanelReward(scorer, "avg")


def test_the_conservative_aggregation_method_is_unchanged_and_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agg = aggregate(_judgments(), method="conservative", lam=1.0)
    assert list(agg.decisions["label"]) == [0, 1, 0, 0]


# -- Panel(method=) as aggregate(method=); orders "forward"/"reverse"; preferences() ----------
def _panel(**kw):
    from oversight import Critic, FunctionBackend, Panel
    from oversight.constitution import builtin

    def scripted_pairwise(ctx):  # as conftest's: prefers the shorter, leans to the first
        a, b = ctx.responses
        p = 0.8 if len(a) < len(b) else 0.3
        return {"A": p, "B": 1 - p}

    def shorter(ctx):  # no position lean
        a, b = ctx.responses
        return {"A": 0.7, "B": 0.3} if len(a) < len(b) else {"A": 0.3, "B": 0.7}

    critics = [Critic(builtin("harmlessness"), FunctionBackend(scripted_pairwise, name="s"),
                      name="short", principles=1),
               Critic(builtin("helpfulness"), FunctionBackend(shorter, name="l"),
                      name="plain", principles=1)]
    return Panel(critics, **kw)


def test_panel_takes_method_and_the_old_aggregator_keywords_warn(pairs):
    p = _panel(method="bt", method_options={"prior": 0.5})
    assert (p.method, p.method_options) == ("bt", {"prior": 0.5})
    with pytest.warns(DeprecationWarning, match="Panel: aggregator= is renamed method="):
        old = _panel(aggregator="bt", method_options={"prior": 0.5})
    assert old.method == "bt"
    with pytest.warns(DeprecationWarning, match="aggregator_options= is renamed method_options="):
        assert _panel(aggregator_options={"lam": 2.0}, method="conservative").method_options \
            == {"lam": 2.0}
    with pytest.warns(DeprecationWarning, match=r"Panel\.aggregator is renamed Panel\.method"):
        assert p.aggregator == "bt"
    with pytest.raises(TypeError, match="unexpected keyword argument.*aggregater"):
        _panel(aggregater="bt")
    result = p.judge(pairs)
    assert result.method == "bt" and result.method_options == {"prior": 0.5}
    assert result.aggregation.method == "bt"
    with pytest.warns(DeprecationWarning, match=r"PanelResult\.aggregator is renamed"):
        assert result.aggregator == "bt"


def test_run_and_write_run_use_method(tmp_path, pairs):
    from oversight.panel import open_run, write_run

    _panel(method="conservative", method_options={"lam": 0.5}).judge(
        pairs, store=tmp_path / "judgments.sqlite")
    run = open_run(tmp_path)
    assert (run.method, run.method_options) == ("conservative", {"lam": 0.5})
    with pytest.warns(DeprecationWarning, match=r"Run\.aggregator_options is renamed"):
        assert run.aggregator_options == {"lam": 0.5}
    with pytest.warns(DeprecationWarning, match="write_run: aggregator= is renamed method="):
        write_run(tmp_path / "b", critics=[], aggregator="ds")
    import json

    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["aggregator"] == {"method": "ds", "options": {}}  # the file format is unchanged


def test_orders_are_forward_and_reverse_and_first_swapped_warn(pairs):
    result = _panel().judge(pairs)
    fwd, rev = result.support("forward"), result.support("reverse")
    # the scripted critic prefers the shorter response with a first-position lean:
    # P(A) = 0.8 when A is shorter, 0.3 when longer -> support differs by order
    egg = pairs[0].id  # response 0 is the shorter
    assert fwd[(egg, "short")] == pytest.approx([0.8, 0.2])
    assert rev[(egg, "short")] == pytest.approx([0.7, 0.3])
    with pytest.warns(DeprecationWarning, match="orders='first' is renamed 'forward'"):
        assert result.support("first") == fwd
    with pytest.warns(DeprecationWarning, match="orders='swapped' is renamed 'reverse'"):
        assert result.verdicts("swapped") == result.verdicts("reverse")
    with pytest.raises(ValueError, match="use one of all, forward, reverse"):
        result.support("backward")


def test_preferences_is_a_method_as_on_aggregation_and_the_property_use_warns(pairs):
    result = _panel().judge(pairs)
    want = result.aggregation.preferences(result.items)
    above = float(want["margin"].max()) + 1e-6  # a margin no pair reaches
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new use never warns
        got = result.preferences()
        strict = result.preferences(min_margin=above)
    assert type(got) is pd.DataFrame
    pd.testing.assert_frame_equal(got, want)
    assert len(want) == 3 and len(strict) == 0  # the filter reached Aggregation.preferences
    old = result.preferences
    with pytest.warns(DeprecationWarning, match="PanelResult.preferences is a method now"):
        assert len(old) == len(want)
    assert list(old["chosen"]) == list(want["chosen"])  # warned once, still the same rows


def test_panel_result_members_are_typed():
    import typing

    import pyarrow as pa

    from oversight.aggregate import Aggregation
    from oversight.panel import PanelResult, _panel, _preferences

    # the annotations name pandas, pyarrow and Aggregation under TYPE_CHECKING (import cost)
    ns = {**vars(_panel), "pd": pd, "pa": pa, "Aggregation": Aggregation,
          "PreferencesFrame": _preferences.PreferencesFrame}

    def ret(f):
        return typing.get_type_hints(f, globalns=ns).get("return")

    assert ret(PanelResult.aggregate) is Aggregation
    for name in ("summary", "agreement", "position_flips", "_columns"):
        assert ret(getattr(PanelResult, name)) is pd.DataFrame, name
    assert ret(PanelResult.to_arrow) is pa.Table
    assert ret(PanelResult.aggregation.fget) is Aggregation
    assert ret(PanelResult.judgments.fget) is pd.DataFrame
    assert ret(PanelResult.flags.fget) is pd.DataFrame
    assert issubclass(ret(PanelResult.preferences.fget), pd.DataFrame)
    untyped = [n for n, v in vars(PanelResult).items()
               if callable(getattr(v, "fget", v)) and not n.startswith("__")
               and n not in ("aggregator", "aggregator_options")  # deprecated aliases
               and ret(getattr(v, "fget", v)) is typing.Any]
    assert untyped == ["plot"]  # its type lives in the report layer, above the panel
