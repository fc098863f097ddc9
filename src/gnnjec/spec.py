"""The workflow's facts, each written once, without torch: what the rules, the schema, the command line,
the plots and the benchmarks read.

* the model families and their presets (the thesis's sizes);
* the names of the plots;
* the results layout: where each stage writes, as patterns with Snakemake's ``{wildcards}``;
* the stages of the command line, named as their rules (``merge_clouds`` is ``gnnjec merge-clouds``).

The configuration's defaults are the schema's (``workflow/schemas/config.schema.yaml``, read by
:mod:`gnnjec.config`); the hyperparameters' are :data:`gnnjec.hparams.DEFAULTS`.
"""

from __future__ import annotations

# --- model families -------------------------------------------------------------------------------------------

PRESETS = {
    "pfn": {"architecture": "pfn", "phi_sizes": [64, 128, 256], "head_sizes": [1024, 512, 256, 128, 64]},
    "pfn-lite": {"architecture": "pfn", "phi_sizes": [16, 32, 64], "head_sizes": [128, 64, 32, 16, 8]},
    "particlenet": {"architecture": "particlenet", "k": 16, "coordinates": ["deta", "dphi"],
                    "edge_channels": [[64, 64, 64], [128, 128, 128], [256, 256, 256]],
                    "head_sizes": [512, 256, 128, 64]},
    "particlenet-lite": {"architecture": "particlenet", "k": 16, "coordinates": ["deta", "dphi"],
                         "edge_channels": [[16, 16], [32, 32], [48, 48]], "head_sizes": [64, 32, 16]},
    "dnn": {"architecture": "dnn", "head_sizes": [256, 256, 128, 64]},
}
"""Per model family (``training.defaults.model``), its architecture and sizes: the thesis's (Holmberg 2022),
PFN with Phi [64, 128, 256] and head [1024, 512, 256, 128, 64]; ParticleNet with EdgeConv blocks (64,)*3,
(128,)*3, (256,)*3 at k = 16 and head [512, 256, 128, 64]; and their "Lite" versions. Beside them ``dnn``, the
jet-level baseline (:class:`gnnjec.models.dnn.DNN`: fixed summaries of each collection, head [256, 256, 128, 64])."""

FAMILIES = tuple(PRESETS)

STANDARD = "standard"
"""The flavour-blind standard correction's name (pt_std) beside the families' in predictions, metrics and plots:
the reference of every comparison."""

BASELINE = "dnn"
"""The jet-level family that the graph networks are measured against besides the standard correction: the summary
gives each graph network's gain over it (what learning from the constituents one by one is worth)."""

METHOD_LABELS = {STANDARD: "Standard (L1L2L3)", "pfn": "PFN", "pfn-lite": "PFN-Lite", "particlenet": "ParticleNet",
                 "particlenet-lite": "ParticleNet-Lite", "dnn": "DNN (jet-level)"}
"""How plots and tables name each method."""

POINT_PATTERN = rf"(?:{'|'.join(FAMILIES)})-[0-9a-f]{{8}}"
"""A hyperparameter point's name: ``<family>-<8 hex digits of its hyperparameters' hash>``."""

# --- plots ------------------------------------------------------------------------------------------------------

PLOTS = ("response_distributions", "resolution", "closure", "response_vs_eta", "median_response", "flavour_difference",
         "flavour_resolution", "pileup_response", "pileup_resolution", "tail_fraction", "resolution_coverage")
"""The physics plots of the evaluation, each with a caption ``workflow/report/<name>.rst``."""

SAMPLE_PLOTS = ("closure", "median_response", "flavour_difference")
"""The physics plots of each evaluation-only sample (config ``samples.<name>.role: evaluation``): its closure and
flavour response, with the captions of the same plots of the test split."""

TRAINING_PLOTS = ("loss_curves",)
"""The plots of the training, each with a caption ``workflow/report/<name>.rst``."""

PLOT_FORMATS = ("png", "pdf")
"""Each plot is written in these formats (the report shows the first)."""

# --- results layout ---------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")
"""The splits of the clouds, in the order of their codes in the ``split`` column."""

