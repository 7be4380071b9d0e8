"""SL-CAI critique -> revision: seeded principle sampling, N rounds, provenance, panel gate,
resume, and the CLI on a tiny random Llama."""

from __future__ import annotations

import json

from conftest import REPO, scripted_pairwise
from typer.testing import CliRunner

from oversight import Critic, FunctionBackend, Panel
from oversight.cli._app import app
from oversight.constitution import builtin
from oversight.revise import revise, sample_principle

GENERATED: list[str] = []


def scripted_policy(prompt):
    """Initial answers are long; a critique names the request; a revision is short."""
    last = prompt.messages[-1]["content"]
    GENERATED.append(last)
    if last.startswith("Please rewrite") or "rewrite" in last.lower():
        return f"Short {len(prompt.messages)}."
    if any(m["role"] == "assistant" for m in prompt.messages):
        return f"Critique of: {prompt.messages[-2]['content'][:20]}"
    return "A long and rambling first answer that goes on and on."


def policy():
    return FunctionBackend(lambda ctx: None, generate=scripted_policy, name="policy")


def test_rounds_keep_principles_critiques_and_provenance(tmp_path):
    cons = builtin("harmlessness")
    run = revise(["How do I stay safe online?", "Tell me a joke."], policy(), cons,
                 rounds=3, seed=7)
    rec = run.records[0]
    assert rec.initial.startswith("A long and rambling")
    assert len(rec.rounds) == 3
    assert [r.principle for r in rec.rounds] == [
        sample_principle(cons, rec.key, r, 7).id for r in range(3)]
    assert all(r.critique.startswith("Critique of:") for r in rec.rounds)
    assert rec.constitution_hash == cons.hash and rec.policy == "policy"
    # Round 2 revises round 1's revision: the conversation it critiques holds it.
    assert rec.rounds[1].critique != "" and rec.final == rec.rounds[2].revision
    sft = run.sft_dataset()
    assert len(sft) == 2 and sft[0]["messages"][-1] == {"role": "assistant",
                                                        "content": rec.final}
    pref = run.preference_dataset()
    assert pref[0]["chosen"][0]["content"] == rec.final
    assert pref[0]["rejected"][0]["content"] == rec.initial
    assert pref[0]["constitution"] == f"harmlessness@{cons.hash}"


def test_seed_changes_the_sampled_principles():
    cons = builtin("helpfulness")
    a = [sample_principle(cons, "k", r, 0).id for r in range(12)]
    b = [sample_principle(cons, "k", r, 1).id for r in range(12)]
    assert a == [sample_principle(cons, "k", r, 0).id for r in range(12)]
    assert a != b and len(set(a)) > 1


def test_panel_gate_keeps_only_preferred_revisions():
    prefers_short = Panel([Critic(builtin("helpfulness"),
                                  FunctionBackend(scripted_pairwise, name="short"),
                                  name="short", principles=["clear-and-concise"])])

    def longer(ctx):
        a, b = ctx.responses
        return 0.9 if len(a) > len(b) else 0.1

    prefers_long = Panel([Critic(builtin("helpfulness"), FunctionBackend(longer, name="long"),
                                 name="long", principles=["clear-and-concise"])])
    kept = revise(["Q1", "Q2"], policy(), builtin("honesty"), panel=prefers_short)
    assert len(kept.kept()) == 2 and kept.records[0].panel_margin > 0
    assert kept.records[0].panel_p_revision > 0.5
    assert "margin" in kept.preference_dataset().column_names
    dropped = revise(["Q1", "Q2"], policy(), builtin("honesty"), panel=prefers_long)
    assert dropped.kept() == [] and len(dropped.sft_dataset()) == 0


def test_resume_skips_prompts_already_revised(tmp_path):
    cons = builtin("honesty")
    revise(["one", "two"], policy(), cons, out=tmp_path)
    GENERATED.clear()
    run = revise(["one", "two", "three"], policy(), cons, out=tmp_path)
    assert len(run.records) == 3
    assert len(GENERATED) == 3  # only "three": initial, critique, revision
    lines = (tmp_path / "revisions.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["prompt"][0]["content"] == "three"


def test_revise_cli_on_a_tiny_model(tmp_path, tiny_llama):
    model, tok = tiny_llama
    model_dir = tmp_path / "tiny"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("How do I stay safe online?\nWhat is 2+2?\n")
    out = tmp_path / "out"
    args = ["revise", "--policy", str(model_dir), "--constitution",
            str(REPO / "constitutions" / "honesty.toml"), "--prompts", str(prompts),
            "--out", str(out), "--rounds", "2", "--max-new-tokens", "6"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "revisions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["rounds"]) == 2 for r in rows)
    assert (out / "sft" / "dataset_info.json").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n')
    res = CliRunner().invoke(app, [*args[:6], str(bad), *args[7:]])
    assert res.exit_code == 2 and "row 1" in res.output and "prompt" in res.output
