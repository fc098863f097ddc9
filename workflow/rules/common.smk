# Shared by all rules: config validation, the package on the path, the sample files and the grid.

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))

from gnnjec.batch import before_submission
from gnnjec.errors import InputError
from gnnjec.features import validate_inputs
from gnnjec.hparams import DEFAULTS as HP_DEFAULTS
from gnnjec.resources import Sizes, job_resources, legs, too_long, training_plan
from gnnjec.search import added_epochs, halving_plan, legs_plan
from gnnjec.workflow import config_error, is_url, json_arg, sample_files, training_points

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
problem = config_error(config, SCHEMA)  # also fills in the schema's defaults
if problem:
    raise WorkflowError(problem)

# Run this checkout's package with the interpreter on PATH (the project's environment).
PYTHONPATH = f"PYTHONPATH={Path(workflow.basedir).parent / 'src'}${{PYTHONPATH:+:$PYTHONPATH}}"
GNNJEC = f"{PYTHONPATH} python -m gnnjec"
# training.processes > 1: one data-parallel job over that many processes (GPUs), started by torchrun
PROCESSES = config["training"]["processes"]
GNNJEC_TRAIN = (GNNJEC if PROCESSES == 1 else
                f"{PYTHONPATH} python -m torch.distributed.run --standalone --nproc_per_node {PROCESSES} -m gnnjec")
# GPUs a training job asks the scheduler for: one per process, none when training.device is cpu
# (resources `gpu`, which the SLURM plugin turns into --gpus, and `request_gpus` for HTCondor's)
TRAIN_GPUS = 0 if config["training"]["device"] == "cpu" else PROCESSES
ENV = "../../envs/gnnjec.yaml"

# Batch jobs run snakemake with the Python that runs it here, by absolute path (profiles/htcondor/job.sh): the
# project's environment, on a filesystem the workers mount
os.environ.setdefault("GNNJEC_PYTHON", sys.executable)


envvars:
    "GNNJEC_PYTHON",


try:
    SAMPLE_FILES = sample_files(config)
    POINTS = training_points(config["training"])
    validate_inputs(config["features"])
except InputError as err:
    raise WorkflowError(str(err)) from None

# the model families of the points (pfn, particlenet, ...): each one's best point is exported and evaluated
FAMILIES = sorted({hp["model"] for hp in POINTS.values()})

# the least compute capability of a training GPU: as configured, else 8.0 where a point trains in bfloat16
GPU_MIN_CAPABILITY = config["training"].get("gpu_min_capability") or (
    8.0 if any(hp.get("amp", HP_DEFAULTS["amp"]) for hp in POINTS.values()) else None)
# what the GPU jobs ask of the batch system: SLURM's --gpus, HTCondor's request_gpus and minimum capability
# (a string: Snakemake rounds numeric resources to integers, and 7.5 must stay 7.5)
GPU_RESOURCES = {"gpu": TRAIN_GPUS, "request_gpus": TRAIN_GPUS,
                 **({"gpus_minimum_capability": f"{GPU_MIN_CAPABILITY:g}"} if TRAIN_GPUS and GPU_MIN_CAPABILITY else {})}

CLOUD_PARTS = [
    f"results/clouds/{sample}/{index:03d}.parquet"
    for sample, files in SAMPLE_FILES.items()
    for index in range(len(files))
]
SPLIT_FILES = {split: f"results/clouds/{split}.parquet" for split in ("train", "val", "test")}

# every job's wall time and memory, estimated from the config (gnnjec.resources): resources=**sized(cost)
SIZES = Sizes(config, SAMPLE_FILES, POINTS)


def sized(cost_of):
    """A rule's time and memory requests from ``cost_of(wildcards)``, capped at the longest a job may run."""
    return job_resources(cost_of, SIZES.max_minutes)


# cheap jobs run on the submit host instead of waiting in a batch queue
localrules:
    promote,
    select_model,
    training_plots,
    triton_model,
    report_config,
    thesis_plots,


# inputs read over XRootD: jobs that read one get the X509 proxy (HTCondor: use_x509userproxy)
URLS = [path for files in SAMPLE_FILES.values() for path in files if is_url(path)]


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
                                      default_resource("htcondor_submit_MY__SendCredential"), URLS):
            logger.info(line)
    except InputError as err:
        raise WorkflowError(str(err)) from None
