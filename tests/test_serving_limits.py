"""`gnnjec serve`'s limits (issue 24): nothing a client sends makes the server hold unbounded memory, threads or
time; each refusal is a 4xx (503 for a busy server) that names the limit."""

import gzip
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gnnjec import triton
from gnnjec.dataset import CloudData
from gnnjec.errors import InputError
from gnnjec.inference import OnnxRegressor
from gnnjec.serving import Budget, Limits, ServedModel

from support.serving import json_inputs, post, raw, serve

MAX_BATCH = 64
LIMITS = ("--max-body-mb", "1", "--read-timeout-s", "1", "--idle-timeout-s", "1.5", "--max-connections", "8")
"""The small limits of the module's server (the model's own max_constituents, 64, as trained)."""

INFER = "/v2/models/pfn/infer"


@pytest.fixture(scope="module")
def repository(tmp_path_factory, exported_model):
    root = tmp_path_factory.mktemp("triton_limits")
    triton.write_model("pfn", exported_model, str(root / "pfn"), max_batch_size=MAX_BATCH, max_queue_delay_us=5000)
    return root


@pytest.fixture(scope="module")
def limited(repository):
    with serve(repository, *LIMITS) as started:
        yield started


@pytest.fixture(scope="module")
def jets(exported_model, synthetic_clouds):
    """(regressor, the test split's arrays for 16 jets by input name)."""
    regressor = OnnxRegressor(exported_model)
    arrays = CloudData(synthetic_clouds["test"], regressor.inputs).batch(np.arange(16), 128)
    return regressor, dict(zip(regressor.names, arrays))


def _json_request(arrays: dict) -> bytes:
    return json.dumps({"inputs": json_inputs(arrays)}).encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """What the server sends until it closes ``sock``, and when it closed it (fails after ``seconds``)."""
    sock.settimeout(seconds)
    started, answer = time.monotonic(), b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer, time.monotonic() - started


