"""`oversight constitution ...`: validate, show, and govern constitutions (amend through a
gate, read and verify the hash-chained amendment log)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from oversight.cli._common import console, err, fail
from oversight.errors import OversightError

constitution_app = typer.Typer(no_args_is_help=True,
                               help="Validate, inspect and amend constitutions.")


@constitution_app.command("validate")
def constitution_validate(files: list[Path] = typer.Argument(
        ..., help="TOML files, or built-in names (harmlessness, helpfulness, ...)")) -> None:
    """Validate constitution files (or built-ins by name); print name, principle count, hash."""
    from oversight.constitution import load_constitution

    bad = 0
    for f in files:
        try:
            c = load_constitution(f)
        except OversightError as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            bad += 1
            continue
        n_ver = sum(p.is_verifier for p in c.principles)
        extra = f" ({n_ver} verifiers)" if n_ver else ""
        console.print(f"ok {f}: {c.name} v{c.version}, {len(c)} principles{extra}, "
                      f"hash {c.hash}", highlight=False)
    if bad:
        raise typer.Exit(2)


@constitution_app.command("show")
def constitution_show(file: Path = typer.Argument(
        ..., help="A TOML file, or a built-in name (harmlessness, helpfulness, ...)"),
        toml: bool = typer.Option(False, "--toml", help="Print it as canonical TOML (same "
                                  "content hash), e.g. to copy a built-in and amend it")
        ) -> None:
    """Show a constitution's principles as a table."""
    from oversight.constitution import amendment_label, amendment_of, load_constitution, to_toml

    try:
        c = load_constitution(file)
    except OversightError as exc:
        fail(exc)
    if toml:
        print(to_toml(c), end="")
        return
    label = amendment_label(amendment_of(c.path, c.hash)) if c.path else None
    t = Table(title=f"{c.name} v{c.version} (hash {c.hash}"
              + (f", {label}" if label else "") + ")", caption=c.description, show_lines=True)
    for col in ("id", "kind", "weight", "statement", "comparison question / verifier"):
        t.add_column(col)
    for p in c.principles:
        ask = (json.dumps(p.verifier.to_dict(), ensure_ascii=False) if p.verifier
               else p.comparison_question)
        t.add_row(p.id, "[red]veto[/]" if p.kind == "veto" else p.kind, f"{p.weight:g}",
                  p.statement, ask)
    console.print(t)


def _backend(model: str) -> Any:
    """'default' (the embedded SmolLM2), 'function:package.module:callable' (a scripted
    judge), or any Hugging Face model id or local path."""
    from oversight.backends import FunctionBackend, TransformersBackend

    if model == "default":
        return TransformersBackend()
    if model.startswith("function:"):
        from oversight.constitution._verifiers import resolve

        try:
            fn = resolve(model.removeprefix("function:"))
        except ValueError as exc:
            fail(f"--model {model}: {exc}")
        return FunctionBackend(fn, name=model)
    return TransformersBackend(model)


