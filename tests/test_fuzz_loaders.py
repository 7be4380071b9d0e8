"""Property-based fuzzing (hypothesis) of the three loaders a user feeds files to.

For any input, a loader either succeeds or raises its own error type (never another
exception), and the message names the file and the row, principle, field or line at fault.
The panel-file loader runs only source assembled from a fixed list of harmless fragments.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oversight.cli._panelfile import load_panel
from oversight.constitution import load_constitution, parse_constitution
from oversight.data import load_comparisons
from oversight.errors import ConstitutionError, DataError, PanelFileError
from oversight.panel import Panel

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
DATA_KEYS = ["prompt", "response_a", "response_b", "chosen", "rejected", "responses",
             "reference", "id", "topic", "role", "content"]
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", 3]),
                                 "content": st.one_of(st.text(max_size=10), st.none())})
field_values = (json_values | st.lists(message, max_size=3)
                | st.sampled_from(["\n\nHuman: hi\n\nAssistant: a", "\n\nHuman: hi", ""]))
rows = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(DATA_KEYS), field_values, max_size=5),
)


def _row_of(message: str) -> int | None:
    m = re.search(r": row (\d+)", message)
    return int(m.group(1)) if m else None


@FUZZ
@given(st.lists(rows, min_size=1, max_size=6))
def test_data_loader_rows(tmp_path_factory, recs):
    path = tmp_path_factory.mktemp("fuzz") / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    try:
        items = load_comparisons(path)
    except DataError as exc:
        msg = str(exc)
        assert msg.startswith(f"{path}: row ") and exc.row is not None
        assert 1 <= exc.row <= len(recs)
        assert "\n" not in msg
        return
    assert len(items) == len(recs)
    skipped = load_comparisons(path, skip_bad=True)
    assert len(skipped) == len(recs) and not skipped.skipped


@FUZZ
@given(st.binary(max_size=200))
def test_data_loader_raw_bytes(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "d.jsonl"
    path.write_bytes(blob)
    try:
        load_comparisons(path)
    except DataError as exc:
        assert str(exc).startswith(f"{path}: row ") and exc.row is not None
    res = load_comparisons(path, skip_bad=True)  # every bad row is skippable and named
    assert all(str(path) in reason and f"row {row}" in reason for row, reason in res.skipped)


VALID = {
    "constitution": {"name": "fuzz", "version": "1", "description": "d"},
    "principles": [{"id": "be-kind", "statement": "s", "critique_request": "c",
                    "revision_request": "r", "comparison_question": "q"}],
}
HEADER_KEYS = ["name", "version", "description", "extra"]
PRINCIPLE_KEYS = ["id", "statement", "critique_request", "revision_request",
                  "comparison_question", "weight", "kind", "tags", "extra"]
toml_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                        st.text(max_size=12), st.lists(st.text(max_size=5) | st.integers(),
                                                       max_size=3),
                        st.sampled_from(["soft", "veto", "be-kind", "Bad Id", ""]))


@st.composite
def mutated_constitutions(draw):
    doc = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["header", "principle", "top", "add_principle"]))
        principles = doc.get("principles")
        tables = [t for t in principles if isinstance(t, dict)] \
            if isinstance(principles, list) else []
        if (where == "header" and not isinstance(doc.get("constitution"), dict)) \
                or (where in ("principle", "add_principle") and not tables):
            where = "top"
        if where == "header":
            table, keys = doc["constitution"], HEADER_KEYS
        elif where == "top":
            table, keys = doc, ["constitution", "principles", "extra"]
        elif where == "add_principle":
            principles.append(dict(VALID["principles"][0]))
            continue
        else:
            table, keys = draw(st.sampled_from(tables)), PRINCIPLE_KEYS
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(toml_values)
    return doc


@FUZZ
@given(mutated_constitutions())
def test_constitution_structure(doc):
    try:
        c = parse_constitution(doc, "fuzz.toml")
    except ConstitutionError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml: ") and "\n" not in msg
        assert exc.field is not None or exc.principle is not None, msg
        return
    assert len(c) >= 1 and all(p.weight > 0 for p in c.principles)


@FUZZ
@given(st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
       | st.binary(max_size=300))
def test_constitution_file_bytes(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.toml"
    path.write_bytes(blob)
    try:
        load_constitution(path)
    except ConstitutionError as exc:
        msg = str(exc)
        assert msg.startswith(f"{path}: ")
        assert exc.field is not None or exc.principle is not None \
            or re.search(r"invalid TOML|not UTF-8|nested too deeply", msg), msg


PANEL_FRAGMENTS = [
    "from oversight import Critic, FunctionBackend, Panel",
    "from oversight.constitution import builtin",
    "import sys",
    "b = FunctionBackend(lambda ctx: 'A', name='fuzz')",
    "c = Critic(builtin('honesty'), b, principles=1)",
    "c = Critic(builtin('nope'), b)",
    "c = Critic(builtin('honesty'), b, mode='vibes')",
    "panel = Panel([c])",
    "panel = Panel([])",
    "panel = Panel([c, c])",
    "panel = None",
    "panel = c",
    "def build_panel():\n    return Panel([c])",
    "def build_panel():\n    raise KeyError('k')",
    "def build_panel():\n    sys.exit(0)",
    "raise RuntimeError('no\\nGPU')",
    "sys.exit(4)",
    "exit()",
    "x = 1 / 0",
    "import not_a_module_anywhere",
    "panel = (",
    "\x00",
    "undefined_name",
]


@FUZZ
@given(st.lists(st.sampled_from(PANEL_FRAGMENTS), max_size=6) | st.text(max_size=60).map(
    lambda t: [t]))
def test_panel_file(tmp_path_factory, fragments):
    path = tmp_path_factory.mktemp("fuzz") / "panel.py"
    path.write_bytes("\n".join(fragments).encode("utf-8", "surrogatepass"))
    try:
        panel = load_panel(path)
    except PanelFileError as exc:
        msg = str(exc)
        assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
        return
    assert isinstance(panel, Panel)


def test_fuzz_grammar_reaches_success(tmp_path):
    """The fragments can build a real panel, and VALID is valid: the fuzz is not one-sided."""
    p = tmp_path / "p.py"
    p.write_text("\n".join(PANEL_FRAGMENTS[:5] + ["panel = Panel([c])"]))
    assert isinstance(load_panel(p), Panel)
    assert parse_constitution(json.loads(json.dumps(VALID)), "fuzz.toml").name == "fuzz"
