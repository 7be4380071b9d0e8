"""The overoptimization harness, best-of-n: how gold reward moves as a proxy is optimized.

`best_of_n(prompts, policy=..., proxy=panel, gold=panel, objectives=[...], n_samples=N,
run_dir=...)` samples N completions per prompt once (kept in `samples.jsonl`, reused on a
rerun), scores each with every proxy and gold critic once through the run's JudgmentStore,
and for every n <= N computes the expected gold and proxy reward of the best-of-n choice under
each objective with the unbiased estimator (`oversight.experiments._bon`), at
KL = log n - (n - 1) / n, with percentile-bootstrap intervals over prompts, plus each
objective's hacking gap (gold at its peak minus gold at n = N).

The run directory (one owner: this module; `oversight report` renders it):
  overopt.json        format version, configuration, per-objective summary
  samples.jsonl       prompt index, sample index, text
  scores.csv          per (prompt, sample): each critic's support, gold, each objective
  bon.csv             objective, n, kl, sqrt_kl, gold, gold_lo, gold_hi, proxy, proxy_lo, ...
  judgments.sqlite    every judgment (the cache)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.data import Comparison
from oversight.errors import DataError
from oversight.experiments._bon import best_of_n as bon_estimate
from oversight.experiments._bon import bon_kl, bootstrap_means, hacking_gap
from oversight.experiments._objectives import (
    Objective,
    Scores,
    objective_values,
    parse_objective,
    sample_items,
    score_samples,
)

FORMAT_VERSION = 1
RUN_FILE = "overopt.json"
DEFAULT_BASELINE = "I'm not sure."


@dataclass(frozen=True)
class OveroptPrompt:
    """A prompt, its reference answer (for gold rules; never shown to proxies) and the fixed
    response that pairwise critics compare every sample with."""

    prompt: str | tuple[dict[str, str], ...]
    reference: str | None = None
    baseline: str | None = None

    @property
    def messages(self) -> tuple[dict[str, str], ...]:
        return Comparison(self.prompt, ("", "")).messages


def load_overopt_prompts(path: str | Path) -> list[OveroptPrompt]:
    """JSONL rows {"prompt": str | messages, "reference": str?, "baseline": str?}."""
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "no such prompts file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(str(path), f"not valid JSON ({exc.msg})", row=n) from None
        if not isinstance(row, dict) or "prompt" not in row:
            raise DataError(str(path), "a row needs a 'prompt' field (a string or chat "
                            "messages); optional: 'reference', 'baseline'", row=n)
        prompt = row["prompt"]
        if isinstance(prompt, list):
            prompt = tuple(dict(m) for m in prompt)
        elif not isinstance(prompt, str) or not prompt.strip():
            raise DataError(str(path), "must be a non-empty string or a list of chat messages",
                            row=n, field="prompt")
        for key in ("reference", "baseline"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise DataError(str(path), "must be a string", row=n, field=key)
        out.append(OveroptPrompt(prompt, row.get("reference"), row.get("baseline")))
    if not out:
        raise DataError(str(path), "no prompts")
    return out


def _as_prompts(prompts: Sequence[Any]) -> list[OveroptPrompt]:
    out = []
    for p in prompts:
        if isinstance(p, OveroptPrompt):
            out.append(p)
        elif isinstance(p, dict):
            out.append(OveroptPrompt(p["prompt"], p.get("reference"), p.get("baseline")))
        else:
            out.append(OveroptPrompt(p))
    return out


def sample_completions(policy: Any, prompts: Sequence[OveroptPrompt], n_samples: int, *,
                       max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> list[list[str]]:
    """N sampled completions per prompt from a backend's `generate` (one call per prompt)."""
    from oversight.backends import ChatPrompt

    if n_samples < 1:
        raise ValueError(f"n_samples={n_samples} must be >= 1")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0: best-of-n needs distinct "
                         "samples")
    out = []
    for i, p in enumerate(prompts):
        gens = policy.generate([ChatPrompt(p.messages)] * n_samples,
                               max_new_tokens=max_new_tokens, temperature=temperature,
                               seed=seed + i)
        out.append([g.text for g in gens])
        if progress:
            progress(f"sampled prompt {i + 1}/{len(prompts)}")
    return out


@dataclass
class OveroptResult:
    """The best-of-n tables and everything they came from."""

    table: pd.DataFrame  # bon.csv
    summary: dict[str, dict[str, float]]
    objectives: list[Objective]
    scores: pd.DataFrame  # scores.csv
    samples: list[list[str]]
    run_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def gold_at_max(self, objective: str) -> float:
        return float(self.summary[objective]["gold_last"])


