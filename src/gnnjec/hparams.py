"""Hyperparameters of a training: every name and its default, in one place (no torch needed to read them).

The configuration's ``training.defaults``, ``training.grid`` and ``training.random.space`` use
these names (the schema, ``workflow/schemas/config.schema.yaml``, gives each one's type and range);
the architecture's sizes come from the model presets (:data:`gnnjec.spec.PRESETS`) unless a point
gives them (:data:`ARCHITECTURE_KEYS`).
"""

from __future__ import annotations

from .errors import ConfigError

DEFAULTS = {
    "model": "pfn",
    "dropout": 0.0,
    "optimizer": "adam",
    "lr": 2e-3,
    "weight_decay": 0.0,
    "batch_size": 512,
    "epochs": 20,
    "patience": 5,
    "lr_patience": 2,
    "lr_factor": 0.2,
    "loss": "mae",
    "quantiles": [],  # e.g. [0.16, 0.5, 0.84]: also those quantiles of the target, with a pinball loss
    "max_abs_target": 1.0,
    "max_constituents": 128,
    "seed": 1,
    "amp": False,  # bfloat16 autocast on CUDA (ignored on the CPU)
    "schedule": "plateau",  # or "cosine": linear warmup over warmup_epochs, then cosine decay
    "warmup_epochs": 0,
    "window_jets": 500_000,  # jets in memory at once (a window of row groups, shuffled together)
    "compile": False,  # torch.compile the network (CUDA only)
    "loader_threads": 0,  # threads padding batches; 0: 3 on CUDA, 1 on the CPU
}

ARCHITECTURE_KEYS = ("phi_sizes", "head_sizes", "edge_channels", "k", "coordinates")
"""Sizes that replace the preset's when a point gives them."""


def complete(hparams: dict) -> dict:
    """``hparams`` over :data:`DEFAULTS`; unknown names are refused naming the config key."""
    known = {*DEFAULTS, *ARCHITECTURE_KEYS}
    unknown = set(hparams) - known - {"name"}
    if unknown:
        raise ConfigError("training.grid", f"unknown hyperparameters {sorted(unknown)}; known: {sorted(known)}")
    out = {**DEFAULTS, **hparams}
    quantile_levels(out)
    return out


def quantile_levels(hparams: dict) -> tuple[float, ...]:
    """The quantiles a point learns (``()``: the median only, by the loss), checked: increasing, in (0, 1), the
    median among them, and the MAE loss (whose minimum is the median: the pinball loss at 0.5)."""
    levels = tuple(float(q) for q in hparams.get("quantiles") or ())
    if not levels:
        return ()
    if list(levels) != sorted(set(levels)) or not all(0 < q < 1 for q in levels) or 0.5 not in levels:
        raise ConfigError("training.defaults.quantiles", f"{list(levels)} must increase, lie in (0, 1) and include "
                          "0.5 (the prediction), e.g. [0.16, 0.5, 0.84]")
    if hparams.get("loss", DEFAULTS["loss"]) != "mae":
        raise ConfigError("training.defaults.loss", f"{hparams['loss']!r} with quantiles; quantiles are learnt with "
                          "the pinball loss, whose 0.5 quantile is the MAE's: set loss: mae")
    return levels


def varied(points: list[dict]) -> list[str]:
    """The hyperparameters whose values differ between ``points``."""
    from .files import canonical_json

    return sorted({k for hp in points for k in hp if len({canonical_json(other.get(k)) for other in points}) > 1})
