"""Linear interpolation of every floating-point tensor."""

from __future__ import annotations

from ptmbench.stages.merge_methods.base import MergeMethod, lerp


class Linear(MergeMethod):
    """θ = (1 - r) θ_a + r θ_b for every floating-point tensor (biases and LayerNorms included)."""

    name = "linear"

    def merge(self, base, a, b, ratio):
        return lerp(a, b, ratio)
