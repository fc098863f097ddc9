"""KServe v2 over gRPC for ``gnnjec serve``: Triton's ``inference.GRPCInferenceService`` with Triton's own protobuf
messages (``tritonclient.grpc.service_pb2``), so ``tritonclient.grpc`` and perf_analyzer talk to it as to Triton.

Served: ``ServerLive``, ``ServerReady``, ``ServerMetadata``, ``ModelReady``, ``ModelMetadata``, ``ModelConfig``,
``ModelStatistics`` and ``ModelInfer`` (tensors as ``raw_input_contents``, as tritonclient sends them, or typed
``contents``; outputs as ``raw_output_contents``). The models, their batchers and statistics are the REST server's
(:class:`gnnjec.serving.ServedModel`): a gRPC request and a REST request can share one ONNX Runtime call. A bad
request is ``INVALID_ARGUMENT`` (unknown model: ``NOT_FOUND``) with the REST server's message; the other methods
(shared memory, repository control, tracing, streaming) are ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import math
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import grpc
import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from .serving import SERVER_METADATA, BadRequest, Limits, ServedModel, bind_error

CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents", "INT32": "int_contents",
            "INT16": "int_contents", "INT8": "int_contents", "UINT8": "uint_contents", "BOOL": "bool_contents"}
"""KServe v2 datatype -> the typed field of ``InferTensorContents`` that holds it."""

STATUS = {HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND, HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
          HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED}


def decode_inputs(request, model: ServedModel) -> dict[str, np.ndarray]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs; send one per input")
    arrays = {}
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        dtype = model.tensor_dtype(tensor.name, tensor.datatype, shape)
        count = math.prod(shape)
        if raw:
            if len(raw[i]) != count * dtype.itemsize:
                raise BadRequest(f"input {tensor.name!r}: {len(raw[i])} bytes for shape {shape} of {tensor.datatype}")
            values = np.frombuffer(raw[i], dtype)
        else:
            values = np.asarray(getattr(tensor.contents, CONTENTS[tensor.datatype]), dtype)
            if values.size != count:
                raise BadRequest(f"input {tensor.name!r}: {values.size} values for shape {shape}")
        arrays[tensor.name] = values.reshape(shape)
    return arrays


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    def _model(self, name: str, context) -> ServedModel:
        if name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {name!r}; served: {sorted(self.models)}")
        return self.models[name]

    def ServerLive(self, request, context):  # noqa: N802 (the service's method names)
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):  # noqa: N802
        return pb.ServerReadyResponse(ready=True)

    def ServerMetadata(self, request, context):  # noqa: N802
        return pb.ServerMetadataResponse(**SERVER_METADATA)

    def ModelReady(self, request, context):  # noqa: N802
        return pb.ModelReadyResponse(ready=request.name in self.models)

    def ModelMetadata(self, request, context):  # noqa: N802
        return json_format.ParseDict(self._model(request.name, context).metadata_json(), pb.ModelMetadataResponse())

    def ModelConfig(self, request, context):  # noqa: N802
        return pb.ModelConfigResponse(config=self._model(request.name, context).config)

    def ModelStatistics(self, request, context):  # noqa: N802
        models = [self._model(request.name, context)] if request.name else list(self.models.values())
        stats = [s for m in models for s in m.statistics_json()["model_stats"]]
        return json_format.ParseDict({"model_stats": stats}, pb.ModelStatisticsResponse())

    def ModelInfer(self, request, context):  # noqa: N802
        started = time.perf_counter_ns()
        model = self._model(request.model_name, context)
        try:
            names = [o.name for o in request.outputs] or [t["name"] for t in model.outputs]
            try:
                model.check_outputs(names)
                arrays = decode_inputs(request, model)
            except BadRequest:
                model.failed(started)
                raise
            outputs = model.infer(arrays)
        except BadRequest as err:
            context.abort(STATUS.get(err.status, grpc.StatusCode.INTERNAL), str(err))
        response = pb.ModelInferResponse(model_name=model.name, model_version="1", id=request.id)
        datatypes = {t["name"]: t["data_type"].removeprefix("TYPE_") for t in model.outputs}
        for name in names:
            array = np.ascontiguousarray(outputs[name])
            response.outputs.add(name=name, datatype=datatypes[name], shape=list(array.shape))
            response.raw_output_contents.append(array.tobytes())
        return response


def make_grpc_server(models: dict[str, ServedModel], host: str = "127.0.0.1", port: int = 8001,
                     limits: Limits | None = None):
    """A started gRPC server on ``host:port`` (0: any free port; the bound port is ``server.port``): one handler
    thread per call, at most ``max_connections`` calls at once (beyond: RESOURCE_EXHAUSTED), messages of at most
    ``max_body_mb``."""
    limits = limits or Limits.read()
    server = grpc.server(ThreadPoolExecutor(max_workers=limits.max_connections, thread_name_prefix="grpc"),
                         maximum_concurrent_rpcs=limits.max_connections,
                         options=[("grpc.max_receive_message_length", limits.max_body_bytes),
                                  ("grpc.max_send_message_length", limits.max_body_bytes),
                                  ("grpc.so_reuseport", 0)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(models), server)
    if port:  # gRPC's own refusal is a log line of its core on stderr: ask the kernel first
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as err:
                raise bind_error(port, err) from None
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:
        raise bind_error(port, err) from None
    if not bound:
        raise bind_error(port, OSError("address in use"))
    server.port = bound
    server.start()
    return server
