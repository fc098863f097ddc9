"""Property-based tests (Hypothesis) of what reads untrusted input (issue 24): the server's request decoders (JSON,
binary, gRPC, and the HTTP layer over a socket) and the convert stage's checks on damaged branches. Whatever comes
in, the outcome is an answer or a one-line 4xx / InputError: never a 500, never another exception."""

import json
import math
import socket
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnjec import triton
from gnnjec.convert import Selection, Split, clouds_from_chunk
from gnnjec.dataset import CloudData
from gnnjec.errors import InputError
from gnnjec.inference import OnnxRegressor
from gnnjec.nanoaod import iterate_chunks
from gnnjec.serving import BadRequest, ServedModel, decode_request, encode_response

from support.serving import binary_inputs, json_inputs, serve

EXAMPLES = 1000
"""Examples per property (Hypothesis' default is 100)."""

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""Derandomized: CI runs the same examples each time (a failure found once is found again)."""

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
"""Any JSON value (integers of any size, floats with NaN and infinities, as Python's json writes them)."""


@pytest.fixture(scope="module")
def model(tmp_path_factory, exported_model):
    root = tmp_path_factory.mktemp("triton_fuzz")
    triton.write_model("pfn", exported_model, str(root / "pfn"), max_batch_size=64, max_queue_delay_us=0)
    return ServedModel("pfn", root / "pfn", threads=1)


@pytest.fixture(scope="module")
def arrays(exported_model, synthetic_clouds) -> dict:
    regressor = OnnxRegressor(exported_model)
    return dict(zip(regressor.names, CloudData(synthetic_clouds["test"], regressor.inputs).batch(np.arange(2), 128)))


def _mutate(data, value):
    """``value`` with one of its parts replaced by any JSON value, deleted, or given a new key (drawn from ``data``)."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        action = data.draw(st.sampled_from(["into", "replace", "delete", "add"]))
        out = dict(value)
        if action == "into":
            out[key] = _mutate(data, value[key])
        elif action == "replace":
            out[key] = data.draw(JSON_VALUES)
        elif action == "delete":
            del out[key]
        else:
            out[data.draw(st.text(max_size=8))] = data.draw(JSON_VALUES)
        return out
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], _mutate(data, value[i]), *value[i + 1:]]
    return data.draw(JSON_VALUES)


def _answer(model: ServedModel, body: bytes, header_length: int | None) -> int:
    """What the server answers to ``body``: 200 (with strict JSON) or a BadRequest's 4xx with one line."""
    try:
        request, arrays = decode_request(body, header_length, model)
        outputs = model.infer(arrays)
        response, json_length = encode_response(model, request, outputs)
        json.loads(response[:json_length])  # strict JSON (a bare NaN would fail here)
        return 200
    except BadRequest as err:
        assert 400 <= err.status < 500 and "\n" not in str(err), (err.status, str(err))
        return err.status


def _json_request(arrays: dict) -> dict:
    return {"inputs": json_inputs(arrays), "outputs": [{"name": "prediction"}], "parameters": {}}


@FUZZ
@given(data=st.data())
def test_json_requests_get_an_answer_or_a_4xx(model, arrays, data):
    request = _json_request({n: a[:1, :3] if a.ndim > 2 or n.endswith("_mask") else a[:1] for n, a in arrays.items()})
    assert _answer(model, json.dumps(request).encode(), None) == 200
    for _ in range(data.draw(st.integers(1, 3))):
        request = _mutate(data, request)
    _answer(model, json.dumps(request).encode(), None)


@FUZZ
@given(body=st.binary(max_size=200), header_length=st.none() | st.integers(-2, 300))
def test_arbitrary_bytes_get_a_4xx(model, body, header_length):
    assert _answer(model, body, header_length) >= 400


@FUZZ
@given(data=st.data())
def test_binary_requests_get_an_answer_or_a_4xx(model, arrays, data):
    inputs, blobs = binary_inputs(arrays)
    request = {"inputs": inputs, "parameters": {"binary_data_output": True}}
    head = json.dumps(request).encode()
    assert _answer(model, head + b"".join(blobs), len(head)) == 200
    if data.draw(st.booleans()):
        request = _mutate(data, request)
        head = json.dumps(request).encode()
    tail = b"".join(blobs)
    cut = data.draw(st.integers(0, len(tail)))
    tail = data.draw(st.sampled_from([tail, tail[:cut], tail + data.draw(st.binary(max_size=64))]))
    header_length = data.draw(st.sampled_from([len(head), len(head) - 1, len(head) + 1, 0, None]))
    _answer(model, head + tail, header_length)


@FUZZ
@given(data=st.data())
def test_grpc_requests_get_an_answer_or_a_4xx(model, arrays, data):
    from tritonclient.grpc import service_pb2 as pb

    from gnnjec.serving_grpc import decode_inputs

    request = pb.ModelInferRequest(model_name="pfn")
    names = [*arrays, "tracks", ""]
    for name, a in arrays.items():
        name = data.draw(st.sampled_from([name] * 4 + names))
        shape = data.draw(st.sampled_from([list(a.shape)] * 3 + [[], [-1, *a.shape[1:]], [2**40, *a.shape[1:]]])
                          | st.lists(st.integers(-2**63, 2**63 - 1), max_size=4))
        datatype = data.draw(st.sampled_from(["FP32"] * 4 + ["FP64", "INT64", "BYTES", "fp32", ""]))
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        blob = a.tobytes()
        request.raw_input_contents.append(data.draw(st.sampled_from([blob, blob[:-4], blob + b"\0" * 4, b""])))
    if data.draw(st.booleans()):
        del request.raw_input_contents[-1]
    try:
        outputs = model.infer(decode_inputs(request, model))
        assert set(outputs) == {"prediction"}
    except BadRequest as err:
        assert 400 <= err.status < 500 and "\n" not in str(err), (err.status, str(err))


HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Length": st.sampled_from(["0", "5", "-1", "abc", "99999999999999999999", " 7", "1e3", "\u00b2"]),
    "Transfer-Encoding": st.sampled_from(["chunked", "gzip", "chunked, chunked", "", "identity"]),
    "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "x-gzip", "identity", ""]),
    "Inference-Header-Content-Length": st.sampled_from(["0", "3", "-3", "x", "999999", "\u0663"]),
    "Accept-Encoding": st.sampled_from(["gzip", "deflate;q=0", "*", "gzip;q=abc"]),
})


