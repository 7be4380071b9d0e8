"""The overoptimization section: figures and a self-contained HTML page for an overopt run.

Reads only the run directory's files (overopt.json, bon.csv, grpo.csv when GRPO ran), so it
needs nothing from the experiment code:
  gold_vs_kl     gold reward against sqrt(KL) per objective, bootstrap band over prompts
  proxy_vs_gold  proxy reward against gold reward along each objective's optimization path
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from oversight.errors import DataError
from oversight.report._plots import _color_of, _figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RUN_FILE = "overopt.json"


def is_overopt_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / RUN_FILE).is_file()


def _load(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]:
    if not is_overopt_run(run_dir):
        raise DataError(str(run_dir), f"no {RUN_FILE}; not an overoptimization run directory")
    doc = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    bon = pd.read_csv(run_dir / "bon.csv") if (run_dir / "bon.csv").exists() else None
    grpo = pd.read_csv(run_dir / "grpo.csv") if (run_dir / "grpo.csv").exists() else None
    return doc, bon, grpo


def gold_vs_kl(table: pd.DataFrame, x: str = "sqrt_kl", title: str | None = None) -> Figure:
    """Gold reward against sqrt(KL) (or `x`), one line per objective, with its interval."""
    names = list(dict.fromkeys(table["objective"]))
    colors = _color_of(names)
    fig, ax = _figure(7.5, 4.4)
    for name in names:
        sub = table[table["objective"] == name].sort_values(x)
        ax.plot(sub[x], sub["gold"], marker="o", ms=3, lw=1.6, color=colors[name], label=name)
        if sub["gold_lo"].notna().any():
            ax.fill_between(sub[x], sub["gold_lo"], sub["gold_hi"], color=colors[name],
                            alpha=0.12, lw=0)
    ax.set_xlabel("sqrt(KL) from the initial policy (nats^0.5)" if x != "step" else "step")
    ax.set_ylabel("gold reward")
    ax.set_title(title or "Gold reward under optimization against each proxy objective",
                 loc="left")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    return fig


def proxy_vs_gold(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Each objective's own (proxy) reward against gold along its optimization path."""
    names = list(dict.fromkeys(table["objective"]))
    colors = _color_of(names)
    fig, ax = _figure(7.5, 4.4)
    order = "n" if "n" in table else "step"
    for name in names:
        sub = table[table["objective"] == name].sort_values(order)
        ax.plot(sub["proxy"], sub["gold"], marker="o", ms=3, lw=1.4, color=colors[name],
                label=name)
        ax.annotate("", xy=(sub["proxy"].iloc[-1], sub["gold"].iloc[-1]),
                    xytext=(sub["proxy"].iloc[-2], sub["gold"].iloc[-2]) if len(sub) > 1
                    else None, arrowprops=dict(arrowstyle="->", color=colors[name]))
    ax.set_xlabel("proxy reward (the objective optimized)")
    ax.set_ylabel("gold reward")
    ax.set_title(title or "Proxy against gold: up and to the left is hacking", loc="left")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    return fig


def overopt_figures(run_dir: str | Path) -> dict[str, Figure]:
    """The run's figures by file stem (best-of-n, and GRPO when it ran)."""
    rd = Path(run_dir)
    _doc, bon, grpo = _load(rd)
    figs: dict[str, Figure] = {}
    if bon is not None and len(bon):
        figs["gold_vs_kl"] = gold_vs_kl(bon, title="Best-of-n: gold reward against sqrt(KL)")
        figs["proxy_vs_gold"] = proxy_vs_gold(bon, title="Best-of-n: proxy against gold")
    if grpo is not None and len(grpo):
        figs["grpo_gold_vs_kl"] = gold_vs_kl(grpo, title="GRPO: gold reward against "
                                             "sqrt(measured KL)")
        figs["grpo_proxy_vs_gold"] = proxy_vs_gold(grpo, title="GRPO: proxy against gold")
    return figs


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if math.isnan(v) else f"{v:.{digits}f}"
    return html.escape(str(v))


