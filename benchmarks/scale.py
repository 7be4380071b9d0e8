"""Scale-out: judging throughput on 1 Ray actor against 2, and the token counts behind SCALE.md.

Part 1 (throughput). One critic (harmlessness, 2 principles, both orders) on the embedded
SmolLM2-135M over the first N pairs of ../shared/data/hh_harmless_dev.jsonl, three ways, in one
run and on the same items:

  local     LocalExecutor, this process, torch on every core (the reference);
  1 actor   RayExecutor(actors_per_backend=1, resources={"num_cpus": 2}): 2 torch threads;
  2 actors  RayExecutor(actors_per_backend=2, resources={"num_cpus": 1}): 1 thread each.

Model loading is excluded (`RayExecutor.start` waits for it); each configuration first judges
two warm-up pairs that are not timed. The judgments of all three must agree within 1e-4.

Part 2 (tokens). Every pair of the dev file rendered with our pairwise template under all 5
constitutions x 8 principles x 2 orders, counted with the SmolLM2 tokenizer fixture: the full
prompt, the prefix shared by one item and order, and the per-principle suffix. SCALE.md turns
these into the cost of 10^6 pairs x 5 critics x 16 principles x 2 orders.

Run:  OVERSIGHT_CACHE=/tmp/ovcache nice -n 19 python benchmarks/scale.py [--pairs 12]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

from oversight import Critic, Panel, TransformersBackend, load_comparisons
from oversight.constitution import builtin
from oversight.panel import LocalExecutor, RayExecutor

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "hh_harmless_dev.jsonl"
TOKENIZER = ROOT / "tests" / "fixtures" / "smollm2_tokenizer"
CONSTITUTIONS = ("harmlessness", "helpfulness", "honesty", "privacy", "autonomy")


def panel() -> Panel:
    return Panel([Critic(builtin("harmlessness"), TransformersBackend(), principles=2, seed=0)])


def timed(p: Panel, items, warm, executor, batch_size: int) -> tuple[float, list]:
    p.judge(warm, executor=executor, batch_size=batch_size)
    t0 = time.perf_counter()
    result = p.judge(items, executor=executor, batch_size=batch_size)
    return time.perf_counter() - t0, result.judgment_rows


def throughput(n_pairs: int, batch_size: int) -> None:
    import ray

    pairs = list(load_comparisons(DATA, limit=n_pairs + 2))
    warm, items = pairs[:2], pairs[2:]
    p = panel()
    rows: dict[str, tuple[float, list]] = {}
    rows["local (in-process)"] = timed(p, items, warm, LocalExecutor(), batch_size)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for label, n, cpus in (("1 actor x 2 threads", 1, 2), ("2 actors x 1 thread", 2, 1)):
        with RayExecutor(actors_per_backend=n, resources={"num_cpus": cpus}) as ex:
            load_s = ex.start(p.critics)
            print(f"{label}: actors ready in {load_s:.1f} s (not timed)")
            rows[label] = timed(p, items, warm, ex, batch_size)
    ray.shutdown()

    ref = {(j.item_id, j.principle, j.order): j.value for j in rows["local (in-process)"][1]}
    n = len(ref)
    print(f"\n{len(items)} pairs, {n} judgments, units of ~{batch_size} tasks, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'configuration':24s} {'seconds':>8s} {'judgments/s':>12s} {'max |dP| vs local':>18s}")
    for label, (secs, got) in rows.items():
        diff = max(abs(j.value - ref[(j.item_id, j.principle, j.order)]) for j in got)
        print(f"{label:24s} {secs:8.2f} {n / secs:12.2f} {diff:18.2e}")
        assert len(got) == n and diff < 1e-4, f"{label}: results differ from local ({diff})"
    one, two, local = (rows[k][0] for k in ("1 actor x 2 threads", "2 actors x 1 thread",
                                             "local (in-process)"))
    print(f"BENCH workload=scale ours_s={two:.2f} baseline_s={one:.2f} ratio={one / two:.2f} "
          f"local_s={local:.2f} ray1_vs_local={local / one:.2f} judgments={n} "
          f"cores={os.cpu_count()}")


def common_prefix(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != first[i] for s in seqs):
            return i
    return n


def tokens() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    # Only the tokenizer is used: a placeholder stands in for the model.
    backend = TransformersBackend(model_obj=object(), tokenizer=tok, model_id="smollm2-tok")
    critics = [Critic(builtin(name), backend, principles="all") for name in CONSTITUTIONS]
    items = list(load_comparisons(DATA))
    full, item_prefix, critic_prefix, suffix = [], [], [], []
    for item in items:
        tasks_by_order: dict[str, list[list[int]]] = {}
        for critic in critics:
            prepared = critic.prepare(critic.tasks([item]))
            by_order: dict[str, list[list[int]]] = {}
            for task, req in zip(prepared.tasks, prepared.requests):
                ids = backend.render(req.prompt)
                full.append(len(ids))
                by_order.setdefault(task.order, []).append(ids)
                tasks_by_order.setdefault(task.order, []).append(ids)
            for seqs in by_order.values():
                lcp = common_prefix(seqs)
                critic_prefix.append(lcp)
                suffix.extend(len(s) - lcp for s in seqs)
        for seqs in tasks_by_order.values():
            item_prefix.append(common_prefix(seqs))
    print(f"\nTokens (SmolLM2 tokenizer, pairwise template, {len(items)} HH dev pairs, "
          f"{len(CONSTITUTIONS)} constitutions x 8 principles x 2 orders):")
    for name, xs in (("full prompt", full), ("prefix shared by a critic's principles (one "
                                                       "item, order)", critic_prefix),
                     ("prefix shared by all 5 critics (one item, order)", item_prefix),
                     ("suffix per principle", suffix)):
        q = statistics.quantiles(xs, n=20)
        print(f"  {name:58s} mean {statistics.mean(xs):7.1f}  median {statistics.median(xs):6.0f}"
              f"  p95 {q[-1]:6.0f}")
    pref, suf = statistics.mean(critic_prefix), statistics.mean(suffix)
    f = statistics.mean(full)
    pairs, n_critics, n_princ, orders = 10**6, 5, 16, 2
    judgments = pairs * n_critics * n_princ * orders
    naive = judgments * f
    reuse = pairs * orders * n_critics * (pref + n_princ * suf)
    print(f"10^6 pairs x 5 critics x 16 principles x 2 orders = {judgments:.3g} judgments")
    print(f"  prefill tokens, no reuse:            {naive:.3g}")
    shared = pairs * orders * (pref + n_critics * n_princ * suf)
    print(f"  prefill tokens, shared prefix/critic: {reuse:.3g}  ({naive / reuse:.2f}x fewer)")
    print(f"  prefill tokens, 5 critics on 1 model: {shared:.3g}  ({naive / shared:.2f}x fewer)")
    print(f"  prefill requests (vLLM): {judgments:.3g} either way; rows in our transformers "
          f"path: {judgments:.3g} full prompts naive, or {pairs * orders * n_critics:.3g} "
          f"prefixes + {judgments:.3g} suffix rows (~{suf:.0f} tokens) on their cached KV")
    for size, params in (("8B", 8.0e9), ("70B", 70.6e9)):
        flops = 2 * params
        for gpu, peak in (("H100", 989e12), ("A100", 312e12)):
            tps = 0.5 * peak / flops
            print(f"  {size} on {gpu} at 50% MFU: {tps:8.0f} tok/s/GPU -> 5 critics "
                  f"{naive / tps / 3600:9.0f} GPU-h naive, {reuse / tps / 3600:8.0f} GPU-h reuse")
    assert math.isfinite(naive)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--tokens-only", action="store_true")
    args = ap.parse_args()
    tokens()
    if not args.tokens_only:
        throughput(args.pairs, args.batch_size)


if __name__ == "__main__":
    main()
