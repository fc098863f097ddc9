"""The demo's configuration and clouds, as the training benchmarks read them."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def load(config_path: Path, clouds: Path, script: str) -> dict:
    """The validated configuration; exits with one line naming the file when it is invalid or a split is missing."""
    sys.path.insert(0, str(REPO / "src"))
    from gnnjec.config import config_error

    config = yaml.safe_load(config_path.read_text())
    error = config_error(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    if error:
        sys.exit(f"{script}: {config_path}: {error}")
    for split in ("train", "val", "test"):
        if not (clouds / f"{split}.parquet").is_file():
            sys.exit(f"{script}: {clouds / f'{split}.parquet'}: no such file; run make demo first")
    return config