def _fmt(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


@constitution_app.command("amend")
def constitution_amend(
    file: Path = typer.Argument(..., help="The constitution TOML to amend"),
    propose: Path = typer.Option(..., "--propose", help="CHANGE.toml: add, edit, remove"),
    labels: Path = typer.Option(..., "--labels", help="Labelled pairs (JSONL with a "
                                "reference, e.g. chosen/rejected) the gate judges"),
    model: str = typer.Option("default", help="Backend for model principles: 'default', "
                              "'function:pkg.mod:fn', or a HF id/path"),
    approve: list[str] = typer.Option([], "--approve", help="A named approver (repeat)"),
    gate_file: Path | None = typer.Option(None, "--gate", help="Gate TOML (default: "
                                          "FILE's stem + .gate.toml beside it)"),
    limit: int | None = typer.Option(None, help="Judge only the first N labelled items"),
    store: Path | None = typer.Option(None, help="Judgment store to cache the gate's runs"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate, but write nothing"),
) -> None:
    """Propose an amendment; it is written and logged only if it passes the declared gate."""
    from oversight.data import load_comparisons
    from oversight.governance import amend, load_gate, load_proposal

    try:
        proposal = load_proposal(propose)
        gate = load_gate(gate_file) if gate_file else None
        items = list(load_comparisons(labels, limit=limit))
        res = amend(file, proposal, items, _backend(model), gate=gate, approvers=approve,
                    dry_run=dry_run, store=store)
    except OversightError as exc:
        fail(exc)
    f = res.gate.figures
    console.print(f"{res.old.name}: {res.old.hash} -> {res.new.hash}  ({proposal.summary})",
                  highlight=False)
    ch = res.changes
    console.print(f"changes: added {ch['added']}, removed {ch['removed']}, edited "
                  f"{ {k: sorted(v) for k, v in ch['edited'].items()} }", highlight=False)
    c = res.gate.checks
    lo, hi = f["agreement_drop_ci"]
    b = f["baselines"]
    va = c["veto_approval"]

    def verdict(name: str) -> str:
        return "pass" if c[name]["pass"] else "FAIL"

    for line in (
        f"gate on {f['n_items']} labelled items ({f['method']} over {f['model']}; needs "
        f">= {c['min_items']['bound']}  {verdict('min_items')}):",
        f"  agreement with labels   old {_fmt(f['agreement_old'])}  new "
        f"{_fmt(f['agreement_new'])}  drop {_fmt(f['agreement_drop'])} "
        f"[{_fmt(lo)}, {_fmt(hi)}] <= {c['agreement']['bound']}  {verdict('agreement')}",
        f"  baselines, same items   first shown / longer / shorter {_fmt(b['first shown'])} / "
        f"{_fmt(b['longer'])} / {_fmt(b['shorter'])}",
        f"  position consistency    old {_fmt(f['position_consistency_old'])}  new "
        f"{_fmt(f['position_consistency_new'])}  {verdict('position_consistency')}",
        f"  weakened vetoes         {', '.join(va['weakened']) or 'none'}; approvers "
        f"{va['approvers'] or '-'}  {verdict('veto_approval')}",
        f"  decisions changed       {f['decisions_changed']} of {f['n_items']}",
    ):
        console.print(line, highlight=False, markup=False)
    if not res.gate.accepted:
        for r in res.gate.reasons:
            err.print(f"rejected: {r}", highlight=False, markup=False)
        raise typer.Exit(1)
    if res.entry is None:
        console.print("accepted (dry run: nothing written)")
    else:
        console.print(f"accepted: {file} rewritten; log entry seq {res.entry['seq']} hash "
                      f"{res.entry['hash']}", highlight=False)


@constitution_app.command("log")
def constitution_log(file: Path) -> None:
    """List the amendments recorded for a constitution."""
    from oversight.constitution import log_path, read_log

    try:
        entries = read_log(log_path(file))
    except OversightError as exc:
        fail(exc)
    if not entries:
        fail(f"{log_path(file)}: no amendment log (the first `amend` creates it)")
    console.print(f"{log_path(file)}: {len(entries)} entries", highlight=False)
    for e in entries:
        g = e.get("gate") or {}
        fig = g.get("figures", {})
        gate = (f"agreement {_fmt(fig.get('agreement_old'))} -> "
                f"{_fmt(fig.get('agreement_new'))} on {fig.get('n_items')} items"
                if fig else "no gate (original)")
        console.print(f"#{e.get('seq')} {e.get('time')} {e.get('old_hash') or '-'} -> "
                      f"{e.get('new_hash')} hash {str(e.get('hash'))[:12]}\n"
                      f"    {e.get('summary')}\n    proposer {e.get('proposer') or '-'}; "
                      f"approvers {', '.join(e.get('approvers') or []) or '-'}; {gate}",
                      highlight=False, markup=False)


@constitution_app.command("diff")
def constitution_diff(file: Path, seq: int | None = typer.Option(
        None, help="Entry to show (default: the newest)")) -> None:
    """Print the diff an amendment recorded."""
    from oversight.constitution import log_path, read_log

    try:
        entries = read_log(log_path(file))
    except OversightError as exc:
        fail(exc)
    if not entries:
        fail(f"{log_path(file)}: no amendment log")
    pick = entries[-1] if seq is None else next((e for e in entries if e.get("seq") == seq),
                                                None)
    if pick is None:
        fail(f"{log_path(file)}: no entry with seq {seq}; seqs 0..{len(entries) - 1}")
    console.print(f"seq {pick.get('seq')}: {pick.get('summary')}", highlight=False)
    console.print(json.dumps(pick.get("changes"), indent=1, ensure_ascii=False),
                  highlight=False, markup=False)
    print(pick.get("diff") or "(no text diff: the original entry)")


@constitution_app.command("verify")
def constitution_verify(file: Path, expect_head: str | None = typer.Option(
        None, help="The head entry hash (or a prefix) kept elsewhere: also catches deleted "
        "newest entries")) -> None:
    """Check the amendment log's chain and that the file matches its head; exit 1 if not."""
    from oversight.constitution import verify_log

    check = verify_log(file, expect_head=expect_head)
    for n in check.notes:
        console.print(f"note: {n}", highlight=False, markup=False)
    if not check.ok:
        for p in check.problems:
            err.print(f"TAMPERED: {p}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"ok {file}: {check.entries} log entries, chain intact, file matches the "
                  f"head {check.head}", highlight=False)
