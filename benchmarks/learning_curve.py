#!/usr/bin/env python3
"""How the networks' gain over the standard correction grows with the training sample: a learning curve.

    python benchmarks/learning_curve.py --clouds results/clouds                 # after make demo
    python benchmarks/learning_curve.py --clouds results/clouds --sizes 16000 64000 --seeds 1 2 3 --models pfn

For each training size (a random subset of the train split, the same jets for every model and seed), model
family and seed: train with the demo's hyperparameters (config/config.yaml's training.defaults, the family's
model), export to ONNX and evaluate on the whole test split, as the workflow does, but without the residual
correction. Prints per size and family the thesis's headline numbers at |eta| < 2.5 (resolution gain; six-class
flavour spread change) with their bootstrap errors, the mean and spread over seeds, the gain's change over the last
step of sizes, and a straight-line fit of the gain against log10(size), evaluated at the thesis's 10 M training jets
with the fit's error: where the curve flattens, a straight line in log10(size) overshoots, so read it as a bound.
The seeds vary the networks' initialisation and batch order; the subsets are fixed (seed 0).

The default sizes and seeds: 8 k and 16 k jets with one seed, the two largest (32 k, 64 k: the demo's whole
train split) with three. Larger sizes need a larger demo sample: docs/results.md's curve to 512 k jets came from a
directory of its own whose config/config.yaml is the demo's with samples.demo.synthetic.files 32 (the same seed,
so its first four files are the demo's) and without the tt-bar sample,

    snakemake --snakefile <repository>/workflow/Snakefile --directory big --cores 2 -- results/clouds/train.parquet
    python benchmarks/learning_curve.py --clouds big/results/clouds --sizes 16000 32000 64000 128000 256000 512000

(516,661 training jets; the 32 files in 34 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import demo_inputs
import numpy as np
from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

REGION = "0<|eta|<2.5"
THESIS_TRAINING_JETS = 10_000_000


def subset(train: str, n: int, path: Path) -> int:
    """The first ``n`` jets of a fixed random order of ``train`` (seed 0), written as a clouds file; how many."""
    import pyarrow.parquet as pq

    table = pq.read_table(train)
    rows = np.sort(np.random.default_rng(0).permutation(table.num_rows)[:n])
    pq.write_table(table.take(rows), path)
    return len(rows)


def run_point(clouds: Path, train: Path, family: str, seed: int, config: dict, workdir: Path, threads: int) -> dict:
    """Train one point, export it, evaluate it on the test split: the thesis's numbers at |eta| < 2.5."""
    from gnnjec import evaluate, export, training

    hparams = {**config["training"]["defaults"], "model": family, "seed": seed}
    out = workdir / f"{family}-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    training.train(str(train), str(clouds / "val.parquet"), str(out / "model.pt"), str(out / "history.json"),
                   hparams, config["features"], threads=threads)
    seconds = time.perf_counter() - start
    export.export_onnx(str(out / "model.pt"), str(out / "model.onnx"))
    evaluate.run_inference({family: str(out / "model.onnx")}, str(clouds / "test.parquet"),
                           str(out / "predictions.parquet"), threads)
    evaluate.compute_metrics(str(out / "predictions.parquet"), str(out / "metrics.json"), config["evaluation"])
    summary = json.loads((out / "metrics.json").read_text())["summary"][REGION][family]
    return {"seconds": seconds, **{k: summary.get(k) for k in (
        "thesis_resolution_gain", "thesis_resolution_gain_err", "thesis_flavour_spread_change",
        "thesis_flavour_spread_change_err")}}


def fit_at(sizes, gains, errors, target: float) -> tuple[float, float, float]:
    """Weighted straight line gain = a + b log10(size); its value at ``target`` with the fit's error, and b."""
    x, y = np.log10(np.asarray(sizes, float)), np.asarray(gains, float)
    w = 1.0 / np.maximum(np.asarray(errors, float), 1e-4) ** 2
    design = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    a, b = cov @ (design.T @ (w * y))
    at = np.array([1.0, np.log10(target)])
    return float(at @ [a, b]), float(np.sqrt(at @ cov @ at)), float(b)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clouds", type=Path, default=REPO / "results" / "clouds", help="train/val/test.parquet here")
    p.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    p.add_argument("--sizes", type=int, nargs="+", default=[8000, 16000, 32000, 64000])
    p.add_argument("--models", nargs="+", default=["pfn", "dnn"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="at the two largest sizes (else the first)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write every run's numbers here")
    a = p.parse_args()
    config = demo_inputs.load(a.config, a.clouds, "learning_curve.py")
    sizes = sorted(set(a.sizes))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            train = Path(tmp) / f"train-{size}.parquet"
            jets = subset(str(a.clouds / "train.parquet"), size, train)
            seeds = a.seeds if size in sizes[-2:] else a.seeds[:1]
            for family in a.models:
                for seed in seeds:
                    result = run_point(a.clouds, train, family, seed, config, Path(tmp) / str(size), a.threads)
                    runs.append({"size": jets, "model": family, "seed": seed, **result})
                    print(f"  {family} {jets} jets seed {seed}: {100 * result['thesis_resolution_gain']:+.1f} % in "
                          f"{result['seconds']:.0f} s", file=sys.stderr)
    print(describe(("torch",)))
    print(f"Learning curve, |eta| < 2.5, the thesis's definitions (test split: {a.clouds / 'test.parquet'}); errors: "
          "one run's bootstrap; ± after a mean: the spread of the seeds")
    print(f"{'model':<8}{'train jets':>11}{'seeds':>7}{'resolution gain %':>28}{'flavour spread change %':>30}"
          f"{'train s':>9}")
    for family in a.models:
        points = []
        for size in sorted({r["size"] for r in runs}):
            rs = [r for r in runs if r["model"] == family and r["size"] == size]
            g = np.array([r["thesis_resolution_gain"] for r in rs]) * 100
            s = np.array([r["thesis_flavour_spread_change"] for r in rs]) * 100
            g_err = np.mean([r["thesis_resolution_gain_err"] for r in rs]) * 100
            spread = np.std(g, ddof=1) if len(g) > 1 else g_err
            points.append((size, g.mean(), max(spread / np.sqrt(len(g)), g_err / np.sqrt(len(g)))))
            gain = f"{g.mean():+.1f} ± {np.std(g, ddof=1):.1f}" if len(g) > 1 else f"{g[0]:+.1f} ± {g_err:.1f}"
            change = (f"{s.mean():+.0f} ± {np.std(s, ddof=1):.0f}" if len(s) > 1 else
                      f"{s[0]:+.0f} ± {100 * rs[0]['thesis_flavour_spread_change_err']:.0f}")
            print(f"{family:<8}{size:>11}{len(rs):>7}{gain:>28}{change:>30}{np.mean([r['seconds'] for r in rs]):>9.0f}")
        if len(points) >= 2:
            (n0, g0, e0), (n1, g1, e1) = points[-2:]
            print(f"{family:<8} from {n0} to {n1} jets: {g1 - g0:+.1f} ± {np.hypot(e0, e1):.1f} % "
                  "(errors of the means)")
            at, err, slope = fit_at(*zip(*points), THESIS_TRAINING_JETS)
            decades = np.log10(THESIS_TRAINING_JETS / max(point[0] for point in points))
            print(f"{family:<8} fit: gain = a + b log10(jets), b = {slope:+.1f} % per decade; at "
                  f"{THESIS_TRAINING_JETS:,} jets {at:+.1f} ± {err:.1f} % (an extrapolation over "
                  f"{decades:.1f} decades: a trend, not a prediction)")
    if a.json:
        a.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
