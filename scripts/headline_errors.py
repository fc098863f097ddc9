#!/usr/bin/env python3
"""The headline with statistical errors: bootstrap the test jets of one or more evaluations.

    python scripts/headline_errors.py results/evaluation/predictions.parquet [more.parquet ...]
        [--labels seed1 seed2 ...] [--resamples 100] [--eta-bins 0 2.5 2.5 5]

For each predictions file (``gnnjec evaluate`` writes one) it recomputes the summary of
``gnnjec.metrics.summarize`` on ``--resamples`` bootstrap resamples of the test jets and prints, per
|eta| region, the resolution gain and the flavour-spread change with their standard deviations.
With several files (training seeds, ablations) it also prints their mean and spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gnnjec import metrics  # noqa: E402


def load(path: str):
    import awkward as ak

    p = ak.from_parquet(path)
    pt_gen = np.asarray(p.pt_gen, np.float64)
    ok = np.isfinite(pt_gen) & (pt_gen > 0)
    return {
        "pt_gen": pt_gen[ok],
        "abs_eta": np.abs(np.asarray(p.eta_gen, np.float64))[ok],
        "flavour": np.asarray(p.flavour)[ok],
        "standard": np.asarray(p.pt_std, np.float64)[ok] / pt_gen[ok],
        "network": np.asarray(p.pt_corr, np.float64)[ok] / pt_gen[ok],
    }


def headline(d: dict, rows: np.ndarray, edges, eta_bins, min_pt: float) -> dict:
    responses = {"standard": d["standard"][rows], "network": d["network"][rows]}
    m = metrics.binned_metrics(responses, d["pt_gen"][rows], d["abs_eta"][rows], d["flavour"][rows], edges, eta_bins,
                               n_bootstrap=0)
    s = metrics.summarize(responses, m, d["pt_gen"][rows], d["abs_eta"][rows], d["flavour"][rows], min_pt=min_pt)
    return {k: (v["network"]["resolution_gain_mean"], v["network"]["flavour_spread_change"]) for k, v in s.items()}


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("predictions", nargs="+")
    a.add_argument("--labels", nargs="*")
    a.add_argument("--resamples", type=int, default=100)
    a.add_argument("--eta-bins", type=float, nargs="*", default=[0, 2.5, 2.5, 5])
    a.add_argument("--pt-range", type=float, nargs=2, default=[20, 3000])
    a.add_argument("--pt-bins", type=int, default=19, help="the demo config's evaluation.n_pt_bins")
    a.add_argument("--min-pt", type=float, default=30.0)
    a.add_argument("--seed", type=int, default=0)
    args = a.parse_args()
    labels = args.labels or [Path(p).parent.parent.name or p for p in args.predictions]
    eta_bins = [args.eta_bins[i : i + 2] for i in range(0, len(args.eta_bins), 2)]
    edges = np.geomspace(*args.pt_range, args.pt_bins + 1)
    rng = np.random.default_rng(args.seed)
    central = {}
    print(f"{'predictions':<24}{'region':<16}{'res. gain':>20}{'flav. spread change':>24}")
    for label, path in zip(labels, args.predictions):
        d = load(path)
        n = len(d["pt_gen"])
        nominal = headline(d, np.arange(n), edges, eta_bins, args.min_pt)
        samples = [headline(d, rng.integers(0, n, n), edges, eta_bins, args.min_pt) for _ in range(args.resamples)]
        for region, (gain, change) in nominal.items():
            gains = np.array([s[region][0] for s in samples], dtype=float)
            changes = np.array([np.nan if s[region][1] is None else s[region][1] for s in samples], dtype=float)
            central.setdefault(region, []).append((gain, change))
            print(f"{label:<24}{region:<16}{100 * gain:>+12.1f} ± {100 * np.std(gains):4.1f} %"
                  f"{100 * (change if change is not None else np.nan):>+15.0f} ± {100 * np.nanstd(changes):3.0f} %")
    if len(args.predictions) > 1:
        for region, values in central.items():
            v = np.array([(g, np.nan if c is None else c) for g, c in values], dtype=float)
            print(f"{'mean, spread of files':<24}{region:<16}{100 * v[:, 0].mean():>+12.1f} ± {100 * v[:, 0].std(ddof=1):4.1f} %"
                  f"{100 * np.nanmean(v[:, 1]):>+15.0f} ± {100 * np.nanstd(v[:, 1], ddof=1):3.0f} %")


if __name__ == "__main__":
    main()
