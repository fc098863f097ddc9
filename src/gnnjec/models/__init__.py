"""Network architectures, built by preset name from a hyperparameter point.

The presets are the thesis's sizes (Holmberg 2022): PFN with Phi [64, 128, 256] per collection and
head [1024, 512, 256, 128, 64]; ParticleNet with EdgeConv blocks (64,)*3, (128,)*3, (256,)*3 at
k = 16 and head [512, 256, 128, 64]; and their "Lite" versions. Any size given explicitly in the
hyperparameters (``phi_sizes``, ``head_sizes``, ``edge_channels``, ``k``, ``coordinates``) replaces
the preset's.
"""

from __future__ import annotations

from torch import nn

from ..hparams import ARCHITECTURE_KEYS
from .particlenet import ParticleNet
from .pfn import PFN

PRESETS = {
    "pfn": {"architecture": "pfn", "phi_sizes": [64, 128, 256], "head_sizes": [1024, 512, 256, 128, 64]},
    "pfn-lite": {"architecture": "pfn", "phi_sizes": [16, 32, 64], "head_sizes": [128, 64, 32, 16, 8]},
    "particlenet": {"architecture": "particlenet", "k": 16, "coordinates": ["deta", "dphi"],
                    "edge_channels": [[64, 64, 64], [128, 128, 128], [256, 256, 256]],
                    "head_sizes": [512, 256, 128, 64]},
    "particlenet-lite": {"architecture": "particlenet", "k": 16, "coordinates": ["deta", "dphi"],
                         "edge_channels": [[16, 16], [32, 32], [48, 48]], "head_sizes": [64, 32, 16]},
}


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
    if arch["architecture"] == "pfn":
        return PFN(inputs, arch["phi_sizes"], arch["head_sizes"], dropout)
    return ParticleNet(inputs, arch["edge_channels"], arch["head_sizes"], arch["k"], tuple(arch["coordinates"]), dropout)
