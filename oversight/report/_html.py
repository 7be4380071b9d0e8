"""A self-contained report.html: inline CSS, PNG figures as data: URIs, no scripts, no network.

The page carries a Content-Security-Policy that allows nothing but inline styles and data:
images, so a browser would refuse (and report) any attempt to fetch something.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.errors import OversightError
from oversight.report import _plots
from oversight.report._analysis import HUMAN, Analysis

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:1rem 1.5rem;color:#222;line-height:1.4;font-size:15px}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1rem;margin:.8rem 0 .3rem}
.meta{color:#555;font-size:.9rem}figure{margin:.8rem 0}figure img{max-width:100%;
height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #ddd;border-radius:6px;
padding:.5rem .8rem;min-width:8rem}.card b{display:block;font-size:1.3rem}
.item{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;margin:1rem 0}
.resp{white-space:pre-wrap;background:#fafafa;border-left:3px solid #bbb;padding:.3rem .6rem;
margin:.3rem 0;max-height:14rem;overflow:auto;font-size:.85rem}
.flag{display:inline-block;background:#fde8c8;border-radius:4px;padding:0 .35rem;
margin-right:.3rem;font-size:.8rem}.rat{white-space:pre-wrap;color:#333;font-size:.8rem}
details summary{cursor:pointer;color:#345}
"""


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A Figure rendered to PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _img(fig: Any, alt: str, caption: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, (float, np.floating)):
        return "–" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _verdict(v: Any) -> str:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return _LETTERS[int(v)] if 0 <= int(v) < len(_LETTERS) else str(v)
    return str(v)


def _table(df: pd.DataFrame, columns: dict[str, str], digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label in columns.values())
    body = []
    for r in df.to_dict("records"):
        cells = []
        for col in columns:
            v = r.get(col)
            cls = ' class="num"' if isinstance(v, (int, float, np.number)) else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v, digits))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def _contested_html(a: Analysis, n: int) -> str:
    out = []
    for d in a.contested(n).to_dict("records"):
        it = a.item(d["item_id"])
        flags = "".join(f'<span class="flag">{f}</span>' for f in
                        ("split", "veto_conflict", "position_inconsistent", "low_quorum",
                         "cycle") if d.get(f))
        ref = "" if it.reference is None else f", reference {_verdict(it.reference)}"
        parts = [f"<h3>{html.escape(d['item_id'])} {flags}</h3>",
                 f'<div class="meta">panel: {html.escape(_verdict(d["final"]))}, margin '
                 f"{_fmt(d['margin'], 2)}, P(A) {_fmt(d['p0'], 2)}, spread of critics' P(A) "
                 f"{_fmt(d['critic_p0_std'], 2)}{html.escape(ref)}</div>"]
        convo = "\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}"
                          for m in it.messages)
        parts.append(f"<details><summary>prompt ({len(it.messages)} turn(s)): "
                     f"{html.escape(it.prompt_text()[:160])}</summary>"
                     f'<div class="resp">{html.escape(convo)}</div></details>')
        for i, r in enumerate(it.responses):
            parts.append(f'<div><b>{_LETTERS[i]}</b><div class="resp">{html.escape(r)}</div>'
                         "</div>")
        rows = []
        for view in a.critic_views(d["item_id"]):
            sup = view["support"]
            sup_text = "–" if sup is None else ", ".join(
                f"{_LETTERS[k]} {_fmt(v, 2)}" for k, v in enumerate(sup))
            why = []
            for j in view["judgments"]:
                shown = ",".join(_LETTERS[int(x)] for x in str(j["order"]).split(",")
                                 if x.strip().isdigit())
                val = _fmt(j["value"], 2) if j["status"] == "ok" else j["status"]
                line = f"{j['principle']} [{shown}] {val}"
                text = j["rationale"] or (j["reason"] if j["status"] != "ok" else None)
                why.append(html.escape(line) + (f'<div class="rat">{html.escape(text)}</div>'
                                                 if text else ""))
            name = view["critic"] + (" (review)" if view["critic"] == HUMAN else "")
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{_verdict(view['verdict'])}</td>"
                        f"<td>{html.escape(sup_text)}</td><td>{'<br>'.join(why)}</td></tr>")
        parts.append("<table><tr><th>critic</th><th>verdict</th><th>support</th>"
                     "<th>principle [order shown] P(first better), rationale</th></tr>"
                     + "".join(rows) + "</table>")
        out.append(f'<div class="item">{"".join(parts)}</div>')
    return "".join(out)


