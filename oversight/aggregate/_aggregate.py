"""One entry point: judgments -> per-item decisions, flags and TRL-shaped preferences.

`aggregate(judgments, items, method=...)` checks its input, runs the registered aggregator
(`oversight.aggregate.register_aggregator`), then the panel rules (quorum, supermajority,
veto: always last, so no aggregator can override a veto), then the disagreement flags. Every
decision keeps its provenance: which critics and principles voted, under which constitution
hashes and models.

Input it refuses, the same way for every method (`AggregationInputError`, naming the item,
critic and principle, or the weight or option): a probability (pairwise, pass/fail) outside
[0, 1] or NaN in an `ok` row, a score outside [1, 10] or NaN, an unknown mode; a critic weight
for a critic that has no judgments, or a negative, NaN or infinite weight; an option the method
does not declare. An empty judgments table (or one where every judgment abstained) is no
evidence: every item comes out undecided (`final="abstain"`, flag `undecided`), never an error.

Undecided items: when the method cannot order an item's responses (no usable judgment, or a
Bradley-Terry graph that is not connected) its label is "abstain" or "undecided", the
`undecided` flag is set and exports leave it out. No method ever falls back to response 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from oversight._gc import young_gc
from oversight.aggregate._ballots import PAIRWISE_FIELDS, columnar, shared_rows, sorted_codes
from oversight.aggregate._conservative import Conservative
from oversight.aggregate._registry import (
    AggregationContext,
    aggregator_spec,
    available_aggregators,
    check_options,
    register_aggregator,
)
from oversight.aggregate._rules import (
    PanelRules,
    _is_response,
    apply_rules,
    disagreement_flags,
    infer_k,
)
from oversight.aggregate._vote import Vote
from oversight.data import Comparison
from oversight.errors import AggregationInputError

FLAG_COLUMNS = ("split", "veto_conflict", "position_inconsistent", "low_quorum", "cycle",
                "undecided")
UNDECIDED = ("abstain", "undecided")
SCORE_RANGE = (1.0, 10.0)


@dataclass
class Aggregation:
    """Per-item decisions with flags (`decisions`), and the aggregator that made them."""

    method: str
    decisions: pd.DataFrame
    rules: PanelRules
    model: Any = None
    provenance: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame | None = None  # removed position priors (calibrate=...)
    left_out: dict[str, str] = field(default_factory=dict)
    """Critics with judgments the method did not use, and why (e.g. bt: score mode)."""

    def flagged(self, flags: Sequence[str] = FLAG_COLUMNS) -> pd.DataFrame:
        bad = [f for f in flags if f not in FLAG_COLUMNS]
        if bad:
            raise ValueError(f"unknown flag(s) {bad}; valid: {', '.join(FLAG_COLUMNS)}")
        mask = np.zeros(len(self.decisions), dtype=bool)
        for f in flags:
            mask |= self.decisions[f].to_numpy(dtype=bool)
        return self.decisions[mask]

    def flag_counts(self) -> dict[str, int]:
        return {f: int(self.decisions[f].sum()) for f in FLAG_COLUMNS}

    def preferences(self, items: Sequence[Comparison], *, min_margin: float = 0.0,
                    drop_flags: Sequence[str] = (), drop_veto_conflicts: bool = True
                    ) -> pd.DataFrame:
        """TRL preference rows: prompt, chosen, rejected, margin, soft_label, flags, provenance.

        For K-way items the winner is paired with every other response. Items without a
        decided winner (tie, abstain, no quorum, contested) yield no row.
        """
        by_id = {it.id: it for it in items}
        prov = self.provenance.set_index("item_id") if len(self.provenance) else None
        rows = []
        for d in self.decisions.itertuples(index=False):
            item = by_id.get(d.item_id)
            if item is None or not isinstance(d.final, (int, np.integer)):
                continue
            if d.margin < min_margin or (drop_veto_conflicts and d.veto_conflict):
                continue
            if any(getattr(d, f) for f in drop_flags):
                continue
            win = int(d.final)
            for other in range(item.k):
                if other == win:
                    continue
                # P(chosen is better) for two-response items; K-way items have no such label.
                soft = (d.p0 if win == 0 else 1 - d.p0) if item.k == 2 else np.nan
                row = {
                    "prompt": item.prompt if isinstance(item.prompt, str) else list(item.prompt),
                    "chosen": item.responses[win], "rejected": item.responses[other],
                    "margin": float(d.margin), "soft_label": float(soft),
                    "item_id": d.item_id, "chosen_index": win, "rejected_index": other,
                    "reference": item.reference, "method": self.method,
                    "veto_override": bool(d.veto_override),
                }
                for f in FLAG_COLUMNS:
                    row[f] = bool(getattr(d, f))
                if prov is not None and d.item_id in prov.index:
                    for col in prov.columns:
                        row[col] = prov.at[d.item_id, col]
                rows.append(row)
        if not rows:
            return pd.DataFrame(columns=["prompt", "chosen", "rejected", "margin", "soft_label",
                                         "item_id", "chosen_index", "rejected_index"])
        return pd.DataFrame(rows)


PROVENANCE_FIELDS = ("critic", "principle", "model", "constitution", "constitution_hash")


def _provenance(judgments: pd.DataFrame) -> pd.DataFrame:
    """Per item (sorted by id): the sorted, comma-joined distinct critics, models,
    critic:principle pairs and constitution@hash of its ok judgments, and their count.

    On codes: a run has a handful of distinct (critic, principle, model, constitution, hash)
    sources, so each item's set of sources is one bit mask (one pass over the rows), and each
    distinct mask is turned into text once."""
    ok = judgments[(judgments["status"] == "ok").to_numpy()]
    if ok.empty:
        return pd.DataFrame(columns=["item_id"])
    item_codes, item_ids = sorted_codes(ok["item_id"])
    item_ids = np.asarray(item_ids, dtype=object)
    n = len(item_ids)
    source, sources = _sources(ok)
    texts = {"critics": [str(c) for c in sources["critic"]],
             "models": [str(m) for m in sources["model"]],
             "principles": [f"{c}:{p}" for c, p in zip(sources["critic"], sources["principle"])],
             "constitutions": [f"{c}@{h}" for c, h in zip(sources["constitution"],
                                                          sources["constitution_hash"])]}
    out: dict[str, Any] = {"item_id": item_ids}
    if len(sources) <= 62:
        masks = np.zeros(n, dtype=np.int64)
        np.bitwise_or.at(masks, item_codes, np.left_shift(np.int64(1), source))
        distinct, inverse = np.unique(masks, return_inverse=True)
        members = [[b for b in range(len(sources)) if (int(m) >> b) & 1] for m in distinct]
        for name, text in texts.items():
            joined = [",".join(sorted({text[b] for b in bits})) for bits in members]
            out[name] = np.array(joined, dtype=object)[inverse.reshape(-1)]
    else:  # too many sources for a mask: join per item
        for name, text in texts.items():
            frame = pd.DataFrame({"i": item_codes, "v": np.array(text, dtype=object)[source]})
            frame = frame.drop_duplicates().sort_values(["i", "v"])
            joined = frame.groupby("i", sort=True)["v"].agg(",".join)
            out[name] = joined.reindex(range(n)).to_numpy(dtype=object)
    out["n_judgments"] = np.bincount(item_codes, minlength=n)
    return pd.DataFrame(out)


def _sources(ok: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's source: a code into the distinct combinations of `PROVENANCE_FIELDS`
    (a missing value reads "nan", as str() of it did)."""
    key = np.zeros(len(ok), dtype=np.int64)
    parts = []
    for col in PROVENANCE_FIELDS:  # a column the table lacks reads as missing ("nan")
        values = ok[col] if col in ok.columns else pd.Series(np.nan, index=ok.index)
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        key = key * max(len(uniques), 1) + codes
        parts.append(pd.Series(uniques).to_numpy(dtype=object).astype(str))
    combo, combos = pd.factorize(key)
    rest = np.asarray(combos, dtype=np.int64).copy()
    values = {}
    for col, part in zip(reversed(PROVENANCE_FIELDS), reversed(parts)):
        values[col] = part[rest % len(part)]
        rest //= len(part)
    return np.asarray(combo, dtype=np.int64), pd.DataFrame(values)[list(PROVENANCE_FIELDS)]


