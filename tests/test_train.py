"""Training under panel feedback: TRL exports, the panel as a reward function, and every
`oversight train` mode end to end on a tiny random Llama (2 steps each, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import TOKENIZER_DIR, scripted_pairwise
from typer.testing import CliRunner

from oversight import Comparison, Critic, FunctionBackend, OversightError, Panel
from oversight.cli._app import app
from oversight.constitution import builtin
from oversight.store import JudgmentStore
from oversight.train import (
    critic_rewards,
    kto_dataset,
    panel_reward,
    preference_dataset,
    preference_frame,
    sft_dataset,
)

runner = CliRunner()


def longer_on_questions(ctx):
    """Prefers the longer response (P = 0.9) on prompts ending in '?'; abstains elsewhere."""
    if not ctx.item.prompt_text().endswith("?"):
        return None
    a, b = ctx.responses
    return 0.5 if len(a) == len(b) else (0.9 if len(a) > len(b) else 0.1)


def make_panel() -> Panel:
    helpful = builtin("helpfulness")
    return Panel([
        Critic(helpful, FunctionBackend(scripted_pairwise, name="short"), name="short",
               principles=["clear-and-concise"]),
        Critic(helpful, FunctionBackend(longer_on_questions, name="long"), name="long",
               principles=["actionable-specifics"], weight=2.0),
    ])


ITEMS = [
    Comparison("How do I boil an egg?", ("Boil it 9 minutes.",
                                         "Place the egg in boiling water for nine minutes.")),
    Comparison("Capital of France?", ("Paris is the capital of France.", "Paris.")),
    Comparison("Say hi", ("Hi!", "Hello there, friend!")),
    Comparison([{"role": "user", "content": "Say bye"}], ("Goodbye, see you soon!", "Bye!")),
]


@pytest.fixture
def result():
    return make_panel().judge(ITEMS)


def test_preference_rows_follow_trl_columns_and_keep_provenance(result):
    ds = preference_dataset(result)
    assert ds.column_names[:4] == ["prompt", "chosen", "rejected", "margin"]
    for col in ("item_id", "critics", "principles", "constitutions", "split", "soft_label"):
        assert col in ds.column_names
    rows = {r["item_id"]: r for r in ds}
    egg = rows[ITEMS[0].id]  # long (weight 2) beats short (weight 1): the longer one wins
    assert egg["chosen"][0]["content"].startswith("Place the egg") and egg["split"] is True
    hi = rows[ITEMS[2].id]  # only `short` votes (long abstains): the shorter one wins
    assert hi["chosen"] == [{"role": "assistant", "content": "Hi!"}] and hi["split"] is False
    assert hi["constitutions"] == f"helpfulness@{builtin('helpfulness').hash}"
    # One chat prompt makes the whole dataset conversational (Arrow: one type per column).
    assert hi["prompt"] == [{"role": "user", "content": "Say hi"}]
    bye = rows[ITEMS[3].id]
    assert bye["prompt"] == [{"role": "user", "content": "Say bye"}]
    assert bye["chosen"] == [{"role": "assistant", "content": "Bye!"}]


def test_filters_drop_low_margins_and_flagged_items(result):
    frame = preference_frame(result)
    assert len(frame) == 4
    cut = sorted(frame["margin"])[1] + 1e-9  # strictly above the two smallest margins
    assert len(preference_dataset(result, min_margin=cut)) == 2
    split = int(frame["split"].sum())
    assert split == 2  # the two questions: confident critics on both sides
    assert len(preference_dataset(result, drop_flagged=["split"])) == 4 - split
    with pytest.raises(OversightError, match="unknown flag"):
        preference_dataset(result, drop_flagged=["nope"])


def test_kto_and_sft_rows(result):
    kto = kto_dataset(result)
    assert kto.column_names[:3] == ["prompt", "completion", "label"]
    assert sum(kto["label"]) == 4 and len(kto) == 8  # one desirable + one not per item
    sft = sft_dataset(result)
    assert len(sft) == 4
    hi = next(r for r in sft if r["item_id"] == ITEMS[2].id)
    assert hi["messages"] == [{"role": "user", "content": "Say hi"},
                              {"role": "assistant", "content": "Hi!"}]


# -- the panel as a reward ------------------------------------------------------------------
def short_panel() -> Panel:
    return Panel([Critic(builtin("helpfulness"), FunctionBackend(scripted_pairwise,
                                                                 name="short"),
                         name="short", principles=["clear-and-concise"])])


def test_panel_reward_compares_each_group_and_abstains_when_alone(tmp_path):
    logged: dict[str, float] = {}
    reward = panel_reward(short_panel(), store=tmp_path / "cache.sqlite")
    prompts = ["Q1", "Q1", "Q2"]
    out = reward(prompts=prompts, completions=["ok", "a much longer answer", "alone"],
                 log_metric=lambda k, v: logged.__setitem__(k, v))
    # Shown first and shorter: P(A) = 0.8; shown first and longer: P(A) = 0.3.
    # Support of the shorter = mean(0.8, 1 - 0.3) = 0.75; of the longer 0.25.
    assert out[0] == pytest.approx(0.75) and out[1] == pytest.approx(0.25)
    assert out[2] is None  # a lone completion: a pairwise critic has nothing to compare
    assert logged["panel/abstain_rate"] == pytest.approx(1 / 3)
    with_base = panel_reward(short_panel(), baseline="a baseline reply that is long")
    assert with_base(prompts=["Q2"], completions=["alone"])[0] == pytest.approx(0.75)


CALLS: list[object] = []


def counting_short(ctx):
    CALLS.append(ctx)
    return scripted_pairwise(ctx)


def test_reward_uses_the_store_as_a_cache(tmp_path):
    def panel() -> Panel:
        return Panel([Critic(builtin("helpfulness"), FunctionBackend(counting_short,
                                                                     name="short"),
                             name="short", principles=["clear-and-concise"])])

    store = tmp_path / "cache.sqlite"
    args = dict(prompts=["Q", "Q"], completions=["x", "yy"])
    CALLS.clear()
    first = panel_reward(panel(), store=store)(**args)
    assert len(CALLS) == 2  # one pair, both orders
    second = panel_reward(panel(), store=store)(**args)  # a fresh scorer: only the store
    assert second == first and len(CALLS) == 2
    with JudgmentStore(store) as db:
        assert db.count() == 2


def test_conservative_and_per_critic_rewards_share_one_pass():
    panel = make_panel()
    args = dict(prompts=["Why?", "Why?"], completions=["No.", "Because it rains a lot."])
    mean = panel_reward(panel, "mean")(**args)
    cons = panel_reward(panel, "mean_var", lam=1.0)(**args)
    funcs = critic_rewards(panel)
    short, long = (f(**args) for f in funcs)
    assert [f.__name__ for f in funcs] == ["critic_short", "critic_long"]
    assert funcs[0].scorer.calls == 1  # the second critic's function reused the batch
    assert short[0] == pytest.approx(0.75) and long[0] == pytest.approx(0.1)
    for i in range(2):
        m = (1 * short[i] + 2 * long[i]) / 3
        var = (1 * (short[i] - m) ** 2 + 2 * (long[i] - m) ** 2) / 3
        assert mean[i] == pytest.approx(m)
        assert cons[i] == pytest.approx(m - var)


# -- every `oversight train` mode, end to end -------------------------------------------------
PANEL_FILE = '''
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

def shorter(ctx):
    a, b = ctx.responses
    return 0.5 if len(a) == len(b) else (0.8 if len(a) < len(b) else 0.2)

def graded(ctx):
    return {"7": 1.0} if len(ctx.responses[0]) < 20 else {"3": 1.0}

panel = Panel([
    Critic(builtin("helpfulness"), FunctionBackend(shorter, name="short"), name="short",
           principles=1),
    Critic(builtin("honesty"), FunctionBackend(graded, name="graded"), name="graded",
           principles=1, mode="score"),
])
'''


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                      bos_token_id=1, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    out = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("run")
    (base / "panel.py").write_text(PANEL_FILE)
    rows = [{"prompt": f"Tell me about {w}.", "response_a": f"{w} are nice.",
             "response_b": f"{w} are a long and detailed topic with many sides."}
            for w in ("cats", "dogs", "owls", "bees", "cows", "ants")]
    (base / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    res = runner.invoke(app, ["judge", "--panel", str(base / "panel.py"), "--data",
                              str(base / "pairs.jsonl"), "--out", str(base / "run")])
    assert res.exit_code == 0, res.output
    return base


@pytest.mark.parametrize("mode,fmt", [("sft", "sft"), ("reward", "preference"),
                                      ("dpo", "preference"), ("kto", "kto")])
def test_export_then_train_offline_modes(mode, fmt, tiny_dir, run_dir, tmp_path):
    exported = tmp_path / fmt
    res = runner.invoke(app, ["export", str(run_dir / "run"), "--format", fmt, "--out",
                              str(exported)])
    assert res.exit_code == 0, res.output
    assert json.loads((exported / "export.json").read_text())["rows"] == (12 if fmt == "kto"
                                                                        else 6)
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", mode, "--model", str(tiny_dir), "--data",
                              str(exported), "--out", str(out), "--max-steps", "2",
                              "--max-length", "64"])
    assert res.exit_code == 0, res.output
    assert f"train {mode}: 2 steps" in res.output
    loss = float(res.output.split("loss=")[1].split(",")[0].split(";")[0])
    assert math.isfinite(loss)
    assert (out / "config.json").exists()


@pytest.mark.parametrize("mode", ["grpo", "rloo"])
def test_online_modes_train_against_the_panel(mode, tiny_dir, run_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Say something kind.\nName a colour.\n")
    out = tmp_path / "policy"
    res = runner.invoke(app, ["train", mode, "--model", str(tiny_dir), "--panel",
                              str(run_dir / "panel.py"), "--prompts", str(prompts), "--out",
                              str(out), "--max-steps", "2", "--num-generations", "2",
                              "--batch-size", "4", "--max-completion-length", "6",
                              "--per-critic"])
    assert res.exit_code == 0, res.output
    assert f"train {mode}: 2 steps" in res.output
    with JudgmentStore(out / "judgments.sqlite") as db:
        assert db.count() > 0  # the panel judged the policy's completions
        assert set(db.to_frame()["critic"]) == {"short", "graded"}


def test_bad_training_data_is_one_line(tmp_path, tiny_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no preference columns"}) + "\n")
    res = runner.invoke(app, ["train", "dpo", "--model", str(tiny_dir), "--data", str(bad),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "needs column(s)" in res.output and "Traceback" not in res.output
