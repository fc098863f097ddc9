"""``gnnjec <stage>``: the command line the Snakemake rules call (and that users can call directly).

Each stage's module declares its arguments and runs it (:mod:`gnnjec.command`); this module finds it
(:data:`gnnjec.spec.STAGES`), imports only that one, and keeps the error contract: bad input ends with one
line on stderr, ``gnnjec <stage>: error: ...``, and exit status 2; a failed run leaves none of its outputs.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import signal
import sys
from pathlib import Path

from . import provenance
from .command import Command
from .errors import CheckFailed, InputError, Terminated, terminate_on_sigterm
from .files import written
from .spec import STAGES

log = logging.getLogger("gnnjec.cli")


def command(stage: str) -> Command:
    module, _ = STAGES[stage]
    return importlib.import_module(module).COMMANDS[stage]


def stage_parser(stage: str) -> argparse.ArgumentParser:
    """The arguments of ``stage`` alone (what ``gnnjec <stage>`` takes after its name)."""
    p = argparse.ArgumentParser(prog=f"gnnjec {stage}", description=STAGES[stage][1])
    command(stage).arguments(p)
    return p


def build_parser(stage: str | None = None) -> argparse.ArgumentParser:
    """The parser of every stage's name, with the arguments of ``stage`` (the others' are not imported)."""
    p = argparse.ArgumentParser(
        prog="gnnjec", description="Jet energy corrections with graph neural networks: the stages of the workflow."
    )
    sub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, (_, help_text) in STAGES.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        if name == stage:
            command(name).arguments(s)
    return p


def _remove_written(outputs) -> list[Path]:
    """Remove what this run completed among its declared outputs (a file, or a file in an output folder):
    a failed stage leaves nothing that could pass for its result. What was there before it started
    stays, and so does what other jobs wrote beside it (plots and training plots share a folder), and a
    training's last.pt, which is not an output but the state to resume from."""
    roots = [Path(o).absolute() for o in outputs if o]
    removed = []
    for path in written():
        if any(path == root or root in path.parents for root in roots) and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


_NAMED = {"histories", "models", "onnx"}  # NAME=PATH lists


def _paths(args, names) -> list[str]:
    paths = []
    for name in names:
        value = getattr(args, name, None)
        for item in value if isinstance(value, list) else [value] if value else []:
            paths.append(item.partition("=")[2] if name in _NAMED and "=" in item else item)
    return paths


def _begin_provenance(args, cmd: Command) -> None:
    """The provenance record of this stage's outputs: its parameters (the arguments that are neither
    inputs nor outputs) and its input files."""
    skip = {"stage", *cmd.reads, *cmd.outputs}
    parameters = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    for name in _NAMED & set(cmd.reads):  # the names given to the inputs, where they are NAME=PATH lists
        if isinstance(getattr(args, name), list):
            parameters[f"{name}_names"] = [item.partition("=")[0] for item in getattr(args, name)]
    provenance.begin(args.stage, parameters, _paths(args, cmd.reads))


def _same_files(inputs, outputs) -> tuple[str, str] | None:
    """An (input, output) pair naming one file: the output would replace its own input."""
    def key(path):
        return os.path.realpath(path) if "://" not in str(path) else str(path)

    given = {key(p): p for p in inputs if p}
    return next(((given[key(o)], o) for o in outputs if o and key(o) in given), None)


OS_ERRORS = {errno.EACCES: "permission denied: write the outputs where you may, or fix the folder's permissions",
             errno.EPERM: "not permitted: write the outputs where you may, or fix the folder's permissions",
             errno.EROFS: "a read-only file system: write the outputs elsewhere",
             errno.ENOSPC: "no space left on the device: free space, or write the outputs elsewhere",
             errno.EDQUOT: "over the disk quota: free space, or write the outputs elsewhere"}
"""Operator errors of the file system, each with its fix (the rest of OSError is a bug's)."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stage = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(stage if stage in STAGES else None).parse_args(argv)
    cmd = command(args.stage)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    terminate_on_sigterm()
    outputs = [getattr(args, name, None) for name in cmd.outputs]
    same = _same_files(_paths(args, cmd.reads), outputs)
    if same:  # before anything is written, and nothing is removed: the output is the input
        print(f"gnnjec {args.stage}: error: {same[1]}: given as an input and as an output; the output would replace "
              "it: write the output elsewhere", file=sys.stderr)
        return 2
    if cmd.provenance:
        _begin_provenance(args, cmd)
    prefix = f"gnnjec {args.stage}"
    try:
        cmd.run(args)
        return 0
    except InputError as err:
        message, status = f"{prefix}: error: {err}", 2
    except FileNotFoundError as err:  # an input that an earlier stage (or the user) did not provide
        message, status = (f"{prefix}: error: {err.filename}: no such file; check the path, or run the stage "
                           "that writes it"), 2
    except CheckFailed as err:
        message, status = f"{prefix}: failed: {err}", 1
    except OSError as err:
        if err.errno not in OS_ERRORS:
            log.exception("unexpected error")
            message, status = f"{prefix}: internal error: OSError: {err} (a bug: please report it with the log)", 1
        else:
            message, status = f"{prefix}: error: {err.filename or 'an output'}: {OS_ERRORS[err.errno]}", 2
    except Terminated as err:
        resume = " (training goes on from its last.pt)" if args.stage == "train" else ""
        message, status = f"{prefix}: stopped by {err}; its unfinished outputs are removed; rerun it{resume}", 143
    except KeyboardInterrupt:
        message, status = f"{prefix}: interrupted; nothing it wrote is left", 130
    except Exception as err:  # a bug, not bad input: keep the traceback for the report, end with one line
        log.exception("unexpected error")
        first = (str(err).strip().splitlines() or [""])[0]
        message, status = (f"{prefix}: internal error: {type(err).__name__}: {first} "
                           "(a bug: please report it with the log)"), 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for path in _remove_written(outputs):
        log.info("removed %s (written by this failed run)", path)
    print(message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
