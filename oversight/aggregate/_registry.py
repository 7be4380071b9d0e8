"""Aggregators by name: a runtime-checkable protocol and a registry with declared options.

An aggregator is any callable `(judgments, context, **options) -> DataFrame` (or
`(model, DataFrame)`) whose frame is indexed by item_id with columns `label` (a response
index, "tie", or "undecided" when the evidence cannot order the responses), `p0` (P(response 0
is better) for two-response items, else NaN) and `margin` (>= 0). It needs no base class:

    @register_aggregator("median")
    def median_support(judgments, context, *, floor=0.0):
        ...

registers it with the options it declares (its keyword-only parameters, or `options=`).
The judgments it receives are the working table (`columnar`): the columns in
`WORKING_COLUMNS` (the long format's fields without raw output, rationale and reason), each
text column a pandas categorical, so masks and groupbys move integer codes.
`aggregate(method="median", floor=0.1)` then runs it, followed by the panel rules and flags,
and rejects options it does not declare. A panel file that defines one makes it usable from
`Panel(method="median")` and `oversight aggregate --method median --panel FILE`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd


@dataclass
class AggregationContext:
    """What an aggregator may use besides the judgments: the items' response counts, critic
    weights, gold labels, and the weighted vote (already fitted, for share and entropy)."""

    k_of: Mapping[str, int]
    critic_weights: Mapping[str, float] | None = None
    gold: Mapping[str, int] | None = None
    votes: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Aggregator(Protocol):
    """Judgments -> per-item decisions (see the module docstring for the frame's columns)."""

    def __call__(self, judgments: pd.DataFrame, context: AggregationContext,
                 **options: Any) -> Any: ...


@dataclass(frozen=True)
class AggregatorSpec:
    name: str
    func: Aggregator
    options: tuple[str, ...]
    help: str = ""
    modes: tuple[str, ...] = ("pairwise", "score", "passfail", "likelihood")


_REGISTRY: dict[str, AggregatorSpec] = {}


def _declared(func: Callable[..., Any]) -> tuple[str, ...]:
    params = inspect.signature(func).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def register_aggregator(name: str, *, options: Sequence[str] | None = None, help: str = "",
                        modes: Sequence[str] = ("pairwise", "score", "passfail",
                                                "likelihood"),
                        replace: bool = False) -> Callable[[Any], Any]:
    """Decorator: register an aggregator under `name` with the options it takes (default: its
    keyword-only parameters) and the judging modes it uses (critics of other modes are listed
    in `Aggregation.left_out`). Registering a taken name raises unless `replace=True`."""

    def deco(func: Any) -> Any:
        if not isinstance(func, Aggregator):
            raise TypeError(f"aggregator {name!r}: {func!r} is not callable as "
                            "(judgments, context, **options)")
        if name in _REGISTRY and not replace and _REGISTRY[name].func is not func:
            raise ValueError(f"aggregator {name!r} is already registered; pass replace=True "
                             "to override it")
        declared = tuple(options) if options is not None else _declared(func)
        doc = help or (inspect.getdoc(func) or "").split("\n")[0]
        _REGISTRY[name] = AggregatorSpec(name, func, declared, doc, tuple(modes))
        return func

    return deco


def aggregator_spec(name: str) -> AggregatorSpec:
    """The registered aggregator `name`; an unknown name lists the registered ones."""
    if name not in _REGISTRY:
        raise ValueError(f"method={name!r}: use one of {', '.join(_REGISTRY)} (or register "
                         "your own with oversight.aggregate.register_aggregator)")
    return _REGISTRY[name]


def available_aggregators() -> tuple[str, ...]:
    """Registered aggregator names, built-ins first."""
    return tuple(_REGISTRY)


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Reject options the aggregator `name` does not declare, naming them and the valid ones."""
    spec = aggregator_spec(name)
    bad = sorted(set(options) - set(spec.options))
    if bad:
        valid = ", ".join(spec.options) or "none"
        raise ValueError(f"method={name!r} does not take option(s) {', '.join(bad)}; "
                         f"its options: {valid}")