def test_a_body_over_max_body_mb_is_refused_from_its_content_length_before_it_is_read(limited):
    url, _, proc = limited
    answer = raw(url, b"POST /v2/models/pfn/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\n"
                 b'{"inputs": []}', timeout=5)  # 10 GB announced, 14 bytes sent: answered at once, not after 10 GB
    assert _status(answer) == 413 and b"10737418240 bytes is over the 1048576 a request may carry (max_body_mb)" in \
        answer and b"Connection: close" in answer
    chunks = b"".join(b"%x\r\n%s\r\n" % (65536, b" " * 65536) for _ in range(20))
    answer = raw(url, b"POST /v2/models/pfn/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert _status(answer) == 413 and b"the chunked body is over the 1048576 bytes" in answer
    bomb = gzip.compress(b" " * (4 << 20))  # 4 KB that inflate to 4 MB
    status, error = post(url, INFER, bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "decompresses to more than 1048576 bytes (max_body_mb)" in error["error"]
    assert proc.poll() is None


def test_a_request_not_sent_within_the_read_timeout_gets_408_and_is_closed(limited):
    url, _, proc = limited
    host, port = url.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as slow:  # announces 1000 bytes, sends 14
        slow.sendall(b"POST /v2/models/pfn/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\": []}")
        answer, after = _closed_within(slow, 10)
    assert _status(answer) == 408 and b"within the read timeout of 1 s (read_timeout_s)" in answer, answer
    assert b"14 of its 1000 bytes" in answer and 0.9 < after < 5
    with socket.create_connection((host, int(port))) as slowloris:  # headers a byte at a time, never finished
        slowloris.sendall(b"POST /v2/models/pfn/infer HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with pytest.raises(OSError):  # the server stops reading them: a reset, or a close then a broken pipe
            while time.monotonic() - started < 10:
                slowloris.sendall(b"X")
                time.sleep(0.2)
        assert time.monotonic() - started < 5
    assert proc.poll() is None


def test_an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not(limited, jets):
    url, _, proc = limited
    host, port = url.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as idle:
        answer, after = _closed_within(idle, 10)
    assert answer == b"" and 1.4 < after < 5
    kept = http.client.HTTPConnection(url, timeout=10)  # a kept-alive connection, between its requests
    kept.connect()
    sock = kept.sock
    for _ in range(4):  # 4 requests 0.5 s apart: 2 s in all, over the idle timeout, never idle that long
        kept.request("GET", "/v2/health/ready")
        assert kept.getresponse().read() == b'{"ready": true}' and kept.sock is sock  # the same connection
        time.sleep(0.5)
    with sock:
        answer, after = _closed_within(sock, 10)
        assert answer == b"" and 0.9 < after < 5
    assert proc.poll() is None


def test_connections_over_max_connections_get_503_and_the_server_serves_again_after(limited):
    url, _, proc = limited
    host, port = url.rsplit(":", 1)
    held = [socket.create_connection((host, int(port))) for _ in range(8)]
    try:
        time.sleep(0.3)  # all 8 accepted
        answer = raw(url, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(answer) == 503 and b"Retry-After: 1" in answer
        assert b"serves 8 connections already (max_connections)" in answer
    finally:
        for s in held:
            s.close()
    for _ in range(50):  # the server sees the closes
        if _status(raw(url, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not serve again after the held connections closed")
    assert proc.poll() is None


def test_more_points_than_the_model_was_trained_on_are_refused_and_masked_padding_is_not(limited, jets):
    url, _, proc = limited
    regressor, arrays = jets
    trained = json.loads(regressor.session.get_modelmeta().custom_metadata_map["hparams"])[
        "max_constituents"]
    expected = regressor.predict_batch(list(arrays.values()))
    wide = dict(arrays)  # padding beyond the training's width, all masked: cut away, the same answer
    for name in ("charged", "charged_mask"):
        a = arrays[name]
        wide[name] = np.concatenate([a, np.zeros((a.shape[0], 3 * trained, *a.shape[2:]), a.dtype)], axis=1)
    status, answer = post(url, INFER, _json_request(wide))
    assert status == 200, answer
    np.testing.assert_allclose(answer["outputs"][0]["data"], expected, rtol=1e-5, atol=1e-6)
    real = dict(wide)  # one more real point than the training kept
    real["charged_mask"] = wide["charged_mask"].copy()
    real["charged_mask"][0, : trained + 1] = 1
    status, answer = post(url, INFER, _json_request(real))
    assert status == 413 and answer["error"] == (
        f"model pfn: input 'charged' has {trained + 1} points in a jet, over the {trained} the model takes "
        f"(max_constituents); send the hardest {trained}, as its training kept")
    assert proc.poll() is None


def test_a_grpc_message_over_max_body_mb_is_resource_exhausted(limited, jets):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    _, grpc_url, proc = limited
    big = np.zeros((MAX_BATCH, 5000), np.float32)  # 1.3 MB
    tensor = grpcclient.InferInput("jet", list(big.shape), "FP32")
    tensor.set_data_from_numpy(big)
    with pytest.raises(InferenceServerException, match="RESOURCE_EXHAUSTED|larger than max"):
        grpcclient.InferenceServerClient(grpc_url).infer("pfn", [tensor])
    assert proc.poll() is None


def test_narrow_requests_are_not_padded_to_a_wide_one_they_arrive_with(repository, jets):
    """Merged by length bucket: a request is padded to at most twice its widest collection, and every answer is
    exactly the in-process one."""
    regressor, arrays = jets
    model = ServedModel("pfn", repository / "pfn", threads=1)
    widths, run = [], model.session.run

    def recording(names, feed, options=None):
        widths.append({n: (a.shape[1], a.min()) for n, a in feed.items() if n.endswith("_mask")})
        return run(names, feed, options)

    model.session.run = recording
    collections = [n.removesuffix("_mask") for n in arrays if n.endswith("_mask")]
    narrow = {n: a[:1, :4] if n.removesuffix("_mask") in collections else a[:1] for n, a in arrays.items()}
    wide = {n: a[1:2] for n, a in arrays.items()}
    for request in (narrow, wide):  # every point real
        request |= {f"{c}_mask": np.ones_like(request[f"{c}_mask"]) for c in collections}
    requests = [narrow, wide] * 4
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: model.infer({k: v.copy() for k, v in r.items()})["prediction"], requests))
    for request, answer in zip(requests, answers):
        np.testing.assert_allclose(answer, regressor.predict_batch(list(request.values())), rtol=1e-5, atol=1e-6)
    assert {w["charged_mask"][0] for w in widths} == {4, wide["charged"].shape[1]}
    assert all(smallest == 1 for w in widths for _, smallest in w.values()), widths  # no point padded


def test_the_pending_budget_waits_then_refuses_and_a_request_alone_always_fits():
    budget = Budget(1000)
    assert budget.acquire(5000, timeout=0.1) == 1000  # a request alone fits, whatever its size
    assert budget.acquire(1, timeout=0.2) is None
    released = threading.Timer(0.2, budget.release, [1000])
    released.start()
    assert budget.acquire(600, timeout=5) == 600  # it waited for the first to finish
    assert budget.acquire(300, timeout=0.1) == 300 and budget.acquire(200, timeout=0.1) is None


def test_the_limits_come_from_the_schema_a_config_file_and_the_options(tmp_path):
    defaults = Limits.read()
    assert (defaults.max_body_mb, defaults.max_constituents, defaults.max_connections) == (64, 0, 256)
    config = tmp_path / "config.yaml"
    config.write_text("serving:\n  max_body_mb: 8\n  read_timeout_s: 5\n")
    limits = Limits.read(str(config), read_timeout_s=2.0, idle_timeout_s=None)
    assert (limits.max_body_mb, limits.read_timeout_s, limits.idle_timeout_s) == (8, 2.0, defaults.idle_timeout_s)
    config.write_text("serving:\n  max_connections: 0\n")
    with pytest.raises(InputError, match=r"config.yaml: config key serving.max_connections: 0 is less than the "
                                         "minimum of 1"):
        Limits.read(str(config))
