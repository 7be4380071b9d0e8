"""Amendments through a declared gate, and the hash-chained log that `verify` checks: one test
per kind of tampering."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oversight import Comparison, FunctionBackend, load_constitution
from oversight.cli._app import app
from oversight.constitution import (
    ConstitutionError,
    amendment_label,
    amendment_of,
    builtin_dir,
    log_path,
    read_log,
    verify_log,
)
from oversight.constitution._log import entry_hash
from oversight.governance import (
    Gate,
    amend,
    apply_proposal,
    load_gate,
    load_proposal,
    parse_proposal,
    structural_diff,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "constitutions" / "examples"
ADD_EMAIL = EXAMPLES / "privacy_add_email_verifier.change.toml"
DROP_VETO = EXAMPLES / "privacy_drop_doxxing_veto.change.toml"
GATE = Gate(max_agreement_drop=0.02, min_items=10, approvers=("alice", "bob", "carol"),
            veto_quorum=2)


def prefers_good(ctx):
    """Prefers the response that says GOOD, in either position (position-consistent)."""
    a, b = ctx.responses
    if ("GOOD" in a) == ("GOOD" in b):
        return {"A": 0.5, "B": 0.5}
    return {"A": 0.9, "B": 0.1} if "GOOD" in a else {"A": 0.1, "B": 0.9}


JUDGE = FunctionBackend(prefers_good, name="prefers-good")


def items(n=12, email_in_good=False):
    out = []
    for i in range(n):
        good = f"GOOD answer {i}" + (f", write to x{i}@lab.org" if email_in_good else "")
        bad = f"weak answer {i}, a little longer"
        pair = (good, bad) if i % 2 == 0 else (bad, good)
        out.append(Comparison(f"question {i}?", pair, reference=0 if i % 2 == 0 else 1))
    return out


@pytest.fixture
def privacy(tmp_path):
    path = tmp_path / "privacy.toml"
    shutil.copy(builtin_dir() / "privacy.toml", path)
    return path


def test_proposal_errors_name_file_and_key(tmp_path):
    with pytest.raises(ConstitutionError, match="field 'summary'"):
        parse_proposal({"amendment": {"remove": ["x"]}}, "c.toml")
    with pytest.raises(ConstitutionError, match="c.toml: field 'removee'"):
        parse_proposal({"amendment": {"summary": "s", "removee": ["x"]}}, "c.toml")
    with pytest.raises(ConstitutionError, match="changes nothing"):
        parse_proposal({"amendment": {"summary": "s"}}, "c.toml")
    with pytest.raises(ConstitutionError, match="principle 'no-doxxing': field 'idd'"):
        parse_proposal({"amendment": {"summary": "s"}, "edit": [{"id": "no-doxxing",
                                                                   "idd": 1}]}, "c.toml")
    old = load_constitution(builtin_dir() / "privacy.toml")
    p = parse_proposal({"amendment": {"summary": "s", "remove": ["nope"]}}, "c.toml")
    with pytest.raises(ConstitutionError, match="principle 'nope'.*no such principle"):
        apply_proposal(old, p)
    p = parse_proposal({"amendment": {"summary": "s"}, "edit": [{"id": "no-doxxing",
                                                                   "kind": "hard"}]}, "c.toml")
    with pytest.raises(ConstitutionError, match="c.toml .applied to privacy.*field 'kind'"):
        apply_proposal(old, p)


def test_apply_add_edit_remove_and_structural_diff():
    old = load_constitution(builtin_dir() / "privacy.toml")
    p = parse_proposal({"amendment": {"summary": "s", "remove": ["no-aggregation"],
                                      "version": "2"},
                        "edit": [{"id": "data-minimisation", "weight": 1.5}]}, "c.toml")
    new = apply_proposal(old, p)
    d = structural_diff(old, new)
    assert d["removed"] == ["no-aggregation"] and d["added"] == []
    assert d["edited"] == {"data-minimisation": {"weight": [old["data-minimisation"].weight,
                                                            1.5]}}
    assert d["header"] == {"version": ["1.0", "2"]}
    added = apply_proposal(old, load_proposal(ADD_EMAIL))
    assert structural_diff(old, added)["added"] == ["no-email-addresses"]
    assert added["no-email-addresses"].verifier.type == "regex"


def test_accepted_amendment_rewrites_file_and_chains_log(privacy):
    old_hash = load_constitution(privacy).hash
    res = amend(privacy, load_proposal(ADD_EMAIL), items(), JUDGE, gate=GATE)
    assert res.gate.accepted, res.gate.reasons
    f = res.gate.figures
    assert f["agreement_old"] == 1.0 and f["agreement_new"] == 1.0
    assert f["agreement_drop"] == 0.0 and f["agreement_drop_ci"] == [0.0, 0.0]
    assert f["baselines"]["first shown"] == 0.5 and f["baselines"]["shorter"] == 1.0
    assert f["position_consistency_old"] == 1.0 == f["position_consistency_new"]
    new = load_constitution(privacy)
    assert new.hash == res.new.hash != old_hash and new["no-email-addresses"].kind == "veto"
    entries = read_log(log_path(privacy))
    assert [e["seq"] for e in entries] == [0, 1]
    assert entries[0]["new_hash"] == old_hash and entries[1]["old_hash"] == old_hash
    assert entries[1]["prev"] == entries[0]["hash"] and entries[1]["new_hash"] == new.hash
    assert "+id = \"no-email-addresses\"" in entries[1]["diff"]
    assert entries[1]["gate"]["gate_sha256"] is None and entries[1]["gate"]["accepted"]
    assert verify_log(privacy).ok
    # provenance: which amendment a judgment under this hash was made under
    assert amendment_of(privacy, new.hash)["seq"] == 1
    assert amendment_label(amendment_of(privacy, old_hash)).startswith("original (")


def test_gate_rejects_an_agreement_drop_and_writes_nothing(privacy):
    before = privacy.read_bytes()
    res = amend(privacy, load_proposal(ADD_EMAIL), items(email_in_good=True), JUDGE, gate=GATE)
    assert not res.gate.accepted and res.entry is None
    f = res.gate.figures
    # The judge's no-doxxing veto now clashes with the e-mail veto on every item: contested,
    # half credit each, so agreement falls from 1 to 0.5 and the whole CI sits at 0.5.
    assert f["agreement_old"] == 1.0 and f["agreement_new"] == 0.5
    assert f["agreement_drop_ci"] == [0.5, 0.5] and f["decisions_changed"] == 12
    assert "agreement may drop" in res.gate.reasons[0]
    assert privacy.read_bytes() == before and not log_path(privacy).exists()


def test_gate_rejects_too_few_items(privacy):
    res = amend(privacy, load_proposal(ADD_EMAIL), items(8), JUDGE, gate=GATE)
    assert not res.gate.accepted and "the gate needs 10" in res.gate.reasons[0]


def test_weakening_a_veto_needs_a_quorum_of_named_approvers(privacy):
    res = amend(privacy, load_proposal(DROP_VETO), items(), JUDGE, gate=GATE,
                approvers=["alice", "mallory"])
    va = res.gate.checks["veto_approval"]
    assert not res.gate.accepted and va["weakened"] == ["no-doxxing: veto -> soft"]
    assert va["approvers"] == ["alice"] and va["unknown_approvers"] == ["mallory"]
    res = amend(privacy, load_proposal(DROP_VETO), items(), JUDGE, gate=GATE,
                approvers=["alice", "carol"])
    assert res.gate.accepted and res.entry["approvers"] == ["alice", "carol"]
    assert load_constitution(privacy)["no-doxxing"].kind == "soft"


def test_gate_file_validation(tmp_path):
    g = tmp_path / "x.gate.toml"
    g.write_text("[gate]\nveto_quorum = 3\napprovers = ['a']\n")
    with pytest.raises(ConstitutionError, match="x.gate.toml: field 'veto_quorum'"):
        load_gate(g)
    g.write_text("[gate]\nmax_agreement_dropp = 0.1\n")
    with pytest.raises(ConstitutionError, match="field 'max_agreement_dropp'"):
        load_gate(g)
    shutil.copy(EXAMPLES / "privacy.gate.toml", g)
    gate = load_gate(g)
    assert gate.veto_quorum == 2 and len(gate.sha256) == 64


# -- tampering ---------------------------------------------------------------------------
@pytest.fixture
def amended(privacy):
    """privacy.toml with a log of three entries: original, e-mail veto, doxxing made soft."""
    assert amend(privacy, load_proposal(ADD_EMAIL), items(), JUDGE, gate=GATE).entry
    assert amend(privacy, load_proposal(DROP_VETO), items(), JUDGE, gate=GATE,
                 approvers=["alice", "bob"]).entry
    assert verify_log(privacy).ok
    return privacy


def lines(path):
    return log_path(path).read_text().splitlines(keepends=True)


def problems(path, **kw):
    check = verify_log(path, **kw)
    assert not check.ok
    return " | ".join(check.problems)


def test_tamper_edit_an_entry(amended):
    ls = lines(amended)
    e = json.loads(ls[1])
    e["approvers"] = ["alice", "bob", "carol"]
    ls[1] = json.dumps(e) + "\n"
    log_path(amended).write_text("".join(ls))
    assert "line 2 (entry seq 1): its hash does not match its content" in problems(amended)


def test_tamper_edit_an_entry_and_rehash_it(amended):
    ls = lines(amended)
    e = json.loads(ls[1])
    e["summary"] = "nothing to see"
    e["hash"] = entry_hash(e)
    ls[1] = json.dumps(e) + "\n"
    log_path(amended).write_text("".join(ls))
    assert "line 3 (entry seq 2): prev does not match" in problems(amended)


def test_tamper_reorder_entries(amended):
    ls = lines(amended)
    ls[1], ls[2] = ls[2], ls[1]
    log_path(amended).write_text("".join(ls))
    msg = problems(amended)
    assert "expected seq 1" in msg and "chain is broken" in msg


def test_tamper_delete_a_middle_entry(amended):
    ls = lines(amended)
    log_path(amended).write_text(ls[0] + ls[2])
    msg = problems(amended)
    assert "line 2 (entry seq 2): expected seq 1" in msg and "prev does not match" in msg


def test_tamper_delete_the_newest_entry(amended):
    ls = lines(amended)
    log_path(amended).write_text("".join(ls[:2]))
    assert "does not match the log head's new_hash" in problems(amended)


def test_tamper_delete_newest_entry_and_revert_file_needs_a_kept_head(amended):
    ls = lines(amended)
    head = json.loads(ls[2])["hash"]
    log_path(amended).write_text("".join(ls[:2]))
    prev = apply_proposal(load_constitution(amended), parse_proposal(
        {"amendment": {"summary": "s"}, "edit": [{"id": "no-doxxing", "kind": "veto",
                                                  "weight": 2.0}]}, "x"))
    from oversight.constitution import to_toml

    amended.write_text(to_toml(prev))
    assert verify_log(amended).ok  # the log alone cannot prove its own length
    assert "newer entries were deleted" not in problems(amended, expect_head=head[:16])
    assert "is not in the log" in problems(amended, expect_head=head[:16])
    assert verify_log(amended, expect_head=json.loads(ls[1])["hash"][:16]).ok


def test_tamper_edit_the_constitution_file(amended):
    text = amended.read_text().replace('weight = 3.0', 'weight = 0.1')
    amended.write_text(text)
    assert "privacy.toml: content hash" in problems(amended)


def test_comment_only_edit_is_a_note_not_tampering(amended):
    amended.write_text("# reviewed by bob\n" + amended.read_text())
    check = verify_log(amended)
    assert check.ok and "comments or formatting" in check.notes[0]


def test_garbage_line_and_missing_log(amended, tmp_path):
    log_path(amended).write_text("".join(lines(amended)) + "{not json\n")
    assert "line 4: not JSON" in problems(amended)
    lone = tmp_path / "lone.toml"
    shutil.copy(builtin_dir() / "honesty.toml", tmp_path / "honesty.toml")
    assert "no amendment log" in problems(tmp_path / "honesty.toml")
    assert not lone.exists()


def test_amend_refuses_when_log_does_not_verify(amended):
    amended.write_text(amended.read_text().replace('weight = 3.0', 'weight = 0.1'))
    with pytest.raises(ConstitutionError, match="the log does not verify"):
        amend(amended, load_proposal(ADD_EMAIL), items(), JUDGE, gate=GATE)


# -- CLI ---------------------------------------------------------------------------------
def test_cli_amend_log_diff_verify(privacy, tmp_path, monkeypatch):
    (tmp_path / "judges_i18a.py").write_text(textwrap.dedent('''
        def prefers_good(ctx):
            a, b = ctx.responses
            if ("GOOD" in a) == ("GOOD" in b):
                return {"A": 0.5, "B": 0.5}
            return {"A": 0.9, "B": 0.1} if "GOOD" in a else {"A": 0.1, "B": 0.9}
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": it.prompt, "responses": list(it.responses),
                                        "reference": it.reference}) + "\n" for it in items(20)))
    shutil.copy(EXAMPLES / "privacy.gate.toml", tmp_path / "privacy.gate.toml")
    runner = CliRunner()
    base = ["constitution", "amend", str(privacy), "--labels", str(data), "--model",
            "function:judges_i18a:prefers_good"]
    r = runner.invoke(app, [*base, "--propose", str(DROP_VETO), "--approve", "alice"])
    assert r.exit_code == 1 and "needs 2 of the named approvers" in r.output
    r = runner.invoke(app, [*base, "--propose", str(ADD_EMAIL)])
    assert r.exit_code == 0, r.output
    assert "log entry seq 1" in r.output and "0.500 / 0.000 / 1.000" in r.output
    r = runner.invoke(app, ["constitution", "log", str(privacy)])
    assert r.exit_code == 0 and "#1" in r.output and "agreement 1.000 -> 1.000" in r.output
    r = runner.invoke(app, ["constitution", "diff", str(privacy)])
    assert r.exit_code == 0 and '+id = "no-email-addresses"' in r.output
    r = runner.invoke(app, ["constitution", "verify", str(privacy)])
    assert r.exit_code == 0 and "2 log entries, chain intact" in r.output
    r = runner.invoke(app, ["constitution", "show", str(privacy)])
    assert "amendment 1" in r.output
    privacy.write_text(privacy.read_text().replace("e-mail address", "email"))
    r = runner.invoke(app, ["constitution", "verify", str(privacy)])
    assert r.exit_code == 1 and "TAMPERED" in r.output
    assert sys.modules.get("judges_i18a") is not None


# -- provenance --------------------------------------------------------------------------
def test_runs_say_which_amendment_they_were_judged_under(privacy):
    from oversight import Critic, Panel, verifier_critic
    from oversight.report import Analysis
    from oversight.report._html import render_html
    from oversight.train._export import preference_frame

    assert amend(privacy, load_proposal(ADD_EMAIL), items(), JUDGE, gate=GATE).entry
    c = load_constitution(privacy)
    panel = Panel([Critic(c, JUDGE, name="model", principles=["data-minimisation"]),
                   verifier_critic(c, name="checks")])
    res = panel.judge(items(4))
    head = read_log(log_path(privacy))[-1]["hash"][:12]
    assert {cfg["amendment"] for cfg in res.critics} == {f"amendment 1 ({head})"}
    frame = preference_frame(res)
    assert len(frame) == 4
    assert set(frame["amendments"]) == {f"privacy@{c.hash}=amendment 1 ({head})"}
    html = render_html(Analysis.from_result(res))
    assert f"privacy@{c.hash} (amendment 1 ({head}))" in html
    unlogged = Critic(load_constitution(builtin_dir() / "honesty.toml"), JUDGE)
    assert unlogged.amendment is None and unlogged.config()["amendment"] is None


def test_amending_a_drafted_constitution_keeps_its_provenance(tmp_path):
    """A participatory constitution's [provenance] table (votes, threshold) survives the
    canonical rewrite, so its content hash still covers where it came from."""
    src = EXAMPLES.parent / "town_hall" / "town_hall.toml"
    path = tmp_path / "town_hall.toml"
    shutil.copy(src, path)
    before = load_constitution(path)
    assert before.provenance
    proposal = parse_proposal({"amendment": {"summary": "e-mail veto"},
                               "add": [{"id": "no-email-addresses", "statement": "No e-mail.",
                                        "kind": "veto", "verifier": {"type": "regex",
                                                                     "pattern": "@"}}]}, "p")
    res = amend(path, proposal, items(), JUDGE, gate=GATE)
    assert res.gate.accepted, res.gate.reasons
    after = load_constitution(path)
    assert after.provenance == before.provenance and after.hash == res.new.hash
    assert verify_log(path).ok
