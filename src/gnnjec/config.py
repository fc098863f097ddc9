"""The configuration: its schema (complete on disk, its derived parts generated here), validation that fills
in the defaults and names the key of any problem, the input files of each sample and the training points.

Kept here (not in the .smk files) so that it is imported, tested, and the rules stay thin.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import yaml

from .command import Command
from .errors import ConfigError
from .hparams import DEFAULTS
from .schema import SCHEMA, load_schema, schema_default
from .search import grid, random_points
from .spec import SYNTHETIC_FILE, file_index

# --- the schema's generated parts ---------------------------------------------------------------------------------
# Every hyperparameter of definitions.hparams may appear in training.grid as a list of such values, and in
# training.random.space as a distribution over such values; the model families are gnnjec.spec.FAMILIES, the demo's
# hard processes gnnjec.demo.events.PROCESSES. The schema names each hyperparameter, its type and its range once;
# render_schema writes out the rest.

_GENERATED = re.compile(r"^(?P<indent> *)# generated: (?P<part>[\w.]+) .*?\n"
                        r"(?P<body>.*?)^(?P=indent)# end of generated\n",
                        re.M | re.S)


def _generated_part(part: str, schema: dict) -> dict:
    from .spec import FAMILIES

    hparams = schema["definitions"]["hparams"]["properties"]
    if part == "families":
        return {"enum": list(FAMILIES)}
    if part == "processes":
        from .demo.events import PROCESSES

        return {"enum": list(PROCESSES)}
    if part == "grid":
        return {"properties": {name: {"type": "array", "minItems": 1,
                                      "items": {"$ref": f"#/definitions/hparams/properties/{name}"}}
                               for name in hparams}}
    if part == "space":
        return {"properties": {name: _distribution(name) for name in hparams}}
    raise ValueError(f"unknown generated part {part!r}")


def render_schema(text: str) -> str:
    """``text`` (the schema file) with each generated part written anew from the hand-written rest: the schema
    on disk is complete, and ``python -m gnnjec.config --write-schema`` keeps it so (a test checks it)."""
    import yaml

    schema = yaml.safe_load(text)

    def block(match) -> str:
        indent = match.group("indent")
        lines = []
        for key, value in _generated_part(match.group("part"), schema).items():
            if isinstance(value, dict):  # a mapping of many entries: one line each (JSON is YAML's flow style)
                lines.append(f"{key}:")
                lines += [f"  {name}: {json.dumps(entry)}" for name, entry in value.items()]
            else:
                lines.append(f"{key}: {json.dumps(value)}")
        first = match.group(0).splitlines()[0]
        return "".join(f"{indent}{line}\n" for line in [first.strip(), *lines, "# end of generated"])

    return _GENERATED.sub(block, text)


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
        return str(ConfigError(where, f"{error.message} (schema: workflow/schemas/{name})"))
    try:
        _check_meaning(config)
    except ConfigError as err:
        return str(err)
    return None


def _check_meaning(config: dict) -> None:
    """What a schema cannot say: fractions that add up, ordered ranges and edges, a search that fits the budget."""
    split, ev, training = config["split"], config["evaluation"], config["training"]
    if not training_samples(config):
        raise ConfigError("samples", "every sample has role evaluation: nothing to train on; give the training "
                          "sample role training (the default)")
    if split["train"] + split["val"] >= 1:
        raise ConfigError("split", f"train + val = {split['train'] + split['val']:g} leaves no test jets; "
                "make the two fractions add up to less than 1")
    if ev["pt_min"] >= ev["pt_max"]:
        raise ConfigError("evaluation.pt_min", f"{ev['pt_min']} is not below pt_max {ev['pt_max']}; swap or fix them")
    for key in ("eta_bins", "headline_eta_bins"):
        previous = -1.0
        for i, (lo, hi) in enumerate(ev[key]):
            if not previous <= lo < hi:
                raise ConfigError(f"evaluation.{key}.{i}", f"[{lo}, {hi}] must have lo < hi and start at or after the "
                        f"previous bin's end ({max(previous, 0):g}); list the |eta| ranges in increasing order")
            previous = hi
    residual = config["residual"]
    edges = residual["eta_edges"]
    if edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError("residual.eta_edges", f"{edges} must start at 0 and increase; list the |eta| edges in order")
    if not residual["pt_range"][0] < residual["pt_range"][1]:
        raise ConfigError("residual.pt_range", f"{residual['pt_range']} is not [low, high]; swap or fix them")
    if "grid" in training and "random" in training:
        raise ConfigError("training", "both grid and random are given; keep one "
                          "(random draws its points instead of the grid)")
    for key, spec in (training.get("random") or {}).get("space", {}).items():
        bounds = next((spec[k] for k in ("uniform", "log_uniform", "int_uniform", "layers") if k in spec), None)
        if bounds is not None and not bounds[0] <= bounds[1]:
            raise ConfigError(f"training.random.space.{key}", f"the range {bounds} is reversed; write [low, high]")
    halving = training.get("halving")
    if halving is not None:
        varied = set(training.get("grid") or {}) | set((training.get("random") or {}).get("space", {}))
        if "epochs" in varied:
            raise ConfigError("training.halving", "successive halving gives every point the same budget "
                    "(defaults.epochs); take epochs out of the grid or the search space")
        epochs = training["defaults"].get("epochs", DEFAULTS["epochs"])
        if halving["min_epochs"] > epochs:
            raise ConfigError("training.halving.min_epochs", f"{halving['min_epochs']} is more than the "
                    f"{epochs} epochs of a point; lower it or raise training.defaults.epochs")


def is_url(path: str) -> bool:
    return "://" in path


def synthetic_file(sample: str, index: int) -> str:
    return SYNTHETIC_FILE.format(sample=sample, index=file_index(index))


def sample_files(config: dict) -> dict[str, list[str]]:
    """Input files of every sample, in a stable order; globs are expanded, URLs kept as they are. A file listed twice
    is refused, and so are two files of the same content unless ``allow_identical_files``."""
    out, listed = {}, {}
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
                raise ConfigError(f"samples.{name}.files", f"{entry!r} matches no file; fix the pattern or the path")
            files.extend(matched)
        if not files:
            raise ConfigError(f"samples.{name}.files", "the list is empty; name at least one file")
        out[name] = listed[name] = files
    _refuse_repeated_files(out)
    if not config.get("allow_identical_files", schema_default("allow_identical_files")):
        _refuse_identical_files(listed)
    return out


def _refuse_repeated_files(files: dict[str, list[str]]) -> None:
    """A file listed twice, in one sample or two (by its resolved path; a URL as written), would put its jets in
    twice: in training and in test, or in two samples. One ConfigError naming both places."""
    seen: dict[str, str] = {}
    for name, paths in files.items():
        for path in paths:
            key = path if is_url(path) else os.path.realpath(os.path.expanduser(path))
            if key in seen:
                where = "twice in it" if seen[key] == name else f"also in samples.{seen[key]}"
                raise ConfigError(f"samples.{name}.files", f"{path} is listed {where}: its jets would count twice "
                                  "(in training and in test, or in two samples); list each file once")
            seen[key] = name


def _refuse_identical_files(files: dict[str, list[str]]) -> None:
    """Two listed files of the same content (a copy under another name) would put its jets in twice, as one file
    listed twice does. Sizes are compared first, and only files of one size are hashed (SHA-256): a big file is
    read only when another has its size. Local files only (a URL is compared as written, by
    :func:`_refuse_repeated_files`); one not there is left for Snakemake to name."""
    from .provenance import sha256

    by_size: dict[int, list[tuple[str, str]]] = {}
    for name, paths in files.items():
        for path in paths:
            local = os.path.expanduser(path)
            if not is_url(path) and os.path.isfile(local):
                by_size.setdefault(os.path.getsize(local), []).append((name, path))
    for same_size in by_size.values():
        first: dict[str, tuple[str, str]] = {}
        for name, path in same_size if len(same_size) > 1 else ():
            digest = sha256(os.path.expanduser(path))
            if digest in first:
                other_name, other = first[digest]
                where = "in it too" if other_name == name else f"in samples.{other_name}"
                raise ConfigError(f"samples.{name}.files", f"{path} has the same content (size and SHA-256) as "
                                  f"{other}, {where}: its jets would count twice; list one of them, or set "
                                  "allow_identical_files: true if both are meant")
            first[digest] = (name, path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML with every mapping's keys unique (PyYAML, as Snakemake loads a config file, keeps the last silently)."""


