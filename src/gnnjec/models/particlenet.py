"""ParticleNet regressor (Qu, Gouskos 2020): dynamic-graph EdgeConv blocks over each constituent collection.

Dense and padded, as in weaver-core, with the k nearest neighbours found in plain torch (a pairwise
distance matrix and ``topk``), so that it needs neither torch-cluster nor pyg-lib and exports to
ONNX. Unlike a plain padded implementation it is exact under padding: padded points are never
neighbours, edges to them are masked out of the mean over neighbours and out of the BatchNorm
statistics, and pooling averages real points only.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import CloudRegressor
from .layers import MaskedBatchNorm

FAR = 1e9  # distance added for pairs that must never be neighbours (self, padded points)


def knn(coords: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[batch, points, k]`` of each point's k nearest real neighbours (itself excluded).

    Needs ``points > k``; where a jet has k or fewer real points, the surplus indices point to
    padded points or to the point itself, and the caller masks them.
    """
    coords = coords * mask.unsqueeze(-1)
    square = (coords * coords).sum(-1)
    distance = square.unsqueeze(2) - 2 * coords @ coords.transpose(1, 2) + square.unsqueeze(1)
    position = torch.arange(coords.shape[1], device=coords.device)
    is_self = (position.unsqueeze(0) == position.unsqueeze(1)).to(coords.dtype)
    distance = distance + FAR * (is_self.unsqueeze(0) + (1 - mask).unsqueeze(1))
    return distance.topk(k, dim=-1, largest=False).indices


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, i, j]]`` for every b, i, j: ``[batch, points, k, channels]``."""
    batch, points, k = index.shape
    offset = (torch.arange(batch, device=x.device) * points).view(-1, 1, 1)
    return x.reshape(batch * points, -1)[(index + offset).reshape(-1)].view(batch, points, k, -1)


class EdgeConv(nn.Module):
    """kNN in ``coords``; per edge an MLP on [x_i, x_j - x_i]; mean over real neighbours; shortcut; ReLU."""

    def __init__(self, k: int, n_in: int, channels: list[int]):
        super().__init__()
        self.k = k
        sizes = [2 * n_in, *channels]
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(MaskedBatchNorm(c) for c in channels)
        self.shortcut = nn.Linear(n_in, channels[-1], bias=False)
        self.shortcut_norm = MaskedBatchNorm(channels[-1])

    def forward(self, coords: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        index = knn(coords, mask, self.k)
        # an edge counts if both ends are real and distinct: with k or fewer real points, a point's
        # surplus neighbours are padding or (tied at distance FAR) itself
        position = torch.arange(index.shape[1], device=index.device).view(1, -1, 1)
        edge_mask = gather_neighbours(mask.unsqueeze(-1), index).squeeze(-1) * mask.unsqueeze(-1)
        edge_mask = edge_mask * (index != position).to(mask.dtype)
        centre = x.unsqueeze(2).expand(-1, -1, self.k, -1)
        h = torch.cat([centre, gather_neighbours(x, index) - centre], dim=-1)
        for linear, norm in zip(self.linears, self.norms):
            h = torch.relu(norm(linear(h), edge_mask))
        n_edges = edge_mask.sum(-1, keepdim=True).clamp_min(1.0)
        aggregated = (h * edge_mask.unsqueeze(-1)).sum(2) / n_edges
        return torch.relu(aggregated + self.shortcut_norm(self.shortcut(x), mask)) * mask.unsqueeze(-1)


class ParticleNet(CloudRegressor):
    """Per collection: input BatchNorm, EdgeConv blocks (the first in ``coordinates``, the next in the
    previous block's features), mean over real points; then the shared head."""

    def __init__(self, inputs: dict[str, list[str]], edge_channels: list[list[int]], head_sizes: list[int],
                 k: int = 16, coordinates: tuple[str, ...] = ("deta", "dphi"), dropout: float = 0.0):
        super().__init__(inputs, edge_channels[-1][-1], head_sizes, dropout)
        self.k = k
        self.coordinates = {}
        for name in self.collections:
            missing = [c for c in coordinates if c not in inputs[name]]
            if missing:
                raise ValueError(f"ParticleNet needs its coordinates {missing} among the {name} features")
            self.coordinates[name] = [inputs[name].index(c) for c in coordinates]
        self.input_norm = nn.ModuleDict({k_: MaskedBatchNorm(len(inputs[k_])) for k_ in self.collections})
        self.blocks = nn.ModuleDict()
        for name in self.collections:
            n_in, blocks = len(inputs[name]), []
            for channels in edge_channels:
                blocks.append(EdgeConv(k, n_in, channels))
                n_in = channels[-1]
            self.blocks[name] = nn.ModuleList(blocks)

    def encode(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # k + 1 padded points more, so that every jet has more than k points for topk
        batch = points.shape[0]
        points = torch.cat([points, points.new_zeros(batch, self.k + 1, points.shape[2])], dim=1)
        mask = torch.cat([mask, mask.new_zeros(batch, self.k + 1)], dim=1)
        coords = points[..., self.coordinates[name]]
        x = self.input_norm[name](self.norm[name](points), mask) * mask.unsqueeze(-1)
        for block in self.blocks[name]:
            x = block(coords, x, mask)
            coords = x
        return x.sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