# -- built-in aggregators ------------------------------------------------------------------
def _vote_columns(v: Vote) -> pd.DataFrame:
    return v.results_.set_index("item_id")[["label", "share", "margin", "entropy", "p0"]].copy()


@register_aggregator("vote", options=())
def vote(judgments: pd.DataFrame, context: AggregationContext) -> Any:
    """Weighted vote over critics (critic and principle weights); p0 = mean P(response 0)."""
    return context.votes, _vote_columns(context.votes)


@register_aggregator("majority", options=())
def majority(judgments: pd.DataFrame, context: AggregationContext) -> Any:
    """One critic, one vote (weights ignored)."""
    v = Vote(weighted=False).fit(judgments)
    return v, _vote_columns(v)


@register_aggregator("conservative", options=("lam", "kind", "temperature", "clamp"))
def conservative(judgments: pd.DataFrame, context: AggregationContext, **options: Any) -> Any:
    """Mean - lam * variance, or the minimum, of critics' calibrated support."""
    model = Conservative(**options).fit(judgments)
    return model, model.results_.set_index("item_id")[["label", "margin", "p0"]].copy()


@register_aggregator("bt", options=("prior", "ci", "n_boot", "seed", "weight_by", "level",
                                    "tol", "max_iter"), modes=("pairwise",))
