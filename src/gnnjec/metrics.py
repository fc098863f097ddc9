"""Physics metrics of a jet energy correction, as defined in the thesis.

* response = pt_corr / pt_gen
* median response and resolution = IQR / median, in bins of gen pt and |eta_gen|
* flavour spread = sum over flavours f of |median_f - mean of the flavour medians|
* statistical errors from bootstrap resamples of each bin
"""

from __future__ import annotations

import numpy as np

from .features import FLAVOURS, THESIS_FLAVOURS
from .spec import STANDARD

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


def region_key(lo: float, hi: float) -> str:
    """The summary's name of an |eta| range, e.g. ``0<|eta|<1.3``."""
    return f"{lo:g}<|eta|<{hi:g}"


def _class_medians(r: np.ndarray, codes: np.ndarray, names) -> dict[str, float]:
    """The median response of each class (``names[code]``); NaN for a class without jets."""
    return {name: float(np.median(r[codes == c])) if np.any(codes == c) else np.nan for c, name in enumerate(names)}


def _headline(responses: dict[str, np.ndarray], bin_index: np.ndarray, bins: list[int], flavour: np.ndarray,
              reference: str) -> dict[str, dict]:
    """Each method's headline numbers on one set of jets (the region's, or a resample of them)."""
    def res(x):
        return resolution(x) if len(x) else np.nan

    stats = {}
    for method, r in responses.items():
        medians = _class_medians(r, flavour, FLAVOURS)
        stats[method] = {
            "median_response": float(np.median(r)) if len(r) else np.nan,
            "resolution": res(r) if len(r) >= MIN_JETS else np.nan,
            "bin_resolution": np.array([res(r[bin_index == b]) for b in bins]),
            "flavour_medians": medians,
            "flavour_spread": flavour_spread(list(medians.values())),
        }
    ref_bins = stats[reference]["bin_resolution"]
    ref = stats[reference]
    for s in stats.values():
        gains = 1 - s.pop("bin_resolution") / ref_bins
        s["resolution_gain_mean"] = float(np.mean(gains)) if len(gains) else np.nan
        s["bins_better"] = int(np.sum(gains > 0))
        s["bins_compared"] = len(gains)
        s["flavour_spread_change"] = (s["flavour_spread"] / ref["flavour_spread"] - 1
                                      if ref["flavour_spread"] > 0 else np.nan)
    return stats


ERROR_KEYS = ("median_response", "resolution", "resolution_gain_mean", "flavour_spread", "flavour_spread_change")
"""The headline numbers that get a bootstrap error (``<key>_err``)."""


def _thesis_headline(responses: dict[str, np.ndarray], bin_index: np.ndarray, n_bins: int, above: np.ndarray,
                     flavour6: np.ndarray, reference: str) -> dict[str, dict]:
    """The thesis's two headline numbers (its plotting code's definitions) on one set of jets: the resolution
    gain 1 - mean over the gen-pt bins of res / res_reference (bins with fewer than MIN_JETS jets left out, as
    NaN), and the spread of the medians of six classes u, d, s, c, b, g, each pooled over the jets ``above``."""
    counts = np.bincount(bin_index[(bin_index >= 0) & (bin_index < n_bins)], minlength=n_bins)
    stats = {}
    for method, r in responses.items():
        medians = _class_medians(r[above], flavour6[above], THESIS_FLAVOURS)
        stats[method] = {
            "bin_resolution": np.array([resolution(r[bin_index == b]) if counts[b] >= MIN_JETS else np.nan
                                        for b in range(n_bins)]),
            "thesis_flavour_medians": medians,
            "thesis_flavour_spread": flavour_spread(list(medians.values())),
        }
    ref = stats[reference]
    ref_bins = ref["bin_resolution"]
    for s in stats.values():
        with np.errstate(invalid="ignore", divide="ignore"):  # bins without enough jets are NaN
            ratios = s.pop("bin_resolution") / ref_bins
        s["thesis_bins"] = int(np.sum(np.isfinite(ratios)))
        s["thesis_resolution_gain"] = float(1 - np.nanmean(ratios)) if s["thesis_bins"] else np.nan
        s["thesis_flavour_spread_change"] = (s["thesis_flavour_spread"] / ref["thesis_flavour_spread"] - 1
                                             if ref["thesis_flavour_spread"] > 0 else np.nan)
    return stats


