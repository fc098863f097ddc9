"""Running the workflow in a work directory: its configuration, Snakemake's command line, and what a run or a
dry run listed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
"""The tests' configuration (the snakemake-workflows template's place for it): tiny, runs in minutes."""

TINY = yaml.safe_load(TEST_CONFIG.read_text())
"""TEST_CONFIG as loaded; a test that changes it changes a copy (copy.deepcopy)."""

TINY_FILES = TINY["samples"]["tiny"]["files"]
"""TINY's input files, relative to the work directory."""


def write_tiny_files(folder: Path) -> None:
    """TINY_FILES under ``folder``: 1500 toy events each (seed 3, the file's index), with a standard correction
    derived on 4000 toy events of its own (seed 1)."""
    from gnnjec import demo

    from support import toy

    correction = demo.derive_standard_correction(seed=1, n_events=4000, generator=toy)
    for index, name in enumerate(TINY_FILES):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        demo.write_pfnano(folder / name, n_events=1500, seed=3, file_index=index, correction=correction,
                          generator=toy)


EVALUATION_FILES = ["data/tiny_eval/000.root"]
"""An evaluation-only sample's file (role evaluation), relative to the work directory: 600 toy events of another
seed (4) and file index 10, so that their (run, luminosityBlock, event) are none of TINY_FILES'."""


def with_evaluation_sample(config: dict, files=EVALUATION_FILES) -> dict:
    """A copy of ``config`` with the evaluation-only sample ``tiny_eval`` of ``files``."""
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["samples"]["tiny_eval"] = {"role": "evaluation", "files": list(files)}
    return changed


def write_evaluation_files(folder: Path, names=EVALUATION_FILES, first_index: int = 10) -> None:
    """EVALUATION_FILES (or ``names``, file indices from ``first_index``: events of their own) under ``folder``, with
    TINY_FILES' standard correction (seed 1, 4000 toy events)."""
    from gnnjec import demo

    from support import toy

    correction = demo.derive_standard_correction(seed=1, n_events=4000, generator=toy)
    for index, name in enumerate(names, start=first_index):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        demo.write_pfnano(folder / name, n_events=600, seed=4, file_index=index, correction=correction,
                          generator=toy)


def snakemake_command(workdir: Path, *args: str) -> tuple[list[str], dict]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
            "--directory", str(workdir), "--cores", "2", *args], env


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command, env = snakemake_command(workdir, *args)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table ({} when there is nothing to do)."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


# a job in Snakemake's listing: "rule NAME:" (indented inside a group job), its fields, among them "resources:"
LISTED_JOB = (r"^ *(?:local)?(?:rule|checkpoint) (\w+):\n"
              r"((?:(?! *(?:local)?(?:rule|checkpoint) ).*\n)*? +resources: .*)$")


def listed_jobs(output: str) -> list[tuple[str, int, dict[str, str]]]:
    """(rule, jobid, resources) of every job Snakemake listed (a dry run or a run), group members included."""
    jobs = []
    for rule, fields in re.findall(LISTED_JOB, output, re.MULTILINE):
        jobid = int(re.search(r"^ +jobid: (\d+)$", fields, re.MULTILINE).group(1))
        listed = re.search(r"^ +resources: (.*)$", fields, re.MULTILINE).group(1)
        jobs.append((rule, jobid, dict(kv.split("=", 1) for kv in re.split(r", (?=\w+=)", listed) if "=" in kv)))
    return jobs
