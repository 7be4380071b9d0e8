"""Report figures: each function takes an Analysis and returns a matplotlib Figure.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), never pyplot, so
they render with the Agg backend, need no display, leave no global state behind, and
`import oversight` never pays for matplotlib. `Plots` gives the same
figures as methods of the same names, e.g. `result.plot.agreement()` in a notebook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from oversight._deprecated import moved

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from oversight.report._analysis import Analysis

_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd")


def _figure(width: float = 7.5, height: float = 4.0) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _color_of(names: list[str]) -> dict[str, str]:
    return {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}


def _err(mid: Any, low: Any, high: Any) -> np.ndarray:
    """Error-bar extents (2, n) from an interval: never negative, NaN drawn as none."""
    m = np.asarray(mid, dtype=float)
    e = np.vstack([m - np.asarray(low, dtype=float), np.asarray(high, dtype=float) - m])
    return np.clip(np.nan_to_num(e, nan=0.0), 0.0, None)


def _empty(title: str, message: str) -> Figure:
    fig, ax = _figure(7.5, 1.6)
    ax.axis("off")
    ax.set_title(title, loc="left")
    ax.text(0.0, 0.5, message, fontsize=10, va="center", wrap=True)
    return fig


def agreement(a: Analysis) -> Figure:
    """Critic x critic Cohen's kappa on jointly labelled items (cell text: kappa and n)."""
    kappa, n = a.kappa
    if kappa.empty:
        return _empty("Cohen's kappa between critics", "no critic verdicts to compare")
    size = max(3.8, 1.1 * len(kappa) + 2.2)
    fig, ax = _figure(size + 1.0, size)
    k = kappa.to_numpy(dtype=float)
    im = ax.imshow(np.nan_to_num(k, nan=0.0), cmap="RdBu", vmin=-1, vmax=1)
    ax.set_xticks(range(len(kappa)), kappa.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(kappa)), kappa.index)
    for i in range(len(kappa)):
        for j in range(len(kappa)):
            text = "n/a" if math.isnan(k[i, j]) else f"{k[i, j]:.2f}"
            ax.text(j, i, f"{text}\nn={n.iat[i, j]}", ha="center", va="center", fontsize=9,
                    color="white" if not math.isnan(k[i, j]) and abs(k[i, j]) > 0.6
                    else "black")
    fig.colorbar(im, ax=ax, label="Cohen's kappa", shrink=0.8)
    ax.set_title("Agreement between critics (Cohen's kappa)", loc="left")
    return fig


