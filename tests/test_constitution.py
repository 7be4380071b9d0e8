from pathlib import Path

import pytest

from oversight.constitution import (
    ConstitutionError,
    builtin,
    builtin_dir,
    load_constitution,
)

GOOD = '''
[constitution]
name = "{name}"
version = "1.0"
description = "A test constitution."

[[principles]]
id = "be-kind"
statement = "Be kind."
critique_request = "Where was it unkind?"
revision_request = "Rewrite it kindly."
comparison_question = "Which response is kinder?"
{extra}

[[principles]]
id = "{second_id}"
statement = "Be brief."
critique_request = "Where was it long?"
revision_request = "Rewrite it briefly."
comparison_question = "Which response is briefer?"
kind = "veto"
'''


def write(tmp_path: Path, name: str = "tc", extra: str = "", second_id: str = "be-brief",
          text: str | None = None) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text if text is not None else
                    GOOD.format(name=name, extra=extra, second_id=second_id))
    return path


def test_builtin_constitutions_load_with_6_to_16_principles():
    names = sorted(p.stem for p in builtin_dir().glob("*.toml"))
    assert {"harmlessness", "honesty", "helpfulness", "privacy", "autonomy"} <= set(names)
    for name in names:
        c = builtin(name)
        assert 6 <= len(c) <= 16, name
        assert len(set(c.ids)) == len(c)
        assert len(c.hash) == 12


def test_helpfulness_resists_needless_refusals():
    c = builtin("helpfulness")
    text = " ".join(p.statement.lower() for p in c.principles)
    assert "refus" in text


def test_good_file_loads_with_defaults(tmp_path):
    c = load_constitution(write(tmp_path))
    assert c.ids == ["be-kind", "be-brief"]
    assert c["be-kind"].weight == 1.0 and c["be-kind"].kind == "soft"
    assert c["be-brief"].kind == "veto"


def test_hash_ignores_formatting_but_tracks_content(tmp_path):
    a = load_constitution(write(tmp_path))
    text = write(tmp_path).read_text()
    b = load_constitution(write(tmp_path, text="# a comment\n" + text.replace("\n\n", "\n\n\n")))
    c = load_constitution(write(tmp_path, text=text.replace("Be kind.", "Be very kind.")))
    assert a.hash == b.hash
    assert a.hash != c.hash


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, text="[constitution\nname = 1")
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(path)
    msg = one_line(exc)
    assert str(path) in msg and "invalid TOML" in msg


def test_missing_field_names_principle_and_field(tmp_path):
    text = write(tmp_path).read_text()
    text = text.replace('comparison_question = "Which response is kinder?"', "")
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, text=text))
    msg = one_line(exc)
    assert "tc.toml" in msg and "principle 'be-kind'" in msg
    assert "field 'comparison_question'" in msg


def test_duplicate_id(tmp_path):
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, second_id="be-kind"))
    msg = one_line(exc)
    assert "principle 'be-kind'" in msg and "field 'id'" in msg and "duplicate" in msg


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, extra='wieght = 2.0'))
    msg = one_line(exc)
    assert "principle 'be-kind'" in msg and "field 'wieght'" in msg and "weight" in msg


def test_wrong_type(tmp_path):
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, extra='weight = "heavy"'))
    msg = one_line(exc)
    assert "principle 'be-kind'" in msg and "field 'weight'" in msg and "expected" in msg


@pytest.mark.parametrize("extra,field", [('kind = "hard"', "kind"), ("weight = -1.0", "weight"),
                                         ("tags = [1, 2]", "tags")])
def test_invalid_values(tmp_path, extra, field):
    with pytest.raises(ConstitutionError) as exc:
        load_constitution(write(tmp_path, extra=extra))
    assert f"field '{field}'" in one_line(exc)


def test_name_must_match_file_stem(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text(write(tmp_path).read_text())
    with pytest.raises(ConstitutionError, match="file stem"):
        load_constitution(path)


def test_missing_file():
    with pytest.raises(ConstitutionError, match="file not found"):
        load_constitution("/nonexistent/x.toml")
