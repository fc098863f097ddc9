"""Sample files and grid points as the Snakefile sees them."""

import dataclasses
from pathlib import Path

import pytest

from gnnjec.config import sample_files, training_points
from gnnjec.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[1]
REPO_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_sample_files_expand_globs_keep_urls_and_name_synthetic_files(tmp_path):
    for name in ("b.root", "a.root", "c.txt"):
        (tmp_path / name).write_bytes(name.encode())
    config = {"samples": {
        "real": {"files": [str(tmp_path / "*.root"), "root://127.0.0.1:1094//data/x.root"]},
        "demo": {"synthetic": {"files": 2, "events_per_file": 10, "seed": 1}},
    }}
    files = sample_files(config)
    assert files["real"] == [str(tmp_path / "a.root"), str(tmp_path / "b.root"), "root://127.0.0.1:1094//data/x.root"]
    assert files["demo"] == ["results/synthetic/demo/000.root", "results/synthetic/demo/001.root"]


def test_a_file_listed_twice_is_refused_naming_both_places(tmp_path):
    from gnnjec.config import sample_files

    for name in ("a.root", "b.root"):
        (tmp_path / name).write_bytes(name.encode())
    one = str(tmp_path / "a.root")
    with pytest.raises(ConfigError, match=r"config key samples.qcd.files: .*a.root is listed twice in it: its jets"):
        sample_files({"samples": {"qcd": {"files": [one, str(tmp_path / "*.root")]}}})
    with pytest.raises(ConfigError, match=r"config key samples.zjets.files: .*a.root is listed also in samples.qcd"):
        sample_files({"samples": {"qcd": {"files": [one]}, "zjets": {"files": [str(tmp_path / "." / "a.root")]}}})
    assert len(sample_files({"samples": {"qcd": {"files": [str(tmp_path / "*.root")]}}})["qcd"]) == 2


def test_two_files_of_the_same_content_are_refused_unless_allowed(cms_file, tmp_path, monkeypatch):
    """A copy of a real file under another name, in one sample or in two, counts its jets twice: refused naming both
    files and samples, unless allow_identical_files. Only files of one size are hashed."""
    import shutil

    from gnnjec import provenance
    from gnnjec.config import SCHEMA, config_error

    real, other = cms_file("pfnano.root"), cms_file("nano_dy.root")
    copy = tmp_path / "copy.root"
    shutil.copyfile(real, copy)
    hashed, real_sha256 = [], provenance.sha256
    monkeypatch.setattr(provenance, "sha256", lambda path: hashed.append(str(path)) or real_sha256(path))

    with pytest.raises(ConfigError) as refused:
        sample_files({"samples": {"qcd": {"files": [real, other]}, "zjets": {"files": [str(copy)]}}})
    assert str(refused.value) == (
        f"config key samples.zjets.files: {copy} has the same content (size and SHA-256) as {real}, in samples.qcd: "
        "its jets would count twice; list one of them, or set allow_identical_files: true if both are meant")
    assert sorted(hashed) == sorted([real, str(copy)])  # nano_dy.root, of another size, is not read
    with pytest.raises(ConfigError, match=r"samples\.qcd\.files: .*copy\.root has the same content .*, in it too:"):
        sample_files({"samples": {"qcd": {"files": [real, str(copy)]}}})

    # the same size, other bytes: two files
    changed = bytearray(copy.read_bytes())
    changed[-1] ^= 0xFF
    copy.write_bytes(bytes(changed))
    assert sample_files({"samples": {"qcd": {"files": [real, str(copy)]}}})["qcd"] == [real, str(copy)]

    # a copy meant: allowed by the configuration (which the schema takes)
    shutil.copyfile(real, copy)
    config = {"samples": {"qcd": {"files": [real]}, "zjets": {"files": [str(copy)]}}, "allow_identical_files": True}
    assert sample_files(config) == {"qcd": [real], "zjets": [str(copy)]}
    assert config_error(config, SCHEMA) is None


def test_a_key_twice_in_a_configuration_file_is_found(tmp_path):
    from gnnjec.config import repeated_keys

    assert repeated_keys(str(REPO / "config" / "config.yaml")) is None
    twice = tmp_path / "c.yaml"
    twice.write_text("samples:\n  qcd:\n    files: [a.root]\n  zjets:\n    files: [b.root]\n"
                     "  qcd:\n    files: [c.root]\n")
    assert repeated_keys(str(twice)) == (f"{twice}: config key qcd: appears twice in one mapping (lines 2 and 6); "
                                         "YAML keeps the last silently: merge or rename them")


