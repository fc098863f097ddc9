"""Sample files and grid points as the Snakefile sees them."""

from pathlib import Path

import pytest

from gnnjec.errors import InputError
from gnnjec.workflow import grid_points, sample_files

REPO = Path(__file__).resolve().parents[1]
REPO_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_sample_files_expand_globs_keep_urls_and_name_synthetic_files(tmp_path):
    for name in ("b.root", "a.root", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    config = {"samples": {
        "real": {"files": [str(tmp_path / "*.root"), "root://127.0.0.1:1094//data/x.root"]},
        "demo": {"synthetic": {"files": 2, "events_per_file": 10, "seed": 1}},
    }}
    files = sample_files(config)
    assert files["real"] == [str(tmp_path / "a.root"), str(tmp_path / "b.root"), "root://127.0.0.1:1094//data/x.root"]
    assert files["demo"] == ["results/synthetic/demo/000.root", "results/synthetic/demo/001.root"]


def test_a_glob_matching_nothing_names_the_config_key(tmp_path):
    with pytest.raises(InputError, match=r"samples\.qcd\.files: .*nothing\*\.root.* matches no file"):
        sample_files({"samples": {"qcd": {"files": [str(tmp_path / "nothing*.root")]}}})


def test_grid_point_names_are_stable_when_the_grid_grows():
    training = {"defaults": {"model": "pfn", "lr": 0.001, "epochs": 3}, "grid": {"lr": [0.001, 0.01]}}
    before = grid_points(training)
    training["grid"]["lr"].append(0.1)
    after = grid_points(training)
    assert len(before) == 2 and len(after) == 3
    assert set(before) < set(after)
    assert all(name.startswith("pfn-") for name in after)
    assert {p["lr"] for p in after.values()} == {0.001, 0.01, 0.1}


def test_no_grid_means_one_point():
    points = grid_points({"defaults": {"model": "pfn", "lr": 0.002}})
    assert list(points.values()) == [{"model": "pfn", "lr": 0.002}]


def test_config_errors_name_the_nested_key():
    import yaml

    from gnnjec.workflow import config_error

    config = yaml.safe_load(open(REPO / "config" / "config.yaml"))
    assert config_error(config, REPO_SCHEMA) is None
    config["training"]["defaults"]["lr"] = "fast"
    assert config_error(config, REPO_SCHEMA).startswith("config key training.defaults.lr: 'fast' is not of type 'number'")
    config["training"]["defaults"]["lr"] = 0.001
    config["samples"]["demo"]["synthetic"]["files"] = 0
    assert "config key samples.demo" in config_error(config, REPO_SCHEMA)
