"""Checkpoint files of the train stage: the trained network, and the whole training state to resume from.

* ``model.pt``: ``{"hparams", "inputs", "state_dict", "best_val_loss"}``, the best epoch's weights;
  :func:`load_model` rebuilds the network from it (export and the tests use it).
* ``last.pt`` / ``state.pt``: the whole state after an epoch (weights, optimiser, schedule, RNGs,
  history, best weights so far, early-stopping count) with the *fingerprint* of the training it
  belongs to (hyperparameters, inputs, data files), so that it is only ever resumed by the same
  training.

Everything is read with ``torch.load(weights_only=True)``: a checkpoint holds tensors and plain
Python containers only, and a crafted file cannot run code when it is loaded. A file that does not load so is not
a checkpoint of this workflow: said so plainly (never with PyTorch's advice to load it with weights_only=False,
which would run what it holds), and a training's own state file is moved aside, kept as evidence, before the
training writes a new one.
"""

from __future__ import annotations

import itertools
import logging
import os

import torch

from . import provenance
from .errors import InputError, Terminated
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


class NotACheckpoint(Exception):
    """The file does not load as a checkpoint of this workflow (a dict of tensors and plain containers)."""


_TORCH_ADVICE = ("weights_only", "Weights only load failed", "Check the documentation of torch.load")
"""The lines of PyTorch's message that advise loading with weights_only=False or point to its documentation:
left out of ours, which keep only the reason (the global the file would call, the byte it stopped at)."""


def _read(path: str) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, Terminated, KeyboardInterrupt, MemoryError):  # not the file's content
        raise
    except Exception as err:  # a crafted pickle, other bytes, a write cut short
        lines = [line.strip() for line in str(err).splitlines()]
        reason = next((line for line in lines if line and not any(a in line for a in _TORCH_ADVICE)), "")
        raise NotACheckpoint(f"{type(err).__name__}: {reason}" if reason else type(err).__name__) from None
    if not isinstance(checkpoint, dict):
        raise NotACheckpoint(f"it holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


def set_aside(path: str) -> str:
    """Move ``path`` to ``<path>.rejected`` (``.rejected-1``, ... when taken: an earlier one is never replaced);
    return where it went."""
    for n in itertools.count():
        aside = f"{path}.rejected" + (f"-{n}" if n else "")
        if not os.path.lexists(aside):
            os.rename(path, aside)
            return aside


def _not_ours(path: str, err: NotACheckpoint, move: bool) -> str:
    """What is said of a training state file that is not a checkpoint of this workflow, moved aside if ``move``."""
    where = f"moved aside to {set_aside(path)}" if move else "left for the main process to move aside"
    return f"{path}: not a checkpoint of this workflow ({err}); not loaded, {where}"


def load_state(path: str, expected_fingerprint: str, *, finished_ok: bool, move_aside: bool = True) -> dict | None:
    """The training state saved at ``path`` by the same training, or None.

    A file that is not a checkpoint of this workflow (cut short, crafted, other bytes) is moved aside (when
    ``move_aside``: the main process of a training), and one from other hyperparameters or data is left to be
    replaced; either gives None, so that training starts afresh. A state whose training had finished is taken only
    when ``finished_ok`` (a later budget continuing it); otherwise the same training runs again from the start.
    """
    if not os.path.exists(path):
        return None
    try:
        state = _read(path)
    except FileNotFoundError:  # moved aside by the main process meanwhile
        return None
    except NotACheckpoint as err:
        log.warning("%s; training from the start", _not_ours(path, err, move_aside))
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.info("%s: from other hyperparameters or data; training from the start", path)
        return None
    if state["finished"] and not finished_ok:
        log.info("%s: that training finished; training again from the start", path)
        return None
    return state


def load_continuation(path: str, expected_fingerprint: str, move_aside: bool = True) -> dict:
    """The state an earlier budget of this same training ended with (successive halving's previous rung).

    Unlike :func:`load_state` this one must exist and match: continuing from anything else would
    silently retrain or mix trainings. A file that is not a checkpoint of this workflow is moved aside (when
    ``move_aside``), so that the previous rung writes it again.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: the state to continue from is missing; rerun the previous rung of this point")
    try:
        state = _read(path)
    except NotACheckpoint as err:
        raise InputError(f"{_not_ours(path, err, move_aside)}; rerun the previous rung of this point") from None
    if state.get("fingerprint") != expected_fingerprint:
        raise InputError(f"{path}: saved by other hyperparameters or data files; rerun the previous rung of this point")
    return state


MODEL_KEYS = ("hparams", "inputs", "state_dict")


def load_model(model_path: str):
    """Rebuild a trained network from its checkpoint, in evaluation mode on the CPU."""
    fix = "give the model.pt the train stage wrote, or train the point again"
    with reading(model_path, "file", fix):  # missing, or not to be read (permissions, a folder)
        try:
            checkpoint = _read(model_path)
            missing = [k for k in MODEL_KEYS if k not in checkpoint]
            if missing:
                raise NotACheckpoint(f"no {missing[0]!r}")
        except NotACheckpoint as err:
            raise InputError(f"{model_path}: not a checkpoint of this workflow ({err}); not loaded; {fix}") from None
    model = build_model(checkpoint["hparams"], checkpoint["inputs"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint
