"""Participatory drafting: votes in, group-aware consensus, a constitution with provenance out;
stakeholders' constitutions merged into one panel whose conflict graph shows where they split."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from oversight import Comparison, FunctionBackend, load_constitution
from oversight.cli import app
from oversight.constitution import builtin, builtin_dir
from oversight.errors import ConstitutionError, DataError
from oversight.governance import (
    Votes,
    draft_constitution,
    group_consensus,
    impute_votes,
    kmeans,
    load_votes,
    merge_stakeholders,
    silhouette,
    stakeholder_conflicts,
    stakeholder_weights,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()
CONSENSUS = {str(i) for i in range(6)}


def planted(seed: int = 0, sizes: tuple[int, ...] = (60, 40, 30), seen: float = 0.7
            ) -> tuple[Votes, np.ndarray, list[str]]:
    """Three opinion groups and 26 statements: 6 that every group accepts (P(agree) = 0.9),
    4 divisive ones per group (only that group agrees), 4 that the two larger groups accept and
    the smallest rejects (popular overall, not consensus) and 4 that everyone rejects. Each
    participant sees a random 70% of the statements."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    p, kinds = [], []
    p += [[0.9, 0.9, 0.9]] * 6
    kinds += ["consensus"] * 6
    for g in range(3):
        row = [0.1, 0.1, 0.1]
        row[g] = 0.9
        p += [row] * 4
        kinds += [f"divisive-{g}"] * 4
    p += [[0.9, 0.9, 0.1]] * 4
    kinds += ["majority"] * 4
    p += [[0.1, 0.1, 0.1]] * 4
    kinds += ["rejected"] * 4
    pa = np.array(p)[:, groups].T
    u = rng.random(pa.shape)
    m = np.where(u < pa, 1.0, np.where(u < pa + (1 - pa) * 0.85, -1.0, 0.0))
    m[rng.random(m.shape) > seen] = np.nan
    votes = Votes([f"p{i}" for i in range(len(groups))], [str(i) for i in range(len(p))],
                  [f"The assistant should follow rule {i} ({k})." for i, k in enumerate(kinds)],
                  m, source="planted")
    return votes, groups, kinds


def rand_index(a: np.ndarray, b: np.ndarray) -> float:
    same_a = a[:, None] == a[None]
    same_b = b[:, None] == b[None]
    iu = np.triu_indices(len(a), 1)
    return float((same_a == same_b)[iu].mean())


@pytest.mark.parametrize("seed", range(6))
def test_consensus_recovers_the_planted_consensus_statements(seed):
    votes, groups, _ = planted(seed)
    draft = draft_constitution(votes, threshold=0.4, seed=seed)
    assert draft.k == 3  # chosen by silhouette among 2..5
    assert rand_index(draft.labels, groups) >= 0.9
    assert set(draft.selected) == CONSENSUS  # precision 1 and recall 1
    # The planted consensus statements are separated from everything else by a wide gap.
    assert draft.scores[:6].min() > 0.5 > 0.3 > draft.scores[6:].max()


def test_group_awareness_is_what_excludes_majority_only_statements():
    votes, _, kinds = planted(0)
    seen = ~np.isnan(votes.matrix)
    overall = np.where(seen, votes.matrix == 1, 0).sum(0) / seen.sum(0)
    naive = {str(i) for i in np.flatnonzero(overall >= 0.6)}
    majority = {str(i) for i, k in enumerate(kinds) if k == "majority"}
    # The plain agree rate cannot tell "the two big groups agree" from "everyone agrees" ...
    assert naive == CONSENSUS | majority
    assert len(CONSENSUS) / len(naive) == 0.6
    # ... the product over groups can.
    draft = draft_constitution(votes, threshold=0.4)
    assert set(draft.selected) == CONSENSUS
    assert draft.scores[[int(i) for i in majority]].max() < 0.2


