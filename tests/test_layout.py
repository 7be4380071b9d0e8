"""Concept homes: each concept is importable from its package, old locations still work for
one release with a DeprecationWarning naming the new home, and serve no longer needs train."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

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
RENAMED = [("oversight.train", "MODES", "oversight.train", "TRAINERS")]


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



@pytest.mark.parametrize(("old", "name", "new", "new_name"), RENAMED)
def test_renamed_names_warn_and_return_the_new_object(old, name, new, new_name):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{new_name}"):
        alias = getattr(importlib.import_module(old), name)
    assert alias is getattr(importlib.import_module(new), new_name)


def test_trainers_and_judging_modes_have_different_names():
    import oversight.critics
    import oversight.train

    assert oversight.critics.MODES == ("pairwise", "score", "passfail", "likelihood")
    assert oversight.train.TRAINERS == ("sft", "reward", "dpo", "kto", "grpo", "rloo")
    assert "MODES" not in oversight.train.__all__


def test_every_name_the_readme_imports_from_oversight_exists():
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    found = re.findall(r"^\s*from (oversight(?:\.\w+)*) import ([\w, ]+)$", readme, re.M)
    assert len(found) >= 5
    for module, names in found:
        mod = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(mod, name), f"README: from {module} import {name}"
            if module == "oversight":
                assert name in mod.__all__, name


def test_top_level_exports_what_users_reach_for_and_stays_light():
    code = (
        "import sys, oversight\n"
        "names = ['OpenAIBackend', 'VLLMBackend', 'StoreBusyError', 'AggregationWarning',"
        " 'PanelScorer', 'DEFAULT_MODEL']\n"
        "missing = [n for n in names if n not in oversight.__all__]\n"
        "assert not missing, missing\n"
        "assert 'pandas' not in sys.modules\n"
        "from oversight import PanelRules\n"  # lazy: loads the aggregation layer on access
        "import oversight.aggregate\n"
        "assert PanelRules is oversight.aggregate.PanelRules and 'PanelRules' in dir(oversight)\n"
        "assert 'PanelRules' in oversight.__all__\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_default_model_has_one_name(monkeypatch):
    from oversight import DEFAULT_MODEL, TransformersBackend
    from oversight.backends import _default_model
    from oversight.train import resolve_model

    assert DEFAULT_MODEL == "SmolLM2-135M-Instruct-Q4_1"
    for spelling in (None, "default", DEFAULT_MODEL):
        backend = TransformersBackend(spelling)  # lazy: nothing loads here
        assert backend.model_id == DEFAULT_MODEL
        assert backend.fingerprint() == f"transformers:{DEFAULT_MODEL}:float32"
        assert backend.spec().kwargs["model"] is None
    assert TransformersBackend("some/other-model").model_id == "some/other-model"
    monkeypatch.setattr(_default_model, "default_model_path", lambda log=None: "/cache/x")
    assert resolve_model("default") == resolve_model(DEFAULT_MODEL) == "/cache/x"
    assert resolve_model("some/other-model") == "some/other-model"


def test_cli_app_only_assembles_command_modules():
    """Issue 14 §3: `_app.py` defines no command and imports nothing late; every command's
    callback lives in its group's own module under oversight/cli/."""
    import ast

    from typer.main import get_command

    from oversight.cli import app

    tree = ast.parse((Path(__file__).parent.parent / "oversight/cli/_app.py").read_text())
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert funcs == ["main"]
    kinds = [isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body
             if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert kinds == sorted(kinds, reverse=True), "an import after the first statement"
    group = get_command(app)
    modules = {}
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None) or {name: cmd}
        for sub in subs.values():
            modules[f"{name} {sub.name}"] = sub.callback.__module__
    assert len(modules) >= 25
    assert {m for m in modules.values() if m == "oversight.cli._app"} == set()
    assert all(m.startswith("oversight.cli._") for m in modules.values()), modules
