"""Old import locations kept for one release: a module `__getattr__` that warns and forwards."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for names that moved: `names` maps old name -> "new.module.Name".

    Accessing an old name emits a DeprecationWarning naming the new home, then returns the
    object from there (one object, so `isinstance` and `except` keep working).
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, _, attr = target.rpartition(".")
        warnings.warn(f"{module}.{name} moved to {target}; the old name will be removed in "
                      f"the next release", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), attr)

    return __getattr__
