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

from .base import SMALL_COLLECTIONS, CloudRegressor, narrowed
from .layers import MaskedBatchNorm

FAR = 1e9  # distance added for pairs that must never be neighbours (self, padded points)


def knn(coords: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's k nearest real neighbours, itself excluded: (indices, valid), both ``[batch, points, k]``.

    Where a jet has k or fewer real points, the surplus neighbours are not valid (their indices are
    in range but meaningless). Works for any number of points, fewer than k included.
    """
    batch, points, _ = coords.shape
    mask = mask.float()
    with torch.autocast(coords.device.type, enabled=False):  # neighbours in float32, also under AMP
        coords = coords.float() * mask.unsqueeze(-1)
        square = (coords * coords).sum(-1)
        distance = square.unsqueeze(2) - 2 * coords @ coords.transpose(1, 2) + square.unsqueeze(1)
    position = torch.arange(points, device=coords.device)
    is_self = (position.unsqueeze(0) == position.unsqueeze(1)).to(distance.dtype)
    distance = distance + FAR * (is_self.unsqueeze(0) + (1 - mask).unsqueeze(1))
    # k columns more, farther than anything, so that topk has k candidates however few points there are
    distance = torch.cat([distance, distance.new_full((batch, points, k), 4 * FAR)], dim=2)
    index = distance.topk(k, dim=-1, largest=False).indices
    in_range = index < points
    index = torch.where(in_range, index, torch.zeros_like(index))
    valid = gather_neighbours(mask.unsqueeze(-1), index).squeeze(-1) * mask.unsqueeze(-1)
    valid = valid * (in_range & (index != position.view(1, -1, 1))).to(mask.dtype)
    return index, valid


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, i, j]]`` for every b, i, j: ``[batch, points, k, channels]``."""
    batch, points, k = index.shape
    offset = (torch.arange(batch, device=x.device) * points).view(-1, 1, 1)
    return x.reshape(batch * points, -1)[(index + offset).reshape(-1)].view(batch, points, k, -1)


class EdgeConv(nn.Module):
    """kNN in ``coords``; per edge an MLP on [x_i, x_j - x_i]; mean over real neighbours; shortcut; ReLU.

    The first layer is split by linearity, W [x_i, x_j - x_i] = (W_i - W_j) x_i + W_j x_j, so it runs
    per point and only its output is gathered per edge.
    """

    def __init__(self, k: int, n_in: int, channels: list[int]):
        super().__init__()
        self.k = k
        self.centre = nn.Linear(n_in, channels[0], bias=False)  # (W_i - W_j)
        self.neighbour = nn.Linear(n_in, channels[0], bias=False)  # W_j
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(channels[:-1], channels[1:]))
        self.norms = nn.ModuleList(MaskedBatchNorm(c) for c in channels)
        self.shortcut = nn.Linear(n_in, channels[-1], bias=False)
        self.shortcut_norm = MaskedBatchNorm(channels[-1])

    def forward(self, coords: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        index, valid = knn(coords, mask, self.k)
        h = self.centre(x).unsqueeze(2) + gather_neighbours(self.neighbour(x), index)
        h = torch.relu(self.norms[0](h, valid))
        for linear, norm in zip(self.linears, self.norms[1:]):
            h = torch.relu(norm(linear(h), valid))
        # mean over the valid edges: [b, i, 1, k] @ [b, i, k, c]
        aggregated = (valid.unsqueeze(2) @ h).squeeze(2) / valid.sum(-1, keepdim=True).clamp_min(1.0)
        return torch.relu(aggregated + self.shortcut_norm(self.shortcut(x), mask)) * mask.unsqueeze(-1)


class ParticleNet(CloudRegressor):
    """Per collection: input BatchNorm, EdgeConv blocks (the first in ``coordinates``, the next in the
    previous block's features), mean over real points; then the shared head."""

    def __init__(self, inputs: dict[str, list[str]], edge_channels: list[list[int]], head_sizes: list[int],
                 k: int = 16, coordinates: tuple[str, ...] = ("deta", "dphi"), dropout: float = 0.0,
                 quantiles: tuple[float, ...] = ()):
        collections = [c for c in inputs if c != "jet"]
        channels_of = {c: [narrowed(c, ch) for ch in edge_channels] for c in collections}
        super().__init__(inputs, {c: channels_of[c][-1][-1] for c in collections}, head_sizes, dropout, quantiles)
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
            k_name = max(1, k // SMALL_COLLECTIONS.get(name, 1))
            for channels in channels_of[name]:
                blocks.append(EdgeConv(k_name, n_in, channels))
                n_in = channels[-1]
            self.blocks[name] = nn.ModuleList(blocks)

    def encode(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        coords = points[..., self.coordinates[name]]
        x = self.input_norm[name](self.norm[name](points), mask) * mask.unsqueeze(-1)
        for block in self.blocks[name]:
            x = block(coords, x, mask)
            coords = x
        return x.sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