def test_group_consensus_golden():
    m = np.array([[1, 1], [1, -1], [0, np.nan], [1, 1], [-1, np.nan]], dtype=float)
    labels = np.array([0, 0, 0, 1, 1])
    scores, p = group_consensus(m, labels)
    # statement 0: group 0 has 2 agrees of 3 votes, group 1 has 1 of 2.
    assert p[0].tolist() == pytest.approx([3 / 5, 2 / 4])
    # statement 1: group 0 has 1 agree of 2 votes (the NaN is no vote), group 1 has 1 of 1.
    assert p[1].tolist() == pytest.approx([2 / 4, 2 / 3])
    assert scores.tolist() == pytest.approx([0.3, 1 / 3])


def test_knn_imputation_recovers_hidden_votes():
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1], 50)
    taste = np.where(rng.random((2, 30)) < 0.5, 1.0, -1.0)
    truth = taste[groups]
    hidden = rng.random(truth.shape) < 0.4
    m = np.where(hidden, np.nan, truth)
    filled = impute_votes(m, k=5)
    assert np.array_equal(filled[~hidden], truth[~hidden])  # observed votes are untouched
    assert (np.sign(filled[hidden]) == truth[hidden]).mean() >= 0.97
    # Zero-filling (no imputation) gets none of them.
    assert (np.sign(np.nan_to_num(m)[hidden]) == truth[hidden]).mean() == 0.0


def test_kmeans_and_silhouette_on_separated_blobs():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(c, 0.1, size=(20, 2)) for c in ((0, 0), (5, 0), (0, 5))])
    labels, inertia = kmeans(x, 3, seed=0)
    assert rand_index(labels, np.repeat([0, 1, 2], 20)) == 1.0
    assert inertia < 60 * 0.1 ** 2 * 2 * 2
    s = silhouette(x, labels)
    assert s > 0.9
    sk = pytest.importorskip("sklearn.metrics")
    assert s == pytest.approx(sk.silhouette_score(x, labels), abs=1e-9)
    two = np.where(labels == 2, 1, labels)
    assert silhouette(x, two) == pytest.approx(sk.silhouette_score(x, two), abs=1e-9)


def _write_simple_csv(path, votes: Votes) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "statement_id", "statement", "vote"])
        words = {1.0: "agree", -1.0: "disagree", 0.0: "pass"}
        for i, who in enumerate(votes.participants):
            for j, sid in enumerate(votes.statement_ids):
                v = votes.matrix[i, j]
                if not np.isnan(v):
                    w.writerow([who, sid, votes.statements[j], words[v]])


