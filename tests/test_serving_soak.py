"""A soak and abuse test of `gnnjec serve` (issue 24), on loopback, bounded in time: ordinary clients keep asking
while others send wide, oversized, slow and idle traffic and a burst of 200 new connections arrives. The server's
memory stays under a stated bound, no ordinary request fails, and their p99 latency stays within a stated factor of
the unloaded one. ``GNNJEC_SOAK_SECONDS`` sets the loaded phase (default 120 s); run it longer by hand:

    GNNJEC_SOAK_SECONDS=600 pytest -s tests/test_serving_soak.py
"""

import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gnnjec import triton
from gnnjec.dataset import CloudData
from gnnjec.inference import OnnxRegressor

from support.serving import binary_request, json_inputs, serve

SECONDS = float(os.environ.get("GNNJEC_SOAK_SECONDS", 120))
UNLOADED_SECONDS = 10
ORDINARY_CLIENTS = 8
IDLE_CONNECTIONS = 30
BURST = 200
RSS_BOUND_MB = 400
"""The server's largest resident memory under the whole load (about 150 MB idle with this model)."""
RETURN_MB = 100
"""The server's resident memory 3 s after the load, at most this much over its idle size."""
P99_FACTOR = 10
"""The ordinary clients' p99 latency under load over their p99 alone, at most (the load shares 2 cores with them)."""
LIMITS = ("--max-body-mb", "4", "--read-timeout-s", "2", "--idle-timeout-s", "10", "--max-pending-mb", "64")
INFER = "/v2/models/pfn/infer"
PAUSE = 0.05
"""Seconds each abusive client waits between its attempts: they are among the ordinary clients, not a CPU
saturation of the 2 cores the clients and the server share."""


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


