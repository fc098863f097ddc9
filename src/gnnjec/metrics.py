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


IQR_PER_SIGMA = 1.349
"""A Gaussian's interquartile range in units of its sigma: IQR / 1.349 is the "sigma-equivalent" of a response."""

TAIL_SIGMAS = 3.0
"""The tail fraction counts jets whose response lies more than this many sigma-equivalents from the median (a
Gaussian leaves 0.27 % there)."""

GAUSSIAN_TAIL = 0.0027
"""A Gaussian's fraction beyond 3 sigma, for comparison."""


def _std(values) -> float | None:
    """Standard deviation (ddof 1) of the finite ``values``; None with fewer than two."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if len(v) > 1 else None


def _stats(x: np.ndarray) -> dict:
    """Median, resolution (IQR / median) and tail fraction of one set of responses."""
    q25, q50, q75 = quantiles(x)
    width = TAIL_SIGMAS * (q75 - q25) / IQR_PER_SIGMA
    return {"n": int(len(x)), "median": q50, "resolution": (q75 - q25) / q50,
            "tail_fraction": float(np.mean(np.abs(x - q50) > width))}


def _sorted_quantile(s: np.ndarray, k: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each row of ``s`` (sorted, NaN last, ``k`` values), interpolated as numpy's default."""
    last = np.maximum(k - 1, 0)
    pos = q * last
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, last)
    rows = np.arange(len(s))
    with np.errstate(invalid="ignore"):
        return s[rows, lo] + (s[rows, hi] - s[rows, lo]) * (pos - lo)


