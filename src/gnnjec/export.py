"""Export stage: write a trained network to ONNX, and prove that ONNX Runtime agrees with torch."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from . import provenance
from .checkpoint import load_model
from .command import Command, config_default, named_paths
from .dataset import CloudData
from .errors import CheckFailed, InputError
from .files import atomic_output, read_json
from .inference import OnnxRegressor

log = logging.getLogger(__name__)

OPSET = 17


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (in evaluation mode) with each Linear -> BatchNorm1d pair of its Sequentials folded
    into one Linear: the same function, one Gemm instead of a Gemm and a BatchNormalization."""
    from torch.nn.utils.fusion import fuse_linear_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            if type(seq[i]) is torch.nn.Linear and type(seq[i + 1]) is torch.nn.BatchNorm1d:
                seq[i] = fuse_linear_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = torch.nn.Identity()
    return model


QUANTILES = "quantiles"
"""The output of a model trained with quantiles (hyperparameter ``quantiles``): ``[batch, len(quantiles)]``, each a
quantile of log(pt_gen / pt_raw) given the jet, increasing; ``prediction`` is its median column."""


class _WithQuantiles(torch.nn.Module):
    """A quantile network's outputs as ONNX names them: the prediction (the median), then every quantile."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        out = self.model(*args)
        return self.model.point(out), out


def export_onnx(model_path: str, onnx_path: str, name: str | None = None, trace_batch: int = 7,
                trace_points: int = 11) -> None:
    """Write the network to ONNX with dynamic batch and constituent axes; its metadata holds the input
    feature lists, the target, the hyperparameters and ``name`` (the training point)."""
    import onnx

    model, checkpoint = load_model(model_path)
    model = fold_batchnorm(model)  # check_onnx compares the result with the unfolded network
    names = model.input_names()
    inputs = checkpoint["inputs"]
    # trace with sizes that differ from any size used later, so none gets baked into the graph
    example = [torch.randn(trace_batch, len(inputs["jet"]))]
    dynamic_axes = {"jet": {0: "batch"}, "prediction": {0: "batch"}, QUANTILES: {0: "batch"}}
    outputs = ["prediction", QUANTILES] if model.quantiles else ["prediction"]
    for k in model.collections:
        example += [torch.randn(trace_batch, trace_points, len(inputs[k])), torch.ones(trace_batch, trace_points)]
        dynamic_axes[k] = {0: "batch", 1: f"n_{k}"}
        dynamic_axes[f"{k}_mask"] = {0: "batch", 1: f"n_{k}"}
    with atomic_output(onnx_path) as tmp, warnings.catch_warnings():
        # the TorchScript exporter on purpose: the dynamo exporter (default since torch 2.9) has broken
        # exports of this kind of model in weaver; this path is checked against ONNX Runtime below
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        torch.onnx.export(_WithQuantiles(model) if model.quantiles else model, tuple(example), str(tmp),
                          input_names=names, output_names=outputs,
                          dynamic_axes={k: v for k, v in dynamic_axes.items() if k in names or k in outputs},
                          opset_version=OPSET, dynamo=False)
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        meta = {"inputs": json.dumps(inputs), "target": "log(pt_gen / pt_raw)", QUANTILES: json.dumps(model.quantiles),
                "hparams": json.dumps(checkpoint["hparams"]),
                "name": name or checkpoint["hparams"].get("model", "model"), provenance.KEY: provenance.as_json()}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))


def check_onnx(model_path: str, onnx_path: str, clouds_path: str, n_jets: int | None = None,
               tolerance: float | None = None) -> dict:
    """Compare ONNX Runtime with torch on held-out jets, in several batch sizes; raise above tolerance (both as
    given, else the configuration's defaults: config keys ``export.check_jets``, ``export.tolerance``)."""
    n_jets = n_jets or config_default("export.check_jets")
    tolerance = tolerance or config_default("export.tolerance")
    model, checkpoint = load_model(model_path)
    regressor = OnnxRegressor(onnx_path)
    data = CloudData(clouds_path, checkpoint["inputs"])
    rows_all = np.arange(min(n_jets, data.n))  # a file without jets: CloudData says so
    max_len = checkpoint["hparams"]["max_constituents"]
    worst, per_batch = 0.0, {}
    for batch_size in (1, 3, 64, 1000):
        diffs = []
        for start in range(0, len(rows_all), batch_size):
            arrays = data.batch(rows_all[start : start + batch_size], max_len)
            with torch.no_grad():
                out = model(*[torch.from_numpy(a) for a in arrays])
            diffs.append(np.max(np.abs(regressor.predict_batch(arrays) - model.point(out).numpy())))
            if model.quantiles:
                onnx_quantiles = regressor.session.run([QUANTILES], dict(zip(regressor.names, arrays)))[0]
                diffs.append(np.max(np.abs(onnx_quantiles - out.numpy())))
            if batch_size == 1 and start >= 200:  # single-jet batches: a sample is enough
                break
        per_batch[batch_size] = float(max(diffs))
        worst = max(worst, per_batch[batch_size])
    result = {"jets": int(len(rows_all)), "max_abs_diff": worst, "max_abs_diff_by_batch_size": per_batch,
              "tolerance": tolerance, "passed": worst <= tolerance}
    log.info("ONNX Runtime vs torch on %d jets: max |diff| = %.2e (tolerance %.0e)", len(rows_all), worst, tolerance)
    if worst > tolerance:
        raise CheckFailed(f"{onnx_path}: ONNX Runtime differs from torch by {worst:.2e} > {tolerance:.0e}; "
                          "the export is wrong, do not use it")
    return result


def export_best(selection: str, family: str, models: dict[str, str], clouds: str, onnx_path: str, check_path: str,
                n_jets: int, tolerance: float) -> dict:
    """Export ``family``'s best point of ``selection`` (select-model's best.json) from its checkpoint in
    ``models`` to ``onnx_path``, check it against torch on ``clouds`` and write the check to ``check_path``.
    A model that disagrees with torch leaves neither file: it must not look exported."""
    choice = read_json(selection, "model selection (JSON)", "rerun the select_model rule", keys=("best", "families"))
    if family not in choice["families"]:
        raise InputError(f"{selection}: no trained point of model family {family!r} (families: "
                         f"{sorted(choice['families'])}); add one to training.grid or rerun the select_model rule")
    point = choice["families"][family]
    if point not in models:
        raise InputError(f"{selection}: best {family} point {point!r} is not among the trained models; "
                         "rerun the select_model rule")
    with atomic_output(check_path) as check_tmp:
        export_onnx(models[point], onnx_path, name=point)
        try:
            result = check_onnx(models[point], onnx_path, clouds, n_jets, tolerance)
        except CheckFailed:
            Path(onnx_path).unlink(missing_ok=True)
            raise
        result.update(model=point, family=family, best_overall=point == choice["best"])
        Path(check_tmp).write_text(json.dumps(provenance.with_provenance(result), indent=1))
    return result


def _arguments(p) -> None:
    p.add_argument("--selection", required=True, help="best.json from select-model")
    p.add_argument("--family", required=True,
                   help="the model family (pfn, particlenet, ...) whose best point to export")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--clouds", required=True, help="held-out clouds for the check")
    p.add_argument("--onnx", required=True)
    p.add_argument("--check", required=True, help="output JSON with the comparison")
    p.add_argument("--jets", type=int, default=config_default("export.check_jets"))
    p.add_argument("--tolerance", type=float, default=config_default("export.tolerance"))


def _run(a) -> None:
    export_best(a.selection, a.family, named_paths(a.models), a.clouds, a.onnx, a.check, a.jets, a.tolerance)


COMMANDS = {
    "export-onnx": Command(_arguments, _run, reads=("selection", "models", "clouds"), outputs=("onnx", "check")),
}
