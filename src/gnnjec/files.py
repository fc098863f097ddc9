"""Files every stage reads and writes: outputs that appear only when complete, inputs that fail in one
line naming the file, and canonical JSON (equal values give equal text, hashes and point names)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
from pathlib import Path

from .errors import CheckFailed, InputError, Terminated


def canonical_json(value, default=None) -> str:
    """``value`` as compact JSON with sorted keys: the one text of a value (rule parameters, point
    names, checkpoint fingerprints, provenance hashes). ``default`` as in :func:`json.dumps`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=default)


@contextlib.contextmanager
def reading(path, what: str, fix: str):
    """Turn a library's failure to read ``path`` (pyarrow, uproot, json, onnx, ...) into one
    :class:`InputError` line naming the file, what it should have been, and the fix."""
    try:
        yield
    except (InputError, CheckFailed, Terminated, KeyboardInterrupt, MemoryError):
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; {fix}") from None
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0] or type(err).__name__
        raise InputError(f"{path}: not a readable {what} ({type(err).__name__}: {reason}); {fix}") from None


def read_json(path, what: str, fix: str, keys: tuple[str, ...] = ()):
    """The JSON document at ``path`` (an object with ``keys`` at least), or one InputError line naming it."""
    with reading(path, what, fix):
        document = json.loads(Path(path).read_text())
    if not isinstance(document, dict) or any(k not in document for k in keys):
        missing = [k for k in keys if not isinstance(document, dict) or k not in document]
        raise InputError(f"{path}: not a {what}: no {missing[0] if missing else 'object'!r}; {fix}")
    return document


def guarded(items, path, what: str, fix: str):
    """Iterate ``items`` (a reader of ``path``), turning its failures into :func:`reading`'s one line;
    the consumer's own errors are not touched."""
    iterator = iter(items)
    while True:
        with reading(path, what, fix):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


_HOST = socket.gethostname().split(".")[0].replace("-", "_") or "host"


def _temporary(path: Path) -> Path:
    """The sibling a process writes ``path`` to: hidden, and named by host and process."""
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove what killed writers of ``path`` on this host left behind (SIGKILL runs no clean-up)."""
    path = Path(path)
    prefix = f".{path.name}.tmp-{_HOST}-"
    removed = []
    for stale in path.parent.glob(glob.escape(prefix) + "*"):
        pid = stale.name[len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(stale)
            removed.append(stale)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder and everything in it) to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(Path(root) / name)
            _fsync_folder(Path(root))
        return
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not every filesystem lets a folder be fsynced: then skip)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_written: list[Path] = []


def written() -> list[Path]:
    """Every path this process has completed with :func:`atomic_output`, in order (absolute)."""
    return list(_written)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    The temporary is flushed to disk before the rename, so that a crash of the machine cannot leave
    a complete-looking but empty file. A crash, an exception or SIGTERM (see
    :func:`terminate_on_sigterm`) leaves nothing at ``path`` that could pass for a complete output;
    what a SIGKILLed writer left is removed by the next writer of the same path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temporary(path)
    try:
        yield tmp
        _fsync(tmp)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
        _written.append(path.absolute())
        _fsync_folder(path.parent)
    finally:
        _remove(tmp)
