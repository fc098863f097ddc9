"""Network architectures, built by preset name (:data:`gnnjec.spec.PRESETS`: the thesis's sizes, and the
jet-level DNN) from a hyperparameter point. Any size given explicitly in the hyperparameters (``phi_sizes``,
``head_sizes``, ``edge_channels``, ``k``, ``coordinates``) replaces the preset's.
"""

from __future__ import annotations

from torch import nn

from ..hparams import ARCHITECTURE_KEYS, quantile_levels
from ..spec import PRESETS
from .dnn import DNN
from .particlenet import ParticleNet
from .pfn import PFN


def architecture(hparams: dict) -> dict:
    """The preset named by ``hparams["model"]`` with the explicit sizes of ``hparams`` applied."""
    name = hparams["model"]
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(PRESETS)}")
    return {**PRESETS[name], **{k: hparams[k] for k in ARCHITECTURE_KEYS if hparams.get(k) is not None}}


def build_model(hparams: dict, inputs: dict[str, list[str]]) -> nn.Module:
    """Instantiate the network of a hyperparameter point for the given input features."""
    arch = architecture(hparams)
    dropout = hparams.get("dropout", 0.0)
    quantiles = quantile_levels(hparams)
    if arch["architecture"] == "pfn":
        return PFN(inputs, arch["phi_sizes"], arch["head_sizes"], dropout, quantiles)
    if arch["architecture"] == "dnn":
        return DNN(inputs, arch["head_sizes"], dropout, quantiles)
    return ParticleNet(inputs, arch["edge_channels"], arch["head_sizes"], arch["k"], tuple(arch["coordinates"]),
                       dropout, quantiles)
