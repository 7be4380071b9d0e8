import json
from pathlib import Path

import pytest

from oversight.data import DataError, load_comparisons, split_hh_dialogue

HH = ("\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you want to?\n\nHuman: I'm locked "
      "out.\n\nAssistant: ")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pair_shape_with_reference(tmp_path):
    items = load_comparisons(write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "q", "response_a": "x", "response_b": "y", "reference": "b", "id": "r1"}]))
    (it,) = items
    assert it.responses == ("x", "y") and it.reference == 1
    assert it.meta["source_id"] == "r1"


def test_ids_are_stable_and_content_derived(tmp_path):
    rows = [{"prompt": "q", "response_a": "x", "response_b": "y"}]
    a = load_comparisons(write_jsonl(tmp_path / "a.jsonl", rows))[0].id
    b = load_comparisons(rows)[0].id
    c = load_comparisons([{"prompt": "q", "response_a": "x", "response_b": "z"}])[0].id
    assert a == b != c


def test_trl_rows_randomise_chosen_position_with_seed():
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(200)]
    items = load_comparisons(rows, seed=0)
    firsts = sum(it.reference == 0 for it in items)
    assert 70 < firsts < 130  # both positions occur: order does not leak the label
    for it, row in zip(items, rows):
        assert it.responses[it.reference] == row["chosen"]
        assert "chosen" not in json.dumps(it.prompt)
    again = load_comparisons(rows, seed=0)
    other = load_comparisons(rows, seed=1)
    assert [i.reference for i in again] == [i.reference for i in items]
    assert [i.reference for i in other] != [i.reference for i in items]


def test_trl_conversational_rows():
    row = {"prompt": [{"role": "user", "content": "hi"}],
           "chosen": [{"role": "assistant", "content": "hello"}],
           "rejected": [{"role": "assistant", "content": "go away"}]}
    (it,) = load_comparisons([row])
    assert it.messages == ({"role": "user", "content": "hi"},)
    assert it.responses[it.reference] == "hello"


def test_hh_dialogue_split():
    row = {"chosen": HH + "Call a locksmith.", "rejected": HH + "Use a bobby pin."}
    (it,) = load_comparisons([row])
    assert [m["role"] for m in it.messages] == ["user", "assistant", "user"]
    assert it.messages[-1]["content"] == "I'm locked out."
    assert set(it.responses) == {"Call a locksmith.", "Use a bobby pin."}
    assert it.responses[it.reference] == "Call a locksmith."


def test_hh_response_containing_turn_markers_stays_whole():
    row = {"chosen": HH + "Sure.\n\nHuman: thanks\n\nAssistant: np", "rejected": HH + "No."}
    (it,) = load_comparisons([row])
    assert it.responses[it.reference] == "Sure.\n\nHuman: thanks\n\nAssistant: np"


DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh_harmless_dev.jsonl"


@pytest.mark.skipif(not DEV.exists(), reason="../shared/data is not beside this checkout")
def test_dev_data_loads_all_289_rows():
    items = load_comparisons(DEV)
    assert len(items) == 289 and not items.skipped
    assert all(it.reference in (0, 1) for it in items)
    assert 100 < sum(it.reference for it in items) < 189


def test_kway_rows():
    (it,) = load_comparisons([{"prompt": "q", "responses": ["a", "b", "c"], "reference": 2}])
    assert it.k == 3 and it.reference == 2


def test_parquet_and_datasets(tmp_path):
    import datasets
    import pandas as pd

    rows = [{"prompt": "q", "response_a": "x", "response_b": "y"},
            {"prompt": "r", "response_a": "u", "response_b": "v"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    from_parquet = load_comparisons(tmp_path / "d.parquet")
    from_hf = load_comparisons(datasets.Dataset.from_list(rows))
    assert [i.id for i in from_parquet] == [i.id for i in from_hf] == \
        [i.id for i in load_comparisons(rows)]


@pytest.mark.parametrize("row,field", [
    ({"prompt": "q", "response_a": "x"}, "response_b"),
    ({"prompt": "q", "response_a": "x", "response_b": 3}, "response_b"),
    ({"prompt": "", "response_a": "x", "response_b": "y"}, "prompt"),
    ({"prompt": "q", "responses": ["a"]}, "responses"),
    ({"prompt": "q", "response_a": "x", "response_b": "y", "reference": "c"}, "reference"),
    ({"chosen": "no markers", "rejected": "here"}, "rejected"),
    ({"prompt": "q", "chosen": "same", "rejected": "same"}, "rejected"),
])
def test_bad_rows_name_row_and_field(tmp_path, row, field):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q", "response_a": "x",
                                                 "response_b": "y"}, row])
    with pytest.raises(DataError) as exc:
        load_comparisons(path)
    msg = str(exc.value)
    assert "bad.jsonl" in msg and "row 2" in msg and f"field '{field}'" in msg


def test_invalid_json_and_unknown_shape(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "q", "response_a": "x", "response_b": "y"}\n{oops\n{"foo": 1}\n')
    with pytest.raises(DataError, match="row 2: invalid JSON"):
        load_comparisons(path)
    items = load_comparisons(path, skip_bad=True)
    assert len(items) == 1
    assert [r for r, _ in items.skipped] == [2, 3]
    assert "unrecognised row shape" in items.skipped[1][1]


def test_unsupported_file_type(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_comparisons(tmp_path / "d.csv")


def test_split_hh_rejects_text_without_markers():
    with pytest.raises(ValueError):
        split_hh_dialogue("hello")