def _samples_key(policy: Any, prompts: Sequence[OveroptPrompt], n: int, tokens: int,
                 temperature: float, seed: int) -> str:
    doc = {"policy": getattr(policy, "model_id", repr(policy)),
           "prompts": [[p.prompt, p.reference] for p in prompts], "n": n, "tokens": tokens,
           "temperature": temperature, "seed": seed}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_or_sample(run_dir: Path | None, policy: Any, prompts: list[OveroptPrompt],
                    n_samples: int, max_new_tokens: int, temperature: float, seed: int,
                    progress: Callable[[str], None] | None) -> tuple[list[list[str]], str]:
    key = _samples_key(policy, prompts, n_samples, max_new_tokens, temperature, seed)
    path = run_dir / "samples.jsonl" if run_dir is not None else None
    if path is not None and path.exists():
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        if rows and all(r.get("key") == key for r in rows) and len(rows) == len(prompts) * \
                n_samples:
            samples = [["" for _ in range(n_samples)] for _ in prompts]
            for r in rows:
                samples[r["prompt"]][r["sample"]] = r["text"]
            if progress:
                progress(f"reused {len(rows)} samples from {path}")
            return samples, key
    samples = sample_completions(policy, prompts, n_samples, max_new_tokens=max_new_tokens,
                                 temperature=temperature, seed=seed, progress=progress)
    if path is not None:
        with path.open("w", encoding="utf-8") as f:
            for i, row in enumerate(samples):
                for j, text in enumerate(row):
                    f.write(json.dumps({"key": key, "prompt": i, "sample": j, "text": text},
                                       ensure_ascii=False) + "\n")
    return samples, key


