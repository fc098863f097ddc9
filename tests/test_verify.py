"""gnnjec verify: the inputs every output's provenance record names, checked against the files as they are now.

The results tree is made by the stages' command lines, run in their folder with relative paths as Snakemake runs
them, from the session's synthetic file and trained model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gnnjec import provenance
from gnnjec.errors import InputError

EVALUATION = {"pt_min": 20, "pt_max": 3000, "n_pt_bins": 8, "eta_bins": [[0, 1.3], [1.3, 2.5], [2.5, 5.0]],
              "headline_eta_bins": [[0, 2.5], [2.5, 5.0]], "n_bootstrap": 10, "summary_min_pt": 30}

# the outputs that carry a record, by the stage their record names (the Triton repository's model.onnx is a copy of
# export's, its record with it)
RECORDED = {"convert": ["results/clouds/demo/000.parquet"],
            "merge-clouds": [f"results/clouds/{s}.parquet" for s in ("train", "val", "test")],
            "select-model": ["results/training/best.json"],
            "export-onnx": ["results/export/pfn/model.onnx", "results/export/pfn/onnx_check.json",
                            "results/triton/pfn/1/model.onnx"],
            "evaluate": ["results/evaluation/predictions.parquet", "results/evaluation/metrics.json",
                         "results/evaluation/summary.txt"],
            "triton-model": ["results/triton/pfn/config.pbtxt"],
            "report-config": ["results/report/config.yaml"]}
TENSORBOARD = "results/training/p/tensorboard/events.out.tfevents.1.host"
# and those that carry none: one log per stage, two tables, TensorBoard's binary events
UNRECORDED = [*(f"results/logs/{stage}.log" for stage in RECORDED), "results/training/points.tsv",
              "results/evaluation/metrics.csv", TENSORBOARD]


def gnnjec(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gnnjec", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def results_tree(tmp_path_factory, synthetic_file, trained_model):
    work = tmp_path_factory.mktemp("verify")
    model, history, _ = trained_model
    stages = {
        "convert": [synthetic_file, "--output", "results/clouds/demo/000.parquet", "--step-size", "2000"],
        "merge-clouds": ["results/clouds/demo/000.parquet",
                         *(f"--{s}=results/clouds/{s}.parquet" for s in ("train", "val", "test"))],
        "select-model": [f"p={history}", "--output", "results/training/best.json",
                         "--table", "results/training/points.tsv"],
        "export-onnx": ["--selection", "results/training/best.json", "--family", "pfn", "--models", f"p={model}",
                        "--clouds", "results/clouds/val.parquet", "--onnx", "results/export/pfn/model.onnx",
                        "--check", "results/export/pfn/onnx_check.json", "--jets", "200"],
        "evaluate": ["--onnx", "pfn=results/export/pfn/model.onnx", "--clouds", "results/clouds/test.parquet",
                     "--predictions", "results/evaluation/predictions.parquet",
                     "--metrics", "results/evaluation/metrics.json", "--summary", "results/evaluation/summary.txt",
                     "--table", "results/evaluation/metrics.csv", "--config", json.dumps(EVALUATION)],
        "triton-model": ["--onnx", "results/export/pfn/model.onnx", "--name", "pfn",
                         "--output-dir", "results/triton/pfn"],
        "report-config": ["--config", json.dumps({"evaluation": EVALUATION}), "--output", "results/report/config.yaml"],
    }
    assert list(stages) == list(RECORDED)
    for stage, args in stages.items():
        proc = gnnjec(stage, *args, cwd=work)
        assert proc.returncode == 0, (stage, proc.stderr[-3000:])
        (work / "results" / "logs").mkdir(parents=True, exist_ok=True)
        (work / "results" / "logs" / f"{stage}.log").write_text(proc.stderr)
    (work / TENSORBOARD).parent.mkdir(parents=True)
    (work / TENSORBOARD).write_bytes(bytes(range(256)) * 4)
    files = sorted(str(p.relative_to(work)) for p in (work / "results").rglob("*") if p.is_file())
    assert files == sorted([*(p for paths in RECORDED.values() for p in paths), *UNRECORDED])
    return work


@pytest.fixture()
def run(results_tree, tmp_path) -> Path:
    """A copy of the tree (times kept) to change."""
    copy = tmp_path / "run"
    shutil.copytree(results_tree, copy)
    return copy


def verify(*args, cwd) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``gnnjec verify``, and its findings: the lines before the summary."""
    proc = gnnjec("verify", *args, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc, proc.stdout.strip().splitlines()[:-1]


def summary(proc) -> str:
    return proc.stdout.strip().splitlines()[-1]


INPUTS = 8  # synthetic file, its clouds, history, best.json, model.pt, val and test splits, model.onnx


def test_an_untouched_run_verifies(run):
    proc, findings = verify("results", cwd=run)
    assert proc.returncode == 0 and findings == [], proc.stdout + proc.stderr
    outputs = sum(map(len, RECORDED.values()))
    assert summary(proc) == (f"{outputs} outputs checked, {INPUTS} inputs, 0 changed; "
                             f"{len(UNRECORDED)} files without a record skipped")


def test_a_split_rewritten_with_its_time_kept_is_found_naming_each_output(run):
    """pt_gen x 1.05 in the test split, its modification time put back: Snakemake would see nothing; verify names
    the split in every output evaluate made from it, and nothing else."""
    test = run / "results" / "clouds" / "test.parquet"
    before = test.stat()
    table = pq.read_table(test)
    column = table.schema.get_field_index("pt_gen")
    table = table.set_column(column, "pt_gen", pc.multiply(table.column("pt_gen"), pa.scalar(1.05, pa.float32())))
    pq.write_table(table, test)  # its own record (the schema's metadata) kept
    os.utime(test, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert test.stat().st_mtime_ns == before.st_mtime_ns and provenance.read(test)["stage"] == "merge-clouds"
    size = test.stat().st_size
    what = f"size {before.st_size} -> {size}" if size != before.st_size else "sha256 differs"

    proc, findings = verify("results", cwd=run)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    expected = sorted(RECORDED["evaluate"])
    assert findings == [f"{output}: input results/clouds/test.parquet: {what}" for output in expected]
    assert summary(proc).startswith(f"{sum(map(len, RECORDED.values()))} outputs checked, {INPUTS} inputs, 1 changed;")
    assert proc.stderr.strip().splitlines()[-1] == (
        f"gnnjec verify: failed: 1 of {INPUTS} inputs changed since the outputs above were made from them: restore "
        "them, or touch them and run snakemake, which makes again what they feed")


def test_a_deleted_input_is_missing(run):
    (run / "results" / "clouds" / "val.parquet").unlink()
    proc, findings = verify("results", cwd=run)
    assert proc.returncode == 1
    assert findings == [f"{output}: input results/clouds/val.parquet: missing" for output in RECORDED["export-onnx"]]


def test_relative_inputs_are_taken_from_root(run, tmp_path):
    """Run elsewhere, the records' relative paths start from --root (the folder the workflow ran in)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, findings = verify(run / "results", "--root", run, cwd=elsewhere)
    assert proc.returncode == 0 and findings == [], proc.stdout + proc.stderr
    proc, findings = verify(run / "results", cwd=elsewhere)
    assert proc.returncode == 1 and findings and all(line.endswith(": missing") for line in findings)
    assert f"{run / 'results' / 'evaluation' / 'metrics.json'}: input results/clouds/test.parquet: missing" in findings


def test_each_input_is_hashed_once(run, monkeypatch):
    """model.onnx and the test split are named by three outputs each: read once each all the same."""
    hashed = []
    real = provenance.sha256
    monkeypatch.setattr(provenance, "sha256", lambda path: hashed.append(os.path.realpath(path)) or real(path))
    result = provenance.verify(run / "results", run)
    assert result.changed == set() and len(result.inputs) == INPUTS
    assert sorted(hashed) == sorted(set(hashed)) and len(hashed) == INPUTS


def test_remote_inputs_folders_and_unreadable_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = Path("inputs")
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    url = "root://eospublic.cern.ch//eos/x.root"
    out = Path("out")
    out.mkdir()
    (out / "o.json").write_text(json.dumps({"provenance": provenance.record("convert", {}, [url, str(folder)])}))
    result = provenance.verify(out)
    assert [f.line() for f in result.findings] == [f"out/o.json: input {url}: remote: not checked"]
    assert result.changed == set()
    assert result.summary() == "1 outputs checked, 2 inputs, 0 changed, 1 remote not checked; 0 files without a " \
                               "record skipped"
    # a file of the folder changed, another added
    (folder / "a.txt").write_text("ab")
    (folder / "b.txt").write_text("b")
    lines = [f.line() for f in provenance.verify(out).findings if f.changed]
    assert lines == ["out/o.json: input inputs/a.txt: size 1 -> 2",
                     "out/o.json: input inputs/b.txt: not in the record: new in the folder inputs"]
    # an output whose record cannot be read
    (out / "damaged.parquet").write_bytes(b"not Parquet")
    damaged = [f for f in provenance.verify(out).findings if f.input is None]
    assert len(damaged) == 1 and damaged[0].line().startswith("out/damaged.parquet: unreadable: its record cannot be")
    # a folder without any record: the wrong folder
    Path("logs").mkdir()
    (Path("logs") / "x.log").write_text("a log\n")
    with pytest.raises(InputError, match="logs: no output with a provenance record in it"):
        provenance.verify("logs")
    proc = gnnjec("verify", "logs", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "gnnjec verify: error: logs: no output with a provenance record in it; give the workflow's results folder")


def test_read_finds_the_record_of_every_kind_of_output(results_tree, synthetic_file, trained_model):
    """Parquet and ONNX metadata, JSON, text comment lines (summary.txt, config.pbtxt, config.yaml), checkpoints and
    the demo's ROOT files (the plots' PNG and PDF: test_plotting); TensorBoard's binary events carry none."""
    for stage, paths in RECORDED.items():
        for path in paths:
            assert provenance.read(results_tree / path)["stage"] == stage, path
    inputs = provenance.read(results_tree / "results" / "evaluation" / "summary.txt")["inputs"]
    assert [i["path"] for i in inputs] == ["results/export/pfn/model.onnx", "results/clouds/test.parquet"]
    for library_made in (trained_model[0], synthetic_file):  # written by the library, outside a stage
        record = provenance.read(library_made)
        assert record["stage"] is None and record["gnnjec_version"], library_made
    assert provenance.read(results_tree / TENSORBOARD) is None
