"""Train stage on generated clouds: it learns, it records, it refuses bad hyperparameters."""

import json

import awkward as ak
import numpy as np
import pytest
import torch

from gnnjec import checkpoint, features, training
from gnnjec.errors import InputError


def constant_prediction_loss(clouds) -> float:
    """MAE on the validation split of the best constant (the median), over the jets training counts."""
    target = np.asarray(ak.from_parquet(clouds["val"], columns=["target"]).target)
    target = target[np.abs(target) < 1]
    return float(np.mean(np.abs(target - np.median(target))))


def test_training_learns_beyond_a_constant(trained_model, synthetic_clouds):
    _, history_path, summary = trained_model
    history = json.loads(open(history_path).read())
    assert len(history["epochs"]) == 3 and history["best_val_loss"] == summary["best_val_loss"]
    constant = constant_prediction_loss(synthetic_clouds)
    assert summary["best_val_loss"] < 0.9 * constant
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]


def test_checkpoint_carries_standardisation_and_inputs(trained_model):
    model, saved = checkpoint.load_model(trained_model[0])
    assert saved["inputs"] == features.DEFAULT_INPUTS
    centre = model.norm["jet"].center.numpy()
    log_pt_raw = features.DEFAULT_INPUTS["jet"].index("log_pt_raw")
    assert 2.5 < centre[log_pt_raw] < 7  # median log(pt_raw) of jets between 15 GeV and 3 TeV
    assert not model.training


def test_unknown_hyperparameter_is_refused(synthetic_clouds, tmp_path):
    with pytest.raises(InputError, match="unknown hyperparameters.*'learning_rate'"):
        training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(tmp_path / "m.pt"),
                       str(tmp_path / "h.json"), {"learning_rate": 0.1}, features.DEFAULT_INPUTS)
    assert list(tmp_path.iterdir()) == []


def test_device_choice():
    assert training.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert training.pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="training.device"):
            training.pick_device("cuda")


def test_unknown_feature_names_the_config_key():
    with pytest.raises(InputError, match=r"features\.charged: unknown feature 'pT'"):
        features.validate_inputs({"charged": ["pT"], "jet": []})


RESUME_HP = {"model": "pfn", "phi_sizes": [16, 32], "head_sizes": [32, 16], "epochs": 4, "batch_size": 256,
             "max_constituents": 64, "lr": 0.005, "patience": 10, "dropout": 0.1}


def _fit(clouds, out, **kwargs):
    return training.train(clouds["train"], clouds["val"], str(out / "model.pt"), str(out / "history.json"),
                          RESUME_HP, features.DEFAULT_INPUTS, threads=1, **kwargs)


def test_kill_and_resume_ends_where_an_uninterrupted_run_ends(synthetic_clouds, tmp_path, monkeypatch):
    whole = _fit(synthetic_clouds, tmp_path / "whole")

    # a "kill" during the validation of epoch 3: the state saved after epoch 2 is what survives
    calls = {"n": 0}
    real_evaluate = training.evaluate_loss

    def killed_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(training, "evaluate_loss", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        _fit(synthetic_clouds, out)
    assert (out / "last.pt").exists() and not (out / "model.pt").exists()
    monkeypatch.setattr(training, "evaluate_loss", real_evaluate)
    resumed = _fit(synthetic_clouds, out)

    assert resumed["resumed_after_epoch"] == 2 and whole["resumed_after_epoch"] is None
    for a, b in zip(whole["epochs"], resumed["epochs"], strict=True):
        assert (a["train_loss"], a["val_loss"], a["lr"]) == (b["train_loss"], b["val_loss"], b["lr"])
    final_whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    final_resumed = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(final_whole[k], final_resumed[k]) for k in final_whole)


def test_a_finished_checkpoint_is_not_resumed(synthetic_clouds, tmp_path):
    first = _fit(synthetic_clouds, tmp_path)
    again = _fit(synthetic_clouds, tmp_path)  # last.pt says finished: train afresh, same result
    losses = [[(e["train_loss"], e["val_loss"]) for e in s["epochs"]] for s in (first, again)]
    assert again["resumed_after_epoch"] is None and losses[0] == losses[1] and len(losses[0]) == 4


def test_cosine_schedule_warms_up_then_decays(synthetic_clouds, tmp_path):
    hp = {**RESUME_HP, "schedule": "cosine", "warmup_epochs": 1, "epochs": 3, "lr": 0.004}
    summary = training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(tmp_path / "m.pt"),
                             str(tmp_path / "h.json"), hp, features.DEFAULT_INPUTS, threads=1)
    lrs = [e["lr"] for e in summary["epochs"]]  # the rate after each epoch
    assert lrs[0] == pytest.approx(0.004) and lrs[1] == pytest.approx(0.002) and lrs[2] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.services  # a network namespace (root)