def _unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(str(key), f"appears twice in one mapping (lines {seen[key]} and "
                              f"{key_node.start_mark.line + 1}); YAML keeps the last silently: merge or rename them")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def repeated_keys(path: str) -> str | None:
    """The one-line problem of a configuration file with a key twice in one mapping (a sample defined twice, say:
    YAML keeps the second and the first vanishes), or None."""
    try:
        with open(path) as f:
            yaml.load(f, Loader=_UniqueKeyLoader)
    except ConfigError as err:
        return f"{path}: {err}"
    except (OSError, yaml.YAMLError):
        return None  # Snakemake reports a file it cannot read or parse itself
    return None


def training_samples(config: dict) -> list[str]:
    """The samples whose jets are split into train, val and test (role ``training``, the default)."""
    return [name for name, sample in config["samples"].items() if sample.get("role", "training") == "training"]


def evaluation_samples(config: dict) -> list[str]:
    """The samples only evaluated on (role ``evaluation``): every exported model on all their jets, apart."""
    return [name for name, sample in config["samples"].items() if sample.get("role", "training") == "evaluation"]


def training_points(training: dict) -> dict[str, dict]:
    """The named hyperparameter points of ``training``: the grid's combinations, or the random
    sample of the search space, over ``training.defaults`` (one point when neither is given)."""
    random = training.get("random")
    if random:
        points = random_points(training["defaults"], random["space"], random["points"], random.get("seed", 0))
    else:
        points = grid(training["defaults"], training.get("grid"))
    if len({json.dumps(hp.get("quantiles") or []) for hp in points.values()}) > 1:
        raise ConfigError("training.grid.quantiles" if not random else "training.random.space.quantiles",
                          "the points differ in quantiles, so their validation losses (the pinball loss over "
                          "different levels, or the MAE) cannot rank them; set quantiles in training.defaults")
    return points


