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
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

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
        return json.loads(path.read_text()).get("provenance")
    if suffix in (".pt", ".pth"):
        import torch

        return torch.load(path, map_location="cpu", weights_only=True).get("provenance")
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
    for line in path.read_text().splitlines():  # text: a comment line
        if line.lstrip("#").strip().startswith(f"{KEY}:"):
            return json.loads(line.split(f"{KEY}:", 1)[1])
    return None