@pytest.fixture(scope="module")
def http_server(tmp_path_factory, exported_model):
    root = tmp_path_factory.mktemp("triton_fuzz_http")
    triton.write_model("pfn", exported_model, str(root / "pfn"), max_batch_size=64, max_queue_delay_us=0)
    with serve(root, "--read-timeout-s", "2", "--max-body-mb", "1") as (url, _, proc):
        yield url, proc


@settings(FUZZ, max_examples=500)
@given(path=st.sampled_from(["/v2/models/pfn/infer", "/v2/models/pfn/versions/1/infer", "/v2/models/%00/infer",
                             "/v2/models/pfn/infer?x=1", "/" + "a" * 3000, "/v2/models/pfn"]),
       headers=HEADERS, body=st.binary(max_size=300),
       chunked=st.lists(st.binary(min_size=1, max_size=20), max_size=3), compress=st.booleans())
def test_http_requests_never_get_a_500_and_the_server_stays_up(http_server, path, headers, body, chunked, compress):
    url, proc = http_server
    if compress:
        body = zlib.compress(body)
    if headers.get("Transfer-Encoding") == "chunked":
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunked) + b"0\r\n\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    host, port = url.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode("utf-8") + body)
        s.shutdown(socket.SHUT_WR)  # what was sent is all there is: a short body ends now, not at the timeout
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None
    assert status is None or status == 200 or 400 <= status < 500 or status == 501, answer[:300]
    assert proc.poll() is None


# --- the convert stage's checks on damaged branches -----------------------------------------------------------------

@pytest.fixture(scope="module")
def chunk(cms_file):
    """The real pfnano.root's 10 events as one chunk, to damage in memory."""
    (only,) = list(iterate_chunks(cms_file("pfnano.root"), step_size=1000))
    return only


FIELDS = [("jet", f) for f in ("pt", "eta", "phi", "mass", "rawFactor", "area", "genJetIdx", "hadronFlavour",
                               "partonFlavour")] + \
    [("pfcands", f) for f in ("pt", "eta", "phi", "mass", "charge", "pdgId")] + \
    [("genjet", f) for f in ("pt", "eta", "phi")] + [("links", f) for f in ("jetIdx", "pFCandsIdx")]
"""(collection of the chunk, field) a damage may hit (the fields the convert stage reads, where the chunk has them)."""

VALUES = st.floats() | st.sampled_from([0.0, -0.0, -1.0, 1.0, 1e30, -1e30, 6.0, -6.0, 2.0, -2.0, 128.0]) | \
    st.integers(-2**31, 2**31 - 1)


def _damaged(chunk, data):
    import copy

    out = copy.copy(chunk)
    for _ in range(data.draw(st.integers(1, 4))):
        collection, field = data.draw(st.sampled_from(FIELDS))
        original = getattr(out, collection)
        if field not in original.fields or not len(original.fields[field]):
            continue
        values = original.fields[field].copy()
        index = data.draw(st.integers(0, len(values) - 1))
        value = data.draw(VALUES)
        if values.dtype.kind in "iu":
            if not (isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))):
                continue
            value = min(max(int(value), np.iinfo(values.dtype).min), np.iinfo(values.dtype).max)
        with np.errstate(over="ignore"):  # 1e300 in a float32 branch reads as inf, as uproot would give it
            values[index] = value
        setattr(out, collection, type(original)(original.counts, {**original.fields, field: values}))
    return out


@settings(FUZZ)
@given(data=st.data(), drop=st.booleans())
def test_damaged_branches_are_refused_in_one_line_or_dropped_and_what_passes_is_physical(chunk, data, drop):
    damaged = _damaged(chunk, data)
    selection = Selection(min_gen_pt=0, require_gen_match=False, invalid_jets="drop" if drop else "error")
    try:
        table = clouds_from_chunk(damaged, selection, Split(), "damaged.root")
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith("damaged.root: "), str(err)
        return
    pt_raw, eta, target = (table[c].to_numpy() for c in ("pt_raw", "eta", "target"))
    assert np.isfinite(pt_raw).all() and (pt_raw > 0).all() and (np.abs(eta) <= 5.5).all()
    matched = np.isfinite(table["pt_gen"].to_numpy())  # unmatched jets are kept (require_gen_match: false)
    assert np.isfinite(target[matched]).all() and (table["pt_gen"].to_numpy()[matched] > 0).all()
    for name in ("charged", "neutral"):
        assert np.isfinite(np.asarray(table[name].combine_chunks().flatten().flatten())).all()
