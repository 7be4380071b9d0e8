"""Seeded sample of mutmut mutant names per mutated module (issue 13 §9).

Run after `mutmut run` has generated mutants/ (benchmarks/mutation.sh does both):
    python benchmarks/_mutation_sample.py N SEED   -> prints N mutant names per module
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def sample(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names: list[str] = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        keys = sorted(json.loads(meta.read_text())["exit_code_by_key"])
        names += sorted(rng.sample(keys, min(n, len(keys))))
    return names


if __name__ == "__main__":
    print("\n".join(sample(int(sys.argv[1]), int(sys.argv[2]))))
