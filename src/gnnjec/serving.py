"""``gnnjec serve``: the Triton model repository over the Open Inference Protocol (KServe v2), REST and gRPC.

REST endpoints: ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<name>`` (metadata),
``/v2/models/<name>/ready``, ``/v2/models/<name>/config`` (the whole ``config.pbtxt``, as Triton gives it),
``/v2/models/<name>/stats`` (Triton's statistics extension), ``POST /v2/models/<name>/infer`` (also under
``/versions/1``), with JSON tensors or Triton's binary tensor extension (what ``tritonclient.http`` sends by
default), bodies plain, chunked, gzip or deflate; and ``/metrics`` (Prometheus, Triton's metric names). The gRPC
endpoint (:mod:`gnnjec.serving_grpc`) is KServe v2's ``GRPCInferenceService``, as Triton's.

Concurrent requests for one model are merged into one ONNX Runtime call (up to the model's
``max_batch_size``, waiting at most ``max_queue_delay_us`` for more). Unlike Triton's dynamic
batcher, requests whose constituent counts differ are merged too, by length bucket: requests whose
collections round up to the same powers of two are merged, each padded with zeros to the longest
(which the networks ignore: padded points have mask 0), so no request is padded to more than twice
its width; the oldest request's bucket always runs next.

Nothing is unbounded (:class:`Limits`, the configuration's ``serving`` keys): the body size, the jets
per request, the points per collection (the model's training value), the time to send a request and
to keep an idle connection, the connections served at once and the request bytes held at once.

A bad request (unknown model, missing or unknown input, wrong dtype or shape, a batch over the
limit, malformed JSON or binary sizes, an encoding it cannot read) gets a 4xx answer with ``{"error": "..."}`` and
leaves the server running. ONNX Runtime only: no torch is imported.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import math
import queue
import re
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from .command import Command
from .errors import InputError, Terminated
from .inference import session
from .triton import read_config, tensor_specs

log = logging.getLogger(__name__)

DTYPES = {"TYPE_FP32": ("FP32", np.float32), "TYPE_FP64": ("FP64", np.float64), "TYPE_INT64": ("INT64", np.int64),
          "TYPE_INT32": ("INT32", np.int32), "TYPE_FP16": ("FP16", np.float16), "TYPE_BOOL": ("BOOL", np.bool_),
          "TYPE_UINT8": ("UINT8", np.uint8), "TYPE_INT8": ("INT8", np.int8), "TYPE_INT16": ("INT16", np.int16)}
"""Triton config types -> (KServe v2 datatype, numpy dtype)."""

LISTEN_BACKLOG = 1024
"""Connections the kernel queues before the server accepts them (socketserver's default is 5: load generators
with tens of clients then fail to connect). Linux caps it at net.core.somaxconn (4096 since Linux 5.4)."""

LIMITS = ("max_body_mb", "max_constituents", "read_timeout_s", "idle_timeout_s", "max_connections", "max_pending_mb")
"""The server's limits: the configuration's ``serving`` keys of these names (their defaults and meaning are the
schema's), ``gnnjec serve``'s options ``--max-body-mb`` and so on."""

JSON_FACTOR = 6
"""A JSON body is counted this many times its size against ``max_pending_mb``: its numbers decoded (Python floats,
then numpy) take about that much memory."""

FALLBACK_CONSTITUENTS = 256
"""The points per collection a model without a training record (no ``hparams`` in its ONNX metadata) is served."""

TRIM_BYTES = 8 << 20
"""After a batch or a request larger than this, its memory is handed back: ONNX Runtime's arena shrinks after the
batch and glibc's heap after the request. Otherwise both keep it, and the server would stay at its largest
request's size."""

ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
"""Content-Encoding values a request may have (Triton's: gzip and deflate)."""


class BadRequest(Exception):
    """A client error: answered with 400 (or ``status``) and the message."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one server holds at most: the configuration's ``serving`` keys of :data:`LIMITS`."""

    max_body_mb: float
    max_constituents: int
    read_timeout_s: float
    idle_timeout_s: float
    max_connections: int
    max_pending_mb: float

    @classmethod
    def read(cls, config_file: str | None = None, **given) -> Limits:
        """The schema's defaults, replaced by ``config_file``'s ``serving`` block (checked against the schema), then
        by the values ``given`` that are not None."""
        from .schema import load_schema, schema_default

        values = {k: schema_default(f"serving.{k}") for k in LIMITS}
        if config_file:
            import jsonschema
            import yaml

            try:
                block = (yaml.safe_load(Path(config_file).read_text()) or {}).get("serving") or {}
            except (OSError, yaml.YAMLError, AttributeError) as err:
                raise InputError(f"{config_file}: not a readable configuration file ({err})") from None
            schema = load_schema()
            error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(
                schema["properties"]["serving"]).iter_errors(block))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path)
                raise InputError(f"{config_file}: config key serving{'.' + where if where else ''}: {error.message}")
            values |= {k: block[k] for k in LIMITS if k in block}
        values |= {k: v for k, v in given.items() if v is not None}
        return cls(**values)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * (1 << 20))

    @property
    def max_pending_bytes(self) -> int:
        return int(self.max_pending_mb * (1 << 20))


