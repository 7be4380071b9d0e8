"""Inter-critic agreement: Krippendorff's alpha, Fleiss' and Cohen's kappa, error correlation.

Matrices here are reliability data in Krippendorff's layout: raters (critics) x units (items),
NaN = missing. Missing means an abstention, an error or an exact tie (see `critic_labels`):
never a vote and never a category. The graphs (networkx) show which critics agree and which
principles pull the same items in opposite directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from oversight.aggregate._ballots import PAIRWISE_FIELDS, _check_columns, critic_p0
from oversight.aggregate._dawid_skene import critic_labels

LEVELS = ("nominal", "ordinal", "interval")
NODE_KEYS = ("critic", "constitution")


# --------------------------------------------------------------------------- helpers


def label_matrix(labels: pd.DataFrame) -> tuple[np.ndarray, list[Any], list[Any]]:
    """Long (item_id, critic, label) -> (matrix critics x items with NaN, critics, items)."""
    missing = [c for c in ("item_id", "critic", "label") if c not in labels.columns]
    if missing:
        raise ValueError(f"labels table lacks column(s) {missing}; it needs item_id, critic, "
                         "label (the output of critic_labels)")
    critics = pd.Index(np.sort(pd.unique(labels["critic"])))
    items = pd.Index(np.sort(pd.unique(labels["item_id"])))
    out = np.full((len(critics), len(items)), np.nan)
    out[critics.get_indexer(labels["critic"]), items.get_indexer(labels["item_id"])] = (
        labels["label"].to_numpy(dtype=float))
    return out, list(critics), list(items)


def _as_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Accept either critic_labels output or a raw judgments table."""
    if "label" in table.columns:
        return table
    return critic_labels(table)


