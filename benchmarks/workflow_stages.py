#!/usr/bin/env python3
"""Wall time and peak memory of every stage of a workflow run, with the machine that ran it.

    python benchmarks/workflow_stages.py                 # tabulate results/benchmarks of the last run
    python benchmarks/workflow_stages.py --run           # run the demo workflow from scratch first
    python benchmarks/workflow_stages.py --run --workdir /tmp/bench   (keeps ./results untouched)

Reads the benchmark files Snakemake writes for each job (``benchmark:`` in every rule).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]


def run_workflow(workdir: Path, cores: int) -> float:
    if workdir != REPO:
        (workdir / "config").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")
    shutil.rmtree(workdir / "results", ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                    "--directory", str(workdir), "--cores", str(cores), "--quiet", "all"], check=True, env=env)
    return time.perf_counter() - start


def table(bench_dir: Path) -> list[tuple[str, int, float, float, float]]:
    per_rule = defaultdict(list)
    for path in sorted(bench_dir.rglob("*.tsv")):
        rule = path.relative_to(bench_dir).parts[0].removesuffix(".tsv")
        with open(path) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        per_rule[rule].append((float(row["s"]), float(row["max_rss"])))
    rows = []
    for rule, values in per_rule.items():
        seconds = [v[0] for v in values]
        rows.append((rule, len(values), sum(seconds), max(seconds), max(v[1] for v in values)))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="store_true", help="run the demo workflow from scratch first")
    p.add_argument("--workdir", type=Path, default=REPO)
    p.add_argument("--cores", type=int, default=2)
    a = p.parse_args()
    wall = run_workflow(a.workdir.resolve(), a.cores) if a.run else None
    bench = a.workdir.resolve() / "results" / "benchmarks"
    if not bench.is_dir():
        print(f"{bench}: no benchmark files; run the workflow first (or pass --run)", file=sys.stderr)
        return 2
    print(f"machine: {describe(('torch',))}")
    print(f"{'rule':<18}{'jobs':>5}{'sum s':>9}{'max s':>9}{'max RSS MB':>12}")
    for rule, jobs, total, longest, rss in table(bench):
        print(f"{rule:<18}{jobs:>5}{total:>9.1f}{longest:>9.1f}{rss:>12.0f}")
    if wall is not None:
        print(f"workflow wall time with {a.cores} cores: {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
