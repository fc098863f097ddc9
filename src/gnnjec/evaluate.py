"""Evaluate stage: ONNX Runtime inference of every exported model on the test split (or on all the jets of an
evaluation-only sample, in one or more clouds files), and the physics metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import provenance
from .clouds import n_jets, no_jets
from .command import Command
from .dataset import CloudData
from .errors import InputError
from .features import thesis_flavour_class
from .files import atomic_output, reading
from .inference import OnnxRegressor
from .metrics import (
    IQR_PER_SIGMA,
    MIN_JETS,
    PILEUP_QUANTILES,
    STANDARD,
    TABLE_COLUMNS,
    TAIL_SIGMAS,
    VIEW_MAX_PT,
    binned_metrics,
    closure,
    coverage,
    format_closure_bins,
    format_coverage,
    format_flavour_response,
    format_summary,
    strict,
    summarize,
    table_rows,
    views,
)
from .spec import BASELINE

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ("pt_gen", "eta_gen", "flavour", "hadron_flavour", "parton_flavour", "pt_raw", "pt_std", "target",
                 "rho", "npv")
"""What the predictions file keeps of each test jet besides the corrections: truth, the standard correction, and
the pileup (rho, number of vertices) of its event."""


def corrected_column(model: str) -> str:
    """The predictions file's column of ``model``'s corrected pt (with its residual correction, where it has one)."""
    return f"pt_corr_{model}"


def network_column(model: str) -> str:
    """The predictions file's column of ``model``'s network alone, before its residual correction: only for a model
    with a residual correction (:mod:`gnnjec.residual`)."""
    return f"pt_network_{model}"


QUANTILE_COLUMN = re.compile(r"pt_q(?P<percent>[0-9.]+)_(?P<model>.+)")
"""The predictions file's columns of the pt at a quantile of a model's prediction (:func:`quantile_column`)."""


def quantile_column(model: str, level: float) -> str:
    """The predictions file's column of the pt at quantile ``level`` of ``model``'s prediction (a network trained with
    quantiles), e.g. ``pt_q16_pfn``: pt_raw * exp(that quantile of log(pt_gen / pt_raw)); QUANTILE_COLUMN reads it."""
    return f"pt_q{100 * level:g}_{model}"


def _valid_gen_pt(pt_gen: np.ndarray) -> np.ndarray:
    """The jets the metrics count: those with a generator jet (a finite, positive pt_gen)."""
    return np.isfinite(pt_gen) & (pt_gen > 0)


def pt_bin_edges(cfg: dict) -> np.ndarray:
    return np.geomspace(cfg["pt_min"], cfg["pt_max"], cfg["n_pt_bins"] + 1)


def run_inference(models: dict[str, str], clouds: str | list[str], predictions_path: str,
                  threads: int | None = None) -> dict:
    """Predict every jet of the clouds file(s) ``clouds`` (the test split, or an evaluation sample's files: all their
    jets, whatever their split) with each ONNX model (name -> path); write the truth, pt_raw, pt_std and per model its
    prediction and corrected pt (``pt_corr_<name>``; and ``pt_network_<name>``, the network alone, for a model with a
    residual correction) to Parquet. Returns per model the exported point and the inference speed."""
    paths = [clouds] if isinstance(clouds, (str, os.PathLike)) else list(clouds)
    regressors = {name: OnnxRegressor(onnx_path, threads) for name, onnx_path in models.items()}
    info = {name: {"point": regressor.name, "jets": 0, "seconds": 0.0} for name, regressor in regressors.items()}
    tables = []
    for path in paths:  # a file at a time, every model on it (an evaluation sample's file may hold no jets)
        if n_jets(path) == 0:
            continue
        columns, data = {}, None
        for name, regressor in regressors.items():
            if data is None or data.inputs != regressor.inputs:
                data = CloudData(path, regressor.inputs, truth=TRUTH_COLUMNS)
            wanted = ("prediction", *(o for o in ("network_prediction", "quantiles") if o in regressor.outputs))
            start = time.perf_counter()
            predicted = regressor.predict_outputs(data, wanted)  # both outputs from one pass
            info[name]["seconds"] += time.perf_counter() - start
            info[name]["jets"] += data.n
            prediction = predicted["prediction"]
            columns[f"prediction_{name}"] = prediction
            columns[corrected_column(name)] = (data.truth["pt_raw"] * np.exp(prediction)).astype(np.float32)
            if "network_prediction" in predicted:
                network = predicted["network_prediction"]
                columns[network_column(name)] = (data.truth["pt_raw"] * np.exp(network)).astype(np.float32)
            for i, level in enumerate(regressor.quantiles if "quantiles" in predicted else ()):
                columns[quantile_column(name, level)] = (data.truth["pt_raw"]
                                                         * np.exp(predicted["quantiles"][:, i])).astype(np.float32)
        tables.append(pa.table({**{k: data.truth[k] for k in TRUTH_COLUMNS}, **columns}))
    if not tables:
        if len(paths) == 1:
            raise no_jets(paths[0])
        raise InputError(f"{', '.join(map(str, paths))}: the files have no jets; convert more events or files")
    for name, i in info.items():
        i["jets_per_second"] = i["jets"] / max(i["seconds"], 1e-9)
        log.info("%s (%s), ONNX Runtime: %d jets in %.1f s (%.0f jets/s)", name, i["point"], i["jets"], i["seconds"],
                 i["jets_per_second"])
    table = pa.concat_tables(tables)
    with atomic_output(predictions_path) as tmp:
        pq.write_table(table.replace_schema_metadata({provenance.KEY: provenance.as_json()}), tmp)
    return info


def read_responses(predictions_path: str, network: bool = False):
    """The jets of a predictions file with a valid gen pt: their truth (pt_gen, abs_eta, flavour, thesis_flavour,
    and rho and npv where the file has them) and the response pt_corr / pt_gen of each method (the standard
    correction first, then the jet-level DNN, then the other models). With ``network``, also a third dict: the
    response of each model's network alone, before its residual correction (``pt_network_<model>``, for the
    models that have one)."""
    with reading(predictions_path, "predictions Parquet file", "rerun the evaluate rule"):
        p = ak.from_parquet(predictions_path)
    fields = set(p.fields)
    missing = [c for c in ("pt_gen", "eta_gen", "flavour", "hadron_flavour", "parton_flavour", "pt_std")
               if c not in fields]
    if missing:
        raise InputError(f"{predictions_path}: no column {missing[0]!r}; not a predictions file of this gnnjec "
                         "evaluate: rerun the evaluate rule")
    pt_gen = np.asarray(p.pt_gen, np.float64)
    ok = _valid_gen_pt(pt_gen)
    pt_gen = pt_gen[ok]
    truth = {"pt_gen": pt_gen, "abs_eta": np.abs(np.asarray(p.eta_gen, np.float64))[ok],
             "flavour": np.asarray(p.flavour)[ok],
             "thesis_flavour": thesis_flavour_class(np.asarray(p.hadron_flavour), np.asarray(p.parton_flavour))[ok]}
    truth.update({k: np.asarray(p[k], np.float64)[ok] for k in ("rho", "npv") if k in fields})
    prefix, network_prefix = corrected_column(""), network_column("")
    responses = {STANDARD: np.asarray(p.pt_std, np.float64)[ok] / pt_gen}
    networks = {}
    for column in p.fields:
        if column.startswith(prefix):
            responses[column[len(prefix):]] = np.asarray(p[column], np.float64)[ok] / pt_gen
        elif column.startswith(network_prefix):
            networks[column[len(network_prefix):]] = np.asarray(p[column], np.float64)[ok] / pt_gen
    # the jet-level baseline before the networks on constituents: tables and plots read standard, DNN, GNN
    order = sorted(responses, key=lambda m: 0 if m == STANDARD else 1 if m == BASELINE else 2)
    responses = {m: responses[m] for m in order}
    return (truth, responses, networks) if network else (truth, responses)


def read_quantiles(predictions_path: str) -> dict[str, dict[float, np.ndarray]]:
    """Per model trained with quantiles, level -> the pt at that quantile of each jet with a valid gen pt (the jets
    and order of :func:`read_responses`)."""
    found = [(m["model"], float(m["percent"]) / 100, c) for c in pq.read_schema(predictions_path).names
             if (m := QUANTILE_COLUMN.fullmatch(c))]
    if not found:
        return {}
    p = ak.from_parquet(predictions_path, columns=["pt_gen", *(c for *_, c in found)])
    ok = _valid_gen_pt(np.asarray(p.pt_gen, np.float64))
    out: dict[str, dict[float, np.ndarray]] = {}
    for model, level, column in found:
        out.setdefault(model, {})[level] = np.asarray(p[column], np.float64)[ok]
    return out


def compute_metrics(predictions_path: str, metrics_path: str, cfg: dict, models: dict | None = None,
                    table_path: str | None = None, sample: str | None = None) -> str:
    """Binned metrics (strict JSON, and a CSV table per bin when ``table_path`` is given), the headline summary,
    the calibrator's views (pileup, flavour, |eta|) and closure in gen-pt and reco-pt bins, all with bootstrap
    errors, for each model and the standard correction; returns the summary's text. ``models`` (name -> its
    exported training point) is recorded in the metrics file. ``sample``: the predictions are of that
    evaluation-only sample (recorded as ``sample``), and the summary begins with its name and ends with the closure
    bin by bin and the flavour response of each method."""
    truth, responses, networks = read_responses(predictions_path, network=True)
    pt_gen, abs_eta, flavour = truth["pt_gen"], truth["abs_eta"], truth["flavour"]
    edges = pt_bin_edges(cfg)
    min_pt, n_bootstrap, seed = cfg["summary_min_pt"], cfg["n_bootstrap"], cfg.get("seed", 0)
    metrics = binned_metrics(responses, pt_gen, abs_eta, flavour, edges, cfg["eta_bins"], n_bootstrap=n_bootstrap,
                             seed=seed)
    regions = [*cfg["eta_bins"], *cfg.get("headline_eta_bins", [])]
    summary = summarize(responses, pt_gen, abs_eta, flavour, edges, regions, reference=STANDARD, min_pt=min_pt,
                        n_bootstrap=n_bootstrap, seed=seed, thesis_flavour=truth["thesis_flavour"])
    metrics["summary"] = summary
    metrics["summary_min_pt"] = min_pt
    metrics["views"] = views(responses, truth, min_pt=min_pt, n_bootstrap=n_bootstrap, seed=seed)
    metrics["closure"] = closure(responses, pt_gen, abs_eta, edges, cfg["eta_bins"], min_pt=min_pt,
                                 n_bootstrap=n_bootstrap, seed=seed, network=networks)
    quantile_pt = read_quantiles(predictions_path)
    metrics["coverage"] = {model: coverage(pt_gen, abs_eta, responses[model] * pt_gen, levels, edges, cfg["eta_bins"],
                                           min_pt=min_pt) for model, levels in quantile_pt.items()}
    graph_networks = [m for m in responses if m not in (STANDARD, BASELINE)]
    if BASELINE in responses and graph_networks:  # what the constituents are worth: each GNN over the jet-level DNN
        versus = {m: responses[m] for m in (BASELINE, *graph_networks)}
        headline = cfg.get("headline_eta_bins") or cfg["eta_bins"]
        metrics["versus_baseline"] = {"baseline": BASELINE, "summary": summarize(
            versus, pt_gen, abs_eta, flavour, edges, headline, reference=BASELINE, min_pt=min_pt,
            n_bootstrap=n_bootstrap, seed=seed, thesis_flavour=truth["thesis_flavour"])}
    metrics["models"] = models or {}
    if sample is not None:
        metrics["sample"] = sample
    metrics["definitions"] = {
        "response": "pt_corr / pt_gen",
        "resolution": "IQR / median of the response",
        "flavour_spread": "sum over b, c, uds, g of |median_f - mean of the flavour medians|",
        "resolution_gain_mean": f"mean over gen-pt bins above {min_pt} GeV of 1 - res / res_standard",
        "flavour_spread_change": f"spread / spread_standard - 1, medians of all jets with pt_gen > {min_pt} GeV",
        "tail_fraction": f"fraction of jets whose response lies beyond {TAIL_SIGMAS:g} IQR / {IQR_PER_SIGMA} of the "
                         "median (per bin; in the summary, of each jet's gen-pt bin above the pt cut)",
        "resolution_ratio": "resolution / resolution_standard on the same jets; its error the scatter of the ratio "
                            "over the resamples",
        "errors": f"standard deviation over {n_bootstrap} bootstrap resamples of the jets (per bin, and in the "
                  "summary, the same resample for every method)",
        "thesis_resolution_gain": "the thesis's: 1 - mean over every gen-pt bin (from pt_min; bins with fewer than "
                                  f"{MIN_JETS} jets left out) of res / res_standard",
        "thesis_flavour_spread": "the thesis's: sum over u, d, s, c, b, g of |median_f - mean of the six medians|, "
                                 f"each pooled over the range's jets with pt_gen > {min_pt} GeV",
        "views": f"jets with {min_pt} <= pt_gen < {VIEW_MAX_PT:g} GeV per |eta_gen| region: in {PILEUP_QUANTILES} "
                 "quantiles of rho and of the number of vertices (pileup), per flavour (flavour); all jets above "
                 f"{min_pt} GeV in |eta_gen| bins (eta)",
        "closure": "median response in bins of gen pt (gen) and of each correction's own corrected pt (reco); "
                   "network: a model's network alone, before its residual correction",
        "coverage": "of each network trained with quantiles: the share of jets with pt_gen below each predicted "
                    "quantile (below; nominal: its level) and between the lowest and the highest (coverage; nominal: "
                    "their difference), binomial errors, per |eta_gen| bin in bins of gen pt (gen) and of the "
                    "network's corrected pt (reco)",
        "versus_baseline": f"each graph network against the jet-level baseline {BASELINE!r} in the headline regions: "
                           "the summary's numbers with the baseline as the reference, on the same jets and resamples",
    }
    with atomic_output(metrics_path) as tmp:
        Path(tmp).write_text(json.dumps(strict(provenance.with_provenance(metrics)), indent=1, allow_nan=False))
    if table_path:
        write_table(table_rows(metrics), table_path)
    text = format_summary(summary, closure_summary=metrics["closure"]["summary"],
                          versus_baseline=metrics.get("versus_baseline"))
    if metrics["coverage"]:
        text = f"{text}\n\n{format_coverage(metrics['coverage'])}"
    if sample is None:
        return text
    title = (f"Evaluation sample {sample!r}: all its {len(pt_gen)} jets with a generator match (none of them trained, "
             "validated or tested on)")
    return "\n\n".join([title, text, format_closure_bins(metrics["closure"]["summary"]),
                         format_flavour_response(metrics["views"]["flavour"], metrics["views"]["pt_range"])])


def write_table(rows: list[dict], path: str) -> None:
    """The rows as CSV, atomically (empty cells where a bin has too few jets)."""
    import csv

    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _arguments(p) -> None:
    from .command import json_value

    p.add_argument("--onnx", nargs="+", required=True, metavar="NAME=ONNX", help="the models to evaluate, by name")
    p.add_argument("--clouds", nargs="+", required=True,
                   help="the test split, or an evaluation sample's clouds files (all their jets)")
    p.add_argument("--predictions", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--config", type=json_value, required=True, help="config key evaluation (JSON)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--table", default=None, help="also write the binned metrics as CSV here")
    p.add_argument("--sample", default=None,
                   help="the clouds are this evaluation-only sample's: its summary adds the closure bin by bin and the "
                        "flavour response")


def _run(a) -> None:
    from .command import named_paths

    info = run_inference(named_paths(a.onnx), a.clouds, a.predictions, a.threads)
    # the exported point of each model (timings go to the log: the metrics file depends on the inputs only)
    table = compute_metrics(a.predictions, a.metrics, a.config, {k: v["point"] for k, v in info.items()}, a.table,
                            a.sample)
    with atomic_output(a.summary) as tmp:
        Path(tmp).write_text(f"{table}\n\n{provenance.comment()}\n")
    print(table)


COMMANDS = {"evaluate": Command(_arguments, _run, reads=("onnx", "clouds"),
                            outputs=("predictions", "metrics", "summary", "table"))}
