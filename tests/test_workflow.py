"""The Snakemake DAG end to end on two tiny toy files (TINY), and what reruns after a config change."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from support.workflow import (
    REPO,
    TINY,
    planned_jobs,
    snakemake,
    snakemake_command,
    with_evaluation_sample,
    write_config,
    write_evaluation_files,
)


@pytest.mark.slow
def test_whole_dag_produces_model_metrics_and_plots(tiny_run):
    workdir, proc = tiny_run
    results = workdir / "results"
    for path in ("export/pfn/network.onnx", "export/pfn/onnx_check.json", "export/pfn/residual.json",
                 "export/pfn/model.onnx", "evaluation/metrics.json",
                 "evaluation/summary.txt", "training/best.json", "triton/pfn/config.pbtxt", "triton/pfn/1/model.onnx"):
        assert (results / path).stat().st_size > 0, path
    from gnnjec import spec

    # every plot of the spec, which the rules and the plotting read
    for name in (*spec.PLOTS, *spec.TRAINING_PLOTS):
        assert (results / "plots" / f"{name}.png").stat().st_size > 10_000, name
        assert (results / "plots" / f"{name}.pdf").exists()
    assert sorted(p.stem for p in (results / "plots").glob("*.png")) == sorted((*spec.PLOTS, *spec.TRAINING_PLOTS))
    assert (results / "evaluation" / "metrics.csv").stat().st_size > 0
    assert len(list((results / "training").glob("pfn-*/model.pt"))) == 2
    # every rule leaves a log and a benchmark
    assert (results / "logs" / "evaluate.log").exists()
    assert (results / "benchmarks" / "export_onnx" / "pfn.tsv").exists()
    # the summary table reaches the terminal
    assert "standard" in proc.stdout and "pfn" in proc.stdout and "flav. spread" in proc.stdout


@pytest.mark.slow
def test_second_run_does_nothing(tiny_run):
    workdir, _ = tiny_run
    assert planned_jobs(snakemake(workdir, "--dry-run")) == {}


@pytest.mark.slow
def test_config_change_reruns_only_what_it_touches(tiny_run):
    workdir, _ = tiny_run
    try:
        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["plots"] = {"energy_tev": 13.0}  # a Run 2 label: only the plots change
        write_config(workdir, changed)
        assert planned_jobs(snakemake(workdir, "--dry-run")) == {"plots": 1, "training_plots": 1, "all": 1}

        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["evaluation"]["n_bootstrap"] = 5
        write_config(workdir, changed)
        assert planned_jobs(snakemake(workdir, "--dry-run")) == {"evaluate": 1, "plots": 1, "all": 1}

        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["evaluation"]["eta_bins"] = [[0.0, 1.5], [1.5, 3.0], [3.0, 5.0]]  # a binning: no retraining
        write_config(workdir, changed)
        assert planned_jobs(snakemake(workdir, "--dry-run")) == {"evaluate": 1, "plots": 1, "all": 1}

        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["training"]["grid"]["lr"].append(0.01)  # one new grid point; the two trained ones stay
        write_config(workdir, changed)
        assert planned_jobs(snakemake(workdir, "--dry-run")) == {
            "train": 1, "select_model": 1, "export_onnx": 1, "residual_correction": 1, "triton_model": 1, "evaluate": 1,
            "plots": 1, "training_plots": 1, "all": 1}

        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["training"]["grid"]["lr"][1] = 0.004  # one point's hyperparameter: only that point retrains
        write_config(workdir, changed)
        jobs = planned_jobs(snakemake(workdir, "--dry-run"))
        assert jobs == {"train": 1, "select_model": 1, "export_onnx": 1, "residual_correction": 1, "triton_model": 1,
                        "evaluate": 1, "plots": 1, "training_plots": 1, "all": 1}

        changed = yaml.safe_load(yaml.safe_dump(TINY))
        changed["selection"]["min_gen_pt"] = 20.0
        write_config(workdir, changed)
        jobs = planned_jobs(snakemake(workdir, "--dry-run"))
        assert jobs["convert"] == 2 and "synthetic_pfnano" not in jobs and jobs["train"] == 2
    finally:
        write_config(workdir, TINY)


def test_invalid_config_is_refused_naming_the_key(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["selction"] = bad.pop("selection")
    write_config(tmp_path, bad)
    proc = snakemake(tmp_path, "--dry-run")
    assert proc.returncode != 0
    assert "selction" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_sample_defined_twice_is_refused_not_silently_dropped(tmp_path):
    """YAML keeps the second of two equal keys: the first sample would vanish without a word."""
    text = yaml.safe_dump(TINY)
    first = next(iter(TINY["samples"]))
    block = yaml.safe_dump({"samples": {first: TINY["samples"][first]}}).split("\n", 1)[1]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(text.replace("samples:\n", "samples:\n" + block, 1))
    proc = snakemake(tmp_path, "--dry-run")
    assert proc.returncode != 0
    assert f"config key {first}: appears twice in one mapping" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_unknown_feature_is_refused_naming_the_key(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["features"]["jet"].append("jet_charge")
    write_config(tmp_path, bad)
    proc = snakemake(tmp_path, "--dry-run")
    assert proc.returncode != 0
    assert "features.jet: unknown feature 'jet_charge'" in proc.stdout + proc.stderr


def test_a_users_configfile_replaces_the_demo(tmp_path, cms_file, tiny_data):
    """`--configfile mine.yaml` runs on the user's files alone: the demo's samples do not join them,
    and what the user leaves out takes the schema's defaults."""
    write_config(tiny_data(tmp_path), TINY)  # the tiny configuration sits where the workflow looks for it
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"samples": {"real": {"files": [cms_file("pfnano.root")]}},
                                    "dataset_label": "PFNano test file"}))
    jobs = planned_jobs(snakemake(tmp_path, "--configfile", str(mine), "--dry-run"))
    assert jobs["convert"] == 1 and "synthetic_pfnano" not in jobs and "synthetic_jec" not in jobs
    assert jobs["train"] == 1  # no grid given: the defaults are the one point
    # and without --configfile, the tiny configuration is the one used: its two files and two points
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run"))
    assert jobs["convert"] == 2 and jobs["train"] == 2


