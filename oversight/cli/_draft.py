"""`oversight draft consensus|merge` and `oversight inverse`: who writes the constitution, and
which principles a set of preferences actually follows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from oversight.cli._common import console, fail
from oversight.errors import OversightError

draft_app = typer.Typer(no_args_is_help=True,
                        help="Participatory drafting: constitutions from stakeholders' votes.")


@draft_app.command("consensus")
def draft_consensus(
    votes: Path = typer.Argument(..., help="Votes: CSV/JSONL (participant, statement, vote "
                                 "[, statement_id]) or a Polis export folder / "
                                 "participants-votes.csv."),
    threshold: float = typer.Option(..., help="Keep statements whose group-aware consensus "
                                    "(product over groups of P(agree | group)) is >= this."),
    out: Path = typer.Option(..., help="Constitution TOML to write; its stem is its name."),
    k: int | None = typer.Option(None, help="Opinion groups; default: 2..5 by silhouette."),
    knn: int = typer.Option(5, help="Neighbours for imputing unseen votes (cosine kNN)."),
    seed: int = typer.Option(0, help="Seed for k-means."),
) -> None:
    """Draft a constitution from stakeholders' votes by group-aware consensus (CCAI)."""
    from oversight.governance import draft_constitution

    try:
        draft = draft_constitution(votes, threshold, k=k, knn=knn, seed=seed)
    except (OversightError, ValueError) as exc:
        fail(exc)
    c = draft.votes.counts()
    console.print(f"{c['participants']} participants, {c['statements']} statements, "
                  f"{c['votes']} votes ({c['agree']} agree, {c['disagree']} disagree, "
                  f"{c['pass']} pass; {c['unseen']} unseen, imputed for clustering only)",
                  highlight=False)
    sil = ", ".join(f"k={kk}: {s:.3f}" for kk, s in draft.silhouettes.items())
    console.print(f"{draft.k} opinion groups of sizes {draft.cluster_sizes} (silhouette {sil})",
                  highlight=False)
    t = Table(title=f"Group-aware consensus (kept: >= {threshold:g}); g<i>: P(agree | group i)")
    t.add_column("statement id", no_wrap=True, overflow="ellipsis", max_width=32)
    for col in ("consensus", *[f"g{g}" for g in range(draft.k)], "votes", "kept"):
        t.add_column(col, no_wrap=True, min_width=len(col))
    for r in draft.table().itertuples(index=False):
        row = r._asdict()
        t.add_row(str(row["statement_id"]), f"{row['consensus']:.3f}",
                  *[f"{row[f'p_agree_g{g}']:.2f}" for g in range(draft.k)], str(row["votes"]),
                  "yes" if row["kept"] else "")
    console.print(t)
    try:
        const = draft.write(out)
    except (OversightError, ValueError) as exc:
        fail(exc)
    console.print(f"wrote {out}: {const.name}, {len(const)} principles, hash {const.hash}",
                  highlight=False)


