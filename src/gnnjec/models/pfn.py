"""Particle Flow Network regressor (Komiske, Metodiev, Thaler 2019) as used for JEC in the thesis.

One per-particle network Phi per constituent collection, sum pooling over real particles, the jet
features joined, and a head F that predicts log(pt_gen / pt_raw).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Standardize, mlp, pack, sum_pool


class PFN(nn.Module):
    """``forward(jet, <coll>, <coll>_mask, ...)`` -> prediction of shape ``[batch]``.

    ``inputs`` maps each collection name (and ``"jet"``) to its list of feature names; the order of
    the collections in ``inputs`` is the order of the forward arguments. Clouds come padded
    (``[batch, points, features]`` with a 0/1 mask); Phi runs on the real points only.
    """

    def __init__(self, inputs: dict[str, list[str]], phi_sizes: list[int], head_sizes: list[int], dropout: float = 0.0):
        super().__init__()
        self.inputs = {k: list(v) for k, v in inputs.items()}
        self.collections = [k for k in inputs if k != "jet"]
        self.norm = nn.ModuleDict({k: Standardize(len(v)) for k, v in inputs.items()})
        self.phi = nn.ModuleDict({k: mlp(len(inputs[k]), phi_sizes) for k in self.collections})
        n_head = len(self.collections) * phi_sizes[-1] + len(inputs["jet"])
        self.head = nn.Sequential(mlp(n_head, head_sizes, dropout), nn.Linear(head_sizes[-1], 1))

    def input_names(self) -> list[str]:
        names = ["jet"]
        for k in self.collections:
            names += [k, f"{k}_mask"]
        return names

    def forward(self, jet: torch.Tensor, *clouds: torch.Tensor) -> torch.Tensor:
        pooled = []
        for i, name in enumerate(self.collections):
            points, jet_index = pack(clouds[2 * i], clouds[2 * i + 1])
            pooled.append(sum_pool(self.phi[name](self.norm[name](points)), jet_index, jet.shape[0]))
        return self.head(torch.cat([*pooled, self.norm["jet"](jet)], dim=1)).squeeze(-1)
