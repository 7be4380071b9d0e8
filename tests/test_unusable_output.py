"""Model output that can't be used: each case abstains with a coded reason and the raw text;
summaries count abstentions by reason; an abstention never becomes a tie or a crash."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from oversight import Critic, FunctionBackend, Panel
from oversight.backends import ChoiceResult
from oversight.cli import app
from oversight.constitution import builtin
from oversight.critics import parse_choice
from oversight.critics._parse import reason_code

UNUSABLE = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("After weighing both, the answer is", "truncated"),
    ("Answer:", "truncated"),
    ("Both responses have merit.", "no-verdict"),
    ("Answer: C", "no-verdict"),
    ("A A", "doubled-verdict"),
    ("AA", "doubled-verdict"),
    ("A B", "conflicting-verdicts"),
    ("Answer: A. On reflection, answer: B", "conflicting-verdicts"),
]


@pytest.mark.parametrize("text,code", UNUSABLE)
def test_parse_codes(text, code):
    picked, reason = parse_choice(text, ["A", "B"])
    assert picked is None and reason_code(reason) == code


@pytest.mark.parametrize("text,choice", [("A", "A"), (" b. ", "B"), ("**Answer: B**", "B"),
                                         ("Answer: A\nAnswer: A", "A"), ("Verdict = a", "A")])
def test_usable_text_still_parses(text, choice):
    assert parse_choice(text, ["A", "B"]) == (choice, "")


def test_backend_truncation_flag_names_the_cause():
    assert reason_code(parse_choice("The better one is", ["A", "B"], truncated=True)[1]) \
        == "truncated"
    assert reason_code(parse_choice("The better one is", ["A", "B"])[1]) == "no-verdict"


class TextBackend(FunctionBackend):
    """Answers in text, without log-probs, as an HTTP server without logprobs does."""

    def __init__(self, replies):
        super().__init__(lambda ctx: None, name="text-replies")
        self.replies = replies

    def score_choices(self, requests):
        out = []
        for req in requests:
            text, truncated = self.replies(req.context)
            out.append(ChoiceResult(text=text, truncated=truncated))
        return out


def test_every_unusable_answer_abstains_with_raw_text_and_is_counted(pairs):
    # Each item gets one kind of unusable answer in its first order and a clean "A" in the
    # other; a third critic abstains on everything.
    by_item = {it.id: UNUSABLE[n][0] for n, it in enumerate(pairs)}

    def replies(ctx):
        return (by_item[ctx.item.id] if ctx.shown == (0, 1) else "A"), False

    panel = Panel([Critic(builtin("harmlessness"), TextBackend(replies), principles=1,
                          name="h"),
                   Critic(builtin("helpfulness"),  # prefers response 1 in both orders
                          TextBackend(lambda c: ("A" if c.shown[0] == 1 else "B", False)),
                          principles=1, name="g"),
                   Critic(builtin("honesty"), TextBackend(lambda c: ("", False)),
                          principles=1, name="silent")])
    result = panel.judge(pairs)
    df = result.judgments
    ab = df[df["status"] == "abstain"]
    assert len(ab) == 3 + 6  # one order of each item for "h", both orders of all for "silent"
    assert ab["value"].isna().all() and ab["raw"].notna().all()
    h = ab[ab["critic"] == "h"].set_index("item_id")
    for n, it in enumerate(pairs):
        assert h.loc[it.id, "raw"] == UNUSABLE[n][0]
        assert reason_code(h.loc[it.id, "reason"]) == UNUSABLE[n][1]
    assert result.reason_counts() == {"abstain": {"empty": 8, "truncated": 1}}
    summ = result.summary().set_index("item_id")
    for it in pairs:
        # "h" keeps its one usable order: "A" in order (1, 0) means response 1 wins.
        assert summ.loc[it.id, "h_verdict"] == 1
        assert summ.loc[it.id, "silent_verdict"] == "abstain"
        assert math.isnan(summ.loc[it.id, "silent"])
        assert summ.loc[it.id, "votes"] == 2  # the silent critic is not a vote, nor a tie
        assert summ.loc[it.id, "verdict"] == 1


def test_all_unusable_is_abstain_never_tie(pairs):
    panel = Panel([Critic(builtin(n), TextBackend(lambda c: ("A B", False)), principles=1)
                   for n in ("harmlessness", "helpfulness")])
    summ = panel.judge(pairs).summary()
    assert set(summ["verdict"]) == {"abstain"} and (summ["votes"] == 0).all()
    assert not summ["disagree"].any()


def test_cli_summary_and_run_json_count_abstains_by_reason(tmp_path):
    (tmp_path / "panel.py").write_text('''
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

def flaky(ctx):
    n = len(ctx.item.prompt)
    return ["", "Answer:", "A A", "Answer: B"][n % 4]

panel = Panel([Critic(builtin("harmlessness"), FunctionBackend(flaky, name="flaky"),
                      principles=1, swap=False)])
''')
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": "q" * (i + 4), "response_a": "a",
                                        "response_b": "b"}) + "\n" for i in range(8)))
    r = CliRunner().invoke(app, ["judge", "--panel", str(tmp_path / "panel.py"), "--data",
                                 str(data), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "abstain by reason: doubled-verdict=2, empty=2, truncated=2" in r.output
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status_counts"] == {"abstain": 6, "ok": 2}
    assert meta["reason_counts"] == {"abstain": {"doubled-verdict": 2, "empty": 2,
                                                 "truncated": 2}}