def _summary_table(summary: dict[str, dict[str, Any]], specs: dict[str, str]) -> str:
    cols = [("gold_first", "gold n=1"), ("gold_peak", "gold at peak"), ("peak_n", "peak n"),
            ("gold_last", "gold at largest n"), ("gap", "hacking gap"), ("gap_lo", "gap lo"),
            ("gap_hi", "gap hi"), ("proxy_first", "proxy n=1"), ("proxy_last", "proxy largest n")]
    head = "<tr><th>objective</th><th>spec</th>" + "".join(f"<th>{h}</th>" for _, h in cols)
    rows = []
    for name, v in summary.items():
        cells = "".join(f'<td class="num">{_fmt(v.get(k, math.nan))}</td>' for k, _ in cols)
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(specs.get(name, ''))}"
                    f"</td>{cells}</tr>")
    return f"<table>{head}</tr>{''.join(rows)}</table>"


def render_overopt_html(run_dir: str | Path) -> str:
    """One self-contained page: configuration, summary, figures, the full tables."""
    from oversight.report._html import _CSS, CSP, _img

    rd = Path(run_dir)
    doc, bon, grpo = _load(rd)
    cfg = doc.get("config", {})
    gold_names = ", ".join(c["name"] for c in cfg.get("gold_critics", []))
    proxy_names = ", ".join(c["name"] for c in cfg.get("proxy_critics", []))
    parts = [f"<h1>Overoptimization: {html.escape(rd.name)}</h1>",
             f'<div class="meta">{cfg.get("n_prompts", "?")} prompts x '
             f'{cfg.get("n_samples", "?")} samples from {html.escape(str(cfg.get("policy")))}; '
             f'gold objective {html.escape(str(cfg.get("gold_objective")))} over '
             f"{html.escape(gold_names)}; proxy critics {html.escape(proxy_names)}"
             f"; written {html.escape(str(doc.get('created')))}</div>"]
    figs = overopt_figures(rd)
    specs = cfg.get("objectives", {})
    if bon is not None:
        parts.append("<section><h2>Best-of-n</h2>"
                     "<p>Expected gold and proxy reward of the best-of-n choice (unbiased "
                     "estimator over all n-subsets of the samples), KL = log n - (n-1)/n, "
                     "95% bootstrap intervals over prompts. Hacking gap = gold at its peak "
                     "minus gold at the largest n.</p>"
                     + _summary_table(doc.get("summary", {}), specs)
                     + _img(figs["gold_vs_kl"], "gold vs sqrt KL", "Gold reward against "
                            "sqrt(KL) per objective; bands: 95% bootstrap over prompts.")
                     + _img(figs["proxy_vs_gold"], "proxy vs gold", "Each objective's proxy "
                            "reward against gold as n grows (arrow: towards larger n).")
                     + "<details><summary>full table</summary>"
                     + bon.to_html(index=False, float_format=lambda v: f"{v:.4f}") +
                     "</details></section>")
    if grpo is not None:
        g = doc.get("grpo", {})
        parts.append("<section><h2>GRPO</h2>"
                     f"<p>{html.escape(str(g.get('note', '')))}</p>"
                     + _summary_table(g.get("summary", {}), g.get("objectives", {}))
                     + _img(figs["grpo_gold_vs_kl"], "GRPO gold vs sqrt KL", "Gold against "
                            "sqrt(measured KL to the initial policy) on held-out prompts.")
                     + _img(figs["grpo_proxy_vs_gold"], "GRPO proxy vs gold", "Proxy against "
                            "gold along training.")
                     + "<details><summary>full table</summary>"
                     + grpo.to_html(index=False, float_format=lambda v: f"{v:.4f}") +
                     "</details></section>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>overopt {html.escape(rd.name)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def write_overopt_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the figures (PNG, under RUN_DIR/figures) and report.html; return the HTML path."""
    from oversight.report._html import figure_png

    rd = Path(run_dir)
    figdir = rd / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    for stem, fig in overopt_figures(rd).items():
        (figdir / f"{stem}.png").write_bytes(figure_png(fig))
    target = Path(out) if out is not None else rd
    if target.suffix.lower() not in (".html", ".htm"):
        target = target / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_overopt_html(rd), encoding="utf-8")
    return target