@draft_app.command("merge")
def draft_merge(
    constitutions: list[Path] = typer.Argument(..., help="One constitution per stakeholder."),
    out: Path = typer.Option(..., help="Panel file (Python) to write, for `oversight judge`."),
    weights: str = typer.Option("equal", help="equal | participants | votes (from each file's "
                                "[provenance]) | name=w,name=w,..."),
    model: str = typer.Option("default", help="HF id or local path; 'default' is SmolLM2."),
    principles: str = typer.Option("all", help="'all' or k principles sampled per item."),
) -> None:
    """Merge stakeholders' constitutions into one panel: a critic each, weighted by a rule."""
    from oversight.constitution import load_constitution
    from oversight.governance import stakeholder_weights

    try:
        consts = {}
        for f in constitutions:
            c = load_constitution(f)
            if c.name in consts:
                fail(f"{f}: stakeholder {c.name!r} appears twice")
            consts[c.name] = c
        rule: Any = weights
        if "=" in weights:
            rule = {}
            for part in weights.split(","):
                name, _, value = part.partition("=")
                try:
                    rule[name.strip()] = float(value)
                except ValueError:
                    fail(f"--weights: {part!r} is not name=number")
        w = stakeholder_weights(consts, rule)
    except (OversightError, ValueError) as exc:
        fail(exc)
    p_opt: Any = principles if principles == "all" else int(principles)
    paths = {n: str(Path(c.path or "").resolve()) for n, c in consts.items()}
    text = (
        f'"""Stakeholder panel written by `oversight draft merge` (weights: {weights}).\n\n'
        "Each stakeholder's constitution is one critic; the weights below are the declared rule's\n"
        "result, scaled to mean 1. Run: oversight judge --panel THIS_FILE --data ... --out ...\n"
        '"""\n\n'
        "from oversight import TransformersBackend\n"
        "from oversight.governance import merge_stakeholders\n\n"
        f"STAKEHOLDERS = {json.dumps(paths, indent=4)}\n"
        f"WEIGHTS = {json.dumps({n: round(x, 6) for n, x in w.items()}, indent=4)}\n\n"
        f"model = TransformersBackend({'' if model == 'default' else repr(model)})\n"
        "panel = merge_stakeholders(STAKEHOLDERS, model, weights=WEIGHTS, "
        f"principles={p_opt!r})\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    for n, x in w.items():
        console.print(f"{n}: weight {x:.3f} ({paths[n]})", highlight=False)
    console.print(f"wrote {out}; next: oversight judge --panel {out} --data PAIRS --out RUN, "
                  "then oversight report RUN (its principle-conflict graph shows where "
                  "stakeholders pull apart)", highlight=False)


def inverse_cmd(
    data: Path = typer.Option(..., help="Labelled pairs (.jsonl/.parquet; TRL or HH rows give "
                              "the human `chosen` as the label)."),
    out: Path = typer.Option(..., help="Output folder: inverse.toml, candidates.csv, "
                             "summary.csv and the judgment store."),
    pool: str = typer.Option("harmlessness,helpfulness,honesty,privacy,autonomy",
                             help="Shipped constitution names or TOML paths, comma-separated; "
                             "'' for none."),
    principles_file: Path | None = typer.Option(None, "--principles", help="Extra candidate "
                                                "principles, one statement per line."),
    generate: int = typer.Option(0, help="Also ask the model for a principle from each of the "
                                 "first N labelled pairs (ICAI's proposal step)."),
    labels_from: Path | None = typer.Option(None, help="Use a run's panel decisions as the "
                                            "labels instead of the data's reference."),
    method: str = typer.Option("vote", help="Aggregator for --labels-from."),
    model: str = typer.Option("default", help="HF id or local path; 'default' is SmolLM2."),
    n: int = typer.Option(5, help="Principles to keep."),
    min_relevance: float = typer.Option(0.1, help="Share of pairs a principle must be "
                                        "relevant on."),
    margin: float = typer.Option(0.1, help="|P(A) - 0.5| at or below this is 'not relevant'."),
    holdout: float = typer.Option(0.5, help="Share of pairs kept out of the selection."),
    limit: int | None = typer.Option(None, help="Only the first N pairs."),
    seed: int = typer.Option(0),
) -> None:
    """Inverse constitution: the few candidate principles that best reconstruct the labels."""
    from oversight.backends import TransformersBackend
    from oversight.cli._progress import judging_progress
    from oversight.constitution import builtin, load_constitution
    from oversight.data import load_comparisons
    from oversight.governance import (
        candidate_pool,
        generate_principles,
        infer_constitution,
        labels_from_items,
        principle_votes,
    )

    try:
        items = list(load_comparisons(data, limit=limit, seed=seed))
        labels = labels_from_items(items) if labels_from is None else _run_labels(labels_from,
                                                                                 method)
        consts = [load_constitution(p) if p.endswith(".toml") else builtin(p)
                  for p in (s.strip() for s in pool.split(",")) if p]
        extra: list[Any] = []
        if principles_file is not None:
            extra = [ln.strip() for ln in principles_file.read_text(encoding="utf-8")
                     .splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        backend = TransformersBackend(None if model == "default" else model)
        if generate:
            gen, skipped = generate_principles(items, labels, backend, limit=generate)
            console.print(f"generated {len(gen)} candidate principles ({len(skipped)} pairs "
                          "gave no usable sentence)", highlight=False)
            extra += gen
        cand = candidate_pool(consts, extra)
        console.print(f"{len(items)} pairs ({len(labels)} labelled), {len(cand)} candidate "
                      f"principles, {len(items) * len(cand) * 2} judgments", highlight=False)
        out.mkdir(parents=True, exist_ok=True)
        with judging_progress(console, "voting") as progress:
            votes = principle_votes(items, cand, backend, store=out / "store", margin=margin,
                                    progress=progress)
        res = infer_constitution(votes, labels, items=items, n=n, min_relevance=min_relevance,
                                 holdout=holdout, seed=seed, pool=cand)
    except (OversightError, ValueError, OSError) as exc:
        fail(exc)
    res.options["data"] = data.name
    res.options["labels"] = "reference" if labels_from is None else f"{labels_from}:{method}"
    t = Table(title=f"Candidates (relevance on {res.options['fit_pairs']} fitting pairs)")
    for col in ("principle", "relevance", "correct", "incorrect", "net", "chosen"):
        t.add_column(col)
    for r in res.candidates.head(15).itertuples(index=False):
        t.add_row(r.principle, f"{r.relevance:.2f}", str(r.correct), str(r.incorrect),
                  str(r.net), "yes" if r.chosen else "")
    console.print(t)
    s = Table(title="Reconstruction agreement with the labels (95% intervals)")
    for col in ("split", "method", "size", "n", "agreement", "interval", "decided"):
        s.add_column(col)
    for r in res.summary.itertuples(index=False):
        dec = "" if r.decided is None or (isinstance(r.decided, float) and math.isnan(r.decided)) \
            else str(int(r.decided))
        s.add_row(r.split, r.method, str(r.size), str(r.n), f"{r.agreement:.3f}",
                  f"[{r.ci_low:.3f}, {r.ci_high:.3f}]", dec)
    console.print(s)
    res.candidates.to_csv(out / "candidates.csv", index=False)
    res.summary.to_csv(out / "summary.csv", index=False)
    if res.chosen:
        const = res.write(out / "inverse.toml")
        console.print(f"wrote {out / 'inverse.toml'}: {len(const)} principles, hash "
                      f"{const.hash}", highlight=False)
    else:
        console.print("no candidate qualified (relevant on enough pairs with a positive net); "
                      "no inverse.toml written", highlight=False)


def _run_labels(run_dir: Path, method: str) -> dict[str, int]:
    from oversight.aggregate import aggregate
    from oversight.governance import labels_from_decisions
    from oversight.store import JudgmentStore, run_store

    with JudgmentStore(run_store(run_dir)) as db:
        items, frame = db.items(), db.to_frame()
    frame = frame[frame["critic"] != "human"]
    return labels_from_decisions(aggregate(frame, items, method=method).decisions)
