"""vLLM needs a GPU; this test runs only where `vllm` imports (see benchmarks/gpu_check.py)."""

import importlib.util

import pytest

from oversight.backends import VLLMBackend
from oversight.errors import BackendError


def test_missing_vllm_names_the_pip_line():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(BackendError, match=r"pip install 'oversight\[vllm\]'"):
        VLLMBackend("some/model").load()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm not installed")
def test_vllm_verdicts_match_the_transformers_backend(pairs):  # pragma: no cover - GPU only
    """The same model (the embedded default, converted to safetensors, so no network) in vLLM
    and in transformers, both in float32: every judgment is a log-prob verdict, and each
    P(first better) agrees within 0.02, so the verdicts (which side > 0.5) are the same."""
    from oversight import Critic, TransformersBackend
    from oversight.backends import default_model_path
    from oversight.constitution import builtin

    path = str(default_model_path())
    vllm = VLLMBackend(path, dtype="float32", gpu_memory_utilization=0.3)
    local = TransformersBackend(path, device="cuda")
    got = Critic(builtin("harmlessness"), vllm, principles=1).judge(pairs[:2])
    want = Critic(builtin("harmlessness"), local, principles=1).judge(pairs[:2])
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        assert (g.item_id, g.principle, g.order) == (w.item_id, w.principle, w.order)
        assert g.status == w.status == "ok", (g.reason, w.reason)
        assert abs(g.value - w.value) < 0.02
        assert (g.value > 0.5) == (w.value > 0.5)
