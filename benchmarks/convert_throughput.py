#!/usr/bin/env python3
"""Convert-stage throughput against the bare ROOT read, and peak memory for a 1x and a 4x larger file.

    python benchmarks/convert_throughput.py                        # 1,000,000 events (about 2 GB) and 4x
    python benchmarks/convert_throughput.py --events 200000 --keep # smaller; keep the generated files

Writes PFNano-layout files with the synthetic generator (distinct simulated blocks, repeated with
new event numbers, so that a multi-GB file is quick to make), then, each in a fresh process:
  * read:    uproot alone reads the branches the converter needs, chunk by chunk (the floor);
  * convert: the convert stage, file -> particle clouds (Parquet).
Both run on the same file right after each other (warm page cache for both). The real CMS file
../shared/data/nanoaod/pfnano.root (10 events, LZMA as CMSSW writes it) is measured too, many
conversions over, since it is small. Peak RSS is the
process's maximum resident set size. Goals (issue 3): convert within 1.7x of the read, and flat
peak memory below 2 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(1, str(REPO / "tests"))  # support.toy: the tests' fast generator

BLOCK_EVENTS = 25_000
DISTINCT_BLOCKS = 4


def write_file(path: Path, n_events: int, seed: int = 5) -> float:
    """A PFNano-layout file of ``n_events``: DISTINCT_BLOCKS simulated blocks written in turn."""
    import numpy as np

    from gnnjec.demo import pfnano

    from support import toy

    if path.exists():
        return 0.0
    start = time.perf_counter()
    correction = toy.derive_standard_correction(seed=1, n_events=20_000)
    rng = np.random.default_rng(seed)
    blocks = [toy.nanoaod_chunk(toy.simulate(rng, BLOCK_EVENTS), correction, 1, 1)
              for _ in range(DISTINCT_BLOCKS)]

    def repeated():
        done = 0
        while done < n_events:
            block = dict(blocks[(done // BLOCK_EVENTS) % DISTINCT_BLOCKS])
            n = min(BLOCK_EVENTS, n_events - done)
            block = {k: v[:n] for k, v in block.items()}
            block["event"] = np.arange(1 + done, 1 + done + n, dtype=np.uint64)
            yield block
            done += n

    pfnano.write(path, repeated())
    return time.perf_counter() - start


def child(mode: str, path: str, step_size: str, output: str, repeat: int) -> None:
    """Run one measurement (``repeat`` times over) in this fresh process and print its result as JSON."""
    from gnnjec import convert, nanoaod

    step = nanoaod.step_size(step_size)
    events = jets = 0
    cpu0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(repeat):
        if mode == "read":
            tree = nanoaod.open_events(path)
            branches = nanoaod.branches_to_read(nanoaod.branch_map(tree, path))
            step_events = nanoaod.events_per_chunk(tree, branches, step)
            events += sum(len(a) for a in tree.iterate(branches, step_size=step_events, library="ak"))
        else:
            info = convert.convert_file(path, output, convert.Selection(), convert.Split(), step)
            events, jets = events + info["events"], jets + info["jets"]
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(json.dumps({"seconds": seconds, "cpu": cpu, "events": events, "jets": jets, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """VmHWM of this process (unlike ru_maxrss, it starts afresh at exec, not at the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, path: Path, step_size: str, output: Path, repeat: int = 1) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path), "--step-size", step_size,
                           "--output", str(output), "--repeat", str(repeat)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode} of {path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def row(label: str, path: Path, read: dict, conv: dict, repeat: int = 1) -> str:
    return (f"{label:<10}{path.stat().st_size * repeat / 1e9:>6.2f}{conv['events']:>10}{conv['jets']:>10}"
            f"{read['seconds']:>8.1f}{conv['seconds']:>9.1f}{conv['seconds'] / read['seconds']:>7.2f}"
            f"{conv['jets'] / conv['seconds']:>9.0f}{conv['cpu'] / read['cpu']:>10.2f}"
            f"{read['peak_rss_mb']:>8.0f}MB{conv['peak_rss_mb']:>8.0f}MB")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events of the 1x file")
    p.add_argument("--scale", type=int, default=4, help="size of the larger file, in units of the first")
    p.add_argument("--step-size", default="50 MB", help="convert.step_size (events or a size such as '100 MB')")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/gnnjec-convert-bench"))
    p.add_argument("--keep", action="store_true", help="keep the generated files for the next run")
    p.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "nanoaod" / "pfnano.root",
                   help="a real PFNano file, measured too (skipped if missing)")
    p.add_argument("--real-repeat", type=int, default=30, help="conversions of the real file per measurement")
    p.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--output", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(*a.child, a.step_size, a.output, a.repeat)
        return 0

    a.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe(('uproot', 'awkward', 'pyarrow', 'numpy'))}")
    print(f"step size {a.step_size}; synthetic files: PFNano layout, ZLIB-compressed by uproot; warm page cache")
    print(f"{'input':<10}{'GB':>6}{'events':>10}{'jets':>10}{'read s':>8}{'conv. s':>9}{'ratio':>7}"
          f"{'jets/s':>9}{'cpu ratio':>10}{'RSS read':>10}{'RSS conv.':>10}", flush=True)
    try:
        if a.real.exists():  # the real CMS PFNano file, converted many times over for a stable timing
            output = a.workdir / "clouds_real.parquet"
            read = measure("read", a.real, a.step_size, output, a.real_repeat)
            conv = measure("convert", a.real, a.step_size, output, a.real_repeat)
            print(row(f"real x{a.real_repeat}", a.real, read, conv, a.real_repeat), flush=True)
        for scale in (1, a.scale):
            path = a.workdir / f"pfnano_{scale}x.root"
            made = write_file(path, a.events * scale)
            output = a.workdir / f"clouds_{scale}x.parquet"
            read = measure("read", path, a.step_size, output)
            conv = measure("convert", path, a.step_size, output)
            print(row(f"{scale}x", path, read, conv) + (f"   (written in {made:.0f} s)" if made else ""), flush=True)
            output.unlink(missing_ok=True)
    finally:
        if not a.keep:
            shutil.rmtree(a.workdir, ignore_errors=True)
    print("ratio = convert wall time / read wall time (goal <= 1.7); cpu ratio = the same for CPU seconds "
          "(convert overlaps reading, processing and writing in three threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
