"""Export stage: pick the best grid point, write it to ONNX, and prove ONNX Runtime agrees with torch."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model
from .dataset import CloudData
from .errors import CheckFailed, InputError, atomic_output

log = logging.getLogger(__name__)

OPSET = 17


def export_onnx(model_path: str, onnx_path: str, trace_batch: int = 7, trace_points: int = 11) -> None:
    """Write the network to ONNX with dynamic batch and constituent axes and the input names in metadata."""
    import onnx

    model, checkpoint = load_model(model_path)
    names = model.input_names()
    inputs = checkpoint["inputs"]
    # trace with sizes that differ from any size used later, so none gets baked into the graph
    example = [torch.randn(trace_batch, len(inputs["jet"]))]
    dynamic_axes = {"jet": {0: "batch"}, "prediction": {0: "batch"}}
    for k in model.collections:
        example += [torch.randn(trace_batch, trace_points, len(inputs[k])), torch.ones(trace_batch, trace_points)]
        dynamic_axes[k] = {0: "batch", 1: f"n_{k}"}
        dynamic_axes[f"{k}_mask"] = {0: "batch", 1: f"n_{k}"}
    with atomic_output(onnx_path) as tmp, warnings.catch_warnings():
        # the TorchScript exporter on purpose: the dynamo exporter (default since torch 2.9) has broken
        # exports of this kind of model in weaver; this path is checked against ONNX Runtime below
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        torch.onnx.export(model, tuple(example), str(tmp), input_names=names, output_names=["prediction"],
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        meta = {"inputs": json.dumps(inputs), "target": "log(pt_gen / pt_raw)", "hparams": json.dumps(checkpoint["hparams"])}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))


class OnnxRegressor:
    """ONNX Runtime inference on particle clouds, using the feature lists stored in the model."""

    def __init__(self, onnx_path: str, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(onnx_path, options, providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.inputs = json.loads(meta["inputs"])
        self.hparams = json.loads(meta["hparams"])
        self.names = [i.name for i in self.session.get_inputs()]

    def predict_batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        return self.session.run(["prediction"], dict(zip(self.names, arrays)))[0]

    def predict(self, data: CloudData, batch_size: int = 2048) -> np.ndarray:
        """Predictions for every jet of ``data``, in its order.

        Jets are batched by constituent count, so that each batch is padded only to about its own
        jets' length (the networks are exact under padding, so this changes no prediction; it makes
        ParticleNet, whose cost grows with the padded length, several times faster).
        """
        out = np.empty(data.n, np.float32)
        length = np.max([np.diff(data.clouds[k].offsets) for k in data.collections], axis=0) if data.collections else None
        order = np.argsort(length, kind="stable") if length is not None else np.arange(data.n)
        for start in range(0, data.n, batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self.predict_batch(data.batch(rows, self.hparams["max_constituents"]))
        return out


def check_onnx(model_path: str, onnx_path: str, clouds_path: str, n_jets: int = 2000, tolerance: float = 1e-4) -> dict:
    """Compare ONNX Runtime with torch on held-out jets, in several batch sizes; raise above tolerance."""
    model, checkpoint = load_model(model_path)
    regressor = OnnxRegressor(onnx_path)
    data = CloudData(clouds_path, checkpoint["inputs"])
    rows_all = np.arange(min(n_jets, data.n))
    if len(rows_all) == 0:
        raise InputError(f"{clouds_path}: no jets to check the ONNX model on")
    max_len = checkpoint["hparams"]["max_constituents"]
    worst, per_batch = 0.0, {}
    for batch_size in (1, 3, 64, 1000):
        diffs = []
        for start in range(0, len(rows_all), batch_size):
            arrays = data.batch(rows_all[start : start + batch_size], max_len)
            with torch.no_grad():
                reference = model(*[torch.from_numpy(a) for a in arrays]).numpy()
            diffs.append(np.max(np.abs(regressor.predict_batch(arrays) - reference)))
            if batch_size == 1 and start >= 200:  # single-jet batches: a sample is enough
                break
        per_batch[batch_size] = float(max(diffs))
        worst = max(worst, per_batch[batch_size])
    result = {"jets": int(len(rows_all)), "max_abs_diff": worst, "max_abs_diff_by_batch_size": per_batch,
              "tolerance": tolerance, "passed": worst <= tolerance}
    log.info("ONNX Runtime vs torch on %d jets: max |diff| = %.2e (tolerance %.0e)", len(rows_all), worst, tolerance)
    if worst > tolerance:
        raise CheckFailed(f"{onnx_path}: ONNX Runtime differs from torch by {worst:.2e} > {tolerance:.0e}; the export is wrong, do not use it")
    return result