_QUALITY_COLUMNS = {"name": "judge", "kind": "kind", "n": "n", "agreement": "agreement",
                    "ci_low": "95% low", "ci_high": "95% high", "verdict": "vs best baseline",
                    "position_consistency": "position consistency",
                    "mean_p_first": "mean P(first)", "length_coef": "length coef",
                    "length_share": "length share", "lc_agreement": "lc agreement"}


def _quality_section(a: Analysis, source: str, name: str) -> str:
    """Judge quality next to trivial baselines, with position and length control."""
    from oversight.report._evaluate import evaluate

    try:
        ev = evaluate(a, source=source)
    except OversightError as exc:
        return _section(f"Judge quality against {name} labels",
                        f"<p>{html.escape(str(exc))}</p>")
    t = ev.table.copy()
    t["verdict"] = [("clears" if bool(c) else "DOES NOT CLEAR") if k in ("critic", "panel")
                    else "" for k, c in zip(t["kind"], t["clears_baseline"], strict=True)]
    overall = t[t["subset"] == "all"]
    parts = [
        "<p>Agreement averages both orders (ties count half, 95% Wilson intervals). A judge "
        "whose interval does not lie above the best trivial baseline on the same items (first "
        "shown, longer, shorter, random) is marked DOES NOT CLEAR. Length control follows "
        "AlpacaEval: a logistic fit on tanh(&Delta;len/&sigma;); the length coefficient is "
        "positive for judges that follow the longer response, the length share is the share "
        "of verdicts the length term alone predicts, and the length-controlled agreement is "
        "the fit at &Delta;len = 0.</p>",
        _table(overall, _QUALITY_COLUMNS),
        f"<p><code>{html.escape(ev.bench_line())}</code></p>"]
    rest = t[t["subset"] != "all"]
    if len(rest):
        parts.append("<details><summary>per subset (item metadata; chosen longer / shorter)"
                     "</summary>" + _table(rest, {"subset": "subset", **_QUALITY_COLUMNS})
                     + "</details>")
    return _section(f"Judge quality against {name} labels", *parts)


