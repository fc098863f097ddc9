"""The workflow through profiles/slurm on a real SLURM cluster (one node, loopback only; see slurm_cluster.py).

A small grid (2 synthetic files, 2 grid points, 2 epochs) runs to completion with the profile as a
site user gets it, every rule but `all` as a SLURM job. Checked: the outputs, that the training jobs
(and only they) asked for and got a GPU, and that the results equal a local run of the same config.
"""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import need
from slurm_cluster import missing_tools
from test_workflow import TINY, write_config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLUSTER_RULES = ["synthetic_jec", "synthetic_pfnano", "synthetic_pfnano", "convert", "convert", "merge_clouds",
                 "train", "train", "select_model", "export_onnx", "triton_model", "evaluate", "plots",
                 "training_plots"]
TIMING_KEYS = {"seconds", "jets_per_second", "data_wait_share"}  # per epoch, the only keys allowed to differ


def cluster_env() -> dict:
    """This environment without anything of an enclosing SLURM job or GPU selection; the venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run_on_cluster(prefix: list[str], workdir: Path, report: Path, log: Path) -> int:
    command = [
        *prefix, sys.executable, str(HERE / "slurm_cluster.py"),
        # two fake GPUs so that both grid points train at once; the node declares 8 CPUs so that a
        # training job's 4 CPUs per GPU (the profile's cpus_per_gpu) fit on a 2-core machine
        "--gpus", "2", "--cpus", "8", "--timeout", "400", "--jobs-report", str(report), "--",
        sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles" / "slurm"),
        "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir),
        # the first status check 2 s after a submission (not 40), then every 2 s (not 10): the jobs here
        # take 5-7 s, and the wait for the checks had been half of this test's time
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2",
        # keep each job's SLURM log: with --verbose it shows the job's environment
        "--slurm-keep-successful-logs", "--verbose",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=cluster_env())
        try:
            return proc.wait(timeout=460)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # slurm_cluster.py stops its command and daemons
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"the SLURM run did not end within 460 s; see {log}")


def parse_jobs(report: str) -> list[dict[str, str]]:
    """`scontrol show job -o -d` lines as {field: value} (values without spaces are enough here)."""
    return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in report.splitlines() if line.startswith("JobId=")]


def rule_of(job: dict[str, str]) -> str:
    return re.sub(r"_wildcards_.*", "", job["Comment"].removeprefix("rule_"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, loopback_only, tiny_run):
    missing = missing_tools()
    need(f"needs {', '.join(missing)} (Debian: munge slurmctld slurmd slurm-client; make test installs them as root)"
         if missing else None)
    need(None if importlib.util.find_spec("snakemake_executor_plugin_slurm") else
         "needs snakemake-executor-plugin-slurm (pip install -e '.[slurm]')")
    base = tmp_path_factory.mktemp("slurm")
    cluster = base / "cluster"
    cluster.mkdir()
    write_config(cluster, TINY)
    report, log = base / "jobs.txt", base / "snakemake.log"
    status = run_on_cluster(loopback_only, cluster, report, log)
    output = log.read_text(errors="replace")
    assert status == 0, output[-6000:]
    return cluster, tiny_run[0], output, parse_jobs(report.read_text())


def test_grid_runs_to_completion_as_slurm_jobs(runs):
    cluster, _, output, jobs = runs
    results = cluster / "results"
    for path in ("export/pfn/model.onnx", "export/pfn/onnx_check.json", "evaluation/metrics.json", "training/best.json",
                 "plots/median_response.png"):
        assert (results / path).stat().st_size > 0, path
    assert len(list((results / "training").glob("pfn-*/history.json"))) == 2
    # every rule but `all` was a SLURM job of this run, and each completed
    assert sorted(rule_of(j) for j in jobs) == sorted(CLUSTER_RULES)
    assert {j["JobState"] for j in jobs} == {"COMPLETED"} and {j["ExitCode"] for j in jobs} == {"0:0"}
    assert len({j["JobName"] for j in jobs}) == 1  # the plugin names every job after the run
    # job states came from squeue (the profile's slurm-status-command): there is no accounting for sacct
    assert "command=squeue" in output and "command=sacct" not in output


def test_training_jobs_and_only_they_get_a_gpu(runs):
    cluster, _, output, jobs = runs
    # what snakemake asked for: the rule's gpu=1 as --gpus=1, the profile's 4 CPUs per GPU on one node
    calls = {m.group(1): m.group(0) for m in re.finditer(r"sbatch call: .*?--comment (rule_\S+).*", output)}
    assert len(calls) == len(CLUSTER_RULES), sorted(calls)
    for comment, call in calls.items():
        if comment.startswith("rule_train_"):
            assert " --gpus=1" in call and " --cpus-per-gpu=4" in call and " --mem 8000" in call, call
            assert " --nodes=1" in call, call
        else:
            assert "--gpus" not in call and "--gres" not in call and "--cpus-per-gpu" not in call, call
    # what SLURM allocated
    for job in jobs:
        if rule_of(job) == "train":
            assert job["TresPerJob"] == "gres:gpu:1" and job["JOB_GRES"] == "gpu:1", job
            assert job["NumCPUs"] == "4" and job["CpusPerTres"] == "gres:gpu:4", job
        else:
            assert "TresPerJob" not in job and job["JOB_GRES"] == "(null)", job
    # what the jobs saw: a device of their own (the two ran at once), none for the other rules
    def visible_devices(rule: str) -> list[str]:
        found = []
        for log in (cluster / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"):
            environment = re.search(r"environment: environ\((.*)\)", log.read_text(errors="replace"))
            assert environment, f"no environment in {log}"
            found += re.findall(r"'CUDA_VISIBLE_DEVICES': '([^']*)'", environment.group(1)) or ["none"]
        return sorted(found)

    assert visible_devices("train") == ["0", "1"]
    assert visible_devices("convert") == ["none", "none"] and visible_devices("evaluate") == ["none"]
    # no CUDA here (the GPUs are /dev/null and /dev/zero): training.device auto fell back to the CPU
    for history in (cluster / "results" / "training").glob("pfn-*/history.json"):
        assert json.loads(history.read_text())["device"] == "cpu"


def test_results_equal_a_local_run(runs):
    cluster, local, _, _ = runs
    points = sorted(p.parent.name for p in (local / "results" / "training").glob("pfn-*/history.json"))
    assert len(points) == 2
    for point in points:
        on_cluster, here = (json.loads((d / "results" / "training" / point / "history.json").read_text())
                            for d in (cluster, local))
        assert on_cluster["best_val_loss"] == here["best_val_loss"]
        strip = [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in on_cluster["epochs"]]
        assert strip == [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in here["epochs"]]
        assert len(strip) == 2 and all("val_loss" in e and "train_loss" in e for e in strip)
    def content(path):  # without the input checksums, which trace back to the histories' timings
        document = json.loads(path.read_text())
        for item in document["provenance"]["inputs"]:
            item.pop("sha256", None), item.pop("bytes", None)
        return document

    for path in ("training/best.json", "export/pfn/onnx_check.json", "evaluation/metrics.json"):
        assert content(cluster / "results" / path) == content(local / "results" / path), path
    import onnx

    graphs = [onnx.load(str(d / "results/export/pfn/model.onnx")).graph.SerializeToString() for d in (cluster, local)]
    assert graphs[0] == graphs[1]
    predictions = "results/evaluation/predictions.parquet"
    assert pq.read_table(cluster / predictions).equals(pq.read_table(local / predictions))
