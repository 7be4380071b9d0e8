"""The tables behind a disagreement report, computed once from items and judgments.

`Analysis` holds a run (items, the long judgments table, critic configs) and derives every
table the report shows: Cohen's kappa between critics, disagreement per principle, position
bias, Bradley-Terry strengths, Dawid-Skene reliability, the principle-conflict graph, panel
margins, the most contested items, and agreement and calibration against reference labels.
The statistics themselves (agreement with a reference, Wilson and mean intervals, calibration
error, position flips) are defined once in `oversight.aggregate`; this module selects and
tabulates them, and bootstraps Dawid-Skene reliabilities. A critic named `human` (labels
imported by `oversight review import`) is a reference, never a panel member: it is kept out of
the panel's aggregation. Statistics that only make sense for some judging modes say which
critics they left out and why (`left_out` columns, `calibration_left_out`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from oversight._deprecated import no_other_kwargs, renamed_kwarg
from oversight.aggregate import (
    FLAG_COLUMNS,
    BradleyTerry,
    DawidSkene,
    PanelRules,
    aggregate,
    agreement_table,
    ballots,
    cohen_kappa_matrix,
    critic_labels,
    critic_p0,
    expected_calibration_error,
    label_matrix,
    mean_ci,
    position_flip_rates,
    principle_conflict_graph,
    reliability_bootstrap,
    wilson_ci,
)
from oversight.critics import JUDGMENT_COLUMNS
from oversight.data import Comparison
from oversight.errors import OversightError
from oversight.panel import PanelResult
from oversight.panel._panel import TableSource

HUMAN = "human"  # the critic name human review labels are stored under


def _as_frame(judgments: Any) -> pd.DataFrame:
    if isinstance(judgments, pd.DataFrame):
        return judgments
    return pd.DataFrame([j.to_dict() for j in judgments], columns=JUDGMENT_COLUMNS)


def _arrow(frame: pd.DataFrame) -> Any:
    """A judgments table as Arrow columns in `JUDGMENT_COLUMNS` order (no row objects)."""
    import pyarrow as pa

    from oversight.store._columns import SCHEMA

    cols = {}
    for field in SCHEMA:
        col = frame[field.name] if field.name in frame.columns else None
        if col is None:
            cols[field.name] = pa.nulls(len(frame), type=field.type)
        elif pa.types.is_string(field.type):
            values = col.astype(object).to_numpy()
            cols[field.name] = pa.array(values, type=field.type, from_pandas=True)
        else:
            cols[field.name] = pa.array(col.to_numpy(), type=field.type, from_pandas=True)
    return pa.table(cols, schema=SCHEMA)


class _ItemRows:
    """One item's judgments from a table sorted once by item (not one frame per item)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        codes, ids = pd.factorize(frame["item_id"])
        order = np.argsort(codes, kind="stable")
        self._frame = frame.iloc[order].reset_index(drop=True)
        bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
        self._at = {str(i): (int(a), int(b)) for i, a, b in zip(ids, bounds[:-1], bounds[1:])}

    def get(self, item_id: str) -> pd.DataFrame | None:
        span = self._at.get(item_id)
        return None if span is None else self._frame.iloc[span[0]:span[1]]


