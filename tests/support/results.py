"""Comparing two runs of the workflow: what must be equal, and the timings that may differ."""

from __future__ import annotations

import json
from pathlib import Path

TIMING_KEYS = {"seconds", "jets_per_second", "data_wait_share"}  # per epoch, the only history keys allowed to differ


def epochs_without_timings(history: dict) -> list[dict]:
    """A training history's epochs, without the keys that differ from run to run (TIMING_KEYS)."""
    return [{k: v for k, v in epoch.items() if k not in TIMING_KEYS} for epoch in history["epochs"]]


def assert_same_results(run: Path, local: Path) -> None:
    """The workflow's results in ``run`` (a batch run) equal those in ``local`` (tiny_run's): histories but their
    timings, model selection, ONNX check, metrics (provenance records: the stage parameters, not the inputs'
    checksums, which trace back to the histories' timings, nor the git commit of a copied checkout), the ONNX
    graph and the predictions."""
    import onnx
    import pyarrow.parquet as pq

    def histories(d: Path) -> list[str]:  # <point>/history.json, or <point>/rung<r>/history.json with halving
        training = d / "results" / "training"
        return sorted(str(p.relative_to(training)) for p in training.rglob("history.json"))

    points = histories(local)
    assert points and points == histories(run)
    for point in points:
        there, here = (json.loads((d / "results" / "training" / point).read_text()) for d in (run, local))
        assert there["best_val_loss"] == here["best_val_loss"], point
        strip = epochs_without_timings(there)
        assert strip == epochs_without_timings(here), point
        assert all("val_loss" in e and "train_loss" in e for e in strip)

    def content(path):
        document = json.loads(path.read_text())
        return document, document.pop("provenance")["parameters"]

    for path in ("training/best.json", "export/pfn/onnx_check.json", "evaluation/metrics.json"):
        assert content(run / "results" / path) == content(local / "results" / path), path
    graphs = [onnx.load(str(d / "results/export/pfn/model.onnx")).graph.SerializeToString() for d in (run, local)]
    assert graphs[0] == graphs[1]
    predictions = "results/evaluation/predictions.parquet"
    assert pq.read_table(run / predictions).equals(pq.read_table(local / predictions))
