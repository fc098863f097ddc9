#!/usr/bin/env python3
"""The headline over several runs (training seeds, ablations): each run's numbers with their bootstrap
errors, and the mean and spread of the runs.

    python scripts/headline_errors.py results/evaluation/metrics.json other/results/evaluation/metrics.json
        [--labels seed1 seed2 ...] [--region '0<|eta|<2.5' ...] [--thesis] [--difference pfn dnn]

``--thesis``: the thesis's definitions (the summary's ``thesis_*`` numbers: the mean of the per-bin resolution
ratios over every gen-pt bin, the spread of six flavour classes) instead of ours.

``--difference A B``: also model A's numbers minus model B's, run by run, and their mean and spread over the
runs (e.g. what the graph network gains over the jet-level DNN). The runs share their test jets, so the spread
of the runs is the training's scatter; the test sample's own error is each run's bootstrap error.

Each metrics.json (``gnnjec evaluate`` writes one) holds the summary per |eta| range with errors from
bootstrap resamples of its test jets (evaluation.n_bootstrap); this table puts the runs side by side, so
that the statistical error of one run can be compared with the scatter between runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

STANDARD = "standard"


def fmt(value, err, scale=100.0, digits=1) -> str:
    if value is None:
        return "n/a"
    return f"{scale * value:+.{digits}f}" + ("" if err is None else f" ± {scale * err:.{digits}f}") + " %"


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("metrics", nargs="+", help="metrics.json files")
    a.add_argument("--labels", nargs="*")
    a.add_argument("--region", nargs="*", help="summary regions to show (default: all)")
    a.add_argument("--thesis", action="store_true", help="the thesis's definitions (metrics.json's thesis_* numbers)")
    a.add_argument("--difference", nargs=2, metavar=("A", "B"), help="also model A minus model B, run by run")
    args = a.parse_args()
    gain_key, change_key = (("thesis_resolution_gain", "thesis_flavour_spread_change") if args.thesis else
                            ("resolution_gain_mean", "flavour_spread_change"))
    labels = args.labels or [str(Path(p).parent.parent.parent) for p in args.metrics]
    runs = {label: json.loads(Path(p).read_text())["summary"] for label, p in zip(labels, args.metrics)}
    regions = args.region or list(next(iter(runs.values())))
    print(f"{'run':<24}{'region':<16}{'model':<18}{'resolution gain':>22}{'flavour spread change':>26}")
    for region in regions:
        collected: dict[str, list] = {}
        for label, summary in runs.items():
            for model, r in summary[region].items():
                if model == STANDARD:
                    continue
                gain, change = r.get(gain_key), r.get(change_key)
                collected.setdefault(model, []).append((np.nan if gain is None else gain,
                                                        np.nan if change is None else change))
                print(f"{label:<24}{region:<16}{model:<18}{fmt(gain, r.get(f'{gain_key}_err')):>22}"
                      f"{fmt(change, r.get(f'{change_key}_err'), digits=0):>26}")
        if args.difference:
            a_model, b_model = args.difference
            if a_model in collected and b_model in collected:
                name = f"{a_model} - {b_model}"
                collected[name] = [tuple(np.subtract(x, y)) for x, y in zip(collected[a_model], collected[b_model])]
                for label, (gain, change) in zip(runs, collected[name]):
                    print(f"{label:<24}{region:<16}{name:<18}{fmt(gain, None):>22}{fmt(change, None, digits=0):>26}")
        if len(runs) > 1:
            for model, values in collected.items():
                v = np.array(values, dtype=float)
                print(f"{'mean, spread of runs':<24}{region:<16}{model:<18}"
                      f"{fmt(np.nanmean(v[:, 0]), np.nanstd(v[:, 0], ddof=1)):>22}"
                      f"{fmt(np.nanmean(v[:, 1]), np.nanstd(v[:, 1], ddof=1), digits=0):>26}")


if __name__ == "__main__":
    main()
