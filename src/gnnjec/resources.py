"""What each job of the workflow costs, estimated from the configuration: wall time and memory, as the batch
systems take them (SLURM ``-t`` and ``--mem``; HTCondor ``+MaxRuntime`` and ``request_memory``).

The rules ask here (workflow/rules/common.smk builds one :class:`Sizes` per run), so that a 14-million-jet
configuration plans jobs that fit their limits and the demo plans short ones. The rates are conservative
figures from this workflow's own measurements (README, Performance): a job is planned for ``SAFETY`` times the
work at those rates, plus a fixed start-up, rounded up to whole minutes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .hparams import DEFAULTS
from .search import added_epochs

SAFETY = 1.5  # a slower node, a busy filesystem, the vertex cloud the rates were measured without

# lxbatch's wall-time classes (minutes), shortest first; +MaxRuntime (seconds) may be anything up to the longest
FLAVOURS = {"espresso": 20, "microcentury": 60, "longlunch": 120, "workday": 480, "tomorrow": 1440,
            "testmatch": 4320, "nextweek": 10080}
LONGEST = max(FLAVOURS.values())

JETS_PER_EVENT = 4.0  # matched jets per simulated QCD event (the demo gives about 3.8)
GENERATED_PER_S = 25.0  # demo events (Pythia 8 and the detector) per second and process (make demo: 36-40)
GENERATION_MB = 3000  # memory per generating process (make demo: 2.3-2.5 GB peak)
FILE_BYTES_PER_JET = 2000  # a real PFNano file's size per matched jet, for jet counts of files not yet read
CONVERT_MB_PER_S = {"local": 20.0, "xrootd": 8.0}  # measured 80 MB/s (benchmarks/convert_throughput.py)
CONVERT_JETS_PER_S = 30_000.0  # measured 124 k jets/s: synthetic files, whose size is not known at planning
UNKNOWN_FILE_BYTES = 4e9  # a root:// file's size, unknown at planning

# training, jets/s of one process: a GPU at a third of an H100's measured speed (lxbatch's T4, V100, A100 are
# slower than an H100); the CPU at the speed measured on 2 cores. The jet-level dnn is not measured on a GPU: it
# is taken as pfn-lite there (both wait for their batches more than they compute)
TRAIN_PER_S = {"cuda": {"pfn": 23_000, "pfn-lite": 29_000, "particlenet": 1_900, "particlenet-lite": 7_700,
                        "dnn": 29_000},
               "cpu": {"pfn": 9_600, "pfn-lite": 59_000, "particlenet": 15, "particlenet-lite": 226, "dnn": 80_000}}
# inference, jets/s: the training's validation (torch; a GPU at a third of an H100), and ONNX Runtime on 2 CPU
# threads at batch 1024 (the evaluate job, the export's check)
VALIDATE_PER_S = {"cuda": {"pfn": 160_000, "pfn-lite": 130_000, "particlenet": 9_300, "particlenet-lite": 25_000,
                           "dnn": 130_000},
                  "cpu": {"pfn": 26_000, "pfn-lite": 292_000, "particlenet": 59, "particlenet-lite": 1_000,
                          "dnn": 290_000}}
INFER_PER_S = {"pfn": 48_000, "pfn-lite": 85_000, "particlenet": 129, "particlenet-lite": 1_200, "dnn": 210_000}


@dataclass(frozen=True)
class Cost:
    """One job's estimate: wall time (minutes), memory (MB), and how the time was reckoned."""

    minutes: int
    mem_mb: int
    how: str


def planned(seconds: float, start_minutes: float, mem_mb: int, how: str) -> Cost:
    return Cost(math.ceil(start_minutes + SAFETY * seconds / 60), int(mem_mb), how)