def _pairwise_pearson(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r between rows of x [n, m] over the columns both rows observe (NaN = missing).

    Vectorised by masked matrix products: with M the observed mask and X0 = x with NaN -> 0,
    n_ij = M M^T, sum_i = X0 M^T, sum_ii = X0^2 M^T and sum_ij = X0 X0^T. Returns (r, n_ij);
    r is NaN where fewer than 2 shared columns or a row is constant on the shared set.
    """
    mask = ~np.isnan(x)
    m = mask.astype(float)
    x0 = np.where(mask, x, 0.0)
    n = m @ m.T
    sx = x0 @ m.T
    sxx = (x0 * x0) @ m.T
    sxy = x0 @ x0.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = n * sxy - sx * sx.T
        var = n * sxx - sx * sx
        var_prod = var * var.T
        r = np.where((n >= 2) & (var > 1e-12 * n * n) & (var.T > 1e-12 * n * n),
                     cov / np.sqrt(np.abs(var_prod)), np.nan)
    return np.clip(r, -1.0, 1.0), n


def _pairwise_kappa(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Cohen's kappa, observed agreement, n shared) between rows of a labels matrix.

    Per pair, on the units both rows label: p_o = share of equal labels and
    p_e = sum_k p_i(k) p_j(k) with each rater's marginals taken on the shared units
    (Cohen 1960). kappa = (p_o - p_e) / (1 - p_e), NaN when undefined (no shared units or
    p_e = 1).
    """
    mask = ~np.isnan(x)
    m = mask.astype(float)
    n = m @ m.T
    cats = np.unique(x[mask])
    agree = np.zeros_like(n)
    chance = np.zeros_like(n)
    for c in cats:  # a loop over categories (a handful), not over raters or units
        onehot = (x == c).astype(float)
        agree += onehot @ onehot.T
        chance += (onehot @ m.T) * (m @ onehot.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = agree / n
        p_e = chance / (n * n)
        kappa = np.where((n > 0) & (p_e < 1 - 1e-12), (p_o - p_e) / (1 - p_e), np.nan)
    return kappa, np.where(n > 0, p_o, np.nan), n


# --------------------------------------------------------------------------- alpha


def _codes(values: np.ndarray, value_domain: Sequence[float] | None) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Map values to indices into the value domain (sorted, or in the order given)."""
    if value_domain is None:
        domain, codes = np.unique(values, return_inverse=True)
        return codes.ravel(), domain
    domain = _domain(value_domain)
    order = np.argsort(domain, kind="stable")
    pos = np.minimum(np.searchsorted(domain[order], values), len(domain) - 1)
    ok = domain[order][pos] == values
    if not ok.all():
        raise ValueError(f"data holds value(s) outside value_domain: "
                         f"{np.unique(values[~ok])[:5].tolist()}")
    return order[pos], domain


def _domain(value_domain: Sequence[float]) -> np.ndarray:
    domain = np.asarray(value_domain, dtype=float)
    if domain.ndim != 1 or len(np.unique(domain)) != len(domain):
        raise ValueError("value_domain: expected a 1-D sequence of distinct values")
    return domain


_DENSE_VALUES = 64  # up to this many candidate values, count them by comparison passes


def _dense_counts(x: np.ndarray, observed: np.ndarray, value_domain: Sequence[float] | None
                  ) -> np.ndarray | None:
    """Counts [V, units] of each domain value, or None when the domain is large/irregular.

    One comparison pass per candidate value over the [raters, units] matrix: for the usual
    handful of labels this is faster than gathering, sorting or scattering the values.
    """
    if value_domain is None:
        if not observed.any():
            return None
        lo, hi = np.nanmin(x), np.nanmax(x)
        if hi - lo >= _DENSE_VALUES or not np.all((x == np.floor(x)) | ~observed):
            return None
        domain = np.arange(lo, hi + 1)
    else:
        domain = _domain(value_domain)
        if len(domain) > _DENSE_VALUES:
            return None
    counts = np.stack([(x == v).sum(axis=0) for v in domain]).astype(float)
    n_observed = int(observed.sum())
    if counts.sum() != n_observed:
        _codes(x[observed], value_domain)  # raises, naming the stray values
    return counts


def _cell_counts(x: np.ndarray, observed: np.ndarray, value_domain: Sequence[float] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Sparse (unit, value) counts of pairable units: (unit, code, count, m_unit, V)."""
    per_unit = observed.sum(axis=0)
    rater, unit = np.nonzero(observed & (per_unit >= 2)[None, :])
    codes, domain = _codes(x[rater, unit], value_domain)
    n_v = max(len(domain), 1)
    key, count = np.unique(unit * n_v + codes, return_counts=True)
    cell_unit, cell_code = np.divmod(key, n_v)
    return cell_unit, cell_code, count.astype(float), per_unit[cell_unit].astype(float), n_v


def _ordinal_distance(n_c: np.ndarray) -> np.ndarray:
    """d_ck = (sum_{g between c and k} n_g - (n_c + n_k) / 2)^2 over ranks (Krippendorff)."""
    cum = np.cumsum(n_c)
    idx = np.arange(len(n_c))
    lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
    return (cum[hi] - cum[lo] + (n_c[lo] - n_c[hi]) / 2.0) ** 2


def _interval_alpha(x: np.ndarray, observed: np.ndarray, value_domain: Sequence[float] | None
                    ) -> float:
    if value_domain is not None:
        _codes(x[observed], value_domain)  # validates only: the metric uses the values
    per_unit = observed.sum(axis=0)
    keep = per_unit >= 2
    pairable = observed[:, keep]
    if not pairable.any():
        return float("nan")
    v = np.where(pairable, x[:, keep] - x[:, keep][pairable].mean(), 0.0)  # shift-invariant
    m = per_unit[keep].astype(float)
    s1, s2 = v.sum(axis=0), (v * v).sum(axis=0)
    n = m.sum()
    within = ((m * s2 - s1 * s1) / (m - 1)).sum()
    total = n * s2.sum() - s1.sum() ** 2
    return float(1.0 - (n - 1) * within / total) if total > 1e-12 * n * n else float("nan")


def krippendorff_alpha(data: Any, level: str = "nominal", *,
                       value_domain: Sequence[float] | None = None) -> float:
    """Krippendorff's alpha = 1 - D_o / D_e on reliability data [raters, units], NaN = missing.

    Krippendorff (2011), "Computing Krippendorff's alpha-reliability". Only pairable values
    count: units with at least two values. The coincidence matrix is
    o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1), with n_uc the count of value c in
    unit u and m_u its number of values; n_c = sum_k o_ck and n = sum_c n_c. Then

        alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck

    with d_ck = [c != k] (nominal), (c - k)^2 (interval) or, for ordinal,
    (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 over ranks in the ordered domain. Nominal needs
    only the diagonal of o, interval only per-unit moments (sum_{i != j} (x_i - x_j)^2 =
    2 m sum x^2 - 2 (sum x)^2), ordinal the full V x V matrix. The caller should state
    `level`; `value_domain` fixes the ordinal ranks (in the order given) and rejects values
    outside it. Returns NaN when no unit has two values or all pairable values are equal.
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r}: use one of {', '.join(LEVELS)}")
    x = np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"data: expected a 2-D [raters, units] array, got shape {x.shape}")
    observed = ~np.isnan(x)
    if level == "interval":
        return _interval_alpha(x, observed, value_domain)
    counts = _dense_counts(x, observed, value_domain)
    if counts is not None:
        m_all = counts.sum(axis=0)
        keep = m_all >= 2
        nc, m = counts[:, keep], m_all[keep]
        n_c = nc.sum(axis=1)
        n = float(m.sum())
        if n < 2:
            return float("nan")
        if level == "nominal":
            diag = float(((nc * (nc - 1)).sum(axis=0) / (m - 1)).sum())
        else:
            scaled = nc / (m - 1)
            o = scaled @ nc.T - np.diag(scaled.sum(axis=1))
    else:
        cell_unit, cell_code, cell, m_cell, n_v = _cell_counts(x, observed, value_domain)
        n_c = np.bincount(cell_code, weights=cell, minlength=n_v)
        n = float(n_c.sum())
        if n < 2:
            return float("nan")
        if level == "nominal":
            diag = float((cell * (cell - 1) / (m_cell - 1)).sum())
        else:
            from scipy import sparse

            shape = (int(cell_unit.max()) + 1, n_v)
            c = sparse.csr_array((cell, (cell_unit, cell_code)), shape=shape)
            cw = sparse.csr_array((cell / (m_cell - 1), (cell_unit, cell_code)), shape=shape)
            o = np.asarray((cw.T @ c).todense()) - np.diag(
                np.bincount(cell_code, weights=cell / (m_cell - 1), minlength=n_v))
    if level == "nominal":
        expected = n * n - float((n_c * n_c).sum())
        return 1.0 - (n - 1) * (n - diag) / expected if expected > 0 else float("nan")
    d = _ordinal_distance(n_c)
    expected = float((np.outer(n_c, n_c) * d).sum())
    return float(1.0 - (n - 1) * (o * d).sum() / expected) if expected > 0 else float("nan")


# --------------------------------------------------------------------------- kappas


def fleiss_kappa(counts: Any) -> float:
    """Fleiss' kappa from counts [n_units, n_categories] (Fleiss 1971).

    P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)) is unit i's pairwise agreement,
    P_bar their mean, p_j = sum_i n_ij / sum_i n_i the pooled category shares and
    P_e = sum_j p_j^2; kappa = (P_bar - P_e) / (1 - P_e). When units have different numbers
    of raters n_i this is the usual generalisation (per-unit agreement averaged with equal
    unit weights, chance from pooled shares), identical to Fleiss (1971) when every n_i is
    equal. Units with fewer than 2 ratings hold no pair and are dropped. NaN if P_e = 1.
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"counts: expected [n_units, n_categories], got shape {c.shape}")
    if (c < 0).any():
        raise ValueError("counts: must be non-negative")
    n_i = c.sum(axis=1)
    c, n_i = c[n_i >= 2], n_i[n_i >= 2]
    if len(c) == 0:
        return float("nan")
    p_i = ((c * (c - 1)).sum(axis=1)) / (n_i * (n_i - 1))
    p_j = c.sum(axis=0) / n_i.sum()
    p_e = float((p_j * p_j).sum())
    if p_e >= 1 - 1e-12:
        return float("nan")
    return float((p_i.mean() - p_e) / (1 - p_e))


