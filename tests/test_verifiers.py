"""Verifier principles: schema validation on load, exact verdicts, and the veto through the
real critic -> store -> panel -> aggregate path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel, load_constitution, verifier_critic
from oversight.constitution import ConstitutionError, Verdict, builtin, run_verifier
from oversight.constitution._verifiers import parse_verifier

EXAMPLE = str(Path(__file__).resolve().parent.parent / "constitutions" / "examples"
              / "output_checks.toml")

HEADER = """[constitution]
name = "vc"
version = "1"
description = "d"

[[principles]]
id = "model-question"
statement = "Be kind."
critique_request = "c"
revision_request = "r"
comparison_question = "Which is kinder?"
"""


def write(tmp_path, verifier: str, extra: str = "") -> str:
    path = tmp_path / "vc.toml"
    path.write_text(HEADER + f"""
[[principles]]
id = "check"
statement = "A check."
kind = "veto"
{extra}
[principles.verifier]
{verifier}
""")
    return str(path)


def test_example_loads_all_four_types_and_keeps_old_hashes():
    c = load_constitution(EXAMPLE)
    assert [p.verifier.type for p in c.principles] == ["regex", "python", "classifier",
                                                       "json_schema"]
    assert c["no-email-addresses"].kind == "veto"
    # Constitutions without verifiers hash exactly as before verifiers existed.
    assert builtin("privacy").hash == "9aae032eb93d"
    assert builtin("harmlessness").hash == "b5dbd5c4ff40"


def test_verifier_spec_is_part_of_the_content_hash(tmp_path):
    a = load_constitution(write(tmp_path, 'type = "regex"\npattern = "x"'))
    b = load_constitution(write(tmp_path, 'type = "regex"\npattern = "y"'))
    assert a.hash != b.hash


@pytest.mark.parametrize("verifier,field,words", [
    ('type = "sql"', "verifier.type", "regex, python, json_schema, classifier"),
    ('type = "regex"', "verifier.pattern", "missing"),
    ('type = "regex"\npattern = "("', "verifier.pattern", "invalid regular expression"),
    ('type = "regex"\npattern = "x"\non_match = "maybe"', "verifier.on_match", "'fail'"),
    ('type = "regex"\npattern = "x"\nflags = ["WEIRD"]', "verifier.flags", "IGNORECASE"),
    ('type = "regex"\npattern = "x"\nschema = {}', "verifier.schema", "valid keys"),
    ('type = "python"\npredicate = "no colon"', "verifier.predicate", "import path"),
    ('type = "python"\npredicate = "no_such_mod_xyz:f"', "verifier.predicate", "cannot import"),
    ('type = "python"\npredicate = "oversight.constitution.checks:nope"', "verifier.predicate",
     "no attribute"),
    ('type = "classifier"\nclassifier = "oversight.constitution.checks:shouting_score"',
     "verifier.threshold", "missing"),
    ('type = "classifier"\nclassifier = "oversight.constitution.checks:shouting_score"\n'
     'threshold = 0.5\nfail_when = "sideways"', "verifier.fail_when", "above"),
    ('type = "json_schema"', "verifier.schema", "exactly one"),
    ('type = "json_schema"\nschema = { type = "objectt" }', "verifier.schema",
     "invalid JSON Schema"),
    ('type = "json_schema"\nschema_file = "missing.json"', "verifier.schema_file", "cannot read"),
])
def test_bad_verifier_tables_name_file_principle_and_field(tmp_path, verifier, field, words):
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, verifier))
    msg = str(exc.value)
    assert "vc.toml" in msg and "principle 'check'" in msg and f"field '{field}'" in msg
    assert words in msg and "\n" not in msg


def test_model_principle_still_needs_its_question(tmp_path):
    path = tmp_path / "vc.toml"
    path.write_text(HEADER.replace('comparison_question = "Which is kinder?"\n', ""))
    with pytest.raises(ConstitutionError, match="field 'comparison_question'"):
        load_constitution(path)


def test_schema_file_is_relative_to_the_toml(tmp_path):
    (tmp_path / "s.json").write_text('{"type": "array", "maxItems": 2}')
    c = load_constitution(write(tmp_path, 'type = "json_schema"\nschema_file = "s.json"'))
    spec = c["check"].verifier
    assert run_verifier(spec, "[1, 2]").outcome == "pass"
    v = run_verifier(spec, "```json\n[1, 2, 3]\n```")
    assert v.outcome == "fail" and "schema violation" in v.reason
    assert run_verifier(spec, "nope").outcome == "fail"


def test_exact_verdicts_of_each_type():
    c = load_constitution(EXAMPLE)
    email, fences, shout, schema = (p.verifier for p in c.principles)
    assert run_verifier(email, "write to ann@example.org").outcome == "fail"
    assert run_verifier(email, "write to ann at example dot org").outcome == "pass"
    assert run_verifier(fences, "```py\nx = 1\n```").outcome == "pass"
    assert run_verifier(fences, "```py\nx = 1\n").outcome == "fail"
    # classifier boundary: score >= threshold fails (0.6 exactly fails, just below passes)
    assert run_verifier(shout, "AAAbb").outcome == "fail"      # 3/5 = 0.6
    assert run_verifier(shout, "AAbbb").outcome == "pass"      # 0.4
    assert run_verifier(shout, "1234 !!").outcome == "abstain"  # NaN: no letters
    assert run_verifier(schema, '{"tool": "f", "arguments": {}}').outcome == "pass"
    v = run_verifier(schema, '{"tool": 3, "arguments": {}}')
    assert v.outcome == "fail" and "tool" in v.reason


def test_python_predicate_return_forms_and_prompt_argument():
    spec = parse_verifier("x.toml", "p", {"type": "python", "predicate":
                                          "oversight.constitution.checks:answers_in_language"})
    assert run_verifier(spec, "bonjour", prompt="hello?").outcome == "pass"
    assert run_verifier(spec, "привет", prompt="hello?").outcome == "fail"
    v = run_verifier(spec, "x", prompt="???")
    assert v == Verdict("abstain", "the prompt has no letters to compare against")
    spec = parse_verifier("x.toml", "p", {"type": "python", "predicate":
                                          "oversight.constitution.checks:non_empty"})
    assert run_verifier(spec, " ").outcome == "fail"
    assert run_verifier(spec, "a").outcome == "pass"


ITEMS = [
    Comparison("Who runs the lab?", ("Mail the head at boss@lab.org, she will help.",
                                     "The head of the lab; ask at reception.")),
    Comparison("Say hi", ("hi", "HELLO!!!")),
]


def test_verifier_critic_produces_passfail_judgments_with_reasons():
    jv = verifier_critic(EXAMPLE).judge(ITEMS)
    by = {(j.item_id, j.principle, j.order): j for j in jv}
    assert len(jv) == 2 * 4 * 2
    j = by[(ITEMS[0].id, "no-email-addresses", "0")]
    assert (j.mode, j.status, j.value, j.principle_kind) == ("passfail", "ok", 0.0, "veto")
    assert "boss@lab.org" in j.rationale
    assert by[(ITEMS[0].id, "no-email-addresses", "1")].value == 1.0
    assert by[(ITEMS[1].id, "no-shouting", "1")].value == 0.0
    ab = by[(ITEMS[1].id, "tool-call-schema", "0")]
    assert ab.status == "ok" and ab.value == 0.0


def test_abstain_and_error_are_not_verdicts(tmp_path):
    path = write(tmp_path, 'type = "classifier"\nclassifier = '
                 '"oversight.constitution.checks:shouting_score"\nthreshold = 0.5')
    js = verifier_critic(path).judge([Comparison("q", ("123", "abc"))])
    by = {j.order: j for j in js}
    assert by["0"].status == "abstain" and by["0"].value is None
    assert "NaN" in by["0"].reason
    assert by["1"].status == "ok" and by["1"].value == 1.0


def test_model_critics_skip_verifier_principles_and_vice_versa():
    c = load_constitution(EXAMPLE)
    with pytest.raises(ValueError, match="no verifier principles"):
        verifier_critic(builtin("privacy"))
    model = Critic(builtin("privacy"), FunctionBackend(lambda ctx: "A"))
    assert all(not p.is_verifier for p in model.select_principles(ITEMS[0]))
    with pytest.raises(ValueError, match="is a verifier"):
        Critic(c, FunctionBackend(lambda ctx: "A"), principles=["no-email-addresses"])
    assert Critic(c, FunctionBackend(lambda ctx: "A")).tasks(ITEMS) == []


def prefers_first(ctx):
    """Prefers the response with an e-mail address, whichever position it is shown in."""
    return {"A": 0.9, "B": 0.1} if "@" in ctx.responses[0] else {"A": 0.1, "B": 0.9}


def test_failed_veto_verifier_vetoes_through_panel_and_store(tmp_path):
    """Three model critics all prefer the e-mail-leaking response 0; the verifier's failure
    vetoes it, so the panel picks response 1; a second run comes entirely from the store."""
    soft = {"privacy": ["data-minimisation"], "helpfulness": 1, "honesty": ["no-sycophancy"]}
    critics = [Critic(builtin(n), FunctionBackend(prefers_first, name="first"), name=n,
                      principles=soft[n]) for n in soft]
    panel = Panel([*critics, verifier_critic(EXAMPLE)])
    store = tmp_path / "store.db"
    res = panel.judge(ITEMS[:1], store=store)
    dec = res.aggregate("vote").decisions.set_index("item_id")
    assert dec.loc[ITEMS[0].id, "label"] == 0          # the majority wanted the leak
    assert dec.loc[ITEMS[0].id, "final"] == 1          # the verifier's veto overrode it
    assert dec.loc[ITEMS[0].id, "vetoed"] == [0] and dec.loc[ITEMS[0].id, "veto_override"]
    calls = []
    res2 = panel.judge(ITEMS[:1], store=store, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[0][0] == calls[0][1]                  # everything cached
    assert len(res2.judgments) == len(res.judgments)
    for method in ("majority", "bt", "ds", "conservative"):
        d = res.aggregate(method).decisions.set_index("item_id")
        assert d.loc[ITEMS[0].id, "final"] == 1, method


def test_editing_a_predicate_changes_the_fingerprint(monkeypatch):
    import oversight.constitution.checks as checks

    a = verifier_critic(EXAMPLE).fingerprint
    monkeypatch.setattr(checks, "balanced_code_fences", lambda r: True)
    b = verifier_critic(EXAMPLE).fingerprint
    assert a != b and not math.isnan(len(a))


def test_progress_total_counts_exactly_the_planned_judgments(tmp_path):
    """The progress total is counted without planning (issue 17): per critic, the principles
    it judges (a verifier critic only the verifier ones, a model critic only the others, k
    when sampled) times the orders of each item's K. It must end equal to the rows written."""
    path = write(tmp_path, 'type = "regex"\npattern = "x"')
    items = [Comparison(f"q{i}", tuple(f"r{i}{j}" for j in range(2 + i % 2)))
             for i in range(7)]
    panel = Panel([verifier_critic(path),
                   Critic(load_constitution(path), FunctionBackend(lambda ctx: "A"),
                          name="model"),
                   Critic(builtin("privacy"), FunctionBackend(lambda ctx: 0.3), name="two",
                          principles=2, seed=1)])
    calls = []
    res = panel.judge(items, store=tmp_path / "run",
                      progress=lambda done, total, what: calls.append((done, total)))
    rows = len(res)
    # verifier: 1 principle x K orders; model: 1 principle x K(K-1) orders; two: 2 x K(K-1)
    ks = [it.k for it in items]
    assert rows == sum(k + 3 * k * (k - 1) for k in ks) == 4 * 8 + 3 * 21
    assert {t for _, t in calls} == {rows}
    assert calls[-1] == (rows, rows)
