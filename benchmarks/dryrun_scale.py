#!/usr/bin/env python3
"""How long Snakemake takes to plan a large run: a dry run over many input files and grid points.

    python benchmarks/dryrun_scale.py                       # 1000 files x 100 points (goal: under 10 s)
    python benchmarks/dryrun_scale.py --files 5000 --points 400

Makes empty stand-in PFNano files (a dry run opens none) and a configuration naming them with a
glob, then times ``snakemake -n`` for the full grid, and for a random search of as many points
with successive halving; prints the planned job counts and the wall time of each (best of
``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from machine import describe

REPO = Path(__file__).resolve().parents[1]


def dry_run(workdir: Path) -> tuple[float, dict[str, int]]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "--directory", str(workdir), "--cores", "2", "--dry-run", "--quiet", "rules"],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    text = proc.stdout + proc.stderr
    return seconds, {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", text, re.M)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    print(f"machine: {describe()}")
    side = max(1, round(a.points ** 0.5))
    lrs = [round(1e-4 * 1.5**i, 8) for i in range(side)]
    dropouts = [round(0.3 * i / max(a.points // side - 1, 1), 4) for i in range(a.points // side)]
    with tempfile.TemporaryDirectory(prefix="gnnjec-dryrun-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        for i in range(a.files):
            (data / f"nano_{i:05d}.root").touch()
        base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        base["samples"] = {"qcd": {"files": [str(data / "*.root")]}}
        configs = {
            "grid": {**base, "training": {**base["training"], "grid": {"lr": lrs, "dropout": dropouts}}},
            "random + halving": {**base, "training": {
                **{k: v for k, v in base["training"].items() if k != "grid"},
                "random": {"points": a.points, "space": {"lr": {"log_uniform": [1e-4, 1e-2]},
                                                         "dropout": {"uniform": [0.0, 0.3]}}},
                "halving": {"eta": 3}}},
        }
        print(f"{a.files} input files; {'method':<17}{'best s':>8}  planned jobs")
        for method, config in configs.items():
            workdir = tmp / method.replace(" ", "")
            (workdir / "config").mkdir(parents=True)
            (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
            runs = [dry_run(workdir) for _ in range(a.repeat)]
            jobs = runs[0][1]
            counts = ", ".join(f"{k} {v}" for k, v in jobs.items() if k not in ("total", "all"))
            print(f"{'':>{len(str(a.files)) + 13}}{method:<17}{min(s for s, _ in runs):>8.1f}  {counts}")


if __name__ == "__main__":
    main()