def category_counts(labels_matrix: Any) -> np.ndarray:
    """[raters, units] labels with NaN -> counts [units, categories] (sorted categories)."""
    x = np.asarray(labels_matrix, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"labels_matrix: expected [raters, units], got shape {x.shape}")
    rater, unit = np.nonzero(~np.isnan(x))
    codes, domain = _codes(x[rater, unit], None)
    n_v = max(len(domain), 1)
    flat = np.bincount(unit * n_v + codes, minlength=x.shape[1] * n_v)
    return flat.reshape(x.shape[1], n_v)


def fleiss_kappa_from_labels(labels_matrix: Any) -> float:
    """Fleiss' kappa on [raters, units] labels with NaN = missing; see `fleiss_kappa`."""
    return fleiss_kappa(category_counts(labels_matrix))


def cohen_kappa_matrix(labels_matrix: Any, names: Sequence[Any]) -> pd.DataFrame:
    """Pairwise Cohen's kappa between raters (rows of [raters, units]) on jointly labelled units.

    Each pair uses only the units both labelled, with marginals on those units (Cohen 1960).
    The diagonal is 1 where a rater's own kappa is defined; NaN marks undefined pairs.
    """
    x = np.asarray(labels_matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] != len(names):
        raise ValueError(f"labels_matrix: expected [raters, units] with {len(names)} rows "
                         f"(one per name), got shape {x.shape}")
    kappa, _, _ = _pairwise_kappa(x)
    return pd.DataFrame(kappa, index=list(names), columns=list(names))


