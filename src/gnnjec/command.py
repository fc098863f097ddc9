"""What a stage module declares for ``gnnjec <stage>``: its arguments, which of them are input files and
outputs (for provenance, and for removing a failed run's outputs), and the function that runs it.

Each stage module holds ``COMMANDS = {"<stage>": Command(...)}``; :mod:`gnnjec.cli` finds the module in
:data:`gnnjec.spec.STAGES` and imports only that one.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import InputError


@dataclass(frozen=True)
class Command:
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    reads: tuple[str, ...] = ()
    """The arguments that name input files (``NAME=PATH`` items too)."""
    outputs: tuple[str, ...] = ()
    """The arguments that name outputs: removed when the run fails."""
    provenance: bool = True
    """Whether outputs carry a provenance record (a service writes none)."""


def json_value(text: str):
    """An argument given as JSON (the rules pass config sections so)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})") from None


def named_paths(items: list[str]) -> dict[str, str]:
    """``NAME=PATH`` items as a dict (the rules name points, histories and models so)."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"expected NAME=PATH, got {item!r}")
        out[name] = path
    return out


def write_json(path: str, data: dict) -> None:
    """``data`` with this stage's provenance, written atomically."""
    from . import provenance
    from .files import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(provenance.with_provenance(data), indent=1))


def config_default(key: str):
    """The schema's default of config key ``key`` (dotted): an argument's default is the config's."""
    from .schema import schema_default

    return schema_default(key)
