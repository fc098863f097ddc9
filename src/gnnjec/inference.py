"""ONNX Runtime inference on particle clouds: what evaluation, serving and analyses run (no torch)."""

from __future__ import annotations

import json
import os

import numpy as np

from .dataset import CloudData
from .errors import InputError


def session(onnx_path: str, threads: int | None = None):
    """An ONNX Runtime session on CUDA when available, else the CPU, with ``threads`` intra-op threads;
    a missing or unreadable model is one InputError naming the file."""
    import onnxruntime as ort

    if not os.path.isfile(onnx_path):
        raise InputError(f"{onnx_path}: no such file; run the export_onnx rule")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        return ort.InferenceSession(str(onnx_path), options, providers=providers)
    except Exception as err:  # ONNX Runtime's own exception types, one per failure
        raise InputError(f"{onnx_path}: not an ONNX model ONNX Runtime can load ({str(err).splitlines()[0]}); "
                         "rerun the export_onnx rule") from None


class OnnxRegressor:
    """ONNX Runtime inference on particle clouds, using the feature lists stored in the model."""

    def __init__(self, onnx_path: str, threads: int | None = None):
        self.session = session(onnx_path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if "inputs" not in meta or "hparams" not in meta:
            raise InputError(f"{onnx_path}: no feature lists in its metadata; export it with gnnjec export")
        self.inputs = json.loads(meta["inputs"])
        self.hparams = json.loads(meta["hparams"])
        self.name = meta.get("name", self.hparams.get("model", "model"))  # the exported training point
        self.names = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        """``prediction``, and ``network_prediction`` (the network alone) when a residual correction is grafted on
        (:mod:`gnnjec.residual`); ``quantiles`` (and ``network_quantiles``) for a network trained with quantiles."""
        self.widths = {o.name: o.shape[1:] for o in self.session.get_outputs()}  # [] or [number of quantiles]
        self.quantiles = tuple(json.loads(meta.get("quantiles", "[]")))
        """The quantile levels of the ``quantiles`` output (hyperparameter ``quantiles``; empty: none)."""

    def predict_batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        return self.session.run(["prediction"], dict(zip(self.names, arrays)))[0]

    def predict(self, data: CloudData, batch_size: int = 2048, output: str = "prediction") -> np.ndarray:
        """Predictions (or another ``output``) for every jet of ``data``, in its order."""
        return self.predict_outputs(data, (output,), batch_size)[output]

    def predict_outputs(self, data: CloudData, outputs: tuple[str, ...], batch_size: int = 2048) -> dict:
        """Each of ``outputs`` for every jet of ``data``, in its order, from one pass over the jets.

        Jets are batched by constituent count, so that each batch is padded only to about its own
        jets' length (the networks are exact under padding, so this changes no prediction; it makes
        ParticleNet, whose cost grows with the padded length, several times faster).
        """
        out = {name: np.empty((data.n, *self.widths[name]), np.float32) for name in outputs}
        length = (np.max([np.diff(data.clouds[k].offsets) for k in data.collections], axis=0)
                  if data.collections else None)
        order = np.argsort(length, kind="stable") if length is not None else np.arange(data.n)
        for start in range(0, data.n, batch_size):
            rows = order[start : start + batch_size]
            arrays = data.batch(rows, self.hparams["max_constituents"])
            for name, values in zip(outputs, self.session.run(list(outputs), dict(zip(self.names, arrays)))):
                out[name][rows] = values
        return out