def _report_config_arguments(p) -> None:
    from .command import json_value

    p.add_argument("--config", type=json_value, required=True)
    p.add_argument("--output", required=True)


def _report_config(a) -> None:
    """The run's configuration with the schema's defaults filled in, as YAML: for the report, and to rerun it."""
    import yaml

    from . import provenance
    from .files import atomic_output

    with atomic_output(a.output) as tmp:
        Path(tmp).write_text("# The configuration of this run, with the schema's defaults filled in\n"
                             f"{provenance.comment()}\n" + yaml.safe_dump(a.config, sort_keys=False))


COMMANDS = {"report-config": Command(_report_config_arguments, _report_config, outputs=("output",))}


def main(argv: list[str] | None = None) -> int:
    """``python -m gnnjec.config --write-schema`` (or ``--check-schema``): the schema's generated parts."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gnnjec.config", description=main.__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-schema", action="store_true", help="write them anew")
    action.add_argument("--check-schema", action="store_true", help="exit 1 if they are not current")
    args = parser.parse_args(argv)
    text = SCHEMA.read_text()
    rendered = render_schema(text)
    if args.write_schema:
        if rendered != text:
            SCHEMA.resolve().write_text(rendered)
        return 0
    if rendered != text:
        print(f"{SCHEMA.resolve()}: its generated parts are not current; run python -m gnnjec.config --write-schema")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
