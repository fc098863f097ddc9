"""One-line errors for bad input, and outputs that appear only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


class InputError(Exception):
    """Bad input: the message is one line that names the file, branch or config key, and the fix."""


class CheckFailed(Exception):
    """A stage's own validation failed (for example ONNX Runtime disagreeing with torch)."""


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    A crash leaves nothing at ``path`` that could pass for a complete output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