def render_html(a: Analysis, *, contested: int = 10) -> str:
    """The whole report as one HTML string."""
    from oversight.aggregate import agreement_summary

    stats = agreement_summary(a.judgments) if len(a.critic_names) > 1 else {}
    cards = [("items", len(a.items)), ("critics", len(a.critic_names)),
             ("judgments", len(a.judgments)),
             ("Krippendorff α", _fmt(stats.get("alpha"), 3)),
             ("mean Cohen κ", _fmt(stats.get("mean_cohen_kappa"), 3))]
    cards += [(f, n) for f, n in a.flag_counts.items()]
    if a.human_labels:
        cards.append(("human labels", len(a.human_labels)))
    meta = ", ".join(f"{k}: {v}" for k, v in a.meta.items())
    judged_under = sorted({f"{c.get('constitution')}@{c.get('constitution_hash')}"
                           + (f" ({c['amendment']})" if c.get("amendment") else "")
                           for c in a.critics if c.get("constitution_hash")})
    if judged_under:
        meta += ("; " if meta else "") + "judged under " + ", ".join(judged_under)
    sections = [
        f"<h1>{html.escape(a.title)}</h1>",
        f'<div class="meta">{html.escape(meta)}; panel aggregation: {a.method}</div>',
        '<div class="cards">' + "".join(f'<div class="card">{html.escape(str(k))}<b>'
                                        f"{html.escape(str(v))}</b></div>" for k, v in cards)
        + "</div>",
    ]
    fig_sections: list[tuple[str, Callable[[Analysis], Any], str, str]] = [
        ("Which critics agree", _plots.agreement, "Cohen's kappa heatmap",
         "Cohen's kappa between critics' verdicts on the items both judged (ties and "
         "abstentions left out); 0 is chance agreement."),
        ("On which principles they pull apart", _plots.principles,
         "disagreement per principle",
         "For each critic's principle: the share of its verdicts that differ from another "
         "critic's verdict on the same item."),
        ("Position bias", _plots.position_bias, "position bias per critic",
         "Mean P(first shown is better) when the lower-index response is shown first and when "
         "it is shown second; bias = overall mean - 0.5; flips = verdicts that change when the "
         "order is swapped."),
        ("Critic reliability", _plots.reliability, "Dawid-Skene reliability",
         "Dawid-Skene's estimate of how often each critic's verdict matches the latent true "
         f"label; CIs from {a.n_boot} bootstrap resamples of items."),
        ("Bradley-Terry strengths", _plots.strengths, "Bradley-Terry strengths",
         "Log-strengths with Hessian 95% intervals."),
        ("Principle conflicts", _plots.conflicts, "principle conflict graph",
         "Nodes are critic:principle; an edge joins two principles whose P(A) scores are "
         "negatively correlated over the items both judged."),
        ("Panel margins", _plots.margins, "panel margin histogram",
         "The aggregation's margin per item (what TRL rows carry) and the panel's P(A)."),
    ]
    for title, fn, alt, caption in fig_sections:
        sections.append(_section(title, _img(fn(a), alt, caption)))
        if fn is _plots.position_bias:
            sections.append(_table(a.position_bias, {
                "critic": "critic", "n": "judgments", "p_first_forward": "P(first) fwd",
                "p_first_reverse": "P(first) rev", "bias": "bias", "flip_rate": "flip rate"}))
        if fn is _plots.principles and not a.principle_disagreement.empty:
            sections.append("<details><summary>table</summary>" + _table(
                a.principle_disagreement, {"critic": "critic", "principle": "principle",
                                           "n_items": "items", "n": "comparisons",
                                           "rate": "disagreement", "ci_low": "95% low",
                                           "ci_high": "95% high"}) + "</details>")
    for source, labels in a.references().items():
        name = "human review" if source == HUMAN else "reference"
        agree = a.reference_agreement(source)
        cal = a.calibration(source)
        parts = [f"<p>{len(labels)} items carry {name} labels.</p>",
                 _img(_plots.reference_agreement(a, source), f"agreement with {name} labels",
                      "Agreement with 95% Wilson intervals; `panel` is the critics' majority, "
                      f"`panel:{a.method}` the configured aggregation's final decision."),
                 _table(agree, {"critic": "critic", "n": "n", "agreement": "agreement",
                                "ci_low": "95% low", "ci_high": "95% high"})]
        if cal:
            parts.append(_img(_plots.calibration(a, source), "calibration diagram",
                              "Confidence max(P(A), P(B)) against accuracy in 10 bins over "
                              "[0.5, 1]; ECE = bin-size-weighted mean |accuracy - confidence|."))
            parts.append(_table(pd.DataFrame([{"name": k, "n": v[2], "ece": v[0]}
                                              for k, v in cal.items()]),
                                {"name": "critic", "n": "n", "ece": "ECE"}))
        sections.append(_section(f"Against {name} labels", *parts))
        sections.append(_quality_section(a, source, name))
    sections.append(_section("Most contested items", _contested_html(a, contested)))
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(a.title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def write_report(a: Analysis, path: str | Path, *, contested: int = 10) -> Path:
    """Write the report to `path` (a file, or a directory to hold report.html)."""
    p = Path(path)
    if p.suffix.lower() not in (".html", ".htm"):
        p = p / "report.html"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(a, contested=contested), encoding="utf-8")
    return p
