"""What the rules read, computed once from a validated configuration: the input files, the training points
and their rungs, where each point's training ends, the exported families, and what the jobs ask of a batch
system. ``workflow/rules/common.smk`` builds one :class:`Plan`; the rules only look things up in it.
"""

from __future__ import annotations

import json
from typing import Callable

from . import spec
from .config import evaluation_samples, is_url, sample_files, training_points, training_samples
from .features import validate_inputs
from .hparams import DEFAULTS as HP_DEFAULTS
from .resources import Sizes, legs, too_long, training_plan
from .search import added_epochs, halving_plan, legs_plan

Promoted = Callable[[int], list]
"""``promoted(rung)``: the points that rung ``rung`` promoted (the workflow reads its checkpoint's output)."""


class Plan:
    def __init__(self, config: dict):
        """``config`` validated, with its defaults filled in (:func:`gnnjec.config.config_error`)."""
        training = config["training"]
        self.sample_files = sample_files(config)
        self.training_samples = training_samples(config)
        """The samples split into train, val and test."""
        self.evaluation_samples = evaluation_samples(config)
        """The samples only evaluated on, each apart and on all its jets (role evaluation)."""
        self.points = training_points(training)
        validate_inputs(config["features"])
        self.families = sorted({hp["model"] for hp in self.points.values()})
        """The families of the points: each one's best point is exported and evaluated."""
        self.sizes = Sizes(config, self.sample_files, self.points, self.training_samples)
        """Every job's wall time and memory, estimated from the config."""

        self.halving = training.get("halving")
        epochs = training["defaults"].get("epochs", HP_DEFAULTS["epochs"])
        n_legs = 1 if self.halving else legs(self.sizes)
        if self.halving:
            self.rungs = halving_plan(len(self.points), epochs, self.halving["eta"], self.halving["min_epochs"])
        elif n_legs > 1:  # a training longer than training.max_job_hours: jobs of consecutive epochs
            self.rungs = legs_plan(len(self.points), max(hp.get("epochs", epochs) for hp in self.points.values()),
                                   n_legs)
        else:  # every point trains to the end in one job
            self.rungs = []
        self.rung_epochs = added_epochs(self.rungs)
        """Per rung, the epochs its jobs add to a point's training."""

        processes = training["processes"]
        self.train_launcher = ("" if processes == 1 else
                               f"torchrun --standalone --nproc_per_node {processes} --no-python ")
        """What starts ``gnnjec train``: nothing, or torchrun for data-parallel processes (one GPU each)."""
        gpus = 0 if training["device"] == "cpu" else processes
        capability = training.get("gpu_min_capability") or (
            8.0 if gpus and any(hp.get("amp", HP_DEFAULTS["amp"]) for hp in self.points.values()) else None)
        self.gpu_resources = {"gpu": gpus, "request_gpus": gpus,
                              **({"gpus_minimum_capability": f"{capability:g}"} if gpus and capability else {})}
        """What a GPU job asks of the batch system: SLURM's --gpus, HTCondor's request_gpus and least compute
        capability (as configured, else 8.0 where a point trains in bfloat16; a string, which Snakemake does not
        round as it rounds numbers)."""
        self.urls = [path for files in self.sample_files.values() for path in files if is_url(path)]
        """Inputs read over XRootD: their jobs need the X509 proxy."""

    # --- convert
    def source(self, sample: str, index: str | int) -> str:
        return self.sample_files[sample][int(index)]

    def cloud_parts(self, sample: str | None = None) -> list[str]:
        """The converted files of the training samples (what merge_clouds splits), or of ``sample``."""
        samples = self.training_samples if sample is None else [sample]
        return [spec.CLOUD_PART.format(sample=name, index=spec.file_index(i))
                for name in samples for i in range(len(self.sample_files[name]))]

    def split_files(self) -> dict[str, str]:
        return {split: spec.clouds_split(split) for split in spec.SPLITS}

    # --- train
    def entrants(self, rung: int, promoted: Promoted) -> list[str]:
        """The points that train in ``rung``: all of them in rung 0 (and in every leg), then those the previous
        rung promoted."""
        if rung == 0 or not self.halving:
            return list(self.points)
        return promoted(rung - 1)

    def rung_previous(self, point: str, rung: int) -> dict[str, str]:
        """What a rung's job goes on from: the point's state at the end of the previous rung (and, with halving,
        the promotion that let it go on)."""
        if rung == 0:
            return {}
        previous = {"state": spec.RUNG_TRAINED.format(point=point, rung=rung - 1, name="state.pt")}
        if self.halving:
            previous["promotion"] = spec.PROMOTION.format(rung=rung - 1)
        return previous

    def trained(self, name: str, promoted: Promoted) -> dict[str, str]:
        """Per point, its ``name`` (model.pt, history.json) at the end of its training: the point's folder, or
        the folder of the last rung it reached."""
        if not self.rungs:
            return {point: spec.TRAINED.format(point=point, name=name) for point in self.points}
        reached = {}
        for rung in range(len(self.rungs)):
            for point in self.entrants(rung, promoted):
                reached[point] = rung
        return {point: spec.RUNG_TRAINED.format(point=point, rung=rung, name=name) for point, rung in reached.items()}

    def family_models(self, family: str, promoted: Promoted) -> dict[str, str]:
        """Per trained point of ``family``, its checkpoint."""
        return {p: m for p, m in self.trained("model.pt", promoted).items() if self.points[p]["model"] == family}

    def job_cost(self, rule: str, wildcards, threads: int = 1):
        """The time and memory a job of ``rule`` needs, estimated from the configuration (:mod:`gnnjec.resources`)."""
        sizes, w = self.sizes, wildcards
        if rule == "synthetic_jec":
            return sizes.synthetic_jec(threads)
        if rule == "synthetic_pfnano":
            return sizes.synthetic_pfnano(w.sample)
        if rule == "convert":  # memory flat in the file's size
            return sizes.convert(w.sample, int(w.index))
        if rule == "merge_clouds":
            return sizes.merge()
        if rule == "train":
            return sizes.train(w.point)
        if rule == "train_rung":  # the epochs this rung adds to the point's training
            return sizes.train(w.point, self.rung_epochs[int(w.rung)])
        if rule == "export_onnx":
            return sizes.export(w.family)
        if rule == "residual_correction":
            return sizes.residual(w.family, threads)
        if rule == "evaluate":
            return sizes.evaluate(self.families, threads)
        if rule == "evaluate_sample":
            return sizes.evaluate(self.families, threads, sample=w.sample)
        if rule == "plots":  # all test-split predictions in memory
            return sizes.plots(self.families)
        if rule == "sample_plots":
            return sizes.plots(self.families, sample=w.sample)
        raise ValueError(f"no job size for rule {rule!r}")

    def planning_lines(self) -> list[str]:
        """What planning says: the whole search's cost, and warnings for what would not fit a job."""
        lines = [f"gnnjec: {training_plan(self.sizes, self.rungs, halving=bool(self.halving))}"]
        jobs = {f"train {point}": max((self.sizes.train(point, epochs) for epochs in self.rung_epochs),
                                      key=lambda cost: cost.minutes, default=self.sizes.train(point))
                for point in self.points}
        lines += [f"gnnjec: warning: {line}" for line in too_long(jobs, self.sizes.max_minutes)]
        return lines

    # --- export, evaluate, serve
    def exported(self) -> dict[str, str]:
        return {family: spec.ONNX.format(family=family) for family in self.families}

    def evaluation_sample_pattern(self) -> str:
        """The ``{sample}`` wildcard's constraint in the evaluation samples' rules: their names (none: no name)."""
        import re

        return "|".join(map(re.escape, self.evaluation_samples)) or "(?!)"

    def sample_outputs(self, plots: bool = True) -> list[str]:
        """What the evaluation samples make: for each, its metrics, summary and table, and (``plots``) its plots'
        files (part of the default target and the report whenever the configuration has such a sample)."""
        out = []
        for sample in self.evaluation_samples:
            out += [pattern.format(sample=sample) for pattern in (spec.SAMPLE_METRICS, spec.SAMPLE_SUMMARY,
                                                                  spec.SAMPLE_METRICS_TABLE)]
            if plots:
                out += spec.plot_files(spec.SAMPLE_PLOTS, pattern=spec.SAMPLE_PLOT, sample=sample)
        return out

    def triton_models(self) -> list[str]:
        return [spec.TRITON_CONFIG.format(family=family) for family in self.families]


def json_arg(value) -> str:
    """A rule's parameter as canonical JSON: equal configurations give equal strings (and run nothing again)."""
    from .files import canonical_json

    return canonical_json(value)


def promoted_points(path) -> list[str]:
    """The points a promotion file (``promote``'s output) lets go on."""
    with open(path) as f:
        return json.load(f)["promoted"]
