"""Where an output came from, carried inside the output itself.

Every file a stage writes holds a *provenance record*: the stage, the gnnjec version, the git commit
of the code (when it runs from a git checkout; ``git_dirty`` says whether it had uncommitted
changes), the hash and text of the configuration the stage was given (``config_sha256`` of
``parameters``), and the size and SHA-256 of every input file (remote ``root://`` inputs: the URL
only, since hashing would mean reading the whole file over the network).

The record holds no time and no host name, so the same configuration and seed on the same inputs
give byte-identical records, and outputs that do not depend on timings are identical too.

Where it is kept: Parquet schema metadata and ONNX metadata under :data:`KEY`; a ``provenance`` entry
in JSON outputs and checkpoints; a comment line in text outputs; PNG text and the PDF ``Subject``.

:func:`verify` (``gnnjec verify results``) reads the records of a folder's outputs and checks that every input
they name is still there with its size and SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .command import Command
from .errors import CheckFailed
from .files import canonical_json

KEY = "gnnjec.provenance"

_current: dict | None = None


@functools.cache
def git_commit() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout this package runs from, or (None, None) outside a git checkout
    (an installed wheel) or without git; ``GNNJEC_GIT_COMMIT`` overrides (a container built from a commit)."""
    if os.environ.get("GNNJEC_GIT_COMMIT"):
        return os.environ["GNNJEC_GIT_COMMIT"], None
    here = Path(__file__).resolve().parent
    if not any((p / ".git").exists() for p in (here, *here.parents)):
        return None, None
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (commit or None), (bool(status.strip()) if commit else None)


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str) -> dict:
    """Path, size and checksum of an input (a folder: each file in it; a URL: the URL only)."""
    if "://" in str(path):
        return {"path": str(path)}
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return {"path": str(path), "files": [file_record(str(f)) for f in files]}
    if not p.is_file():
        return {"path": str(path), "missing": True}
    return {"path": str(path), "bytes": p.stat().st_size, "sha256": sha256(p)}


def config_sha256(parameters: dict) -> str:
    return hashlib.sha256(canonical_json(parameters, default=str).encode()).hexdigest()


def record(stage: str | None, parameters: dict | None = None, inputs: list[str] = ()) -> dict:
    """The provenance of an output of ``stage`` run with ``parameters`` on ``inputs``."""
    from . import __version__

    commit, dirty = git_commit()
    parameters = parameters or {}
    return {"stage": stage, "gnnjec_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "config_sha256": config_sha256(parameters), "parameters": parameters,
            "inputs": [file_record(p) for p in inputs]}


def begin(stage: str, parameters: dict, inputs: list[str]) -> dict:
    """Set the record that the outputs written from now on carry (the command line calls this)."""
    global _current
    _current = record(stage, parameters, inputs)
    return _current


def current() -> dict:
    """The record for outputs written now: the running stage's, or (library use) version and commit only."""
    return _current if _current is not None else record(None)


def as_json() -> str:
    return canonical_json(current())


def with_provenance(document: dict) -> dict:
    """A JSON output's content with the record added under ``provenance``."""
    return {**document, "provenance": current()}


def comment() -> str:
    """One comment line for text outputs."""
    return f"# {KEY}: {as_json()}"


