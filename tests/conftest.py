"""Shared fixtures: a small synthetic PFNano sample converted once per session, and the real CMS files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gnnjec import clouds, convert, demo

from support import need, toy
from support.workflow import TINY, TINY_FILES, snakemake, write_config, write_tiny_files

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
    correction = demo.derive_standard_correction(seed=3, n_events=8000, generator=toy)
    path = tmp_path_factory.mktemp("jec") / "standard_jec.json"
    demo.save_correction(correction, path)
    return path


@pytest.fixture(scope="session")
def synthetic_file(tmp_path_factory, standard_jec):
    path = tmp_path_factory.mktemp("synthetic") / "demo_000.root"
    demo.write_pfnano(path, n_events=4000, seed=11, file_index=0, correction=demo.load_correction(standard_jec),
                      chunk_events=1500, generator=toy)
    return path


@pytest.fixture(scope="session")
def synthetic_clouds(tmp_path_factory, synthetic_file):
    """The synthetic file converted and split: {"all": part, "train": ..., "val": ..., "test": ...}."""
    out = tmp_path_factory.mktemp("clouds")
    part = out / "part.parquet"
    convert.convert_file(str(synthetic_file), str(part), convert.Selection(), convert.Split(), step_size=1000)
    splits = {name: str(out / f"{name}.parquet") for name in clouds.SPLITS}
    clouds.merge_splits([str(part)], splits)
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


QUANTILES = [0.16, 0.5, 0.84]


@pytest.fixture(scope="session")
def quantile_model(tmp_path_factory, synthetic_clouds):
    """TINY_HP's PFN trained with quantiles (16, 50, 84 %) and exported: (checkpoint, ONNX file)."""
    from gnnjec import export, features, training

    out = tmp_path_factory.mktemp("quantile_model")
    training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(out / "model.pt"), str(out / "history.json"),
                   {**TINY_HP, "quantiles": QUANTILES, "epochs": 6}, features.DEFAULT_INPUTS, threads=2)
    export.export_onnx(str(out / "model.pt"), str(out / "model.onnx"))
    return str(out / "model.pt"), str(out / "model.onnx")


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, trained_model, synthetic_clouds):
    from gnnjec import export

    out = tmp_path_factory.mktemp("export") / "model.onnx"
    export.export_onnx(trained_model[0], str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """``tiny_data(workdir)`` puts TINY's input files (support.workflow.TINY_FILES) into ``workdir`` and returns
    it. They are written once and copied with their times, so that they are older than anything made from them
    (a copied run's outputs among it)."""
    made = tmp_path_factory.mktemp("tiny_data")
    write_tiny_files(made)

    def put(workdir: Path) -> Path:
        for name in TINY_FILES:
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(made / name, workdir / name)
        return workdir

    return put


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data):
    """support.workflow.TINY run start to finish with Snakemake on this machine: (workdir, process). Shared by
    the workflow tests (which change it only in copies, or in its config for dry runs and back) and the batch
    tests, which compare their runs with it."""
    workdir = tiny_data(tmp_path_factory.mktemp("workflow"))
    write_config(workdir, TINY)
    proc = snakemake(workdir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return workdir, proc
