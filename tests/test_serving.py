"""The Triton model repository and `gnnjec serve` (KServe v2 REST), driven by NVIDIA's tritonclient."""

import http.client
import json
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest

from gnnjec import triton
from gnnjec.dataset import CloudData
from gnnjec.inference import OnnxRegressor

MAX_BATCH = 64


def parse_pbtxt(text: str) -> dict:
    """The parts of a config.pbtxt the tests check: name, platform, max_batch_size, and each tensor."""
    body = re.sub(r"#.*", "", text)
    config = {k: re.search(rf"^{k}:\s*\"?([^\"\n]+)\"?", body, re.M).group(1)
              for k in ("name", "platform", "max_batch_size")}
    for kind in ("input", "output"):
        block = re.search(rf"^{kind} \[(.*?)^\]", body, re.M | re.S).group(1)
        config[kind] = [{"name": m.group(1), "data_type": m.group(2), "dims": [int(d) for d in m.group(3).split(",")],
                         "reshape": m.group(4) is not None}
                        for m in re.finditer(
                            r'name: "(\w+)"\s*data_type: (\w+)\s*dims: \[ ([-\d, ]+) \](\s*reshape)?', block)]
    return config


RESIDUAL_TABLE = {"eta_edges": [0.0, 1.3, 5.0], "log_pt_knots": [np.log(15.0), np.log(200.0)],
                  "log_correction": [[0.05, -0.02], [0.1, -0.1]]}
"""A residual correction grafted onto the test's network: the repository's ``pfn_residual``, as the workflow's
``model.onnx`` is (two outputs)."""


@pytest.fixture(scope="module")
def repository(tmp_path_factory, exported_model):
    from gnnjec import residual

    root = tmp_path_factory.mktemp("triton")
    triton.write_model("pfn", exported_model, str(root / "pfn"), max_batch_size=MAX_BATCH, max_queue_delay_us=5000)
    grafted = root.parent / "pfn_residual.onnx"
    residual.graft(exported_model, RESIDUAL_TABLE, str(grafted))
    triton.write_model("pfn_residual", str(grafted), str(root / "pfn_residual"), max_batch_size=MAX_BATCH)
    return root


def test_config_matches_the_onnx_graph(repository, exported_model):
    config = parse_pbtxt((repository / "pfn" / "config.pbtxt").read_text())
    assert (config["name"], config["platform"], config["max_batch_size"]) == ("pfn", "onnxruntime_onnx", str(MAX_BATCH))
    graph = onnx.load(str(repository / "pfn" / "1" / "model.onnx")).graph
    assert (repository / "pfn" / "1" / "model.onnx").read_bytes() == Path(exported_model).read_bytes()
    for kind, values in (("input", graph.input), ("output", graph.output)):
        expected = []
        for v in values:
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            assert dims[0] == -1  # the batch axis is Triton's
            expected.append({"name": v.name, "data_type": "TYPE_FP32", "dims": dims[1:] or [1],
                             "reshape": not dims[1:]})
        assert config[kind] == expected
    assert {t["name"] for t in config["input"]} >= {"jet", "charged", "charged_mask", "neutral", "neutral_mask"}
    assert "dynamic_batching" in (repository / "pfn" / "config.pbtxt").read_text()


@pytest.mark.parametrize("content", ["not a model", "x"])  # "x" parses as an empty protobuf model
def test_a_file_that_is_not_onnx_is_refused_and_nothing_is_written(tmp_path, content):
    bad = tmp_path / "model.onnx"
    bad.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "triton-model", "--onnx", str(bad), "--name", "pfn",
                           "--output-dir", str(tmp_path / "repo" / "pfn")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not an ONNX model" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "repo").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(repository):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gnnjec", "serve", "--repository", str(repository),
                             "--port", str(port), "--threads", "1"],
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
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _inputs(arrays, names, binary=True):
    import tritonclient.http as httpclient

    out = []
    for name, array in zip(names, arrays):
        i = httpclient.InferInput(name, list(array.shape), "FP32")
        i.set_data_from_numpy(array, binary_data=binary)
        out.append(i)
    return out


def test_tritonclient_gets_what_onnx_runtime_computes_in_process(server, exported_model, synthetic_clouds):
    import tritonclient.http as httpclient

    url, _ = server
    client = httpclient.InferenceServerClient(url)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("pfn")
    meta = client.get_model_metadata("pfn")
    regressor = OnnxRegressor(exported_model)
    assert [i["name"] for i in meta["inputs"]] == regressor.names
    data = CloudData(synthetic_clouds["test"], regressor.inputs)
    arrays = data.batch(np.arange(40), 128)
    expected = regressor.predict_batch(arrays)
    for binary in (True, False):
        result = client.infer("pfn", _inputs(arrays, regressor.names, binary),
                              outputs=[httpclient.InferRequestedOutput("prediction", binary_data=binary)])
        np.testing.assert_allclose(result.as_numpy("prediction"), expected, rtol=1e-5, atol=1e-6)