def best_of_n(prompts: Sequence[Any], *, proxy: Any, gold: Any,
              objectives: Sequence[str | Objective], n_samples: int = 16,
              policy: Any = None, samples: Sequence[Sequence[str]] | None = None,
              run_dir: str | Path | None = None, gold_objective: str | Objective = "mean",
              baseline: str = DEFAULT_BASELINE, ns: Sequence[int] | None = None,
              max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
              n_boot: int = 1000, batch_size: int = 64,
              progress: Callable[[str], None] | None = None) -> OveroptResult:
    """Run the best-of-n overoptimization experiment; see the module docstring.

    prompts: OveroptPrompt, {"prompt", "reference", "baseline"} dicts, or strings.
    proxy, gold: Panels (the gold is never optimized against: rules, human labels as a
    function critic, or a big model). objectives: strings for `parse_objective`.
    Give `policy` (a backend with `generate`) or precomputed `samples` ([P][N] texts).
    """
    t0 = time.perf_counter()
    plist = _as_prompts(prompts)
    objs = [parse_objective(o) for o in objectives]
    names = [o.name for o in objs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if not objs or dupes:
        raise ValueError("give at least one objective" if not objs else
                         f"objective names must be unique; repeated: {', '.join(dupes)} "
                         "(name them: 'LABEL=SPEC')")
    gobj = parse_objective(gold_objective)
    clash = {c.name for c in proxy.critics} & {c.name for c in gold.critics}
    if clash:
        raise ValueError(f"critic(s) {sorted(clash)} are in both the proxy and the gold panel: "
                         "the gold must be a judge the policy is never optimized against")
    rd = Path(run_dir) if run_dir is not None else None
    if rd is not None:
        rd.mkdir(parents=True, exist_ok=True)
    if samples is None:
        if policy is None:
            raise ValueError("give a policy (a backend with generate) or samples")
        smp, key = _load_or_sample(rd, policy, plist, n_samples, max_new_tokens, temperature,
                                   seed, progress)
    else:
        smp = [list(r) for r in samples]
        bad = [i for i, r in enumerate(smp) if len(r) != len(smp[0])]
        if len(smp) != len(plist) or bad:
            raise ValueError(f"samples must be [P][N]: {len(plist)} prompts, got {len(smp)} "
                             f"rows" + (f"; row {bad[0]} has {len(smp[bad[0]])} samples, row 0 "
                                        f"has {len(smp[0])}" if bad else ""))
        key = "given"
    big_n = len(smp[0])
    ns_list = list(ns) if ns is not None else list(range(1, big_n + 1))
    if not ns_list or min(ns_list) < 1 or max(ns_list) > big_n:
        raise ValueError(f"ns must lie in 1..{big_n} (the samples per prompt), got {ns_list}")
    ns_list = sorted(set(int(n) for n in ns_list))
    items = sample_items(plist, smp, [p.baseline or baseline for p in plist])
    store = rd / "judgments.sqlite" if rd is not None else None
    if progress:
        progress(f"scoring {len(plist)} x {big_n} samples with {len(proxy.critics)} proxy "
                 f"and {len(gold.critics)} gold critics")
    pscores = score_samples(proxy, items, store=store, batch_size=batch_size)
    gscores = score_samples(gold, items, store=store, batch_size=batch_size)
    gold_vals = objective_values(gobj, gscores)
    frame = _scores_frame(pscores, gscores, gold_vals)
    kl = bon_kl(np.array(ns_list))
    rows, summary = [], {}
    for o in objs:
        pv = objective_values(o, pscores)
        frame[f"obj:{o.name}"] = pv.reshape(-1)
        g, p = bon_estimate(pv, gold_vals, ns_list)
        gm, glo, ghi = bootstrap_means(g, n_boot, seed)
        pm, plo, phi = bootstrap_means(p, n_boot, seed)
        for j, n in enumerate(ns_list):
            rows.append({"objective": o.name, "spec": o.spec, "n": n, "kl": float(kl[j]),
                         "sqrt_kl": float(np.sqrt(kl[j])), "gold": gm[j], "gold_lo": glo[j],
                         "gold_hi": ghi[j], "proxy": pm[j], "proxy_lo": plo[j],
                         "proxy_hi": phi[j]})
        gap = hacking_gap(g, n_boot, seed)
        gap["peak_n"] = ns_list[int(gap.pop("peak_index"))]
        gap["proxy_last"] = float(pm[-1])
        gap["proxy_first"] = float(pm[0])
        gap["gold_first"] = float(gm[0])
        gap["proxy_abstain_rate"] = float(np.isnan(pv).mean())
        summary[o.name] = gap
    table = pd.DataFrame(rows)
    config = {"objectives": {o.name: o.spec for o in objs}, "gold_objective": gobj.spec,
              "proxy_critics": [c.config() for c in proxy.critics],
              "gold_critics": [c.config() for c in gold.critics],
              "n_prompts": len(plist), "n_samples": big_n, "ns": ns_list,
              "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
              "n_boot": n_boot, "baseline": baseline, "samples_key": key,
              "policy": getattr(policy, "model_id", None) if policy is not None else "given"}
    result = OveroptResult(table, summary, objs, frame, smp, rd, config)
    if rd is not None:
        write_run(result, seconds=time.perf_counter() - t0)
    return result


def _scores_frame(proxy: Scores, gold: Scores, gold_vals: np.ndarray) -> pd.DataFrame:
    frame = proxy.frame()
    g = gold.frame()
    for c in gold.critics:
        frame[f"gold:{c}"] = g[c]
    frame["gold"] = gold_vals.reshape(-1)
    frame["words"] = [len(it.responses[0].split()) for row in proxy.items for it in row]
    return frame


def write_run(result: OveroptResult, *, seconds: float = float("nan")) -> Path:
    """Write overopt.json, bon.csv and scores.csv into the result's run directory."""
    rd = result.run_dir
    if rd is None:
        raise ValueError("this result has no run directory")
    rd.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(rd / "bon.csv", index=False)
    result.scores.to_csv(rd / "scores.csv", index=False)
    doc = {"format": "oversight-overopt", "version": FORMAT_VERSION,
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "seconds": seconds, "config": result.config, "summary": result.summary,
           "objectives": [asdict(o) | {"name": o.name, "spec": o.spec}
                          for o in result.objectives]}
    prev = read_run(rd) if (rd / RUN_FILE).exists() else {}
    if "grpo" in prev:
        doc["grpo"] = prev["grpo"]
    (rd / RUN_FILE).write_text(json.dumps(doc, indent=2, default=_json_default),
                               encoding="utf-8")
    return rd / RUN_FILE


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return str(v)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """overopt.json of a run directory, checked for format and version."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise DataError(str(run_dir), f"no {RUN_FILE}; not an overoptimization run directory")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != "oversight-overopt" or doc.get("version") != FORMAT_VERSION:
        raise DataError(str(path), f"format {doc.get('format')!r} version "
                        f"{doc.get('version')!r}; this oversight reads oversight-overopt "
                        f"version {FORMAT_VERSION}")
    return doc
