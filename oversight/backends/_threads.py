"""Intra-op threads for CPU inference on shared cores: chosen from measured speed, not assumed.

torch on Linux runs its CPU kernels in GNU OpenMP parallel regions. Every region ends at a
barrier, where by default a waiting thread spins before it sleeps; when other processes hold
the cores, one thread is often descheduled and the other burns its time slices spinning. A
forward pass is hundreds of such regions, and the packed shared-prefix path has about three
times as many per unit of compute as the naive one (the same op count for a third of the
tokens), so it lost most. Measured on 2 shared cores, 2 threads took 2.3x the wall time of 1
for the packed path (2.1x for the naive one) and 2.8x its CPU time; on a quiet machine 2
threads are faster (README, "Judging on shared cores"). The wait policy itself
(OMP_WAIT_POLICY) is read once when torch loads libgomp, so a library cannot change it.

No setting is right for both, and load comes and goes, so `ThreadTuner` measures: each
forward pass runs with one of the candidate counts (all CPUs this process may use, halving
down to 1), its seconds per token feed a running average per count, and the fastest count is
used, while each slower one is tried again now and then (after 16 passes, doubling to at most
every 128 while it keeps losing) and at once when the count in use slows down by half, so
load that arrives is noticed within a pass or two, load that leaves within at most 128
passes, and probing costs about a per cent on a quiet machine. Pure logic, no torch: tested on
fake timings.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path


def cgroup_cpu_limit(cpu_max: str) -> int | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line ("<quota> <period>" or "max <period>"),
    rounded up; None when unlimited or unreadable."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def available_cpus(cgroup_file: str | Path = "/sys/fs/cgroup/cpu.max") -> int:
    """CPUs this process may actually run on: its affinity mask (taskset, cpusets), capped by
    a cgroup v2 CPU quota (containers). `os.cpu_count()` counts the machine's CPUs instead,
    which oversubscribes a container or a pinned process."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    try:
        limit = cgroup_cpu_limit(Path(cgroup_file).read_text())
    except OSError:
        limit = None
    return max(1, min(n, limit) if limit else n)


def thread_candidates(cpus: int) -> tuple[int, ...]:
    """The counts worth trying on `cpus` CPUs: cpus, cpus/2, ... down to 1 (largest first)."""
    out = [max(1, cpus)]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return tuple(out)


@dataclass
class ThreadTuner:
    """Chooses the intra-op thread count of each forward pass from measured seconds per token.

    Call `choose()` before a forward and `record(threads, tokens, seconds)` after it. Untried
    counts go first (largest first); then the count with the lowest seconds per token (a
    running average while in use; a probe's latest measurement otherwise) is used, except
    that every `interval` passes the slower count measured longest ago is tried once.
    `interval` starts at `probe_every`, doubles (up to `max_probe_every`) each time a probe
    loses, and starts again at `probe_every` when the choice changes.
    """

    candidates: tuple[int, ...]
    probe_every: int = 16
    max_probe_every: int = 128
    jump: float = 1.5  # a pass this much slower than the average in use triggers a probe
    warmup: int = 1  # first passes not measured (one-time allocations, first-call costs)
    alpha: float = 0.5  # weight of the newest measurement in the count in use's average
    rate: dict[int, float] = field(default_factory=dict)  # seconds per token, per count
    passes: int = 0
    interval: int = 0
    next_probe: int = 0
    seen: dict[int, int] = field(default_factory=dict)  # pass of the latest measurement
    uses: dict[int, int] = field(default_factory=dict)  # passes measured, per count

    def __post_init__(self) -> None:
        if not self.candidates or any(c < 1 for c in self.candidates):
            raise ValueError(f"ThreadTuner candidates must be thread counts >= 1, got "
                             f"{self.candidates!r}")
        if not 1 <= self.probe_every <= self.max_probe_every:
            raise ValueError(f"ThreadTuner needs 1 <= probe_every <= max_probe_every, got "
                             f"probe_every={self.probe_every}, "
                             f"max_probe_every={self.max_probe_every}")
        self.interval = self.probe_every
        self.next_probe = self.probe_every

    def best(self) -> int | None:
        """The fastest count measured so far (None before any measurement)."""
        return min(self.rate, key=lambda c: self.rate[c]) if self.rate else None

    def choose(self) -> int:
        """The thread count for the next forward pass."""
        for c in self.candidates:
            if c not in self.rate:
                return c
        best = self.best()
        assert best is not None
        if len(self.candidates) > 1 and self.passes >= self.next_probe:
            return min((c for c in self.candidates if c != best), key=lambda c: self.seen[c])
        return best

    def record(self, threads: int, tokens: int, seconds: float) -> None:
        """One forward pass of `tokens` tokens took `seconds` with `threads` threads."""
        if tokens <= 0 or seconds <= 0 or threads not in self.candidates:
            return
        if self.warmup > 0:
            self.warmup -= 1
            return
        before = self.best()
        probe = before is not None and threads != before and threads in self.rate
        value = seconds / tokens
        old = self.rate.get(threads)
        # A probe's count was last measured long ago, under whatever load there was then, so
        # its new measurement replaces the old one; the count in use is averaged.
        self.rate[threads] = (value if old is None or probe
                              else self.alpha * value + (1 - self.alpha) * old)
        self.passes += 1
        self.seen[threads] = self.passes
        self.uses[threads] = self.uses.get(threads, 0) + 1
        after = self.best()
        if after != before and before is not None and len(self.rate) == len(self.candidates):
            self.interval = self.probe_every  # the choice changed: look again soon
            self.next_probe = self.passes + self.interval
        elif probe:
            self.interval = min(2 * self.interval, self.max_probe_every)
            self.next_probe = self.passes + self.interval
        elif old is not None and value > self.jump * old:
            self.next_probe = self.passes  # the count in use slowed down: load has arrived?
