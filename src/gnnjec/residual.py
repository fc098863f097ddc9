"""Residual correction stage: the numerical inversion of a network's response in bins of gen pt and |eta|,
derived on the validation split and grafted onto the exported ONNX model.

Why: a regression of log(pt_gen / pt_raw) with the MAE loss predicts the conditional *median* of pt_gen given
the jet. On a falling pt spectrum that closes in bins of the corrected pt, not in bins of gen pt, where it is
1-2.5 % low at 25-150 GeV on the demo. CMS's MC-truth L2L3 correction is derived the other way, by numerical
inversion: in each bin of gen pt, the median response R = pt_corr / pt_gen and the typical corrected pt
x = exp(median log pt_corr) of its jets; the correction at x is 1 / R. This stage does that on top of each
network, in the bins of config key ``residual`` (gen-pt bins merged until each holds ``min_jets`` jets, so that
every point of the inversion is a precise median), and interpolates linearly in log pt between the points
(constant beyond the first and last). Jets beyond the last |eta| edge get no correction: where the derivation
sample is too small, a residual fitted to its noise would make the closure worse, not better.

The correction is written into the model: ``model.onnx`` is the network (``network.onnx``, checked against torch by
the export stage) with a few ONNX nodes appended that evaluate the table from the network's prediction and the
jet's own inputs (log pt_raw, eta). Its outputs are ``prediction`` (with the residual correction: what every user
of the model gets, Triton and the analysis API included) and ``network_prediction`` (the network alone). Both are
log(pt_corr / pt_raw). The table is also written as JSON beside it, with the derivation sample's closure in gen-pt
and reco-pt bins.

A network trained with quantiles gets its interval calibrated in the same bins (:func:`derive_interval`): each
quantile's distance from the prediction is scaled so that, in each group of gen-pt bins of the validation split, the
level's share of jets lies below it (a conformal calibration). The model's ``quantiles`` are the corrected prediction
plus the scaled distances; ``network_quantiles`` are the network's own. The JSON holds the factors (``interval``)
and the derivation sample's coverage before and after (``interval_coverage``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from . import provenance
from .command import Command, json_value, write_json
from .errors import CheckFailed, ConfigError, InputError
from .files import atomic_output
from .metrics import closure, coverage

log = logging.getLogger(__name__)

NETWORK_OUTPUT = "network_prediction"
"""The grafted model's output of the network alone (before the residual correction)."""

NETWORK_QUANTILES = "network_quantiles"
"""A quantile network's quantiles before the residual correction; its ``quantiles`` output is shifted by the same
correction as its prediction, so that the interval stays around the corrected pt."""

CHECK_TOLERANCE = 1e-5
"""Largest |ONNX - numpy| of the residual (in log pt) that the stage accepts."""


def pt_edges(cfg: dict) -> np.ndarray:
    """The gen-pt bin edges of config key ``residual``: ``n_pt_bins`` logarithmic bins over ``pt_range``."""
    low, high = cfg["pt_range"]
    return np.geomspace(low, high, cfg["n_pt_bins"] + 1)


def _groups(pt_gen, abs_eta, cfg: dict):
    """Per |eta| bin of ``cfg["eta_edges"]``: (its jets, its groups of consecutive gen-pt bins of ``cfg``, each
    holding ``cfg["min_jets"]`` jets; what is left at the top joins the last group)."""
    edges, eta_edges = pt_edges(cfg), np.asarray(cfg["eta_edges"], np.float64)
    pt_bin = np.searchsorted(edges, pt_gen, side="right") - 1
    for k in range(len(eta_edges) - 1):
        in_eta = (abs_eta >= eta_edges[k]) & (abs_eta < eta_edges[k + 1])
        in_range = in_eta & (pt_bin >= 0) & (pt_bin < len(edges) - 1)
        counts = np.bincount(pt_bin[in_range], minlength=len(edges) - 1)
        groups, current, held = [], [], 0
        for i, count in enumerate(counts):
            current.append(i)
            held += count
            if held >= cfg["min_jets"]:
                groups.append(current)
                current, held = [], 0
        if current and groups:
            groups[-1] += current
        yield in_eta, groups


