"""``gnnjec serve``: the Triton model repository over the Open Inference Protocol (KServe v2), REST and gRPC.

REST endpoints: ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<name>`` (metadata),
``/v2/models/<name>/ready``, ``/v2/models/<name>/config`` (the whole ``config.pbtxt``, as Triton gives it),
``/v2/models/<name>/stats`` (Triton's statistics extension), ``POST /v2/models/<name>/infer`` (also under
``/versions/1``), with JSON tensors or Triton's binary tensor extension (what ``tritonclient.http`` sends by
default), bodies plain, chunked, gzip or deflate; and ``/metrics`` (Prometheus, Triton's metric names). The gRPC
endpoint (:mod:`gnnjec.serving_grpc`) is KServe v2's ``GRPCInferenceService``, as Triton's.

Concurrent requests for one model are merged into one ONNX Runtime call (up to the model's
``max_batch_size``, waiting at most ``max_queue_delay_us`` for more). Unlike Triton's dynamic
batcher, requests whose constituent counts differ are merged too: each collection is padded with
zeros to the longest, which the networks ignore (padded points have mask 0).

A bad request (unknown model, missing or unknown input, wrong dtype or shape, a batch over the
limit, malformed JSON or binary sizes, an encoding it cannot read) gets a 4xx answer with ``{"error": "..."}`` and
leaves the server running. ONNX Runtime only: no torch is imported.
"""

from __future__ import annotations

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

MAX_BODY_BYTES = 256 << 20
"""The largest request body, after decompression (413 beyond): about 400,000 jets of the PFN's inputs."""

ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
"""Content-Encoding values a request may have (Triton's: gzip and deflate)."""


class BadRequest(Exception):
    """A client error: answered with 400 (or ``status``) and the message."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


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

    def __init__(self, name: str, model_dir: Path, threads: int | None = None):
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
        self.session = session(onnx_path, threads)
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
        if math.prod(shape) * dtype.itemsize > MAX_BODY_BYTES:
            raise BadRequest(f"input {name!r}: shape {shape} holds more than the {MAX_BODY_BYTES} bytes a request may "
                             "carry; split the request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return dtype

    def validate(self, arrays: dict[str, np.ndarray]) -> int:
        """Check the request's tensors against the model's; return its batch size."""
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
        return size

    def infer(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue a request and wait for its share of a merged batch; counted a success or a failure."""
        start = time.perf_counter_ns()
        try:
            size = self.validate(arrays)
            done = threading.Event()
            slot = {"arrays": arrays, "size": size, "done": done, "queued": start}
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
        while True:
            slots = [self.queue.get()]
            total = slots[0]["size"]
            deadline = time.perf_counter() + self.max_delay
            while total < self.max_batch_size:
                try:
                    nxt = self.queue.get(timeout=max(deadline - time.perf_counter(), 0)) if self.max_delay else \
                        self.queue.get_nowait()
                except queue.Empty:
                    break
                if total + nxt["size"] > self.max_batch_size:
                    self.queue.put(nxt)  # it starts the next batch
                    break
                slots.append(nxt)
                total += nxt["size"]
            self._run(slots)

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
            results = self.session.run([t["name"] for t in self.outputs], feed)
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


def load_repository(path: str, threads: int | None = None) -> dict[str, ServedModel]:
    root = Path(path)
    dirs = sorted(d for d in root.iterdir() if (d / "config.pbtxt").exists()) if root.is_dir() else []
    if not dirs:
        raise InputError(f"{path}: no models (folders with config.pbtxt); run `snakemake triton_model` or pass the "
                         "repository folder, e.g. results/triton")
    return {d.name: ServedModel(d.name, d, threads) for d in dirs}


def decode_request(body: bytes, header_length: int | None, model: ServedModel) -> tuple[dict, dict[str, np.ndarray]]:
    """The request's JSON and its input arrays (JSON ``data`` or binary tensors after the JSON)."""
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
    known = [t["name"] for t in model.outputs]
    unknown = [o["name"] for o in outputs or () if o["name"] not in known]
    if unknown:
        raise BadRequest(f"model {model.name}: unknown output {unknown[0]!r}; it has {known}")
    offset = header_length or 0
    arrays = {}
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise BadRequest("each input needs name, shape and datatype")
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
                values = np.asarray(tensor.get("data"), dtype=dtype).reshape(-1)
            except (TypeError, ValueError) as err:
                raise BadRequest(f"input {name!r}: data is not a list of {datatype} numbers ({err})") from None
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
        name = out.get("name")
        if name not in outputs:
            raise BadRequest(f"model {model.name}: unknown output {name!r}; it has {list(outputs)}")
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


