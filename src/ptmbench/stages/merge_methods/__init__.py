"""Merge methods: one module per method behind the registry :data:`METHODS` (mergekit-style)."""

from __future__ import annotations

from ptmbench.stages.merge_methods.base import MergeMethod
from ptmbench.stages.merge_methods.linear import Linear
from ptmbench.stages.merge_methods.published import Published
from ptmbench.stages.merge_methods.task_arithmetic import TaskArithmetic
from ptmbench.stages.merge_methods.ties import Ties

METHODS: dict[str, type[MergeMethod]] = {m.name: m for m in (Published, Linear, TaskArithmetic, Ties)}


def make_method(method: str, **params) -> MergeMethod:
    """The method ``method`` with the values of the parameters it declares among ``params`` (the config's
    ``merge`` block gives every method's; each takes its own)."""
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; choose one of {sorted(METHODS)}")
    cls = METHODS[method]
    return cls(**{k: v for k, v in params.items() if k in cls.parameters})


__all__ = ["METHODS", "Linear", "MergeMethod", "Published", "TaskArithmetic", "Ties", "make_method"]