def derive(pt_corr, pt_gen, abs_eta, cfg: dict) -> dict:
    """The residual table from jets' corrected pt (by the network), gen pt and |eta| (of the gen jet, as the
    evaluation bins them).

    Per |eta| bin of ``cfg["eta_edges"]``, consecutive gen-pt bins are merged until they hold ``cfg["min_jets"]``
    jets (what is left at the top joins the last group); each group gives one point of the inversion, its jets'
    median log corrected pt and -log of their median response. The log correction at each knot (the centres of
    the gen-pt bins, in log pt) is interpolated between the points, and held beyond the first and last. An |eta|
    bin without a group of ``min_jets`` jets gets no correction (zeros)."""
    pt_corr, pt_gen, abs_eta = (np.asarray(a, np.float64) for a in (pt_corr, pt_gen, abs_eta))
    ok = np.isfinite(pt_corr) & (pt_corr > 0) & np.isfinite(pt_gen) & (pt_gen > 0) & np.isfinite(abs_eta)
    pt_corr, pt_gen, abs_eta = pt_corr[ok], pt_gen[ok], abs_eta[ok]
    edges, eta_edges = pt_edges(cfg), np.asarray(cfg["eta_edges"], np.float64)
    knots = np.log(np.sqrt(edges[:-1] * edges[1:]))
    pt_bin = np.searchsorted(edges, pt_gen, side="right") - 1
    table, points = [], []
    for in_eta, groups in _groups(pt_gen, abs_eta, cfg):
        xs, ys, ns, ranges = [], [], [], []
        for group in groups:
            sel = in_eta & np.isin(pt_bin, group)
            xs.append(float(np.median(np.log(pt_corr[sel]))))
            ys.append(float(-np.log(np.median(pt_corr[sel] / pt_gen[sel]))))
            ns.append(int(sel.sum()))
            ranges.append([float(edges[group[0]]), float(edges[group[-1] + 1])])
        order = np.argsort(xs)
        xs, ys = np.asarray(xs)[order], np.asarray(ys)[order]
        table.append(np.interp(knots, xs, ys).tolist() if len(xs) else [0.0] * len(knots))
        points.append({"log_pt": xs.tolist(), "log_correction": ys.tolist(), "jets": np.asarray(ns)[order].tolist(),
                       "gen_pt": np.asarray(ranges).reshape(-1, 2)[order].tolist()})
    return {"eta_edges": eta_edges.tolist(), "log_pt_knots": knots.tolist(), "log_correction": table,
            "inversion_points": points, "jets": int(len(pt_gen))}


MIN_SCALE = 0.1
"""The least an interval calibration may narrow a quantile's distance from the median."""


def derive_interval(pt_corr, pt_after, pt_gen, abs_eta, offsets, levels, cfg: dict) -> dict:
    """The interval calibration of a network trained with quantiles, derived in the residual correction's bins:
    per |eta| bin and group of gen-pt bins, for each level tau, the factor s by which the quantile's distance from
    the prediction (``offsets``: quantile minus prediction of each jet, in log pt) must be multiplied so that a
    share tau of the group's jets have pt_gen below it (around the prediction after the residual correction,
    ``pt_after``): s = sign x the tau quantile of log(pt_gen / pt_after) / |offset|. A conformal calibration on the
    validation split: the network's quantiles can be too narrow (under-trained tails) or too wide, and binned in
    gen pt they meet the falling spectrum as the median does. Interpolated in log pt (the network's corrected pt,
    ``pt_corr``, as the residual's) between the groups; 1 (no change) for the median, for |eta| bins without a group
    and beyond the last |eta| edge."""
    pt_corr, pt_after, pt_gen, abs_eta = (np.asarray(a, np.float64) for a in (pt_corr, pt_after, pt_gen, abs_eta))
    offsets = np.asarray(offsets, np.float64)
    ok = np.isfinite(pt_corr) & (pt_corr > 0) & np.isfinite(pt_gen) & (pt_gen > 0) & np.isfinite(abs_eta) & \
        np.isfinite(pt_after) & (pt_after > 0) & np.all(np.isfinite(offsets), axis=1)
    pt_corr, pt_after, pt_gen, abs_eta, offsets = pt_corr[ok], pt_after[ok], pt_gen[ok], abs_eta[ok], offsets[ok]
    edges = pt_edges(cfg)
    knots = np.log(np.sqrt(edges[:-1] * edges[1:]))
    pt_bin = np.searchsorted(edges, pt_gen, side="right") - 1
    d = np.log(pt_gen / pt_after)
    scale, points = [], []
    for in_eta, groups in _groups(pt_gen, abs_eta, cfg):
        xs, ss = [], []
        for group in groups:
            sel = in_eta & np.isin(pt_bin, group)
            xs.append(float(np.median(np.log(pt_corr[sel]))))
            factors = []
            for i, tau in enumerate(levels):
                o = offsets[sel, i]
                if tau == 0.5 or not np.any(o != 0):
                    factors.append(1.0)
                    continue
                sign = 1.0 if tau > 0.5 else -1.0
                u = d[sel] / np.maximum(np.abs(o), 1e-6)
                factors.append(max(float(sign * np.quantile(u, tau)), MIN_SCALE))
            ss.append(factors)
        order = np.argsort(xs)
        xs, ss = np.asarray(xs)[order], np.asarray(ss).reshape(len(xs), len(levels))[order]
        scale.append([[float(np.interp(x, xs, ss[:, i])) if len(xs) else 1.0 for i in range(len(levels))]
                      for x in knots])
        points.append({"log_pt": xs.tolist(), "scale": ss.tolist()})
    return {"levels": [float(q) for q in levels], "scale": scale, "points": points}


