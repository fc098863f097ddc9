"""What the tests share and pytest does not collect: the workflow runner and the tiny configuration
(:mod:`support.workflow`), comparisons of two runs' results (:mod:`support.results`), and the stand-ins for
services (:mod:`support.fake_schedd`, :mod:`support.slurm_cluster`, :mod:`support.xrootd_server`, which also
run as scripts).

``tests/`` is on ``sys.path`` (pyproject's ``[tool.pytest.ini_options] pythonpath``): ``from support import
need``, ``from support.workflow import TINY``.
"""

from __future__ import annotations

import os

import pytest


def need(why: str | None) -> None:
    """Skip for a missing system requirement, but fail under CI, where make test installs them all."""
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
