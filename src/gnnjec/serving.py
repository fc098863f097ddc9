"""``gnnjec serve``: the Triton model repository over the Open Inference Protocol (KServe v2, REST).

Endpoints: ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<name>`` (metadata),
``/v2/models/<name>/ready``, ``/v2/models/<name>/config``, ``/v2/models/<name>/stats`` (counts of jets,
requests and ONNX Runtime calls) and ``POST /v2/models/<name>/infer``
(also under ``/versions/1``), with JSON tensors or Triton's binary tensor extension (what
``tritonclient.http`` sends by default).

Concurrent requests for one model are merged into one ONNX Runtime call (up to the model's
``max_batch_size``, waiting at most ``max_queue_delay_us`` for more). Unlike Triton's dynamic
batcher, requests whose constituent counts differ are merged too: each collection is padded with
zeros to the longest, which the networks ignore (padded points have mask 0).

A bad request (unknown model, missing or unknown input, wrong dtype or shape, a batch over the
limit, malformed JSON or binary sizes) gets a 4xx answer with ``{"error": "..."}`` and leaves the
server running. ONNX Runtime only: no torch is imported.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from .command import Command, config_default
from .errors import InputError, Terminated
from .inference import session
from .triton import tensor_specs

log = logging.getLogger(__name__)

DTYPES = {"TYPE_FP32": ("FP32", np.float32), "TYPE_FP64": ("FP64", np.float64), "TYPE_INT64": ("INT64", np.int64),
          "TYPE_INT32": ("INT32", np.int32), "TYPE_FP16": ("FP16", np.float16), "TYPE_BOOL": ("BOOL", np.bool_),
          "TYPE_UINT8": ("UINT8", np.uint8), "TYPE_INT8": ("INT8", np.int8), "TYPE_INT16": ("INT16", np.int16)}
"""Triton config types -> (KServe v2 datatype, numpy dtype)."""


class BadRequest(Exception):
    """A client error: answered with 400 (or ``status``) and the message."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


def _config_value(text: str, key: str, default: int) -> int:
    match = re.search(rf"^\s*{key}:\s*(\d+)", text, re.M)
    return int(match.group(1)) if match else default


