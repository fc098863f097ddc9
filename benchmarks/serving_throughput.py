#!/usr/bin/env python3
"""Inference throughput of each exported model family: ONNX Runtime in-process, torch, and served by
`gnnjec serve` through NVIDIA's tritonclient, with the FLOP/s they reach against a large matmul.

    python benchmarks/serving_throughput.py                       # the demo's results/ (here)
    python benchmarks/serving_throughput.py --workdir other/run --batches 1 16 256 1024
    python benchmarks/serving_throughput.py --untrained particlenet-lite particlenet   # families the run lacks

Per family (results/triton/<family>/ with the checkpoint named in results/training/best.json) and
batch size, on the same padded batches of test jets (results/clouds/test.parquet); with
``--untrained``, also networks of those presets with fresh weights (their speed does not depend on
what they learnt), exported the same way:

* ONNX Runtime in-process jets/s (gnnjec.inference.OnnxRegressor's session, all cores);
* torch jets/s (eval mode, no gradients, all cores);
* served jets/s: one tritonclient.http client sending binary tensors to `gnnjec serve` on
  127.0.0.1, one request at a time (client and server share this machine's cores);
* MFLOP per jet (torch.utils.flop_counter on the same batch: matmuls and convolutions) and the
  ONNX Runtime FLOP/s as a share of a large float32 matmul's FLOP/s measured in the same run.

Each rate is measured ``--repeats`` times (default 5, ``--seconds`` each) and printed as the median and
(min-max). Then, per protocol (REST with tritonclient.http, gRPC with tritonclient.grpc) and number of clients
in flight (``--concurrency``, default 1 16 64; each client a thread with its own connection sending requests
of ``--load-batch`` jets back to back), the first family's served jets/s and the median and 99th-percentile
latency, each as the median (min-max) over the repeats, and the failed requests.

Goals (issue 11): in-process ONNX Runtime at batch 1024 >= 50 % of the matmul's FLOP/s; served
>= 90 % of in-process. Anchor: the seed served PFN at 3,086 and ParticleNet at 310 jets/s on 2 CPU
cores at batch 1024 (Triton, no dynamic batching).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe

from gnnjec import spec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def rate(fn, min_seconds: float, min_calls: int = 3) -> float:
    """Calls per second of ``fn`` over at least ``min_seconds`` (after one warm-up call)."""
    fn()
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return calls / (time.perf_counter() - start)


def rates(fn, seconds: float, repeats: int) -> np.ndarray:
    """``repeats`` samples of :func:`rate`."""
    return np.array([rate(fn, seconds) for _ in range(repeats)])


def spread(values, scale: float = 1.0, digits: int = 0) -> str:
    """Median (min-max) of ``values`` times ``scale``."""
    v = np.asarray(values) * scale
    return f"{np.median(v):.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})"


def load(make_client, infer, concurrency: int, seconds: float) -> tuple[int, list[float], int]:
    """``concurrency`` clients (threads, each with its own client) sending requests back to back for ``seconds``:
    (requests answered, their latencies in s, failed requests)."""
    import threading

    latencies, failures, lock = [], [0], threading.Lock()
    barrier = threading.Barrier(concurrency)
    deadline = [0.0]

    def client_loop():
        try:
            client = make_client()
            infer(client)  # connect and warm up, outside the measurement
        except Exception:
            barrier.abort()  # the others stop waiting: the measurement fails loudly, not forever
            raise
        barrier.wait()
        if not deadline[0]:
            deadline[0] = time.perf_counter() + seconds
        mine, bad = [], 0
        while time.perf_counter() < deadline[0]:
            start = time.perf_counter()
            try:
                infer(client)
                mine.append(time.perf_counter() - start)
            except Exception:
                bad += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), latencies, failures[0]


def matmul_flops(threads: int, n: int = 4096, seconds: float = 3.0) -> dict:
    """FLOP/s of an n x n float32 matmul with numpy (OpenBLAS) and torch, on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    out = {"numpy": 2 * n**3 * rate(lambda: a @ b, seconds)}
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with torch.no_grad():
        out["torch"] = 2 * n**3 * rate(lambda: ta @ tb, seconds)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(repository: Path, threads: int):
    import http.client

    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gnnjec", "serve", "--repository", str(repository),
                             "--port", str(port), "--grpc-port", str(grpc_port), "--threads", str(threads)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection(f"127.0.0.1:{port}", timeout=1)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return proc, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gnnjec serve did not start: {proc.stderr.read()}")