def principles(a: Analysis, top: int = 25) -> Figure:
    """Share of comparisons where a principle's verdict differs from other critics'."""
    t = a.principle_disagreement.head(top)
    if t.empty:
        return _empty("Disagreement per principle", "no principle-level verdicts")
    fig, ax = _figure(7.5, max(2.5, 0.28 * len(t) + 1.2))
    colors = _color_of(a.critic_names)
    y = np.arange(len(t))[::-1]
    err = _err(t["rate"], t["ci_low"], t["ci_high"])
    ax.barh(y, t["rate"], xerr=err, color=[colors.get(c, "#888") for c in t["critic"]],
            error_kw={"elinewidth": 0.8, "capsize": 2})
    ax.set_yticks(y, [f"{c}: {p} (n={n})" for c, p, n in
                      zip(t["critic"], t["principle"], t["n_items"])], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of comparisons with other critics' verdicts that differ (95% CI)")
    ax.set_title("Disagreement per principle", loc="left")
    return fig


def position_bias(a: Analysis) -> Figure:
    """Mean P(first shown is better) per critic, by the order shown, with 95% CIs."""
    t = a.position_bias
    t = t[t["n"] > 0]
    if t.empty:
        return _empty("Position bias", "no pairwise judgments")
    fig, ax = _figure(7.5, 3.8)
    x = np.arange(len(t))
    w = 0.38
    for off, key, label, color in ((-w / 2, "forward", "lower index shown first", "#4c72b0"),
                                   (w / 2, "reverse", "higher index shown first", "#dd8452")):
        m = t[f"p_first_{key}"].to_numpy(dtype=float)
        err = _err(m, t[f"p_first_{key}_low"], t[f"p_first_{key}_high"])
        ax.bar(x + off, m, w, yerr=err, label=label,
               color=color, error_kw={"elinewidth": 0.8, "capsize": 3})
    ax.axhline(0.5, color="black", lw=0.8, ls="--")
    ax.set_xticks(x, [f"{c}\nbias {b:+.2f}, flips {f:.0%}" if not math.isnan(f)
                      else f"{c}\nbias {b:+.2f}" for c, b, f in
                      zip(t["critic"], t["bias"], t["flip_rate"])], fontsize=9)
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("mean P(first shown is better)")
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    ax.set_title("Position bias: P(first) against the order shown (0.5 = order-blind)",
                 loc="left")
    return fig


def strengths(a: Analysis, top: int = 30) -> Figure:
    """Bradley-Terry log-strengths with confidence intervals (global or per K-way item)."""
    s, what = a.strengths
    if s is None:
        return _empty("Bradley-Terry strengths", f"not shown: {what}")
    s = s.sort_values("log_strength", ascending=True).tail(top)
    fig, ax = _figure(7.5, max(2.5, 0.3 * len(s) + 1.2))
    y = np.arange(len(s))
    m = s["log_strength"].to_numpy(dtype=float)
    err = _err(m, s["ci_low"], s["ci_high"])
    ax.errorbar(m, y, xerr=err, fmt="o", color="#4c72b0", capsize=3)
    ax.set_yticks(y, [str(e) for e in s["entity"]], fontsize=8)
    ax.axvline(0, color="black", lw=0.6, ls=":")
    ax.set_xlabel("log-strength (95% CI)")
    ax.set_title(f"Bradley-Terry strengths ({what})", loc="left")
    return fig


def reliability(a: Analysis) -> Figure:
    """Dawid-Skene reliability per critic (bootstrap 95% CI); semi-supervised with human
    labels next to it where they exist."""
    t = a.reliability
    if t.empty:
        return _empty("Critic reliability (Dawid-Skene)", "no critic verdicts")
    fig, ax = _figure(7.5, 3.4)
    x = np.arange(len(t))
    semi = "reliability_human" in t
    w = 0.38 if semi else 0.6
    m = t["reliability"].to_numpy(dtype=float)
    err = _err(m, t["ci_low"], t["ci_high"])
    ax.bar(x - (w / 2 if semi else 0), m, w, yerr=err,
           color="#55a868", label="unsupervised", error_kw={"elinewidth": 0.8, "capsize": 3})
    if semi:
        ax.bar(x + w / 2, t["reliability_human"], w, color="#8172b3",
               label=f"with {t.attrs.get('n_gold', '?')} human labels as gold")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(x, t["critic"])
    ax.set_ylim(0, 1)
    ax.axhline(0.5, color="black", lw=0.6, ls=":")
    ax.set_ylabel("P(verdict = latent truth)")
    ax.set_title("Critic reliability (Dawid-Skene, 95% bootstrap CI)", loc="left")
    return fig


def conflicts(a: Analysis) -> Figure:
    """The principle-conflict graph: principles whose verdicts oppose on shared items."""
    g = a.conflict_graph
    if g.number_of_nodes() == 0:
        return _empty("Principle conflicts", "no two-response pairwise judgments")
    fig, ax = _figure(7.5, 5.5)
    colors = _color_of(a.critic_names)
    pos = nx.circular_layout(g) if g.number_of_edges() == 0 else nx.spring_layout(
        g, seed=0, k=1.5 / math.sqrt(g.number_of_nodes()))
    node_color = [colors.get(str(g.nodes[n].get("critic")), "#888") for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=node_color, node_size=140)
    if g.number_of_edges():
        widths = [1 + 6 * g.edges[e]["weight"] for e in g.edges]
        nx.draw_networkx_edges(g, pos, ax=ax, width=widths, edge_color="#c44e52", alpha=0.7)
        nx.draw_networkx_edge_labels(g, pos, ax=ax, font_size=7, edge_labels={
            e: f"r={g.edges[e]['correlation']:.2f}" for e in g.edges})
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7,
                            labels={n: str(n).split(":", 1)[-1] for n in g.nodes})
    ax.axis("off")
    ax.margins(0.15)
    note = (f"{g.number_of_edges()} conflict(s): r <= {a.conflict_threshold} over >= "
            f"{a.conflict_min_items} shared items" if g.number_of_edges() else
            f"no pair of principles has r <= {a.conflict_threshold} over >= "
            f"{a.conflict_min_items} shared items")
    ax.set_title(f"Principle conflicts (nodes coloured by critic)\n{note}", loc="left",
                 fontsize=10)
    return fig


