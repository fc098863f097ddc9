"""The kinds of failure a stage reports, each as one line: bad input, a failed check, a stop by SIGTERM."""

from __future__ import annotations

import signal


class InputError(Exception):
    """Bad input: the message is one line that names the file, branch or config key, and the fix."""


class ConfigError(InputError):
    """Bad configuration: one line naming the config key (dotted, as in config/config.yaml) and the fix."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key {key}: {message}")


class CheckFailed(Exception):
    """A stage's own validation failed (for example ONNX Runtime disagreeing with torch)."""


class Terminated(BaseException):
    """SIGTERM (a batch system's kill, a preemption, snakemake stopping): raised in the main thread so
    that every ``finally`` runs and temporary outputs are removed before the process exits."""


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` (the default action kills without any clean-up)."""

    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