def test_two_process_ddp_on_gloo_trains_one_model(synthetic_clouds, tmp_path, loopback_only):
    """torchrun with 2 CPU processes (gloo), its rendezvous reachable on loopback only."""
    import json as json_
    import os
    import subprocess
    import sys

    hp = {**RESUME_HP, "epochs": 3}
    out = tmp_path / "ddp"
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*loopback_only, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gnnjec", "train", "--train", synthetic_clouds["train"], "--val", synthetic_clouds["val"],
         "--model", str(out / "model.pt"), "--history", str(out / "history.json"), "--hparams", json_.dumps(hp),
         "--inputs", json_.dumps(features.DEFAULT_INPUTS), "--device", "cpu", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # rank 0 alone writes: one history, one model, one set of TensorBoard events
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "last.pt", "model.pt", "tensorboard"]
    assert len(list((out / "tensorboard").iterdir())) == 1
    history = json_.loads((out / "history.json").read_text())
    assert history["processes"] == 2 and len(history["epochs"]) == 3
    assert "cpu x 2 processes" in proc.stderr
    assert history["best_val_loss"] < 0.9 * constant_prediction_loss(synthetic_clouds)  # it learned
    model, _ = checkpoint.load_model(str(out / "model.pt"))
    assert not any(k.startswith("module.") for k in model.state_dict())


def test_stream_visits_every_jet_once_per_epoch_a_window_at_a_time(synthetic_clouds):
    from gnnjec.dataset import CloudStream

    stream = CloudStream(synthetic_clouds["train"], features.DEFAULT_INPUTS, window_jets=1000)
    assert len(stream.group_sizes) >= 3  # the file has several row groups to shuffle
    epochs = []
    for seed in (0, 1):
        targets, sizes = [], []
        for data, order in stream.epoch(np.random.default_rng(seed)):
            sizes.append(data.n)
            targets.append(data.truth["target"][order])
        assert max(sizes) < 1000 + max(stream.group_sizes) and len(sizes) > 1  # bounded windows
        epochs.append(np.concatenate(targets))
    everything = np.sort(stream.targets())
    assert all(np.array_equal(np.sort(e), everything) for e in epochs)  # each jet exactly once
    assert not np.array_equal(epochs[0], epochs[1])  # and in a new order every epoch


def test_training_streams_windows_smaller_than_the_file(synthetic_clouds, tmp_path):
    hp = {**RESUME_HP, "epochs": 3, "window_jets": 1000}
    summary = training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(tmp_path / "m.pt"),
                             str(tmp_path / "h.json"), hp, features.DEFAULT_INPUTS, threads=1)
    assert summary["best_val_loss"] < 0.9 * constant_prediction_loss(synthetic_clouds)


def test_tensorboard_logs_hold_the_history(trained_model):
    """The event files (TFRecord framing of Event protos) carry each epoch's losses."""
    import struct
    from pathlib import Path

    from tensorboardX.proto.event_pb2 import Event

    model_path, _, summary = trained_model
    files = list((Path(model_path).parent / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    scalars = {}
    data = files[0].read_bytes()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = Event.FromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            scalars[(value.tag, event.step)] = value.simple_value
    for record in summary["epochs"]:
        assert scalars[("val_loss", record["epoch"])] == pytest.approx(record["val_loss"], rel=1e-6)
        assert ("data_wait_share", record["epoch"]) in scalars


def test_standardization_passes_constants_through_even_with_rounding_noise():
    """A column that is 1 up to float rounding (the jet-level DNN's mean charged PUPPI weight, 1 for every point)
    is a constant: scaling its 1e-7 of rounding to unit width would turn the noise into an input (the DNN's ONNX
    export then differed from torch by 0.05). A column of real spread keeps its scale."""
    from gnnjec.dataset import robust_standardization

    rng = np.random.default_rng(0)
    values = np.stack([1 + rng.choice([-1, 0, 1], 1000) * np.finfo(np.float32).eps,
                       np.zeros(1000), rng.normal(3.0, 1e-3, 1000)], axis=1).astype(np.float32)
    center, scale = robust_standardization(values)
    assert list(center[:2]) == [0, 0] and list(scale[:2]) == [1, 1]
    assert center[2] == pytest.approx(3.0, abs=1e-4) and scale[2] == pytest.approx(1e-3, rel=0.2)
