"""Building blocks shared by the networks: input standardisation, point packing and pooling."""

from __future__ import annotations

import torch
from torch import nn


class Standardize(nn.Module):
    """(x - center) / scale, clipped to [-clip, clip]; statistics are buffers saved with the model.

    Baking the preprocessing into the network means the exported ONNX model takes raw features.
    """

    def __init__(self, n_features: int, clip: float = 5.0):
        super().__init__()
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.clip = clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.center) / self.scale, -self.clip, self.clip)


def pack(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real points of a padded ``[batch, points, features]`` tensor: ``([n_real, features], jet index)``.

    Padded points never enter a computation, so a jet's output cannot depend on its padding or, in
    evaluation, on its batch-mates; and no time is spent on padding.
    """
    keep = mask > 0
    jet_index = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand_as(mask)[keep]
    return x[keep], jet_index


def sum_pool(points: torch.Tensor, jet_index: torch.Tensor, n_jets: int) -> torch.Tensor:
    """Sum of each jet's point features: ``[n_jets, features]`` (zeros for a jet with no points).

    scatter_add (not index_add) because it exports to ONNX ScatterElements(reduction='add').
    """
    out = torch.zeros(n_jets, points.shape[1], dtype=points.dtype, device=points.device)
    return out.scatter_add(0, jet_index.unsqueeze(1).expand(-1, points.shape[1]), points)


def gather_sum(points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`sum_pool` of packed ``points`` (the real points of ``mask``, in order) by gathering them
    back into the padded layout, padding reading an appended zero row: ``[batch, features]``.

    Exports to CumSum, Gather and ReduceSum, which ONNX Runtime runs on all cores.
    """
    flat = mask.reshape(-1) > 0
    position = torch.cumsum(flat.to(torch.int64), 0) - 1
    index = torch.where(flat, position, torch.full_like(position, points.shape[0]))
    padded = torch.cat([points, points.new_zeros(1, points.shape[1])])[index]
    return padded.reshape(mask.shape[0], mask.shape[1], points.shape[1]).sum(1)


def mlp(n_in: int, sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """[Linear, BatchNorm, ReLU(, Dropout)] per layer; used per point (on packed points) and per jet."""
    layers: list[nn.Module] = []
    for n_out in sizes:
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = n_out
    return nn.Sequential(*layers)


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last axis of ``[..., channels]`` whose statistics count real entries only.

    In training the mean and variance come from the entries where ``mask`` is 1 (padded points and
    edges to them are left out), so a jet's output does not depend on how its batch was padded. In
    evaluation it is the usual affine map with the running statistics (and exports as such). Both
    are one fused multiply-add on the data.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training:
            dims = tuple(range(x.dim() - 1))
            n = mask.sum().clamp_min(1.0)
            masked = x * mask.unsqueeze(-1)
            mean = masked.sum(dims) / n
            var = ((masked * x).sum(dims) / n - mean * mean).clamp_min(0.0)
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1).clamp_min(1.0), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        return torch.addcmul(self.bias - mean * scale, x, scale)