def bradley_terry(judgments: pd.DataFrame, context: AggregationContext,
                  **options: Any) -> Any:
    """Per-item Bradley-Terry strengths; a graph that is not connected is undecided."""
    from oversight.aggregate._bridges import bt_decisions

    return bt_decisions(judgments, **options)


@register_aggregator("ds", options=("max_iter", "tol", "smoothing", "mode", "gold_strategy",
                                    "n_iter"))  # n_iter: the old name of max_iter
def dawid_skene(judgments: pd.DataFrame, context: AggregationContext, **options: Any) -> Any:
    """Dawid-Skene posteriors (semi-supervised with `gold`); label = MAP response."""
    from oversight.aggregate._bridges import ds_decisions

    options.setdefault("mode", "all")  # every critic's verdict, whatever its judging mode
    return ds_decisions(judgments, gold=context.gold, k_of=context.k_of, **options)


METHODS = tuple(available_aggregators())  # the built-ins; see available_aggregators()


# -- input checks -------------------------------------------------------------------------
def _bad_row(judgments: pd.DataFrame, mask: Any, what: str) -> AggregationInputError:
    r = judgments[mask].iloc[0]
    n = int(np.asarray(mask).sum())
    more = f" ({n - 1} more such row(s))" if n > 1 else ""
    return AggregationInputError(
        f"judgments: item {r['item_id']!r}, critic {r['critic']!r}, principle "
        f"{r['principle']!r}, order {r['order']!r}: {what}, got value={r['value']!r}{more}")


