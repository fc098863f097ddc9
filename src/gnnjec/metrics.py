"""Physics metrics of a jet energy correction, as defined in the thesis.

* response = pt_corr / pt_gen
* median response and resolution = IQR / median, in bins of gen pt and |eta_gen|
* flavour spread = sum over flavours f of |median_f - mean of the flavour medians|
* statistical errors from bootstrap resamples of each bin
"""

from __future__ import annotations

import numpy as np

from .features import FLAVOURS

MIN_JETS = 20  # a bin with fewer jets gets no numbers (null in the metrics file)


def quantiles(x: np.ndarray) -> tuple[float, float, float]:
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    return float(q25), float(q50), float(q75)


def resolution(x: np.ndarray) -> float:
    q25, q50, q75 = quantiles(x)
    return (q75 - q25) / q50


def flavour_spread(medians) -> float:
    """Sum over flavours of |median_f - mean of medians| (NaN if any flavour is missing)."""
    m = np.asarray(medians, dtype=float)
    return float(np.sum(np.abs(m - m.mean())))


def _bootstrap(x: np.ndarray, stat, n: int, rng) -> float | None:
    """Standard deviation of ``stat`` over ``n`` bootstrap resamples of ``x`` (None without any)."""
    if n <= 1:
        return None
    idx = rng.integers(0, len(x), size=(n, len(x)))
    return float(np.std([stat(x[i]) for i in idx], ddof=1))


def _spread_error(groups: list[np.ndarray], n: int, rng) -> float | None:
    """Bootstrap error of the flavour spread: each flavour's jets resampled, the spread recomputed."""
    if n <= 1:
        return None
    spreads = []
    for _ in range(n):
        spreads.append(flavour_spread([np.median(g[rng.integers(0, len(g), len(g))]) for g in groups]))
    return float(np.std(spreads, ddof=1))