THESIS_ERROR_KEYS = ("thesis_resolution_gain", "thesis_flavour_spread", "thesis_flavour_spread_change")


def summarize(responses: dict[str, np.ndarray], pt_gen, abs_eta_gen, flavour, pt_edges, regions,
              reference: str = STANDARD, min_pt: float = 30.0, n_bootstrap: int = 0, seed: int = 0,
              thesis_flavour=None) -> dict:
    """Headline numbers per |eta| range: each method's resolution and flavour spread against the reference.

    * resolution gain: mean over the gen-pt bins above ``min_pt`` (with at least MIN_JETS jets) of
      1 - res / res_reference, and how many bins improve
    * flavour spread: from the four flavour medians (b, c, uds, g) of all jets with pt_gen > ``min_pt`` in the range
    * with ``thesis_flavour`` (:func:`gnnjec.features.thesis_flavour_class` per jet), also the thesis's own
      definitions (``thesis_*``, :func:`_thesis_headline`): the mean of the per-bin resolution ratios over every
      gen-pt bin of ``pt_edges``, and the spread of six classes pooled above ``min_pt``
    * errors (``<key>_err``): standard deviation over ``n_bootstrap`` resamples of the range's jets,
      the same resample for every method, so that a gain's error includes the methods' correlation (the thesis's
      numbers are resampled from all the range's jets, with a generator of their own)
    """
    rng = np.random.default_rng(seed)
    thesis_rng = np.random.default_rng([seed, 1])
    pt_edges = np.asarray(pt_edges, dtype=float)
    summary = {}
    for lo_eta, hi_eta in regions:
        key = region_key(lo_eta, hi_eta)
        if key in summary:
            continue
        rows = np.flatnonzero((abs_eta_gen >= lo_eta) & (abs_eta_gen < hi_eta) & (pt_gen > min_pt))
        rs = {m: np.asarray(r)[rows] for m, r in responses.items()}
        fl = np.asarray(flavour)[rows]
        bin_index = np.searchsorted(pt_edges, pt_gen[rows], side="right") - 1
        counts = np.bincount(bin_index[(bin_index >= 0) & (bin_index < len(pt_edges) - 1)], minlength=len(pt_edges) - 1)
        bins = [b for b in range(len(pt_edges) - 1) if pt_edges[b] >= min_pt and counts[b] >= MIN_JETS]
        region = _headline(rs, bin_index, bins, fl, reference)
        samples = []
        if n_bootstrap > 1 and len(rows):
            for _ in range(n_bootstrap):
                i = rng.integers(0, len(rows), len(rows))
                samples.append(_headline({m: r[i] for m, r in rs.items()}, bin_index[i], bins, fl[i], reference))
        for method, s in region.items():
            s["n_jets"] = int(len(rows))
            _bootstrap_errors(s, [x[method] for x in samples], ERROR_KEYS)
        if thesis_flavour is not None:
            _add_thesis(region, responses, pt_gen, abs_eta_gen, np.asarray(thesis_flavour), (lo_eta, hi_eta),
                        pt_edges, min_pt, reference, n_bootstrap, thesis_rng)
        summary[key] = region
    return strict(summary)


def _bootstrap_errors(stats: dict, samples: list[dict], keys) -> None:
    """``<key>_err`` for each of ``keys``: the standard deviation of its values over the bootstrap ``samples``."""
    for k in keys:
        values = np.array([x[k] for x in samples], dtype=float)
        ok = np.isfinite(values)
        stats[f"{k}_err"] = float(np.std(values[ok], ddof=1)) if ok.sum() > 1 and np.isfinite(stats[k]) else None