def test_a_glob_matching_nothing_names_the_config_key(tmp_path):
    with pytest.raises(InputError, match=r"samples\.qcd\.files: .*nothing\*\.root.* matches no file"):
        sample_files({"samples": {"qcd": {"files": [str(tmp_path / "nothing*.root")]}}})


def test_grid_point_names_are_stable_when_the_grid_grows():
    training = {"defaults": {"model": "pfn", "lr": 0.001, "epochs": 3}, "grid": {"lr": [0.001, 0.01]}}
    before = training_points(training)
    training["grid"]["lr"].append(0.1)
    after = training_points(training)
    assert len(before) == 2 and len(after) == 3
    assert set(before) < set(after)
    assert all(name.startswith("pfn-") for name in after)
    assert {p["lr"] for p in after.values()} == {0.001, 0.01, 0.1}


def test_no_grid_means_one_point():
    points = training_points({"defaults": {"model": "pfn", "lr": 0.002}})
    assert list(points.values()) == [{"model": "pfn", "lr": 0.002}]


def test_config_errors_name_the_nested_key():
    import yaml

    from gnnjec.config import config_error

    config = yaml.safe_load(open(REPO / "config" / "config.yaml"))
    assert config_error(config, REPO_SCHEMA) is None
    config["training"]["defaults"]["lr"] = "fast"
    assert config_error(config, REPO_SCHEMA).startswith(
        "config key training.defaults.lr: 'fast' is not of type 'number'")
    config["training"]["defaults"]["lr"] = 0.001
    config["samples"]["demo"]["synthetic"]["files"] = 0
    assert "config key samples.demo" in config_error(config, REPO_SCHEMA)


def _demo():
    import yaml

    return yaml.safe_load(open(REPO / "config" / "config.yaml"))


@pytest.mark.parametrize("grid, words", [
    ({"lr": [-0.002]}, "config key training.grid.lr.0: -0.002 is less than or equal to the minimum of 0"),
    ({"epochs": ["ten"]}, "config key training.grid.epochs.0: 'ten' is not of type 'integer'"),
    ({"batch_size": [1]}, "config key training.grid.batch_size.0: 1 is less than the minimum of 2"),
    ({"model": ["pfn; rm -rf ~"]}, "config key training.grid.model.0: 'pfn; rm -rf ~' is not one of"),
    ({"learning_rate": [0.1]}, "config key training.grid: Additional properties are not allowed ('learning_rate'"),
    ({"lr": []}, "config key training.grid.lr: [] should be non-empty"),
])
def test_the_grid_is_checked_like_the_defaults(grid, words):
    from gnnjec.config import config_error

    config = _demo()
    config["training"]["grid"] = grid
    assert config_error(config, REPO_SCHEMA).startswith(words)


@pytest.mark.parametrize("change, words", [
    (lambda c: c["split"].update(train=0.8, val=0.2), "config key split: train + val = 1 leaves no test jets"),
    (lambda c: c["evaluation"].update(pt_min=500, pt_max=100), "config key evaluation.pt_min: 500 is not below pt_max"),
    (lambda c: c["evaluation"].update(eta_bins=[[2.5, 5.0], [0.0, 2.5]]),
     "config key evaluation.eta_bins.1: [0.0, 2.5]"),
    (lambda c: c["evaluation"].update(eta_bins=[[1.3, 0.0]]),
     "config key evaluation.eta_bins.0: [1.3, 0.0] must have lo < hi"),
    (lambda c: c["training"].update(random={"points": 3, "space": {"lr": {"uniform": [0.1, 0.01]}}}),
     "config key training: both grid and random are given; keep one (random draws its points instead of the grid)"),
    (lambda c: (c["training"].pop("grid"),
                c["training"].update(random={"points": 3, "space": {"lr": {"uniform": [0.1, 0.01]}}})),
     "config key training.random.space.lr: the range [0.1, 0.01] is reversed"),
    (lambda c: (c["training"].pop("grid"),
                c["training"].update(random={"points": 3, "space": {"lr": {"uniform": [0, 0.1]}}})),
     "config key training.random.space.lr.uniform.0: 0 is less than or equal to the minimum of 0"),  # as lr
    (lambda c: c["training"].update(halving={"eta": 3}, grid={"epochs": [4, 8]}),
     "config key training.halving: successive halving gives every point the same budget"),
    (lambda c: c["training"].update(halving={"min_epochs": 50}),
     "config key training.halving.min_epochs: 50 is more than"),
    (lambda c: c["samples"]["demo"].update(role="evaluation"),
     "config key samples: every sample has role evaluation: nothing to train on"),
])
def test_what_a_schema_cannot_say_is_checked_too(change, words):
    from gnnjec.config import config_error

    config = _demo()
    change(config)
    assert config_error(config, REPO_SCHEMA).startswith(words)


