#!/usr/bin/env python3
"""Training and inference speed of every model preset, and how much of a step waits for data.

    python benchmarks/train_throughput.py                          # all presets, CPU or CUDA (auto)
    python benchmarks/train_throughput.py --device cuda --amp      # bfloat16 autocast on a GPU
    python benchmarks/train_throughput.py --presets pfn particlenet --batch-size 1024

Makes a small synthetic PFNano sample and converts it (or takes --clouds), then per preset: the
number of parameters; training jets/s over timed steps with the training loop's own input
pipeline (batches padded in a background thread, two ahead); the share of the step time spent
waiting for the next batch (goal < 5 %); and inference jets/s (evaluation mode, no gradients).
Anchor: the thesis trained PFN at about 19 k and ParticleNet at 2.2 k jets/s on two GPUs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

from gnnjec import spec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(1, str(REPO / "tests"))  # support.toy: the tests' fast generator



def make_clouds(workdir: Path, events: int) -> str:
    from gnnjec import convert, demo

    from support import toy

    correction = demo.derive_standard_correction(seed=2, n_events=8000, generator=toy)
    root = workdir / "sample.root"
    demo.write_pfnano(root, n_events=events, seed=9, file_index=0, correction=correction, generator=toy)
    clouds = workdir / "clouds.parquet"
    convert.convert_file(str(root), str(clouds), convert.Selection(), convert.Split())
    return str(clouds)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(preset: str, data, device, batch_size: int, steps: int, warmup: int, amp: bool, workers: int) -> dict:
    import numpy as np
    import torch

    from gnnjec.features import DEFAULT_INPUTS
    from gnnjec.models import build_model
    from gnnjec.streams import read_ahead
    from gnnjec.training import device_batches, fit_standardization

    torch.manual_seed(0)
    model = build_model({"model": preset}, DEFAULT_INPUTS)
    fit_standardization(model, data)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
    rows = np.random.default_rng(0).permutation(np.tile(np.arange(data.n), 1 + (steps + warmup) * batch_size // data.n))
    batches = read_ahead(device_batches(data, rows[: (steps + warmup) * batch_size], batch_size, 128, device,
                                        drop_last=True, workers=workers), 2)
    wait = 0.0
    for step in range(steps + warmup):
        if step == warmup:
            sync(device)
            wait, start = 0.0, time.perf_counter()
        tick = time.perf_counter()
        *args, target = next(batches)
        wait += time.perf_counter() - tick
        with autocast:
            loss = (model(*args).float() - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    train_seconds = time.perf_counter() - start

    model.eval()
    infer_rows = rows[: min(len(rows), max(steps, 4) * 1024)]
    inputs = list(device_batches(data, infer_rows, 1024, 128, device))
    with torch.no_grad(), autocast:
        model(*inputs[0][:-1])
        sync(device)
        start = time.perf_counter()
        for *args, _ in inputs:
            model(*args)
        sync(device)
    infer_seconds = time.perf_counter() - start
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train": steps * batch_size / train_seconds,
        "wait": wait / train_seconds,
        "infer": len(infer_rows) / infer_seconds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(spec.FAMILIES), choices=spec.FAMILIES)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=None, help="timed steps per preset (default: 40 on CUDA, 6 on the CPU)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--loader-threads", type=int, default=None,
                   help="threads padding batches (default 3 on CUDA, 1 on CPU)")
    p.add_argument("--events", type=int, default=10_000, help="events of the generated sample")
    p.add_argument("--clouds", help="a clouds file to use instead of a generated sample")
    a = p.parse_args()

    import torch

    from gnnjec.dataset import CloudData
    from gnnjec.features import DEFAULT_INPUTS
    from gnnjec.training import pick_device

    if a.threads:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    steps = a.steps or (40 if device.type == "cuda" else 6)
    workers = a.loader_threads or (3 if device.type == "cuda" else 1)
    with tempfile.TemporaryDirectory() as tmp:
        clouds = a.clouds or make_clouds(Path(tmp), a.events)
        data = CloudData(clouds, DEFAULT_INPUTS)
    print(f"machine: {describe(('torch', 'numpy'))}; torch threads {torch.get_num_threads()}")
    print(f"device {device}, AMP {'bf16' if a.amp and device.type == 'cuda' else 'off'}, batch {a.batch_size}, "
          f"{steps} timed steps, {workers} loader threads, up to 128 constituents per collection, {data.n} jets")
    print(f"{'preset':<18}{'parameters':>11}{'train jets/s':>14}{'data wait':>11}{'infer jets/s':>14}", flush=True)
    for preset in a.presets:
        r = measure(preset, data, device, a.batch_size, steps, a.warmup, a.amp, workers)
        print(f"{preset:<18}{r['parameters']:>11,}{r['train']:>14,.0f}{100 * r['wait']:>10.1f}%{r['infer']:>14,.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
