"""What the Snakefile needs from the configuration: input files per sample and the training grid.

Kept here (not in the .smk files) so that it is imported, tested, and the rules stay thin.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
from pathlib import Path

from .errors import InputError

SYNTHETIC_DIR = "results/synthetic"


def config_error(config: dict, schema_path: str | os.PathLike) -> str | None:
    """The most relevant schema violation of ``config`` as one line naming the key, or None."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"config key {where}: {error.message} (schema: workflow/schemas/{Path(schema_path).name})"


def is_url(path: str) -> bool:
    return "://" in path


def synthetic_file(sample: str, index: int) -> str:
    return f"{SYNTHETIC_DIR}/{sample}/{index:03d}.root"


def sample_files(config: dict) -> dict[str, list[str]]:
    """Input files of every sample, in a stable order; globs are expanded, URLs kept as they are."""
    out = {}
    for name, spec in config["samples"].items():
        if "synthetic" in spec:
            out[name] = [synthetic_file(name, i) for i in range(spec["synthetic"]["files"])]
            continue
        files = []
        for entry in spec["files"]:
            if is_url(entry) or not glob.has_magic(entry):
                files.append(entry)
                continue
            matched = sorted(glob.glob(os.path.expanduser(entry), recursive=True))
            if not matched:
                raise InputError(f"config key samples.{name}.files: {entry!r} matches no file; fix the pattern or the path")
            files.extend(matched)
        if not files:
            raise InputError(f"config key samples.{name}.files: the list is empty; name at least one file")
        out[name] = files
    return out


def json_arg(value) -> str:
    """Canonical JSON for a rule's params (sorted keys: equal configs give equal strings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def grid_points(training: dict) -> dict[str, dict]:
    """Expand ``training.grid`` (lists of values) over ``training.defaults`` into named points.

    A point's name is ``<model>-<hash of its hyperparameters>``: adding a value to the grid adds
    points without renaming (and so retraining) the existing ones.
    """
    grid = training.get("grid") or {}
    keys = sorted(grid)
    points = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        hp = {**training["defaults"], **dict(zip(keys, values))}
        digest = hashlib.sha1(json_arg(hp).encode()).hexdigest()[:8]
        points[f"{hp['model']}-{digest}"] = hp
    return points
