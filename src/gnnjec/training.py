"""Train stage: fit one hyperparameter point on the training split, select on the validation split."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .dataset import CloudData, CloudStream, robust_standardization
from .errors import CheckFailed, InputError, atomic_output
from .models import ARCHITECTURE_KEYS, build_model
from .streams import ordered_map, read_ahead

log = logging.getLogger(__name__)

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

PROGRESS_SECONDS = 30.0  # a progress line this often within an epoch (readable in a batch log)


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when present (or when asked for), else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"config key training.device: {requested!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(requested)


def _loss_fn(name: str):
    if name == "mae":
        return torch.nn.L1Loss()
    if name == "huber":
        return torch.nn.HuberLoss(delta=0.1)
    raise InputError(f"hyperparameter loss={name!r} unknown; use 'mae' or 'huber'")


def _optimizer(hp: dict, params):
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    if hp["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    raise InputError(f"hyperparameter optimizer={hp['optimizer']!r} unknown; use 'adam' or 'adamw'")


def fit_standardization(model, data: CloudData) -> None:
    """Set every Standardize layer from the training split (stored in the model's buffers)."""
    stats = {"jet": data.jet, **{k: data.clouds[k].values for k in data.collections}}
    for name, values in stats.items():
        center, scale = robust_standardization(values)
        model.norm[name].center.copy_(torch.from_numpy(center))
        model.norm[name].scale.copy_(torch.from_numpy(scale))


def trainable(target: np.ndarray, max_abs_target: float) -> np.ndarray:
    """Jets the loss counts: a finite target below ``max_abs_target`` in size (the thesis: 1)."""
    return np.isfinite(target) & (np.abs(target) < max_abs_target)


def batch_rows(rows: np.ndarray, batch_size: int, drop_last: bool = False) -> list[np.ndarray]:
    """``rows`` cut into batches; ``drop_last`` leaves out a ragged last batch (BatchNorm in training
    wants more than one jet), unless there would be no batch at all."""
    if drop_last and len(rows) < 2:
        return []  # BatchNorm in training needs two jets at least
    n = max(len(rows) // batch_size, 1) if drop_last else -(-len(rows) // batch_size)
    return [rows[b * batch_size : (b + 1) * batch_size] for b in range(n)]


def device_batch(data: CloudData, rows: np.ndarray, max_constituents: int, device: torch.device) -> list:
    """One padded batch: the network's arguments, then the target, as tensors on ``device``
    (on CUDA copied through pinned memory, asynchronously)."""
    tensors = [torch.from_numpy(a) for a in (*data.batch(rows, max_constituents), data.truth["target"][rows])]
    if device.type == "cuda":
        tensors = [x.pin_memory().to(device, non_blocking=True) for x in tensors]
    return tensors


def device_batches(data: CloudData, rows: np.ndarray, batch_size: int, max_constituents: int,
                   device: torch.device, drop_last: bool = False, workers: int = 1):
    """Padded batches of ``rows`` on ``device`` (see :func:`device_batch`), made by ``workers`` threads."""
    def make(sel):
        return device_batch(data, sel, max_constituents, device)

    if workers <= 1:
        return map(make, batch_rows(rows, batch_size, drop_last))
    return ordered_map(make, batch_rows(rows, batch_size, drop_last), workers)


def evaluate_loss(model, stream: CloudStream, hp, device, loss_fn) -> float:
    """Mean loss over the trainable jets of ``stream``, read window by window."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for data, order in stream.epoch():
            rows = order[trainable(data.truth["target"][order], hp["max_abs_target"])]
            for *args, target in device_batches(data, rows, 4096, hp["max_constituents"], device):
                total += loss_fn(model(*args), target).item() * len(target)
                n += len(target)
    return total / max(n, 1)


def _scheduler(hp: dict, optimizer):
    """ReduceLROnPlateau (the thesis's) or linear warmup then cosine decay, both stepped per epoch."""
    if hp["schedule"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=hp["lr_factor"], patience=hp["lr_patience"])
    if hp["schedule"] == "cosine":
        warmup, epochs = hp["warmup_epochs"], hp["epochs"]

        def factor(done: int) -> float:  # ``done`` epochs completed
            if done < warmup:
                return (done + 1) / (warmup + 1)
            return 0.5 * (1 + math.cos(math.pi * (done - warmup) / max(epochs - warmup, 1)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise InputError(f"hyperparameter schedule={hp['schedule']!r} unknown; use 'plateau' or 'cosine'")


def _fingerprint(hp: dict, inputs: dict, paths: tuple[str, ...]) -> str:
    """What a resumable checkpoint must match: the hyperparameters, the inputs and the data files."""
    files = [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    return json.dumps({"hparams": hp, "inputs": inputs, "files": files}, sort_keys=True)


def train(train_path: str, val_path: str, model_path: str, history_path: str, hparams: dict,
          inputs: dict[str, list[str]], device: str = "auto", threads: int | None = None,
          last_path: str | None = None) -> dict:
    """Fit one grid point; write the best checkpoint and the per-epoch history (atomically).

    After every epoch the whole training state goes to ``last_path`` (default: ``last.pt`` beside
    the model). If training is killed, the next call with the same hyperparameters, inputs and data
    files resumes from it and ends where an uninterrupted run would have ended.
    """
    hp = {**DEFAULTS, **hparams}
    known = {*DEFAULTS, *ARCHITECTURE_KEYS}
    unknown = set(hparams) - known - {"name"}
    if unknown:
        raise InputError(f"config key training.grid: unknown hyperparameters {sorted(unknown)}; known: {sorted(known)}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(hp["seed"])
    rng = np.random.default_rng(hp["seed"])
    group, dev = distributed.join(pick_device(device))
    last_path = last_path or str(Path(model_path).with_name("last.pt"))

    train_stream = CloudStream(train_path, inputs, window_jets=hp["window_jets"])
    val_stream = CloudStream(val_path, inputs, window_jets=hp["window_jets"])
    n_train, n_val = (int(trainable(s.targets(), hp["max_abs_target"]).sum()) for s in (train_stream, val_stream))
    if n_train < 2 or n_val == 0:
        raise InputError(f"{train_path if n_train < 2 else val_path}: no jets to train on; generate or convert more events")

    try:
        model = build_model(hp, inputs)
    except ValueError as err:
        raise InputError(f"config key training (model {hp['model']!r}): {err}; fix the grid point or the features") from None
    # standardisation from a random window of the training split
    fit_standardization(model, train_stream.load(train_stream.windows(np.random.default_rng(hp["seed"]))[0]))
    model.to(dev)
    # several processes (torchrun): gradients averaged by DDP; evaluation and saving use ``model``
    net = model if group.size == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if hp["compile"] and dev.type == "cuda":
        net = torch.compile(net, dynamic=True)  # padding widths vary from batch to batch
    optimizer = _optimizer(hp, model.parameters())
    scheduler = _scheduler(hp, optimizer)
    loss_fn = _loss_fn(hp["loss"])
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s with %d parameters on %s%s; %d training, %d validation jets",
             hp["model"], n_params, dev, f" x {group.size} processes" if group.size > 1 else "",
             n_train, n_val)

    fingerprint = _fingerprint(hp, inputs, (train_path, val_path))
    history, best, best_state, stale, first_epoch = [], math.inf, None, 0, 1
    resumed = _load_last(last_path, fingerprint)
    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        rng.bit_generator.state = resumed["numpy_rng"]
        torch.set_rng_state(resumed["torch_rng"])
        if dev.type == "cuda" and resumed.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(resumed["cuda_rng"])
        history, best, best_state, stale = resumed["history"], resumed["best"], resumed["best_state"], resumed["stale"]
        first_epoch = resumed["epoch"] + 1
        log.info("resuming from %s after epoch %d", last_path, resumed["epoch"])

    bs = hp["batch_size"]
    board = _tensorboard(Path(model_path).with_name("tensorboard")) if group.main else None
    batches_per_epoch = max(n_train // (bs * group.size), 1)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(hp["amp"]) and dev.type == "cuda")
    for epoch in range(first_epoch, hp["epochs"] + 1):
        model.train()
        start = time.perf_counter()
        total = torch.zeros((), device=dev)
        n_batches, wait, last_report = 0, 0.0, start
        # windows of the file are read, and batches padded (and copied to the device), in background
        # threads: the next window, and two batches ahead
        batches = read_ahead(_epoch_batches(train_stream, rng, group, hp, dev), 2)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            wait += time.perf_counter() - tick
            if batch is None:
                break
            *args, target = batch
            with amp:
                loss = loss_fn(net(*args).float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            n_batches += 1
            if time.perf_counter() - last_report > PROGRESS_SECONDS:
                last_report = time.perf_counter()
                log.info("epoch %d: %d/~%d batches, %.0f jets/s", epoch, n_batches, batches_per_epoch,
                         group.size * n_batches * bs / (last_report - start))
        seconds = time.perf_counter() - start
        val_loss = group.mean(evaluate_loss(model, val_stream, hp, dev, loss_fn), dev)
        if hp["schedule"] == "plateau":
            scheduler.step(val_loss)
        else:
            scheduler.step()
        record = {
            "epoch": epoch,
            "train_loss": group.mean(total.item() / n_batches, dev),
            "val_loss": val_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "jets_per_second": group.size * n_batches * bs / seconds,
            "data_wait_share": wait / seconds,
        }
        history.append(record)
        if board is not None:
            for key in ("train_loss", "val_loss", "lr", "jets_per_second", "data_wait_share"):
                board.add_scalar(key, record[key], epoch)
            board.flush()
        log.info("epoch %d: train %.5f  val %.5f  lr %.1e  %.0f jets/s (%.0f%% waiting for data)", epoch,
                 record["train_loss"], val_loss, record["lr"], record["jets_per_second"], 100 * record["data_wait_share"])
        if val_loss < best:
            best, best_state, stale = val_loss, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
        finished = stale >= hp["patience"] or epoch == hp["epochs"]
        if stale >= hp["patience"]:
            log.info("early stop after epoch %d (no improvement for %d epochs)", epoch, stale)
        if group.main:
            _save_last(last_path, {
                "fingerprint": fingerprint, "epoch": epoch, "finished": finished, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "history": history,
                "best": best, "best_state": best_state, "stale": stale, "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if dev.type == "cuda" else None,
            })
        if finished:
            break

    if best_state is None:
        raise CheckFailed(f"{model_path}: training diverged (validation loss {history[-1]['val_loss']}); lower training lr")
    summary = {"hparams": hp, "inputs": inputs, "parameters": n_params, "device": str(dev),
               "best_val_loss": best, "resumed_after_epoch": resumed["epoch"] if resumed else None, "epochs": history}
    if board is not None:
        board.close()
    summary["processes"] = group.size
    checkpoint = {"hparams": hp, "inputs": inputs, "state_dict": best_state, "best_val_loss": best}
    if group.main:
        with atomic_output(model_path) as tmp:
            torch.save(checkpoint, tmp)
        with atomic_output(history_path) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=1))
    group.barrier()
    distributed.leave(group)
    return summary


def _epoch_batches(stream: CloudStream, rng, group, hp: dict, device):
    """One epoch of training batches: windows in random order, jets shuffled inside each window,
    this process's share of them."""
    for data, order in stream.epoch(rng):
        rows = group.share(order[trainable(data.truth["target"][order], hp["max_abs_target"])])
        yield from device_batches(data, rows, hp["batch_size"], hp["max_constituents"], device, drop_last=True,
                                  workers=hp["loader_threads"] or (3 if device.type == "cuda" else 1))


def _tensorboard(folder: Path):
    """A TensorBoard event writer (tensorboardX, light; ``tensorboard --logdir results/training``)."""
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(folder), flush_secs=30)


def _save_last(path: str, state: dict) -> None:
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _load_last(path: str, fingerprint: str) -> dict | None:
    """The state saved by an earlier, unfinished run of the same training, or None."""
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a checkpoint cut short: start afresh
        log.warning("%s: unreadable (%s); training from the start", path, err)
        return None
    if state.get("fingerprint") != fingerprint:
        log.info("%s: from other hyperparameters or data; training from the start", path)
        return None
    if state["finished"]:
        log.info("%s: that training finished; training again from the start", path)
        return None
    return state


def load_model(model_path: str):
    """Rebuild a trained network from its checkpoint, in evaluation mode on the CPU."""
    checkpoint = torch.load(model_path, map_location="cpu", weights_only=False)
    model = build_model(checkpoint["hparams"], checkpoint["inputs"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint
