"""Panel: several critics judging the same items, with a cached, resumable run.

`panel.judge(data, store=...)` returns a PanelResult holding the long-format judgments table
and a simple per-item summary (each critic's support, a majority verdict, a disagreement
marker). The full aggregation layer lives in `oversight.aggregate`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight.critics import JUDGMENT_COLUMNS, Critic, Judgment
from oversight.data import Comparison, load_comparisons
from oversight.panel._escalation import (
    Escalation,
    EscalationRecord,
    apply_escalation,
    contested,
)
from oversight.panel._executors import Executor, LocalExecutor, WorkUnit, work_units
from oversight.panel._run import is_run_store, write_run
from oversight.store import JudgmentStore

Progress = Callable[[int, int, str], None]
HUMAN = "human"  # the critic name imported human review labels are stored under


class Panel:
    """Critics acting as checks and balances on each other."""

    def __init__(self, critics: Sequence[Critic], *, name: str = "panel",
                 aggregator: str = "vote", rules: Any = None,
                 aggregator_options: dict[str, Any] | None = None,
                 escalation: Escalation | None = None) -> None:
        critics = list(critics)
        if not critics:
            raise ValueError("a Panel needs at least one critic")
        names = [c.name for c in critics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"critic names must be unique; repeated: {', '.join(dupes)} "
                             "(pass name=... to Critic)")
        from oversight.aggregate import PanelRules, aggregator_spec
        from oversight.aggregate._registry import check_options

        if HUMAN in names:
            raise ValueError(f"critic name {HUMAN!r} is reserved for imported human review "
                             "labels (evidence, never a vote); pass another name=...")
        aggregator_spec(aggregator)  # an unknown name lists the registered aggregators
        check_options(aggregator, aggregator_options or {})
        self.critics = critics
        self.name = name
        self.aggregator = aggregator
        self.aggregator_options = dict(aggregator_options or {})
        self.escalation = escalation
        if escalation is not None:
            clash = sorted(set(names) & {c.name for c in escalation.critics})
            if clash:
                raise ValueError(f"escalation critics must differ from the panel's critics; "
                                 f"repeated: {', '.join(clash)}")
        veto = tuple(c.name for c in critics if c.veto)
        self.rules = rules or PanelRules(veto_critics=veto)
        if veto and not set(veto) <= set(self.rules.veto_critics):
            self.rules.veto_critics = tuple(sorted(set(self.rules.veto_critics) | set(veto)))

    def __repr__(self) -> str:
        return f"Panel({self.name!r}, critics={[c.name for c in self.critics]})"

    def plan(self, items: Sequence[Comparison]) -> dict[str, list[Any]]:
        return {c.name: c.tasks(items) for c in self.critics}

    def judge(self, data: Any, *, store: JudgmentStore | str | Path | None = None,
              batch_size: int = 16, progress: Progress | None = None, seed: int = 0,
              skip_bad: bool = False, limit: int | None = None,
              executor: Executor | None = None) -> PanelResult:
        """Judge every item with every critic. With a store, only missing keys are computed.

        `executor` runs the work units: `LocalExecutor()` in this process (the default) or
        `RayExecutor(...)` on Ray actors. Either way this process writes the store, one
        transaction per unit as results arrive, and the result is the same."""
        loaded = load_comparisons(data, seed=seed, skip_bad=skip_bad, limit=limit)
        items, skipped = list(loaded), loaded.skipped
        own_store = isinstance(store, (str, Path))
        db = JudgmentStore(store) if isinstance(store, (str, Path)) else store
        guard = ExitStack()
        try:
            if db is not None:  # a second run on this store waits here, then resumes
                guard.enter_context(db.run_lock())
            plan = self.plan(items)
            total = sum(len(t) for t in plan.values())
            done_count = 0
            collected: list[Judgment] = []
            todo: list[list[Any]] = []
            if db is not None:
                db.put_items(items)
            for critic in self.critics:
                tasks = plan[critic.name]
                if db is not None:
                    db.put_critic(critic.config())
                    done = db.done_keys(critic.fingerprint)
                    missing = [t for t in tasks if t.key not in done]
                else:
                    missing = tasks
                done_count += len(tasks) - len(missing)
                todo.append(missing)
            if progress:
                progress(done_count, total, "cached")

            def record(unit: WorkUnit, out: list[Judgment]) -> None:
                nonlocal done_count
                if db is not None:
                    db.put(out)  # one transaction per unit: a kill loses at most what's in flight
                else:
                    collected.extend(out)
                done_count += len(out)
                if progress:
                    progress(done_count, total,
                             "+".join(self.critics[ci].name for ci, _ in unit.parts))

            units = work_units(self.critics, todo, items, batch_size)
            (executor or LocalExecutor()).run(self.critics, units, record)
            if db is None:  # units may finish in any order: return them in plan order
                planned = [(c.fingerprint, *t.key) for c in self.critics for t in plan[c.name]]
                rank = {k: n for n, k in enumerate(planned)}
                collected.sort(key=lambda j: rank.get((j.fingerprint, j.item_id, j.principle,
                                                       j.order), 0))
            if db is not None:
                wanted = {c.fingerprint: {t.key for t in plan[c.name]} for c in self.critics}
                collected = []
                for fp, keys in wanted.items():
                    collected.extend(j for j in db.judgments(fingerprint=fp)
                                     if (j.item_id, j.principle, j.order) in keys)
            if db is not None and is_run_store(db.path):  # a run directory: say what ran
                write_run(db.path.parent, critics=[c.config() for c in self.critics],
                          aggregator=self.aggregator,
                          aggregator_options=self.aggregator_options, rules=self.rules,
                          panel=self.name, items=len(items))
        finally:
            guard.close()
            if own_store and db is not None:
                db.close()
        # A critic name can only map to one fingerprint within a run.
        names = {c.fingerprint: c.name for c in self.critics}
        for j in collected:
            j.critic = names.get(j.fingerprint, j.critic)
        result = PanelResult(items=items, judgment_rows=collected,
                             critics=[c.config() for c in self.critics], skipped=list(skipped),
                             aggregator=self.aggregator, rules=self.rules,
                             aggregator_options=self.aggregator_options)
        if self.escalation is not None:
            result.escalation = self._escalate(result, store, batch_size=batch_size,
                                               progress=progress, executor=executor)
        return result

    def _escalate(self, result: PanelResult, store: Any, **judge_options: Any
                  ) -> EscalationRecord:
        """Send the cheap panel's contested items to the strong critics or to review."""
        esc = self.escalation
        assert esc is not None
        flagged = contested(result.aggregate().decisions, result.judgments, esc.flags,
                            esc.min_margin)
        flagged["to"] = esc.to
        record = EscalationRecord(items=flagged, to=esc.to, n_items=len(result.items),
                                  critics=[c.name for c in esc.critics])
        if esc.to == "critic":
            record.if_all = sum(len(c.tasks(result.items)) for c in esc.critics)
            wanted = set(flagged["item_id"])
            chosen = [it for it in result.items if it.id in wanted]
            if chosen:
                strong = Panel(esc.critics, name=f"{self.name}:escalation",
                               aggregator=self.aggregator,
                               aggregator_options=self.aggregator_options)
                record.strong = strong.judge(chosen, store=store, **judge_options)
                record.spent = sum(len(c.tasks(chosen)) for c in esc.critics)
        return record


