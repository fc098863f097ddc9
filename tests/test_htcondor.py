"""profiles/htcondor through the real snakemake-executor-plugin-htcondor, with tests/fake_schedd.py as the pool.

No HTCondor daemon runs here: the fake takes the plugin's submit descriptions, runs the jobs on this machine and
reports them back through the job event log (or query()/history()); see its docstring for what it leaves out.
"""

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import need
from test_workflow import TINY, planned_jobs, write_config

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "htcondor"
FAKE = REPO / "tests" / "fake_schedd.py"
SNAKEFILE = REPO / "workflow" / "Snakefile"
JOBDIR = ".snakemake/htcondor"  # htcondor-jobdir in the profile

CONFIG = copy.deepcopy(TINY)
CONFIG["training"]["threads"] = 2  # so that request_cpus = threads is visible (the default is 1)


def profile() -> dict:
    return yaml.safe_load((PROFILE / "profile.yaml").read_text())


def need_plugin() -> None:
    missing = [m for m in ("snakemake_executor_plugin_htcondor", "htcondor2") if importlib.util.find_spec(m) is None]
    need(f"needs {', '.join(missing)} (pip install -e '.[test]')" if missing else None)


def run(workdir: Path, *args: str, fake: list[str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Snakemake with profiles/htcondor in workdir; through the fake schedd unless fake is None."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "CONDOR_CONFIG": os.devnull, "PWD": str(workdir)}  # as after `cd workdir` in a shell
    snakemake = ["--profile", str(PROFILE), "--snakefile", str(SNAKEFILE), "--directory", str(workdir), *args]
    command = ([sys.executable, "-m", "snakemake", *snakemake] if fake is None else
               [sys.executable, str(FAKE), *fake, "--", *snakemake])
    return subprocess.run(command, check=False, cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)


def submissions(record: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in record.glob("*.json")), key=lambda r: r["cluster"])


def rule_of(record: dict) -> str:
    return record["submit"]["batch_name"].rsplit("-", 1)[0]


def megabytes(value: str) -> int:
    """An HTCondor request_memory (bare number: MB; or with a K/M/G/T unit) in MB."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", str(value), re.IGNORECASE)
    assert m, f"cannot read request_memory {value!r}"
    return int(m.group(1)) * {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 ** 2}[m.group(2).upper()]


RULE = r"(?:local)?(?:rule|checkpoint) (\w+)\s*:"


def declared(resource: str) -> dict[str, str]:
    """{rule: value} for every rule in workflow/rules/*.smk whose resources set ``resource`` (the source text)."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(rf"^(?={RULE})", smk.read_text(), flags=re.MULTILINE):
            name = re.match(RULE, block)
            value = re.search(rf"^\s+{resource}\s*=\s*([^,#\n]+)", block, re.MULTILINE)
            if name and value:
                found[name.group(1)] = value.group(1).strip()
    return found


def declared_mem_mb() -> dict[str, int]:
    """{rule: mem_mb} for every rule that declares mem_mb (an integer literal)."""
    found = declared("mem_mb")
    for rule, value in found.items():
        assert value.isdigit(), f"rule {rule} has mem_mb={value}: teach this test to read it"
    return {rule: int(value) for rule, value in found.items()}


def job_resources(output: str) -> dict[int, tuple[str, dict[str, str]]]:
    """{jobid: (rule, resources)} from the main process's job listing (what Snakemake resolved for each job)."""
    jobs = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?(?:rule|checkpoint) \w+:)", output):
        rule = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):$", block, re.MULTILINE)
        jobid = re.search(r"^\s+jobid: (\d+)$", block, re.MULTILINE)
        resources = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
        if rule and jobid and resources:
            pairs = (kv.split("=", 1) for kv in resources.group(1).split(", ") if "=" in kv)
            jobs[int(jobid.group(1))] = (rule.group(1), dict(pairs))
    return jobs


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    need_plugin()
    workdir = tmp_path_factory.mktemp("htcondor-dry")
    write_config(workdir, CONFIG)
    proc = run(workdir, "--dry-run")
    return planned_jobs(proc), proc


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    """The tiny workflow, start to finish, every job through the plugin and the fake pool (2 slots)."""
    need_plugin()
    workdir = tmp_path_factory.mktemp("htcondor")
    write_config(workdir, CONFIG)
    record = workdir / "submitted"
    proc = run(workdir, "--jobs", "2", "--seconds-between-status-checks", "1",
               fake=["--record", str(record), "--slots", "2"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return workdir, submissions(record), output


def test_dry_run_lists_every_job(plan):
    jobs, proc = plan
    assert jobs == {"synthetic_jec": 1, "synthetic_pfnano": 2, "convert": 2, "merge_clouds": 1, "train": 2,
                    "select_model": 1, "export_onnx": 1, "triton_model": 1, "evaluate": 1, "plots": 1, "training_plots": 1,
                    "all": 1}
    # the profile's HTCondor resources reach the jobs
    resources = {rule: res for rule, res in job_resources(proc.stdout + proc.stderr).values()}
    assert {k: resources["train"].get(k) for k in ("request_memory", "request_gpus", "classad_JobFlavour")} == {
        "request_memory": "8000", "request_gpus": "1", "classad_JobFlavour": "tomorrow"}
    assert resources["convert"]["request_memory"] == "2000" and "request_gpus" not in resources["convert"]


def test_whole_workflow_runs_through_the_plugin(pool_run, plan):
    workdir, records, output = pool_run
    results = workdir / "results"
    for path in ("export/pfn/model.onnx", "export/pfn/onnx_check.json", "evaluation/metrics.json",
                 "evaluation/summary.txt", "training/best.json", "plots/resolution.png"):
        assert (results / path).stat().st_size > 0, path
    assert len(list((results / "training").glob("pfn-*/model.pt"))) == 2
    # one HTCondor job per planned job but `all` (no shell: run by the main process), each once, each fine
    expected = {rule: n for rule, n in plan[0].items() if rule != "all"}
    assert {rule: sum(rule_of(r) == rule for r in records) for rule in expected} == expected
    assert len(records) == sum(expected.values())
    assert all(r["status"] == 4 and r["exit_code"] == 0 for r in records)
    # status came from the job event log, not the schedd/history fallback
    assert (workdir / JOBDIR / "snakemake-rules.log").stat().st_size > 0
    assert "Using batch fallback" not in output
    total = sum(plan[0].values())
    assert f"{total} of {total} steps (100%) done" in output


def by_rule(records: list[dict], rule: str) -> list[dict]:
    found = [r for r in records if rule_of(r) == rule]
    assert found, f"no {rule} job was submitted"
    return found


def check_common(record: dict, rule: str, workdir: Path) -> None:
    submit = record["submit"]
    # the submitting interpreter, by absolute path, running `snakemake` for this one job of this workflow
    assert submit["executable"] == sys.executable and os.path.isabs(submit["executable"])
    args = submit["arguments"].split()
    assert args[:2] == ["-m", "snakemake"]
    assert args[args.index("--snakefile") + 1] == str(SNAKEFILE)
    assert args[args.index("--allowed-rules") + 1] == rule
    assert args[args.index("--target-jobs") + 1].startswith(f"{rule}:")
    assert args[args.index("--mode") + 1] == "remote"
    # HTCondor files in the profile's jobdir, relative to the submit directory (the working directory)
    assert submit["log"] == f"{JOBDIR}/snakemake-rules.log"
    for stream, suffix in (("output", "out"), ("error", "err")):
        assert re.fullmatch(rf"{JOBDIR}/{rule}/{rule}-\d+_\$\(ClusterId\)\.{suffix}", submit[stream]), submit[stream]
        assert (workdir / submit[stream].replace("$(ClusterId)", str(record["cluster"]))).exists()
    # shared filesystem: nothing transferred, the job ran in the submit directory with the submitter's environment
    assert "should_transfer_files" not in submit and "transfer_input_files" not in submit
    assert Path(record["iwd"]).resolve() == Path(record["ran_in"]).resolve() == workdir.resolve()
    assert submit["getenv"].lower() == "true"
    assert submit["request_disk"].upper().endswith("GB")


def test_training_job_asks_for_a_gpu_its_memory_and_its_threads(pool_run):
    workdir, records, _ = pool_run
    for record in by_rule(records, "train"):
        check_common(record, "train", workdir)
        submit = record["submit"]
        assert submit["request_gpus"] == "1"
        assert megabytes(submit["request_memory"]) == 8000
        assert submit["request_cpus"] == str(CONFIG["training"]["threads"]) == "2"
        assert submit["MY.JobFlavour"] == '"tomorrow"'


def test_conversion_job_asks_for_no_gpu_2000_mb_one_core(pool_run):
    workdir, records, _ = pool_run
    for record in by_rule(records, "convert"):
        check_common(record, "convert", workdir)
        submit = record["submit"]
        assert not any("gpu" in key.lower() for key in submit)
        assert megabytes(submit["request_memory"]) == 2000
        assert submit["request_cpus"] == "1"
        assert submit["MY.JobFlavour"] == '"longlunch"'


def test_no_other_job_asks_for_a_gpu(pool_run):
    _, records, _ = pool_run
    assert {rule_of(r) for r in records if "request_gpus" in r["submit"]} == {"train"}


def test_profile_request_memory_equals_each_rules_mem_mb():
    declared = declared_mem_mb()
    assert {"convert", "merge_clouds", "train", "export_onnx", "evaluate", "synthetic_jec",
            "synthetic_pfnano"} <= set(declared)
    per_rule = profile()["set-resources"]
    for rule, mem_mb in declared.items():
        assert megabytes(per_rule.get(rule, {}).get("request_memory", "0")) == mem_mb, (
            f"profiles/htcondor: set request_memory: {mem_mb} for rule {rule} (its mem_mb)")
    # the rules without mem_mb get the profile's default, and no rule sets one where none is declared
    assert megabytes(profile()["default-resources"]["request_memory"]) > 0
    assert not {r for r, res in per_rule.items() if "request_memory" in res} - set(declared)


def test_every_rule_has_a_job_flavour():
    """A rule missing from set-resources would get lxbatch's default flavour (espresso: 20 minutes)."""
    sources = [REPO / "workflow" / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    rules = {m.group(1) for path in sources for m in re.finditer(rf"^{RULE}", path.read_text(), re.MULTILINE)}
    assert {"convert", "train", "evaluate"} <= rules
    # rules run by Snakemake itself on the submit node (the report) are never jobs
    local = {name for path in sources for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", path.read_text(), re.M)
             for name in re.findall(r"\w+", block)}
    assert local == {"report_config", "thesis_plots"}
    per_rule = profile()["set-resources"]
    assert {rule for rule in rules - {"all"} - local if "classad_JobFlavour" not in per_rule.get(rule, {})} == set()
    assert set(per_rule) <= rules, "profiles/htcondor sets resources for rules the workflow no longer has"


def test_gpus_are_asked_for_exactly_by_the_rules_that_use_them():
    """Rules with a `gpu` resource (the SLURM plugin's name) declare request_gpus with the same value
    (one per training process, none for training.device cpu); the profile fixes no GPU count."""
    gpu_rules = declared("gpu")
    assert {"train", "train_rung"} <= set(gpu_rules)
    assert declared("request_gpus") == gpu_rules
    assert not any("request_gpus" in res for res in profile()["set-resources"].values())
    assert "request_gpus" not in profile()["default-resources"]


def test_submitted_request_memory_equals_the_jobs_mem_mb(pool_run):
    """What reached the schedd against what Snakemake resolved as mem_mb for the same job."""
    _, records, output = pool_run
    resolved = job_resources(output)
    declared = declared_mem_mb()
    default = megabytes(profile()["default-resources"]["request_memory"])
    for record in records:
        rule, jobid = record["submit"]["batch_name"].rsplit("-", 1)
        submitted = megabytes(record["submit"]["request_memory"])
        if rule in declared:
            assert resolved[int(jobid)][0] == rule
            assert submitted == int(resolved[int(jobid)][1]["mem_mb"]) == declared[rule], rule
        else:
            assert submitted == default, rule


def test_status_without_event_log_comes_from_the_schedd_and_history(tmp_path):
    need_plugin()
    write_config(tmp_path, CONFIG)
    proc = run(tmp_path, "--seconds-between-status-checks", "1", "results/synthetic/standard_jec.json",
               fake=["--record", str(tmp_path / "submitted"), "--no-event-log"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Using batch fallback" in output and "was successful" in output
    assert (tmp_path / "results" / "synthetic" / "standard_jec.json").exists()


def test_failed_job_reports_its_exit_code_and_is_retried_once(tmp_path):
    """getenv=false: the job gets only `environment`, here a PATH with nothing on it, and fails; the plugin's
    fallback reads the ExitCode from history(). (A --set-resources on the command line replaces the profile's.)"""
    need_plugin()
    write_config(tmp_path, CONFIG)
    proc = run(tmp_path, "results/synthetic/standard_jec.json", "--seconds-between-status-checks", "1",
               "--set-resources", "synthetic_jec:getenv=false", "synthetic_jec:environment=PATH=/nonexistent",
               fake=["--record", str(tmp_path / "submitted"), "--no-event-log"])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    records = submissions(tmp_path / "submitted")
    assert len(records) == 2 == profile()["retries"] + 1  # the profile's retries: 1
    for record in records:
        assert record["submit"]["getenv"].lower() == "false"
        assert record["exit_code"] not in (None, 0)
        assert f"Cluster ID {record['cluster']} completed but failed with ExitCode {record['exit_code']}" in output
        assert "PATH" in record["environment_names"] and "HOME" not in record["environment_names"]
    assert "Using batch fallback" in output
    assert not (tmp_path / "results" / "synthetic" / "standard_jec.json").exists()


def test_jobs_must_start_in_the_submit_directory(tmp_path):
    """Plugin 0.3.0 passes no --directory to a job when the filesystem is shared, and its executable is the
    submitting interpreter: a job that starts in a sandbox (a pool that transfers files, as lxbatch may) runs a
    copy of that interpreter away from its environment, in a directory without config/. See docs/htcondor.md."""
    need_plugin()
    write_config(tmp_path, CONFIG)
    proc = run(tmp_path, "results/synthetic/standard_jec.json", "--seconds-between-status-checks", "1",
               "--retries", "0", fake=["--record", str(tmp_path / "submitted"), "--execute-in", "scratch"])
    assert proc.returncode != 0
    (record,) = submissions(tmp_path / "submitted")
    assert "--directory" not in record["submit"]["arguments"] and record["ran_in"] != str(tmp_path)
    err = (tmp_path / record["submit"]["error"].replace("$(ClusterId)", str(record["cluster"]))).read_text()
    assert "No module named snakemake" in err or "config/config.yaml but it is not present" in err, err[-2000:]




def test_a_job_wrapper_runs_sandboxed_jobs_in_the_working_directory(tmp_path):
    """The workaround of docs/htcondor.md: job_wrapper + GNNJEC_WORKDIR=$PWD in the environment."""
    need_plugin()
    write_config(tmp_path, CONFIG)
    shutil.copy(REPO / "profiles" / "htcondor" / "in-workdir.sh", tmp_path / "in-workdir.sh")  # the shipped one
    defaults = [f"{k}={v}" for k, v in profile()["default-resources"].items()]
    proc = run(tmp_path, "results/synthetic/standard_jec.json", "--seconds-between-status-checks", "1",
               "--retries", "0", "--default-resources", *defaults, "job_wrapper=in-workdir.sh",
               "environment=GNNJEC_WORKDIR=$PWD",
               fake=["--record", str(tmp_path / "submitted"), "--execute-in", "scratch"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (record,) = submissions(tmp_path / "submitted")
    assert record["submit"]["executable"] == "in-workdir.sh"
    assert record["submit"]["environment"] == f"GNNJEC_WORKDIR={tmp_path}"
    assert record["argv"][1:4] == [sys.executable, "-m", "snakemake"] and record["ran_in"] != str(tmp_path)
    assert (tmp_path / "results" / "synthetic" / "standard_jec.json").exists()
