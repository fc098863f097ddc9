"""Building blocks shared by the networks: input standardisation and padding-exact normalisation."""

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


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the feature axis of ``[batch, points, features]`` that ignores padded points.

    In training the batch statistics come from real points only; in evaluation the running
    statistics are applied point by point, so a jet's output never depends on its padding or its
    batch-mates.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.training:
            keep = mask > 0
            out = torch.zeros_like(x)
            out[keep] = super().forward(x[keep])
            return out
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape) * mask.unsqueeze(-1)


class PointMLP(nn.Module):
    """Per-point MLP (Linear, masked BatchNorm, ReLU per layer); padded points stay exactly zero."""

    def __init__(self, n_in: int, sizes: list[int]):
        super().__init__()
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        for n_out in sizes:
            self.linears.append(nn.Linear(n_in, n_out))
            self.norms.append(MaskedBatchNorm(n_out))
            n_in = n_out
        self.n_out = n_in

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms):
            x = torch.relu(norm(linear(x), mask))
        return x * mask.unsqueeze(-1)


def mlp_head(n_in: int, sizes: list[int], dropout: float) -> nn.Sequential:
    """Jet-level regression head: [Linear, BatchNorm, ReLU, Dropout] per layer, then Linear -> 1."""
    layers: list[nn.Module] = []
    for n_out in sizes:
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = n_out
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)
