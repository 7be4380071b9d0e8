"""Panel: several critics judging the same items, with a cached, resumable run.

`panel.judge(data, store=...)` returns a PanelResult holding the long-format judgments table
and a simple per-item summary (each critic's support, a majority verdict, a disagreement
marker). The full aggregation layer lives in `oversight.aggregate`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oversight._deprecated import no_other_kwargs, renamed_attribute, renamed_kwarg, renamed_value
from oversight._gc import young_gc
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
from oversight.store._columns import (
    Selection,
    categorical_frame,
    concat,
    read_all_batches,
    read_batches,
    rows_to_table,
    write_parquet_parts,
)
from oversight.store._columns import (
    to_pandas as _to_pandas,
)

if TYPE_CHECKING:  # pandas and pyarrow load when a result is read, not on `import oversight`
    import pandas as pd
    import pyarrow as pa

    from oversight.aggregate import Aggregation
    from oversight.panel._preferences import PreferencesFrame

Progress = Callable[[int, int, str], None]
# What aggregation reads: every column but the free text (raw output, rationale, reason), which
# is most of a row's bytes and which no aggregator looks at.
AGGREGATE_COLUMNS = [c for c in JUDGMENT_COLUMNS if c not in ("raw", "rationale", "reason")]
ORDERS = ("all", "forward", "reverse")  # as oversight.aggregate's critic_verdicts
HUMAN = "human"  # the critic name imported human review labels are stored under


class Panel:
    """Critics acting as checks and balances on each other."""

    def __init__(self, critics: Sequence[Critic], *, name: str = "panel",
                 method: str = "vote", rules: Any = None,
                 method_options: dict[str, Any] | None = None,
                 escalation: Escalation | None = None, **renamed: Any) -> None:
        # aggregator= / aggregator_options= are the old names of method= / method_options=
        # (the word `oversight.aggregate.aggregate` and `--method` use)
        method = renamed_kwarg("Panel", renamed, "aggregator", "method", method)
        method_options = renamed_kwarg("Panel", renamed, "aggregator_options", "method_options",
                                       method_options)
        no_other_kwargs("Panel", renamed)
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
        aggregator_spec(method)  # an unknown name lists the registered aggregators
        check_options(method, method_options or {})
        self.critics = critics
        self.name = name
        self.method = method
        self.method_options = dict(method_options or {})
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

    aggregator = renamed_attribute("Panel", "aggregator", "method")
    aggregator_options = renamed_attribute("Panel", "aggregator_options", "method_options")

    def __repr__(self) -> str:
        return f"Panel({self.name!r}, critics={[c.name for c in self.critics]})"

    def plan(self, items: Sequence[Comparison]) -> dict[str, list[Any]]:
        return {c.name: c.tasks(items) for c in self.critics}

    def judge(self, data: Any, *, store: JudgmentStore | str | Path | None = None,
              batch_size: int = 16, progress: Progress | None = None, seed: int = 0,
              skip_bad: bool = False, limit: int | None = None,
              executor: Executor | None = None, chunk_items: int = 4096,
              commit_rows: int = 8192, commit_s: float = 0.25) -> PanelResult:
        """Judge every item with every critic. With a store, only missing keys are computed.

        `executor` runs the work units: `LocalExecutor()` in this process (the default) or
        `RayExecutor(...)` on Ray actors. Either way this process writes the store as results
        arrive, and the result is the same.

        The plan is made `chunk_items` items at a time, so memory does not grow with the run.
        Rows are committed in one transaction when `commit_rows` have arrived or `commit_s`
        seconds have passed since the last commit, whichever comes first (a slow backend
        commits every unit; a fast one commits thousands of rows at once). A kill loses at
        most the uncommitted rows, which a rerun computes; nothing is ever written twice.
        With a store, the result reads its judgments back from it (columns, on demand)."""
        loaded = load_comparisons(data, seed=seed, skip_bad=skip_bad, limit=limit)
        items, skipped = list(loaded), loaded.skipped
        own_store = isinstance(store, (str, Path))
        db = JudgmentStore(store) if isinstance(store, (str, Path)) else store
        guard = ExitStack()
        pending: list[tuple[Any, ...]] = []
        collected: list[Any] = []  # without a store: Arrow batches of rows in plan order
        try:
            if db is not None:  # a second run on this store waits here, then resumes
                guard.enter_context(db.run_lock())
                db.put_items(items)
                for critic in self.critics:
                    db.put_critic(critic.config())
            total = _task_total(self.critics, items)
            state = {"done": 0, "last_commit": time.perf_counter()}

            def flush() -> None:
                if pending and db is not None:
                    db.put_rows(pending)  # one transaction: a kill keeps all of it or none
                    pending.clear()
                state["last_commit"] = time.perf_counter()

            def record(unit: WorkUnit, rows: list[tuple[Any, ...]]) -> None:
                pending.extend(rows)
                state["done"] += len(rows)
                if db is not None and (len(pending) >= commit_rows
                                       or time.perf_counter() - state["last_commit"]
                                       >= commit_s):
                    flush()
                if progress:
                    progress(int(state["done"]), total,
                             "+".join(self.critics[ci].name for ci, _ in unit.parts))

            fresh = db is not None and not any(db.has_judgments(c.fingerprint)
                                               for c in self.critics)
            units = self._units(items, db, fresh, chunk_items, batch_size, state, total,
                                progress)
            with young_gc(50_000):
                (executor or LocalExecutor()).run(self.critics, units, record)
            if db is not None:
                flush()
                if is_run_store(db.path):  # a run directory: say what ran
                    write_run(db.path.parent, critics=[c.config() for c in self.critics],
                              method=self.method, method_options=self.method_options,
                              rules=self.rules,
                              panel=self.name, items=len(items))
            else:
                collected = _plan_ordered(self.critics, items, pending)
                pending.clear()
        finally:
            if db is not None:
                try:
                    flush()
                finally:
                    guard.close()
                    if own_store:
                        db.close()
        common: dict[str, Any] = dict(
            items=items, critics=[c.config() for c in self.critics], skipped=list(skipped),
            method=self.method, rules=self.rules, method_options=self.method_options)
        if db is not None:
            result = PanelResult(**common, source=StoreSource(
                db.path, [_selection(c, items) for c in self.critics],
                [it.id for it in items]))
        else:
            result = PanelResult(**common, source=TableSource(collected))
        if self.escalation is not None:
            result.escalation = self._escalate(result, store, batch_size=batch_size,
                                               progress=progress, executor=executor)
        return result

    def _units(self, items: Sequence[Comparison], db: JudgmentStore | None, fresh: bool,
               chunk_items: int, batch_size: int, state: dict[str, Any], total: int,
               progress: Progress | None) -> Iterator[WorkUnit]:
        """Work units for what is missing, planned `chunk_items` items at a time.

        With a store, items are judged in item-id order, the order of the store's key: each
        commit's rows then extend the key index at one place per critic instead of dirtying
        pages all over it (random-id inserts rewrote most of the index at every commit, so
        the cost per row grew with the store). Which items a kill leaves unjudged changes;
        what is stored, and every result read back from it, does not."""
        if db is not None:
            items = sorted(items, key=_item_id)
        cached = 0
        for start in range(0, len(items), chunk_items):
            chunk = items[start:start + chunk_items]
            todo: list[list[Any]] = []
            for critic in self.critics:
                tasks = critic.tasks(chunk)
                if db is not None and not fresh:
                    done = db.done_keys(critic.fingerprint, [it.id for it in chunk])
                    missing = [t for t in tasks if t.key not in done]
                else:
                    missing = tasks
                cached += len(tasks) - len(missing)
                todo.append(missing)
            if start == 0 and progress:
                progress(cached, total, "cached")
            state["done"] += cached
            cached = 0
            yield from work_units(self.critics, todo, chunk, batch_size)


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
                               method=self.method, method_options=self.method_options)
                record.strong = strong.judge(chosen, store=store, **judge_options)
                record.spent = sum(len(c.tasks(chosen)) for c in esc.critics)
        return record


def _item_id(item: Comparison) -> str:
    return item.id


def _task_total(critics: Sequence[Critic], items: Sequence[Comparison]) -> int:
    """How many tasks `critic.tasks(items)` plans for all critics, counted without planning:
    the principles per item are fixed (or k sampled) and the orders depend only on K."""
    per_k: dict[int, int] = defaultdict(int)
    for it in items:
        per_k[len(it.responses)] += 1
    total = 0
    for critic in critics:
        p = critic.principles
        n_p = (p if isinstance(p, int) and not isinstance(p, bool)  # k sampled per item
               else len(critic.select_principles(None)))  # type: ignore[arg-type]
        for k, n_items in per_k.items():
            total += n_items * n_p * len(critic.orders(Comparison("", ("",) * k)))
    return total


def _selection(critic: Critic, items: Sequence[Comparison]) -> Selection:
    """Which stored rows belong to this run for `critic` (the store may hold other runs')."""
    orders = frozenset(",".join(map(str, o)) for k in sorted({it.k for it in items})
                       for o in critic.orders(Comparison("", tuple("x" * k))))
    if isinstance(critic.principles, int) and not isinstance(critic.principles, bool):
        chosen = {it.id: frozenset(p.id for p in critic.select_principles(it)) for it in items}
        return Selection(critic.name, critic.fingerprint, None, orders,
                         lambda item_id, principle: principle in chosen.get(item_id, ()))
    principles = frozenset(p.id for p in critic.select_principles(items[0])) if items else None
    return Selection(critic.name, critic.fingerprint, principles, orders)


def _plan_ordered(critics: Sequence[Critic], items: Sequence[Comparison],
                  rows: list[tuple[Any, ...]]) -> Any:
    """Rows (which units may return in any order) sorted into plan order, as Arrow."""
    item_rank = {it.id: n for n, it in enumerate(items)}
    crit_rank = {c.fingerprint: n for n, c in enumerate(critics)}
    p_rank = {(c.fingerprint, p.id): n for c in critics
              for n, p in enumerate(c.constitution.principles)}
    names = {c.fingerprint: c.name for c in critics}
    k = max((it.k for it in items), default=2)
    o_rank = {(c.fingerprint, ",".join(map(str, o))): n for c in critics
              for n, o in enumerate(c.orders(Comparison("", tuple("x" * k))))}
    rows.sort(key=lambda r: (crit_rank.get(r[2], 0), item_rank.get(r[0], 0),
                             p_rank.get((r[2], r[6]), 0), o_rank.get((r[2], r[10]), 0)))
    rows[:] = [r if r[1] == names.get(r[2], r[1]) else (r[0], names[r[2]], *r[2:])
               for r in rows]
    return rows_to_table(rows)


class TableSource:
    """A result's judgments held as one Arrow table (runs without a store)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Any]:
        t = self.table if columns is None else self.table.select(list(columns))
        yield from t.to_batches()


class StoreSource:
    """A result's judgments left in the store, read as Arrow batches when asked for.

    With no `selections`, every stored row, as stored (ordered as `JudgmentStore.judgments`).
    """

    def __init__(self, db_path: Path, selections: list[Selection] | None = None,
                 item_ids: list[str] | None = None) -> None:
        self.db_path, self.selections, self.item_ids = db_path, selections, item_ids
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(b.num_rows for b in self.batches(["item_id"]))
        return self._len

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Any]:
        if self.selections is None:
            yield from read_all_batches(self.db_path, columns)
        else:
            yield from read_batches(self.db_path, self.selections, self.item_ids, columns)


@dataclass(init=False, repr=False, eq=False)
class PanelResult:
    """Judgments with provenance, plus a simple per-item summary.

    The judgments stay where the run put them (the store, or one Arrow table for a run
    without a store) and are read as columns when asked for: `judgments` (pandas),
    `to_arrow()`, `to_parquet(dir)` (parts), `batches()`. `judgment_rows` still gives one
    `Judgment` object per row, for small runs and old code.
    """

    items: list[Comparison]
    critics: list[dict[str, Any]]
    skipped: list[tuple[int, str]]
    method: str
    rules: Any
    method_options: dict[str, Any]
    source: TableSource | StoreSource
    escalation: EscalationRecord | None

    def __init__(self, items: list[Comparison], judgment_rows: Sequence[Judgment] | None = None,
                 critics: list[dict[str, Any]] | None = None,
                 skipped: list[tuple[int, str]] | None = None, method: str = "vote",
                 rules: Any = None, method_options: dict[str, Any] | None = None, *,
                 source: TableSource | StoreSource | None = None,
                 escalation: EscalationRecord | None = None, **renamed: Any) -> None:
        method = renamed_kwarg("PanelResult", renamed, "aggregator", "method", method)
        method_options = renamed_kwarg("PanelResult", renamed, "aggregator_options",
                                       "method_options", method_options)
        no_other_kwargs("PanelResult", renamed)
        if source is None:
            rows = [tuple(getattr(j, c) for c in JUDGMENT_COLUMNS) for j in judgment_rows or ()]
            source = TableSource(rows_to_table(rows))
        self.items = items
        self.critics = list(critics or [])
        self.skipped = list(skipped or [])
        self.method = method
        self.rules = rules
        self.method_options = dict(method_options or {})
        self.source = source
        self.escalation = escalation
        self._working: Any = None

    aggregator = renamed_attribute("PanelResult", "aggregator", "method")
    aggregator_options = renamed_attribute("PanelResult", "aggregator_options", "method_options")

    def __repr__(self) -> str:
        return (f"PanelResult(items={len(self.items)}, critics={self.critic_names}, "
                f"judgments={len(self.source)})")

    def __len__(self) -> int:
        return len(self.source)

    # -- the judgments, as columns -----------------------------------------------------------
    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The judgments as a stream of Arrow record batches (bounded memory)."""
        return self.source.batches(columns)

    def to_arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The long judgments table as one `pyarrow.Table` (Polars: `pl.from_arrow(...)`,
        zero-copy)."""
        if isinstance(self.source, TableSource):
            t = self.source.table
            return t if columns is None else t.select(list(columns))
        return concat(self.batches(columns), columns)

    def to_parquet(self, out_dir: str | Path, *, rows_per_part: int = 1_000_000) -> list[Path]:
        """Write the judgments as Parquet parts (`part-00000.parquet`, ...), streamed from the
        store: pandas, Polars, DuckDB and `datasets` read the directory as one dataset."""
        return write_parquet_parts(self.batches(), out_dir, rows_per_part=rows_per_part)

    @property
    def judgment_rows(self) -> list[Judgment]:
        """One `Judgment` object per row (3 KB each: for small runs; prefer `judgments`)."""
        t = self.to_arrow()
        cols = [t.column(c).to_pylist() for c in JUDGMENT_COLUMNS]
        return [Judgment(*row) for row in zip(*cols)]

    def aggregate(self, method: str | None = None, **options: Any) -> Aggregation:
        """Run an aggregator (default: the panel's) with the panel's rules; see
        `oversight.aggregate.aggregate`. Critic weights come from the critics' `weight`."""
        from oversight.aggregate import aggregate

        opts = {**(self.method_options if method is None else {}), **options}
        judgments = self.working_table()
        present = set(judgments["critic"])
        # The critics' own weights, for the critics that have judgments (a critic with none
        # has nothing to weigh); weights passed here are checked as given.
        weights = opts.pop("critic_weights", None) or {
            c["name"]: float(c.get("weight", 1.0)) for c in self.critics if c["name"] in present}
        gold = opts.pop("gold", None)
        agg = aggregate(judgments, self.items, method=method or self.method,
                        rules=opts.pop("rules", self.rules), critic_weights=weights,
                        gold=gold, **opts)
        if self.escalation is not None:
            agg = apply_escalation(agg, self.escalation, judgments)
        return agg

    @property
    def aggregation(self) -> Aggregation:
        """The panel's configured aggregation (computed once)."""
        if getattr(self, "_aggregation", None) is None:
            self._aggregation = self.aggregate()
        return self._aggregation

    @property
    def preferences(self) -> PreferencesFrame:
        """`result.preferences(min_margin=0.0, drop_flags=(), drop_veto_conflicts=True)`:
        TRL-shaped preference rows from the configured aggregation, a method as
        `Aggregation.preferences` is (it was a property; reading it without the call still
        gives the default rows, with a DeprecationWarning, for one release)."""
        from oversight.panel._preferences import preferences_frame

        def compute(**filters: Any) -> pd.DataFrame:
            return self.aggregation.preferences(self.items, **filters)

        return preferences_frame(compute(), compute)

    @property
    def flags(self) -> pd.DataFrame:
        """Per-item decisions with their flag columns (`Aggregation.decisions`)."""
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
    def judgments(self) -> pd.DataFrame:
        """The long-format judgments table (pandas), one row per judgment."""
        return _to_pandas(self.to_arrow())

    def working_table(self) -> pd.DataFrame:
        """The columns aggregation reads (`oversight.aggregate.WORKING_COLUMNS`), text as
        pandas categoricals, read from the store a batch at a time: what `aggregate`,
        flags and rules work on, at a fraction of the full table's memory."""
        from oversight.aggregate import WORKING_COLUMNS, columnar

        if self._working is None:  # read once per result: the report and CLI reuse it
            self._working = columnar(categorical_frame(self.batches(WORKING_COLUMNS),
                                                       WORKING_COLUMNS))
        return self._working

    def _columns(self, columns: Sequence[str]) -> pd.DataFrame:
        return _to_pandas(self.to_arrow(columns))

    # -- simple aggregation ----------------------------------------------------------------
    def support(self, orders: str = "all") -> dict[tuple[str, str], list[float]]:
        """Per (item, critic): each response's weighted mean support.

        Pairwise: the mean probability that the response wins its comparisons; score: mean
        expected score; passfail: mean P(pass). `orders="forward"` keeps only judgments with the
        lower index shown first (no position swap); `orders="reverse"` only the swapped ones;
        both leave out score and pass/fail judgments, which show one response and have no
        order. ("first" and "swapped" are the old spellings, deprecated.)
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

    def summary(self, orders: str = "all") -> pd.DataFrame:
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

    def agreement(self, orders: str = "all") -> pd.DataFrame:
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

    def position_flips(self) -> pd.DataFrame:
        """Per critic: the share of pairwise items whose verdict changes when order is swapped,
        and the mean P(first shown) -- 0.5 for an unbiased judge
        (`oversight.aggregate.position_flip_rates`). Score and pass/fail critics show one
        response at a time: their rate is NaN and `left_out` says why."""
        from oversight.aggregate import position_flip_rates

        out = position_flip_rates(self.judgments, self.critic_names)
        return out.drop(columns="flips")

    def status_counts(self) -> dict[str, int]:
        counts = self._columns(["status"])["status"].value_counts(sort=False)
        return {str(k): int(v) for k, v in counts.items()}

    def reason_counts(self) -> dict[str, dict[str, int]]:
        """Abstentions and errors counted by cause: {"abstain": {"no-verdict": 3}, ...}.

        The cause is the reason's leading code (see `oversight.critics._parse`); an error's is
        the text before its first colon, such as "HTTP 500" or "TimeoutError".
        """
        from oversight.critics._parse import reason_code

        counts: dict[str, dict[str, int]] = {}
        j = self._columns(["status", "reason"])
        bad = j[j["status"] != "ok"]
        for status, reason in zip(bad["status"], bad["reason"]):
            by = counts.setdefault(status, {})
            code = reason_code(None if reason is None or reason != reason else reason)
            by[code] = by.get(code, 0) + 1
        return {s: dict(sorted(by.items())) for s, by in sorted(counts.items())}




def _orders(orders: str) -> str:
    """"all", "forward" or "reverse", as `oversight.aggregate`; "first" and "swapped" are the
    old spellings of "forward" and "reverse" (deprecated)."""
    orders = renamed_value("orders", orders, {"first": "forward", "swapped": "reverse"})
    if orders not in ORDERS:
        raise ValueError(f"orders={orders!r}: use one of {', '.join(ORDERS)}")
    return orders


def _majority(votes: dict[int, int]) -> int | str:
    if not votes:
        return "abstain"
    best = max(votes.values())
    winners = [k for k, v in votes.items() if v == best]
    return winners[0] if len(winners) == 1 else "tie"