SYNTHETIC_JEC = "results/synthetic/standard_jec.json"
SYNTHETIC_FILE = "results/synthetic/{sample}/{index}.root"
CLOUD_PART = "results/clouds/{sample}/{index}.parquet"
CLOUD_SPLIT = "results/clouds/{split}.parquet"
TRAINED = "results/training/{point}/{name}"
"""A point's files (``model.pt``, ``history.json``) when it trains to the end in one job."""
RUNG_TRAINED = "results/training/{point}/rung{rung}/{name}"
"""A point's files at the end of rung ``rung`` (successive halving, or a training cut into jobs):
``model.pt``, ``history.json``, ``state.pt`` (what the next rung goes on from)."""
PROMOTION = "results/training/rung{rung}.json"
BEST = "results/training/best.json"
POINTS_TABLE = "results/training/points.tsv"
NETWORK_ONNX = "results/export/{family}/network.onnx"
"""A family's best network, as export-onnx writes it (checked against torch: ``ONNX_CHECK``)."""
ONNX_CHECK = "results/export/{family}/onnx_check.json"
ONNX = "results/export/{family}/model.onnx"
"""A family's model: its network with the residual correction grafted on (or the network, with the residual
correction off): what evaluation, Triton, the server and analyses use."""
RESIDUAL = "results/export/{family}/residual.json"
"""The residual correction's table, its derivation sample's closure and the graft's check."""
PREDICTIONS = "results/evaluation/predictions.parquet"
METRICS = "results/evaluation/metrics.json"
SUMMARY = "results/evaluation/summary.txt"
METRICS_TABLE = "results/evaluation/metrics.csv"
SAMPLE_EVALUATION = "results/evaluation/samples/{sample}"
"""An evaluation-only sample's folder: every exported model evaluated on all its jets, as evaluate does the test
split; its files are named as the test split's."""
SAMPLE_PREDICTIONS = SAMPLE_EVALUATION + "/predictions.parquet"
SAMPLE_METRICS = SAMPLE_EVALUATION + "/metrics.json"
SAMPLE_SUMMARY = SAMPLE_EVALUATION + "/summary.txt"
SAMPLE_METRICS_TABLE = SAMPLE_EVALUATION + "/metrics.csv"
SAMPLE_PLOT = SAMPLE_EVALUATION + "/plots/{name}.{ext}"
PLOT_DIR = "results/plots"
PLOT = PLOT_DIR + "/{name}.{ext}"
TRITON_REPOSITORY = "results/triton"
TRITON_CONFIG = TRITON_REPOSITORY + "/{family}/config.pbtxt"
TRITON_ONNX = TRITON_REPOSITORY + "/{family}/1/model.onnx"
REPORT_CONFIG = "results/report/config.yaml"
REPORT = "results/report/thesis_plots.html"


def file_index(index: int) -> str:
    """The ``{index}`` of a sample's file in the layout's patterns: ``007``."""
    return f"{index:03d}"


def clouds_split(split: str) -> str:
    return CLOUD_SPLIT.format(split=split)


def plot_files(names, ext: str | None = None, pattern: str = PLOT, **wildcards) -> list[str]:
    """The files of plots ``names``: every format, or only ``ext``; of ``pattern`` (an evaluation sample's,
    ``SAMPLE_PLOT``, with ``sample``, or with ``{sample}`` left as a wildcard when it is not given)."""
    wildcards.setdefault("sample", "{sample}")
    return [pattern.format(name=n, ext=e, **wildcards) for n in names for e in ((ext,) if ext else PLOT_FORMATS)]


# --- the stages -------------------------------------------------------------------------------------------------

STAGES = {
    "synthetic-jec": ("gnnjec.demo.stages", "derive the standard correction of the demo detector"),
    "synthetic-pfnano": ("gnnjec.demo.stages", "write one demo PFNano file"),
    "convert": ("gnnjec.convert", "NanoAOD/PFNano file -> particle clouds (Parquet)"),
    "merge-clouds": ("gnnjec.clouds", "per-file clouds -> train/val/test files"),
    "train": ("gnnjec.training", "fit one hyperparameter point (rules train and train_rung)"),
    "promote": ("gnnjec.search", "successive halving: the best points of a rung go on to the next"),
    "select-model": ("gnnjec.search", "choose each family's point with the lowest validation loss"),
    "export-onnx": ("gnnjec.export", "export a model family's best point to ONNX and check it against torch"),
    "residual-correction": ("gnnjec.residual", "derive a network's residual correction on the validation split and "
                                               "graft it onto the ONNX model"),
    "evaluate": ("gnnjec.evaluate", "ONNX inference on the test split (or an evaluation sample) and physics "
                                    "metrics (rules evaluate and evaluate_sample)"),
    "plots": ("gnnjec.plotting", "physics plots from the predictions and metrics (rules plots and sample_plots)"),
    "training-plots": ("gnnjec.plotting", "loss curves and the validation loss of every point"),
    "report-config": ("gnnjec.config", "write the run's configuration (for the report, and to rerun it)"),
    "triton-model": ("gnnjec.triton", "one model of a Triton model repository from an exported ONNX file"),
    "serve": ("gnnjec.serving", "serve a Triton model repository over KServe v2 REST and gRPC with ONNX Runtime"),
    "verify": ("gnnjec.provenance", "check that every input the outputs' provenance records name is unchanged "
                                    "(there, same size and SHA-256)"),
}
"""Each command of ``gnnjec``: the module that declares its arguments and runs it, and its one-line help.
A stage's rule has its name with ``_`` for ``-`` (those of :data:`WITHOUT_A_RULE` have none)."""

WITHOUT_A_RULE = ("serve", "verify")
"""The commands no rule runs: the server, and the check of a finished run's inputs."""


def rule_name(stage: str) -> str:
    return stage.replace("-", "_")