class Budget:
    """Bytes of request bodies held at once: a request waits for its share, or is refused."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self.cond = threading.Condition()

    def acquire(self, n: int, timeout: float) -> int | None:
        """Take ``n`` bytes (at most the whole budget: a request alone always fits); None after ``timeout`` s."""
        n = min(n, self.total)
        with self.cond:
            if not self.cond.wait_for(lambda: self.used + n <= self.total, timeout):
                return None
            self.used += n
        return n

    def release(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()


class Stats:
    """A model's counts and cumulative durations, as Triton's statistics extension and metrics report them."""

    FIELDS = ("success", "fail", "queue", "compute_infer")

    def __init__(self):
        self.lock = threading.Lock()
        self.count = dict.fromkeys(self.FIELDS, 0)
        self.ns = dict.fromkeys(self.FIELDS, 0)
        self.executions = self.inferences = self.last_inference_ms = 0

    def add(self, field: str, ns: int) -> None:
        with self.lock:
            self.count[field] += 1
            self.ns[field] += ns


class ServedModel:
    """One model of the repository: its ONNX Runtime session, its tensors, its batcher and its statistics."""

    def __init__(self, name: str, model_dir: Path, threads: int | None = None, limits: Limits | None = None):
        onnx_path = model_dir / "1" / "model.onnx"
        config_path = model_dir / "config.pbtxt"
        if not onnx_path.exists() or not config_path.exists():
            raise InputError(f"{model_dir}: not a model of a Triton repository (needs config.pbtxt and 1/model.onnx); "
                             "run the triton_model rule")
        self.config = read_config(str(config_path))
        self.name = name
        self.max_batch_size = self.config.max_batch_size
        self.max_delay = self.config.dynamic_batching.max_queue_delay_microseconds * 1e-6
        self.inputs, self.outputs, self.metadata = tensor_specs(str(onnx_path))
        self.dtypes = {t["name"]: DTYPES[t["data_type"]] for t in self.inputs}  # input -> (datatype, numpy type)
        self.limits = limits or Limits.read()
        trained = json.loads(self.metadata.get("hparams", "{}")).get("max_constituents")
        self.max_constituents = self.limits.max_constituents or trained or FALLBACK_CONSTITUENTS
        self.session = session(onnx_path, threads)
        self._shrink = shrink_options()
        self.queue: queue.Queue = queue.Queue()
        self.stats = Stats()
        threading.Thread(target=self._batcher, name=f"batcher-{name}", daemon=True).start()

    def metadata_json(self) -> dict:
        def tensor(t):
            return {"name": t["name"], "datatype": DTYPES[t["data_type"]][0], "shape": [-1, *t["dims"]]}

        return {"name": self.name, "versions": ["1"], "platform": self.config.platform,
                "inputs": [tensor(t) for t in self.inputs], "outputs": [tensor(t) for t in self.outputs]}

    def config_json(self) -> dict:
        """``config.pbtxt`` as JSON with protobuf's field names, as Triton's ``/config`` gives it."""
        return proto_dict(self.config)

    def statistics_json(self) -> dict:
        """Triton's statistics extension for this model (``/v2/models/<name>/stats``, gRPC ``ModelStatistics``)."""
        st = self.stats
        with st.lock:
            return {"model_stats": [{
                "name": self.name, "version": "1", "last_inference": st.last_inference_ms,
                "inference_count": st.inferences, "execution_count": st.executions,
                "inference_stats": {f: {"count": st.count[f], "ns": st.ns[f]} for f in Stats.FIELDS}}]}

    def tensor_dtype(self, name: str, datatype: str, shape) -> np.dtype:
        """The numpy type of input ``name``, after checking its datatype and that its shape is a shape."""
        dtypes = self.dtypes
        if name not in dtypes:
            raise BadRequest(f"model {self.name}: unknown input {name!r}; it needs {list(dtypes)}")
        if datatype != dtypes[name][0]:
            raise BadRequest(f"model {self.name}: input {name!r} is {datatype}; the model takes {dtypes[name][0]}")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                               for d in shape):
            raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers, the batch first, got "
                             f"{shape!r}")
        dtype = np.dtype(dtypes[name][1])
        if math.prod(shape) * dtype.itemsize > self.limits.max_body_bytes:
            raise BadRequest(f"input {name!r}: shape {shape} holds more than the {self.limits.max_body_bytes} bytes a "
                             "request may carry (max_body_mb); split the request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return dtype

    def check_outputs(self, names) -> None:
        """Refuse, before inference, a request for an output the model does not have."""
        known = [t["name"] for t in self.outputs]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadRequest(f"model {self.name}: unknown output {unknown[0]!r}; it has {known}")

    def validate(self, arrays: dict[str, np.ndarray]) -> tuple[int, tuple[int, ...]]:
        """Check the request's tensors against the model's, and cut each collection after its last real point (mask
        not 0; the padding after it changes no prediction); return its batch size and its collections' widths."""
        names = [t["name"] for t in self.inputs]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise BadRequest(f"model {self.name}: missing input {missing[0]!r}; it needs {names}")
        unknown = sorted(set(arrays) - set(names))
        if unknown:
            raise BadRequest(f"model {self.name}: unknown input {unknown[0]!r}; it needs {names}")
        batch = {len(arrays[n]) for n in names}
        if len(batch) != 1:
            raise BadRequest(f"model {self.name}: the inputs' first (batch) axes differ: "
                             f"{ {n: arrays[n].shape[0] for n in names} }")
        size = batch.pop()
        if size > self.max_batch_size:
            raise BadRequest(f"model {self.name}: batch of {size} is over max_batch_size {self.max_batch_size}; "
                             "split the request")
        variable = {}
        for t in self.inputs:
            array = arrays[t["name"]]
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise BadRequest(f"model {self.name}: input {t['name']!r} holds NaN or infinite values; send finite "
                                 "features (padded points too: zeros with mask 0)")
            shape = array.shape[1:]
            if len(shape) != len(t["dims"]) or any(d not in (-1, s) for d, s in zip(t["dims"], shape)):
                raise BadRequest(f"model {self.name}: input {t['name']!r} has shape {[size, *shape]}, expected "
                                 f"{[-1, *t['dims']]} (-1: any)")
            collection = t["name"].removesuffix("_mask")
            if len(shape) and t["dims"][0] == -1:  # points and their mask must agree on the count
                if variable.setdefault(collection, shape[0]) != shape[0]:
                    raise BadRequest(f"model {self.name}: {collection} and {collection}_mask differ in length "
                                     f"({variable[collection]} and {shape[0]})")
        for collection in [c for c in variable if f"{c}_mask" in arrays]:
            used = np.flatnonzero(arrays[f"{collection}_mask"].any(axis=0))
            width = int(used[-1]) + 1 if len(used) else 0
            if width > self.max_constituents:
                raise BadRequest(f"model {self.name}: input {collection!r} has {width} points in a jet, over the "
                                 f"{self.max_constituents} the model takes (max_constituents); send the hardest "
                                 f"{self.max_constituents}, as its training kept", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            if width < variable[collection]:
                for name in (collection, f"{collection}_mask"):
                    arrays[name] = arrays[name][:, :width]
                variable[collection] = width
        return size, tuple(variable.values())

    def infer(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue a request and wait for its share of a merged batch; counted a success or a failure."""
        start = time.perf_counter_ns()
        try:
            size, widths = self.validate(arrays)
            done = threading.Event()
            bucket = tuple((max(w, 1) - 1).bit_length() for w in widths)  # widths up to 1, 2, 4, 8, ...
            slot = {"arrays": arrays, "size": size, "bucket": bucket, "done": done, "queued": start}
            self.queue.put(slot)
            done.wait()
            if "error" in slot:
                raise slot["error"]
        except BadRequest:
            self.stats.add("fail", time.perf_counter_ns() - start)
            raise
        self.stats.add("success", time.perf_counter_ns() - start)
        return slot["outputs"]

    def failed(self, started_ns: int) -> None:
        """A request for this model refused before :meth:`infer` (undecodable): a failure in the statistics."""
        self.stats.add("fail", time.perf_counter_ns() - started_ns)

    def _batcher(self) -> None:
        """Merge the oldest request with the later ones of its length bucket, up to ``max_batch_size`` jets, waiting
        up to ``max_queue_delay_us`` from its arrival; the others wait, in arrival order, for the next batches."""
        pending: list[dict] = []
        while True:
            if not pending:
                pending.append(self.queue.get())
            oldest = pending[0]
            deadline = oldest["queued"] * 1e-9 + self.max_delay
            while sum(s["size"] for s in pending if s["bucket"] == oldest["bucket"]) < self.max_batch_size:
                wait = deadline - time.perf_counter()
                try:
                    pending.append(self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait())
                except queue.Empty:
                    break
            batch, rest, total = [], [], 0
            for s in pending:
                if s["bucket"] == oldest["bucket"] and total + s["size"] <= self.max_batch_size:
                    batch.append(s)
                    total += s["size"]
                else:
                    rest.append(s)
            pending = rest
            self._run(batch)

    def _run(self, slots: list[dict]) -> None:
        started = time.perf_counter_ns()
        for s in slots:
            self.stats.add("queue", started - s["queued"])
        try:
            feed = {}
            for t in self.inputs:
                parts = [s["arrays"][t["name"]] for s in slots]
                if t["dims"] and t["dims"][0] == -1:  # one width for the batch, at least one (masked) point:
                    width = max(1, *(p.shape[1] for p in parts))  # the graphs cannot reshape an empty axis
                    parts = [p if p.shape[1] == width else np.pad(p, [(0, 0), (0, width - p.shape[1])]
                                                                  + [(0, 0)] * (p.ndim - 2)) for p in parts]
                feed[t["name"]] = np.ascontiguousarray(np.concatenate(parts)) if len(parts) > 1 else parts[0]
            large = sum(a.nbytes for a in feed.values()) > TRIM_BYTES  # then the arena gives back what it grew
            results = self.session.run([t["name"] for t in self.outputs], feed, self._shrink if large else None)
            compute = time.perf_counter_ns() - started
            with self.stats.lock:
                self.stats.executions += 1
                self.stats.inferences += sum(s["size"] for s in slots)
                self.stats.last_inference_ms = int(time.time() * 1000)
            start = 0
            for s in slots:
                self.stats.add("compute_infer", compute)
                s["outputs"] = {t["name"]: r[start : start + s["size"]] for t, r in zip(self.outputs, results)}
                start += s["size"]
        except Exception as err:  # an ONNX Runtime failure answers every request of the batch
            for s in slots:
                s["error"] = BadRequest(f"model {self.name}: inference failed: {err}", HTTPStatus.INTERNAL_SERVER_ERROR)
        for s in slots:
            s["done"].set()


def trim() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere): glibc keeps it
    otherwise, and a server would stay at the size of its largest request."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def shrink_options():
    """ONNX Runtime run options that give the CPU arena's unused memory back after the run: for large batches only,
    as small ones reuse it (the arena otherwise stays at the size of the largest batch it has run)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def proto_dict(message) -> dict:
    """A protobuf message as JSON-ready values with the proto's field names, numbers as numbers (protobuf's own
    ``MessageToDict`` writes 64-bit integers as strings) and enums by name."""
    from google.protobuf.descriptor import FieldDescriptor

    def value(field, v):
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                return {k: value(field.message_type.fields_by_name["value"], x) for k, x in v.items()}
            return proto_dict(v)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return field.enum_type.values_by_number[v].name
        return v

    out = {}
    for field, v in message.ListFields():
        repeated = field.label == FieldDescriptor.LABEL_REPEATED and not (
            field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry)
        out[field.name] = [value(field, x) for x in v] if repeated else value(field, v)
    return out


METRICS = (
    ("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes",
     lambda st: st.count["success"]),
    ("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes",
     lambda st: st.count["fail"]),
    ("nv_inference_count", "counter", "Number of inferences performed (does not include cached requests)",
     lambda st: st.inferences),
    ("nv_inference_exec_count", "counter", "Number of model executions performed (does not include cached requests)",
     lambda st: st.executions),
    ("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds "
     "(includes cached requests)", lambda st: (st.ns["success"] + st.ns["fail"]) // 1000),
    ("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds "
     "(includes cached requests)", lambda st: st.ns["queue"] // 1000),
    ("nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in microseconds "
     "(does not include cached requests)", lambda st: st.ns["compute_infer"] // 1000),
)
"""Triton's metric names, types and help texts, with where each value comes from."""


def metrics_text(models: dict[str, ServedModel]) -> str:
    """Prometheus' text exposition of every model's metrics (Triton's ``/metrics``)."""
    lines = []
    for name, kind, help_text, get in METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for model in models.values():
            with model.stats.lock:
                lines.append(f'{name}{{model="{model.name}",version="1"}} {get(model.stats)}')
    lines += ["# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting "
              "execution per-model.", "# TYPE nv_inference_pending_request_count gauge"]
    lines += [f'nv_inference_pending_request_count{{model="{m.name}",version="1"}} {m.queue.qsize()}'
              for m in models.values()]
    return "\n".join(lines) + "\n"


def load_repository(path: str, threads: int | None = None, limits: Limits | None = None) -> dict[str, ServedModel]:
    root = Path(path)
    dirs = sorted(d for d in root.iterdir() if (d / "config.pbtxt").exists()) if root.is_dir() else []
    if not dirs:
        raise InputError(f"{path}: no models (folders with config.pbtxt); run `snakemake triton_model` or pass the "
                         "repository folder, e.g. results/triton")
    return {d.name: ServedModel(d.name, d, threads, limits) for d in dirs}


def decode_request(body: bytes, header_length: int | None, model: ServedModel) -> tuple[dict, dict[str, np.ndarray]]:
    """The request's JSON and its input arrays (JSON ``data`` or binary tensors after the JSON)."""
    if header_length is not None and not 0 < header_length <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length} is outside the body of {len(body)} bytes")
    head = body[:header_length] if header_length is not None else body
    try:
        request = json.loads(head)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"malformed JSON request: {err}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest("the request needs an 'inputs' list of tensors (name, shape, datatype, data)")
    if not isinstance(request.get("parameters") or {}, dict):
        raise BadRequest(f"'parameters' must be an object, got {request['parameters']!r}")
    outputs = request.get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("parameters") or {}, dict)
            for o in outputs)):
        raise BadRequest(f"'outputs' must be a list of objects with a name, got {outputs!r}")
    model.check_outputs([o["name"] for o in outputs or ()])
    offset = header_length or 0
    arrays = {}
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise BadRequest("each input needs name, shape and datatype")
        if not isinstance(tensor["name"], str) or not isinstance(tensor["datatype"], str):
            raise BadRequest(f"an input's name and datatype must be strings, got {tensor['name']!r} and "
                             f"{tensor['datatype']!r}")
        if not isinstance(tensor.get("parameters") or {}, dict):
            raise BadRequest(f"input {tensor['name']!r}: 'parameters' must be an object")
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        dtype = model.tensor_dtype(name, datatype, shape)
        count = math.prod(shape)
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool):
                raise BadRequest(f"input {name!r}: binary_data_size must be an integer, got {size!r}")
            if header_length is None or offset + size > len(body) or size != count * dtype.itemsize:
                raise BadRequest(f"input {name!r}: binary_data_size {size} does not fit the body or the shape {shape}")
            values = np.frombuffer(body, dtype, count, offset)
            offset += size
        else:
            try:
                values = np.asarray(tensor.get("data"))
            except (TypeError, ValueError) as err:  # lists of different lengths
                raise BadRequest(f"input {name!r}: data is not a list of {datatype} numbers ({err})") from None
            if values.dtype.kind not in ("b" if dtype.kind == "b" else "iuf") and values.size:
                raise BadRequest(f"input {name!r}: data is not a list of {datatype} numbers (it holds strings, "
                                 "nulls, booleans, objects or integers too large for 64 bits)")
            values = values.astype(dtype).reshape(-1)
            if values.size != count:
                raise BadRequest(f"input {name!r}: {values.size} values for shape {shape}")
        arrays[name] = values.reshape(shape)
    return request, arrays


def encode_response(model: ServedModel, request: dict, outputs: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """The response body (JSON, then binary tensors where asked for) and the JSON's length if binary."""
    params = request.get("parameters") or {}
    wanted = request.get("outputs") or [{"name": t["name"]} for t in model.outputs]
    binary_default = bool(params.get("binary_data_output", False))
    tensors, blobs = [], []
    for out in wanted:
        name = out["name"]  # a known output: decode_request checked
        array = np.ascontiguousarray(outputs[name])
        spec = next(t for t in model.outputs if t["name"] == name)
        entry = {"name": name, "datatype": DTYPES[spec["data_type"]][0], "shape": list(array.shape)}
        if (out.get("parameters") or {}).get("binary_data", binary_default):
            blob = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:  # strict JSON: a non-finite value (none for finite inputs) is null, not a bare NaN token
            values = array.reshape(-1)
            entry["data"] = [None if not np.isfinite(v) else v for v in values.tolist()] \
                if values.dtype.kind == "f" and not np.isfinite(values).all() else values.tolist()
        tensors.append(entry)
    response = {"model_name": model.name, "model_version": "1", "outputs": tensors}
    if "id" in request:
        response["id"] = request["id"]
    head = json.dumps(response, allow_nan=False).encode()
    return (head + b"".join(blobs), len(head)) if blobs else (head, None)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body decompressed, at most ``limit`` bytes (413 beyond)."""
    if encoding in ("identity", ""):
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise BadRequest(f"Content-Encoding is {encoding} but the body is not ({err})") from None
    if len(out) > limit:
        raise BadRequest(f"the body decompresses to more than {limit} bytes (max_body_mb); split the request",
                         HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if not inflater.eof:
        raise BadRequest(f"the {encoding} body is truncated")
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: tritonclient reuses its connections
    disable_nagle_algorithm = True  # else small answers wait ~40 ms for the client's delayed ACK
    models: dict[str, ServedModel] = {}

    def log_message(self, fmt, *args):  # to the logger, not stderr lines per request
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, header_length: int | None = None,
              content_type: str | None = None) -> None:
        encoding = self._response_encoding() if status == 200 and len(body) > 1024 else None
        if encoding:
            packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            body = packer.compress(body) + packer.flush()
        self.send_response(status)
        self.send_header("Content-Type", content_type or
                         ("application/octet-stream" if header_length is not None else "application/json"))
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if header_length is not None:
            self.send_header("Inference-Header-Content-Length", str(header_length))
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            self.send_header("Retry-After", "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _response_encoding(self) -> str | None:
        """gzip or deflate where the client accepts it (a q-value of 0 refuses), else None (identity)."""
        accepted = set()
        for item in (self.headers.get("Accept-Encoding") or "").split(","):
            coding, *params = [part.strip().lower() for part in item.split(";")]
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                if float(q) > 0:
                    accepted.add(coding)
            except ValueError:
                continue
        return next((e for e in ("gzip", "deflate") if e in accepted), None)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode())

    def _model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise BadRequest(f"unknown model {name!r}; served: {sorted(self.models)}", HTTPStatus.NOT_FOUND)
        return self.models[name]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        try:
            path = self.path.rstrip("/")
            if path in ("/v2/health/live", "/v2/health/ready"):
                return self._json(200, {"live": True} if path.endswith("live") else {"ready": True})
            if path == "/v2":
                return self._json(200, SERVER_METADATA)
            if path == "/metrics":
                return self._send(200, metrics_text(self.models).encode(),
                                  content_type="text/plain; version=0.0.4; charset=utf-8")
            match = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/1)?(/ready|/config|/stats)?", path)
            if not match:
                raise BadRequest(f"no such endpoint: GET {self.path}", HTTPStatus.NOT_FOUND)
            model = self._model(match.group(1))
            if match.group(2) == "/ready":
                return self._json(200, {"name": model.name, "ready": True})
            if match.group(2) == "/stats":
                return self._json(200, model.statistics_json())
            if match.group(2) == "/config":
                return self._json(200, model.config_json())
            return self._json(200, model.metadata_json())
        except BadRequest as err:
            return self._json(err.status, {"error": str(err)})

    def handle_one_request(self):
        """One request, with the connection's deadlines: ``idle_timeout_s`` for its first byte, then
        ``read_timeout_s`` for the rest of it (the server's watcher closes what overruns)."""
        server, limits = self.server, self.server.limits
        server.watch(self.connection, limits.idle_timeout_s)
        try:
            if not self.rfile.peek(1):  # the client closed, or the idle timeout did
                self.close_connection = True
                return
        except OSError:
            self.close_connection = True
            return
        server.watch(self.connection, limits.read_timeout_s, reading=True)
        super().handle_one_request()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.server.expired(self.connection):  # the headers were cut short by the read timeout
            err = self._timed_out("headers")
            self._json(err.status, {"error": str(err)})
            return False
        return True

    def _timed_out(self, what: str) -> BadRequest:
        self.close_connection = True
        return BadRequest(f"the request's {what} did not arrive within the read timeout of "
                          f"{self.server.limits.read_timeout_s:g} s (read_timeout_s); send faster or smaller requests",
                          HTTPStatus.REQUEST_TIMEOUT)

    def _read(self, n: int, what: str) -> bytes:
        data = self.rfile.read(n)
        if len(data) < n:
            self.close_connection = True
            if self.server.expired(self.connection):
                raise self._timed_out(f"{what} ({len(data)} of its {n} bytes)")
            raise BadRequest(f"the body ended after {len(data)} of its {n} bytes")
        return data

    @property
    def _encoding(self) -> str:
        return (self.headers.get("Content-Encoding") or "identity").strip().lower()

    def _body_size(self) -> int | None:
        """The body's announced size (None: chunked), checked against ``max_body_mb`` before anything is read."""
        transfer = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        encoding = self._encoding
        if encoding not in ENCODINGS:
            self.close_connection = True  # the body is not read
            raise BadRequest(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity",
                             HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if transfer and transfer != "chunked":
            self.close_connection = True
            raise BadRequest(f"Transfer-Encoding {transfer!r} is not supported; send chunked or a Content-Length",
                             HTTPStatus.NOT_IMPLEMENTED)
        if transfer == "chunked":
            return None
        text = self.headers.get("Content-Length") or "0"
        if not (text.isascii() and text.isdigit()):
            self.close_connection = True
            raise BadRequest(f"Content-Length is not a byte count: {text!r}")
        limit = self.server.limits.max_body_bytes
        if int(text) > limit:
            self.close_connection = True
            raise BadRequest(f"a body of {int(text)} bytes is over the {limit} a request may carry (max_body_mb); "
                             "split the request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return int(text)

    def _body(self, size: int | None) -> bytes:
        """The request body: ``size`` bytes or chunked, decompressed (at most ``max_body_mb``)."""
        body = self._chunked_body() if size is None else self._read(size, "body")
        return decompress(body, self._encoding, self.server.limits.max_body_bytes)

    def _chunked_body(self) -> bytes:
        parts, total, limit = [], 0, self.server.limits.max_body_bytes
        while True:
            line = self.rfile.readline(1024)
            digits = line.split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", digits):  # int(..., 16) also takes -5, 0x1f, 1_f
                self.close_connection = True
                if self.server.expired(self.connection):
                    raise self._timed_out("chunked body")
                raise BadRequest(f"malformed chunk size line {line[:40]!r} in a chunked body")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise BadRequest(f"the chunked body is over the {limit} bytes a request may carry (max_body_mb); "
                                 "split the request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            parts.append(self._read(size, "chunked body"))
            self.rfile.readline(3)  # the chunk's CRLF

    def do_POST(self):  # noqa: N802
        charged = 0
        try:
            charged = self._post()
        finally:
            if charged:
                self.server.pending.release(charged)
            if charged > TRIM_BYTES:  # the request's arrays are freed: give their memory back
                trim()

    def _post(self) -> int:
        """Answer one inference request; return the bytes it held of ``max_pending_mb``."""
        started = time.perf_counter_ns()
        model, charged, server = None, 0, self.server
        try:
            size = self._body_size()
            header = self.headers.get("Inference-Header-Content-Length")  # binary tensors after the JSON
            estimate = size if size is not None else server.limits.max_body_bytes
            server.watch(self.connection, None)  # waiting for memory is not the client's time
            charged = server.pending.acquire(estimate * (JSON_FACTOR if header is None else 1),
                                             server.limits.read_timeout_s)
            if charged is None:
                charged = 0
                self.close_connection = True  # the body is not read
                raise BadRequest(f"the server holds {server.limits.max_pending_mb:g} MB of requests already "
                                 "(max_pending_mb); retry in a moment", HTTPStatus.SERVICE_UNAVAILABLE)
            server.watch(self.connection, server.limits.read_timeout_s, reading=True)
            body = self._body(size)
            server.watch(self.connection, None)  # read: the rest is the server's time
            match = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/1)?/infer", self.path.rstrip("/"))
            if not match:
                raise BadRequest(f"no such endpoint: POST {self.path}", HTTPStatus.NOT_FOUND)
            model = self._model(match.group(1))
            if header is not None and not (header.isascii() and header.strip().isdigit()):
                raise BadRequest(f"Inference-Header-Content-Length is not a byte count: {header!r}")
            try:
                request, arrays = decode_request(body, int(header) if header is not None else None, model)
            except BadRequest:
                model.failed(started)
                raise
            del body
            outputs = model.infer(arrays)
            del arrays
            answer = encode_response(model, request, outputs)
            server.watch(self.connection, server.limits.read_timeout_s)  # a client that does not read its answer
            self._send(200, *answer)
        except BadRequest as err:
            self._json(err.status, {"error": str(err)})
        except Exception as err:  # never take the server down
            log.exception("request failed")
            self.close_connection = True  # the body may be unread: the connection cannot carry another request
            if model is not None:
                model.failed(started)
            self._json(500, {"error": f"internal error: {err}"})
        return charged


SERVER_METADATA = {"name": "gnnjec", "version": "1", "extensions": ["binary_tensor_data", "statistics", "metrics"]}
"""What ``/v2`` (and gRPC's ``ServerMetadata``) answers."""

BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")
"""The answer to a connection over ``max_connections``, sent before it is closed (the body is filled in)."""


class Server(ThreadingHTTPServer):
    """The REST server: one thread per connection, at most ``max_connections``; a watcher closes connections past
    their deadline (idle, or a request not received in time)."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address, handler, limits: Limits):
        self.limits = limits
        self.pending = Budget(limits.max_pending_bytes)
        self.connections: dict = {}  # socket -> [deadline or None, reading, expired]
        self.lock = threading.Lock()
        super().__init__(address, handler)
        threading.Thread(target=self._watcher, name="connection-watcher", daemon=True).start()

    def process_request(self, request, client_address):
        with self.lock:
            full = len(self.connections) >= self.limits.max_connections
            if not full:
                self.connections[request] = [None, False, False]
        if full:
            message = json.dumps({"error": f"the server serves {self.limits.max_connections} connections already "
                                           "(max_connections); retry in a moment"}).encode()
            try:
                request.settimeout(1)
                request.sendall(BUSY % (len(message), message))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.lock:
            self.connections.pop(request, None)
        super().shutdown_request(request)

    def watch(self, connection, seconds: float | None, reading: bool = False) -> None:
        """Give ``connection`` a deadline ``seconds`` from now (None: none, while the server works)."""
        with self.lock:
            if connection in self.connections:
                self.connections[connection][:2] = [None if seconds is None else time.monotonic() + seconds, reading]

    def expired(self, connection) -> bool:
        with self.lock:
            return connection in self.connections and self.connections[connection][2]

    def _watcher(self) -> None:
        import socket

        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self.lock:
                late = [(c, state) for c, state in self.connections.items() if state[0] is not None and state[0] < now]
                for c, state in late:
                    state[0], state[2] = None, True
            for c, state in late:  # reading: stop the reads only, so that a 408 can still be sent
                try:
                    c.shutdown(socket.SHUT_RD if state[1] else socket.SHUT_RDWR)
                except OSError:
                    pass


def bind_error(port: int, err: Exception) -> InputError:
    reason = "in use" if "in use" in str(err).lower() else f"cannot be bound ({err})"
    return InputError(f"port {port}: {reason}; pick another with --port or --grpc-port (0: any free port)")


def make_server(repository: str, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None,
                models: dict[str, ServedModel] | None = None, limits: Limits | None = None) -> Server:
    """The HTTP server over the repository's models (not yet serving: call ``serve_forever``)."""
    limits = limits or Limits.read()
    handler = type("RepositoryHandler", (Handler,), {"models": models or load_repository(repository, threads, limits)})
    try:
        return Server((host, port), handler, limits)
    except OSError as err:
        raise bind_error(port, err) from None


def port_number(text: str, allow_none: bool = False) -> int:
    """A TCP port from the command line: 0 (any free port) to 65535 (-1, none, where ``allow_none``)."""
    import argparse

    try:
        port = int(text)
    except ValueError:
        port = None
    if port is None or not (-1 if allow_none else 0) <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give 0 (any free port) to 65535"
                                         + (", or -1 for none" if allow_none else ""))
    return port


def _arguments(p) -> None:
    from .spec import TRITON_REPOSITORY

    p.add_argument("--repository", default=TRITON_REPOSITORY, help="the Triton model repository folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=port_number, default=8000,
                   help="REST (and /metrics); 0: any free port (the log says which)")
    p.add_argument("--grpc-port", type=lambda text: port_number(text, allow_none=True), default=8001,
                   help="KServe v2 gRPC, as Triton's; 0: any free port (the log says which); -1: none")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per model")
    p.add_argument("--config", help="a configuration file (e.g. config/config.yaml) whose serving block gives the "
                   "limits below (default: the schema's defaults)")
    from .schema import load_schema

    keys = load_schema()["properties"]["serving"]["properties"]
    for key in LIMITS:
        text = keys[key]["description"].removeprefix("gnnjec serve: ")
        p.add_argument(f"--{key.replace('_', '-')}", type=int if keys[key]["type"] == "integer" else float,
                       default=None, help=f"{text} (default {keys[key]['default']})")


def _run(a) -> None:
    from .serving_grpc import make_grpc_server

    limits = Limits.read(a.config, **{k: getattr(a, k) for k in LIMITS})
    models = load_repository(a.repository, a.threads, limits)
    server = make_server(a.repository, a.host, a.port, models=models, limits=limits)
    grpc_server = make_grpc_server(models, a.host, a.grpc_port, limits) if a.grpc_port >= 0 else None
    host, port = server.server_address[:2]
    log.info("serving %s on http://%s:%d (KServe v2 REST, /metrics)%s", ", ".join(sorted(models)), host, port,
             f" and grpc {host}:{grpc_server.port} (KServe v2 gRPC)" if grpc_server else "")
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, or SIGTERM from a service manager: a normal stop
        log.info("stopping")
    finally:
        server.server_close()
        if grpc_server:
            grpc_server.stop(grace=1)


COMMANDS = {"serve": Command(_arguments, _run, reads=("repository",), provenance=False)}