def evaluate_scale(table: dict, log_pt_corr, abs_eta) -> np.ndarray:
    """The interval calibration's factors (``[jets, levels]``) at each jet's log corrected pt (the network's) and
    |eta|, as the grafted ONNX nodes compute them: 1 beyond the last |eta| edge."""
    interval = table["interval"]
    log_pt_corr, abs_eta = np.asarray(log_pt_corr, np.float64), np.asarray(abs_eta, np.float64)
    eta_edges, knots = np.asarray(table["eta_edges"]), np.asarray(table["log_pt_knots"])
    k = np.searchsorted(eta_edges, abs_eta, side="right") - 1
    out = np.ones((len(log_pt_corr), len(interval["levels"])))
    for b, values in enumerate(interval["scale"]):
        sel = k == b
        values = np.asarray(values)
        for i in range(values.shape[1]):
            out[sel, i] = np.interp(log_pt_corr[sel], knots, values[:, i])
    return out


def evaluate_table(table: dict, log_pt_corr, abs_eta) -> np.ndarray:
    """The table's log correction at each jet's log corrected pt and |eta|, as the grafted ONNX nodes compute it:
    none beyond the last |eta| edge."""
    log_pt_corr, abs_eta = np.asarray(log_pt_corr, np.float64), np.asarray(abs_eta, np.float64)
    eta_edges, knots = np.asarray(table["eta_edges"]), np.asarray(table["log_pt_knots"])
    k = np.maximum(np.searchsorted(eta_edges, abs_eta, side="right") - 1, 0)
    out = np.zeros(len(log_pt_corr))
    for b, values in enumerate(table["log_correction"]):
        sel = k == b
        out[sel] = np.interp(log_pt_corr[sel], knots, values)
    return out


def _jet_input(inputs: dict, names: tuple[str, str]) -> tuple[int, bool]:
    """The column of the jet input holding ``names[0]`` (used as is), or else ``names[1]`` (transformed)."""
    jet = inputs["jet"]
    for transformed, name in enumerate(names):
        if name in jet:
            return jet.index(name), bool(transformed)
    raise ConfigError("features.jet", f"the residual correction reads {names[0]} (or {names[1]}) from the jet "
                                      f"inputs, which are {jet}; add it, or set residual.enabled: false")