# --------------------------------------------------------------------------- error structure


def error_correlation(labels: pd.DataFrame, gold: Mapping[Any, Any] | pd.Series
                      ) -> pd.DataFrame:
    """Critics x critics Pearson (phi) correlation of error indicators against the reference.

    e_ci = 1 if critic c's label on item i differs from gold, else 0, on gold items the
    critic labelled; each pair is correlated over the items both labelled. High positive
    correlation means the critics fail on the same items, so a panel of them is worth fewer
    independent votes (see `effective_panel_size`). `labels` is critic_labels output or a raw
    judgments table; NaN where a pair shares < 2 items or a critic makes no (or only) errors.
    """
    labs = _as_labels(labels)
    g = pd.Series(gold, dtype=float) if not isinstance(gold, pd.Series) else gold.astype(float)
    x, critics, items = label_matrix(labs)
    ref = g.reindex(items).to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        err = np.where(np.isnan(x) | np.isnan(ref)[None, :], np.nan,
                       (x != ref[None, :]).astype(float))
    r, _ = _pairwise_pearson(err)
    np.fill_diagonal(r, np.where(np.isnan(np.diag(r)), np.nan, 1.0))
    return pd.DataFrame(r, index=critics, columns=critics)


def effective_panel_size(corr: Any) -> float:
    """Kish-style effective number of independent critics: n_eff = n^2 / sum_ij rho_ij.

    The mean of n unit-variance votes with correlations rho_ij has variance
    sum_ij rho_ij / n^2; n_eff independent votes give the same variance (Kish 1965's design
    effect). With one common correlation rho it is n / (1 + (n - 1) rho): n for independent
    errors, 1 for identical ones. NaN correlations (undefined pairs) count as 0 and the
    diagonal as 1. Returns inf if the sum is not positive (impossible for a valid
    correlation matrix, possible with pairwise-complete estimates).
    """
    r = np.array(corr, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise ValueError(f"corr: expected a square correlation matrix, got shape {r.shape}")
    n = r.shape[0]
    if n == 0:
        return 0.0
    r = np.nan_to_num(r, nan=0.0)
    np.fill_diagonal(r, 1.0)
    total = r.sum()
    return float(n * n / total) if total > 0 else float("inf")


# --------------------------------------------------------------------------- graphs


def critic_agreement_graph(judgments: pd.DataFrame, threshold: float | None = None, *,
                           weight: str = "kappa", min_items: int = 1) -> nx.Graph:
    """Critics as nodes; an edge per pair with >= `min_items` jointly labelled items.

    Edge attributes: kappa (Cohen's, on shared items), agreement (raw rate), n_items and
    weight (= kappa or agreement, per `weight`). With `threshold`, only edges whose weight is
    at least the threshold are kept. Nodes carry n_items (items the critic labelled).
    """
    if weight not in ("kappa", "agreement"):
        raise ValueError(f"weight={weight!r}: use 'kappa' or 'agreement'")
    x, critics, _ = label_matrix(_as_labels(judgments))
    kappa, agree, n = _pairwise_kappa(x)
    graph = nx.Graph()
    for i, c in enumerate(critics):
        graph.add_node(c, n_items=int((~np.isnan(x[i])).sum()))
    w = kappa if weight == "kappa" else agree
    ii, jj = np.triu_indices(len(critics), k=1)
    for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
        if n[i, j] < max(min_items, 1) or np.isnan(w[i, j]):
            continue
        if threshold is not None and w[i, j] < threshold:
            continue
        graph.add_edge(critics[i], critics[j], kappa=float(kappa[i, j]),
                       agreement=float(agree[i, j]), n_items=int(n[i, j]),
                       weight=float(w[i, j]))
    return graph


def _two_response_items(judgments: pd.DataFrame) -> pd.Index:
    pw = judgments[judgments["mode"] == "pairwise"]
    shown = pw["order"].astype(str).str.split(",", expand=True)
    if shown.empty:
        return pd.Index([])
    biggest = shown.apply(pd.to_numeric, errors="coerce").max(axis=1)
    top = biggest.groupby(pw["item_id"]).max()
    return pd.Index(top[top <= 1].index)


def principle_conflict_graph(judgments: pd.DataFrame, min_items: int = 20,
                             threshold: float = -0.3, *, by: str = "critic") -> nx.Graph:
    """Principles whose verdicts on the same items systematically oppose each other.

    A node is "critic:principle" (`by="critic"`) or "constitution:principle"
    (`by="constitution"`, pooling critics that share a constitution). Its score on a
    two-response item is its canonical P(response 0 is better), averaged over its ok pairwise
    judgments (both orders). Statistic: Pearson r of two nodes' scores over the items both
    scored; under independent principles E[r] = 0, and r <= `threshold` with at least
    `min_items` shared items makes an edge. Pairs with the same principle name are skipped
    (that would be critic disagreement, not a principle conflict). Edge attributes:
    correlation, weight (= -r), n_items, disagreement (share of shared items where their
    verdicts differ, ties excluded) and expected_disagreement (the same under independence,
    from each node's verdict shares), so "well above chance" can be read off directly.
    """
    if by not in NODE_KEYS:
        raise ValueError(f"by={by!r}: use one of {', '.join(NODE_KEYS)}")
    _check_columns(judgments, PAIRWISE_FIELDS)
    if by == "constitution" and "constitution" not in judgments.columns:
        raise ValueError("by='constitution' needs a 'constitution' column in judgments; "
                         "use by='critic'")
    ok = judgments[(judgments["status"] == "ok") & (judgments["mode"] == "pairwise")]
    ok = ok[ok["item_id"].isin(_two_response_items(ok))]
    graph = nx.Graph()
    if ok.empty:
        return graph
    node = ok[by].astype(str) + ":" + ok["principle"].astype(str)
    p0 = critic_p0(ok.assign(critic=node.to_numpy()))
    p0 = p0[p0["p0"].notna()]
    if p0.empty:
        return graph
    nodes = list(np.sort(pd.unique(p0["critic"])))
    items = pd.Index(np.sort(pd.unique(p0["item_id"])))
    score = np.full((len(nodes), len(items)), np.nan)
    score[pd.Index(nodes).get_indexer(p0["critic"]), items.get_indexer(p0["item_id"])] = (
        p0["p0"].to_numpy(dtype=float))
    r, n = _pairwise_pearson(score)
    verdict = np.where(np.isnan(score), np.nan, np.where(score > 0.5, 1.0,
                                                         np.where(score < 0.5, 0.0, np.nan)))
    v_mask = (~np.isnan(verdict)).astype(float)
    v1 = np.nan_to_num(verdict, nan=0.0)
    v0 = v_mask - v1
    both = v_mask @ v_mask.T
    named = pd.DataFrame({"node": node.to_numpy(), "source": ok[by].to_numpy(),
                          "principle": ok["principle"].to_numpy()}).drop_duplicates("node")
    principle_of = dict(zip(named["node"], named["principle"], strict=True))
    source_of = dict(zip(named["node"], named["source"], strict=True))
    for i, nd in enumerate(nodes):
        graph.add_node(nd, **{by: source_of[nd], "principle": principle_of[nd],
                              "n_items": int((~np.isnan(score[i])).sum())})
    with np.errstate(divide="ignore", invalid="ignore"):
        differ = (v1 @ v0.T + v0 @ v1.T) / both
        share1 = (v1 @ v_mask.T) / both  # node i's share of "response 0 better" on shared
        expected = share1 * (1 - share1.T) + (1 - share1) * share1.T
    ii, jj = np.triu_indices(len(nodes), k=1)
    for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
        if principle_of[nodes[i]] == principle_of[nodes[j]]:
            continue
        if n[i, j] < min_items or np.isnan(r[i, j]) or r[i, j] > threshold:
            continue
        graph.add_edge(nodes[i], nodes[j], correlation=float(r[i, j]), weight=float(-r[i, j]),
                       n_items=int(n[i, j]), disagreement=float(differ[i, j]),
                       expected_disagreement=float(expected[i, j]))
    return graph


# --------------------------------------------------------------------------- summary


def agreement_summary(judgments: pd.DataFrame) -> dict[str, float | int]:
    """Headline agreement of critics' verdicts (`critic_labels`, ties/abstentions missing).

    Keys: n_items (items with any verdict), n_critics, n_labels, n_items_pairable (items with
    two or more verdicts), alpha (Krippendorff, nominal), fleiss_kappa (generalised to
    variable raters, see `fleiss_kappa`), mean_cohen_kappa (mean over critic pairs with a
    defined kappa), percent_agreement (mean over pairs of the raw agreement rate). Undefined
    statistics are NaN.
    """
    labs = critic_labels(judgments)
    x, critics, items = label_matrix(labs)
    nan = float("nan")
    out: dict[str, float | int] = {
        "n_items": len(items), "n_critics": len(critics), "n_labels": int(len(labs)),
        "n_items_pairable": int(((~np.isnan(x)).sum(axis=0) >= 2).sum()) if len(items) else 0,
        "alpha": nan, "fleiss_kappa": nan, "mean_cohen_kappa": nan, "percent_agreement": nan,
    }
    if out["n_items_pairable"] == 0:
        return out
    out["alpha"] = krippendorff_alpha(x, "nominal")
    out["fleiss_kappa"] = fleiss_kappa_from_labels(x)
    kappa, agree, _ = _pairwise_kappa(x)
    ii, jj = np.triu_indices(len(critics), k=1)
    k_pairs, a_pairs = kappa[ii, jj], agree[ii, jj]
    if np.isfinite(k_pairs).any():
        out["mean_cohen_kappa"] = float(np.nanmean(k_pairs))
    if np.isfinite(a_pairs).any():
        out["percent_agreement"] = float(np.nanmean(a_pairs))
    return out
