"""Task arithmetic (Ilharco et al., ICLR 2023): the base plus the scaled sum of the task vectors."""

from __future__ import annotations

from ptmbench.stages.merge_methods.base import MergeMethod, up


class TaskArithmetic(MergeMethod):
    """θ = θ_0 + λ (2(1 - r) τ_a + 2r τ_b), τ_i = θ_i - θ_0 (Ilharco et al. 2023; r = 0.5: θ_0 + λ Σ τ_i)."""

    name = "task_arithmetic"
    uses_base = True

    parameters = {"scale": 1.0}  # λ

    def merge(self, base, a, b, ratio):
        t0, ta, tb = up(base), up(a), up(b)
        out = t0 + self.scale * (2 * (1 - ratio) * (ta - t0) + 2 * ratio * (tb - t0))
        return out.to(base.dtype)
