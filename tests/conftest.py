"""Shared fixtures: a small synthetic PFNano sample converted once per session, and the real CMS files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gnnjec import convert, demo

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GNNJEC_SHARED_DATA", REPO.parent / "shared" / "data" / "nanoaod"))


@pytest.fixture(scope="session")
def cms_file():
    """Path of a real CMS NanoAOD/PFNano file in ../shared/data/nanoaod (read in place)."""

    def get(name: str) -> str:
        path = SHARED_DATA / name
        if not path.exists():
            if os.environ.get("CI"):
                pytest.fail(f"{path} is missing: CI must run with shared/ beside the clone")
            pytest.skip(f"{path} not available (set GNNJEC_SHARED_DATA)")
        return str(path)

    return get


TIMING_KEYS = {"seconds", "jets_per_second", "data_wait_share"}  # per epoch, the only history keys allowed to differ


# a job in Snakemake's listing: "rule NAME:" (indented inside a group job), its fields, among them "resources:"
LISTED_JOB = r"^ *(?:local)?(?:rule|checkpoint) (\w+):\n((?:(?! *(?:local)?(?:rule|checkpoint) ).*\n)*? +resources: .*)$"


def listed_jobs(output: str) -> list[tuple[str, int, dict[str, str]]]:
    """(rule, jobid, resources) of every job Snakemake listed (a dry run or a run), group members included."""
    import re

    jobs = []
    for rule, fields in re.findall(LISTED_JOB, output, re.MULTILINE):
        jobid = int(re.search(r"^ +jobid: (\d+)$", fields, re.MULTILINE).group(1))
        listed = re.search(r"^ +resources: (.*)$", fields, re.MULTILINE).group(1)
        jobs.append((rule, jobid, dict(kv.split("=", 1) for kv in re.split(r", (?=\w+=)", listed) if "=" in kv)))
    return jobs


def epochs_without_timings(history: dict) -> list[dict]:
    """A training history's epochs, without the keys that differ from run to run (TIMING_KEYS)."""
    return [{k: v for k, v in epoch.items() if k not in TIMING_KEYS} for epoch in history["epochs"]]


def assert_same_results(run: Path, local: Path) -> None:
    """The workflow's results in ``run`` (a batch run) equal those in ``local`` (tiny_run's): histories but their
    timings, model selection, ONNX check, metrics (provenance records: the stage parameters, not the inputs'
    checksums, which trace back to the histories' timings, nor the git commit of a copied checkout), the ONNX
    graph and the predictions."""
    import json

    import onnx
    import pyarrow.parquet as pq

    def histories(d: Path) -> list[str]:  # <point>/history.json, or <point>/rung<r>/history.json with halving
        return sorted(str(p.relative_to(d / "results" / "training")) for p in (d / "results/training").rglob("history.json"))

    points = histories(local)
    assert points and points == histories(run)
    for point in points:
        there, here = (json.loads((d / "results" / "training" / point).read_text()) for d in (run, local))
        assert there["best_val_loss"] == here["best_val_loss"], point
        strip = epochs_without_timings(there)
        assert strip == epochs_without_timings(here), point
        assert all("val_loss" in e and "train_loss" in e for e in strip)

    def content(path):
        document = json.loads(path.read_text())
        return document, document.pop("provenance")["parameters"]

    for path in ("training/best.json", "export/pfn/onnx_check.json", "evaluation/metrics.json"):
        assert content(run / "results" / path) == content(local / "results" / path), path
    graphs = [onnx.load(str(d / "results/export/pfn/model.onnx")).graph.SerializeToString() for d in (run, local)]
    assert graphs[0] == graphs[1]
    predictions = "results/evaluation/predictions.parquet"
    assert pq.read_table(run / predictions).equals(pq.read_table(local / predictions))


def need(why: str | None) -> None:
    """Skip for a missing system requirement, but fail under CI, where make test installs them all."""
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def loopback_only() -> list[str]:
    """A command prefix that runs a command in a fresh network namespace with only loopback up.

    Servers started under it (XRootD, the DDP rendezvous) cannot be reached from outside.
    """
    missing = [t for t in ("unshare", "ip") if shutil.which(t) is None]
    need(f"needs {', '.join(missing)} (Debian: util-linux, iproute2)" if missing else
         "needs root for a private network namespace (unshare --net)" if os.geteuid() != 0 else None)
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


@pytest.fixture(scope="session")
def standard_jec(tmp_path_factory):
    correction = demo.derive_standard_correction("toy", seed=3, n_events=8000)
    path = tmp_path_factory.mktemp("jec") / "standard_jec.json"
    demo.save_correction(correction, path)
    return path


@pytest.fixture(scope="session")
def synthetic_file(tmp_path_factory, standard_jec):
    path = tmp_path_factory.mktemp("synthetic") / "demo_000.root"
    demo.write_pfnano(path, "toy", n_events=4000, seed=11, file_index=0,
                      correction=demo.load_correction(standard_jec), chunk_events=1500)
    return path


@pytest.fixture(scope="session")
def synthetic_clouds(tmp_path_factory, synthetic_file):
    """The synthetic file converted and split: {"all": part, "train": ..., "val": ..., "test": ...}."""
    out = tmp_path_factory.mktemp("clouds")
    part = out / "part.parquet"
    convert.convert_file(str(synthetic_file), str(part), convert.Selection(), convert.Split(), step_size=1000)
    splits = {name: str(out / f"{name}.parquet") for name in convert.SPLITS}
    convert.merge_splits([str(part)], splits)
    return {"all": str(part), **splits}


TINY_HP = {"model": "pfn", "phi_sizes": [16, 32], "head_sizes": [32, 16], "epochs": 3, "batch_size": 128,
           "max_constituents": 64, "lr": 0.005}


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, synthetic_clouds):
    """A small PFN trained for a few epochs on the synthetic clouds: (checkpoint, history, summary)."""
    from gnnjec import features, training

    out = tmp_path_factory.mktemp("model")
    summary = training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(out / "model.pt"),
                             str(out / "history.json"), TINY_HP, features.DEFAULT_INPUTS, threads=2)
    return str(out / "model.pt"), str(out / "history.json"), summary


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, trained_model, synthetic_clouds):
    from gnnjec import export

    out = tmp_path_factory.mktemp("export") / "model.onnx"
    export.export_onnx(trained_model[0], str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """test_workflow.TINY run start to finish with Snakemake on this machine: (workdir, process). Shared by the
    workflow tests (which change it only in copies, or in its config for dry runs and back) and the SLURM
    test, which compares its cluster run with it."""
    from test_workflow import TINY, snakemake, write_config

    workdir = tmp_path_factory.mktemp("workflow")
    write_config(workdir, TINY)
    proc = snakemake(workdir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return workdir, proc
