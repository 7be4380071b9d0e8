"""Run a coroutine from synchronous code, in a plain script or inside a running event loop.

`asyncio.run` refuses to start when the calling thread already runs an event loop, which is
the normal state of a Jupyter kernel (and of any async web handler). Every synchronous entry
point (panel.judge, reward functions, revise) reaches HTTP backends through this function:
with no running loop it is `asyncio.run`; inside one, the coroutine runs to completion on a
fresh event loop in a worker thread while the caller waits. The caller's loop is blocked for
that time, exactly as a synchronous call would block it; no loop is patched (no nest_asyncio).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine that `make()` returns and return its result.

    `make` is a factory, so that the coroutine (and any client it opens) is created on the
    loop that runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the ordinary script case
        return asyncio.run(make())
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="oversight-loop") as pool:
        return pool.submit(ctx.run, lambda: asyncio.run(make())).result()