@dataclass
class PanelResult:
    """Judgments with provenance, plus a simple per-item summary."""

    items: list[Comparison]
    judgment_rows: list[Judgment]
    critics: list[dict[str, Any]]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    aggregator: str = "vote"
    rules: Any = None
    aggregator_options: dict[str, Any] = field(default_factory=dict)
    escalation: EscalationRecord | None = None

    def aggregate(self, method: str | None = None, **options: Any) -> Any:
        """Run an aggregator (default: the panel's) with the panel's rules; see
        `oversight.aggregate.aggregate`. Critic weights come from the critics' `weight`."""
        from oversight.aggregate import aggregate

        opts = {**(self.aggregator_options if method is None else {}), **options}
        judgments = self.judgments
        present = set(judgments["critic"])
        # The critics' own weights, for the critics that have judgments (a critic with none
        # has nothing to weigh); weights passed here are checked as given.
        weights = opts.pop("critic_weights", None) or {
            c["name"]: float(c.get("weight", 1.0)) for c in self.critics if c["name"] in present}
        gold = opts.pop("gold", None)
        agg = aggregate(judgments, self.items, method=method or self.aggregator,
                        rules=opts.pop("rules", self.rules), critic_weights=weights,
                        gold=gold, **opts)
        if self.escalation is not None:
            agg = apply_escalation(agg, self.escalation, judgments)
        return agg

    @property
    def aggregation(self) -> Any:
        """The panel's configured aggregation (computed once)."""
        if getattr(self, "_aggregation", None) is None:
            self._aggregation = self.aggregate()
        return self._aggregation

    @property
    def preferences(self) -> Any:
        """TRL-shaped preference rows from the configured aggregation."""
        return self.aggregation.preferences(self.items)

    @property
    def flags(self) -> Any:
        return self.aggregation.decisions

    @property
    def plot(self) -> Any:
        """The report's figures for this result (`oversight.report.Plots`), e.g.
        `result.plot.agreement()` returns a matplotlib Figure.

        A thin accessor: the report layer sits above the panel (it reads PanelResults), so the
        panel never imports it; the report module is looked up by name on first use."""
        if getattr(self, "_plots", None) is None:
            import importlib

            report = importlib.import_module("oversight.report")
            self._plots = report.Plots(report.Analysis.from_result(self))
        return self._plots

    @property
    def critic_names(self) -> list[str]:
        return [c["name"] for c in self.critics]

    @property
    def judgments(self) -> Any:
        """The long-format judgments table (pandas), one row per judgment."""
        import pandas as pd

        df = pd.DataFrame([j.to_dict() for j in self.judgment_rows], columns=JUDGMENT_COLUMNS)
        return df

    # -- simple aggregation ----------------------------------------------------------------
    def support(self, orders: str = "all") -> dict[tuple[str, str], list[float]]:
        """Per (item, critic): each response's weighted mean support.

        Pairwise: the mean probability that the response wins its comparisons; score: mean
        expected score; passfail: mean P(pass). `orders="first"` keeps only judgments with the
        lower index shown first (no position swap); `orders="swapped"` only the reverse; both
        leave out score and pass/fail judgments, which show one response and have no order.
        """
        from oversight.aggregate import response_support

        sup = response_support(self.judgments, orders=_orders(orders))
        k_of = {it.id: it.k for it in self.items}
        out: dict[tuple[str, str], list[float]] = {}
        for item, critic, response, value in zip(sup["item_id"], sup["critic"],
                                                 sup["response"], sup["support"]):
            if item in k_of:
                out.setdefault((item, critic), [math.nan] * k_of[item])[int(response)] = value
        return out

    def verdicts(self, orders: str = "all") -> dict[tuple[str, str], int | str]:
        """Per (item, critic): the index of the best-supported response, 'tie' or 'abstain'
        (`oversight.aggregate.verdict_of`)."""
        from oversight.aggregate import verdict_of

        sup = self.support(orders)
        out: dict[tuple[str, str], int | str] = {}
        for it in self.items:
            for name in self.critic_names:
                s = sup.get((it.id, name))
                out[(it.id, name)] = "abstain" if s is None else verdict_of(s)
        return out

    def _modes(self) -> dict[str, str]:
        return {c["name"]: str(c.get("mode", "pairwise")) for c in self.critics}

    def summary(self, orders: str = "all") -> Any:
        """One row per item: each critic's support for response A (or its verdict for K-way),
        the panel's majority verdict, the mean P(A), and a disagreement marker.

        `mean_p_a` averages pairwise critics only: a score critic's support is an expected
        1-10 score and a pass/fail critic's is P(pass), neither of which is P(A is better);
        their verdicts still count in `votes` and `verdict`. The critics left out of
        `mean_p_a` are listed in `summary().attrs["mean_p_a_left_out"]`."""
        import pandas as pd

        sup = self.support(orders)
        ver = self.verdicts(orders)
        modes = self._modes()
        rows = []
        for it in self.items:
            row: dict[str, Any] = {"item_id": it.id, "k": it.k, "reference": it.reference}
            votes: dict[int, int] = defaultdict(int)
            p_first = []
            for name in self.critic_names:
                s = sup.get((it.id, name))
                row[f"{name}"] = s[0] if s is not None else math.nan
                v = ver[(it.id, name)]
                row[f"{name}_verdict"] = v
                if isinstance(v, int):
                    votes[v] += 1
                if (s is not None and not math.isnan(s[0]) and it.k == 2
                        and modes.get(name) == "pairwise"):
                    p_first.append(s[0])
            row["votes"] = sum(votes.values())
            row["verdict"] = _majority(votes)
            row["mean_p_a"] = sum(p_first) / len(p_first) if p_first else math.nan
            distinct = {ver[(it.id, n)] for n in self.critic_names} - {"abstain"}
            row["disagree"] = len(distinct) > 1
            rows.append(row)
        out = pd.DataFrame(rows)
        out.attrs["mean_p_a_left_out"] = {
            n: f"{m} mode: its support is not P(A is better)" for n, m in modes.items()
            if m != "pairwise"}
        return out

    def agreement(self, orders: str = "all") -> Any:
        """Agreement of each critic and of the panel majority with the reference labels
        (`oversight.aggregate.agreement_with_reference`: a tie counts as half agreement;
        abstentions are left out of n; 95% Wilson intervals)."""
        from oversight.aggregate import agreement_table

        summ = self.summary(orders)
        ref = {i: int(r) for i, r in zip(summ["item_id"], summ["reference"]) if r == r
               and r is not None}
        by_name = {name: dict(zip(summ["item_id"], summ[f"{name}_verdict"]))
                   for name in self.critic_names}
        by_name["panel"] = dict(zip(summ["item_id"], summ["verdict"]))
        return agreement_table(by_name, ref).drop(columns="n_ties")

    def position_flips(self) -> Any:
        """Per critic: the share of pairwise items whose verdict changes when order is swapped,
        and the mean P(first shown) -- 0.5 for an unbiased judge
        (`oversight.aggregate.position_flip_rates`). Score and pass/fail critics show one
        response at a time: their rate is NaN and `left_out` says why."""
        from oversight.aggregate import position_flip_rates

        out = position_flip_rates(self.judgments, self.critic_names)
        return out.drop(columns="flips")

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for j in self.judgment_rows:
            counts[j.status] += 1
        return dict(counts)

    def reason_counts(self) -> dict[str, dict[str, int]]:
        """Abstentions and errors counted by cause: {"abstain": {"no-verdict": 3}, ...}.

        The cause is the reason's leading code (see `oversight.critics._parse`); an error's is
        the text before its first colon, such as "HTTP 500" or "TimeoutError".
        """
        from oversight.critics._parse import reason_code

        counts: dict[str, dict[str, int]] = {}
        for j in self.judgment_rows:
            if j.status != "ok":
                by = counts.setdefault(j.status, {})
                code = reason_code(j.reason)
                by[code] = by.get(code, 0) + 1
        return {s: dict(sorted(by.items())) for s, by in sorted(counts.items())}


def _orders(orders: str) -> str:
    which = {"all": "all", "first": "forward", "swapped": "reverse"}
    if orders not in which:
        raise ValueError(f"orders={orders!r}: use one of {', '.join(which)}")
    return which[orders]


def _majority(votes: dict[int, int]) -> int | str:
    if not votes:
        return "abstain"
    best = max(votes.values())
    winners = [k for k, v in votes.items() if v == best]
    return winners[0] if len(winners) == 1 else "tie"