class Analysis:
    """Every table of a disagreement report, computed lazily and cached.

    Build it with `Analysis.from_run(run_dir)`, `Analysis.from_result(panel_result)` or from
    items and a judgments table. `method` picks the panel aggregator (vote, majority, bt, ds,
    conservative) used for margins and contested items; `rules` the panel rules.
    """

    def __init__(self, items: Sequence[Comparison], judgments: Any,
                 critics: Sequence[dict[str, Any]] | None = None, *,
                 method: str | None = "vote", rules: PanelRules | None = None,
                 method_options: dict[str, Any] | None = None, title: str = "oversight report",
                 meta: dict[str, Any] | None = None, n_boot: int = 200, seed: int = 0,
                 conflict_min_items: int = 20, conflict_threshold: float = -0.3,
                 **renamed: Any) -> None:
        method_options = renamed_kwarg("Analysis", renamed, "aggregator_options",
                                       "method_options", method_options)
        no_other_kwargs("Analysis", renamed)
        frame = _as_frame(judgments)
        if frame.empty:
            raise OversightError("the run holds no judgments: nothing to report")
        self.items = list(items)
        self.all_judgments = frame
        self.judgments = frame[frame["critic"] != HUMAN].reset_index(drop=True)
        self.human_judgments = frame[frame["critic"] == HUMAN].reset_index(drop=True)
        if self.judgments.empty:
            raise OversightError("the run holds only human labels: nothing to report")
        present = list(pd.unique(self.judgments["critic"]))
        configured = [c["name"] for c in (critics or []) if c.get("name") in present]
        names = list(dict.fromkeys([*configured, *present]))  # the panel's order first
        by_name = {c["name"]: c for c in (critics or []) if c.get("name") != HUMAN}
        self.critics = [by_name.get(n, {"name": n}) for n in names]
        self.critic_names = names
        self.method = method or "vote"
        self.method_options = dict(method_options or {})
        veto = tuple(c["name"] for c in self.critics if c.get("veto"))
        self.rules = rules or PanelRules(veto_critics=veto)
        self.title = title
        self.meta = dict(meta or {})
        self.n_boot = n_boot
        self.seed = seed
        self.conflict_min_items = conflict_min_items
        self.conflict_threshold = conflict_threshold

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_result(cls, result: PanelResult, **options: Any) -> Analysis:
        if options.get("method") is None:
            options["method"] = result.method
            options.setdefault("method_options", result.method_options)
        if result.rules is not None:
            options.setdefault("rules", result.rules)
        return cls(result.items, result.judgments, result.critics, **options)

    @classmethod
    def from_run(cls, run_dir: str | Path, **options: Any) -> Analysis:
        """Load a run directory through `oversight.panel.open_run`: exactly the run's critics,
        the human labels as a reference, and the panel's aggregator, options and rules."""
        from oversight.panel import open_run

        run = open_run(run_dir)
        if options.get("method") is None:
            options["method"] = run.method
            options.setdefault("method_options", run.method_options)
        options.setdefault("rules", run.rules)
        meta: dict[str, Any] = {"run": str(run_dir)}
        meta.update({k: run.info[k] for k in ("panel", "data", "seed") if run.info.get(k)})
        options.setdefault("title", f"oversight report: {run.path.name}")
        options.setdefault("meta", meta)
        frame = pd.concat([run.judgments, run.human_judgments], ignore_index=True) \
            if len(run.human_judgments) else run.judgments
        return cls(run.items, frame, run.critics, **options)

    # -- the panel, without and with a reference ------------------------------------------
    @cached_property
    def result(self) -> PanelResult:
        return PanelResult(items=self.items, critics=self.critics, method=self.method,
                           rules=self.rules, method_options=self.method_options,
                           source=TableSource(_arrow(self.judgments)))

    @cached_property
    def aggregation(self) -> Any:
        weights = {c["name"]: float(c.get("weight", 1.0)) for c in self.critics}
        return aggregate(self.judgments, self.items, method=self.method, rules=self.rules,
                         critic_weights=weights, **self.method_options)

    @cached_property
    def human_labels(self) -> dict[str, int]:
        """item_id -> the response human reviewers prefer (ties and abstentions left out)."""
        if self.human_judgments.empty:
            return {}
        labs = critic_labels(self.human_judgments)
        return {i: int(v) for i, v in zip(labs["item_id"], labs["label"])}

    def references(self) -> dict[str, dict[str, int]]:
        """Reference label sets present: 'reference' (data labels) and 'human' (reviews)."""
        out: dict[str, dict[str, int]] = {}
        ref = {it.id: int(it.reference) for it in self.items if it.reference is not None}
        if ref:
            out["reference"] = ref
        if self.human_labels:
            out[HUMAN] = self.human_labels
        return out

    # -- agreement between critics --------------------------------------------------------
    @cached_property
    def labels(self) -> pd.DataFrame:
        """Each critic's verdict per item (critic_labels over every judging mode), human
        reviewers included."""
        return critic_labels(self.all_judgments, "all")

    @cached_property
    def kappa(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(Cohen's kappa matrix, matrix of jointly labelled item counts)."""
        x, critics, _ = label_matrix(self.labels)
        order = [*self.critic_names, *([HUMAN] if HUMAN in critics else [])]
        # a critic with no verdict at all (e.g. only ties) keeps an all-missing row
        x = np.vstack([x[critics.index(c)] if c in critics else np.full(x.shape[1], np.nan)
                       for c in order]) if x.size else np.full((len(order), 0), np.nan)
        k = cohen_kappa_matrix(x, order)
        m = (~np.isnan(x)).astype(float)
        n = pd.DataFrame(m @ m.T, index=order, columns=order).astype(int)
        return k, n

    @cached_property
    def principle_disagreement(self) -> pd.DataFrame:
        """Per (critic, principle): how often its verdict differs from the other critics'.

        Each principle's ballot on an item is compared with every other (model) critic's
        verdict on that item; ties and abstentions are left out. `rate` = share of those
        comparisons that differ, with a 95% Wilson interval (comparisons on one item are not
        independent, so the interval is a little optimistic).
        """
        p = ballots(self.judgments, unit="principle")
        c = ballots(self.judgments, unit="critic")
        cols = ["critic", "principle", "n_items", "n", "disagree", "rate", "ci_low", "ci_high"]
        if p.empty or c.empty:
            return pd.DataFrame(columns=cols)
        p = p[p["vote"] >= 0][["item_id", "critic", "principle", "vote"]]
        c = c[c["vote"] >= 0][["item_id", "critic", "vote"]]
        m = p.merge(c, on="item_id", suffixes=("", "_other"))
        m = m[m["critic"] != m["critic_other"]]
        rows = []
        for (critic, principle), g in m.groupby(["critic", "principle"], sort=True):
            n = len(g)
            d = int((g["vote"] != g["vote_other"]).sum())
            lo, hi = wilson_ci(d, n)
            rows.append({"critic": critic, "principle": principle,
                         "n_items": int(g["item_id"].nunique()), "n": n, "disagree": d,
                         "rate": d / n, "ci_low": lo, "ci_high": hi})
        out = pd.DataFrame(rows, columns=cols)
        return out.sort_values("rate", ascending=False, kind="stable").reset_index(drop=True)

    # -- position bias --------------------------------------------------------------------
    @cached_property
    def position_bias(self) -> pd.DataFrame:
        """Per critic: mean P(first shown is better) by the order shown, with 95% CIs.

        `p_first_forward`: mean over judgments with the lower index shown first;
        `p_first_reverse`: with it shown second. An order-blind judge has both near 0.5 on
        balanced data; `bias` = mean P(first shown) - 0.5 over all pairwise judgments, and
        `flip_rate` is the share of pairs whose verdict flips when the order is swapped.
        """
        pw = self.judgments[(self.judgments["mode"] == "pairwise")
                            & (self.judgments["status"] == "ok")
                            & self.judgments["value"].notna()]
        shown = pw["order"].astype(str).str.split(",", expand=True)
        fwd = (shown[0].astype(int) < shown[1].astype(int)) if len(pw) else pd.Series(
            dtype=bool)
        flips = position_flip_rates(self.judgments, self.critic_names).set_index("critic")
        rows = []
        for name in self.critic_names:
            sel = (pw["critic"] == name).to_numpy()
            v = pw["value"].to_numpy(dtype=float)[sel]
            f = fwd.to_numpy(dtype=bool)[sel] if len(pw) else np.zeros(0, dtype=bool)
            row: dict[str, Any] = {"critic": name, "n": int(sel.sum())}
            for key, part in (("forward", v[f]), ("reverse", v[~f]), ("all", v)):
                m, lo, hi = mean_ci(part)
                suffix = "" if key == "all" else f"_{key}"
                row[f"p_first{suffix}"] = m
                row[f"p_first{suffix}_low"] = lo
                row[f"p_first{suffix}_high"] = hi
            row["bias"] = row["p_first"] - 0.5
            row["flip_rate"] = float(flips.at[name, "flip_rate"]) if name in flips.index \
                else math.nan
            row["left_out"] = str(flips.at[name, "left_out"]) if name in flips.index else ""
            rows.append(row)
        return pd.DataFrame(rows)

    # -- strengths and reliability --------------------------------------------------------
    @cached_property
    def strengths(self) -> tuple[pd.DataFrame | None, str]:
        """Bradley-Terry strengths with CIs: (table or None, what they are / why absent).

        Global when items name the entity behind each response (`meta["models"]`, one per
        response): one strength per entity. Otherwise per item for K-way items (K >= 3).
        Plain two-response items without entities have no strengths worth plotting: a
        two-response BT fit is just the panel's P(A).
        """
        ok = self.judgments[(self.judgments["mode"] == "pairwise")
                            & (self.judgments["status"] == "ok")]
        if ok.empty:
            return None, "no pairwise judgments"
        ents = [(it.id, r, str(m)) for it in self.items
                if isinstance(it.meta.get("models"), (list, tuple))
                and len(it.meta["models"]) == it.k for r, m in enumerate(it.meta["models"])]
        if ents:
            table = pd.DataFrame(ents, columns=["item_id", "response", "entity"])
            sub = ok[ok["item_id"].isin(set(table["item_id"]))]
            bt = BradleyTerry(scope="global").fit(sub, entity_of=table)
            s = bt.strengths_.reset_index()
            return s, "global: one strength per model (items' meta['models'])"
        kway = {it.id for it in self.items if it.k >= 3}
        if not kway:
            return None, ("all items have two responses and name no model per response "
                          "(meta['models']), so there is nothing to rank beyond P(A)")
        bt = BradleyTerry(scope="item").fit(ok[ok["item_id"].isin(kway)])
        s = bt.strengths_.copy()
        s["entity"] = s["item_id"].str[:8] + ":" + s["response"].astype(str)
        return s, "per item: the K-way items' responses"

    @cached_property
    def reliability(self) -> pd.DataFrame:
        """Dawid-Skene reliability per critic with bootstrap 95% CIs (items resampled;
        `oversight.aggregate.reliability_bootstrap`).

        `reliability` is unsupervised; `reliability_human` is semi-supervised, with imported
        human labels clamped as gold (present only when human labels exist).
        """
        out = reliability_bootstrap(self.judgments, self.critic_names, n_boot=self.n_boot,
                                    seed=self.seed)
        if self.human_labels and len(out):
            semi = DawidSkene(mode="all").fit(self.judgments, gold=self.human_labels)
            out["reliability_human"] = out["critic"].map(semi.reliability_)
            out.attrs["n_gold"] = semi.n_gold_
        return out

    # -- principles that pull apart -------------------------------------------------------
    @cached_property
    def conflict_graph(self) -> nx.Graph:
        return principle_conflict_graph(self.judgments, min_items=self.conflict_min_items,
                                        threshold=self.conflict_threshold)

    # -- items ----------------------------------------------------------------------------
    @cached_property
    def decisions(self) -> pd.DataFrame:
        return self.aggregation.decisions

    def contested(self, n: int = 10) -> pd.DataFrame:
        """The `n` most contested items: split first, then veto conflicts, then the widest
        spread of critics' P(A), then the smallest panel margin."""
        d = self.decisions.copy()
        d["_std"] = d["critic_p0_std"].fillna(-1.0)
        d = d.sort_values(["split", "veto_conflict", "_std", "margin"],
                          ascending=[False, False, False, True], kind="stable")
        return d.drop(columns="_std").head(n).reset_index(drop=True)

    def item(self, item_id: str) -> Comparison:
        return self._items_by_id[item_id]

    @cached_property
    def _items_by_id(self) -> dict[str, Comparison]:
        return {it.id: it for it in self.items}

    def critic_views(self, item_id: str) -> list[dict[str, Any]]:
        """Each critic's verdict, support and judgments (with rationales) on one item."""
        sup = self._support.get(item_id, {})
        j = self._judgments_by_item.get(item_id)
        out = []
        for name in [*self.critic_names, *([HUMAN] if not self.human_judgments.empty
                                          else [])]:
            s = sup.get(name)
            records = [] if j is None else j[j["critic"] == name].to_dict("records")
            if s is None and not records:
                continue
            verdict: Any = "abstain"
            vals = [v for v in (s or []) if not math.isnan(v)]
            if vals:
                winners = [i for i, v in enumerate(s or []) if v == max(vals)]
                verdict = winners[0] if len(winners) == 1 else "tie"
            out.append({"critic": name, "support": s, "verdict": verdict, "judgments": [
                {"principle": r["principle"], "order": r["order"], "status": r["status"],
                 "value": None if pd.isna(r["value"]) else float(r["value"]),
                 # a text column holding some None reads back as NaN: never show "nan"
                 "rationale": None if pd.isna(r["rationale"]) else r["rationale"] or None,
                 "reason": None if pd.isna(r["reason"]) else r["reason"] or None}
                for r in records]})
        return out

    @cached_property
    def _support(self) -> dict[str, dict[str, list[float]]]:
        from oversight.aggregate import response_support

        sup = response_support(self.all_judgments)
        k_of = {it.id: it.k for it in self.items}
        out: dict[str, dict[str, list[float]]] = {}
        for item, critic, r, v in zip(sup["item_id"], sup["critic"], sup["response"],
                                      sup["support"]):
            if item in k_of:
                out.setdefault(item, {}).setdefault(critic, [math.nan] * k_of[item])[
                    int(r)] = float(v)
        return out

    @cached_property
    def _judgments_by_item(self) -> _ItemRows:
        return _ItemRows(self.all_judgments)

    # -- against reference labels ---------------------------------------------------------
    def reference_agreement(self, source: str = "reference") -> pd.DataFrame:
        """Each critic's and the panel's agreement with a reference label set, 95% Wilson CIs.

        `panel` is the simple majority of critics (PanelResult.agreement); `panel:<method>`
        the configured aggregation's final decision. For source="reference", a `human` row
        gives the reviewers' own agreement with the data labels where both exist.
        """
        labels = self.references().get(source)
        if not labels:
            return pd.DataFrame(columns=["critic", "n", "agreement", "ci_low", "ci_high"])
        items = [dataclasses.replace(it, reference=labels.get(it.id)) for it in self.items]
        res = dataclasses.replace(self.result, items=items)
        out = res.agreement()
        extra = {f"panel:{self.method}": dict(zip(self.decisions["item_id"],
                                                  self.decisions["final"]))}
        if source != HUMAN and self.human_labels:
            extra[HUMAN] = dict(self.human_labels)
        more = agreement_table(extra, labels).drop(columns="n_ties")
        return pd.concat([out, more], ignore_index=True)

    @cached_property
    def _modes(self) -> dict[str, str]:
        ok = self.judgments[self.judgments["status"] == "ok"]
        found = ok.drop_duplicates("critic").set_index("critic")["mode"].to_dict()
        conf = {c["name"]: c.get("mode") for c in self.critics if c.get("mode")}
        return {n: str(found.get(n) or conf.get(n) or "pairwise") for n in self.critic_names}

    @property
    def calibration_left_out(self) -> dict[str, str]:
        """Critics `calibration` leaves out, and why: only pairwise critics give P(A)."""
        return {n: f"{m} mode: gives no P(response 0 is better) to calibrate"
                for n, m in self._modes.items() if m != "pairwise"}

    def calibration(self, source: str = "reference", n_bins: int = 10
                    ) -> dict[str, tuple[float, pd.DataFrame, int]]:
        """name -> (ECE, bins, n) for each pairwise critic's and the panel's P(response 0
        better) on two-response items with a label in `source`. Score and pass/fail critics
        are left out (`calibration_left_out` says so)."""
        labels = self.references().get(source, {})
        two = {it.id for it in self.items if it.k == 2}
        labels = {i: v for i, v in labels.items() if i in two}
        out: dict[str, tuple[float, pd.DataFrame, int]] = {}
        if not labels:
            return out
        p0 = critic_p0(self.judgments[self.judgments["mode"] == "pairwise"])
        modes = self._modes
        series: list[tuple[str, pd.Series]] = [
            (name, p0[p0["critic"] == name].set_index("item_id")["p0"])
            for name in self.critic_names if modes.get(name) == "pairwise"]
        series.append((f"panel:{self.method}", self.decisions.set_index("item_id")["p0"]))
        ref = pd.Series(labels, dtype=float)
        for name, s in series:
            s = s.astype(float).reindex(ref.index)
            if ((s < 0) | (s > 1)).any():  # e.g. conservative with lam > 1: not a probability
                continue
            keep = s.notna()
            if not keep.any():
                continue
            ece, bins = expected_calibration_error(s[keep].to_numpy(), ref[keep].to_numpy(),
                                                   n_bins)
            out[name] = (ece, bins, int(keep.sum()))
        return out

    @cached_property
    def flag_counts(self) -> dict[str, int]:
        return {f: int(self.decisions[f].sum()) for f in FLAG_COLUMNS}
