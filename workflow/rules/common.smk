# Shared by all rules: the validated configuration, the plan the rules read (gnnjec.plan), and the functions
# the rules call. Rules run the installed package (`gnnjec <stage>`, the rule's name with - for _).

import os
import sys
from pathlib import Path

from gnnjec import spec
from gnnjec.batch import before_submission
from gnnjec.config import SCHEMA, config_error, repeated_keys
from gnnjec.errors import InputError
from gnnjec.plan import Plan, json_arg, promoted_points
from gnnjec.resources import job_resources

# a key twice in one mapping of a configuration file (a sample defined twice): YAML kept the last, silently
problem = next(filter(None, (repeated_keys(path) for path in workflow.configfiles)), None)
if problem:
    raise WorkflowError(problem)
problem = config_error(config, SCHEMA)  # also fills in the schema's defaults
if problem:
    raise WorkflowError(problem)
try:
    PLAN = Plan(config)
except InputError as err:
    raise WorkflowError(str(err)) from None

ENV = "../../envs/gnnjec.yaml"

# the parameters of rules train and train_rung
TRAIN_PARAMS = dict(
    launcher=PLAN.train_launcher,
    hparams=lambda w: json_arg(PLAN.points[w.point]),
    inputs=json_arg(config["features"]),
    device=config["training"]["device"],
)
# the command of rules train and train_rung (filled into their shell at parse time). The GPU's least compute
# capability, checked by the job too, comes from the job's resources, which (unlike params) a change does not
# retrain for.
TRAIN = " ".join([
    "{params.launcher}gnnjec train --train {input.train} --val {input.val} --model {output.model}",
    "--history {output.history} --hparams {params.hparams:q} --inputs {params.inputs:q} --device {params.device}",
    *(["--gpu-min-capability {resources.gpus_minimum_capability}"] if "gpus_minimum_capability" in PLAN.gpu_resources
      else []),
    "--threads {threads}",
])

# the checkout, which `--sdm conda` installs into its environment (envs/gnnjec.yaml)
os.environ.setdefault("GNNJEC_ROOT", str(Path(workflow.basedir).parent))
# Batch jobs run snakemake with the Python that runs it here, by absolute path (profiles/htcondor/job.sh): the
# project's environment, on a filesystem the workers mount
os.environ.setdefault("GNNJEC_PYTHON", sys.executable)


envvars:
    "GNNJEC_PYTHON",


# cheap jobs run on the submit host instead of waiting in a batch queue
localrules:
    promote,
    select_model,
    training_plots,
    triton_model,
    report_config,
    thesis_plots,


if not workflow.remote_exec:  # planning (a dry run too): the whole search's cost, and what would not fit
    for line in PLAN.planning_lines():
        print(line, file=sys.stderr)


def sized(rule):
    """The time and memory requests of ``rule``'s jobs (gnnjec.plan.Plan.job_cost), capped at the longest a job
    may run."""
    return job_resources(lambda wildcards, threads: PLAN.job_cost(rule, wildcards, threads), PLAN.sizes.max_minutes)


def promoted(rung):
    """The points rung ``rung`` promoted (successive halving): known once its checkpoint has run."""
    return promoted_points(checkpoints.promote.get(rung=rung).output[0])


def trained(name):
    """Per point, its ``name`` (model.pt, history.json) at the end of its training."""
    return PLAN.trained(name, promoted)


def convert_input(wildcards):
    """A local input file (a root:// one is read by the job itself)."""
    path = PLAN.source(wildcards.sample, wildcards.index)
    return [] if "://" in path else [path]


def rung_previous(wildcards):
    return PLAN.rung_previous(wildcards.point, int(wildcards.rung))


def rung_histories(wildcards):
    """Per point that trains in a rung, NAME=HISTORY."""
    rung = int(wildcards.rung)
    return {p: spec.RUNG_TRAINED.format(point=p, rung=rung, name="history.json")
            for p in PLAN.entrants(rung, promoted)}


def named(paths):
    """NAME=PATH items, as the stages take lists of named files."""
    return [f"{name}={path}" for name, path in paths.items()]


def captioned(names, pattern=spec.PLOT, **where):
    """Each plot's files (of ``pattern``), its PNG in the report with its caption (workflow/report/<name>.rst), under
    ``where``'s category (and subcategory), else Training or Physics."""
    where.setdefault("category", "Training" if set(names) <= set(spec.TRAINING_PLOTS) else "Physics")
    return [report(path, caption=f"../report/{name}.rst", **where) if path.endswith(".png") else path
            for name in names for path in spec.plot_files([name], pattern=pattern)]


# an evaluation-only sample's outputs, in the report: each sample a subcategory of its own
EVALUATION_SAMPLES = dict(category="Evaluation samples", subcategory="{sample}")

# the command of rules evaluate and evaluate_sample (the summary table goes to the terminal too)
EVALUATE = ("gnnjec evaluate --onnx {params.models} --clouds {input.clouds} --predictions {output.predictions}"
            " --metrics {output.metrics} --summary {output.summary} --table {output.table} --config {params.config:q}"
            " --threads {threads}")
# the command of rules plots and sample_plots
PLOTS = ("gnnjec plots --predictions {input.predictions} --metrics {input.metrics} --outdir {params.outdir}"
         " --dataset {params.dataset:q} --energy {params.energy} --experiment={params.experiment:q}"
         " --label {params.label:q}")


def default_resource(name):
    """A default resource as the profile or the command line wrote it (unevaluated), or None."""
    try:
        resource = workflow.resource_settings.default_resources[name]
    except (KeyError, TypeError):
        return None
    return getattr(resource, "raw", resource)


onstart:
    # before the first job goes out: the credential and proxy HTCondor jobs need (nothing for other executors)
    try:
        for line in before_submission(workflow.executor_plugin.name,
                                      default_resource("htcondor_submit_MY__SendCredential"), PLAN.urls):
            logger.info(line)
    except InputError as err:
        raise WorkflowError(str(err)) from None
