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
def test_vllm_scores_choices(pairs):  # pragma: no cover - GPU only
    from oversight import Critic
    from oversight.constitution import builtin

    backend = VLLMBackend("HuggingFaceTB/SmolLM2-135M-Instruct", gpu_memory_utilization=0.3)
    js = Critic(builtin("harmlessness"), backend, principles=1).judge(pairs[:2])
    assert all(j.status in ("ok", "abstain") for j in js)