class Load:
    """The clients: each a thread looping until ``stop``; ordinary latencies and every outcome recorded."""

    def __init__(self, url: str, regressor: OnnxRegressor, data: CloudData, trained: int):
        self.url, self.host, self.port = url, url.rsplit(":", 1)[0], int(url.rsplit(":", 1)[1])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.ordinary_failures: list[str] = []
        self.outcomes: Counter = Counter()
        self.threads: list[threading.Thread] = []
        rng = np.random.default_rng(1)
        self.ordinary = []
        for i in range(8):  # requests of 4 jets and their answers in-process
            arrays = dict(zip(regressor.names, data.batch(np.arange(4 * i, 4 * i + 4), 128)))
            self.ordinary.append((*binary_request(arrays), regressor.predict_batch(list(arrays.values()))))
        wide = dict(zip(regressor.names, data.batch(np.arange(64), 128)))  # 64 jets, every collection full
        for name in [n for n in wide if n.endswith("_mask")]:
            c = name.removesuffix("_mask")
            wide[c] = rng.normal(size=(64, trained, wide[c].shape[2])).astype(np.float32)
            wide[name] = np.ones((64, trained), np.float32)
        self.wide = (*binary_request(wide), regressor.predict_batch(list(wide.values())))
        half = {n: a[:32] for n, a in wide.items()}
        self.json = (json.dumps({"inputs": json_inputs(half)}).encode(), self.wide[2][:32])
        too_wide = {n: a[:1] for n, a in wide.items()}
        for name in [n for n in wide if n.endswith("_mask")]:
            c = name.removesuffix("_mask")
            too_wide[c] = np.zeros((1, 4 * trained, wide[c].shape[2]), np.float32)
            too_wide[name] = np.ones((1, 4 * trained), np.float32)
        self.too_wide = binary_request(too_wide)

    def start(self, target, *args) -> None:
        thread = threading.Thread(target=self._loop, args=(target, *args), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _loop(self, target, *args) -> None:
        while not self.stop.is_set():
            try:
                target(*args)
            except OSError as err:  # a connection the server closed on purpose (an abuser's)
                self.count(f"{target.__name__}: {type(err).__name__}")
            if target != self.ordinary_client:
                self.stop.wait(PAUSE)

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def ordinary_client(self, index: int) -> None:
        conn = http.client.HTTPConnection(self.url, timeout=60)
        body, headers, expected = self.ordinary[index % len(self.ordinary)]
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("POST", INFER, body, headers)
                response = conn.getresponse()
                answer = response.read()
                latency = time.perf_counter() - started
            except OSError as err:
                with self.lock:
                    self.ordinary_failures.append(f"{type(err).__name__}: {err}")
                conn = http.client.HTTPConnection(self.url, timeout=60)
                continue
            if response.status != 200:
                with self.lock:
                    self.ordinary_failures.append(f"{response.status}: {answer[:200]!r}")
                continue
            got = json.loads(answer)["outputs"][0]["data"]
            if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
                with self.lock:
                    self.ordinary_failures.append("a wrong answer")
            with self.lock:
                self.latencies.append(latency)

    def wide_client(self) -> None:
        """Legitimate but heavy: 64 jets with every collection at the training's width."""
        conn = http.client.HTTPConnection(self.url, timeout=60)
        body, headers, expected = self.wide
        conn.request("POST", INFER, body, headers)
        response = conn.getresponse()
        answer = response.read()
        ok = response.status == 200 and np.allclose(json.loads(answer)["outputs"][0]["data"], expected, rtol=1e-5,
                                                     atol=1e-6)
        self.count(f"wide: {response.status}{'' if ok else ' wrong'}")

    def json_client(self) -> None:
        """Legitimate but heavy: 32 full jets as JSON, a body of megabytes whose numbers are parsed."""
        conn = http.client.HTTPConnection(self.url, timeout=60)
        conn.request("POST", INFER, self.json[0], {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        ok = response.status == 200 and np.allclose(json.loads(answer)["outputs"][0]["data"], self.json[1],
                                                     rtol=1e-5, atol=1e-6)
        self.count(f"json: {response.status}{'' if ok else ' wrong'}")

    def oversized_client(self) -> None:
        """A body announced over the limit (1 MB of it sent), and points beyond the training's width."""
        with socket.create_connection((self.host, self.port), timeout=30) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (INFER.encode(), 10 << 30))
            try:
                s.sendall(b" " * (1 << 20))
            except OSError:
                pass  # the server answered and closed before it was all sent
            self.count(f"oversized body: {_read_status(s)}")
        conn = http.client.HTTPConnection(self.url, timeout=60)
        conn.request("POST", INFER, *self.too_wide)
        response = conn.getresponse()
        response.read()
        self.count(f"too wide: {response.status}")

    def slow_client(self) -> None:
        """Announces a body and sends it a byte at a time (a slow-body attack)."""
        with socket.create_connection((self.host, self.port), timeout=30) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{" % INFER.encode())
            try:
                while not self.stop.is_set():
                    s.sendall(b" ")
                    time.sleep(0.1)
                    if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                        break
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
            self.count(f"slow body: {_read_status(s)}")

    def idle_hoarder(self) -> None:
        """Holds IDLE_CONNECTIONS connections open without a byte until the server closes them."""
        held = [socket.create_connection((self.host, self.port), timeout=30) for _ in range(IDLE_CONNECTIONS)]
        for s in held:
            with s:
                self.count(f"idle: {'closed by the server' if s.recv(1) == b'' else 'data'}")


def _read_status(s: socket.socket) -> str:
    answer = b""
    try:
        while chunk := s.recv(65536):
            answer += chunk
    except OSError:
        pass
    return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"


def _burst(url: str) -> list[int]:
    """BURST new connections at once, each asking for readiness."""
    barrier = threading.Barrier(BURST)

    def connect(_):
        barrier.wait()
        conn = http.client.HTTPConnection(url, timeout=60)
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(connect, range(BURST)))


@pytest.fixture(scope="module")
def soak_repository(tmp_path_factory, exported_model):
    root = tmp_path_factory.mktemp("triton_soak")
    triton.write_model("pfn", exported_model, str(root / "pfn"), max_batch_size=256, max_queue_delay_us=2000)
    return root


def test_the_server_holds_sustained_abusive_load(soak_repository, exported_model, synthetic_clouds):
    regressor = OnnxRegressor(exported_model)
    trained = json.loads(regressor.session.get_modelmeta().custom_metadata_map["hparams"])["max_constituents"]
    data = CloudData(synthetic_clouds["test"], regressor.inputs)
    with serve(soak_repository, *LIMITS) as (url, _, proc):
        rss, sampling = [], threading.Event()

        def sample():
            while not sampling.is_set():
                rss.append(_rss_mb(proc.pid))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        idle_rss = _rss_mb(proc.pid)
        alone = Load(url, regressor, data, trained)
        for i in range(ORDINARY_CLIENTS):
            alone.start(alone.ordinary_client, i)
        time.sleep(UNLOADED_SECONDS)
        alone.join()
        load = Load(url, regressor, data, trained)
        for i in range(ORDINARY_CLIENTS):
            load.start(load.ordinary_client, i)
        for target in (load.wide_client, load.json_client, load.json_client, load.oversized_client, load.slow_client,
                       load.slow_client, load.idle_hoarder):
            load.start(target)
        time.sleep(SECONDS / 2)
        burst = _burst(url)
        time.sleep(SECONDS / 2)
        load.join()
        time.sleep(3)
        after_rss = _rss_mb(proc.pid)
        sampling.set()
        sampler.join()
        assert proc.poll() is None

    p99_alone = float(np.percentile(alone.latencies, 99))
    p99_loaded = float(np.percentile(load.latencies, 99))
    figures = {"seconds": SECONDS, "ordinary requests": len(load.latencies),
               "ordinary failed": len(load.ordinary_failures), "p99 alone ms": round(1e3 * p99_alone, 1),
               "p99 loaded ms": round(1e3 * p99_loaded, 1), "p99 ratio": round(p99_loaded / p99_alone, 2),
               "median loaded ms": round(1e3 * float(np.median(load.latencies)), 1),
               "rss idle MB": round(idle_rss), "rss max MB": round(max(rss)), "rss after MB": round(after_rss),
               "burst ok": sum(s == 200 for s in burst), "outcomes": dict(sorted(load.outcomes.items()))}
    print("\nsoak:", json.dumps(figures, indent=1))
    assert not alone.ordinary_failures and not load.ordinary_failures, load.ordinary_failures[:5]
    assert burst == [200] * BURST
    assert max(rss) < RSS_BOUND_MB and after_rss < idle_rss + RETURN_MB, figures
    assert p99_loaded < P99_FACTOR * p99_alone, figures
    outcomes = load.outcomes
    for heavy in ("wide", "json"):
        assert outcomes[f"{heavy}: 200"] > 0
        assert [k for k in outcomes if k.startswith(heavy)] == [f"{heavy}: 200"]
    assert outcomes["oversized body: 413"] > 0 and outcomes["too wide: 413"] > 0
    assert outcomes["slow body: 408"] > 0 and outcomes["idle: closed by the server"] >= IDLE_CONNECTIONS
    assert not [k for k in outcomes if ": 5" in k], outcomes  # no 500 (nor 503: the limits were not reached)