def checkpoint_of(best: dict, point: str, workdir: Path) -> str:
    """A point's final checkpoint: beside the history best.json ranked it by (its folder's, or its last rung's)."""
    (history,) = [entry["history"] for entry in best["ranking"] if entry["name"] == point]
    return str(workdir / Path(history).with_name("model.pt"))


def untrained(preset: str, model_dir: Path, workdir: Path, run: Path, inputs: dict):
    """A ``preset`` network with fresh weights (standardisation fitted on the training split),
    exported and written into the repository as ``model_dir``; returns the torch network."""
    from gnnjec import checkpoint, triton
    from gnnjec.dataset import CloudData
    from gnnjec.export import export_onnx
    from gnnjec.hparams import complete
    from gnnjec.models import build_model
    from gnnjec.training import fit_standardization

    hp = complete({"model": preset})
    model = build_model(hp, inputs)
    fit_standardization(model, CloudData(str(run / spec.clouds_split("val")), inputs))
    path = workdir / f"{preset}.pt"
    checkpoint.save(str(path), {"hparams": hp, "inputs": inputs, "state_dict": model.state_dict()})
    export_onnx(str(path), str(workdir / f"{preset}.onnx"), name=f"{preset} (untrained)")
    triton.write_model(model_dir.name, str(workdir / f"{preset}.onnx"), str(model_dir))
    return model.eval()


