# Shared by all rules: config validation, the package on the path, the sample files and the grid.

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))

from gnnjec.errors import InputError
from gnnjec.features import validate_inputs
from gnnjec.hparams import DEFAULTS as HP_DEFAULTS
from gnnjec.search import halving_plan
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

try:
    SAMPLE_FILES = sample_files(config)
    POINTS = training_points(config["training"])
    validate_inputs(config["features"])
except InputError as err:
    raise WorkflowError(str(err)) from None

# the model families of the points (pfn, particlenet, ...): each one's best point is exported and evaluated
FAMILIES = sorted({hp["model"] for hp in POINTS.values()})

CLOUD_PARTS = [
    f"results/clouds/{sample}/{index:03d}.parquet"
    for sample, files in SAMPLE_FILES.items()
    for index in range(len(files))
]
SPLIT_FILES = {split: f"results/clouds/{split}.parquet" for split in ("train", "val", "test")}
