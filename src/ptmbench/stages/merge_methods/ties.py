"""TIES merging (Yadav et al., NeurIPS 2023): trim, elect the sign, disjoint mean of the task vectors."""

from __future__ import annotations

from ptmbench.stages.merge_methods.base import MergeMethod, trim, up


class Ties(MergeMethod):
    """TIES (Yadav et al. 2023): trim to top-``density`` |τ_i|, elect sign, disjoint weighted mean."""

    name = "ties"
    uses_base = True

    parameters = {"density": 0.2, "scale": 1.0}  # the fraction of |τ_i| kept; λ

    def check(self):
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"ties density {self.density!r} must be in (0, 1]")

    def merge(self, base, a, b, ratio):
        import torch

        t0 = up(base)
        taus = torch.stack([trim(up(a) - t0, self.density), trim(up(b) - t0, self.density)])
        w = torch.tensor([1.0 - ratio, ratio], dtype=t0.dtype).view(-1, *([1] * t0.dim()))
        gamma = torch.sign((w * taus).sum(0))
        agree = (torch.sign(taus) == gamma) & (taus != 0)
        num = (w * taus * agree).sum(0)
        den = (w * agree).sum(0)
        tau = torch.where(den > 0, num / den.clamp_min(torch.finfo(t0.dtype).tiny), torch.zeros_like(num))
        return (t0 + self.scale * tau).to(base.dtype)