class ServedModel:
    """One model of the repository: its ONNX Runtime session, its tensors and its batcher."""

    def __init__(self, name: str, model_dir: Path, threads: int | None = None):
        onnx_path = model_dir / "1" / "model.onnx"
        config_path = model_dir / "config.pbtxt"
        if not onnx_path.exists() or not config_path.exists():
            raise InputError(f"{model_dir}: not a model of a Triton repository (needs config.pbtxt and 1/model.onnx); "
                             "run the triton_model rule")
        config = config_path.read_text()
        self.name = name
        self.max_batch_size = _config_value(config, "max_batch_size", config_default("serving.max_batch_size"))
        self.max_delay = _config_value(config, "max_queue_delay_microseconds", 0) * 1e-6
        self.inputs, self.outputs, self.metadata = tensor_specs(str(onnx_path))
        self.session = session(onnx_path, threads)
        self.queue: queue.Queue = queue.Queue()
        self.executions = self.requests = self.jets = 0  # ONNX Runtime calls, requests answered, jets
        threading.Thread(target=self._batcher, name=f"batcher-{name}", daemon=True).start()

    def metadata_json(self) -> dict:
        def tensor(t):
            return {"name": t["name"], "datatype": DTYPES[t["data_type"]][0], "shape": [-1, *t["dims"]]}

        return {"name": self.name, "versions": ["1"], "platform": "onnxruntime_onnx",
                "inputs": [tensor(t) for t in self.inputs], "outputs": [tensor(t) for t in self.outputs]}

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
            shape = arrays[t["name"]].shape[1:]
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
        """Queue a validated request and wait for its share of a merged batch."""
        size = self.validate(arrays)
        done = threading.Event()
        slot = {"arrays": arrays, "size": size, "done": done}
        self.queue.put(slot)
        done.wait()
        if "error" in slot:
            raise slot["error"]
        return slot["outputs"]

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
        try:
            feed = {}
            for t in self.inputs:
                parts = [s["arrays"][t["name"]] for s in slots]
                if len(parts) > 1 and t["dims"] and t["dims"][0] == -1:
                    width = max(p.shape[1] for p in parts)
                    parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
                feed[t["name"]] = np.ascontiguousarray(np.concatenate(parts)) if len(parts) > 1 else parts[0]
            results = self.session.run([t["name"] for t in self.outputs], feed)
            self.executions += 1
            self.requests += len(slots)
            self.jets += sum(s["size"] for s in slots)
            start = 0
            for s in slots:
                s["outputs"] = {t["name"]: r[start : start + s["size"]] for t, r in zip(self.outputs, results)}
                start += s["size"]
        except Exception as err:  # an ONNX Runtime failure answers every request of the batch
            for s in slots:
                s["error"] = BadRequest(f"model {self.name}: inference failed: {err}", HTTPStatus.INTERNAL_SERVER_ERROR)
        for s in slots:
            s["done"].set()


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
    dtypes = {t["name"]: DTYPES[t["data_type"]] for t in model.inputs}
    offset = header_length or 0
    arrays = {}
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise BadRequest("each input needs name, shape and datatype")
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if name not in dtypes:
            raise BadRequest(f"model {model.name}: unknown input {name!r}; it needs {list(dtypes)}")
        if datatype != dtypes[name][0]:
            raise BadRequest(f"model {model.name}: input {name!r} is {datatype}; the model takes {dtypes[name][0]}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
        dtype = dtypes[name][1]
        count = int(np.prod(shape))
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if header_length is None or offset + size > len(body) or size != count * np.dtype(dtype).itemsize:
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
        else:
            entry["data"] = array.reshape(-1).tolist()
        tensors.append(entry)
    response = {"model_name": model.name, "model_version": "1", "outputs": tensors}
    if "id" in request:
        response["id"] = request["id"]
    head = json.dumps(response).encode()
    return (head + b"".join(blobs), len(head)) if blobs else (head, None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: tritonclient reuses its connections
    disable_nagle_algorithm = True  # else small answers wait ~40 ms for the client's delayed ACK
    models: dict[str, ServedModel] = {}

    def log_message(self, fmt, *args):  # to the logger, not stderr lines per request
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, header_length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type",
                         "application/octet-stream" if header_length is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        if header_length is not None:
            self.send_header("Inference-Header-Content-Length", str(header_length))
        self.end_headers()
        self.wfile.write(body)

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
                return self._json(200, {"name": "gnnjec", "version": "1", "extensions": ["binary_tensor_data"]})
            match = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/1)?(/ready|/config|/stats)?", path)
            if not match:
                raise BadRequest(f"no such endpoint: GET {self.path}", HTTPStatus.NOT_FOUND)
            model = self._model(match.group(1))
            if match.group(2) == "/ready":
                return self._json(200, {"name": model.name, "ready": True})
            if match.group(2) == "/stats":  # Triton's statistics extension, the counts only
                return self._json(200, {"model_stats": [{
                    "name": model.name, "version": "1", "inference_count": model.jets,
                    "execution_count": model.executions, "request_count": model.requests}]})
            if match.group(2) == "/config":
                return self._json(200, {"name": model.name, "max_batch_size": model.max_batch_size,
                                        "platform": "onnxruntime_onnx"})
            return self._json(200, model.metadata_json())
        except BadRequest as err:
            return self._json(err.status, {"error": str(err)})

    def do_POST(self):  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
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
            request, arrays = decode_request(body, header_length, model)
            outputs = model.infer(arrays)
            return self._send(200, *encode_response(model, request, outputs))
        except BadRequest as err:
            return self._json(err.status, {"error": str(err)})
        except Exception as err:  # never take the server down
            log.exception("request failed")
            return self._json(500, {"error": f"internal error: {err}"})


def make_server(repository: str, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None):
    """The HTTP server over the repository's models (not yet serving: call ``serve_forever``)."""
    handler = type("RepositoryHandler", (Handler,), {"models": load_repository(repository, threads)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _arguments(p) -> None:
    from .spec import TRITON_REPOSITORY

    p.add_argument("--repository", default=TRITON_REPOSITORY, help="the Triton model repository folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="0: any free port (the log says which)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per model")


def _run(a) -> None:
    server = make_server(a.repository, a.host, a.port, a.threads)
    host, port = server.server_address[:2]
    log.info("serving %s on http://%s:%d (KServe v2 / Open Inference Protocol)",
             ", ".join(sorted(server.RequestHandlerClass.models)), host, port)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, or SIGTERM from a service manager: a normal stop
        log.info("stopping")
    finally:
        server.server_close()


COMMANDS = {"serve": Command(_arguments, _run, reads=("repository",), provenance=False)}
