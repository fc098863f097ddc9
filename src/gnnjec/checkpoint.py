"""Checkpoint files of the train stage: the trained network, and the whole training state to resume from.

* ``model.pt``: ``{"hparams", "inputs", "state_dict", "best_val_loss"}``, the best epoch's weights;
  :func:`load_model` rebuilds the network from it (export and the tests use it).
* ``last.pt`` / ``state.pt``: the whole state after an epoch (weights, optimiser, schedule, RNGs,
  history, best weights so far, early-stopping count) with the *fingerprint* of the training it
  belongs to (hyperparameters, inputs, data files), so that it is only ever resumed by the same
  training.

Everything is read with ``torch.load(weights_only=True)``: a checkpoint holds tensors and plain
Python containers only, and a crafted file cannot run code when it is loaded.
"""

from __future__ import annotations

import logging
import os

import torch

from . import provenance
from .errors import InputError
from .files import atomic_output, canonical_json, reading
from .models import build_model

log = logging.getLogger(__name__)


def fingerprint(hp: dict, inputs: dict, paths: tuple[str, ...]) -> str:
    """What a resumable state must match: the hyperparameters, the inputs and the data files."""
    files = [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    return canonical_json({"hparams": hp, "inputs": inputs, "files": files})


def save(path: str, payload: dict) -> None:
    """Write ``payload`` and its provenance with torch.save, atomically."""
    with atomic_output(path) as tmp:
        torch.save({**payload, "provenance": provenance.current()}, tmp)


def _read(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_state(path: str, expected_fingerprint: str, *, finished_ok: bool) -> dict | None:
    """The training state saved at ``path`` by the same training, or None.

    An unreadable file (a write cut short) or one from other hyperparameters or data gives None, so
    that training starts afresh. A state whose training had finished is taken only when
    ``finished_ok`` (a later budget continuing it); otherwise the same training runs again from the start.
    """
    if not os.path.exists(path):
        return None
    try:
        state = _read(path)
    except Exception as err:  # a checkpoint cut short, or not a checkpoint
        log.warning("%s: unreadable (%s); training from the start", path, err)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.info("%s: from other hyperparameters or data; training from the start", path)
        return None
    if state["finished"] and not finished_ok:
        log.info("%s: that training finished; training again from the start", path)
        return None
    return state


def load_continuation(path: str, expected_fingerprint: str) -> dict:
    """The state an earlier budget of this same training ended with (successive halving's previous rung).

    Unlike :func:`load_state` this one must exist and match: continuing from anything else would
    silently retrain or mix trainings.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: the state to continue from is missing; rerun the previous rung of this point")
    try:
        state = _read(path)
    except Exception as err:
        raise InputError(f"{path}: unreadable training state ({err}); delete it and rerun the previous rung") from None
    if state.get("fingerprint") != expected_fingerprint:
        raise InputError(f"{path}: saved by other hyperparameters or data files; rerun the previous rung of this point")
    return state


def load_model(model_path: str):
    """Rebuild a trained network from its checkpoint, in evaluation mode on the CPU."""
    with reading(model_path, "gnnjec checkpoint (torch.load with weights_only=True: tensors and plain containers "
                 "only, so that a crafted file cannot run code)", "train the point again"):
        checkpoint = _read(model_path)
    model = build_model(checkpoint["hparams"], checkpoint["inputs"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint
