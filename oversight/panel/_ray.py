"""RayExecutor: each backend as a pool of Ray actors; the driver (Panel.judge) owns the store.

An actor builds its backend once from a `BackendSpec` (class + constructor arguments, never a
live model) and then receives work units. Results stream back to the driver, which writes each
as it arrives, so a run that dies can be resumed. Only missing keys become units, and each unit
is in flight on one actor at a time, so no judgment is computed twice. A bounded number of
units is in flight (backpressure). When an actor dies, a replacement is started and its units
go to the live actors. Ray is imported only when a RayExecutor runs.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from oversight.backends import BackendSpec, backend_spec
from oversight.critics import Critic
from oversight.errors import BackendError, missing_extra
from oversight.panel._executors import OnResult, Row, WorkUnit, backend_groups, judge_unit_rows


class _BackendActor:
    """Body of a Ray actor: one backend, built once from its spec, judging units."""

    def __init__(self, spec: BackendSpec, num_threads: int | None) -> None:
        self.backend = spec.build()
        # A CPU actor uses the cores it reserved, not every core of the node.
        if num_threads and getattr(self.backend, "num_threads", "absent") is None:
            self.backend.num_threads = num_threads
        load = getattr(self.backend, "load", None)
        if callable(load):
            load()  # the model loads once per actor, before the first unit arrives

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "model_id": self.backend.model_id}

    def judge(self, critics: dict[int, Critic], parts: list[tuple[int, list[Any]]]
              ) -> list[Row]:
        for critic in critics.values():
            if critic.backend is not self.backend:  # keeps the critic's cached fingerprint
                critic.backend = self.backend
        return judge_unit_rows(critics, WorkUnit(-1, parts))


@dataclass
class ActorInfo:
    """A live actor of a RayExecutor, with the units it holds now."""

    handle: Any
    backend: str
    in_flight: int = 0
    alive: bool = True
    units_done: int = 0


@dataclass
class _Pool:
    key: str
    spec: BackendSpec
    options: dict[str, Any]
    actors: list[ActorInfo] = field(default_factory=list)


class RayExecutor:
    """Run critics' backends as Ray actors; the driver writes results as they arrive.

    address: None starts or joins a local Ray (or uses the session already initialised);
        "ray://host:10001" or "auto" joins a cluster.
    actors_per_backend: actors per distinct backend (each loads the model once).
    resources: Ray actor options for every actor, e.g. {"num_cpus": 1} (default) or
        {"num_gpus": 1}; `backend_resources` overrides them per backend model id.
    max_in_flight: units in flight at once, over all actors (default 2 per actor).
    max_attempts: how many actors a unit may fail on before the run stops with its error.
    max_replacements: how many dead actors may be replaced in one run.
    init_kwargs: extra `ray.init` arguments when this executor starts Ray.
    stall_warning_s: warn when no result has arrived for this long (an actor may be waiting
        for resources the cluster cannot give, e.g. a GPU on a CPU-only cluster).
    stall_timeout_s: stop the run with an error naming the requested and free resources
        after this long without a result (None, the default, waits: big models load slowly).

    Actors are kept between runs of the same executor; `close()` (or `with`) ends them.
    `stats` counts the last run's units sent, done and retried, tasks sent, actors started
    and lost.
    """

    def __init__(self, address: str | None = None, *, actors_per_backend: int = 1,
                 resources: dict[str, Any] | None = None,
                 backend_resources: dict[str, dict[str, Any]] | None = None,
                 max_in_flight: int | None = None, per_actor_in_flight: int = 2,
                 max_attempts: int = 3, max_replacements: int = 8,
                 init_kwargs: dict[str, Any] | None = None, stall_warning_s: float = 120.0,
                 stall_timeout_s: float | None = None) -> None:
        if actors_per_backend < 1:
            raise ValueError(f"actors_per_backend={actors_per_backend} must be >= 1")
        if per_actor_in_flight < 1:
            raise ValueError(f"per_actor_in_flight={per_actor_in_flight} must be >= 1")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight={max_in_flight} must be >= 1")
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts} must be >= 1")
        self.address = address
        self.actors_per_backend = actors_per_backend
        self.resources = dict(resources) if resources is not None else {"num_cpus": 1}
        self.backend_resources = dict(backend_resources or {})
        self.max_in_flight = max_in_flight
        self.per_actor_in_flight = per_actor_in_flight
        self.max_attempts = max_attempts
        self.max_replacements = max_replacements
        self.init_kwargs = {"include_dashboard": False, **(init_kwargs or {})}
        self.stall_warning_s = stall_warning_s
        self.stall_timeout_s = stall_timeout_s
        self._warned_stall = False
        self._pools: dict[str, _Pool] = {}
        self._remote: Any = None
        self.stats: dict[str, int] = defaultdict(int)

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, actors_per_backend="
                f"{self.actors_per_backend}, resources={self.resources!r})")

    # -- Ray session and actors ------------------------------------------------------------
    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise missing_extra("ray", "ray") from None
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
        if self._remote is None:
            self._remote = ray.remote(_BackendActor)
        return ray

    @property
    def actors(self) -> list[ActorInfo]:
        """Live actors, busiest first."""
        live = [a for p in self._pools.values() for a in p.actors if a.alive]
        return sorted(live, key=lambda a: -a.in_flight)

    def _pool(self, backend: Any, spec: BackendSpec) -> _Pool:
        options = {**self.resources, **self.backend_resources.get(backend.model_id, {})}
        key = f"{spec.key}|{sorted(options.items())!r}"
        if key not in self._pools:
            self._pools[key] = _Pool(key, spec, options)
        pool = self._pools[key]
        while len([a for a in pool.actors if a.alive]) < self.actors_per_backend:
            self._start(pool)
        return pool

    def _start(self, pool: _Pool) -> ActorInfo:
        threads = pool.options.get("num_cpus")
        handle = self._remote.options(**pool.options).remote(
            pool.spec, int(threads) if threads and threads >= 1 else None)
        info = ActorInfo(handle, pool.spec.key)
        pool.actors.append(info)
        self.stats["actors_started"] += 1
        return info

    def start(self, critics: Sequence[Critic], timeout_s: float = 600.0) -> float:
        """Start the actors for these critics' backends and wait until each has loaded its
        model; returns the seconds waited. Optional: `run` starts missing actors itself."""
        ray = self._ray()
        t0 = time.perf_counter()
        for idx in backend_groups(critics):
            backend = critics[idx[0]].backend
            self._pool(backend, backend_spec(backend))
        ray.get([a.handle.info.remote() for a in self.actors], timeout=timeout_s)
        return time.perf_counter() - t0

    def _stalled(self, ray: Any, pools: dict[int, _Pool], waited: float) -> None:
        """No result for a while: say what the actors asked for and what the cluster has."""
        asked = sorted({repr(p.options) for p in pools.values()})
        free = {k: v for k, v in ray.available_resources().items()
                if not k.startswith("node:") and "memory" not in k}
        msg = (f"no Ray result for {waited:.0f} s; actors ask for {', '.join(asked)}; free in "
               f"the cluster: {free}. An actor whose request the cluster cannot meet waits "
               "forever (lower `resources`, or --actor-cpus/--actor-gpus on the CLI).")
        if self.stall_timeout_s is not None and waited >= self.stall_timeout_s:
            raise BackendError(msg)
        if not self._warned_stall:
            self._warned_stall = True
            warnings.warn(msg, RuntimeWarning, stacklevel=2)

    def close(self) -> None:
        """End every actor of this executor (Ray itself keeps running)."""
        if self._pools:
            import ray

            for pool in self._pools.values():
                for a in pool.actors:
                    if a.alive:
                        ray.kill(a.handle)
                        a.alive = False
        self._pools.clear()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the run -------------------------------------------------------------------------
    def run(self, critics: Sequence[Critic], units: Iterable[WorkUnit],
            on_result: OnResult) -> None:
        groups = backend_groups(critics)
        # Every backend must be shippable: fail before any actor starts.
        specs = [backend_spec(critics[idx[0]].backend) for idx in groups]
        ray = self._ray()
        from ray.exceptions import RayActorError, RayTaskError

        self.stats = defaultdict(int)
        pools: dict[int, _Pool] = {}
        shipped: dict[int, Any] = {}
        stamps = [(c.fingerprint, c.name, c.backend.model_id) for c in critics]
        cap = self.max_in_flight or 2 * self.actors_per_backend * len(groups)
        source = iter(units)
        exhausted = False
        waiting: list[tuple[WorkUnit, int]] = []  # (unit, failed attempts so far)
        in_flight: dict[Any, tuple[WorkUnit, ActorInfo, int]] = {}
        replaced = 0
        last_result = time.perf_counter()
        self._warned_stall = False
        try:
            while True:
                # Read ahead only as far as free slots allow (backpressure), then send units
                # to the least busy live actor of their backend.
                while not exhausted and len(waiting) + len(in_flight) < cap:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                    else:
                        waiting.append((nxt, 0))
                still: list[tuple[WorkUnit, int]] = []
                for unit, attempts in waiting:
                    b = unit.backend
                    if b not in pools:
                        pools[b] = self._pool(critics[groups[b][0]].backend, specs[b])
                        shipped[b] = ray.put({ci: _without_backend(critics[ci])
                                              for ci in groups[b]})
                    actor = self._idle_actor(pools[b])
                    if actor is None or len(in_flight) >= cap:
                        still.append((unit, attempts))
                        continue
                    ref = actor.handle.judge.remote(shipped[b], unit.parts)
                    in_flight[ref] = (unit, actor, attempts)
                    actor.in_flight += 1
                    self.stats["units_sent"] += 1
                    self.stats["tasks_sent"] += unit.size
                waiting = still
                if not in_flight:
                    if waiting:
                        raise BackendError("no live Ray actor can take the remaining "
                                           f"{len(waiting)} units")
                    break
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(
                    self.stall_warning_s, self.stall_timeout_s or self.stall_warning_s))
                if not ready:
                    self._stalled(ray, pools, time.perf_counter() - last_result)
                    continue
                last_result = time.perf_counter()
                for ref in ready:
                    unit, actor, attempts = in_flight.pop(ref)
                    actor.in_flight -= 1
                    try:
                        rows = ray.get(ref)
                    except RayActorError as exc:
                        # The actor died (killed, OOM, node lost): replace it, retry elsewhere.
                        if actor.alive:
                            actor.alive = False
                            self.stats["actors_lost"] += 1
                            _kill_quietly(ray, actor.handle)
                            if replaced >= self.max_replacements:
                                raise BackendError(
                                    f"{replaced} Ray actors were already replaced in this "
                                    f"run; another died with: {exc}") from exc
                            replaced += 1
                            self._start(pools[unit.backend])
                        waiting.insert(0, self._retry(unit, attempts, exc))
                    except RayTaskError as exc:
                        # The work itself raised: try another actor, then surface the error.
                        waiting.insert(0, self._retry(unit, attempts, exc,
                                                      exc.as_instanceof_cause()))
                    else:
                        actor.units_done += 1
                        self._stamp(unit, rows, stamps)
                        self.stats["units_done"] += 1
                        on_result(unit, rows)
        finally:
            for ref in in_flight:
                try:
                    ray.cancel(ref)
                except Exception:  # already finished, or its actor is gone: nothing to do
                    pass
            for pool in pools.values():
                pool.actors = [a for a in pool.actors if a.alive]
                for a in pool.actors:
                    a.in_flight = 0

    def _idle_actor(self, pool: _Pool) -> ActorInfo | None:
        live = [a for a in pool.actors if a.alive and a.in_flight < self.per_actor_in_flight]
        return min(live, key=lambda a: a.in_flight) if live else None

    def _retry(self, unit: WorkUnit, attempts: int, exc: Exception,
               cause: BaseException | None = None) -> tuple[WorkUnit, int]:
        """The unit back in the queue (first), or the error once it failed on enough actors."""
        attempts += 1
        if attempts >= self.max_attempts:
            if cause is not None:
                raise cause
            items = sorted({t.item.id for _, tasks in unit.parts for t in tasks})
            raise BackendError(f"a unit of {unit.size} tasks (items {', '.join(items[:3])}"
                               f"{', ...' if len(items) > 3 else ''}) failed on {attempts} "
                               f"actors; last error: {exc}") from exc
        self.stats["units_retried"] += 1
        return unit, attempts

    @staticmethod
    def _stamp(unit: WorkUnit, rows: list[Row],
               stamps: list[tuple[str, str, str]]) -> None:
        """The driver's critics are the identity: rows carry their name, fingerprint and model
        (columns 1-3 of `JUDGMENT_COLUMNS`)."""
        start = 0
        for ci, tasks in unit.parts:
            fp, name, model = stamps[ci]
            for n in range(start, min(start + len(tasks), len(rows))):
                r = rows[n]
                rows[n] = (r[0], name, fp, model, *r[4:])
            start += len(tasks)
        if start != len(rows):
            raise RuntimeError(f"an actor returned {len(rows)} judgments for {start} tasks")


def _without_backend(critic: Critic) -> Critic:
    """A shallow copy for shipping: the actor puts its own backend in."""
    shipped = copy.copy(critic)
    shipped.backend = None  # type: ignore[assignment]
    return shipped


def _kill_quietly(ray: Any, handle: Any) -> None:
    try:
        ray.kill(handle)
    except Exception:  # already dead
        pass