def margins(a: Analysis) -> Figure:
    """Histogram of panel margins, split by whether the panel matches the reference."""
    d = a.decisions
    fig = _figure(7.5, 3.2)[0]
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    ref = a.references().get("reference", {})
    bins = np.linspace(0, 1, 21)
    m = d["margin"].to_numpy(dtype=float)
    if ref:
        hit = np.array([isinstance(f, (int, np.integer)) and ref.get(i) == int(f)
                        for i, f in zip(d["item_id"], d["final"])])
        known = np.array([i in ref for i in d["item_id"]])
        ax1.hist([m[known & hit], m[known & ~hit], m[~known]], bins=bins, stacked=True,
                 color=["#55a868", "#c44e52", "#8c8c8c"],
                 label=["matches reference", "differs / undecided", "no reference"])
        ax1.legend(fontsize=7)
    else:
        ax1.hist(m, bins=bins, color="#4c72b0")
    ax1.set_xlabel(f"panel margin ({a.method})")
    ax1.set_ylabel("items")
    p0 = d["p0"].to_numpy(dtype=float)
    ax2.hist(p0[~np.isnan(p0)], bins=bins, color="#8172b3")
    ax2.axvline(0.5, color="black", lw=0.6, ls=":")
    ax2.set_xlabel("panel P(response A is better)")
    fig.suptitle("Panel margins", x=0.02, ha="left")
    return fig


def reference_agreement(a: Analysis, source: str = "reference") -> Figure:
    """Agreement of each critic and the panel with reference labels (95% Wilson CI)."""
    t = a.reference_agreement(source)
    t = t[t["n"] > 0]
    if t.empty:
        return _empty(f"Agreement with {source} labels", f"no {source} labels")
    fig, ax = _figure(7.5, max(2.2, 0.4 * len(t) + 1.0))
    y = np.arange(len(t))[::-1]
    m = t["agreement"].to_numpy(dtype=float)
    err = _err(m, t["ci_low"], t["ci_high"])
    colors = ["#8172b3" if str(c).startswith("panel") else "#937860" if c == "human"
              else "#4c72b0" for c in t["critic"]]
    ax.barh(y, m, xerr=err, color=colors, error_kw={"elinewidth": 0.8, "capsize": 3})
    ax.set_yticks(y, [f"{c} (n={n})" for c, n in zip(t["critic"], t["n"])])
    ax.axvline(0.5, color="black", lw=0.6, ls=":")
    ax.set_xlim(0, 1)
    ax.set_xlabel("agreement (ties count half; 95% Wilson CI)")
    ax.set_title(f"Agreement with {source} labels", loc="left")
    return fig


def calibration(a: Analysis, source: str = "reference") -> Figure:
    """Reliability diagram: confidence against accuracy per bin, with ECE in the legend."""
    cal = a.calibration(source)
    if not cal:
        return _empty("Calibration", f"no two-response items with {source} labels")
    fig, ax = _figure(6.0, 5.0)
    ax.plot([0.5, 1.0], [0.5, 1.0], color="black", lw=0.8, ls="--", label="perfect")
    colors = _color_of(list(cal))
    for name, (ece, bins, n) in cal.items():
        b = bins[bins["n"] > 0]
        style = {"lw": 2.5, "color": "#8172b3"} if name.startswith("panel") else {
            "lw": 1.2, "color": colors[name]}
        ax.plot(b["confidence"], b["accuracy"], marker="o", ms=3,
                label=f"{name}: ECE {ece:.3f} (n={n})", **style)
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("confidence: max(P(A), P(B))")
    ax.set_ylabel(f"accuracy against {source} labels")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Calibration (reliability diagram)", loc="left")
    return fig


class Plots:
    """The report's figures as methods: `result.plot.agreement()` returns a Figure."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def agreement(self) -> Figure:
        return agreement(self.analysis)

    def principles(self, top: int = 25) -> Figure:
        return principles(self.analysis, top)

    def position_bias(self) -> Figure:
        return position_bias(self.analysis)

    def strengths(self, top: int = 30) -> Figure:
        return strengths(self.analysis, top)

    def reliability(self) -> Figure:
        return reliability(self.analysis)

    def conflicts(self) -> Figure:
        return conflicts(self.analysis)

    def margins(self) -> Figure:
        return margins(self.analysis)

    def reference_agreement(self, source: str = "reference") -> Figure:
        return reference_agreement(self.analysis, source)

    def calibration(self, source: str = "reference") -> Figure:
        return calibration(self.analysis, source)


# Old names of the figure functions, kept for one release: each is named as its Plots method.
__getattr__ = moved("oversight.report._plots",
                    {"agreement_heatmap": "oversight.report._plots.agreement",
                     "principle_disagreement": "oversight.report._plots.principles",
                     "conflict_graph": "oversight.report._plots.conflicts"})
