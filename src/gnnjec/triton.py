"""A Triton Inference Server model repository from the exported ONNX networks (no torch needed).

Each model family becomes ``<repository>/<family>/config.pbtxt`` and ``<family>/1/model.onnx``. The
configuration is written from the ONNX graph itself, so its names, shapes and types are the model's:

* the batch axis is Triton's (``max_batch_size``), and the constituent axes stay variable (-1);
* the output ``prediction`` has the batch axis only, which Triton writes as ``dims: [1]`` with an
  empty ``reshape``;
* dynamic batching is on. Triton merges only requests whose variable axes agree, so a client that
  wants its requests merged pads each collection to a fixed length (the model is exact under
  padding: padded points have mask 0).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import provenance
from .command import Command, config_default
from .errors import InputError
from .files import atomic_output

PLATFORM = "onnxruntime_onnx"

ONNX_TO_TRITON = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16", 6: "TYPE_INT32", 7: "TYPE_INT64",
                  9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 16: "TYPE_BF16"}
"""ONNX TensorProto element types -> Triton data types."""


def tensor_specs(onnx_path: str) -> tuple[list[dict], list[dict], dict]:
    """The graph's inputs and outputs as ``{name, data_type, dims}`` (dims without the batch axis,
    -1 where variable) and the model's metadata; the first axis of each must be the batch axis."""
    import onnx

    if not os.path.isfile(onnx_path):
        raise InputError(f"{onnx_path}: no such file; run the export_onnx rule")
    try:
        model = onnx.load(onnx_path, load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and others for a file that is not a model
        raise InputError(f"{onnx_path}: not an ONNX model ({err}); rerun the export_onnx rule") from None
    if not model.graph.input or not model.graph.output:  # protobuf parses some junk as an empty model
        raise InputError(f"{onnx_path}: not an ONNX model (no graph inputs or outputs); rerun the export_onnx rule")

    def spec(value) -> dict:
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if not dims or t.shape.dim[0].dim_param != "batch":
            raise InputError(f"{onnx_path}: tensor {value.name!r} has no leading batch axis; export it with "
                             "gnnjec export (dynamic axis 'batch')")
        return {"name": value.name, "data_type": ONNX_TO_TRITON[t.elem_type], "dims": dims[1:]}

    initializers = {i.name for i in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    return inputs, outputs, {p.key: p.value for p in model.metadata_props}


def model_config_message(name: str, onnx_path: str, max_batch_size: int | None = None,
                         preferred_batch_sizes: tuple[int, ...] = (256, 1024), max_queue_delay_us: int | None = None):
    """The model's configuration as Triton's own protobuf message (``model_config_pb2.ModelConfig``); batching as
    given, else the configuration's defaults (``serving.max_batch_size``, ``serving.max_queue_delay_us``)."""
    from tritonclient.grpc import model_config_pb2 as pb

    max_batch_size = max_batch_size or config_default("serving.max_batch_size")
    if max_queue_delay_us is None:
        max_queue_delay_us = config_default("serving.max_queue_delay_us")
    inputs, outputs, _ = tensor_specs(onnx_path)
    config = pb.ModelConfig(name=name, platform=PLATFORM, max_batch_size=max_batch_size)
    for kind, tensors in ((config.input, inputs), (config.output, outputs)):
        for t in tensors:
            tensor = kind.add(name=t["name"], data_type=pb.DataType.Value(t["data_type"]), dims=t["dims"] or [1])
            if not t["dims"]:  # a batch-only tensor: one element per jet, reshaped to nothing
                tensor.reshape.SetInParent()
    preferred = [b for b in preferred_batch_sizes if b <= max_batch_size] or [max_batch_size]
    config.dynamic_batching.preferred_batch_size.extend(preferred)
    config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    return config


def model_config(name: str, onnx_path: str, max_batch_size: int | None = None,
                 preferred_batch_sizes: tuple[int, ...] = (256, 1024), max_queue_delay_us: int | None = None) -> str:
    """The text of ``config.pbtxt``: :func:`model_config_message` in protobuf's text format, after comments that say
    what the model is, its features and its provenance."""
    from google.protobuf import text_format

    config = model_config_message(name, onnx_path, max_batch_size, preferred_batch_sizes, max_queue_delay_us)
    meta = tensor_specs(onnx_path)[2]
    header = [f"# {name}: {meta.get('name', '?')}, target {meta.get('target', '?')} "
              "(corrected pt = pt_raw * exp(prediction))"]
    if "inputs" in meta:
        for collection, names in json.loads(meta["inputs"]).items():
            header.append(f"# {collection}: {', '.join(names)}")
    text = text_format.MessageToString(config, use_short_repeated_primitives=True)
    return "\n".join([*header, provenance.comment(), text])


def read_config(path: str):
    """``config.pbtxt`` parsed by Triton's own protobuf (``model_config_pb2.ModelConfig``); a file it does not
    parse is one InputError naming it."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    try:
        return text_format.Parse(Path(path).read_text(), pb.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError, OSError) as err:
        raise InputError(f"{path}: not a Triton model configuration ({str(err).splitlines()[0]}); rerun the "
                         "triton_model rule") from None


def padded(arrays: dict, width: dict | int) -> dict:
    """A client's inputs with every collection padded (with zeros, mask 0) or cut to a fixed number of points,
    ``width[collection]`` or one width for all: Triton's dynamic batcher merges only requests whose shapes are
    equal, so clients of variable-length jets pad to fixed lengths. The networks ignore padded points, so a padded
    jet gets the same prediction; points cut away are the softest where the collection is ordered by pt (as the
    convert stage's are)."""
    import numpy as np

    out = {}
    for name, array in arrays.items():
        collection = name.removesuffix("_mask")
        if collection == name and f"{name}_mask" not in arrays:  # jet-level, not a collection
            out[name] = array
            continue
        n = width if isinstance(width, int) else width[collection]
        array = np.asarray(array)[:, :n]
        pad = [(0, 0), (0, n - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
        out[name] = np.ascontiguousarray(np.pad(array, pad))
    return out


def write_model(name: str, onnx_path: str, model_dir: str, max_batch_size: int | None = None,
                max_queue_delay_us: int | None = None) -> None:
    """``model_dir``/config.pbtxt and ``model_dir``/1/model.onnx (a copy), each written atomically."""
    text = model_config(name, onnx_path, max_batch_size, max_queue_delay_us=max_queue_delay_us)
    os.makedirs(Path(model_dir) / "1", exist_ok=True)
    with atomic_output(str(Path(model_dir) / "1" / "model.onnx")) as tmp:
        shutil.copyfile(onnx_path, tmp)
    with atomic_output(str(Path(model_dir) / "config.pbtxt")) as tmp:
        Path(tmp).write_text(text)


def _arguments(p) -> None:
    p.add_argument("--onnx", required=True)
    p.add_argument("--name", required=True, help="the model's name in the repository (its folder)")
    p.add_argument("--output-dir", required=True, help="<repository>/<name>")
    p.add_argument("--max-batch-size", type=int, default=config_default("serving.max_batch_size"))
    p.add_argument("--max-queue-delay-us", type=int, default=config_default("serving.max_queue_delay_us"),
                   help="dynamic batching's wait for more requests")


def _run(a) -> None:
    import logging

    write_model(a.name, a.onnx, a.output_dir, a.max_batch_size, a.max_queue_delay_us)
    logging.getLogger(__name__).info("wrote %s/config.pbtxt and %s/1/model.onnx", a.output_dir, a.output_dir)


COMMANDS = {"triton-model": Command(_arguments, _run, reads=("onnx",), outputs=("output_dir",))}
