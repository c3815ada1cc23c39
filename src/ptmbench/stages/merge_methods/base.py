"""The base of the merge methods: one class per method, which declares its parameters (mergekit's
``merge_methods/base.py`` is the model), and the tensor helpers they share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar


class MergeMethod:
    """One way of combining θ_0, θ_a, θ_b of a tensor. ``applies(name, dtype)``: merged, else θ_0 kept.

    ``parameters`` declares the method's parameters and their defaults (config ``merge``); an instance
    holds their values as attributes, checked by :meth:`check`.
    """

    name = ""
    uses_base = False  # whether merge() reads θ_0 (task-vector methods)
    parameters: ClassVar[Mapping[str, float]] = {}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(f"merge method {self.name!r} has no parameter(s) {unknown}; "
                             f"its parameters: {sorted(self.parameters) or 'none'}")
        for key, default in self.parameters.items():
            setattr(self, key, float(params.get(key, default)))
        self.check()

    def check(self) -> None:
        """Raise ValueError naming a parameter value the method cannot use."""

    def values(self) -> dict[str, float]:
        """The method's parameters and their values, in declaration order (recorded in merge.json)."""
        return {key: getattr(self, key) for key in self.parameters}

    def applies(self, name: str, dtype) -> bool:
        return dtype.is_floating_point

    def merge(self, base, a, b, ratio: float):
        """The merged tensor. ``a`` (fresh) and ``b`` (a scratch buffer) belong to the caller: merge()
        may overwrite both and may return ``a`` itself."""
        raise NotImplementedError


def trim(tau, density: float):
    """Keep the ceil(density * n) largest-magnitude entries of ``tau``, zero the rest (TIES 'trim')."""
    import torch

    k = min(tau.numel(), math.ceil(density * tau.numel()))
    if k >= tau.numel():
        return tau
    flat = tau.flatten()
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat.abs(), k, sorted=False).indices] = True
    return torch.where(keep, flat, torch.zeros_like(flat)).view_as(tau)


def lerp(a, b, ratio):
    """(1 - r) a + r b, overwriting ``a`` and ``b``. For float32/64 these are the same element-wise
    operations and roundings as the original script's ``(1 - r) * a + r * b`` (bit-identical);
    half precision goes through float32."""
    import torch

    if a.dtype in (torch.float16, torch.bfloat16):
        return ((1 - ratio) * a.float() + ratio * b.float()).to(a.dtype)
    return a.mul_(1 - ratio).add_(b.mul_(ratio))


def up(t):
    import torch

    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
