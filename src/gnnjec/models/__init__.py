"""Network architectures, built by name from a hyperparameter point."""

from __future__ import annotations

from torch import nn

from .pfn import PFN

ARCHITECTURES = {"pfn": PFN}


def build_model(hparams: dict, inputs: dict[str, list[str]]) -> nn.Module:
    """Instantiate the architecture named by ``hparams["model"]`` with its size parameters."""
    name = hparams["model"]
    if name == "pfn":
        return PFN(inputs, hparams["phi_sizes"], hparams["head_sizes"], hparams.get("dropout", 0.0))
    raise ValueError(f"unknown model {name!r}; known: {', '.join(ARCHITECTURES)}")
