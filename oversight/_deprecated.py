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


def renamed_kwarg(where: str, extra: dict[str, Any], old: str, new: str, value: Any) -> Any:
    """The keyword-alias pattern for a renamed parameter, kept for one release.

    A function that renamed `old` to `new` takes `**extra` and calls this: if the caller used
    `old`, it warns (DeprecationWarning naming both) and returns that value; else `value` (the
    new parameter's). Passing both is a TypeError. Finish with `no_other_kwargs(where, extra)`.
    """
    if old not in extra:
        return value
    warnings.warn(f"{where}: {old}= is renamed {new}=; the old name will be removed in the "
                  "next release", DeprecationWarning, stacklevel=3)
    return extra.pop(old)


def no_other_kwargs(where: str, extra: dict[str, Any]) -> None:
    """After `renamed_kwarg`: any keyword left over is a TypeError, as Python would raise."""
    if extra:
        raise TypeError(f"{where}() got unexpected keyword argument(s): "
                        f"{', '.join(sorted(extra))}")


def renamed_value(where: str, value: Any, renames: dict[str, str]) -> Any:
    """An option value that was renamed (e.g. orders="first" -> "forward"): warn and return
    the new spelling; any other value passes through unchanged for the caller to check."""
    if isinstance(value, str) and value in renames:
        warnings.warn(f"{where}={value!r} is renamed {renames[value]!r}; the old spelling will "
                      "be removed in the next release", DeprecationWarning, stacklevel=3)
        return renames[value]
    return value


def renamed_attribute(owner: str, old: str, new: str) -> property:
    """A class attribute `old` that reads (and sets) `new`, warning: for renamed attributes."""

    def _warn() -> None:
        warnings.warn(f"{owner}.{old} is renamed {owner}.{new}; the old name will be removed "
                      "in the next release", DeprecationWarning, stacklevel=3)

    def get(self: Any) -> Any:
        _warn()
        return getattr(self, new)

    def set_(self: Any, value: Any) -> None:
        _warn()
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated: use `{new}`.")
