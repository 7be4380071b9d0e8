"""Escalation: cheap critics first, only contested items go to a strong critic or review."""

from __future__ import annotations

import pytest

from oversight import Comparison, Critic, Escalation, FunctionBackend, Panel
from oversight.constitution import builtin

N = 30


def _items() -> list[Comparison]:
    return [Comparison(f"q{i}", (f"good {i}", f"bad {i}"), reference=0) for i in range(N)]


def _idx(ctx) -> int:
    return int(ctx.item.prompt[1:])


def _right(ctx) -> float:  # prefers "good", confidently
    return 0.9 if ctx.responses[0].startswith("good") else 0.1


def _contrarian(ctx) -> float:
    """Right on items 0..19, wrong on items 20..29 (so those items split the panel)."""
    ok = _idx(ctx) < 20
    good_first = ctx.responses[0].startswith("good")
    return 0.9 if good_first == ok else 0.1


def _timid(ctx) -> float:
    """Right, with a margin of 0.55 vs 0.45 on items 10..14 only (low confidence)."""
    p = 0.55 if 10 <= _idx(ctx) < 15 else 0.9
    return p if ctx.responses[0].startswith("good") else 1 - p


calls: list[str] = []


def _strong(ctx) -> float:
    calls.append(ctx.item.id)
    return 0.95 if ctx.responses[0].startswith("good") else 0.05


def _critic(fn, name):
    return Critic(builtin("helpfulness"), FunctionBackend(fn, name=name), name=name,
                  principles=1)


def test_only_split_items_go_to_the_strong_critic_which_decides_them():
    calls.clear()
    esc = Escalation(critics=[_critic(_strong, "strong")], flags=["split"])
    panel = Panel([_critic(_right, "a"), _critic(_contrarian, "b")], escalation=esc)
    res = panel.judge(_items())
    rec = res.escalation
    escalated = set(rec.items["item_id"])
    items = _items()
    assert escalated == {it.id for it in items[20:]}
    assert set(rec.items["reasons"]) == {"split"}
    # judgments spent: 10 items x 2 orders, against 30 x 2 for judging everything
    assert (rec.spent, rec.if_all) == (20, 60) and len(calls) == 20
    assert set(calls) == escalated
    s = rec.summary()
    assert s["escalated"] == 10 and s["share_spent"] == pytest.approx(1 / 3)
    dec = res.aggregation.decisions.set_index("item_id")
    # the 2-critic panel ties on the split items; the strong critic decides them
    assert (dec.loc[list(escalated), "final"] == 0).all()
    assert (dec.loc[list(escalated), "decided_by"] == "escalated:strong").all()
    assert (dec.drop(index=list(escalated))["decided_by"] == "panel").all()
    prov = res.aggregation.provenance.set_index("item_id")
    assert all("strong" in prov.at[i, "critics"] for i in escalated)
    assert not any("strong" in prov.at[it.id, "critics"] for it in items[:20])
    assert len(res.preferences()) == N


def test_low_margin_items_go_to_review_and_get_no_automatic_decision():
    esc = Escalation(to="review", flags=["low_margin"], min_margin=0.3)
    panel = Panel([_critic(_timid, "t")], escalation=esc, method="conservative")
    res = panel.judge(_items())
    rec = res.escalation
    items = _items()
    assert set(rec.items["item_id"]) == {it.id for it in items[10:15]}
    assert rec.spent == 0 and rec.strong is None
    dec = res.aggregation.decisions.set_index("item_id")
    assert (dec.loc[[it.id for it in items[10:15]], "final"] == "review").all()
    assert len(res.preferences()) == N - 5  # held back until a human decides


def test_position_and_abstain_flags():
    def flip(ctx):
        return 0.8 if _idx(ctx) < 5 else _right(ctx)  # always "first": flips with the swap

    def mute(ctx):
        return None if _idx(ctx) == 7 else _right(ctx)

    esc = Escalation(critics=[_critic(_strong, "strong")],
                     flags=["position_inconsistent", "abstained"])
    res = Panel([_critic(flip, "f"), _critic(mute, "m")], escalation=esc).judge(_items())
    why = dict(zip(res.escalation.items["item_id"], res.escalation.items["reasons"]))
    items = _items()
    assert {items[i].id for i in range(5)} <= set(why)
    assert why[items[7].id] == "abstained"
    assert "position_inconsistent" in why[items[0].id]


def test_bad_escalation_options_are_named():
    with pytest.raises(ValueError, match="unknown; valid: split, low_margin"):
        Escalation(critics=[_critic(_strong, "s")], flags=["loud"])
    with pytest.raises(ValueError, match="needs critics"):
        Escalation(flags=["split"])
    with pytest.raises(ValueError, match="must differ"):
        Panel([_critic(_right, "a")], escalation=Escalation(critics=[_critic(_strong, "a")]))
