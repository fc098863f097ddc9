"""What every network here shares: per-collection encoders, the jet features, and the regression head."""

from __future__ import annotations

import torch
from torch import nn

from .layers import Standardize, mlp

SMALL_COLLECTIONS = {"sv": 2}
"""Collections whose networks are this many times narrower (the thesis's secondary-vertex networks:
half the widths, and ParticleNet's k = 8): a jet has a few vertices, against tens of particles."""


def narrowed(name: str, sizes: list[int]) -> list[int]:
    """The layer widths of collection ``name``'s network (see :data:`SMALL_COLLECTIONS`)."""
    factor = SMALL_COLLECTIONS.get(name, 1)
    return [max(1, s // factor) for s in sizes]


class CloudRegressor(nn.Module):
    """``forward(jet, <coll>, <coll>_mask, ...)`` -> prediction of shape ``[batch]``, or with ``quantiles`` the
    quantiles of shape ``[batch, len(quantiles)]`` (:meth:`quantile_outputs`).

    ``inputs`` maps each collection name (and ``"jet"``) to its list of feature names; the order of
    the collections in ``inputs`` is the order of the forward arguments. Clouds come padded
    (``[batch, points, features]`` with a 0/1 mask of real points). Subclasses encode one collection
    into ``[batch, encoded_sizes[name]]`` (:meth:`encode`); the encodings and the standardised jet
    features go through the head, an MLP that predicts log(pt_gen / pt_raw).
    """

    def __init__(self, inputs: dict[str, list[str]], encoded_sizes: dict[str, int], head_sizes: list[int],
                 dropout: float = 0.0, quantiles: tuple[float, ...] = ()):
        super().__init__()
        self.quantiles = tuple(quantiles)
        self.inputs = {k: list(v) for k, v in inputs.items()}
        self.collections = [k for k in inputs if k != "jet"]
        self.norm = nn.ModuleDict({k: Standardize(len(v)) for k, v in inputs.items()})
        n_head = sum(encoded_sizes[k] for k in self.collections) + len(inputs["jet"])
        self.head = nn.Sequential(mlp(n_head, head_sizes, dropout), nn.Linear(head_sizes[-1], len(self.quantiles) or 1))

    def input_names(self) -> list[str]:
        names = ["jet"]
        for k in self.collections:
            names += [k, f"{k}_mask"]
        return names

    def encode(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def standardization_inputs(self, data) -> dict:
        """What each layer of :attr:`norm` standardises, as rows of values over the jets of ``data`` (a
        :class:`gnnjec.dataset.CloudData`; the training sets each layer's statistics from them): the jet
        features, and every collection's points."""
        return {"jet": data.jet, **{k: data.clouds[k].values for k in self.collections}}

    def forward(self, jet: torch.Tensor, *clouds: torch.Tensor) -> torch.Tensor:
        encoded = [self.encode(name, clouds[2 * i], clouds[2 * i + 1]) for i, name in enumerate(self.collections)]
        out = self.head(torch.cat([*encoded, self.norm["jet"](jet)], dim=1))
        return self.quantile_outputs(out) if self.quantiles else out.squeeze(-1)

    @property
    def median_index(self) -> int:
        """The column of the median among the quantiles (the point prediction)."""
        return self.quantiles.index(0.5)

    def quantile_outputs(self, out: torch.Tensor) -> torch.Tensor:
        """The head's outputs as increasing quantiles: the median's column is the median; each quantile above it is
        the one below plus a softplus of its column, each below the one above minus one; so they never cross."""
        m = self.median_index
        median = out[:, m : m + 1]
        above = median + torch.cumsum(nn.functional.softplus(out[:, m + 1 :]), dim=1)
        below = median - torch.flip(torch.cumsum(torch.flip(nn.functional.softplus(out[:, :m]), [1]), dim=1), [1])
        return torch.cat([below, median, above], dim=1)

    def point(self, out: torch.Tensor) -> torch.Tensor:
        """The prediction (the median) from :meth:`forward`'s output."""
        return out[:, self.median_index] if self.quantiles else out