def _isin(column: pd.Series, values: tuple[str, ...]) -> np.ndarray:
    """`column.isin(values)` as a numpy mask; a categorical's categories are tested once."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = np.asarray(column.cat.codes)
        hit = np.append(column.cat.categories.isin(values), False)  # code -1: missing
        return hit[codes]
    return column.isin(values).to_numpy()


def check_judgments(judgments: pd.DataFrame) -> None:
    """Refuse rows no method can use: an unknown mode, or an `ok` row whose value is NaN, a
    probability outside [0, 1] (pairwise, passfail) or a score outside [1, 10]."""
    missing = [c for c in PAIRWISE_FIELDS if c not in judgments.columns]
    if missing:
        raise AggregationInputError(
            f"judgments table lacks column(s) {missing}; it needs {list(PAIRWISE_FIELDS)} "
            "(the long format that Panel.judge returns)")
    ok = (judgments["status"] == "ok").to_numpy()
    mode = judgments["mode"]
    bad_mode = ok & ~_isin(mode, ("pairwise", "score", "passfail", "likelihood"))
    if bad_mode.any():
        r = judgments[bad_mode].iloc[0]
        raise AggregationInputError(
            f"judgments: item {r['item_id']!r}, critic {r['critic']!r}, principle "
            f"{r['principle']!r}: unknown mode {r['mode']!r}; use pairwise, score, passfail or "
            "likelihood")
    value = pd.to_numeric(judgments["value"], errors="coerce").to_numpy(dtype=float)
    nan = ok & np.isnan(value)
    if nan.any():
        raise _bad_row(judgments, nan, "status 'ok' needs a number (NaN or missing value); "
                       "mark unusable output as 'abstain'")
    prob = ok & _isin(mode, ("pairwise", "passfail", "likelihood")) \
        & ((value < 0) | (value > 1))
    if prob.any():
        raise _bad_row(judgments, prob, "a probability must lie in [0, 1]")
    lo, hi = SCORE_RANGE
    score = ok & (mode == "score").to_numpy() & ((value < lo) | (value > hi))
    if score.any():
        raise _bad_row(judgments, score, f"a score must lie in [{lo:g}, {hi:g}]")


def check_weights(weights: Mapping[str, float], critics: Sequence[str]) -> dict[str, float]:
    """Critic weights as floats; refuse unknown critics and negative, NaN or infinite weights."""
    out: dict[str, float] = {}
    known = set(critics)
    for name, w in weights.items():
        if known and name not in known:
            raise AggregationInputError(
                f"critic_weights[{name!r}]: no critic of that name has judgments here; "
                f"critics: {', '.join(sorted(known))}")
        try:
            f = float(w)
        except (TypeError, ValueError):
            raise AggregationInputError(f"critic_weights[{name!r}]={w!r}: not a number") \
                from None
        if not np.isfinite(f) or f < 0:
            raise AggregationInputError(f"critic_weights[{name!r}]={w!r}: a weight must be a "
                                        "finite number >= 0")
        out[name] = f
    return out


def _present(values: pd.Series) -> pd.Index:
    """The distinct values of a column: of a categorical, the categories some row uses."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes)
        used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
        return values.cat.categories[used]
    return pd.Index(pd.unique(values))


def _decision_frame(out: Any) -> tuple[Any, pd.DataFrame]:
    model, dec = out if isinstance(out, tuple) else (None, out)
    if not isinstance(dec, pd.DataFrame):
        raise TypeError("an aggregator must return a DataFrame indexed by item_id (or "
                        f"(model, DataFrame)), got {type(dec).__name__}")
    missing = [c for c in ("label", "p0", "margin") if c not in dec.columns]
    if missing:
        raise TypeError(f"an aggregator's decisions lack column(s) {missing}")
    return model, dec


def aggregate(judgments: pd.DataFrame, items: Sequence[Comparison] | None = None, *,
              method: str = "vote", rules: PanelRules | None = None,
              critic_weights: Mapping[str, float] | str | None = None,
              gold: Mapping[str, int] | None = None, calibrate: str | None = None,
              calibrate_share: float = 0.1, **options: Any) -> Aggregation:
    """Fuse judgments into per-item decisions with a registered method (built in: vote,
    majority, bt, ds, conservative; see `available_aggregators()`).

    The table is first reduced to its working columns, text dictionary-encoded once
    (`columnar`; a `PanelResult.working_table()` already is), so every step works on integer
    codes. Without `items`, each item's number of responses is inferred from the judgments'
    orders.
    Bad input raises `AggregationInputError` (see the module docstring); an item the method
    cannot order comes out undecided and flagged, never as response 0.

    `calibrate`: "batch" or "pride" removes each critic's prior over positions before
    voting, estimated from the run without labels (see `oversight.aggregate._calibration`);
    `calibrate_share` is PriDe's share of items used to estimate it. The removed priors are
    in `Aggregation.calibration`.
    """
    kw = dict(method=method, rules=rules, critic_weights=critic_weights, gold=gold,
              calibrate=calibrate, calibrate_share=calibrate_share, **options)
    with young_gc():
        work = columnar(judgments)
        if (len(work) > CHUNK_JUDGMENTS and method in PER_ITEM_METHODS and calibrate is None
                and not isinstance(critic_weights, str) and _pairs_only(work)):
            return _aggregate_in_chunks(work, items, **kw)
        with shared_rows():  # the vote, flags and rules read one set of rows
            return _aggregate(work, items, **kw)


