"""Train stage: fit one hyperparameter point on the training split, select on the validation split."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, distributed, provenance
from .command import Command
from .dataset import CloudData, CloudStream, robust_standardization
from .errors import CheckFailed, ConfigError, InputError
from .files import atomic_output
from .hparams import complete, quantile_levels
from .models import build_model
from .streams import ordered_map, read_ahead

log = logging.getLogger(__name__)


PROGRESS_SECONDS = 30.0  # a progress line this often within an epoch (readable in a batch log)


def pick_device(requested: str = "auto", min_capability: float | None = None, env=None) -> torch.device:
    """The device to train on: ``cpu`` on purpose; ``cuda[:N]`` as asked; ``auto`` the GPU when there is one.

    A job that its batch system gave GPUs (:func:`gnnjec.batch.assigned_gpus`) must use them: with ``auto`` it
    fails at once, in one line naming the cause, when this torch cannot (a CPU build, no device visible), rather
    than train for hours on the CPU in a GPU slot. ``min_capability`` (CUDA compute capability, e.g. 8.0 for
    bfloat16) is checked on the chosen GPU the same way.
    """
    from .batch import assigned_gpus

    if requested == "cpu":
        return torch.device("cpu")
    given = assigned_gpus(os.environ if env is None else env)
    if requested == "auto" and given is None and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        who = (f"this job was given GPU {given[1]} ({given[0]})" if given else f"{requested!r} asks for a GPU")
        why = (f"this torch ({torch.__version__}) is a CPU-only build" if torch.version.cuda is None else
               f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: a driver older than the build, "
               "or CUDA_VISIBLE_DEVICES hides it")
        raise ConfigError("training.device", f"{who}, but {why}; install a CUDA build of torch in the job's "
                         "environment, or set training.device: cpu to train on the CPU on purpose")
    device = torch.device("cuda" if requested == "auto" else requested)
    if min_capability:
        capability = torch.cuda.get_device_capability(device)
        if capability[0] + capability[1] / 10 < min_capability - 1e-9:
            raise ConfigError(
                "training.gpu_min_capability", f"{torch.cuda.get_device_name(device)} has compute capability "
                f"{capability[0]}.{capability[1]}, below {min_capability:g} (bfloat16 needs 8.0); ask the batch "
                "system for a newer GPU, or lower the requirement (and set amp: false)")
    return device


class PinballLoss(torch.nn.Module):
    """The quantile (pinball) loss of predictions ``[batch, len(quantiles)]`` against targets ``[batch]``: for each
    quantile tau, ``max(tau * r, (tau - 1) * r)`` with ``r = target - prediction``, whose minimum is the tau quantile
    of the target given the inputs; twice its mean over jets and quantiles, so that with the median alone it is the
    MAE (CMS's b-jet energy regression learns its resolution so, from the 25 and 75 % quantiles)."""

    def __init__(self, quantiles: tuple[float, ...]):
        super().__init__()
        self.register_buffer("tau", torch.tensor(quantiles, dtype=torch.float32))

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        r = target.unsqueeze(-1) - prediction
        return 2 * torch.maximum(self.tau * r, (self.tau - 1) * r).mean()


def _loss_fn(name: str, quantiles: tuple[float, ...] = ()):
    if quantiles:
        return PinballLoss(quantiles)
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
    """Set every Standardize layer from the training split (stored in the model's buffers), from the values
    the model says each standardises (:meth:`gnnjec.models.base.CloudRegressor.standardization_inputs`)."""
    for name, values in model.standardization_inputs(data).items():
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


@dataclass
class Run:
    """One training in progress: the network and everything that moves it, and where it has got to.

    Made by :func:`prepare`; advanced one epoch at a time by :func:`run_epoch`; saved and restored
    whole by :func:`state_of` and :func:`restore`, so that a training can stop after any epoch (a
    kill, or a budget of successive halving) and go on later exactly as if it had not stopped.
    """

    hp: dict
    inputs: dict
    group: distributed.Group
    device: torch.device
    model: torch.nn.Module
    net: torch.nn.Module  # the model, wrapped by DDP and/or torch.compile where asked
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: torch.nn.Module
    train_stream: CloudStream
    val_stream: CloudStream
    rng: np.random.Generator
    fingerprint: str
    n_train: int
    n_val: int
    history: list = field(default_factory=list)
    best: float = math.inf
    best_state: dict | None = None
    stale: int = 0  # epochs since the validation loss last improved

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return len(self.history)

    @property
    def finished(self) -> bool:
        """Early-stopped, or all ``epochs`` done: nothing more to train."""
        return self.stale >= self.hp["patience"] or self.epoch >= self.hp["epochs"]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def prepare(train_path: str, val_path: str, hparams: dict, inputs: dict[str, list[str]], device: str = "auto",
            threads: int | None = None, gpu_min_capability: float | None = None) -> Run:
    """A training at epoch 0: the network (standardised on the training split), optimiser and schedule."""
    hp = complete(hparams)
    picked = pick_device(device, gpu_min_capability)  # first: a GPU job that cannot use its GPU stops here
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(hp["seed"])
    group, dev = distributed.join(picked)
    train_stream = CloudStream(train_path, inputs, window_jets=hp["window_jets"])
    val_stream = CloudStream(val_path, inputs, window_jets=hp["window_jets"])
    n_train, n_val = (int(trainable(s.targets(), hp["max_abs_target"]).sum()) for s in (train_stream, val_stream))
    if n_train < 2 or n_val == 0:
        raise InputError(f"{train_path if n_train < 2 else val_path}: no jets to train on; "
                         "generate or convert more events")
    try:
        model = build_model(hp, inputs)
    except ValueError as err:
        raise ConfigError(f"training (model {hp['model']!r})", f"{err}; fix the grid point or the features") from None
    # standardisation from a random window of the training split
    fit_standardization(model, train_stream.load(train_stream.windows(np.random.default_rng(hp["seed"]))[0]))
    model.to(dev)
    # several processes (torchrun): gradients averaged by DDP; evaluation and saving use ``model``
    net = model if group.size == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if hp["compile"] and dev.type == "cuda":
        net = torch.compile(net, dynamic=True)  # padding widths vary from batch to batch
    optimizer = _optimizer(hp, model.parameters())
    return Run(hp=hp, inputs=inputs, group=group, device=dev, model=model, net=net, optimizer=optimizer,
               scheduler=_scheduler(hp, optimizer), loss_fn=_loss_fn(hp["loss"], quantile_levels(hp)).to(dev),
               train_stream=train_stream,
               val_stream=val_stream, rng=np.random.default_rng(hp["seed"]),
               fingerprint=checkpoint.fingerprint(hp, inputs, (train_path, val_path)), n_train=n_train, n_val=n_val)


def state_of(run: Run) -> dict:
    """The whole state of ``run``, to save after an epoch (see :mod:`gnnjec.checkpoint`)."""
    return {
        "fingerprint": run.fingerprint, "epoch": run.epoch, "finished": run.finished,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "history": run.history, "best": run.best,
        "best_state": run.best_state, "stale": run.stale, "numpy_rng": run.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else None,
    }


def restore(run: Run, state: dict) -> None:
    """Put ``run`` where :func:`state_of` found it."""
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    if run.device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    run.history, run.best, run.best_state, run.stale = (state["history"], state["best"], state["best_state"],
                                                        state["stale"])


def run_epoch(run: Run, board=None) -> dict:
    """Train one more epoch, validate, step the schedule and early stopping; the epoch's record."""
    model, hp, dev, group = run.model, run.hp, run.device, run.group
    epoch = run.epoch + 1
    bs = hp["batch_size"]
    batches_per_epoch = max(run.n_train // (bs * group.size), 1)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(hp["amp"]) and dev.type == "cuda")
    model.train()
    start = time.perf_counter()
    total = torch.zeros((), device=dev)
    n_batches, wait, last_report = 0, 0.0, start
    # windows of the file are read, and batches padded (and copied to the device), in background
    # threads: the next window, and two batches ahead
    batches = read_ahead(_epoch_batches(run.train_stream, run.rng, group, hp, dev), 2)
    while True:
        tick = time.perf_counter()
        batch = next(batches, None)
        wait += time.perf_counter() - tick
        if batch is None:
            break
        *args, target = batch
        with amp:
            loss = run.loss_fn(run.net(*args).float(), target)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        total += loss.detach()
        n_batches += 1
        if time.perf_counter() - last_report > PROGRESS_SECONDS:
            last_report = time.perf_counter()
            log.info("epoch %d: %d/~%d batches, %.0f jets/s", epoch, n_batches, batches_per_epoch,
                     group.size * n_batches * bs / (last_report - start))
    seconds = time.perf_counter() - start
    val_loss = group.mean(evaluate_loss(model, run.val_stream, hp, dev, run.loss_fn), dev)
    if hp["schedule"] == "plateau":
        run.scheduler.step(val_loss)
    else:
        run.scheduler.step()
    record = {
        "epoch": epoch,
        "train_loss": group.mean(total.item() / n_batches, dev),
        "val_loss": val_loss,
        "lr": run.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "jets_per_second": group.size * n_batches * bs / seconds,
        "data_wait_share": wait / seconds,
    }
    run.history.append(record)
    if board is not None:
        for key in ("train_loss", "val_loss", "lr", "jets_per_second", "data_wait_share"):
            board.add_scalar(key, record[key], epoch)
        board.flush()
    log.info("epoch %d: train %.5f  val %.5f  lr %.1e  %.0f jets/s (%.0f%% waiting for data)", epoch,
             record["train_loss"], val_loss, record["lr"], record["jets_per_second"], 100 * record["data_wait_share"])
    if val_loss < run.best:
        run.best, run.stale = val_loss, 0
        run.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    else:
        run.stale += 1
    if run.stale >= hp["patience"]:
        log.info("early stop after epoch %d (no improvement for %d epochs)", epoch, run.stale)
    return record


def fit(run: Run, until_epoch: int, last_path: str | None = None, board=None) -> None:
    """Train until ``until_epoch`` epochs are done, or the training finishes (early stop or ``epochs``);
    after every epoch the whole state goes to ``last_path`` (main process only)."""
    while run.epoch < until_epoch and not run.finished:
        run_epoch(run, board)
        if last_path and run.group.main:
            checkpoint.save(last_path, state_of(run))


def train(train_path: str, val_path: str, model_path: str, history_path: str, hparams: dict,
          inputs: dict[str, list[str]], device: str = "auto", threads: int | None = None,
          last_path: str | None = None, *, until_epoch: int | None = None, continue_from: str | None = None,
          state_path: str | None = None, gpu_min_capability: float | None = None) -> dict:
    """Fit one hyperparameter point; write the best checkpoint and the per-epoch history (atomically).

    After every epoch the whole training state goes to ``last_path`` (default: ``last.pt`` beside
    the model). If training is killed, the next call with the same hyperparameters, inputs and data
    files resumes from it and ends where an uninterrupted run would have ended.

    A budget (successive halving): ``until_epoch`` stops after that many epochs, the schedule still
    planned for ``epochs``; ``continue_from`` is the state a smaller budget of the same training
    ended with (it must exist and match), and ``state_path`` receives the state this call ends with.
    Continuing budget after budget gives exactly the training that runs straight through.
    """
    run = prepare(train_path, val_path, hparams, inputs, device, threads, gpu_min_capability)
    hp, group = run.hp, run.group
    last_path = last_path or str(Path(model_path).with_name("last.pt"))
    log.info("model %s with %d parameters on %s%s; %d training, %d validation jets", hp["model"], run.n_params,
             run.device, f" x {group.size} processes" if group.size > 1 else "", run.n_train, run.n_val)

    # where to start: this call's own state if killed before (a budget continues even a finished one),
    # else the state of the smaller budget, else epoch 0
    resumed = checkpoint.load_state(last_path, run.fingerprint, finished_ok=until_epoch is not None,
                                    move_aside=group.main)
    started_from = None
    if continue_from and resumed is None:
        resumed = checkpoint.load_continuation(continue_from, run.fingerprint, move_aside=group.main)
        started_from = continue_from
    if resumed:
        restore(run, resumed)
        log.info("continuing from %s after epoch %d", started_from or last_path, resumed["epoch"])

    board = _tensorboard(Path(model_path).with_name("tensorboard")) if group.main else None
    first = run.epoch
    fit(run, until_epoch or hp["epochs"], last_path, board)

    if run.best_state is None:
        raise CheckFailed(f"{model_path}: training diverged (validation loss {run.history[-1]['val_loss']}); "
                          "lower training lr")
    summary = {"hparams": hp, "inputs": inputs, "parameters": run.n_params, "device": str(run.device),
               "best_val_loss": run.best, "resumed_after_epoch": resumed["epoch"] if resumed else None,
               "epochs": run.history, "trained_epochs": run.epoch - first, "finished": run.finished,
               "processes": group.size}
    if board is not None:
        board.close()
    if group.main:
        checkpoint.save(model_path, {"hparams": hp, "inputs": inputs, "state_dict": run.best_state,
                                     "best_val_loss": run.best})
        if state_path:  # the budget's end state, declared as an output: it replaces the per-epoch file
            checkpoint.save(state_path, state_of(run))
            Path(last_path).unlink(missing_ok=True)
        with atomic_output(history_path) as tmp:
            Path(tmp).write_text(json.dumps(provenance.with_provenance(summary), indent=1))
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


def _arguments(p) -> None:
    from .command import config_default, json_value

    p.add_argument("--train", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--model", required=True, help="output checkpoint (.pt)")
    p.add_argument("--history", required=True, help="output training history (.json)")
    p.add_argument("--hparams", type=json_value, required=True)
    p.add_argument("--inputs", type=json_value, required=True, help="feature lists per collection")
    p.add_argument("--device", default=config_default("training.device"),
                   help="auto, cpu or cuda[:N] (config key training.device)")
    p.add_argument("--gpu-min-capability", type=float, default=None,
                   help="the least CUDA compute capability to train on (config key training.gpu_min_capability)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--until-epoch", type=int, default=None,
                   help="a budget: stop after this many epochs (the schedule still planned for all of them)")
    p.add_argument("--continue-from", default=None, help="the state a smaller budget of this training ended with")
    p.add_argument("--state", default=None, help="output: the state this budget ends with (.pt)")


def _run(a) -> None:
    from .features import validate_inputs

    validate_inputs(a.inputs)
    summary = train(a.train, a.val, a.model, a.history, a.hparams, a.inputs, a.device, a.threads,
                    until_epoch=a.until_epoch, continue_from=a.continue_from, state_path=a.state,
                    gpu_min_capability=a.gpu_min_capability)
    log.info("best validation loss %.5f after %d epochs", summary["best_val_loss"], len(summary["epochs"]))


COMMANDS = {"train": Command(_arguments, _run, reads=("train", "val", "continue_from"),
                             outputs=("model", "history", "state"))}