def _row_stats(r: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_stats` of each row of ``r`` (one bootstrap resample a row; NaN marks a jet outside the group)."""
    k = np.sum(~np.isnan(r), axis=1)
    s = np.sort(r, axis=1)
    q25, q50, q75 = (_sorted_quantile(s, k, q) for q in (0.25, 0.5, 0.75))
    with np.errstate(invalid="ignore", divide="ignore"):
        width = TAIL_SIGMAS * (q75 - q25) / IQR_PER_SIGMA
        outside = np.sum(np.abs(r - q50[:, None]) > width[:, None], axis=1)
        return {"median": np.where(k > 0, q50, np.nan), "resolution": (q75 - q25) / q50,
                "tail_fraction": outside / k}


STAT_KEYS = ("median", "resolution", "tail_fraction")
"""What :func:`group_stats` gives each method (with ``<key>_err``), besides the number of jets ``n``."""

_CHUNK = 4_000_000  # resampled responses held at once


def _resamples(n: int, n_bootstrap: int, rng):
    """The bootstrap resamples of ``n`` jets, as index arrays of a few resamples each (their rows)."""
    per_chunk = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_bootstrap, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, n_bootstrap - start), n))


def group_stats(responses: dict[str, np.ndarray], n_bootstrap: int, rng, reference: str = STANDARD,
                classes: np.ndarray | None = None) -> dict[str, dict]:
    """Each method's numbers on one group of jets (``responses``: method -> the responses of the same jets).

    Per method, under ``"all"`` (and, with ``classes``, a :data:`FLAVOURS` code per jet, under each flavour's
    name): ``n``, ``median``, ``resolution`` (IQR / median), ``tail_fraction`` (the fraction of jets beyond
    TAIL_SIGMAS sigma-equivalents IQR / 1.349 of the median) and, for a method other than ``reference``,
    ``resolution_ratio`` (its resolution over the reference's); None for fewer than MIN_JETS jets. With
    ``classes`` also ``flavour_spread`` of the four flavour medians.

    Errors (``<key>_err``): the standard deviation over ``n_bootstrap`` resamples of the group's jets, the same
    resamples for every method, so that the ratio's error is the scatter of the ratio itself (the two corrections
    share their jets), not the two errors in quadrature; None without resamples.
    """
    n = len(next(iter(responses.values()))) if responses else 0
    subsets = {"all": np.ones(n, bool)}
    if classes is not None:
        subsets.update({f: np.asarray(classes) == code for code, f in enumerate(FLAVOURS)})
    out = {m: {name: (_stats(r[mask]) if mask.sum() >= MIN_JETS else None) for name, mask in subsets.items()}
           for m, r in responses.items()}
    boots = {m: {name: {k: [] for k in STAT_KEYS} for name in subsets} for m in responses}
    if n_bootstrap > 1 and n >= MIN_JETS:
        for idx in _resamples(n, n_bootstrap, rng):
            masks = {name: mask[idx] for name, mask in subsets.items()}
            for m, r in responses.items():
                resampled = r[idx]
                for name, mask in masks.items():
                    if out[m][name] is not None:
                        for k, v in _row_stats(np.where(mask, resampled, np.nan)).items():
                            boots[m][name][k].append(v)
    boots = {m: {name: {k: np.concatenate(v) if v else np.array([]) for k, v in by_key.items()}
                 for name, by_key in by_name.items()} for m, by_name in boots.items()}
    for m, by_name in out.items():
        for name, s in by_name.items():
            if s is None:
                continue
            for k in STAT_KEYS:
                s[f"{k}_err"] = _std(boots[m][name][k])
            ref = out.get(reference, {}).get(name)
            if m != reference and ref is not None:
                s["resolution_ratio"] = s["resolution"] / ref["resolution"]
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratios = boots[m][name]["resolution"] / boots[reference][name]["resolution"]
                s["resolution_ratio_err"] = _std(ratios)
        if classes is not None:
            if all(by_name[f] for f in FLAVOURS):
                by_name["flavour_spread"] = flavour_spread([by_name[f]["median"] for f in FLAVOURS])
                medians = np.array([boots[m][f]["median"] for f in FLAVOURS])
                by_name["flavour_spread_err"] = (_std(np.sum(np.abs(medians - medians.mean(axis=0)), axis=0))
                                                 if medians.size else None)
            else:
                by_name["flavour_spread"] = by_name["flavour_spread_err"] = None
    return out if classes is not None else {m: by_name["all"] for m, by_name in out.items()}


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


def binned_metrics(responses: dict[str, np.ndarray], pt_gen, abs_eta_gen, flavour, pt_edges, eta_bins, *,
                   n_bootstrap: int, seed: int = 0, reference: str = STANDARD) -> dict:
    """Per (|eta| range, gen-pt bin) and method, :func:`group_stats` of all jets and of each flavour, and the flavour
    spread: the same bootstrap resamples of a bin for every method (each bin its own)."""
    rng = np.random.default_rng(seed)
    pt_edges = np.asarray(pt_edges, dtype=float)
    out = {"pt_edges": [float(e) for e in pt_edges], "eta_bins": [list(map(float, b)) for b in eta_bins],
           "methods": {m: [] for m in responses}}
    for lo_eta, hi_eta in eta_bins:
        in_eta = (abs_eta_gen >= lo_eta) & (abs_eta_gen < hi_eta)
        bins = {m: [] for m in responses}
        for lo, hi in zip(pt_edges[:-1], pt_edges[1:]):
            rows = np.flatnonzero(in_eta & (pt_gen >= lo) & (pt_gen < hi))
            stats = group_stats({m: r[rows] for m, r in responses.items()}, n_bootstrap, rng, reference,
                                classes=np.asarray(flavour)[rows])
            for m in responses:
                bins[m].append({"pt_low": float(lo), "pt_high": float(hi), **stats[m]})
        for m in responses:
            out["methods"][m].append({"abs_eta": [float(lo_eta), float(hi_eta)], "bins": bins[m]})
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
    stats = {}
    for method, r in responses.items():
        medians = _class_medians(r, flavour, FLAVOURS)
        per_bin = [_stats(r[bin_index == b]) if np.any(bin_index == b) else None for b in bins]
        in_bins = sum(x["n"] for x in per_bin if x)
        stats[method] = {
            "median_response": float(np.median(r)) if len(r) else np.nan,
            "resolution": resolution(r) if len(r) >= MIN_JETS else np.nan,
            "bin_resolution": np.array([x["resolution"] if x else np.nan for x in per_bin]),
            "tail_fraction": (sum(x["n"] * x["tail_fraction"] for x in per_bin if x) / in_bins if in_bins
                              else np.nan),
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


ERROR_KEYS = ("median_response", "resolution", "resolution_gain_mean", "tail_fraction", "flavour_spread",
              "flavour_spread_change")
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


def summarize(responses: dict[str, np.ndarray], pt_gen, abs_eta_gen, flavour, pt_edges, regions, *, min_pt: float,
              reference: str = STANDARD, n_bootstrap: int = 0, seed: int = 0, thesis_flavour=None) -> dict:
    """Headline numbers per |eta| range: each method's resolution and flavour spread against the reference.

    * resolution gain: mean over the gen-pt bins above ``min_pt`` (with at least MIN_JETS jets) of
      1 - res / res_reference, and how many bins improve
    * flavour spread: from the four flavour medians (b, c, uds, g) of all jets with pt_gen > ``min_pt`` in the range
    * tail fraction: the fraction of the jets in those gen-pt bins whose response lies more than TAIL_SIGMAS
      sigma-equivalents (IQR / 1.349) from the median of their bin
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


VIEW_MAX_PT = 100.0
"""The views of :func:`views` (pileup, flavour) take the jets from the summary's pt cut up to this gen pt (GeV):
where pileup and flavour matter most and every flavour has jets."""

VIEW_REGIONS = ((0.0, 1.3), (1.3, 2.5))
"""The |eta_gen| regions of :func:`views`: the barrel and the endcap within the tracker (beyond it the demo has
too few b and c jets for a flavour view)."""

PILEUP_QUANTILES = 3
"""The pileup views bin the jets in this many quantiles (terciles) of rho and of the number of vertices."""

ETA_EDGES = (0.0, 0.5, 1.0, 1.3, 1.7, 2.0, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0)
"""|eta_gen| bins of the response and resolution versus |eta|."""

CLOSURE_TOLERANCE = 0.01
"""The closure the summary checks each bin against: |median response - 1| within 1 %, or within 1 % plus twice its
bootstrap error (a bin's statistical precision on the demo's test split is 0.3-0.8 %)."""

CLOSURE_REGION = (0.0, 1.3)
"""The |eta_gen| range of the summary's closure table: the barrel."""


def _quantile_edges(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` quantile bins of ``values`` (fewer where values repeat, as the number of vertices may)."""
    return np.unique(np.quantile(values, np.linspace(0, 1, n + 1))) if len(values) else np.array([])


def _in_bins(values: np.ndarray, edges: np.ndarray):
    """Each bin's (low, high, mask) of ``values``; the last bin includes its upper edge."""
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        upper = values <= hi if i == len(edges) - 2 else values < hi
        yield float(lo), float(hi), (values >= lo) & upper


def views(responses: dict[str, np.ndarray], truth: dict[str, np.ndarray], *, min_pt: float, n_bootstrap: int,
          seed: int = 0, reference: str = STANDARD, max_pt: float = VIEW_MAX_PT, regions=VIEW_REGIONS,
          n_quantiles: int = PILEUP_QUANTILES, eta_edges=ETA_EDGES) -> dict:
    """What a calibrator looks at besides the gen-pt bins, each bin's numbers from :func:`group_stats` (median,
    resolution, tail fraction, the resolution's ratio to the reference, all with bootstrap errors):

    * ``pileup``: for ``rho`` and ``npv`` (where ``truth`` has them), jets with ``min_pt`` <= pt_gen < ``max_pt``
      in each of ``regions``, binned in ``n_quantiles`` quantiles of all those jets (the same edges in every
      region); each bin with the mean of the variable;
    * ``flavour``: the same jets, per region and flavour (b, c, uds, g);
    * ``eta``: all jets with pt_gen > ``min_pt``, in |eta_gen| bins ``eta_edges``.
    """
    rng = np.random.default_rng([seed, 2])
    pt, abs_eta, flavour = truth["pt_gen"], truth["abs_eta"], np.asarray(truth["flavour"])
    in_pt = (pt >= min_pt) & (pt < max_pt)
    in_region = [(abs_eta >= lo) & (abs_eta < hi) for lo, hi in regions]
    out = {"pt_range": [float(min_pt), float(max_pt)], "regions": [[float(lo), float(hi)] for lo, hi in regions],
           "pileup": {}, "flavour": []}

    def group(rows, **kwargs):
        return group_stats({m: r[rows] for m, r in responses.items()}, n_bootstrap, rng, reference, **kwargs)

    for variable in ("rho", "npv"):
        if variable not in truth:
            continue
        v = np.asarray(truth[variable], dtype=float)
        edges = _quantile_edges(v[in_pt & np.logical_or.reduce(in_region)], n_quantiles)
        entries = []
        for (lo_eta, hi_eta), sel in zip(regions, in_region):
            bins = []
            for lo, hi, in_bin in _in_bins(v, edges):
                rows = np.flatnonzero(in_pt & sel & in_bin)
                bins.append({"low": lo, "high": hi, "mean": float(np.mean(v[rows])) if len(rows) else None,
                             "n": int(len(rows)), "methods": group(rows)})
            entries.append({"abs_eta": [float(lo_eta), float(hi_eta)], "bins": bins})
        out["pileup"][variable] = {"edges": [float(e) for e in edges], "regions": entries}
    for (lo_eta, hi_eta), sel in zip(regions, in_region):
        rows = np.flatnonzero(in_pt & sel)
        per_flavour = {f: group(rows[flavour[rows] == code]) for code, f in enumerate(FLAVOURS)}
        out["flavour"].append({"abs_eta": [float(lo_eta), float(hi_eta)],
                               "n": {f: int(np.sum(flavour[rows] == code)) for code, f in enumerate(FLAVOURS)},
                               "flavours": per_flavour})
    above = pt > min_pt
    out["eta"] = {"min_pt": float(min_pt), "bins": [
        {"low": lo, "high": hi, "n": int(np.sum(above & in_bin)), "methods": group(np.flatnonzero(above & in_bin))}
        for lo, hi, in_bin in _in_bins(abs_eta, np.asarray(eta_edges, dtype=float))]}
    return out


def closure(responses: dict[str, np.ndarray], pt_gen, abs_eta_gen, pt_edges, eta_bins, *, min_pt: float,
            n_bootstrap: int, seed: int = 0, network: dict[str, np.ndarray] | None = None,
            region=CLOSURE_REGION) -> dict:
    """Closure, the median response with its bootstrap error, per |eta_gen| range of ``eta_bins`` in bins of gen pt
    (``gen``) and of each method's own corrected pt (``reco``, response * pt_gen), on the same ``pt_edges``: of each
    method (``methods``) and of each model's network alone before its residual correction (``network``, from
    ``pt_network_<model>``).

    ``summary``: in ``region`` (the barrel), over the bins from ``min_pt`` with at least MIN_JETS jets, the largest
    |median - 1| of each, in reco-pt and in gen-pt bins, with its bin and that median's error; how many of the
    bins lie beyond CLOSURE_TOLERANCE by more than twice their error (``bins_beyond`` of ``bins``); and those bins
    themselves (``medians``: each bin's edges, jets, median and its error).
    """
    rng = np.random.default_rng([seed, 3])
    pt_edges = np.asarray(pt_edges, dtype=float)
    pt_gen, abs_eta_gen = np.asarray(pt_gen), np.asarray(abs_eta_gen)
    out = {"pt_edges": [float(e) for e in pt_edges], "eta_bins": [list(map(float, b)) for b in eta_bins],
           "methods": {}, "network": {}, "summary": {"abs_eta": [float(x) for x in region], "min_pt": float(min_pt),
                                                     "methods": {}, "network": {}}}

    def binned(r, pt, in_eta):
        bins = []
        for lo, hi in zip(pt_edges[:-1], pt_edges[1:]):
            stats = group_stats({"r": r[in_eta & (pt >= lo) & (pt < hi)]}, n_bootstrap, rng, reference="r")["r"]
            stats = stats or {}
            bins.append({"pt_low": float(lo), "pt_high": float(hi), "n": int(np.sum(in_eta & (pt >= lo) & (pt < hi))),
                         "median": stats.get("median"), "median_err": stats.get("median_err")})
        return bins

    def worst(bins):
        kept = [b for b in bins if b["pt_low"] >= min_pt and b["median"] is not None]
        if not kept:
            return None
        b = max(kept, key=lambda x: abs(x["median"] - 1))
        beyond = [x for x in kept if _beyond(x["median"], x["median_err"])]
        return {"deviation": abs(b["median"] - 1), "median": b["median"], "median_err": b["median_err"],
                "pt_low": b["pt_low"], "pt_high": b["pt_high"], "bins": len(kept), "bins_beyond": len(beyond),
                "medians": kept}

    for kind, group in (("methods", responses), ("network", network or {})):
        for name, r in group.items():
            r = np.asarray(r, dtype=float)
            pts = {"gen": pt_gen, "reco": r * pt_gen}
            out[kind][name] = {axis: [binned(r, pt, (abs_eta_gen >= lo) & (abs_eta_gen < hi)) for lo, hi in eta_bins]
                               for axis, pt in pts.items()}
            in_region = (abs_eta_gen >= region[0]) & (abs_eta_gen < region[1])
            out["summary"][kind][name] = {axis: worst(binned(r, pt, in_region)) for axis, pt in pts.items()}
    return out


COVERAGE_TOLERANCE = 0.03
"""How far a quantile network's interval may cover from its nominal share of jets in a gen-pt bin (absolute)."""


def coverage(pt_gen, abs_eta_gen, pt_corr, quantile_pt: dict[float, np.ndarray], pt_edges, eta_bins, *,
             min_pt: float, region=CLOSURE_REGION) -> dict:
    """How well a network's quantiles are calibrated: the share of jets whose pt_gen lies below each predicted
    quantile (``below``, nominal: the quantile's level), and between the lowest and the highest (``coverage``,
    nominal: their difference), with binomial errors, per |eta_gen| range of ``eta_bins`` in bins of gen pt (``gen``)
    and of the network's corrected pt (``reco``). ``quantile_pt``: level -> the pt at that quantile of each jet
    (pt_raw * exp(quantile of log(pt_gen / pt_raw))).

    A network's quantiles are conditional on the jet as reconstructed, so they hold by construction in reco-pt bins;
    in gen-pt bins the falling spectrum pulls jets up, as it does the median response (the residual correction
    shifts the quantiles with the median). ``summary``: in ``region``, over the bins from ``min_pt`` with at least
    MIN_JETS jets, the worst |coverage - nominal| per axis and how many bins lie beyond COVERAGE_TOLERANCE by more
    than twice their error (``bins_beyond``; as closure counts its bins beyond 1 %)."""
    levels = sorted(quantile_pt)
    lo_level, hi_level = levels[0], levels[-1]
    nominal = hi_level - lo_level
    pt_gen, abs_eta_gen = np.asarray(pt_gen, float), np.asarray(abs_eta_gen, float)
    below = {q: pt_gen < np.asarray(quantile_pt[q], float) for q in levels}
    inside = below[hi_level] & ~below[lo_level]
    pts = {"gen": pt_gen, "reco": np.asarray(pt_corr, float)}

    def share(mask, n):
        p = float(np.sum(mask)) / n
        return p, float(np.sqrt(p * (1 - p) / n))

    def binned(pt, in_eta):
        bins = []
        for lo, hi in zip(pt_edges[:-1], pt_edges[1:]):
            sel = in_eta & (pt >= lo) & (pt < hi)
            n = int(np.sum(sel))
            b = {"pt_low": float(lo), "pt_high": float(hi), "n": n, "coverage": None, "coverage_err": None,
                 "below": None}
            if n >= MIN_JETS:
                b["coverage"], b["coverage_err"] = share(inside[sel], n)
                b["below"] = [share(below[q][sel], n)[0] for q in levels]
            bins.append(b)
        return bins

    def worst(bins):
        kept = [b for b in bins if b["pt_low"] >= min_pt and b["coverage"] is not None]
        if not kept:
            return None
        b = max(kept, key=lambda x: abs(x["coverage"] - nominal))
        return {"deviation": b["coverage"] - nominal, "coverage": b["coverage"], "coverage_err": b["coverage_err"],
                "pt_low": b["pt_low"], "pt_high": b["pt_high"], "bins": len(kept),
                "bins_beyond": sum(abs(x["coverage"] - nominal) - COVERAGE_TOLERANCE > 2 * x["coverage_err"]
                                   for x in kept)}

    in_region = (abs_eta_gen >= region[0]) & (abs_eta_gen < region[1])
    pooled = in_region & (pt_gen >= min_pt)
    n = int(np.sum(pooled))
    return {
        "levels": levels, "nominal": nominal, "tolerance": COVERAGE_TOLERANCE,
        **{axis: [binned(pt, (abs_eta_gen >= lo) & (abs_eta_gen < hi)) for lo, hi in eta_bins]
           for axis, pt in pts.items()},
        "summary": {"abs_eta": [float(x) for x in region], "min_pt": float(min_pt), "n": n,
                    "coverage": share(inside[pooled], n)[0] if n else None,
                    "coverage_err": share(inside[pooled], n)[1] if n else None,
                    "below": [share(below[q][pooled], n)[0] for q in levels] if n else None,
                    **{axis: worst(binned(pt, in_region)) for axis, pt in pts.items()}},
    }


def format_coverage(coverages: dict) -> str:
    """The summary's lines on each quantile network's interval coverage."""
    lines = []
    for model, c in coverages.items():
        s = c["summary"]
        if s["coverage"] is None:
            continue
        levels = "/".join(f"{100 * q:g}" for q in c["levels"])
        lo, hi = s["abs_eta"]
        line = (f"{model}: quantiles {levels} %: {100 * s['coverage']:.1f} +- {100 * s['coverage_err']:.1f} % of the "
                f"jets with {lo:g} <= |eta_gen| < {hi:g} and pt_gen > {s['min_pt']:g} GeV inside the interval (nominal "
                f"{100 * c['nominal']:.0f} %)")
        for axis in ("gen", "reco"):
            w = s[axis]
            if w:
                line += (f"; in {axis}-pt bins at worst {100 * w['coverage']:.1f} +- {100 * w['coverage_err']:.1f} % "
                         f"({w['pt_low']:.0f}-{w['pt_high']:.0f} GeV), {w['bins_beyond']} of {w['bins']} bins beyond "
                         f"+-{100 * c['tolerance']:.0f} % by more than twice their error")
        lines.append(line)
    return "Per-jet resolution (quantile outputs):\n" + "\n".join(lines) if lines else ""


TABLE_COLUMNS = (
    "method", "abs_eta_low", "abs_eta_high", "pt_low", "pt_high", "n", "median", "median_err", "resolution",
    "resolution_err", "resolution_ratio", "resolution_ratio_err", "tail_fraction", "tail_fraction_err",
    *(f"{k}_{f}" for f in FLAVOURS for k in ("n", "median", "median_err")),
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
                for key in ("n", "median", "median_err", "resolution", "resolution_err", "resolution_ratio",
                            "resolution_ratio_err", "tail_fraction", "tail_fraction_err"):
                    row[key] = (b["all"] or {}).get(key)
                for f in FLAVOURS:
                    for key in ("n", "median", "median_err"):
                        row[f"{key}_{f}"] = (b[f] or {}).get(key)
                row["flavour_spread"] = b["flavour_spread"]
                row["flavour_spread_err"] = b.get("flavour_spread_err")
                rows.append(row)
    return rows


def format_summary(summary: dict, reference: str = STANDARD, closure_summary: dict | None = None,
                   versus_baseline: dict | None = None) -> str:
    """A plain-text table of the headline numbers with their errors, for the log and the terminal; then the
    thesis's definitions (where the summary has them), the tail fractions, with ``versus_baseline``
    (:func:`_format_versus_baseline`) the graph networks' gains over the jet-level baseline, and with
    ``closure_summary`` (:func:`closure`'s ``summary``) the closure table."""
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
    if any("tail_fraction" in r for region in summary.values() for r in region.values()):
        lines += ["", f"Tails: the fraction of jets whose response lies beyond {TAIL_SIGMAS:g} sigma-equivalents "
                  "(IQR / 1.349) of their gen-pt bin's median,",
                  f"over the bins of the resolution gain (a Gaussian leaves {100 * GAUSSIAN_TAIL:.2f} % there).",
                  f"{'region':<16}{'method':<18}{'tails %':>16}"]
        for key, region in summary.items():
            for method, r in region.items():
                lines.append(f"{key:<16}{method:<18}{pm(r, 'tail_fraction', 100, 2):>16}")
    if versus_baseline:
        lines += ["", _format_versus_baseline(versus_baseline)]
    if closure_summary:
        lines += ["", _format_closure(closure_summary)]
    return "\n".join(lines)


def _beyond(median: float, err: float | None) -> bool:
    """Whether a closure bin's median lies farther than CLOSURE_TOLERANCE from 1 by more than twice its error."""
    return abs(median - 1) - 2 * (err or 0.0) > CLOSURE_TOLERANCE


def format_closure_bins(closure_summary: dict) -> str:
    """The closure of each method bin by bin: the median response with its error in each gen-pt bin of
    :func:`closure`'s ``summary`` (its region, from its pt cut, bins with at least MIN_JETS jets), '*' where it lies
    beyond CLOSURE_TOLERANCE by more than twice its error, and per method how many bins do."""
    lo, hi = closure_summary["abs_eta"]
    methods = {m: worst["gen"] for m, worst in closure_summary["methods"].items() if worst["gen"]}
    lines = [f"Closure bin by bin in {region_key(lo, hi)}, gen-pt bins from {closure_summary['min_pt']:g} GeV with at "
             f"least {MIN_JETS} jets: each correction's median response;",
             f"'*': farther than {100 * CLOSURE_TOLERANCE:g} % from 1 by more than twice its error."]
    if not methods:
        return "\n".join([*lines, "no bin with enough jets"])
    lines.append(f"{'gen pt, GeV':<14}{'jets':>8}" + "".join(f"{m:>20}" for m in methods))
    first = next(iter(methods.values()))["medians"]
    for i, b in enumerate(first):
        cells = []
        for worst in methods.values():
            m = worst["medians"][i]
            err = "" if m["median_err"] is None else f" ± {m['median_err']:.4f}"
            cells.append(f"{m['median']:.4f}{err}{'*' if _beyond(m['median'], m['median_err']) else ' '}")
        where = f"{b['pt_low']:.0f}-{b['pt_high']:.0f}"
        lines.append(f"{where:<14}{b['n']:>8}" + "".join(f"{c:>20}" for c in cells))
    lines.append(f"{'bins beyond':<22}" + "".join(f"{w['bins_beyond']}/{w['bins']}".rjust(20)
                                                  for w in methods.values()))
    return "\n".join(lines)


def format_flavour_response(flavour_views: list[dict], pt_range) -> str:
    """Each method's median response per flavour (b, c, uds, g) with its error, and g - uds and b - uds (errors in
    quadrature: disjoint jets), from :func:`views`' ``flavour`` (its regions, jets in ``pt_range`` of gen pt)."""
    lines = [f"Flavour response, jets with {pt_range[0]:g} <= pt_gen < {pt_range[1]:g} GeV: the median response per "
             "flavour, and the differences g - uds and b - uds.",
             f"{'region':<16}{'method':<18}{'jets b/c/uds/g':>24}" + "".join(f"{f:>18}" for f in FLAVOURS)
             + f"{'g - uds':>18}{'b - uds':>18}"]

    def cell(value, err):
        if value is None:
            return "n/a"
        return f"{value:+.4f}" if err is None else f"{value:.4f} ± {err:.4f}"

    for view in flavour_views:
        region = region_key(*view["abs_eta"])
        counts = "/".join(str(view["n"][f]) for f in FLAVOURS)
        methods = next((list(v) for v in view["flavours"].values() if v), [])
        for method in methods:
            stats = {f: view["flavours"][f][method] for f in FLAVOURS}
            medians = [cell(s["median"], s.get("median_err")) if s else "n/a" for s in stats.values()]
            differences = []
            for f in ("g", "b"):
                a, b = stats[f], stats["uds"]
                if a and b:
                    err = (None if a.get("median_err") is None or b.get("median_err") is None
                           else float(np.hypot(a["median_err"], b["median_err"])))
                    value = a["median"] - b["median"]
                    differences.append(f"{value:+.4f}" + ("" if err is None else f" ± {err:.4f}"))
                else:
                    differences.append("n/a")
            lines.append(f"{region:<16}{method:<18}{counts:>24}" + "".join(f"{c:>18}" for c in medians)
                         + "".join(f"{c:>18}" for c in differences))
    return "\n".join(lines)


def _format_versus_baseline(versus: dict) -> str:
    """Each graph network against the jet-level baseline: ``{"baseline": name, "summary": ...}``, the summary a
    :func:`summarize` with the baseline as the reference."""
    baseline = versus["baseline"]
    lines = [f"Against the jet-level baseline {baseline!r} (the same jets and resamples): the resolution gain over it "
             "in both definitions, and the change of the six-class flavour spread.",
             f"{'region':<16}{'method':<18}{'res. gain %':>16}{'thesis res. gain %':>22}{'thesis spread change %':>26}"]
    for key, region in versus["summary"].items():
        for method, r in region.items():
            if method == baseline:
                continue

            def pm(k, digits=1):
                value, err = r.get(k), r.get(f"{k}_err")
                if value is None:
                    return "n/a"
                return f"{100 * value:+.{digits}f}" + ("" if err is None else f" ± {100 * err:.{digits}f}")

            lines.append(f"{key:<16}{method:<18}{pm('resolution_gain_mean'):>16}{pm('thesis_resolution_gain'):>22}"
                         f"{pm('thesis_flavour_spread_change', 0):>26}")
    return "\n".join(lines)


def _format_closure(closure_summary: dict) -> str:
    """The closure table of :func:`closure`'s ``summary``: per method (and network alone) the largest |median - 1|
    in reco-pt and in gen-pt bins, with its bin."""
    lo, hi = closure_summary["abs_eta"]
    lines = [f"Closure in {region_key(lo, hi)} from {closure_summary['min_pt']:g} GeV: the largest "
             f"|median response - 1| over the bins with at least {MIN_JETS} jets,",
             "in bins of each correction's own corrected pt (reco) and of gen pt; 'network alone': before its residual "
             "correction;",
             f"'beyond': the bins farther than {100 * CLOSURE_TOLERANCE:g} % from 1 by more than twice their error.",
             f"{'method':<34}{'reco pt: |R-1| %':>20}{'bin, GeV':>12}{'beyond':>8}{'gen pt: |R-1| %':>20}"
             f"{'bin, GeV':>12}{'beyond':>8}"]

    def cells(worst):
        if worst is None:
            return f"{'n/a':>20}{'':>20}"
        err = "" if worst["median_err"] is None else f" ± {100 * worst['median_err']:.2f}"
        where = f"{worst['pt_low']:.0f}-{worst['pt_high']:.0f}"
        beyond = f"{worst['bins_beyond']}/{worst['bins']}" if "bins" in worst else ""
        return f"{100 * worst['deviation']:.2f}{err}".rjust(20) + where.rjust(12) + beyond.rjust(8)

    network = closure_summary.get("network", {})
    for method, worst in closure_summary["methods"].items():
        lines.append(f"{method:<34}{cells(worst['reco'])}{cells(worst['gen'])}")
        if method in network:  # the same model before its residual correction
            lines.append(f"{method + ', network alone':<34}{cells(network[method]['reco'])}"
                         f"{cells(network[method]['gen'])}")
    return "\n".join(lines)