def graft(network_path: str, table: dict, model_path: str) -> None:
    """``model_path``: the ONNX network of ``network_path`` with the residual table's nodes appended (see the
    module's docstring); its metadata gains ``residual`` (the table)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(network_path)
    meta = {p.key: p.value for p in proto.metadata_props}
    inputs = json.loads(meta["inputs"])
    pt_col, pt_is_linear = _jet_input(inputs, ("log_pt_raw", "pt_raw"))
    eta_col, _ = _jet_input(inputs, ("abs_eta", "eta"))
    graph = proto.graph
    outputs = [o for o in graph.output if o.name == "prediction"]
    if not outputs:
        raise InputError(f"{network_path}: no output 'prediction'; not a network exported by gnnjec export-onnx")
    quantiles = [o for o in graph.output if o.name == "quantiles"]
    renamed = {"prediction": NETWORK_OUTPUT, "quantiles": NETWORK_QUANTILES}
    for node in graph.node:  # the network's outputs are renamed (where made and where read); the corrected ones
        node.output[:] = [renamed.get(o, o) for o in node.output]  # take their names
        node.input[:] = [renamed.get(i, i) for i in node.input]

    knots = np.asarray(table["log_pt_knots"], np.float32)
    values = np.asarray(table["log_correction"], np.float32)  # [eta bins, knots]
    slopes = (np.diff(values, axis=1) / np.diff(knots)).T.astype(np.float32)  # [knots - 1, eta bins]
    eta_edges = np.asarray(table["eta_edges"], np.float32)
    low, high = eta_edges[:-1].copy(), eta_edges[1:].copy()
    low[0] = -np.inf  # |eta| from 0; beyond the last edge no bin, so no correction
    constants = {
        "pt_col": np.asarray(pt_col, np.int64), "eta_col": np.asarray(eta_col, np.int64),
        "one": np.asarray([1], np.int64), "knot_low": knots[:-1], "knot_high": knots[1:], "slopes": slopes,
        "first": values[:, 0].copy(), "eta_low": low, "eta_high": high,
    }
    graph.initializer.extend(numpy_helper.from_array(v, f"residual/{k}") for k, v in constants.items())

    def c(name):
        return f"residual/{name}"

    nodes = [
        helper.make_node("Gather", ["jet", c("pt_col")], [c("pt_input")], axis=1),
        *([helper.make_node("Log", [c("pt_input")], [c("log_pt_raw")])] if pt_is_linear else
          [helper.make_node("Identity", [c("pt_input")], [c("log_pt_raw")])]),
        helper.make_node("Add", [c("log_pt_raw"), NETWORK_OUTPUT], [c("log_pt_corr")]),
        helper.make_node("Unsqueeze", [c("log_pt_corr"), c("one")], [c("x")]),
        helper.make_node("Max", [c("x"), c("knot_low")], [c("x_low")]),
        helper.make_node("Min", [c("x_low"), c("knot_high")], [c("x_clipped")]),
        helper.make_node("Sub", [c("x_clipped"), c("knot_low")], [c("steps")]),
        helper.make_node("MatMul", [c("steps"), c("slopes")], [c("rise")]),
        helper.make_node("Add", [c("rise"), c("first")], [c("per_eta_bin")]),
        helper.make_node("Gather", ["jet", c("eta_col")], [c("eta")], axis=1),
        helper.make_node("Abs", [c("eta")], [c("abs_eta")]),
        helper.make_node("Unsqueeze", [c("abs_eta"), c("one")], [c("a")]),
        helper.make_node("GreaterOrEqual", [c("a"), c("eta_low")], [c("above")]),
        helper.make_node("Less", [c("a"), c("eta_high")], [c("below")]),
        helper.make_node("And", [c("above"), c("below")], [c("in_bin")]),
        helper.make_node("Cast", [c("in_bin")], [c("weight")], to=TensorProto.FLOAT),
        helper.make_node("Mul", [c("per_eta_bin"), c("weight")], [c("selected")]),
        helper.make_node("ReduceSum", [c("selected"), c("one")], [c("correction")], keepdims=0),
        helper.make_node("Add", [NETWORK_OUTPUT, c("correction")], ["prediction"]),
    ]
    if quantiles and table.get("interval"):
        # quantiles = prediction + scale(x, |eta|) * (network quantile - network prediction), the scale interpolated
        # as the correction is, per |eta| bin and level (1 beyond the last |eta| edge)
        scale = np.asarray(table["interval"]["scale"], np.float32)  # [eta bins, knots, levels]
        n_eta, _, n_levels = scale.shape
        flat = scale.transpose(1, 0, 2).reshape(len(knots), n_eta * n_levels)  # [knots, eta bins x levels]
        graph.initializer.extend(numpy_helper.from_array(v, c(k)) for k, v in {
            "scale_first": flat[0].copy(),
            "scale_slopes": (np.diff(flat, axis=0) / np.diff(knots)[:, None]).astype(np.float32),
            "scale_shape": np.asarray([-1, n_eta, n_levels], np.int64), "unit": np.asarray([1.0], np.float32),
            "two": np.asarray([2], np.int64),
        }.items())
        nodes += [
            helper.make_node("MatMul", [c("steps"), c("scale_slopes")], [c("scale_rise")]),
            helper.make_node("Add", [c("scale_rise"), c("scale_first")], [c("scale_flat")]),
            helper.make_node("Reshape", [c("scale_flat"), c("scale_shape")], [c("scale_per_eta_bin")]),
            helper.make_node("Unsqueeze", [c("weight"), c("two")], [c("weight_column")]),
            helper.make_node("Mul", [c("scale_per_eta_bin"), c("weight_column")], [c("scale_selected")]),
            helper.make_node("ReduceSum", [c("scale_selected"), c("one")], [c("scale_in_bin")], keepdims=0),
            helper.make_node("ReduceSum", [c("weight"), c("one")], [c("in_any_bin")], keepdims=1),
            helper.make_node("Sub", [c("unit"), c("in_any_bin")], [c("outside")]),
            helper.make_node("Add", [c("scale_in_bin"), c("outside")], [c("scale")]),
            helper.make_node("Unsqueeze", [NETWORK_OUTPUT, c("one")], [c("network_column")]),
            helper.make_node("Sub", [NETWORK_QUANTILES, c("network_column")], [c("offsets")]),
            helper.make_node("Mul", [c("scale"), c("offsets")], [c("scaled_offsets")]),
            helper.make_node("Unsqueeze", ["prediction", c("one")], [c("prediction_column")]),
            helper.make_node("Add", [c("prediction_column"), c("scaled_offsets")], ["quantiles"]),
        ]
    elif quantiles:  # the same shift for every quantile
        nodes += [helper.make_node("Unsqueeze", [c("correction"), c("one")], [c("correction_column")]),
                  helper.make_node("Add", [NETWORK_QUANTILES, c("correction_column")], ["quantiles"])]
    graph.node.extend(nodes)
    for original, name in [(outputs[0], NETWORK_OUTPUT), *([(quantiles[0], NETWORK_QUANTILES)] if quantiles else [])]:
        network_output = onnx.ValueInfoProto()
        network_output.CopyFrom(original)
        network_output.name = name
        graph.output.append(network_output)
    summary = {k: table[k] for k in ("eta_edges", "log_pt_knots", "log_correction", "interval") if k in table}
    for key, value in {"residual": json.dumps(summary), provenance.KEY: provenance.as_json()}.items():
        entries = [p for p in proto.metadata_props if p.key == key]
        entry = entries[0] if entries else proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    with atomic_output(model_path) as tmp:
        onnx.save(proto, str(tmp))


def _closure(pt_before, pt_after, pt_gen, abs_eta, cfg: dict) -> dict:
    """The derivation sample's closure before and after: per |eta| bin and bin of gen pt (``closure_gen_pt``) and of
    the corrected pt (``closure_reco_pt``) of ``cfg``, the median response (:func:`gnnjec.metrics.closure`; None under
    its MIN_JETS jets)."""
    edges = cfg["eta_edges"]
    binned = closure({"before": pt_before / pt_gen, "after": pt_after / pt_gen}, pt_gen, abs_eta, pt_edges(cfg),
                     list(zip(edges[:-1], edges[1:])), min_pt=cfg["pt_range"][0], n_bootstrap=0)["methods"]
    return {f"closure_{axis}_pt": {when: [[b["median"] for b in row] for row in binned[when][axis]]
                                   for when in ("before", "after")} for axis in ("gen", "reco")}


def residual_correction(network_path: str, clouds_path: str, cfg: dict, model_path: str, table_path: str,
                        threads: int | None = None) -> dict:
    """Derive the residual correction of the network at ``network_path`` on the jets of ``clouds_path`` (the
    validation split), graft it (``model_path``) and check the grafted model against the table on those jets;
    with ``cfg["enabled"]`` false, ``model_path`` is a copy of the network. Writes the table, its derivation
    sample's closure before and after, and the check to ``table_path``."""
    from .dataset import CloudData
    from .inference import OnnxRegressor

    if not cfg["enabled"]:
        with atomic_output(model_path) as tmp:
            shutil.copyfile(network_path, tmp)
        result = {"enabled": False}
        write_json(table_path, result)
        return result
    network = OnnxRegressor(network_path, threads)
    data = CloudData(clouds_path, network.inputs, truth=("pt_gen", "eta_gen", "pt_raw"))  # without jets: one line
    has_quantiles = "quantiles" in network.outputs
    out = network.predict_outputs(data, ("prediction", "quantiles") if has_quantiles else ("prediction",))
    prediction = out["prediction"]
    log_pt_corr = np.log(data.truth["pt_raw"].astype(np.float64)) + prediction
    pt_corr, pt_gen = np.exp(log_pt_corr), data.truth["pt_gen"].astype(np.float64)
    abs_eta = np.abs(data.truth["eta_gen"].astype(np.float64))
    reco_abs_eta = np.abs(data.jet[:, _jet_input(network.inputs, ("abs_eta", "eta"))[0]].astype(np.float64))
    table = derive(pt_corr, pt_gen, abs_eta, cfg)
    if has_quantiles:  # the interval calibrated around the prediction after the residual correction
        offsets = out["quantiles"].astype(np.float64) - prediction[:, None]
        pt_after = pt_corr * np.exp(evaluate_table(table, log_pt_corr, reco_abs_eta))
        table["interval"] = derive_interval(pt_corr, pt_after, pt_gen, abs_eta, offsets, network.quantiles, cfg)
    graft(network_path, table, model_path)
    try:
        grafted = OnnxRegressor(model_path, threads)
        both = grafted.predict_outputs(data, ("prediction", NETWORK_OUTPUT))
        after, before = both["prediction"], both[NETWORK_OUTPUT]
        # the correction at each jet's own (reco) |eta|, as the grafted nodes read it from the jet inputs
        expected = evaluate_table(table, log_pt_corr, reco_abs_eta)
        worst = float(np.max(np.abs((after.astype(np.float64) - before) - expected)))
        if has_quantiles:  # every quantile: the corrected prediction plus its calibrated distance from it
            q = grafted.predict_outputs(data, ("quantiles", NETWORK_QUANTILES))
            scale = evaluate_scale(table, log_pt_corr, reco_abs_eta)
            wanted = after[:, None].astype(np.float64) + scale * (q[NETWORK_QUANTILES] - before[:, None])
            worst = max(worst, float(np.max(np.abs(q["quantiles"] - wanted))))
        network_diff = float(np.max(np.abs(before - prediction)))
        if worst > CHECK_TOLERANCE or network_diff > CHECK_TOLERANCE:
            raise CheckFailed(f"{model_path}: the grafted residual correction differs from its table by {worst:.1e} "
                              f"(network output by {network_diff:.1e}) > {CHECK_TOLERANCE:.0e}; do not use it")
    except Exception:
        Path(model_path).unlink(missing_ok=True)
        raise
    pt_after = data.truth["pt_raw"].astype(np.float64) * np.exp(after.astype(np.float64))
    result = {"enabled": True, **table, "config": cfg, **_closure(pt_corr, pt_after, pt_gen, abs_eta, cfg),
              "check": {"max_abs_diff": worst, "network_max_abs_diff": network_diff, "tolerance": CHECK_TOLERANCE}}
    if has_quantiles:  # the derivation sample's interval coverage (|eta| < the first edge) before and after
        pt_raw = data.truth["pt_raw"].astype(np.float64)[:, None]
        edges = cfg["eta_edges"]
        result["interval_coverage"] = {when: coverage(
            pt_gen, abs_eta, pt, dict(zip(network.quantiles, (pt_raw * np.exp(qs.astype(np.float64))).T)),
            pt_edges(cfg), list(zip(edges[:-1], edges[1:])), min_pt=cfg["pt_range"][0],
            region=(edges[0], edges[1]))["summary"] for when, pt, qs in (
                ("before", pt_corr, q[NETWORK_QUANTILES]), ("after", pt_after, q["quantiles"]))}
    write_json(table_path, result)
    log.info("residual correction of %s from %d jets: |log correction| up to %.3f; checked to %.1e", network_path,
             data.n, float(np.max(np.abs(table["log_correction"]))), worst)
    return result


def _arguments(p) -> None:
    p.add_argument("--network", required=True, help="the exported network (export-onnx's ONNX file)")
    p.add_argument("--clouds", required=True, help="the jets to derive it on (the validation split)")
    p.add_argument("--config", type=json_value, required=True, help="config key residual (JSON)")
    p.add_argument("--onnx", required=True, help="output: the model with its residual correction")
    p.add_argument("--table", required=True, help="output: the correction table, its closure and check (JSON)")
    p.add_argument("--threads", type=int, default=None)


def _run(a) -> None:
    residual_correction(a.network, a.clouds, a.config, a.onnx, a.table, a.threads)


COMMANDS = {"residual-correction": Command(_arguments, _run, reads=("network", "clouds"), outputs=("onnx", "table"))}
