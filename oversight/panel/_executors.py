"""Executors: where a panel's work units run. The driver (Panel.judge) always owns the store.

A work unit is one backend call: the tasks of whole items (never split, so a backend sees an
item's principles and critics together and shares their prefix) for the critics that share one
backend. `judge_unit` is the only code that turns a unit into judgments; every executor calls
it. `LocalExecutor` (the default) runs units one after another in this process; `RayExecutor`
(`_ray.py`) runs each backend as a pool of Ray actors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from oversight.critics import Critic, Judgment
from oversight.data import Comparison

Row = tuple[Any, ...]  # one judgment, in `JUDGMENT_COLUMNS` order
OnResult = Callable[["WorkUnit", list[Row]], None]


@dataclass
class WorkUnit:
    """One backend call: `parts` are (critic index in the panel, tasks) for critics that share
    backend number `backend` (see `backend_groups`)."""

    backend: int
    parts: list[tuple[int, list[Any]]]

    @property
    def size(self) -> int:
        return sum(len(tasks) for _, tasks in self.parts)


@runtime_checkable
class Executor(Protocol):
    """Runs work units and hands each unit's judgments to `on_result` on the driver."""

    def run(self, critics: Sequence[Critic], units: Iterable[WorkUnit],
            on_result: OnResult) -> None: ...


def backend_groups(critics: Sequence[Critic]) -> list[list[int]]:
    """Critic indices grouped by the backend object they share, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for ci, critic in enumerate(critics):
        groups.setdefault(id(critic.backend), []).append(ci)
    return list(groups.values())


def work_units(critics: Sequence[Critic], missing: Sequence[Sequence[Any]],
               items: Sequence[Comparison], batch_size: int) -> Iterator[WorkUnit]:
    """Units of about `batch_size` tasks per backend; `missing[ci]` are critic ci's tasks."""
    for b, indices in enumerate(backend_groups(critics)):
        group = [(ci, list(missing[ci])) for ci in indices if missing[ci]]
        for parts in _chunks(group, items, batch_size):
            yield WorkUnit(b, parts)


def _chunks(group: list[tuple[int, list[Any]]], items: Sequence[Comparison],
            batch_size: int) -> Iterator[list[tuple[int, list[Any]]]]:
    """Chunks of about `batch_size` tasks, never splitting one item's tasks across chunks, so
    a backend sees every principle and critic of an item together (shared prefixes)."""
    rank = {it.id: n for n, it in enumerate(items)}
    by_item: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for ci, tasks in group:
        for t in tasks:
            by_item[t.item.id].append((ci, t))
    pending: list[tuple[int, Any]] = []
    for item_id in sorted(by_item, key=lambda i: rank.get(i, 0)):
        pending.extend(by_item[item_id])
        if len(pending) >= batch_size:
            yield _split(pending)
            pending = []
    if pending:
        yield _split(pending)


def _split(pending: list[tuple[int, Any]]) -> list[tuple[int, list[Any]]]:
    per: dict[int, list[Any]] = defaultdict(list)
    for ci, t in pending:
        per[ci].append(t)
    return sorted(per.items())


def judge_unit(critics: Sequence[Critic] | dict[int, Critic], unit: WorkUnit) -> list[Judgment]:
    """One backend call for all critics in the unit (they share the backend)."""
    return [Judgment(*row) for row in judge_unit_rows(critics, unit)]


def judge_unit_rows(critics: Sequence[Critic] | dict[int, Critic], unit: WorkUnit) -> list[Row]:
    """`judge_unit` as plain tuples in `JUDGMENT_COLUMNS` order (what executors hand over)."""
    prepared = [(critics[ci], critics[ci].prepare(tasks)) for ci, tasks in unit.parts]
    requests = [r for _, p in prepared for r in p.requests]
    results = prepared[0][0].backend.score_choices(requests)
    out: list[Row] = []
    start = 0
    for critic, p in prepared:
        out.extend(critic.finish_rows(p, results[start:start + len(p.requests)]))
        start += len(p.requests)
    return out


class LocalExecutor:
    """Runs units one after another in this process (the default)."""

    def run(self, critics: Sequence[Critic], units: Iterable[WorkUnit],
            on_result: OnResult) -> None:
        for unit in units:
            on_result(unit, judge_unit_rows(critics, unit))
