"""The paper's merge: the ``.weight`` tensors interpolated, every other tensor the base's."""

from __future__ import annotations

from ptmbench.stages.merge_methods.base import MergeMethod, lerp


class Published(MergeMethod):
    """θ = (1 - r) θ_a + r θ_b for tensors named ``*.weight``; θ_0 for every other tensor."""

    name = "published"

    def applies(self, name, dtype):
        return name.endswith(".weight") and dtype.is_floating_point

    def merge(self, base, a, b, ratio):
        return lerp(a, b, ratio)
