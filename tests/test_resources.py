"""Jobs sized from the configuration (gnnjec.resources), the thesis's run planned within the batch limits, and
a training job that was given a GPU it cannot use (gnnjec.training.pick_device)."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gnnjec import resources
from gnnjec.config import sample_files, training_points
from gnnjec.errors import InputError
from gnnjec.training import pick_device

from support.workflow import TINY, listed_jobs

REPO = Path(__file__).resolve().parents[1]
THESIS = REPO / "config" / "thesis.yaml"


def plan(tmp_path: Path, profile: str, configfile: Path) -> tuple[str, dict[str, list[dict[str, str]]]]:
    """A dry run from an empty working directory: its output and each rule's jobs' resources."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", str(REPO / "profiles" / profile), "--snakefile",
         str(REPO / "workflow" / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(configfile)],
        capture_output=True, text=True, check=False, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    jobs: dict[str, list[dict[str, str]]] = {}
    for rule, _, requested in listed_jobs(output):
        jobs.setdefault(rule, []).append(requested)
    return output, jobs


@pytest.mark.parametrize("profile", ["htcondor", "slurm"])
def test_the_thesis_run_plans_jobs_that_fit_their_limits(tmp_path, profile):
    output, jobs = plan(tmp_path, profile, THESIS)
    config = yaml.safe_load(THESIS.read_text())
    files = config["samples"]["qcd_pythia"]["synthetic"]["files"]
    assert len(jobs["synthetic_pfnano"]) == len(jobs["convert"]) == files
    for rule in ("synthetic_jec", "synthetic_pfnano", "convert", "merge_clouds", "train", "export_onnx",
                 "residual_correction", "evaluate", "plots"):
        for job in jobs[rule]:
            minutes = int(job["runtime"])
            assert 0 < minutes <= resources.LONGEST, (rule, job)
            assert int(job["MY.MaxRuntime" if "MY.MaxRuntime" in job else "classad_MaxRuntime"]) == 60 * minutes
            assert int(job["mem_mb"]) >= 2000 and int(job["request_memory"]) == int(job["mem_mb"]), (rule, job)
    # sized from the work: 100 epochs on 10 M jets take days for ParticleNet, hours for the PFN; evaluating 2 M
    # test jets with ParticleNet on 2 threads takes hours
    train = sorted(int(job["runtime"]) for job in jobs["train"])
    assert len(train) == 4 and train[0] >= 5 * 60 and train[-1] >= 4 * 24 * 60, train
    assert int(jobs["evaluate"][0]["runtime"]) >= 4 * 60
    assert int(jobs["synthetic_jec"][0]["runtime"]) >= 60  # 200 k Pythia events
    # two GPUs per training (the config's processes), at least compute capability 8 (bfloat16)
    assert {(j["gpu"], j["request_gpus"], j["gpus_minimum_capability"]) for j in jobs["train"]} == {("2", "2", "8")}
    # the plan of the whole search, and no training that would outlast the longest time class
    assert "gnnjec: training plan: 4 points to the end; 4 jobs, 400 epochs," in output
    assert "warning" not in re.sub(r"UserWarning.*|_warnings.warn.*", "", output).lower()


def test_a_training_longer_than_its_job_limit_runs_in_consecutive_jobs(tmp_path):
    """The thesis's run on one GPU per point: ParticleNet's 100 epochs would take 10 days, so every point trains
    in two jobs of 50 epochs, the second going on from the first's state; each job fits a week."""
    config = yaml.safe_load(THESIS.read_text())
    config["training"]["processes"] = 1
    configfile = tmp_path / "one-gpu.yaml"
    configfile.write_text(yaml.safe_dump(config))
    output, jobs = plan(tmp_path, "htcondor", configfile)
    assert ("gnnjec: training plan: 4 points to the end, each in 2 jobs of consecutive epochs (up to 50, 100; "
            "training.max_job_hours); 8 jobs, 400 epochs,") in output
    assert "train" not in jobs and len(jobs["train_rung"]) == 8 and "promote" not in jobs  # no halving here
    assert all(0 < int(job["runtime"]) <= 7 * 24 * 60 for job in jobs["train_rung"]), jobs["train_rung"]
    assert re.search(r"input: results/clouds/train.parquet, results/clouds/val.parquet, "
                     r"results/training/particlenet-\w+/rung0/state.pt", output) or "rung0/state.pt" in output
    assert "warning" not in re.sub(r"UserWarning.*|_warnings.warn.*", "", output).lower()


