"""profiles/htcondor as a CERN user types it, through the real snakemake-executor-plugin-htcondor, with
tests/support/fake_schedd.py as an lxbatch-like pool: every job in a sandbox that cannot see the submit directory, its
files moved by HTCondor file transfer, an environment of what the submit description gives and nothing else,
held when an output is missing, credentials and proxies refused unless really there.

No HTCondor daemon runs here (none can be installed); see the fake's docstring for what it leaves out.
"""

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from gnnjec.config import training_points
from gnnjec.resources import FLAVOURS

from support import need
from support.results import assert_same_results, epochs_without_timings
from support.workflow import TINY, TINY_FILES, listed_jobs, planned_jobs, write_config

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "support" / "fake_schedd.py"
JOBDIR = ".snakemake/htcondor"  # htcondor-jobdir in the profile
LOCAL_RULES = {"promote", "select_model", "training_plots", "triton_model", "report_config", "thesis_plots", "all"}
# what a job's environment holds: the profile's and the workflow's variables, the starter's, nothing inherited
JOB_ENVIRONMENT = {"GNNJEC_PYTHON", "KRB5CCNAME", "_CONDOR_SCRATCH_DIR", "_CONDOR_JOB_AD", "TMPDIR", "BATCH_SYSTEM",
                   "OMP_NUM_THREADS"}

CONFIG = copy.deepcopy(TINY)
ONE_JOB = "results/clouds/tiny/000.parquet"  # what one job makes (a conversion: a group job of one)
CONFIG["training"]["device"] = "cpu"  # the pool's GPUs cannot be used by this CPU-only torch: train on the CPU


def need_plugin() -> None:
    missing = [m for m in ("snakemake_executor_plugin_htcondor", "htcondor2") if importlib.util.find_spec(m) is None]
    need(f"needs {', '.join(missing)} (pip install -e '.[test]')" if missing else None)
    need(None if shutil.which("unshare") and os.geteuid() == 0 else
         "needs root and unshare: the stand-in pool hides the submit directory from jobs in a mount namespace")


