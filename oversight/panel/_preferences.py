"""`PanelResult.preferences` was a property and is a method now, as `Aggregation.preferences`
is. For one release the old property-style use keeps working: the method's object is also the
default preference table, and using it as a table (not calling it) warns once."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

_MSG = ("PanelResult.preferences is a method now, as Aggregation.preferences is: call "
        "result.preferences() (with min_margin=, drop_flags=, drop_veto_conflicts= if you "
        "need them); using it without the call stops working in the next release")


class PreferencesFrame(pd.DataFrame):
    """The default preference rows, callable: `result.preferences(**filters)` returns a plain
    DataFrame; reading this object as a DataFrame is the deprecated property use."""

    _metadata = ["_compute", "_warned"]

    @property
    def _constructor(self) -> Any:  # anything derived from it is a plain DataFrame
        return pd.DataFrame

    def __call__(self, **filters: Any) -> pd.DataFrame:
        object.__setattr__(self, "_warned", True)  # the new use: no warning
        try:
            return self._compute(**filters) if filters else pd.DataFrame(self).copy()
        finally:
            object.__setattr__(self, "_warned", False)

    def _old_use(self) -> None:
        if not object.__getattribute__(self, "_warned"):
            object.__setattr__(self, "_warned", True)
            warnings.warn(_MSG, DeprecationWarning, stacklevel=3)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            object.__getattribute__(self, "_old_use")()
        return super().__getattribute__(name)

    def __getitem__(self, key: Any) -> Any:
        self._old_use()
        return super().__getitem__(key)

    def __len__(self) -> int:
        self._old_use()
        return super().__len__()

    def __iter__(self) -> Any:
        self._old_use()
        return super().__iter__()


def preferences_frame(frame: pd.DataFrame, compute: Callable[..., pd.DataFrame]
                      ) -> PreferencesFrame:
    out = PreferencesFrame(frame)
    object.__setattr__(out, "_compute", compute)
    object.__setattr__(out, "_warned", False)
    return out
