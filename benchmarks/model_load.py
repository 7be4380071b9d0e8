"""First load of the default model (GGUF dequantize) against a later load (safetensors cache).

Run:  python benchmarks/model_load.py

Both loads run in this process. The baseline is what every load would cost without the
cache: transformers reading the GGUF file and dequantizing it. Prints a BENCH line.
"""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM

from oversight.backends import default_model_path, fetch_gguf


def main() -> None:
    torch.set_num_threads(2)
    gguf = fetch_gguf()
    cached = default_model_path()  # converts once if the cache is empty (not timed here)

    t0 = time.perf_counter()
    m_gguf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    gguf_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    m_cached = AutoModelForCausalLM.from_pretrained(str(cached), dtype=torch.float32)
    cached_s = time.perf_counter() - t0

    ids = torch.tensor([[1, 504, 3458, 314, 2]])
    with torch.inference_mode():
        diff = (m_gguf(ids).logits - m_cached(ids).logits).abs().max().item()
    print(f"GGUF load (dequantize): {gguf_s:.2f} s; safetensors cache load: {cached_s:.2f} s; "
          f"max |logit diff| = {diff:.2e}")
    print(f"BENCH workload=model_load ours_s={cached_s:.3f} baseline_s={gguf_s:.3f} "
          f"ratio={gguf_s / cached_s:.1f} check=max_abs_logit_diff:{diff:.2e}")


if __name__ == "__main__":
    main()