def concurrency_table(family: str, repository: Path, run: Path, url: str, grpc_url: str, args) -> None:
    """Served jets/s and latency per protocol and number of clients in flight."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from gnnjec.dataset import CloudData
    from gnnjec.inference import OnnxRegressor

    regressor = OnnxRegressor(str(repository / family / "1" / "model.onnx"), 1)
    data = CloudData(str(run / spec.clouds_split("test")), regressor.inputs)
    arrays = data.batch(np.arange(args.load_batch), regressor.hparams["max_constituents"])
    print(f"# {family}, {args.load_batch} jet(s) per request, clients back to back; median (min-max) of "
          f"{args.repeats} samples of {args.load_seconds} s")
    print(f"{'protocol':<9}{'clients':>8}{'served jets/s':>24}{'median latency ms':>24}{'p99 latency ms':>24}"
          f"{'requests':>10}{'failed':>8}")
    for protocol, module, address in (("REST", httpclient, url), ("gRPC", grpcclient, grpc_url)):
        def make_client(module=module, address=address):
            return module.InferenceServerClient(address)

        def infer(client, module=module):
            inputs = []
            for name, x in zip(regressor.names, arrays):
                inputs.append(module.InferInput(name, list(x.shape), "FP32"))
                inputs[-1].set_data_from_numpy(x)
            client.infer(family, inputs)

        for concurrency in args.concurrency:
            jets, p50, p99, total, failed = [], [], [], 0, 0
            for _ in range(args.repeats):
                answered, latencies, bad = load(make_client, infer, concurrency, args.load_seconds)
                jets.append(answered * args.load_batch / args.load_seconds)
                p50.append(np.percentile(latencies, 50) if latencies else np.nan)
                p99.append(np.percentile(latencies, 99) if latencies else np.nan)
                total, failed = total + answered, failed + bad
            print(f"{protocol:<9}{concurrency:>8}{spread(jets):>24}{spread(p50, 1e3, 1):>24}{spread(p99, 1e3, 1):>24}"
                  f"{total:>10}{failed:>8}", flush=True)


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--workdir", default=".", help="a finished workflow's working directory (with results/)")
    a.add_argument("--families", nargs="*", help="default: every family in results/triton")
    a.add_argument("--batches", type=int, nargs="*", default=[1, 4, 16, 64, 256, 1024])
    a.add_argument("--seconds", type=float, default=0.5, help="per sample")
    a.add_argument("--repeats", type=int, default=5, help="samples per measurement (median and min-max printed)")
    a.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 64], help="clients in flight")
    a.add_argument("--load-batch", type=int, default=1, help="jets per request in the concurrency section")
    a.add_argument("--load-seconds", type=float, default=3.0, help="per sample of the concurrency section")
    a.add_argument("--threads", type=int, default=os.cpu_count())
    a.add_argument("--untrained", nargs="*", default=[], metavar="PRESET",
                   help="also benchmark these presets with fresh weights (e.g. particlenet-lite particlenet)")
    args = a.parse_args()

    import torch
    import tritonclient.http as httpclient
    from torch.utils.flop_counter import FlopCounterMode

    from gnnjec.checkpoint import load_model
    from gnnjec.dataset import CloudData
    from gnnjec.inference import OnnxRegressor

    run = Path(args.workdir)
    best = json.loads((run / spec.BEST).read_text())
    trained = args.families or [family for family in best["families"]
                                if (run / spec.TRITON_CONFIG.format(family=family)).exists()]
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    repository = workdir / "triton"
    models = {}  # name in the repository -> the torch network
    for family in trained:
        shutil.copytree((run / spec.TRITON_CONFIG.format(family=family)).parent, repository / family)
        models[family] = load_model(checkpoint_of(best, best["families"][family], run))[0]
    for preset in args.untrained:
        inputs = OnnxRegressor(str(repository / trained[0] / "1" / "model.onnx")).inputs
        models[f"{preset}-untrained"] = untrained(preset, repository / f"{preset}-untrained", workdir, run, inputs)
    families = list(models)
    torch.set_num_threads(args.threads)
    print(f"# {describe(('torch', 'onnxruntime', 'numpy'))}; {args.threads} threads")
    reference = matmul_flops(args.threads)
    peak = max(reference.values())
    print(f"# 4096^2 float32 matmul: numpy {reference['numpy'] / 1e9:.1f} GFLOP/s, "
          f"torch {reference['torch'] / 1e9:.1f} GFLOP/s; the share below is of the larger")
    server, url, grpc_url = start_server(repository, args.threads)
    client = httpclient.InferenceServerClient(url, connection_timeout=120, network_timeout=600)
    print(f"# rates: median (min-max) of {args.repeats} samples of {args.seconds} s")
    print(f"{'family':<28}{'batch':>6}{'ORT jets/s':>26}{'torch jets/s':>26}{'served jets/s':>26}{'served/ORT':>12}"
          f"{'MFLOP/jet':>11}{'ORT GFLOP/s':>13}{'of matmul':>11}")
    try:
        for family in families:
            regressor = OnnxRegressor(str(repository / family / "1" / "model.onnx"), args.threads)
            model = models[family]
            data = CloudData(str(run / spec.clouds_split("test")), regressor.inputs)
            rows = np.random.default_rng(0).permutation(data.n)
            for batch in args.batches:
                arrays = data.batch(rows[:batch], regressor.hparams["max_constituents"])
                tensors = [torch.from_numpy(x) for x in arrays]
                counter = FlopCounterMode(display=False)
                with torch.no_grad(), counter:
                    model(*tensors)
                flops = counter.get_total_flops()
                ort = batch * rates(lambda: regressor.predict_batch(arrays), args.seconds, args.repeats)
                with torch.no_grad():
                    tor = batch * rates(lambda: model(*tensors), args.seconds, args.repeats)
                inputs = []
                for name, x in zip(regressor.names, arrays):
                    inputs.append(httpclient.InferInput(name, list(x.shape), "FP32"))
                    inputs[-1].set_data_from_numpy(x, binary_data=True)
                served = batch * rates(lambda: client.infer(family, inputs), args.seconds, args.repeats)
                gflops = np.median(ort) / batch * flops / 1e9
                print(f"{family:<28}{batch:>6}{spread(ort):>26}{spread(tor):>26}{spread(served):>26}"
                      f"{np.median(served) / np.median(ort):>11.0%}{flops / batch / 1e6:>11.2f}{gflops:>13.2f}"
                      f"{gflops * 1e9 / peak:>11.1%}", flush=True)
        concurrency_table(families[0], repository, run, url, grpc_url, args)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
