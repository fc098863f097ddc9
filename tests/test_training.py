"""Train stage on generated clouds: it learns, it records, it refuses bad hyperparameters."""

import json

import awkward as ak
import numpy as np
import pytest
import torch

from gnnjec import features, training
from gnnjec.errors import InputError


def test_training_learns_beyond_a_constant(trained_model, synthetic_clouds):
    _, history_path, summary = trained_model
    history = json.loads(open(history_path).read())
    assert len(history["epochs"]) == 3 and history["best_val_loss"] == summary["best_val_loss"]
    val = ak.from_parquet(synthetic_clouds["val"], columns=["target"])
    target = np.asarray(val.target)
    target = target[np.abs(target) < 1]
    constant = np.mean(np.abs(target - np.median(target)))
    assert summary["best_val_loss"] < 0.9 * constant
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]


def test_checkpoint_carries_standardisation_and_inputs(trained_model):
    model, checkpoint = training.load_model(trained_model[0])
    assert checkpoint["inputs"] == features.DEFAULT_INPUTS
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