def step_megabytes(step_size) -> float:
    """convert.step_size ("50 MB", or a number of events) in MB (events: 3 kB each)."""
    text = str(step_size).strip().upper()
    for unit, factor in (("GB", 1000.0), ("MB", 1.0), ("KB", 1e-3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text) * 3e-3


class Sizes:
    """Every job's cost for one configuration (validated, with the schema's defaults filled in)."""

    def __init__(self, config: dict, sample_files: dict[str, list[str]], points: dict[str, dict],
                 training_samples: list[str] | None = None):
        """``training_samples``: the samples split into train, val and test (None: all of them); the others are
        evaluated on apart."""
        self.config, self.sample_files, self.points = config, sample_files, points
        jets = sum(self.sample_jets(sample) for sample in (sample_files if training_samples is None
                                                           else training_samples))
        split = config["split"]
        self.jets = {"train": jets * split["train"], "val": jets * split["val"],
                     "test": jets * (1 - split["train"] - split["val"])}
        self.device = "cpu" if config["training"]["device"] == "cpu" else "cuda"
        # the longest any job is asked for: the longest time class, or less (training.max_job_hours)
        self.max_minutes = min(LONGEST, round(60 * config["training"].get("max_job_hours", LONGEST / 60)))

    # --- the data
    def file_jets(self, sample: str, index: int) -> float:
        spec = self.config["samples"][sample]
        if "synthetic" in spec:
            return spec["synthetic"]["events_per_file"] * JETS_PER_EVENT
        return self.file_bytes(self.sample_files[sample][index]) / FILE_BYTES_PER_JET

    def sample_jets(self, sample: str) -> float:
        return sum(self.file_jets(sample, i) for i in range(len(self.sample_files[sample])))

    @staticmethod
    def file_bytes(path: str) -> float:
        try:
            return float(os.path.getsize(path))
        except OSError:  # a URL, or a file that is not there yet
            return UNKNOWN_FILE_BYTES

    # --- the jobs
    def synthetic_jec(self, threads: int) -> Cost:
        events = self.config["synthetic_jec"]["events"]
        rate = GENERATED_PER_S * threads
        return planned(events / rate, 3, GENERATION_MB * threads,
                       f"{events} Pythia events at {rate:g}/s")

    def synthetic_pfnano(self, sample: str) -> Cost:
        events = self.config["samples"][sample]["synthetic"]["events_per_file"]
        rate = GENERATED_PER_S
        return planned(events / rate, 3, GENERATION_MB + 1000, f"{events} Pythia events "
                       f"at {rate:g}/s")

    def convert(self, sample: str, index: int) -> Cost:
        path = self.sample_files[sample][index]
        mem = max(2000, 1000 + 6 * step_megabytes(self.config["convert"]["step_size"]))  # about 3 chunks
        if "synthetic" in self.config["samples"][sample]:
            jets = self.file_jets(sample, index)
            return planned(jets / CONVERT_JETS_PER_S, 2, mem, f"{jets:.3g} jets at {CONVERT_JETS_PER_S:g}/s")
        where = "xrootd" if "://" in path else "local"
        megabytes = self.file_bytes(path) / 1e6
        return planned(megabytes / CONVERT_MB_PER_S[where], 2, mem,
                       f"{megabytes:.0f} MB at {CONVERT_MB_PER_S[where]:g} MB/s ({where})")

    def merge(self) -> Cost:
        jets = sum(self.jets.values())
        return planned(jets / (4 * CONVERT_JETS_PER_S), 2, 4000, f"{jets:.3g} jets rewritten")

    def train(self, point: str, epochs: int | None = None) -> Cost:
        """One training job of ``point``: all its epochs, or ``epochs`` of them (a halving rung's share)."""
        hp = {**DEFAULTS, **self.points[point]}
        epochs = hp["epochs"] if epochs is None else epochs
        processes = self.config["training"]["processes"]
        # processes share the jets (DDP: 90 % each); on the CPU the measured rate is for 2 threads
        scale = processes * 0.9 if processes > 1 else 1.0
        if self.device == "cpu":
            scale *= self.config["training"]["threads"] / 2
        rate = TRAIN_PER_S[self.device][hp["model"]] * scale
        val_rate = VALIDATE_PER_S[self.device][hp["model"]] * scale
        seconds = epochs * (self.jets["train"] / rate + self.jets["val"] / val_rate)
        mem = 8000  # a window of 500 k jets and its batches
        return planned(seconds, 5, mem, f"{epochs} epochs x {self.jets['train']:.3g} jets at {rate:.3g}/s "
                       f"({hp['model']}, {self.device})")

    def export(self, family: str) -> Cost:
        jets = self.config["export"]["check_jets"]
        return planned(jets / INFER_PER_S[family] * 4, 3, 4000, f"{jets} jets checked")

    def residual(self, family: str, threads: int) -> Cost:
        """The network on the validation jets, twice (derivation, and the graft's check)."""
        jets = self.jets["val"]
        mem = max(4000, int(2000 + jets * 40 * 8 / 1e6))
        return planned(2 * jets / (INFER_PER_S[family] * threads / 2), 3, mem, f"{jets:.3g} validation jets")

    def evaluate(self, families: list[str], threads: int, sample: str | None = None) -> Cost:
        """The test split's evaluation, or with ``sample`` that evaluation sample's (all its jets)."""
        jets = self.jets["test"] if sample is None else self.sample_jets(sample)
        seconds = sum(jets / (INFER_PER_S[f] * threads / 2) for f in families)
        bootstrap = self.config["evaluation"]["n_bootstrap"] * jets * (len(families) + 1) / 2e6
        # predictions of every family and the test jets' columns in memory
        mem = max(8000, int(2000 + jets * (len(families) + 2) * 8 * 40 / 1e6))
        return planned(seconds + bootstrap, 3, mem, f"{jets:.3g} {'test' if sample is None else sample} jets x "
                       f"{len(families)} families")

    def plots(self, families: list[str], sample: str | None = None) -> Cost:
        jets = self.jets["test"] if sample is None else self.sample_jets(sample)
        return planned(jets * (len(families) + 1) / 1e5, 5, max(4000, int(2000 + jets * 400 / 1e6)),
                       f"{jets:.3g} {'test' if sample is None else sample} jets")


def job_resources(cost_of, limit: int = LONGEST) -> dict:
    """A rule's resources from ``cost_of(wildcards, threads) -> Cost``: mem_mb and runtime (Snakemake's, read by
    SLURM), and HTCondor's request_memory and +MaxRuntime (seconds: lxbatch's limit, which sets the job's time
    class; a number, which Snakemake adds up for a group of jobs, where a +JobFlavour string would have to be the
    same for all). Memory grows with each attempt (a job held or killed for its memory is retried with more); the
    runtime stops at ``limit`` minutes (see :func:`too_long`)."""

    def mem_mb(wildcards, threads=1, attempt=1):
        return cost_of(wildcards, threads).mem_mb * attempt

    def runtime(wildcards, threads=1):
        return min(cost_of(wildcards, threads).minutes, limit)

    def max_runtime(wildcards, threads=1):
        return 60 * runtime(wildcards, threads)

    return {"mem_mb": mem_mb, "request_memory": mem_mb, "runtime": runtime, "classad_MaxRuntime": max_runtime}


def legs(sizes: Sizes) -> int:
    """Into how many jobs of consecutive epochs the longest point's training must be cut so that each holds
    within the longest a job may run (1: none)."""
    longest = max(sizes.train(point).minutes for point in sizes.points)
    return max(1, math.ceil(longest / sizes.max_minutes))


def too_long(costs: dict[str, Cost], limit: int = LONGEST) -> list[str]:
    """A line for each job planned for longer than ``limit`` minutes (the longest time class, lxbatch's
    nextweek, or training.max_job_hours), which the batch system would stop before its end."""
    return [f"job {job}: planned for {cost.minutes / 1440:.1f} days ({cost.how}), longer than a job may run "
            f"({limit / 1440:.3g} days: training.max_job_hours, at most lxbatch's nextweek); train on more GPUs "
            "(training.processes), fewer epochs or jets, or a smaller model"
            for job, cost in costs.items() if cost.minutes > limit]


def training_plan(sizes: Sizes, halving_plan: list[dict], halving: bool = True) -> str:
    """One line for the planning run: the training jobs, epochs and time of the whole search (every rung of
    successive halving, whose later rungs' points are decided only as it runs; or every leg of a training cut
    into jobs that fit the time limit, ``halving`` False)."""
    points = list(sizes.points)
    gpus = sizes.config["training"]["processes"] if sizes.device == "cuda" else 0
    if not halving_plan:
        epochs = sum({**DEFAULTS, **sizes.points[p]}["epochs"] for p in points)
        minutes = sum(sizes.train(p).minutes for p in points)
        jobs, shape = len(points), f"{len(points)} points to the end"
    else:
        # which points go on is decided as the search runs: each rung's jobs at the points' average cost
        added = added_epochs(halving_plan)
        epochs = sum(rung["points"] * n for rung, n in zip(halving_plan, added))
        minutes = sum(rung["points"] * sum(sizes.train(p, n).minutes for p in points) / len(points)
                      for rung, n in zip(halving_plan, added))
        jobs = sum(rung["points"] for rung in halving_plan)
        grid = len(points) * halving_plan[-1]["epochs"]
        if halving:
            shape = "successive halving, " + ", ".join(
                f"rung {r}: {rung['points']} x {rung['epochs']} epochs" for r, rung in enumerate(halving_plan)) + (
                f" ({epochs} epochs of the grid's {grid})")
        else:
            shape = (f"{len(points)} points to the end, each in {len(halving_plan)} jobs of consecutive epochs (up to "
                     + ", ".join(str(rung["epochs"]) for rung in halving_plan) + "; training.max_job_hours)")
    where = f"{gpus} GPU{'s' if gpus != 1 else ''} each" if gpus else "on the CPU"
    return (f"training plan: {shape}; {jobs} jobs, {epochs} epochs, {minutes / 60:.3g} job-hours planned "
            f"({where}, at most {max(sizes.train(p).minutes for p in points) / 60:.3g} h for one point)")