def test_a_training_whose_single_epochs_outlast_the_job_limit_is_named_at_planning(tmp_path):
    config = yaml.safe_load(THESIS.read_text())
    config["training"].update(processes=1, device="cpu", max_job_hours=48)
    configfile = tmp_path / "cpu.yaml"
    configfile.write_text(yaml.safe_dump(config))
    output, jobs = plan(tmp_path, "slurm", configfile)
    # on the CPU one ParticleNet epoch over 10 M jets takes days: named, once per point
    warnings = dict(re.findall(r"^gnnjec: warning: job train (\S+): planned for ([\d.]+) days .*$", output,
                               re.MULTILINE))
    assert sorted(point.rsplit("-", 1)[0] for point in warnings) == ["particlenet"], warnings
    assert all(float(days) > 2 for days in warnings.values()), warnings
    assert "train on more GPUs (training.processes), fewer epochs or jets, or a smaller model" in output
    # the batch system is asked for no more than training.max_job_hours
    assert max(int(j["runtime"]) for j in jobs["train_rung"]) == 48 * 60


def test_a_halving_dry_run_states_the_whole_search(tmp_path, tiny_data):
    tiny_data(tmp_path)
    config = copy.deepcopy(TINY)
    config["training"]["grid"] = {"lr": [0.001, 0.002, 0.003, 0.005, 0.007, 0.01, 0.02, 0.03, 0.05]}
    config["training"]["defaults"]["epochs"] = 9
    config["training"]["halving"] = {"eta": 3, "min_epochs": 1}
    configfile = tmp_path / "halving.yaml"
    configfile.write_text(yaml.safe_dump(config))
    output, jobs = plan(tmp_path, "local", configfile)
    assert len(jobs["train_rung"]) == 9  # only rung 0 can be listed: the rest depends on its results
    assert ("gnnjec: training plan: successive halving, rung 0: 9 x 1 epochs, rung 1: 3 x 3 epochs, rung 2: 1 x 9 "
            "epochs (21 epochs of the grid's 81); 13 jobs, 21 epochs,") in output


def sizes_of(config: dict) -> resources.Sizes:
    return resources.Sizes(config, sample_files(config), training_points(config["training"]))


def test_conversion_is_sized_by_the_file_and_memory_grows_with_each_attempt(cms_file):
    config = copy.deepcopy(TINY)
    config["samples"] = {"real": {"files": [cms_file("pfnano.root"), "root://eosuser.cern.ch//eos/x.root"]}}
    sizes = sizes_of(config)
    local, remote = sizes.convert("real", 0), sizes.convert("real", 1)
    assert "3 MB at 20 MB/s (local)" in local.how and "4000 MB at 8 MB/s (xrootd)" in remote.how
    assert local.minutes < remote.minutes and remote.minutes >= 4000 / 8 / 60 * resources.SAFETY
    job = resources.job_resources(lambda w, threads: remote)
    assert job["mem_mb"](None, attempt=2) == 2 * job["mem_mb"](None, attempt=1) == 2 * remote.mem_mb
    assert job["classad_MaxRuntime"](None) == 60 * job["runtime"](None)


def test_a_job_given_a_gpu_it_cannot_use_stops_at_once():
    if torch.cuda.is_available():
        pytest.skip("this torch can use a GPU")
    for env, name in (({"_CONDOR_AssignedGPUs": "GPU-1a2b", "CUDA_VISIBLE_DEVICES": "GPU-1a2b"},
                       "_CONDOR_AssignedGPUs"),
                      ({"SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"}, "SLURM_JOB_GPUS"),
                      ({"CUDA_VISIBLE_DEVICES": "1"}, "CUDA_VISIBLE_DEVICES")):
        with pytest.raises(InputError) as err:
            pick_device("auto", env=env)
        message = str(err.value)
        assert message.startswith("config key training.device: this job was given GPU ") and f"({name})" in message
        assert "CPU-only build" in message and "set training.device: cpu" in message and "\n" not in message
        assert pick_device("cpu", env=env).type == "cpu"  # on purpose
    for env in ({}, {"CUDA_VISIBLE_DEVICES": ""}, {"CUDA_VISIBLE_DEVICES": "-1"}):
        assert pick_device("auto", env=env).type == "cpu"  # no GPU given: the CPU, as before
    with pytest.raises(InputError, match="'cuda:1' asks for a GPU, but this torch"):
        pick_device("cuda:1", env={})