HALVING = yaml.safe_load(yaml.safe_dump(TINY))
HALVING["training"]["defaults"].update(epochs=4, patience=10)
del HALVING["training"]["grid"]
HALVING["training"]["random"] = {"points": 4, "seed": 0,
                                 "space": {"lr": {"log_uniform": [1e-4, 1e-2]}, "dropout": {"choice": [0.0, 0.1]}}}
HALVING["training"]["halving"] = {"eta": 2}


@pytest.mark.slow
def test_successive_halving_continues_the_best_points_and_selects_among_all(tmp_path, tiny_data):
    import json

    write_config(tiny_data(tmp_path), HALVING)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    training = tmp_path / "results" / "training"
    rungs = [json.loads((training / f"rung{r}.json").read_text()) for r in (0, 1)]
    assert len(rungs[0]["ranking"]) == 4 and len(rungs[0]["promoted"]) == 2 and len(rungs[1]["promoted"]) == 1
    assert set(rungs[1]["promoted"]) <= set(rungs[0]["promoted"])
    best = json.loads((training / "best.json").read_text())
    assert best["best"] == rungs[1]["promoted"][0]
    # budgets 1, 2, 4 epochs: 4 + 2 + 2 epochs trained, where the grid would train 16
    assert sorted(r["epochs"] for r in best["ranking"]) == [1, 1, 2, 4] and best["total_epochs"] == 8
    winner = training / best["best"]
    first = json.loads((winner / "rung0" / "history.json").read_text())["epochs"][0]
    last = json.loads((winner / "rung2" / "history.json").read_text())
    assert last["epochs"][0] == first and last["trained_epochs"] == 2  # continued, never retrained
    table = (training / "points.tsv").read_text().splitlines()
    assert len(table) == 5 and table[1].split("\t")[1] == best["best"]
    check = json.loads((tmp_path / "results" / "export" / "pfn" / "onnx_check.json").read_text())
    assert check["model"] == best["best"]
    assert planned_jobs(snakemake(tmp_path, "--dry-run")) == {}


