"""Particle Flow Network regressor (Komiske, Metodiev, Thaler 2019) as used for JEC in the thesis.

One per-particle network Phi per constituent collection, sum pooling over real particles, the jet
features joined, and a head F that predicts log(pt_gen / pt_raw).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import CloudRegressor, narrowed
from .layers import gather_sum, mlp, pack, sum_pool


class PFN(CloudRegressor):
    """Phi runs on the real points only (packed), so padding never enters a computation (nor, in
    training, BatchNorm's statistics). The sum over each jet's points is a scatter-add in torch; in
    the ONNX export the packed outputs are gathered back into the padded layout (padding reads a
    zero row) and summed: the same numbers up to the order of a float sum, as Gather and ReduceSum,
    which ONNX Runtime runs faster than ScatterElements (torch the other way round)."""

    def __init__(self, inputs: dict[str, list[str]], phi_sizes: list[int], head_sizes: list[int], dropout: float = 0.0,
                 quantiles: tuple[float, ...] = ()):
        collections = [k for k in inputs if k != "jet"]
        sizes = {k: narrowed(k, phi_sizes) for k in collections}
        super().__init__(inputs, {k: s[-1] for k, s in sizes.items()}, head_sizes, dropout, quantiles)
        self.phi = nn.ModuleDict({k: mlp(len(inputs[k]), sizes[k]) for k in self.collections})

    def encode(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        real, jet_index = pack(points, mask)
        per_point = self.phi[name](self.norm[name](real))
        if torch.onnx.is_in_onnx_export():
            return gather_sum(per_point, mask)
        return sum_pool(per_point, jet_index, points.shape[0])