def test_written_constitution_validates_and_records_its_provenance(tmp_path):
    votes, _, _ = planted(0)
    src = tmp_path / "votes.csv"
    _write_simple_csv(src, votes)
    loaded = load_votes(src)
    cols = [loaded.statement_ids.index(sid) for sid in votes.statement_ids]
    assert loaded.participants == votes.participants
    assert np.array_equal(np.nan_to_num(loaded.matrix[:, cols], nan=9),
                          np.nan_to_num(votes.matrix, nan=9))
    draft = draft_constitution(src, threshold=0.4)
    const = draft.write(tmp_path / "citizens.toml")
    assert const.name == "citizens"
    assert [p.statement for p in const.principles] == [
        votes.statements[int(i)] for i in draft.selected]
    prov = const.provenance
    assert prov["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert prov["participants"] == 130
    assert prov["votes"] == int((~np.isnan(votes.matrix)).sum())
    assert prov["threshold"] == 0.4
    assert prov["clusters"] == 3 and sum(prov["cluster_sizes"]) == 130
    scored = {s["statement_id"]: s for s in prov["statements_scored"]}
    assert len(scored) == 26 and sum(s["kept"] for s in scored.values()) == 6
    # The provenance is part of the version: editing it changes the hash.
    text = (tmp_path / "citizens.toml").read_text()
    edited = tmp_path / "edited" / "citizens.toml"
    edited.parent.mkdir()
    edited.write_text(text.replace("threshold = 0.4", "threshold = 0.1"))
    assert load_constitution(edited).hash != const.hash
    assert tomllib.loads(text)["provenance"]["threshold"] == 0.4


def test_provenance_must_be_a_table(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('provenance = 3\n[constitution]\nname = "x"\nversion = "1"\ndescription = "d"\n'
                 '[[principles]]\nid = "a"\nstatement = "s"\ncritique_request = "c"\n'
                 'revision_request = "r"\ncomparison_question = "q"\n')
    with pytest.raises(ConstitutionError, match="x.toml: field 'provenance': must be a table"):
        load_constitution(f)


def test_polis_export_is_read(tmp_path):
    (tmp_path / "comments.csv").write_text(
        "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
        "1,d,0,1,2,0,1,Be honest.\n1,d,1,1,0,1,-1,Spam here.\n1,d,2,2,1,1,0,Be brief.\n")
    (tmp_path / "participants-votes.csv").write_text(
        "participant,group-id,n-comments,n-votes,n-agree,n-disagree,0,1,2\n"
        "1,0,1,3,2,1,1,-1,1\n2,1,1,2,1,0,1,,0\n3,1,0,1,0,1,,,-1\n")
    votes = load_votes(tmp_path)
    assert votes.format == "polis"
    assert votes.statement_ids == ["0", "2"] and votes.excluded == ["1"]
    assert votes.statements == ["Be honest.", "Be brief."]
    assert np.array_equal(np.nan_to_num(votes.matrix, nan=9),
                          [[1, 1], [1, 0], [9, -1]])


@pytest.mark.parametrize(("content", "message"), [
    ("participant,statement,vote\np1,Be kind,maybe\n",
     "row 2: field 'vote': vote 'maybe' is not valid"),
    ("participant,statement,vote\np1,Be kind,agree\np1,Be kind,pass\n",
     "row 3: field 'vote': participant 'p1' already voted on this statement on row 2"),
    ("participant,statement\np1,Be kind\n", "row 2: field 'vote': missing"),
])
def test_bad_votes_name_file_row_and_field(tmp_path, content, message):
    f = tmp_path / "votes.csv"
    f.write_text(content)
    with pytest.raises(DataError) as exc:
        load_votes(f)
    assert str(exc.value).startswith(f"{f}: {message}")


def test_jsonl_votes_and_numeric_codes(tmp_path):
    f = tmp_path / "votes.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"participant": "a", "statement": "Be kind", "vote": 1},
        {"participant": "b", "statement": "Be kind", "vote": "Disagree"},
        {"participant": "b", "statement": "Be brief", "vote": 0}]) + "\n")
    v = load_votes(f)
    assert v.statement_ids == ["1", "2"] and v.statements == ["Be kind", "Be brief"]
    assert np.array_equal(np.nan_to_num(v.matrix, nan=9), [[1, 9], [-1, 0]])