def _pdf_subject(data: bytes) -> str | None:
    """The document information's ``/Subject`` of a PDF (where the plots keep their record): a literal string, its
    escapes and balanced parentheses undone, or a hexadecimal one (UTF-16 with its byte-order mark, else Latin-1)."""
    start = data.rfind(b"/Subject")
    if start < 0:
        return None
    i = start + len(b"/Subject")
    while i < len(data) and data[i:i + 1] in b" \r\n\t":
        i += 1
    if data[i:i + 1] == b"<":
        raw = bytes.fromhex(data[i + 1:data.index(b">", i)].decode("ascii"))
        return raw[2:].decode("utf-16-be") if raw[:2] == b"\xfe\xff" else raw.decode("latin-1")
    if data[i:i + 1] != b"(":
        return None
    out, depth, i = bytearray(), 1, i + 1
    escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    while i < len(data) and depth:
        c = data[i]
        if c == ord("\\"):
            nxt = data[i + 1]
            if nxt in escapes:
                out += escapes[nxt]
            elif ord("0") <= nxt <= ord("7"):
                digits = re.match(rb"[0-7]{1,3}", data[i + 1:i + 4]).group()
                out.append(int(digits, 8) & 0xFF)
                i += len(digits) - 1
            elif nxt not in b"\r\n":  # a backslash before a line end continues the line
                out.append(nxt)
            i += 2
            continue
        depth += c == ord("(")
        depth -= c == ord(")")
        if depth:
            out.append(c)
        i += 1
    return out.decode("latin-1")


def read(path: str | os.PathLike) -> dict | None:
    """The record an output carries, whatever its format (for the tests, and for users)."""
    path = Path(path)
    suffix = path.suffix
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        value = meta.get(KEY.encode())
        return json.loads(value) if value else None
    if suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props[KEY]) if KEY in props else None
    if suffix == ".json":
        document = json.loads(path.read_text())
        return document.get("provenance") if isinstance(document, dict) else None
    if suffix in (".pt", ".pth"):
        import torch

        document = torch.load(path, map_location="cpu", weights_only=True)
        return document.get("provenance") if isinstance(document, dict) else None
    if suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            value = image.text.get(KEY)
        return json.loads(value) if value else None
    if suffix == ".pdf":
        subject = _pdf_subject(path.read_bytes())
        return json.loads(subject.split(f"{KEY}:", 1)[1]) if subject and f"{KEY}:" in subject else None
    if suffix == ".root":
        import uproot

        with uproot.open(path) as f:
            return json.loads(str(f[KEY.replace(".", "_")])) if KEY.replace(".", "_") in f else None
    try:
        text = path.read_text()
    except UnicodeDecodeError:  # not text (TensorBoard's events, say): no record
        return None
    for line in text.splitlines():  # text: a comment line
        if line.lstrip("#").strip().startswith(f"{KEY}:"):
            return json.loads(line.split(f"{KEY}:", 1)[1])
    return None


# --- gnnjec verify: are the inputs the records name still what they were? ----------------------------------------

@dataclass(frozen=True)
class Finding:
    """An input named by ``output``'s record that differs from it (``changed``), or that cannot be checked (a remote
    one); ``input`` None: the output's own record cannot be read."""

    output: str
    input: str | None
    what: str
    changed: bool = True

    def line(self) -> str:
        return f"{self.output}: input {self.input}: {self.what}" if self.input else f"{self.output}: {self.what}"