def clone(workdir: Path) -> Path:
    """What a user has after `git clone` on lxplus: the workflow, the package's source, the profiles, the setup
    scripts (copied; the project's environment stays where it is, as on AFS)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake", "results")
    for name in ("workflow", "src", "profiles", "envs", "config", "scripts"):
        shutil.copytree(REPO / name, workdir / name, ignore=ignore)
    return workdir


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A user's home where the README's set-up linked the profiles (scripts/link-profiles.sh, run by make install)."""
    home = tmp_path_factory.mktemp("home")
    proc = subprocess.run(["sh", str(REPO / "scripts" / "link-profiles.sh")], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": ""}, check=True)
    assert proc.stdout.count("link-profiles: --profile") == 3, proc.stdout
    (home / "krb5cc").write_text("a Kerberos ticket cache, as kinit leaves it\n")
    return home


def user_env(home: Path, **extra: str) -> dict:
    """The login shell: the project's environment on PATH, HOME with the linked profiles, a Kerberos ticket."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "X509_USER_PROXY")}
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
            "KRB5CCNAME": f"FILE:{home / 'krb5cc'}", "CONDOR_CONFIG": os.devnull, **extra}


def snakemake(workdir: Path, home: Path, *args: str, fake: list[str] | None = None, env: dict | None = None,
              timeout: int = 600) -> subprocess.CompletedProcess:
    """`snakemake --profile htcondor ...` typed in ``workdir``; through the fake pool unless fake is None."""
    command = ([sys.executable, "-m", "snakemake", *args] if fake is None else
               [sys.executable, str(FAKE), *fake, "--", *args])
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env or user_env(home),
                          timeout=timeout, check=False)


def submissions(record: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in record.glob("*.json")), key=lambda r: r["cluster"])


def rule_of(record: dict) -> str:
    """The rule of a job (batch name <rule>-<jobid>), or of a group job (<group>_<group>-<uuid>)."""
    name = record["submit"]["batch_name"]
    return name.split("_", 1)[0] if re.fullmatch(r"(\w+)_\1-[0-9a-f-]{36}", name) else name.rsplit("-", 1)[0]


@pytest.mark.services
def test_short_profile_names_plan_the_demo(tmp_path, home):
    """After the README's set-up, `snakemake --profile htcondor|slurm|local -n` at the checkout's root."""
    need_plugin()
    workdir = clone(tmp_path / "gnnjec")
    for name in ("htcondor", "slurm", "local"):
        proc = snakemake(workdir, home, "--profile", name, "-n")
        jobs = planned_jobs(proc)
        # four QCD files and the tt-bar evaluation sample's one
        assert jobs["synthetic_pfnano"] == 5 and jobs["train"] == 4 and jobs["evaluate"] == 1, (name, jobs)
        assert jobs["evaluate_sample"] == 1, (name, jobs)
        assert jobs["export_onnx"] == jobs["residual_correction"] == 2, (name, jobs)  # the PFN and the DNN
        assert f"Using profile {name} for setting default command line arguments." in proc.stdout + proc.stderr
    assert "job_wrapper=profiles/htcondor/job.sh" in snakemake(workdir, home, "--profile", "htcondor", "-n").stdout
    # without the set-up's links Snakemake finds no such profile (the checkout has none at its root)
    bare = tmp_path / "bare-home"
    bare.mkdir()
    proc = snakemake(workdir, bare, "--profile", "htcondor", "-n")
    assert proc.returncode != 0 and "htcondor" in proc.stderr


def test_link_profiles_keeps_a_users_own_profile_and_follows_the_checkout(tmp_path):
    home = tmp_path / "home"
    own = home / ".config" / "snakemake" / "slurm"
    own.mkdir(parents=True)
    (own / "config.yaml").write_text("executor: slurm\n")
    other = tmp_path / "old-checkout" / "profiles" / "htcondor"  # a link to another, since removed, checkout
    os.symlink(other, home / ".config" / "snakemake" / "htcondor")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": ""}
    proc = subprocess.run(["sh", str(REPO / "scripts" / "link-profiles.sh")], capture_output=True, text=True, env=env,
                          check=True)
    assert f"kept your own {own}; for this project's use --profile profiles/slurm" in proc.stderr
    assert not own.is_symlink() and (own / "config.yaml").read_text() == "executor: slurm\n"
    links = home / ".config" / "snakemake"
    assert os.readlink(links / "htcondor") == str(REPO / "profiles" / "htcondor")
    assert os.readlink(links / "local") == str(REPO / "profiles" / "local")
    again = subprocess.run(["sh", str(REPO / "scripts" / "link-profiles.sh")], capture_output=True, text=True, env=env,
                           check=True)
    assert again.stdout == "" and "kept your own" in again.stderr  # nothing changed the second time


@pytest.fixture(scope="module")
def lxbatch_run(tmp_path_factory, home, tiny_data):
    """The tiny workflow, start to finish, `snakemake --profile htcondor` through the lxbatch-like pool (2 slots)."""
    need_plugin()
    workdir = tiny_data(clone(tmp_path_factory.mktemp("lxplus") / "gnnjec"))
    write_config(workdir, CONFIG)
    record = workdir.parent / "submitted"
    proc = snakemake(workdir, home, "--profile", "htcondor", "--jobs", "2", "--seconds-between-status-checks", "1",
                     fake=["--record", str(record), "--slots", "2"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return workdir, submissions(record), output


@pytest.mark.services
@pytest.mark.slow
def test_the_workflow_completes_in_sandboxes_and_equals_a_local_run(lxbatch_run, tiny_run):
    workdir, records, output = lxbatch_run
    assert_same_results(workdir, tiny_run[0])
    # every job but the cheap ones went to the pool, each once and each fine; the cheap ones ran here
    batch = {rule_of(r) for r in records}
    assert batch == {"convert", "merge_clouds", "train", "export_onnx", "residual_correction", "evaluate", "plots"}
    assert not batch & LOCAL_RULES
    assert all(r["status"] == 4 and r["exit_code"] == 0 for r in records)
    assert "Using batch fallback" not in output and (workdir / JOBDIR / "snakemake-rules.log").stat().st_size > 0
    # the logs and benchmarks came back with the outputs
    for log in ("train", "convert/tiny"):
        assert list((workdir / "results" / "logs" / log).glob("*.log")), log
    def benchmarks(d):
        return sorted(str(p.relative_to(d)) for p in (d / "results" / "benchmarks").rglob("*.tsv"))

    assert benchmarks(workdir) == benchmarks(tiny_run[0])
    assert "pushed the Kerberos credential to the credd" in output


@pytest.mark.services
@pytest.mark.slow
def test_jobs_ran_in_sandboxes_with_only_their_files_and_environment(lxbatch_run):
    workdir, records, _ = lxbatch_run
    for record in records:
        submit = record["submit"]
        assert submit["should_transfer_files"] == "YES" and submit["getenv"] == "False"
        assert not record["ran_in"].startswith(str(workdir)) and "fake-condor-execute-" in record["ran_in"]
        # nothing inherited from the submitting shell: no PATH, HOME, VIRTUAL_ENV; the credential's copy
        assert set(record["environment_names"]) == JOB_ENVIRONMENT, record["environment_names"]
        assert record["environment"]["KRB5CCNAME"].startswith(f"FILE:{record['ran_in']}/")
        # the submitting Python, by absolute path (quoted by the plugin: see the next test; job.sh drops the quotes)
        assert record["environment"]["GNNJEC_PYTHON"].strip('"') == sys.executable
        assert submit["MY.SendCredential"] in ("True", "2")  # a group of two adds the two jobs' True up
        assert submit["executable"] == "profiles/htcondor/job.sh"
        files = set(record["sandbox_files"])
        assert "workflow/Snakefile" in files and "config/config.yaml" in files
        assert not any(f.startswith("src/") for f in files)  # the rules run the installed package
        assert not any(f.startswith(("results/logs", ".snakemake")) for f in files)
    # the two conversions ran in one job (the profile's group-components), which saw their input files and no
    # results
    (convert,) = [r for r in records if rule_of(r) == "convert"]
    assert {f for f in convert["sandbox_files"] if f.startswith(("results/", "data/"))} == set(TINY_FILES)
    # asking for the two jobs' cores, memory and time together, and for the credential
    assert convert["submit"]["request_cpus"] == "2" and int(convert["submit"]["request_memory"]) == 2 * 2000
    assert int(convert["submit"]["MY.MaxRuntime"]) >= 2 * 60 and convert["environment"]["KRB5CCNAME"]


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="upstream: snakemake-executor-plugin-htcondor 0.3 writes the workflow's envvars "
                   "in HTCondor's old environment syntax, where quotes are literal: jobs see GNNJEC_PYTHON in quotes "
                   "(profiles/htcondor/job.sh drops them)")
def test_jobs_get_the_workflows_environment_variables_as_they_are(lxbatch_run):
    _, records, _ = lxbatch_run
    assert [r["environment"]["GNNJEC_PYTHON"] for r in records] == [sys.executable] * len(records)


@pytest.mark.services
@pytest.mark.slow
def test_submissions_carry_sized_time_memory_and_no_gpu_for_cpu_training(lxbatch_run):
    _, records, output = lxbatch_run
    resolved = {jobid: (rule, resources) for rule, jobid, resources in listed_jobs(output)}
    for record in (r for r in records if rule_of(r) != "convert"):  # the group job: its own resources
        submit = record["submit"]
        rule, jobid = submit["batch_name"].rsplit("-", 1)
        planned_rule, resources = resolved[int(jobid)]
        assert planned_rule == rule
        assert int(submit["request_memory"]) == int(resources["mem_mb"]) > 0, rule
        # +MaxRuntime: the job's planned minutes (lxbatch then gives it the time class that holds them)
        assert int(submit["MY.MaxRuntime"]) == 60 * int(resources["runtime"]) <= 60 * FLAVOURS["nextweek"], rule
        # training.device: cpu asks for no GPU
        assert "request_gpus" not in submit or submit["request_gpus"] == "0", rule
        assert submit.get("use_x509userproxy", "False") == "False"  # no root:// input here


@pytest.mark.services
@pytest.mark.slow
def test_a_gpu_job_whose_torch_cannot_use_the_gpu_fails_within_seconds(tmp_path, home, lxbatch_run, tiny_data):
    """training.device auto in a GPU slot with this CPU-only torch: one line naming the cause, at once; the GPU
    request and the configured minimum capability are in the submission."""
    workdir = tiny_data(clone(tmp_path / "gnnjec"))  # the inputs, older than the clouds made from them
    shutil.copytree(lxbatch_run[0] / "results" / "clouds", workdir / "results" / "clouds")
    config = copy.deepcopy(TINY)  # device auto
    config["training"]["gpu_min_capability"] = 7.5
    config["training"]["grid"] = {"lr": [0.002]}
    write_config(workdir, config)
    (point,) = training_points(config["training"])
    proc = snakemake(workdir, home, "--profile", "htcondor", f"results/training/{point}/model.pt",
                     "--seconds-between-status-checks", "1", "--retries", "0", "--allowed-rules", "train",
                     fake=["--record", str(tmp_path / "submitted"), "--gpus", "1", "--gpu-capability", "8.0"])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    (record,) = submissions(tmp_path / "submitted")
    assert rule_of(record) == "train" and record["exit_code"] == 1  # the job's snakemake: its rule failed
    assert record["submit"]["request_gpus"] == "1" and record["submit"]["gpus_minimum_capability"] == "7.5"
    assert record["environment"]["CUDA_VISIBLE_DEVICES"] == "GPU-fake0"
    line = ("gnnjec train: error: config key training.device: this job was given GPU GPU-fake0 (_CONDOR_AssignedGPUs), "
            "but this torch")
    assert line in output and "set training.device: cpu to train on the CPU on purpose" in output
    # the log came back (the placeholders job.sh leaves), the placeholders did not stay
    assert not list((workdir / "results" / "training").rglob("*.pt"))
    log = next((workdir / "results" / "logs" / "train").glob("*.log")).read_text()
    assert log.count("\n") <= 3 and line in log, log
    # the job's time, from its start to its end in the event log
    events = (workdir / JOBDIR / "snakemake-rules.log").read_text()
    started, ended = (datetime.fromisoformat(re.search(rf"^{code} \(\d+\.000\.000\) (\S+ \S+)", events,
                                                       re.MULTILINE).group(1)) for code in ("001", "005"))
    assert (ended - started).total_seconds() <= 20, (started, ended)


@pytest.mark.services
@pytest.mark.slow
def test_a_training_cut_into_consecutive_jobs_ends_as_one_straight_run(tmp_path, home, lxbatch_run, tiny_run,
                                                                       tiny_data):
    """training.max_job_hours below a point's planned time: each point trains in two jobs of one epoch, the
    second going on from the first's state, which HTCondor file transfer carries between the sandboxes; the
    result is the straight run's (tiny_run), epoch by epoch and in the metrics."""
    workdir = tiny_data(clone(tmp_path / "gnnjec"))  # the inputs, older than the clouds made from them
    shutil.copytree(lxbatch_run[0] / "results" / "clouds", workdir / "results" / "clouds")
    config = copy.deepcopy(CONFIG)
    config["training"]["max_job_hours"] = 0.06  # 4 minutes: less than a point's planned 6
    write_config(workdir, config)
    proc = snakemake(workdir, home, "--profile", "htcondor", "results/evaluation/metrics.json",
                     "--seconds-between-status-checks", "1", "--allowed-rules", "train_rung", "select_model",
                     "export_onnx", "residual_correction", "evaluate", fake=["--record", str(tmp_path / "submitted")])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "each in 2 jobs of consecutive epochs (up to 1, 2; training.max_job_hours)" in output
    records = submissions(tmp_path / "submitted")
    legs = [r for r in records if rule_of(r) == "train_rung"]
    assert len(legs) == 4 and all(int(r["submit"]["MY.MaxRuntime"]) == 4 * 60 for r in legs)
    # the second leg of each point got the first's state by file transfer
    seconds = [r for r in legs if any(f.endswith("rung0/state.pt") for f in r["sandbox_files"])]
    assert len(seconds) == 2
    local = tiny_run[0] / "results"
    for history in (local / "training").glob("*/history.json"):
        here = json.loads(history.read_text())
        there = json.loads((workdir / "results/training" / history.parent.name / "rung1/history.json").read_text())
        assert epochs_without_timings(there) == epochs_without_timings(here), history.parent.name
    metrics = [json.loads(p.read_text()) for p in (workdir / "results/evaluation/metrics.json",
                                                   local / "evaluation/metrics.json")]
    for document in metrics:
        document.pop("provenance")  # its parameters and inputs name the legs' files
    assert metrics[0] == metrics[1]


@pytest.mark.services
@pytest.mark.slow
def test_a_grid_goes_on_past_a_failed_point_and_the_end_names_it(tmp_path, home, lxbatch_run, tiny_data):
    """keep-going: one point fails (its hyperparameters are impossible for the model), the other trains."""
    workdir = tiny_data(clone(tmp_path / "gnnjec"))  # the inputs, older than the clouds made from them
    shutil.copytree(lxbatch_run[0] / "results" / "clouds", workdir / "results" / "clouds")
    config = copy.deepcopy(CONFIG)
    config["training"]["grid"] = {"max_abs_target": [1.0, 1.0e-9]}  # the second masks every jet out
    write_config(workdir, config)
    proc = snakemake(workdir, home, "--profile", "htcondor", "--seconds-between-status-checks", "1", "--retries", "0",
                     "--until", "train", fake=["--record", str(tmp_path / "submitted")])
    output = proc.stdout + proc.stderr
    records = submissions(tmp_path / "submitted")
    assert proc.returncode != 0 and len(records) == 2
    failed = [r for r in records if r["exit_code"] != 0]
    points = training_points(config["training"])
    bad, good = sorted(points, key=lambda p: points[p]["max_abs_target"])
    assert len(failed) == 1 and [p.parent.name for p in (workdir / "results/training").glob("*/model.pt")] == [good]
    error = output[output.index("Error in rule train:"):]
    assert f"results/logs/train/{bad}.log" in error.split("Error in rule")[1] and "no jets to train on" in error


@pytest.mark.services
def test_without_a_kerberos_ticket_nothing_is_submitted(tmp_path, home, tiny_data):
    need_plugin()
    workdir = tiny_data(clone(tmp_path / "gnnjec"))
    write_config(workdir, CONFIG)
    proc = snakemake(workdir, home, "--profile", "htcondor", ONE_JOB,
                     fake=["--record", str(tmp_path / "submitted")],
                     env=user_env(home, KRB5CCNAME=f"FILE:{tmp_path / 'no-ticket'}"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not submissions(tmp_path / "submitted")
    assert f"Kerberos credential ({tmp_path / 'no-ticket'}): the credd did not take it" in output
    assert "run kinit" in output


@pytest.mark.services
def test_root_inputs_need_a_proxy_and_jobs_get_it(tmp_path, home):
    """A root:// sample: no proxy, one line and nothing submitted; with one, use_x509userproxy and the job's copy."""
    need_plugin()
    workdir = clone(tmp_path / "gnnjec")
    config = copy.deepcopy(CONFIG)
    url = "root://eosuser.cern.ch//eos/user/j/jdoe/pfnano_0.root"
    config["samples"] = {"remote": {"files": [url]}}
    write_config(workdir, config)
    target = ["results/clouds/remote/000.parquet", "--retries", "0", "--seconds-between-status-checks", "1"]
    missing = tmp_path / "x509up_missing"
    proc = snakemake(workdir, home, "--profile", "htcondor", *target, fake=["--record", str(tmp_path / "none")],
                     env=user_env(home, X509_USER_PROXY=str(missing)))
    assert proc.returncode != 0 and not submissions(tmp_path / "none")
    assert f"{url}: no X509 proxy at {missing} (X509_USER_PROXY); run voms-proxy-init --voms cms" in proc.stderr

    proxy = tmp_path / "x509up_u1000"
    proxy.write_text("-----BEGIN CERTIFICATE----- (a proxy)\n")
    # no network here: the job stops before reading (no Python on the worker); what it was sent is recorded
    proc = snakemake(workdir, home, "--profile", "htcondor", *target, fake=["--record", str(tmp_path / "sent")],
                     env=user_env(home, X509_USER_PROXY=str(proxy), GNNJEC_PYTHON="/nowhere/python"))
    (record,) = submissions(tmp_path / "sent")
    # a group of one job: Snakemake adds the jobs' True up to 1, which condor_submit reads as true
    assert rule_of(record) == "convert" and record["submit"]["use_x509userproxy"] in ("True", "1")
    assert record["environment"]["X509_USER_PROXY"] == f"{record['ran_in']}/x509up_u1000"
    assert "x509up_u1000" in record["sandbox_files"] and record["exit_code"] == 2
    assert f"jobs reading root:// inputs get the X509 proxy {proxy}" in proc.stdout + proc.stderr


@pytest.mark.services
def test_status_without_event_log_comes_from_the_schedd_and_history(tmp_path, home, tiny_data):
    need_plugin()
    workdir = tiny_data(clone(tmp_path / "gnnjec"))
    write_config(workdir, CONFIG)
    proc = snakemake(workdir, home, "--profile", "htcondor", "--seconds-between-status-checks", "1",
                     ONE_JOB,
                     fake=["--record", str(tmp_path / "submitted"), "--no-event-log"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Using batch fallback" in output and "was successful" in output
    assert (workdir / ONE_JOB).exists()


@pytest.mark.services
def test_a_job_without_its_software_fails_with_its_exit_code_and_is_retried_once(tmp_path, home, tiny_data):
    """GNNJEC_PYTHON not on the worker: job.sh says so in one line, exit status 2, read from history(); the
    profile's retries: 1."""
    need_plugin()
    workdir = tiny_data(clone(tmp_path / "gnnjec"))
    write_config(workdir, CONFIG)
    # a job of its own (a conversion is a group job, whose failure the plugin reports without its exit code); it
    # never gets to simulate anything
    target = "results/synthetic/standard_jec.json"
    proc = snakemake(workdir, home, "--profile", "htcondor", target, "--seconds-between-status-checks", "1",
                     fake=["--record", str(tmp_path / "submitted"), "--no-event-log"],
                     env=user_env(home, GNNJEC_PYTHON="/afs/cern.ch/nowhere/bin/python"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    records = submissions(tmp_path / "submitted")
    assert len(records) == 2 == yaml.safe_load((REPO / "profiles/htcondor/profile.yaml").read_text())["retries"] + 1
    for record in records:
        assert record["exit_code"] == 2
        assert f"Cluster ID {record['cluster']} completed but failed with ExitCode 2" in output
        err = (workdir / record["submit"]["error"].replace("$(ClusterId)", str(record["cluster"]))).read_text()
        assert "GNNJEC_PYTHON '/afs/cern.ch/nowhere/bin/python' is not an executable" in err
    assert not (workdir / target).exists()