def test_cli_draft_consensus(tmp_path):
    votes, _, _ = planted(2)
    src = tmp_path / "votes.csv"
    _write_simple_csv(src, votes)
    out = tmp_path / "town_hall.toml"
    res = runner.invoke(app, ["draft", "consensus", str(src), "--threshold", "0.4",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "3 opinion groups" in res.output
    const = load_constitution(out)
    assert {p.statement for p in const.principles} == {votes.statements[i] for i in range(6)}
    res = runner.invoke(app, ["draft", "consensus", str(src), "--threshold", "0.99",
                              "--out", str(tmp_path / "none.toml")])
    assert res.exit_code == 2 and "no statement clears threshold 0.99" in res.output


# --------------------------------------------------------------------------- merging
def _stakeholder(name: str, ids: list[str], participants: int):
    from oversight.constitution import parse_constitution

    return parse_constitution({
        "constitution": {"name": name, "version": "1", "description": name},
        "principles": [{"id": i, "statement": i, "critique_request": i, "revision_request": i,
                        "comparison_question": i} for i in ids],
        "provenance": {"participants": participants, "votes": participants * 10}})


def feature_rule(ctx):
    """Each principle prefers the response carrying its feature tag; abstains otherwise."""
    feature = {"prefer-brief": "[brief]", "prefer-detail": "[detail]",
               "be-kind": "[kind]", "be-warm": "[kind]"}[ctx.principle.id]
    a, b = (feature in r for r in ctx.responses)
    if a == b:
        return None
    return "A" if a else "B"


def test_merged_panel_weights_and_stakeholder_conflicts():
    students = _stakeholder("students", ["prefer-brief", "be-kind"], participants=90)
    elders = _stakeholder("elders", ["prefer-detail", "be-warm"], participants=30)
    w = stakeholder_weights({"students": students, "elders": elders}, "participants")
    assert w == pytest.approx({"students": 1.5, "elders": 0.5})
    panel = merge_stakeholders([students, elders], FunctionBackend(feature_rule, name="rules"),
                               weights="participants")
    assert [(c.name, c.weight) for c in panel.critics] == [("students", 1.5), ("elders", 0.5)]
    rng = np.random.default_rng(0)
    items = []
    for i in range(40):
        brief_first = bool(rng.random() < 0.5)
        kind = ["", ""]
        kind[int(rng.random() < 0.5)] = " [kind]"
        a = ("[brief]" if brief_first else "[detail]") + kind[0]
        b = ("[detail]" if brief_first else "[brief]") + kind[1]
        items.append(Comparison(f"q{i}", (f"{a} {i}", f"{b} {i}")))
    result = panel.judge(items)
    conflicts = stakeholder_conflicts(result.judgments, min_items=20)
    # Brief against detailed: the two stakeholders pull apart on every item.
    assert conflicts[["stakeholder_a", "principle_a", "stakeholder_b", "principle_b"]
                     ].values.tolist() == [["elders", "prefer-detail", "students", "prefer-brief"]]
    assert conflicts["correlation"].iloc[0] == pytest.approx(-1.0)
    assert conflicts["disagreement"].iloc[0] == 1.0 and conflicts["n_items"].iloc[0] == 40
    with pytest.raises(ValueError, match="stakeholder 'plain'.*needs \\[provenance\\] votes"):
        stakeholder_weights({"plain": builtin("honesty")}, "votes")


def test_cli_draft_merge_writes_a_loadable_panel_file(tmp_path):
    out = tmp_path / "panel.py"
    honesty, privacy = (str(builtin_dir() / f"{n}.toml") for n in ("honesty", "privacy"))
    res = runner.invoke(app, ["draft", "merge", honesty, privacy, "--weights",
                              "honesty=3,privacy=1", "--out", str(out), "--principles", "1"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert '"honesty": 1.5' in text and '"privacy": 0.5' in text
    compile(text, str(out), "exec")
    res = runner.invoke(app, ["draft", "merge", honesty, "--weights",
                              "participants", "--out", str(out)])
    assert res.exit_code == 2 and "needs [provenance] participants" in res.output


# --------------------------------------------------------------------------- bad inputs
CORPUS = Path(__file__).parent / "bad_inputs"
BAD_VOTES = sorted(k for k in json.loads((CORPUS / "expected.json").read_text())
                   if k.startswith("votes/"))


@pytest.mark.parametrize("name", BAD_VOTES)
def test_bad_votes_corpus_through_the_cli(name, tmp_path):
    expected = json.loads((CORPUS / "expected.json").read_text())[name]
    path = CORPUS / name
    res = runner.invoke(app, ["draft", "consensus", str(path), "--threshold", "0.5",
                              "--out", str(tmp_path / "x.toml")])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    assert str(path) in errors[0]
    for sub in expected:
        assert sub in errors[0], (sub, errors[0])
    assert not (tmp_path / "x.toml").exists()


def test_a_participant_with_no_votes_gets_the_donors_mean_and_bom_csv_loads(tmp_path):
    m = np.array([[1, 1], [1, -1], [-1, 1], [np.nan, np.nan]], dtype=float)
    filled = impute_votes(m, k=2)
    assert filled[3].tolist() == pytest.approx([1 / 3, 1 / 3])
    f = tmp_path / "bom.csv"
    f.write_bytes("\ufeffparticipant,statement,vote\np1,Be kind,agree\n".encode())
    assert load_votes(f).participants == ["p1"]