@dataclass
class Verification:
    """What :func:`verify` found in a folder."""

    outputs: int = 0
    """Files with a record."""
    skipped: int = 0
    """Files without one (logs, benchmarks, tables, hidden temporaries)."""
    inputs: set = field(default_factory=set)
    """Every input the records name (resolved paths, or URLs), each counted once."""
    changed: set = field(default_factory=set)
    """The inputs among them that differ from a record (missing, or another size or SHA-256)."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def unreadable(self) -> int:
        return sum(f.input is None for f in self.findings)

    def summary(self) -> str:
        remote = {f.input for f in self.findings if not f.changed}
        parts = [f"{self.outputs} outputs checked", f"{len(self.inputs)} inputs", f"{len(self.changed)} changed"]
        parts += [f"{len(remote)} remote not checked"] if remote else []
        parts += [f"{self.unreadable} outputs unreadable"] if self.unreadable else []
        return ", ".join(parts) + f"; {self.skipped} files without a record skipped"


class _Inputs:
    """Sizes and SHA-256 of the inputs, each file read once however many records name it."""

    def __init__(self):
        self._sha256: dict[str, str] = {}

    def problem(self, item: dict, path: Path) -> str | None:
        """How the file ``path`` differs from its record ``item``: ``missing``, ``size A -> B``, ``sha256 differs``,
        or None."""
        if item.get("missing"):  # missing when the output was made
            return "missing when the output was made, present now" if path.exists() else None
        if not path.is_file():
            return "missing"
        size = path.stat().st_size
        if size != item["bytes"]:
            return f"size {item['bytes']} -> {size}"
        key = os.path.realpath(path)
        if key not in self._sha256:
            self._sha256[key] = sha256(path)
        return "sha256 differs" if self._sha256[key] != item["sha256"] else None


def _check(item: dict, output: str, root: Path, files: _Inputs, result: Verification) -> None:
    """Check one input of ``output``'s record (a folder's: each of its files, and none added)."""
    name = item["path"]
    if "://" in name:
        result.inputs.add(name)
        result.findings.append(Finding(output, name, "remote: not checked", changed=False))
        return
    path = Path(name) if Path(name).is_absolute() else root / name
    if "files" in item:  # a folder
        recorded = {os.path.realpath(root / f["path"]) for f in item["files"]}
        for f in item["files"]:
            _check(f, output, root, files, result)
        for new in sorted(p for p in path.rglob("*") if p.is_file() and os.path.realpath(p) not in recorded):
            shown = os.path.relpath(new, root) if not Path(name).is_absolute() else str(new)
            result.inputs.add(os.path.realpath(new))
            result.changed.add(os.path.realpath(new))
            result.findings.append(Finding(output, shown, f"not in the record: new in the folder {name}"))
        return
    key = os.path.realpath(path)
    result.inputs.add(key)
    problem = files.problem(item, path)
    if problem:
        result.changed.add(key)
        result.findings.append(Finding(output, name, problem))


def verify(folder: str | os.PathLike, root: str | os.PathLike = ".") -> Verification:
    """Read the record of every output in ``folder`` and check each input it names: there, and of the recorded
    size and SHA-256 (a remote input: not checked). Relative input paths are taken from ``root``, the folder the
    workflow ran in. Files without a record (logs, benchmarks, CSV and TSV tables) are counted and skipped."""
    from .errors import InputError

    folder, root = Path(folder), Path(root)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; give the workflow's results folder")
    result, files = Verification(), _Inputs()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        shown = str(path)
        if path.name.startswith("."):  # a writer's hidden temporary
            result.skipped += 1
            continue
        try:
            record = read(path)
            if record is None:
                result.skipped += 1
                continue
            result.outputs += 1
            for item in record["inputs"]:
                _check(item, shown, root, files, result)
        except Exception as err:  # a damaged output, or a record of another shape
            reason = (str(err).strip().splitlines() or [""])[0] or type(err).__name__
            result.findings.append(Finding(shown, None, f"unreadable: its record cannot be read "
                                                        f"({type(err).__name__}: {reason})"))
    if result.outputs == 0 and not result.findings:
        raise InputError(f"{folder}: no output with a provenance record in it; give the workflow's results folder")
    return result


def _verify_arguments(p) -> None:
    p.add_argument("folder", help="the outputs to check (results, or a folder in it)")
    p.add_argument("--root", default=".", help="the folder the workflow ran in, which the records' relative input "
                                               "paths start from (default: the current folder)")


def _verify(a) -> None:
    result = verify(a.folder, a.root)
    for finding in result.findings:
        print(finding.line())
    print(result.summary())
    problems = [f"{len(result.changed)} of {len(result.inputs)} inputs changed since the outputs above were made "
                "from them: restore them, or touch them and run snakemake, which makes again what they feed"
                ] if result.changed else []
    problems += [f"{result.unreadable} outputs whose record cannot be read: delete them and run snakemake"
                 ] if result.unreadable else []
    if problems:
        raise CheckFailed("; ".join(problems))


COMMANDS = {"verify": Command(_verify_arguments, _verify, provenance=False)}