CHUNK_JUDGMENTS = 1_000_000
"""Above this many judgments, the per-item methods run over chunks of about this many."""
PER_ITEM_METHODS = ("vote", "majority", "bt", "conservative")
"""Built-in methods whose decision for an item reads only that item's judgments (Dawid-Skene,
and `critic_weights="ds"` and `calibrate`, estimate from every item at once). Only tables of
two-response items are chunked (`_pairs_only`)."""


def _pairs_only(work: pd.DataFrame) -> bool:
    """Every judgment shows responses 0 and 1 only. The vote's entropy is normalised by the
    largest number of responses voted for anywhere in the table, so with K-way items a chunk
    could normalise differently: those tables aggregate in one pass."""
    orders = work["order"].cat.categories if isinstance(work["order"].dtype,
                                                         pd.CategoricalDtype) else []
    try:
        return all(int(x) in (0, 1) for o in orders for x in str(o).split(","))
    except ValueError:
        return False


def _aggregate_in_chunks(work: pd.DataFrame, items: Sequence[Comparison] | None,
                         **kw: Any) -> Aggregation:
    """`_aggregate` over consecutive chunks of items of about `CHUNK_JUDGMENTS` judgments
    each, the results concatenated in item order: the same decisions (every step of these
    methods, the rules and the flags is per item), with the intermediates of one chunk alive
    at a time instead of all of them (about 300 bytes per judgment)."""
    codes = np.asarray(work["item_id"].cat.codes, dtype=np.int64)
    cats = work["item_id"].cat.categories
    per_item = np.bincount(codes[codes >= 0], minlength=len(cats))
    ids = [it.id for it in items] if items is not None else \
        list(cats.take(pd.unique(codes[codes >= 0])))
    at = cats.get_indexer(ids)
    counts = np.where(at >= 0, per_item[np.maximum(at, 0)], 0)
    bounds = [0]
    total = 0
    for n, c in enumerate(counts.tolist()):
        if total and total + c > CHUNK_JUDGMENTS:
            bounds.append(n)
            total = 0
        total += c
    bounds.append(len(ids))
    parts: list[Aggregation] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        take = np.zeros(len(cats) + 1, dtype=bool)
        chunk_at = at[lo:hi]
        take[chunk_at[chunk_at >= 0]] = True
        sub = work[take[codes]]
        chunk_items = list(items[lo:hi]) if items is not None else None
        with shared_rows():
            part = _aggregate(sub, chunk_items, **kw)
        parts.append(part)
    first = parts[0]
    prov = [p.provenance for p in parts if len(p.provenance)]
    return Aggregation(
        method=first.method, rules=first.rules,
        decisions=pd.concat([p.decisions for p in parts], ignore_index=True),
        model=_merged_model([p.model for p in parts]),
        provenance=(pd.concat(prov, ignore_index=True).sort_values("item_id", kind="stable")
                    .reset_index(drop=True) if prov else first.provenance),
        left_out={k: v for p in parts for k, v in p.left_out.items()}, calibration=None)


def _merged_model(models: list[Any]) -> Any:
    """One fitted model from the chunks' models: each fitted table (an attribute ending in
    "_") concatenated, each fitted count summed; other attributes from the first chunk."""
    models = [m for m in models if m is not None]
    if len(models) <= 1:
        return models[0] if models else None
    import copy

    out = copy.copy(models[0])
    for name in vars(models[0]):
        if not name.endswith("_") or name.startswith("_"):
            continue
        values = [getattr(m, name, None) for m in models]
        if all(isinstance(v, (pd.DataFrame, pd.Series)) for v in values):
            setattr(out, name, pd.concat(values))
        elif all(isinstance(v, (int, np.integer)) for v in values):
            setattr(out, name, int(sum(int(v) for v in values if v is not None)))
    return out


