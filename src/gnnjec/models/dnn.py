"""Jet-level deep neural network: the baseline that asks whether the constituents are worth a graph network.

CMS's DNN jet energy regressions (and the thesis's starting point) see a jet through a fixed list of jet-level
quantities: its kinematics, its multiplicities and its PF energy fractions by particle type. This network
does the same with the workflow's own inputs: it takes the same arguments as the PFN and ParticleNet (so
export, ONNX inference, serving and the analysis API treat it alike), but reduces every constituent
collection to fixed summaries computed in the network, not learned, and an MLP (the head) does the rest.
What the graph networks gain over it is what learning from the constituents one by one is worth.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import CloudRegressor
from .layers import Standardize


class DNN(CloudRegressor):
    """Per collection, from the real points of the padded input (the mask's), the summary

    ``[n, sum(w), sum(w * x_f) / sum(w) for each input feature f]``:

    the number of points; the sum of the weights w, which is the collection's share of the raw jet pt when
    w is the relative pt (``exp(log_rel_pt)`` where ``log_rel_pt`` is an input of the collection, else
    ``rel_pt``; without either w = 1 and the sum is n again); and the w-weighted mean of every feature, so a
    one-hot type flag becomes that type's energy fraction of the collection (photons, neutral hadrons, ...),
    ``deta``/``dphi`` the offset of its pt centroid from the jet axis, ``dr`` its pt-weighted width. A
    collection without points summarises to zeros. The summaries are sums over the points, so they ignore
    the points' order, the padding and the batch; ``norm[<collection>]`` standardises the summary (its
    statistics come from the training split's summaries: :meth:`standardization_inputs`), ``norm["jet"]``
    the jet features, and the head maps both to the prediction.
    """

    def __init__(self, inputs: dict[str, list[str]], head_sizes: list[int], dropout: float = 0.0,
                 quantiles: tuple[float, ...] = ()):
        collections = [k for k in inputs if k != "jet"]
        super().__init__(inputs, {k: 2 + len(inputs[k]) for k in collections}, head_sizes, dropout, quantiles)
        for k in self.collections:
            self.norm[k] = Standardize(2 + len(inputs[k]))
        self.weighting = {k: self._weighting(inputs[k]) for k in self.collections}

    @staticmethod
    def _weighting(names: list[str]) -> tuple[str, int] | None:
        if "log_rel_pt" in names:
            return "exp", names.index("log_rel_pt")
        if "rel_pt" in names:
            return "linear", names.index("rel_pt")
        return None

    def summarize(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw (unstandardised) summary of collection ``name``: ``[batch, 2 + features]``."""
        x = points.masked_fill(mask.unsqueeze(-1) <= 0, 0.0)  # padding may hold anything
        weighting = self.weighting[name]
        if weighting is None:
            w = mask
        elif weighting[0] == "exp":
            w = torch.exp(x[..., weighting[1]]) * mask
        else:
            w = x[..., weighting[1]] * mask
        total = w.sum(1, keepdim=True)
        mean = (w.unsqueeze(-1) * x).sum(1) / torch.where(total > 0, total, torch.ones_like(total))
        return torch.cat([mask.sum(1, keepdim=True), total, mean], dim=1)

    def encode(self, name: str, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm[name](self.summarize(name, points, mask))

    def standardization_inputs(self, data, max_jets: int = 200_000, chunk: int = 4096) -> dict[str, np.ndarray]:
        """The jet features, and per collection the summaries of (up to ``max_jets``, drawn with a fixed seed)
        jets of ``data``, all of their points (the training may keep fewer: ``max_constituents``)."""
        rows = np.arange(data.n)
        if data.n > max_jets:
            rows = np.sort(np.random.default_rng(0).choice(data.n, max_jets, replace=False))
        out = {"jet": data.jet}
        with torch.no_grad():
            for k in self.collections:
                parts = [self.summarize(k, *(torch.from_numpy(a) for a in data.clouds[k].pad(rows[i : i + chunk],
                                                                                               np.iinfo(np.int64).max)))
                         for i in range(0, len(rows), chunk)]
                out[k] = torch.cat(parts).numpy() if parts else np.zeros((0, 2 + len(self.inputs[k])), np.float32)
        return out
