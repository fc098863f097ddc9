"""The workflow through profiles/slurm on a real SLURM cluster (one node, loopback only; see support/slurm_cluster.py).

A successive-halving search (the 2 toy files of TINY, 3 points: 1 epoch each, then the best one to 2) runs to
completion with the profile as a site user gets it, every rule but the cheap local ones as a SLURM job, and
its results equal a local run of the same config. Then, on the same cluster, a training job with
training.device auto is given a GPU that this CPU-only torch cannot use: it asks SLURM for the GPU, gets it,
and fails within seconds in one line.
"""

import copy
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gnnjec.config import training_points

from support import need
from support.results import assert_same_results
from support.slurm_cluster import missing_tools
from support.workflow import TINY, snakemake, write_config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HALVING = copy.deepcopy(TINY)
HALVING["training"]["device"] = "cpu"  # the search itself on the CPU, on purpose: no GPU asked for
HALVING["training"]["grid"] = {"lr": [0.002, 0.005, 0.01]}
HALVING["training"]["halving"] = {"eta": 2, "min_epochs": 1}  # rung 0: 3 points x 1 epoch; rung 1: 1 x 2
CLUSTER_RULES = ["convert", "convert", "merge_clouds", "train_rung", "train_rung", "train_rung", "train_rung",
                 "export_onnx", "residual_correction", "evaluate", "plots"]
GPU_CONFIG = copy.deepcopy(TINY)  # training.device auto
GPU_CONFIG["training"]["grid"] = {"lr": [0.002]}
(GPU_POINT,) = training_points(GPU_CONFIG["training"])

pytestmark = [pytest.mark.services, pytest.mark.slow]  # a SLURM cluster in a network namespace; the whole workflow