def _add_thesis(region: dict, responses, pt_gen, abs_eta_gen, flavour6, eta_range, pt_edges, min_pt, reference,
                n_bootstrap, rng) -> None:
    """The thesis's headline numbers of one |eta| range, with bootstrap errors, into each method's ``region`` entry."""
    rows = np.flatnonzero((abs_eta_gen >= eta_range[0]) & (abs_eta_gen < eta_range[1]))
    rs = {m: np.asarray(r)[rows] for m, r in responses.items()}
    pt, fl6 = pt_gen[rows], flavour6[rows]
    bin_index = np.searchsorted(pt_edges, pt, side="right") - 1
    n_bins = len(pt_edges) - 1
    nominal = _thesis_headline(rs, bin_index, n_bins, pt > min_pt, fl6, reference)
    samples = []
    if n_bootstrap > 1 and len(rows):
        for _ in range(n_bootstrap):
            i = rng.integers(0, len(rows), len(rows))
            samples.append(_thesis_headline({m: r[i] for m, r in rs.items()}, bin_index[i], n_bins, pt[i] > min_pt,
                                            fl6[i], reference))
    for method, s in nominal.items():
        _bootstrap_errors(s, [x[method] for x in samples], THESIS_ERROR_KEYS)
        region[method].update(s)


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


def format_summary(summary: dict, reference: str = STANDARD) -> str:
    """A plain-text table of the headline numbers with their errors, for the log and the terminal."""
    def pm(r, key, scale=1.0, digits=4, sign=""):
        value, err = r.get(key), r.get(f"{key}_err")
        if value is None:
            return "n/a"
        text = f"{scale * value:{sign}.{digits}f}"
        return text + (f" ± {scale * err:.{digits}f}" if err is not None else "")

    lines = [f"{'region':<16}{'method':<18}{'jets':>8}{'median':>18}{'resol.':>18}{'res. gain %':>16}"
             f"{'bins better':>13}{'flav. spread':>18}{'change %':>12}"]
    for key, region in summary.items():
        for method, r in region.items():
            ref = method == reference
            gain = "" if ref else pm(r, "resolution_gain_mean", 100, 1, "+")
            better = "" if ref else f"{r['bins_better']}/{r['bins_compared']}"
            change = "" if ref else pm(r, "flavour_spread_change", 100, 0, "+")
            lines.append(f"{key:<16}{method:<18}{r['n_jets']:>8}{pm(r, 'median_response'):>18}{pm(r, 'resolution'):>18}"
                         f"{gain:>16}{better:>13}{pm(r, 'flavour_spread'):>18}{change:>12}")
    if any("thesis_flavour_spread" in r for region in summary.values() for r in region.values()):
        lines += ["",
                  "The thesis's definitions: resolution gain = 1 - mean of the per-bin ratios res / res_standard over "
                  "every gen-pt bin;",
                  "flavour spread of six classes u, d, s, c, b, g, each pooled over the range's jets above the "
                  "summary's pt cut.",
                  f"{'region':<16}{'method':<18}{'res. gain %':>16}{'bins':>6}{'flav. spread (6)':>20}{'change %':>12}"]
        for key, region in summary.items():
            for method, r in region.items():
                ref = method == reference
                gain = "" if ref else pm(r, "thesis_resolution_gain", 100, 1, "+")
                bins = "" if ref else str(r["thesis_bins"])
                change = "" if ref else pm(r, "thesis_flavour_spread_change", 100, 0, "+")
                lines.append(f"{key:<16}{method:<18}{gain:>16}{bins:>6}{pm(r, 'thesis_flavour_spread'):>20}"
                             f"{change:>12}")
    return "\n".join(lines)
