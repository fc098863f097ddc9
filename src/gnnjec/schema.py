"""The configuration's schema as the package reads it: where it is, and the default of each key (the
defaults of the commands' arguments and of the stages' settings are the configuration's)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

SCHEMA = Path(__file__).with_name("config.schema.yaml")
"""The configuration schema: ``workflow/schemas/config.schema.yaml`` (a link to it in the package)."""


@functools.lru_cache(maxsize=4)
def load_schema(schema_path: str | os.PathLike = SCHEMA) -> dict:
    """The configuration schema as written on disk (its generated parts included: see
    :func:`gnnjec.config.render_schema`)."""
    import yaml

    return yaml.safe_load(Path(schema_path).read_text())


def schema_default(key: str, schema_path: str | os.PathLike = SCHEMA):
    """The default of config key ``key`` (dotted, like ``plots.energy_tev``) in the schema."""
    node = load_schema(schema_path)
    for part in key.split("."):
        node = node["properties"][part]
    return node["default"]