def cluster_env() -> dict:
    """This environment without anything of an enclosing SLURM job or GPU selection; the venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run_on_cluster(prefix: list[str], search: Path, gpu: Path, report: Path, log: Path) -> int:
    """The search in ``search``, then the GPU job in ``gpu`` (its exit status into gpu/status), on one cluster."""
    snakemake = [
        sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles" / "slurm"),
        "--snakefile", str(REPO / "workflow" / "Snakefile"),
        # the first status check 2 s after a submission (not 40), then every 2 s (not 10): the jobs here
        # take 5-7 s, and the wait for the checks had been half of this test's time
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2",
        # keep each job's SLURM log: with --verbose it shows the job's environment
        "--slurm-keep-successful-logs", "--verbose",
    ]
    search_run = shlex.join([*snakemake, "--directory", str(search)])
    gpu_run = shlex.join([*snakemake, f"results/training/{GPU_POINT}/model.pt", "--directory", str(gpu),
                          "--retries", "0", "--allowed-rules", "train"])
    script = (f"{search_run} || exit $?; mkdir -p {gpu}/results && cp -r {search}/results/clouds {gpu}/results/ && "
              f"{{ {gpu_run}; echo $? > {gpu}/status; }}")
    command = [
        *prefix, sys.executable, str(HERE / "support" / "slurm_cluster.py"),
        # two fake GPUs; the node declares 8 CPUs so that a training job's 4 CPUs per GPU (the profile's
        # cpus_per_gpu) fit on a 2-core machine
        "--gpus", "2", "--cpus", "8", "--timeout", "400", "--jobs-report", str(report), "--", "sh", "-c", script,
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
    """The rule of a job (comment rule_<name>_wildcards_...), or of a group job (rule_<group>_<group>: convert's)."""
    name = re.sub(r"_wildcards_.*", "", job["Comment"].removeprefix("rule_"))
    group = re.fullmatch(r"(\w+)_\1", name)
    return group.group(1) if group else name


@pytest.fixture(scope="module")
def runs(tmp_path_factory, loopback_only, tiny_data):
    missing = missing_tools()
    need(f"needs {', '.join(missing)} (Debian: munge slurmctld slurmd slurm-client; make test installs them as root)"
         if missing else None)
    need(None if importlib.util.find_spec("snakemake_executor_plugin_slurm") else
         "needs snakemake-executor-plugin-slurm (pip install -e '.[slurm]')")
    base = tmp_path_factory.mktemp("slurm")
    search, gpu, local = base / "search", base / "gpu", base / "local"
    for workdir, config in ((search, HALVING), (gpu, GPU_CONFIG), (local, HALVING)):
        workdir.mkdir()
        write_config(tiny_data(workdir), config)
    report, log = base / "jobs.txt", base / "snakemake.log"
    status = run_on_cluster(loopback_only, search, gpu, report, log)
    output = log.read_text(errors="replace")
    assert status == 0, output[-6000:]
    here = snakemake(local)  # the same search on this machine
    assert here.returncode == 0, (here.stdout + here.stderr)[-4000:]
    return search, gpu, local, output, parse_jobs(report.read_text())


def calls(output: str) -> dict[str, str]:
    """sbatch calls by the job's comment (rule_<name>_wildcards_...)."""
    return {m.group(1): m.group(0) for m in re.finditer(r"sbatch call: .*?--comment (rule_\S+).*", output)}


def test_halving_search_runs_to_completion_as_slurm_jobs(runs):
    search, _, _, output, jobs = runs
    results = search / "results"
    for path in ("export/pfn/model.onnx", "evaluation/metrics.json", "training/best.json", "plots/closure.png"):
        assert (results / path).stat().st_size > 0, path
    assert len(list((results / "training").glob("pfn-*/rung0/history.json"))) == 3
    assert len(list((results / "training").glob("pfn-*/rung1/history.json"))) == 1
    assert (results / "training" / "rung0.json").exists()  # the promotion, decided on the submit host
    # every rule but the local ones was a SLURM job of this run, and each completed; then the GPU job failed
    searched = [j for j in jobs if rule_of(j) != "train"]
    assert sorted(rule_of(j) for j in searched) == sorted(CLUSTER_RULES)
    assert {j["JobState"] for j in searched} == {"COMPLETED"} and {j["ExitCode"] for j in searched} == {"0:0"}
    # job states came from squeue (the profile's slurm-status-command): there is no accounting for sacct
    assert "command=squeue" in output and "command=sacct" not in output
    # the training jobs asked for no GPU (training.device: cpu), but for their sized time and memory
    for comment, call in calls(output).items():
        if comment.startswith("rule_train_rung_"):
            assert "--gpus" not in call and re.search(r" -t \d+", call) and re.search(r" --mem \d+", call), call


def test_results_equal_a_local_run(runs):
    search, _, local, _, _ = runs
    assert_same_results(search, local)


def test_a_gpu_job_that_cannot_use_its_gpu_fails_in_seconds(runs):
    _, gpu, _, output, jobs = runs
    assert (gpu / "status").read_text().strip() != "0"
    (job,) = [j for j in jobs if rule_of(j) == "train"]
    # asked for and allocated: one GPU and 4 CPUs (the profile's cpus_per_gpu), on one node
    (call,) = [c for comment, c in calls(output).items() if comment.startswith("rule_train_wildcards")]
    assert " --gpus=1" in call and " --cpus-per-gpu=4" in call and " --nodes=1" in call, call
    assert job["TresPerJob"] == "gres:gpu:1" and job["JOB_GRES"] == "gpu:1" and job["NumCPUs"] == "4", job
    assert job["JobState"] == "FAILED", job
    # no other job was given a GPU
    assert all("TresPerJob" not in j and j["JOB_GRES"] == "(null)" for j in jobs if j is not job)
    line = "gnnjec train: error: config key training.device: this job was given GPU 0 ("
    log = (gpu / "results" / "logs" / "train" / f"{GPU_POINT}.log").read_text()
    assert line in log and "but this torch" in log and log.count("\n") <= 3, log
    assert not (gpu / "results" / "training" / GPU_POINT / "model.pt").exists()
    from datetime import datetime

    started, ended = (datetime.fromisoformat(job[k]) for k in ("StartTime", "EndTime"))
    assert (ended - started).total_seconds() <= 20, job