@pytest.mark.parametrize("name", ["..", ".", "../up", "a/b", ".hidden", "-rf"])
def test_a_sample_name_must_be_a_safe_folder_name(name):
    """Sample names become folders (results/evaluation/samples/<name>/): '..' would write one level up."""
    from gnnjec.config import config_error

    config = _demo()
    config["samples"][name] = config["samples"].pop("ttbar")
    error = config_error(config, REPO_SCHEMA)
    assert error.startswith("config key samples") and "does not match" in error, error


def test_a_configuration_of_only_samples_takes_the_defaults():
    from gnnjec import convert, features, hparams
    from gnnjec.config import config_error

    config = {"samples": {"qcd": {"files": ["/data/*.root"]}}}
    assert config_error(config, REPO_SCHEMA) is None
    assert config["selection"] == dataclasses.asdict(convert.Selection())
    assert {k: config["split"][k] for k in ("train", "val", "seed")} == dataclasses.asdict(convert.Split())
    assert config["features"] == features.DEFAULT_INPUTS
    assert config["training"]["defaults"] == {"model": "pfn"} and "halving" not in config["training"]
    assert config["evaluation"]["eta_bins"] == [[0.0, 1.3], [1.3, 2.5], [2.5, 3.0], [3.0, 5.0]]
    assert config["evaluation"]["n_pt_bins"] == 19
    assert config["samples"]["qcd"]["role"] == "training"
    # the schema names exactly the hyperparameters the trainer knows
    import yaml

    schema = yaml.safe_load(REPO_SCHEMA.read_text())
    assert set(schema["definitions"]["hparams"]["properties"]) == {*hparams.DEFAULTS, *hparams.ARCHITECTURE_KEYS}


def test_samples_have_a_role_and_a_synthetic_sample_a_process():
    """Role training (the default) is split into train, val and test; role evaluation is evaluated on apart; the
    demo's tt-bar sample is one of the latter, and a synthetic sample's process defaults to QCD."""
    from gnnjec.config import config_error, evaluation_samples, training_samples
    from gnnjec.plan import Plan

    config = _demo()
    assert config_error(config, REPO_SCHEMA) is None
    demo = config["samples"]["demo"]
    assert demo["role"] == "training" and demo["synthetic"]["process"] == "qcd"
    assert config["samples"]["ttbar"]["synthetic"]["process"] == "ttbar"
    assert training_samples(config) == ["demo"] and evaluation_samples(config) == ["ttbar"]
    plan = Plan(config)
    assert all("/demo/" in part for part in plan.cloud_parts())  # what merge_clouds splits
    assert plan.cloud_parts("ttbar") == ["results/clouds/ttbar/000.parquet"]
    outputs = plan.sample_outputs()
    assert "results/evaluation/samples/ttbar/summary.txt" in outputs
    assert "results/evaluation/samples/ttbar/plots/closure.png" in outputs
    # the evaluation sample's jets do not size the training
    assert plan.sizes.jets["train"] == pytest.approx(0.7 * plan.sizes.sample_jets("demo"))
    config["samples"]["ttbar"]["synthetic"]["process"] = "zjets"
    assert config_error(config, REPO_SCHEMA).startswith("config key samples.ttbar.synthetic.process: 'zjets' is not "
                                                        "one of ['qcd', 'ttbar']")
    config = _demo()
    config["samples"]["ttbar"]["role"] = "test"
    assert config_error(config, REPO_SCHEMA).startswith("config key samples.ttbar.role: 'test' is not one of")