def _aggregate(judgments: pd.DataFrame, items: Sequence[Comparison] | None, *, method: str,
               rules: PanelRules | None, critic_weights: Mapping[str, float] | str | None,
               gold: Mapping[str, int] | None, calibrate: str | None,
               calibrate_share: float, **options: Any) -> Aggregation:
    spec = aggregator_spec(method)
    check_options(method, options)
    priors = None
    if calibrate is not None and len(judgments):
        from oversight.aggregate._calibration import calibrate_positions

        judgments, priors = calibrate_positions(judgments, calibrate,
                                                sample_share=calibrate_share)
    rules = rules or PanelRules()
    empty = len(judgments) == 0
    if empty:
        from oversight.critics import JUDGMENT_COLUMNS

        judgments = pd.DataFrame({c: pd.Series(dtype=object) for c in JUDGMENT_COLUMNS})
    check_judgments(judgments)
    item_ids = [it.id for it in items] if items is not None else list(
        pd.unique(judgments["item_id"]))
    k_of = {it.id: it.k for it in items} if items is not None else infer_k(judgments)
    if isinstance(critic_weights, str):
        if critic_weights != "ds":
            raise AggregationInputError(f"critic_weights={critic_weights!r}: use a mapping or "
                                        "'ds' (Dawid-Skene reliability weights)")
        from oversight.aggregate._bridges import ds_weights

        critic_weights = ds_weights(judgments, gold) if not empty else {}
    weights = check_weights(critic_weights or {}, list(pd.unique(judgments["critic"])))
    ok = judgments[judgments["status"] == "ok"]
    votes = Vote(weighted=True, critic_weights=weights).fit(judgments)
    vres = votes.results_.set_index("item_id")
    context = AggregationContext(k_of=k_of, critic_weights=weights, gold=gold, votes=votes)
    model: Any = None
    dec = pd.DataFrame(columns=["label", "p0", "margin"])
    if not ok.empty:
        model, dec = _decision_frame(spec.func(judgments, context, **options))
    dec = dec.copy()
    for col in ("share", "entropy"):
        if col not in dec.columns:
            dec[col] = vres[col].reindex(dec.index) if len(vres) else np.nan
    # labels as objects before reindexing: a missing item must not turn response 0 into 0.0
    dec["label"] = pd.Series([int(v) if isinstance(v, (int, np.integer)) else v
                              for v in dec["label"]], index=dec.index, dtype=object)
    index = pd.Index(item_ids, dtype=object)
    dec = dec.reindex(index)
    no_evidence = ~index.isin(_present(ok["item_id"]))
    dec["label"] = dec["label"].astype(object).where(dec["label"].notna() & ~no_evidence,
                                                     "abstain")
    dec.loc[no_evidence, "p0"] = np.nan
    dec.loc[no_evidence, "margin"] = 0.0
    n_ballots = vres["n_ballots"] if len(vres) else pd.Series(dtype=float)
    dec["n_critics"] = n_ballots.reindex(index).fillna(0).to_numpy().astype(int)
    dec = dec.reset_index(drop=True)
    dec.insert(0, "item_id", index.to_numpy())
    # the flags come one row per item id, in the same order: joined by position
    flags = disagreement_flags(judgments, item_ids, rules)
    for col in flags.columns.drop("item_id"):
        dec[col] = flags[col].to_numpy()
    dec["margin"] = dec["margin"].astype(float).fillna(0.0)
    dec["share"] = dec["share"].astype(float).fillna(0.0)
    dec["entropy"] = dec["entropy"].astype(float)
    dec["p0"] = dec["p0"].astype(float)
    dec = apply_rules(dec, judgments, k_of, rules)
    decided = _is_response(dec["final"].to_numpy(dtype=object))
    dec["undecided"] = (dec["label"].isin(UNDECIDED).to_numpy() & ~decided).astype(bool)
    cols = ["item_id", "final", "label", "p0", "margin", "share", "entropy", "n_critics",
            *FLAG_COLUMNS, "veto_override", "vetoed", "n_position_flips", "critic_p0_std"]
    modes = ok.drop_duplicates("critic").set_index("critic")["mode"]
    left_out = {str(c): f"{m} mode: {method} uses {', '.join(spec.modes)} judgments only"
                for c, m in modes.items() if m not in spec.modes}
    return Aggregation(method=method, decisions=dec[cols].reset_index(drop=True), rules=rules,
                       model=model, provenance=_provenance(judgments), left_out=left_out,
                       calibration=priors)