def test_a_model_with_a_residual_correction_serves_the_corrected_and_the_network_prediction(
        server, repository, exported_model, synthetic_clouds):
    import tritonclient.http as httpclient

    from gnnjec.residual import NETWORK_OUTPUT

    config = parse_pbtxt((repository / "pfn_residual" / "config.pbtxt").read_text())
    assert [t["name"] for t in config["output"]] == ["prediction", NETWORK_OUTPUT]
    network = OnnxRegressor(exported_model)
    grafted = OnnxRegressor(str(repository / "pfn_residual" / "1" / "model.onnx"))
    arrays = CloudData(synthetic_clouds["test"], network.inputs).batch(np.arange(30), 128)
    client = httpclient.InferenceServerClient(server[0])
    result = client.infer("pfn_residual", _inputs(arrays, network.names))  # every output, as Triton answers
    np.testing.assert_allclose(result.as_numpy(NETWORK_OUTPUT), network.predict_batch(arrays), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("prediction"), grafted.predict_batch(arrays), rtol=1e-5, atol=1e-6)
    assert np.abs(result.as_numpy("prediction") - result.as_numpy(NETWORK_OUTPUT)).max() > 0.01  # it is applied


def test_concurrent_requests_of_different_lengths_are_batched_and_answered_exactly(server, exported_model,
                                                                                    synthetic_clouds):
    import tritonclient.http as httpclient

    url, _ = server
    regressor = OnnxRegressor(exported_model)
    data = CloudData(synthetic_clouds["test"], regressor.inputs)
    requests = [data.batch(np.arange(start, start + 7), 128) for start in range(0, 16 * 7, 7)]

    def ask(arrays):
        client = httpclient.InferenceServerClient(url)
        return client.infer("pfn", _inputs(arrays, regressor.names)).as_numpy("prediction")

    def counts():
        stats = httpclient.InferenceServerClient(url).get_inference_statistics("pfn")["model_stats"][0]
        return stats["request_count"], stats["execution_count"], stats["inference_count"]

    before = counts()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, requests))
    after = counts()
    requests_seen, executions = after[0] - before[0], after[1] - before[1]
    assert requests_seen == len(requests) and after[2] - before[2] == 7 * len(requests)
    assert executions < requests_seen  # concurrent requests shared ONNX Runtime calls
    for arrays, answer in zip(requests, answers):
        np.testing.assert_allclose(answer, regressor.predict_batch(arrays), rtol=1e-5, atol=1e-6)
    # the lengths differ between requests, and merged batches still answer each one exactly
    assert len({a[1].shape[1] for a in requests}) > 1


def _post(url, path, body: bytes, headers=None):
    conn = http.client.HTTPConnection(url, timeout=10)
    conn.request("POST", path, body, headers or {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.mark.parametrize("change, status, message", [
    (lambda r: r["inputs"].pop(0), 400, "missing input 'jet'"),
    (lambda r: r["inputs"][0].update(datatype="FP64"), 400, "input 'jet' is FP64; the model takes FP32"),
    (lambda r: r["inputs"][0].update(shape=[2, 3]), 400, "values for shape"),
    (lambda r: r["inputs"][1].update(shape=[2, 5, 1], data=[0.0] * 10), 400, "expected [-1, -1, "),
    (lambda r: r["inputs"].append({"name": "tracks", "shape": [1], "datatype": "FP32", "data": [1.0]}), 400,
     "unknown input 'tracks'"),
])
def test_bad_requests_get_a_4xx_with_the_reason_and_the_server_stays_up(server, exported_model, synthetic_clouds,
                                                                          change, status, message):
    url, proc = server
    regressor = OnnxRegressor(exported_model)
    arrays = CloudData(synthetic_clouds["test"], regressor.inputs).batch(np.arange(2), 128)
    request = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.reshape(-1).tolist()}
                          for n, a in zip(regressor.names, arrays)]}
    assert _post(url, "/v2/models/pfn/infer", json.dumps(request).encode())[0] == 200
    change(request)
    got_status, answer = _post(url, "/v2/models/pfn/infer", json.dumps(request).encode())
    assert got_status == status and message in answer["error"], answer
    assert proc.poll() is None


def test_malformed_oversized_and_unknown_requests(server, exported_model, synthetic_clouds):
    url, proc = server
    assert _post(url, "/v2/models/pfn/infer", b"{not json")[0] == 400
    assert _post(url, "/v2/models/pfn/infer", b'{"inputs": 3}')[0] == 400
    status, answer = _post(url, "/v2/models/gluon/infer", b"{}")
    assert status == 404 and "unknown model 'gluon'" in answer["error"]
    status, answer = _post(url, "/v2/models/pfn/infer", b'{"inputs": []}' + b"\0" * 8,
                           {"Inference-Header-Content-Length": "999"})
    assert status == 400 and "outside the body" in answer["error"]
    regressor = OnnxRegressor(exported_model)
    arrays = CloudData(synthetic_clouds["test"], regressor.inputs).batch(np.arange(MAX_BATCH + 1), 128)
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match=f"over max_batch_size {MAX_BATCH}"):
        httpclient.InferenceServerClient(url).infer("pfn", _inputs(arrays, regressor.names))
    assert proc.poll() is None
    conn = http.client.HTTPConnection(url, timeout=5)
    conn.request("GET", "/v2/health/ready")
    assert conn.getresponse().status == 200


def test_serve_refuses_a_folder_without_models(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "serve", "--repository", str(tmp_path), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no models" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_serving_does_not_import_torch():
    code = "import sys, gnnjec.serving, gnnjec.triton; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