def test_thesis_config_plans_the_thesis_size_run(tmp_path):
    """config/thesis.yaml validates and plans 150 simulated files, their conversion and four networks."""
    proc = snakemake(tmp_path, "--configfile", str(REPO / "config" / "thesis.yaml"), "--dry-run")
    jobs = planned_jobs(proc)
    assert jobs["synthetic_pfnano"] == 150 and jobs["convert"] == 150 and jobs["synthetic_jec"] == 1
    assert jobs["train"] == 4 and jobs["evaluate"] == 1


@pytest.mark.slow
def test_thesis_plots_evaluate_every_family_and_make_the_report(tmp_path, tiny_data):
    """`snakemake thesis_plots` with two model families: each family's best point is exported and
    evaluated beside the standard correction, every plot is made, and Snakemake's report embeds
    each plot with its caption, the tables and the configuration in one HTML file."""
    import json

    from gnnjec import plotting

    two = yaml.safe_load(yaml.safe_dump(TINY))
    two["training"]["grid"] = {"model": ["pfn", "dnn"]}
    two["training"]["defaults"].update(epochs=1)
    write_config(tiny_data(tmp_path), two)
    proc = snakemake(tmp_path, "thesis_plots")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    results = tmp_path / "results"
    best = json.loads((results / "training" / "best.json").read_text())
    assert sorted(best["families"]) == ["dnn", "pfn"]
    for family, point in best["families"].items():
        check = json.loads((results / "export" / family / "onnx_check.json").read_text())
        assert check["model"] == point and check["passed"]
    metrics = json.loads((results / "evaluation" / "metrics.json").read_text())
    assert list(metrics["methods"]) == ["standard", "dnn", "pfn"]
    assert metrics["models"] == best["families"]
    assert list(metrics["summary"]) == ["0<|eta|<1.3", "1.3<|eta|<2.5", "2.5<|eta|<3", "3<|eta|<5", "0<|eta|<2.5",
                                        "2.5<|eta|<5"]
    html = (results / "report" / "thesis_plots.html").read_text()
    for name in (*plotting.PLOTS, *plotting.TRAINING_PLOTS, "metrics_csv", "summary", "points", "config"):
        caption = (REPO / "workflow" / "report" / f"{name}.rst").read_text().split("\n")[0].split("\\")[0]
        assert len(caption) > 15 and caption in html, name  # each item with its caption
    for name in (*plotting.PLOTS, *plotting.TRAINING_PLOTS):
        assert f"{name}.png" in html
    assert len(html) > 30 * 40_000  # the images themselves are embedded: the file stands alone
    # a second `snakemake thesis_plots` has nothing to do
    assert planned_jobs(snakemake(tmp_path, "thesis_plots", "--dry-run")) == {}


