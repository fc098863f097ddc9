"""Evaluate stage: ONNX Runtime inference on the test split, and the physics metrics file."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import awkward as ak
import numpy as np

from .dataset import CloudData
from .errors import InputError, atomic_output
from .export import OnnxRegressor
from .metrics import TABLE_COLUMNS, binned_metrics, format_summary, strict, summarize, table_rows

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ("pt_gen", "eta_gen", "flavour", "pt_raw", "pt_std", "target")


def pt_bin_edges(cfg: dict) -> np.ndarray:
    return np.geomspace(cfg["pt_min"], cfg["pt_max"], cfg["n_pt_bins"] + 1)


def run_inference(onnx_path: str, clouds_path: str, predictions_path: str, threads: int | None = None) -> dict:
    """Predict every test jet; write pt_raw, pt_std, the network's pt_corr and the truth to Parquet."""
    regressor = OnnxRegressor(onnx_path, threads)
    data = CloudData(clouds_path, regressor.inputs, truth=TRUTH_COLUMNS)
    if data.n == 0:
        raise InputError(f"{clouds_path}: the test split has no jets; convert more events")
    start = time.perf_counter()
    prediction = regressor.predict(data)
    seconds = time.perf_counter() - start
    t = data.truth
    table = ak.Array({
        **{k: t[k] for k in TRUTH_COLUMNS},
        "prediction": prediction,
        "pt_corr": (t["pt_raw"] * np.exp(prediction)).astype(np.float32),
    })
    with atomic_output(predictions_path) as tmp:
        ak.to_parquet(table, tmp)
    info = {"jets": data.n, "seconds": seconds, "jets_per_second": data.n / max(seconds, 1e-9),
            "model": regressor.hparams["model"]}
    log.info("ONNX Runtime inference: %d jets in %.1f s (%.0f jets/s)", data.n, seconds, info["jets_per_second"])
    return info


def compute_metrics(predictions_path: str, metrics_path: str, cfg: dict, model_name: str,
                    table_path: str | None = None) -> str:
    """Binned metrics (strict JSON, and a CSV table per bin when ``table_path`` is given) and the
    headline summary, for the network and the standard correction; returns the summary's text."""
    p = ak.from_parquet(predictions_path)
    pt_gen = np.asarray(p.pt_gen, np.float64)
    ok = np.isfinite(pt_gen) & (pt_gen > 0)
    pt_gen = pt_gen[ok]
    abs_eta = np.abs(np.asarray(p.eta_gen))[ok]
    flavour = np.asarray(p.flavour)[ok]
    responses = {
        "standard": np.asarray(p.pt_std, np.float64)[ok] / pt_gen,
        model_name: np.asarray(p.pt_corr, np.float64)[ok] / pt_gen,
    }
    metrics = binned_metrics(responses, pt_gen, abs_eta, flavour, pt_bin_edges(cfg), cfg["eta_bins"],
                             n_bootstrap=cfg["n_bootstrap"], seed=cfg.get("seed", 0))
    summary = summarize(responses, metrics, pt_gen, abs_eta, flavour, min_pt=cfg["summary_min_pt"])
    metrics["summary"] = summary
    metrics["definitions"] = {
        "response": "pt_corr / pt_gen",
        "resolution": "IQR / median of the response",
        "flavour_spread": "sum over b, c, uds, g of |median_f - mean of the flavour medians|",
        "resolution_gain_mean": f"mean over gen-pt bins above {cfg['summary_min_pt']} GeV of 1 - res / res_standard",
        "flavour_spread_change": f"spread / spread_standard - 1, medians of all jets with pt_gen > {cfg['summary_min_pt']} GeV",
    }
    with atomic_output(metrics_path) as tmp:
        Path(tmp).write_text(json.dumps(strict(metrics), indent=1, allow_nan=False))
    if table_path:
        write_table(table_rows(metrics), table_path)
    return format_summary(summary)


def write_table(rows: list[dict], path: str) -> None:
    """The rows as CSV, atomically (empty cells where a bin has too few jets)."""
    import csv

    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
