"""benchmarks/weaver_comparison.py: weaver-core reads the files it writes, trains on them and predicts every test jet
(skipped without weaver-core: pip install -e '.[weaver]')."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("weaver", reason="needs weaver-core (pip install -e '.[weaver]')")

REPO = Path(__file__).resolve().parents[1]


def _benchmark():
    sys.path.insert(0, str(REPO / "benchmarks"))  # its `machine` module
    spec = importlib.util.spec_from_file_location("weaver_comparison", REPO / "benchmarks" / "weaver_comparison.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weaver_trains_on_the_benchmark_files(tmp_path, synthetic_clouds):
    from gnnjec.features import DEFAULT_INPUTS
    from gnnjec.hparams import complete
    from gnnjec.models import architecture

    wc = _benchmark()
    inputs = {c: DEFAULT_INPUTS[c] for c in wc.COLLECTIONS} | {"jet": []}
    hp = complete({"model": "particlenet-lite", "batch_size": 128, "epochs": 1, "max_constituents": 64})
    splits = {}
    for split in ("train", "val", "test"):
        splits[split] = tmp_path / f"{split}.parquet"
        assert wc.subset(synthetic_clouds[split], 256, splits[split]) == min(256, pq.read_metadata(
            synthetic_clouds[split]).num_rows)
    prepared = wc.prepare_weaver(tmp_path / "weaver", splits["train"], splits["val"], splits["test"], inputs,
                                 architecture(hp), hp)
    paths = prepared["paths"]

    # one cloud of the union of the features; a collection's own features are 0 on the other's points
    config = yaml.safe_load(paths["data_config"].read_text())
    features = [v if isinstance(v, str) else v[0] for v in config["inputs"]["pf_features"]["vars"]]
    assert features == wc.pf_features(inputs)
    assert len(features) == len(set(DEFAULT_INPUTS["charged"]) | set(DEFAULT_INPUTS["neutral"])) + 1  # is_hadron x2
    assert config["inputs"]["pf_points"]["vars"] == [["pf_deta", None], ["pf_dphi", None]]
    table = pq.read_table(paths["train"]).to_pydict()
    n_points = [len(x) for x in table["pf_log_pt"]]
    clouds = pq.read_table(splits["train"], columns=["n_charged", "n_neutral", "target"]).to_pydict()
    assert n_points == [c + n for c, n in zip(clouds["n_charged"], clouds["n_neutral"])]
    assert all(list(x) == sorted(x, reverse=True) for x in table["pf_log_pt"])  # pt-ordered
    for x, flag, neutral in zip(table["pf_log_pt"], table["pf_charged_has_track"], table["pf_neutral_is_photon"]):
        assert all(f == 0 or p == 0 for f, p in zip(flag, neutral))
    assert table["target"] == pytest.approx(clouds["target"])

    assert wc.weaver_parameters(paths) > 0
    result = wc.run_weaver(paths, tmp_path / "weaver", hp, epochs=1, threads=1, workers=0)
    epochs = result["train"]["epochs"]
    assert len(epochs) == 1 and epochs[0]["jets"] in (128, 256) and np.isfinite(epochs[0]["val_loss"])
    assert result["predict"]["test"]["jets"] == prepared["jets"]["test"]
    assert sorted(result["prediction"]["jet_index"]) == list(range(prepared["jets"]["test"]))
    assert np.all(np.isfinite(result["prediction"]["value"]))
