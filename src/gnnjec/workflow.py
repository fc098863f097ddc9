"""What the Snakefile needs from the configuration: input files per sample and the training grid.

Kept here (not in the .smk files) so that it is imported, tested, and the rules stay thin.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from .errors import InputError
from .hparams import DEFAULTS
from .files import canonical_json
from .search import grid, random_points

SYNTHETIC_DIR = "results/synthetic"


def load_schema(schema_path: str | os.PathLike) -> dict:
    """The configuration schema, with the grid and the random space checked like the defaults.

    Every hyperparameter of ``definitions.hparams`` may appear in ``training.grid`` as a list of
    such values, and in ``training.random.space`` as a distribution over such values: both are
    derived here, so the schema names each hyperparameter, its type and its range once.
    """
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    hparams = schema["definitions"]["hparams"]["properties"]
    training = schema["properties"]["training"]["properties"]
    training["grid"]["properties"] = {
        name: {"type": "array", "minItems": 1, "items": {"$ref": f"#/definitions/hparams/properties/{name}"}}
        for name in hparams
    }
    training["random"]["properties"]["space"]["properties"] = {name: _distribution(name) for name in hparams}
    return schema


def _distribution(name: str) -> dict:
    value = {"$ref": f"#/definitions/hparams/properties/{name}"}
    pair = {"type": "array", "items": value, "minItems": 2, "maxItems": 2}
    options = [{"choice": {"type": "array", "items": value, "minItems": 1}}, {"uniform": pair},
               {"log_uniform": pair}, {"int_uniform": pair}]
    if name in ("phi_sizes", "head_sizes"):
        options.append({"layers": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2,
                                   "maxItems": 2},
                        "units": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}})
    return {"oneOf": [{"type": "object", "additionalProperties": False, "required": sorted(o), "properties": o}
                      for o in options]}


def _filling_validator(schema: dict):
    """A validator that also fills in the schema's defaults (nested ones too) while it checks."""
    import copy

    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": properties})(schema)


def config_error(config: dict, schema_path: str | os.PathLike) -> str | None:
    """The most relevant problem of ``config`` as one line naming the key, or None.

    Checks the schema (filling in its defaults, and the features from
    :data:`gnnjec.features.DEFAULT_INPUTS`), then what a schema cannot say: fractions that add up,
    ordered ranges, a search that fits the budget.
    """
    import jsonschema

    from .features import DEFAULT_INPUTS

    name = Path(schema_path).name
    if isinstance(config, dict) and "features" not in config:
        config["features"] = json.loads(json.dumps(DEFAULT_INPUTS))
    error = jsonschema.exceptions.best_match(_filling_validator(load_schema(schema_path)).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        return f"config key {where}: {error.message} (schema: workflow/schemas/{name})"
    return _meaning_error(config)


def _meaning_error(config: dict) -> str | None:
    split, ev, training = config["split"], config["evaluation"], config["training"]
    if split["train"] + split["val"] >= 1:
        return (f"config key split: train + val = {split['train'] + split['val']:g} leaves no test jets; "
                "make the two fractions add up to less than 1")
    if ev["pt_min"] >= ev["pt_max"]:
        return f"config key evaluation.pt_min: {ev['pt_min']} is not below pt_max {ev['pt_max']}; swap or fix them"
    for key in ("eta_bins", "headline_eta_bins"):
        previous = -1.0
        for i, (lo, hi) in enumerate(ev[key]):
            if not previous <= lo < hi:
                return (f"config key evaluation.{key}.{i}: [{lo}, {hi}] must have lo < hi and start at or after the "
                        f"previous bin's end ({max(previous, 0):g}); list the |eta| ranges in increasing order")
            previous = hi
    if "grid" in training and "random" in training:
        return "config key training: both grid and random are given; keep one (random draws its points instead of the grid)"
    for key, spec in (training.get("random") or {}).get("space", {}).items():
        bounds = next((spec[k] for k in ("uniform", "log_uniform", "int_uniform", "layers") if k in spec), None)
        if bounds is not None and not bounds[0] <= bounds[1]:
            return f"config key training.random.space.{key}: the range {bounds} is reversed; write [low, high]"
    halving = training.get("halving")
    if halving is not None:
        varied = set(training.get("grid") or {}) | set((training.get("random") or {}).get("space", {}))
        if "epochs" in varied:
            return ("config key training.halving: successive halving gives every point the same budget "
                    "(defaults.epochs); take epochs out of the grid or the search space")
        epochs = training["defaults"].get("epochs", DEFAULTS["epochs"])
        if halving["min_epochs"] > epochs:
            return (f"config key training.halving.min_epochs: {halving['min_epochs']} is more than the "
                    f"{epochs} epochs of a point; lower it or raise training.defaults.epochs")
    return None


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
    return canonical_json(value)


def training_points(training: dict) -> dict[str, dict]:
    """The named hyperparameter points of ``training``: the grid's combinations, or the random
    sample of the search space, over ``training.defaults`` (one point when neither is given)."""
    random = training.get("random")
    if random:
        return random_points(training["defaults"], random["space"], random["points"], random.get("seed", 0))
    return grid(training["defaults"], training.get("grid"))
