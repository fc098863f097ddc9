"""``gnnjec serve`` started for a test, and raw HTTP to it."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(repository, *options):
    """``gnnjec serve`` on the repository with ``options``, on loopback: (REST address, gRPC address, process)."""
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gnnjec", "serve", "--repository", str(repository),
                             "--port", str(port), "--grpc-port", str(grpc_port), "--threads", "1", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection(url, timeout=1)
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(proc.communicate(timeout=5)[0])
        yield url, f"127.0.0.1:{grpc_port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post(url: str, path: str, body: bytes, headers=None, timeout: float = 10):
    """(status, JSON answer) of a POST."""
    conn = http.client.HTTPConnection(url, timeout=timeout)
    conn.request("POST", path, body, headers or {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def raw(url: str, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` as bytes and read to the server's close."""
    host, port = url.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def json_inputs(arrays: dict) -> list[dict]:
    """KServe v2 JSON input tensors (FP32, values in ``data``) of ``{name: array}``."""
    return [{"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.reshape(-1).tolist()}
            for n, a in arrays.items()]


def binary_inputs(arrays: dict) -> tuple[list[dict], list[bytes]]:
    """KServe v2 input tensors of ``{name: array}`` in Triton's binary extension: their JSON and their bytes."""
    blobs = [np.ascontiguousarray(a, np.float32).tobytes() for a in arrays.values()]
    return [{"name": n, "shape": list(a.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(b)}}
            for (n, a), b in zip(arrays.items(), blobs)], blobs


def binary_request(arrays: dict) -> tuple[bytes, dict]:
    """A request body with binary input tensors and JSON outputs, as tritonclient sends it, and its header."""
    inputs, blobs = binary_inputs(arrays)
    head = json.dumps({"inputs": inputs}).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}