def decompress(body: bytes, encoding: str) -> bytes:
    """A gzip or deflate body decompressed, at most :data:`MAX_BODY_BYTES`."""
    if encoding in ("identity", ""):
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as err:
        raise BadRequest(f"Content-Encoding is {encoding} but the body is not ({err})") from None
    if len(out) > MAX_BODY_BYTES:
        raise BadRequest(f"the body decompresses to more than {MAX_BODY_BYTES} bytes; split the request",
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

    def _body(self) -> bytes:
        """The request body: by Content-Length or chunked, decompressed (at most :data:`MAX_BODY_BYTES`)."""
        transfer = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ENCODINGS:
            self.close_connection = True  # the body is not read
            raise BadRequest(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity",
                             HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if transfer and transfer != "chunked":
            self.close_connection = True
            raise BadRequest(f"Transfer-Encoding {transfer!r} is not supported; send chunked or a Content-Length",
                             HTTPStatus.NOT_IMPLEMENTED)
        if transfer == "chunked":
            body = self._chunked_body()
        else:
            text = self.headers.get("Content-Length") or "0"
            if not (text.isascii() and text.isdigit()):
                self.close_connection = True
                raise BadRequest(f"Content-Length is not a byte count: {text!r}")
            if int(text) > MAX_BODY_BYTES:
                self.close_connection = True
                raise BadRequest(f"a body of {int(text)} bytes is over the {MAX_BODY_BYTES}; split the request",
                                 HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            body = self.rfile.read(int(text))
            if len(body) < int(text):
                self.close_connection = True
                raise BadRequest(f"the body ended after {len(body)} of its {int(text)} bytes")
        return decompress(body, encoding)

    def _chunked_body(self) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            digits = line.split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", digits):  # int(..., 16) also takes -5, 0x1f, 1_f
                self.close_connection = True
                raise BadRequest(f"malformed chunk size line {line[:40]!r} in a chunked body")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise BadRequest(f"the chunked body is over {MAX_BODY_BYTES} bytes; split the request",
                                 HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)  # the chunk's CRLF

    def do_POST(self):  # noqa: N802
        started = time.perf_counter_ns()
        model = None
        try:
            body = self._body()
            match = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/1)?/infer", self.path.rstrip("/"))
            if not match:
                raise BadRequest(f"no such endpoint: POST {self.path}", HTTPStatus.NOT_FOUND)
            model = self._model(match.group(1))
            header = self.headers.get("Inference-Header-Content-Length")
            try:
                header_length = int(header) if header is not None else None
            except ValueError:
                raise BadRequest(f"Inference-Header-Content-Length is not a number: {header!r}") from None
            if header_length is not None and not 0 < header_length <= len(body):
                raise BadRequest(f"Inference-Header-Content-Length {header_length} "
                                 f"is outside the body of {len(body)} bytes")
            try:
                request, arrays = decode_request(body, header_length, model)
            except BadRequest:
                model.failed(started)
                raise
            outputs = model.infer(arrays)
            return self._send(200, *encode_response(model, request, outputs))
        except BadRequest as err:
            return self._json(err.status, {"error": str(err)})
        except Exception as err:  # never take the server down
            log.exception("request failed")
            self.close_connection = True  # the body may be unread: the connection cannot carry another request
            if model is not None:
                model.failed(started)
            return self._json(500, {"error": f"internal error: {err}"})


SERVER_METADATA = {"name": "gnnjec", "version": "1", "extensions": ["binary_tensor_data", "statistics", "metrics"]}
"""What ``/v2`` (and gRPC's ``ServerMetadata``) answers."""


class Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def bind_error(port: int, err: Exception) -> InputError:
    reason = "in use" if "in use" in str(err).lower() else f"cannot be bound ({err})"
    return InputError(f"port {port}: {reason}; pick another with --port or --grpc-port (0: any free port)")


def make_server(repository: str, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None,
                models: dict[str, ServedModel] | None = None) -> Server:
    """The HTTP server over the repository's models (not yet serving: call ``serve_forever``)."""
    handler = type("RepositoryHandler", (Handler,), {"models": models or load_repository(repository, threads)})
    try:
        return Server((host, port), handler)
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


def _run(a) -> None:
    from .serving_grpc import make_grpc_server

    models = load_repository(a.repository, a.threads)
    server = make_server(a.repository, a.host, a.port, models=models)
    grpc_server = make_grpc_server(models, a.host, a.grpc_port) if a.grpc_port >= 0 else None
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
