"""`oversight overopt`: measure reward hacking, a single critic against panel objectives."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from oversight.cli._common import console, err, fail
from oversight.errors import DataError, OversightError

OBJECTIVE_HELP = ("Proxy objective, repeatable: critic:NAME | mean | wco | uwo[:LAMBDA] | veto | "
                  "agg:METHOD (vote, bt, ds, conservative, or any registered aggregator); "
                  "optional LABEL= prefix and @A+B sub-panel suffix, e.g. "
                  "'single=critic:lm', 'wco@lm+length'.")


def _read_samples(path: Path, n_prompts: int) -> list[list[str]]:
    rows: dict[int, dict[int, str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.setdefault(int(r["prompt"]), {})[int(r["sample"])] = str(r["text"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DataError(str(path), "a sample row is JSON with 'prompt' (index), "
                            "'sample' (index) and 'text'", row=n) from None
    missing = [p for p in range(n_prompts) if p not in rows]
    if missing:
        raise DataError(str(path), f"no samples for prompt index {missing[0]} "
                        f"({len(missing)} prompt(s) without samples)")
    sizes = {len(v) for v in rows.values()}
    if len(sizes) != 1:
        raise DataError(str(path), "every prompt needs the same number of samples; found "
                        f"{sorted(sizes)}")
    return [[rows[p][s] for s in sorted(rows[p])] for p in range(n_prompts)]


def overopt_cmd(
    prompts: Path = typer.Option(..., help="JSONL: {prompt, reference?, baseline?} per line."),
    proxy: Path = typer.Option(..., help="Panel file (.py) with the proxy critics."),
    gold: str = typer.Option("rules", help="Panel file (.py) for the gold judge (never "
                             "optimized against), or 'rules': answers (overlap with the "
                             "reference), length budget, no judge talk, safety veto."),
    objective: list[str] = typer.Option(..., "--objective", "-o", help=OBJECTIVE_HELP),
    gold_objective: str = typer.Option("veto", help="How the gold panel's critics combine "
                                       "(same syntax as --objective)."),
    out: Path = typer.Option(..., help="Run directory (resumable: samples and judgments are "
                             "reused)."),
    policy: str = typer.Option("default", help="Policy model: 'default' (SmolLM2-135M), an HF "
                               "id or a local path."),
    samples: Path | None = typer.Option(None, help="Precomputed samples JSONL ({prompt, "
                                        "sample, text}) instead of sampling a policy."),
    n: int = typer.Option(16, help="Samples per prompt (N); best-of-n for every n <= N."),
    max_new_tokens: int = typer.Option(64, help="Tokens per sampled completion."),
    temperature: float = typer.Option(1.0, help="Sampling temperature."),
    baseline: str = typer.Option("I'm not sure.", help="Response every sample is paired with "
                                 "(pairwise critics compare against it), unless the prompt "
                                 "row has 'baseline'."),
    budget: int = typer.Option(60, help="Length budget in words for --gold rules."),
    seed: int = typer.Option(0),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples over prompts."),
    grpo_steps: int = typer.Option(0, help="Also run GRPO for this many steps per objective "
                                   "(0 = best-of-n only)."),
    eval_every: int = typer.Option(5, help="GRPO: evaluate gold, proxy and KL every N steps."),
    eval_fraction: float = typer.Option(0.25, help="GRPO: share of prompts held out for "
                                        "evaluation (the rest train)."),
    eval_samples: int = typer.Option(4, help="GRPO: samples per held-out prompt."),
    num_generations: int = typer.Option(4, help="GRPO: completions per prompt per step."),
    learning_rate: float = typer.Option(1e-5, help="GRPO learning rate."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
) -> None:
    """Overoptimization: best-of-n (and optionally GRPO) against each proxy objective, scored
    by a gold judge. Writes bon.csv (gold and proxy per n with 95% bootstrap intervals over
    prompts, KL = log n - (n-1)/n), grpo.csv, overopt.json (hacking gap per objective: gold at
    its peak minus gold at the largest n), figures/ and report.html into --out."""
    from oversight.cli._panelfile import load_panel
    from oversight.experiments import best_of_n, load_overopt_prompts, rule_gold_panel

    t0 = time.perf_counter()
    try:
        plist = load_overopt_prompts(prompts)
        proxy_panel = load_panel(proxy)
        gold_panel = rule_gold_panel(budget) if gold == "rules" else load_panel(gold)
        smp = _read_samples(samples, len(plist)) if samples is not None else None
        backend = None
        if smp is None:
            from oversight import TransformersBackend

            backend = TransformersBackend() if policy == "default" else \
                TransformersBackend(policy)
        result = best_of_n(plist, proxy=proxy_panel, gold=gold_panel, objectives=objective,
                           gold_objective=gold_objective, n_samples=n, policy=backend,
                           samples=smp, run_dir=out, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed, n_boot=n_boot,
                           baseline=baseline,
                           progress=lambda m: err.print(m, highlight=False, markup=False))
        if grpo_steps > 0:
            from oversight.experiments import grpo_overopt
            from oversight.train import resolve_model

            k = max(1, int(round(len(plist) * eval_fraction)))
            if k >= len(plist):
                raise ValueError(f"eval_fraction={eval_fraction} leaves no training prompts "
                                 f"out of {len(plist)}")
            from transformers import AutoTokenizer

            path = resolve_model(policy)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            grpo_overopt(path, tokenizer, plist[k:], plist[:k],
                         proxy=proxy_panel, gold=gold_panel, objectives=objective,
                         gold_objective=gold_objective, run_dir=out, steps=grpo_steps,
                         eval_every=eval_every, eval_samples=eval_samples,
                         num_generations=num_generations, learning_rate=learning_rate,
                         max_completion_length=max_new_tokens, baseline=baseline, seed=seed,
                         n_boot=n_boot,
                         progress=lambda m: err.print(m, highlight=False, markup=False))
    except (OversightError, ValueError, KeyError) as exc:
        fail(exc)
        return
    t = Table(title=f"Best-of-n, N={result.config['n_samples']}: gold at n=1, at its peak and "
                    "at n=N; hacking gap (95% bootstrap CI)")
    for col in ("objective", "gold n=1", "peak (n)", "gold n=N", "gap", "gap 95% CI",
                "proxy n=N"):
        t.add_column(col, justify="left" if col == "objective" else "right")
    for name, v in result.summary.items():
        t.add_row(name, f"{v['gold_first']:.4f}", f"{v['gold_peak']:.4f} ({v['peak_n']})",
                  f"{v['gold_last']:.4f}", f"{v['gap']:.4f}",
                  f"[{v['gap_lo']:.4f}, {v['gap_hi']:.4f}]", f"{v['proxy_last']:.4f}")
    console.print(t)
    if not no_report:
        from oversight.report import write_overopt_report

        path = write_overopt_report(out)
        console.print(f"wrote {path} and {out / 'figures'}", highlight=False)
    console.print(f"overopt done in {time.perf_counter() - t0:.1f} s: {out}", highlight=False)
