"""Concept homes: each concept is importable from its package, old locations still work for
one release with a DeprecationWarning naming the new home, and serve no longer needs train."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# (old module, name, new module): the name moved; the old spelling is a deprecated alias.
MOVED = [
    ("oversight.train", "PanelScorer", "oversight.panel"),
    ("oversight.train", "ScoredBatch", "oversight.panel"),
    ("oversight.train", "completion_text", "oversight.panel"),
    ("oversight.train._prompts", "load_prompts", "oversight.data"),
    ("oversight.cli._train", "load_training_data", "oversight.train"),
    ("oversight.aggregate", "AggregationWarning", "oversight.errors"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_old_location_warns_and_returns_the_same_object(old, name, new):
    target = getattr(importlib.import_module(new), name)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
        alias = getattr(importlib.import_module(old), name)
    assert alias is target
    assert name in getattr(importlib.import_module(new), "__all__", [name])


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_new_home_is_silent_and_old_names_are_not_exported(old, name, new):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        getattr(importlib.import_module(new), name)
    assert name not in getattr(importlib.import_module(old), "__all__", [])


def test_unknown_names_still_raise_attribute_error():
    import oversight.train

    with pytest.raises(AttributeError, match="'oversight.train' has no attribute 'nope'"):
        oversight.train.nope  # noqa: B018


def test_reward_server_builds_without_importing_train():
    code = (
        "import sys\n"
        "from conftest import scripted_pairwise\n"
        "from oversight import Critic, FunctionBackend, Panel\n"
        "from oversight.constitution import builtin\n"
        "from oversight.serve import create_reward_app\n"
        "panel = Panel([Critic(builtin('helpfulness'), FunctionBackend(scripted_pairwise,"
        " name='s'), name='s', principles=['clear-and-concise'])])\n"
        "create_reward_app(panel)\n"
        "bad = sorted(m for m in sys.modules if m.startswith('oversight.train'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(__import__("pathlib").Path(__file__).parent))
    assert proc.returncode == 0, proc.stderr