def _train_processes(workdir: Path) -> list[int]:
    """The ``gnnjec train`` processes that run in ``workdir`` (``python -m gnnjec train`` or the installed
    script, which runs as ``python .../bin/gnnjec train``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            gnnjec = any(a == b"gnnjec" or a.endswith(b"/gnnjec") for a in argv)
            if gnnjec and b"train" in argv and os.readlink(entry / "cwd") == str(workdir):
                pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids


def _copy_run(finished: Path, to: Path) -> Path:
    shutil.copytree(finished, to, symlinks=True)  # copy2: modification times kept, so nothing looks stale
    return to


def _content(path: Path) -> dict:
    """A JSON output without its provenance's input sizes and checksums: those of the training histories,
    which record wall-clock timings, differ from run to run, and so do those of everything made after them."""
    document = json.loads(path.read_text())
    for item in document["provenance"]["inputs"]:
        item.pop("sha256", None), item.pop("bytes", None)
    return document


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_training_killed_mid_epoch_is_retried_by_the_profile_and_resumes(tiny_run, tmp_path, sig):
    """A preemption or a batch system's kill in the middle of an epoch: the local profile retries the job,
    the retry goes on from last.pt, and the workflow ends with the metrics of the uninterrupted run."""
    workdir = _copy_run(tiny_run[0], tmp_path / "run")
    point = sorted((workdir / "results" / "training").glob("pfn-*"))[-1]
    shutil.rmtree(point)
    for name in ("best.json", "points.tsv"):  # what follows the point is made again from it
        (workdir / "results" / "training" / name).unlink()
    for folder in ("export", "evaluation"):
        shutil.rmtree(workdir / "results" / folder)
    command, env = snakemake_command(workdir, "--profile", str(REPO / "profiles" / "local"),
                                     "results/evaluation/metrics.json")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        last = point / "last.pt"
        deadline = time.monotonic() + 300
        while not last.exists():  # epoch 1 is done and saved: epoch 2 is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
            time.sleep(0.002)
        (pid,) = _train_processes(workdir)
        os.kill(pid, signal.SIGSTOP)
        assert not (point / "model.pt").exists(), "the training ended before it could be stopped mid-epoch"
        import torch

        assert torch.load(last, weights_only=True)["epoch"] == 1
        os.kill(pid, sig)
        os.kill(pid, signal.SIGCONT)
        output = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-5000:]
    assert "Trying to restart job" in output, output[-5000:]  # the profile's retries: 1
    history = json.loads((point / "history.json").read_text())
    assert history["resumed_after_epoch"] == 1 and history["trained_epochs"] == 1
    if sig == signal.SIGTERM:  # it could clean up: no temporaries, and said why it stopped
        assert not list(point.glob(".*tmp*"))
    metrics = "results/evaluation/metrics.json"
    assert _content(workdir / metrics) == _content(tiny_run[0] / metrics)


@pytest.mark.slow
def test_same_config_and_seed_give_identical_outputs(tiny_run, tmp_path):
    """Everything from the conversion on, made again from the same toy files: the same clouds and
    checkpoints byte for byte, the same predictions, and the same metrics file (provenance included,
    but for the checksums that trace back to the histories' timings)."""
    workdir = _copy_run(tiny_run[0], tmp_path / "again")
    for folder in ("clouds", "training", "export", "evaluation"):
        shutil.rmtree(workdir / "results" / folder)
    proc = snakemake(workdir, "results/evaluation/metrics.json")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    first, again = tiny_run[0] / "results", workdir / "results"
    same_bytes = [p.relative_to(first)
                  for p in (*first.glob("clouds/**/*.parquet"), *first.glob("training/*/model.pt"))]
    assert len(same_bytes) >= 5
    assert [p for p in same_bytes if (first / p).read_bytes() != (again / p).read_bytes()] == []
    predictions = "evaluation/predictions.parquet"
    assert pq.read_table(first / predictions).equals(pq.read_table(again / predictions))
    assert _content(first / "evaluation" / "metrics.json") == _content(again / "evaluation" / "metrics.json")
    metrics = json.loads((again / "evaluation" / "metrics.json").read_text())
    assert metrics["provenance"]["stage"] == "evaluate"
    assert {Path(i["path"]).name for i in metrics["provenance"]["inputs"]} == {"model.onnx", "test.parquet"}


@pytest.mark.slow
def test_every_output_of_the_workflow_carries_provenance(tiny_run):
    from gnnjec import provenance

    results = tiny_run[0] / "results"
    stages = {}
    for path in sorted(results.rglob("*")):
        if not path.is_file() or path.suffix in (".log", ".tsv", ".csv", ".pdf") or "tensorboard" in path.parts \
                or path.name in ("last.pt",) or path.parts[-2:] == ("benchmarks",):
            continue
        if path.suffix == ".txt" and "benchmarks" in path.parts:
            continue
        record = provenance.read(path)
        assert record is not None, f"{path.relative_to(results)} carries no provenance"
        assert record["gnnjec_version"] and "config_sha256" in record
        for item in record["inputs"]:  # sizes and checksums of what it was made from, as they are now
            source = tiny_run[0] / item["path"]
            if "sha256" in item and source.is_file():
                assert provenance.sha256(source) == item["sha256"], (path, source)
        stages.setdefault(record["stage"], []).append(path.name)
    assert {"convert", "merge-clouds", "train", "select-model", "export-onnx", "evaluate", "triton-model", "plots",
            "training-plots"} <= set(stages), stages


@pytest.mark.slow
def test_an_evaluation_sample_is_evaluated_apart_and_never_trained_on(tiny_run, tmp_path):
    """A `files:` sample with role evaluation, added to a finished run: it is converted and evaluated on all its jets
    by every exported model (with its residual correction) in a folder of its own, its summary states the closure
    and the flavour response of every method, the report shows them, its jets join no split, and nothing is
    trained again for it."""
    from gnnjec import provenance, spec

    workdir = _copy_run(tiny_run[0], tmp_path / "run")
    write_evaluation_files(workdir)
    config = with_evaluation_sample(TINY)
    write_config(workdir, config)
    evaluation_only = {"convert": 1, "evaluate_sample": 1, "sample_plots": 1, "all": 1}
    assert planned_jobs(snakemake(workdir, "--dry-run")) == evaluation_only
    proc = snakemake(workdir, "all", "thesis_plots")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]

    results = workdir / "results"
    folder = workdir / spec.SAMPLE_EVALUATION.format(sample="tiny_eval")
    outputs = [workdir / p.format(sample="tiny_eval") for p in (spec.SAMPLE_PREDICTIONS, spec.SAMPLE_METRICS,
                                                                spec.SAMPLE_SUMMARY)]
    outputs += [workdir / p for p in spec.plot_files(spec.SAMPLE_PLOTS, "png", spec.SAMPLE_PLOT, sample="tiny_eval")]
    for path in outputs:
        record = provenance.read(path)
        assert record is not None and record["stage"] in ("evaluate", "plots"), path
    assert (folder / "metrics.csv").stat().st_size > 0
    assert sorted(p.name for p in (folder / "plots").iterdir()) == sorted(
        Path(p).name for p in spec.plot_files(spec.SAMPLE_PLOTS, pattern=spec.SAMPLE_PLOT))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["sample"] == "tiny_eval" and list(metrics["methods"]) == ["standard", "pfn"]
    assert {Path(i["path"]).name for i in metrics["provenance"]["inputs"]} == {"model.onnx", "000.parquet"}
    # every jet of the sample is evaluated, whatever its split; none of them is in train, val or test
    clouds = pq.read_table(results / "clouds" / "tiny_eval" / "000.parquet",
                           columns=["run", "luminosity_block", "event"])
    assert pq.read_metadata(folder / "predictions.parquet").num_rows == clouds.num_rows > 500
    ids = set(zip(*(clouds.column(c).to_pylist() for c in clouds.column_names)))
    for split in spec.SPLITS:
        table = pq.read_table(results / "clouds" / f"{split}.parquet", columns=["run", "luminosity_block", "event"])
        assert not ids & set(zip(*(table.column(c).to_pylist() for c in table.column_names))), split
    # the summary: closure bin by bin and the count of bins beyond, and the flavour response, of every method
    summary = (folder / "summary.txt").read_text()
    assert summary.startswith("Evaluation sample 'tiny_eval'")
    closure = metrics["closure"]["summary"]["methods"]
    assert set(closure) == {"standard", "pfn"} and all(c["gen"]["bins"] >= 2 for c in closure.values())
    beyond = next(line for line in summary.splitlines() if line.startswith("bins beyond")).split()[2:]
    assert beyond == [f"{c['gen']['bins_beyond']}/{c['gen']['bins']}" for c in closure.values()]
    flavour = summary.split("Flavour response")[1].split("\n\n")[0].splitlines()[2:]  # the rows of the table
    assert {line.split()[1] for line in flavour} == {"standard", "pfn"} and len(flavour) == 2 * 2  # two regions
    assert provenance.read(folder / "summary.txt") is not None
    # the report shows the sample's summary and plots, under a category of their own
    html = (results / "report" / "thesis_plots.html").read_text()
    assert "Evaluation samples" in html and "An evaluation-only sample" in html  # summary.rst's paragraph on them
    for name in ("summary.txt", *(f"{p}.png" for p in spec.SAMPLE_PLOTS)):
        assert f"tiny_eval/{'plots/' if name.endswith('.png') else ''}{name}" in html, name

    # a change of the evaluation sample (another file) evaluates it again, and trains nothing
    write_evaluation_files(workdir, ["data/tiny_eval/001.root"], first_index=11)  # other events: a file listed
    # twice (a link to 000.root, say) is refused: its jets would count twice
    write_config(workdir, with_evaluation_sample(TINY, ["data/tiny_eval/000.root", "data/tiny_eval/001.root"]))
    assert planned_jobs(snakemake(workdir, "--dry-run")) == evaluation_only