def strict(value):
    """``value`` with every NaN or infinity replaced by None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def bin_summary(response: np.ndarray, n_bootstrap: int, rng) -> dict | None:
    if len(response) < MIN_JETS:
        return None
    q25, q50, q75 = quantiles(response)
    return {
        "n": int(len(response)),
        "median": q50,
        "resolution": (q75 - q25) / q50,
        "median_err": _bootstrap(response, np.median, n_bootstrap, rng),
        "resolution_err": _bootstrap(response, resolution, n_bootstrap, rng),
    }


def binned_metrics(responses: dict[str, np.ndarray], pt_gen, abs_eta_gen, flavour, pt_edges, eta_bins,
                   n_bootstrap: int = 30, seed: int = 0) -> dict:
    """Median, resolution and flavour spread per (|eta| range, gen-pt bin) for each method."""
    rng = np.random.default_rng(seed)
    out = {"pt_edges": [float(e) for e in pt_edges], "eta_bins": [list(map(float, b)) for b in eta_bins], "methods": {}}
    for method, response in responses.items():
        regions = []
        for lo_eta, hi_eta in eta_bins:
            in_eta = (abs_eta_gen >= lo_eta) & (abs_eta_gen < hi_eta)
            bins = []
            for lo, hi in zip(pt_edges[:-1], pt_edges[1:]):
                sel = in_eta & (pt_gen >= lo) & (pt_gen < hi)
                entry = {"pt_low": float(lo), "pt_high": float(hi), "all": bin_summary(response[sel], n_bootstrap, rng)}
                for code, name in enumerate(FLAVOURS):
                    entry[name] = bin_summary(response[sel & (flavour == code)], n_bootstrap, rng)
                if all(entry[f] for f in FLAVOURS):
                    entry["flavour_spread"] = flavour_spread([entry[f]["median"] for f in FLAVOURS])
                    groups = [response[sel & (flavour == code)] for code in range(len(FLAVOURS))]
                    entry["flavour_spread_err"] = _spread_error(groups, n_bootstrap, rng)
                else:
                    entry["flavour_spread"] = entry["flavour_spread_err"] = None
                bins.append(entry)
            regions.append({"abs_eta": [float(lo_eta), float(hi_eta)], "bins": bins})
        out["methods"][method] = regions
    return out


def summarize(responses: dict[str, np.ndarray], metrics: dict, pt_gen, abs_eta_gen, flavour,
              reference: str = "standard", min_pt: float = 30.0) -> dict:
    """Headline numbers per |eta| range: each method's resolution and flavour spread against the reference.

    * resolution: mean over gen-pt bins above ``min_pt`` of 1 - res / res_reference, and how many bins improve
    * flavour spread: from the flavour medians of all jets with pt_gen > ``min_pt`` in the range
    """
    summary = {}
    for i, (lo_eta, hi_eta) in enumerate(metrics["eta_bins"]):
        key = f"{lo_eta:g}<|eta|<{hi_eta:g}"
        region = {}
        in_region = (abs_eta_gen >= lo_eta) & (abs_eta_gen < hi_eta) & (pt_gen > min_pt)
        ref_bins = metrics["methods"][reference][i]["bins"]
        for method, response in responses.items():
            bins = metrics["methods"][method][i]["bins"]
            gains = [1 - b["all"]["resolution"] / r["all"]["resolution"] for b, r in zip(bins, ref_bins)
                     if b["pt_low"] >= min_pt and b["all"] and r["all"]]
            medians = {f: float(np.median(response[in_region & (flavour == c)])) if np.any(in_region & (flavour == c)) else None
                       for c, f in enumerate(FLAVOURS)}
            spread = None if None in medians.values() else flavour_spread(list(medians.values()))
            region[method] = {
                "n_jets": int(in_region.sum()),
                "median_response": float(np.median(response[in_region])) if in_region.any() else None,
                "resolution": resolution(response[in_region]) if in_region.sum() >= MIN_JETS else None,
                "flavour_medians": medians,
                "flavour_spread": spread,
                "resolution_gain_mean": float(np.mean(gains)) if gains else None,
                "bins_better": int(np.sum(np.asarray(gains) > 0)),
                "bins_compared": len(gains),
            }
        ref_spread = region[reference]["flavour_spread"]
        for method in responses:
            s = region[method]["flavour_spread"]
            region[method]["flavour_spread_change"] = None if (s is None or not ref_spread) else s / ref_spread - 1
        summary[key] = region
    return summary


TABLE_COLUMNS = (
    "method", "abs_eta_low", "abs_eta_high", "pt_low", "pt_high", "n", "median", "median_err", "resolution",
    "resolution_err", *(f"{k}_{f}" for f in FLAVOURS for k in ("n", "median", "median_err")),
    "flavour_spread", "flavour_spread_err",
)


def table_rows(metrics: dict) -> list[dict]:
    """One row per (method, |eta| range, gen-pt bin) of the binned metrics; empty cells for sparse bins."""
    rows = []
    for method, regions in metrics["methods"].items():
        for region in regions:
            for b in region["bins"]:
                row = {"method": method, "abs_eta_low": region["abs_eta"][0], "abs_eta_high": region["abs_eta"][1],
                       "pt_low": b["pt_low"], "pt_high": b["pt_high"]}
                for key in ("n", "median", "median_err", "resolution", "resolution_err"):
                    row[key] = (b["all"] or {}).get(key)
                for f in FLAVOURS:
                    for key in ("n", "median", "median_err"):
                        row[f"{key}_{f}"] = (b[f] or {}).get(key)
                row["flavour_spread"] = b["flavour_spread"]
                row["flavour_spread_err"] = b.get("flavour_spread_err")
                rows.append(row)
    return rows


def format_summary(summary: dict, reference: str = "standard") -> str:
    """A plain-text table of the headline numbers, for the log and the terminal."""
    lines = [f"{'region':<16}{'method':<10}{'jets':>9}{'median':>9}{'resol.':>9}{'res. gain':>11}"
             f"{'bins better':>13}{'flav. spread':>14}{'change':>9}"]
    for key, region in summary.items():
        for method, r in region.items():
            gain = "" if method == reference or r["resolution_gain_mean"] is None else f"{100 * r['resolution_gain_mean']:+.1f}%"
            better = "" if method == reference else f"{r['bins_better']}/{r['bins_compared']}"
            change = "" if method == reference or r["flavour_spread_change"] is None else f"{100 * r['flavour_spread_change']:+.0f}%"
            fmt = lambda v, p=4: "n/a" if v is None else f"{v:.{p}f}"  # noqa: E731
            lines.append(f"{key:<16}{method:<10}{r['n_jets']:>9}{fmt(r['median_response']):>9}{fmt(r['resolution']):>9}"
                         f"{gain:>11}{better:>13}{fmt(r['flavour_spread']):>14}{change:>9}")
    return "\n".join(lines)
