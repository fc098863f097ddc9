"""Physics plots (mplhep's CMS style, sized for a page): response, resolution, closure, flavour and pileup views.

Every figure is at most WIDTH inches (WIDTH * DPI pixels) wide, with fonts sized for that width printed at page
width. Statistical points are markers with error bars, never joined by lines; points beyond an axis's range are
drawn as open triangles on its frame with their value; legends sit below the panels, over no points.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullFormatter

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402

from . import hparams, provenance  # noqa: E402
from .command import Command  # noqa: E402
from .features import FLAVOURS  # noqa: E402
from .files import atomic_output, canonical_json, read_json  # noqa: E402
from .metrics import GAUSSIAN_TAIL, MIN_JETS, TAIL_SIGMAS, quantiles  # noqa: E402
from .spec import METHOD_LABELS, PLOTS, STANDARD, TRAINING_PLOTS  # noqa: E402

WIDTH = 15.0
"""A full-width figure's width in inches: 1650 pixels at DPI."""
DPI = 110

FLAVOUR_COLOURS = {"b": "tab:red", "c": "tab:orange", "uds": "tab:blue", "g": "tab:green"}
NETWORK_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown", "tab:cyan")
NETWORK_MARKERS = ("s", "D", "P", "X", "h", "p")  # no triangles: those mark points off scale
PT_TICKS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def _name(method: str) -> str:
    return METHOD_LABELS.get(method, method)


@dataclass(frozen=True)
class Label:
    """The label over the plots (config key ``plots``): the experiment's name in bold (none unless the samples are
    that experiment's own), then ``text`` ("Simulation", "Simulation Private Work"), and the centre-of-mass energy."""

    energy: float
    experiment: str
    text: str

    @classmethod
    def default(cls) -> Label:
        """The configuration's defaults (the schema's ``plots.energy_tev``, ``plots.experiment``, ``plots.label``)."""
        from .schema import schema_default

        return cls(schema_default("plots.energy_tev"), schema_default("plots.experiment"),
                   schema_default("plots.label"))


def _style() -> None:
    hep.style.use("CMS")
    plt.rcParams.update({"font.size": 20, "axes.labelsize": 21, "axes.titlesize": 18, "xtick.labelsize": 17,
                         "ytick.labelsize": 17, "legend.fontsize": 17, "xtick.major.size": 9, "ytick.major.size": 9,
                         "xtick.minor.size": 4.5, "ytick.minor.size": 4.5, "lines.markersize": 8,
                         "errorbar.capsize": 0, "axes.titlepad": 6})


def _label(left, label: Label, right=None) -> None:
    """The experiment's name (bold) and ``label.text`` over the left of axes ``left``, the energy over the right
    of ``right`` (default ``left``): above the axes' title where they have one, else above their frame. The
    words are placed against the name when the figure is drawn (mplhep's label draws the whole figure to place
    them: on many panels that was most of the plots' time)."""
    right = right or left
    size = 19

    def anchor(ax, x):
        if ax.get_title():
            return {"xy": (x, 1), "xycoords": (ax.transAxes, ax.title)}
        return {"xy": (x, 1.01), "xycoords": ax.transAxes}

    if label.experiment:
        name = left.annotate(label.experiment, **anchor(left, 0), ha="left", va="bottom", fontsize=size * 1.3,
                             fontweight="bold")
        if label.text:
            left.annotate(f" {label.text}", xy=(1, 0), xycoords=name, ha="left", va="bottom", fontsize=size,
                          fontstyle="italic")
    elif label.text:
        left.annotate(label.text, **anchor(left, 0), ha="left", va="bottom", fontsize=size * 1.1)
    right.annotate(f"({label.energy:g} TeV)", **anchor(right, 1), ha="right", va="bottom", fontsize=size / 1.1)


def _save(fig, path: str) -> None:
    """Write ``path`` (PNG) and a PDF beside it, atomically."""
    for p in (path, str(Path(path).with_suffix(".pdf"))):
        with atomic_output(p) as tmp:
            png = p.endswith(".png")
            metadata = {provenance.KEY: provenance.as_json()} if png else {"Subject": provenance.comment()}
            fig.savefig(tmp, format=Path(p).suffix[1:], dpi=DPI, bbox_inches="tight", metadata=metadata)
    plt.close(fig)


# --- methods, series, ranges -------------------------------------------------------------------------------------

def _method_styles(methods) -> dict[str, dict]:
    """Each method's colour and marker, the same in every plot: the standard correction black open circles."""
    styles, i = {}, 0
    for method in methods:
        if method == STANDARD:
            styles[method] = {"color": "black", "marker": "o", "mfc": "white"}
        else:
            styles[method] = {"color": NETWORK_COLOURS[i % len(NETWORK_COLOURS)],
                              "marker": NETWORK_MARKERS[i % len(NETWORK_MARKERS)]}
            i += 1
    return styles


def _network_style(style: dict) -> dict:
    """A model's network alone, before its residual correction: its model's colour and marker, open."""
    return {**style, "mfc": "white"}


def _dodge(x, i: int, n: int, log: bool = True, step: float = 0.025):
    """``x`` moved a little for series ``i`` of ``n``, so that error bars at the same x do not overlap."""
    shift = step * (i - (n - 1) / 2)
    return np.asarray(x, float) * np.exp(shift) if log else np.asarray(x, float) + shift


@dataclass
class Series:
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray
    style: dict
    label: str | None = None
    xerr: np.ndarray | None = None


def _draw(ax, series: list[Series]) -> None:
    """Markers with error bars (no lines), then the axis's range from the points and arrows for the ones beyond."""
    for s in series:
        if len(s.x):
            ax.errorbar(s.x, s.y, yerr=s.err, xerr=s.xerr, ls="none", label=s.label, **s.style)


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]


def _range(values, include=(), min_span: float = 0.0, max_span: float | None = None, pad: float = 0.1):
    """An axis range over the points' ``values`` and ``include``, at least ``min_span`` wide; wider than
    ``max_span``, the points farthest from the points' median are left beyond it (never ``include``), to be marked
    as off scale."""
    v, fixed = np.sort(_finite(values)), _finite(include)
    if not len(v) and not len(fixed):
        return (0.0, 1.0)

    def span(points):
        both = np.concatenate([points, fixed])
        return both.min(), both.max()

    if max_span is not None and len(v):
        centre = np.median(v)
        while len(v) > (0 if len(fixed) else 1) and np.subtract(*span(v)[::-1]) > max_span:
            trimmed = v[:-1] if v[-1] - centre >= centre - v[0] else v[1:]
            if np.subtract(*span(trimmed)[::-1]) >= np.subtract(*span(v)[::-1]):
                break  # what is left to include is wider than max_span
            v = trimmed
    lo, hi = span(v)
    width = max(min_span, 1e-9) if hi > lo or min_span > 0 else 0.1 * (abs(lo) or 1.0)  # one value: 10 % around it
    if hi - lo < width:
        mid = (hi + lo) / 2
        lo, hi = mid - width / 2, mid + width / 2
    margin = pad * (hi - lo)
    return lo - margin, hi + margin


def _mark_off_scale(ax, series: list[Series], digits: int = 3) -> None:
    """Each point beyond the y range: an open triangle on the frame in its series' colour, with its value."""
    lo, hi = ax.get_ylim()
    span = hi - lo
    for s in series:
        for x, y in zip(s.x, s.y):
            if not np.isfinite(y) or lo <= y <= hi:
                continue
            up = y > hi
            edge = hi - 0.035 * span if up else lo + 0.035 * span
            ax.plot([x], [edge], marker="^" if up else "v", ms=11, mfc="white", mec=s.style["color"], mew=1.8,
                    ls="none", clip_on=False, zorder=5)
            ax.annotate(f"{y:.{digits}f}", xy=(x, edge), xytext=(7, 0), textcoords="offset points", ha="left",
                        va="center", fontsize=11, color=s.style["color"])


def _set_y(ax, series: list[Series], **kwargs) -> None:
    ax.set_ylim(*_range(np.concatenate([s.y for s in series]) if series else [], **kwargs))


def _log_pt_axis(ax, edges, label=r"$p_T^\mathrm{gen}$ [GeV]", narrow: bool = False) -> None:
    """A log pt axis over ``edges`` labelled at round numbers (20, 50, 100, 200, ...), not only powers of ten;
    ``narrow`` (a third of the page or less): without the numbers that would run into each other (2000, 5000)."""
    ax.set_xscale("log")
    lo, hi = edges[0], edges[-1]
    ax.set_xlim(lo, hi)
    ticks = [t for t in PT_TICKS if lo <= t <= hi and not (narrow and t in (2000, 5000))]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def _legend_below(fig, axes, handles=None, labels=None, ncol: int | None = None, title: str | None = None) -> None:
    """One legend for the figure, below its lowest axes (their tick labels and axis label), over no point."""
    if handles is None:  # every labelled artist of the figure, once
        seen = {}
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)
        labels, handles = list(seen), list(seen.values())
    if not handles:
        return
    renderer = fig.canvas.get_renderer()
    bottom = min(ax.get_tightbbox(renderer).y0 for ax in np.ravel(axes)) / fig.bbox.height
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, bottom - 0.005), ncol=ncol or len(handles),
               frameon=False, title=title, handletextpad=0.3, columnspacing=1.2)


def _row_labels(axes, texts) -> None:
    """Each row's label (its |eta| range, say) on the right of its last panel, as a facet's."""
    for ax, text in zip(axes, texts):
        ax.annotate(text, xy=(1.03, 0.5), xycoords="axes fraction", rotation=270, ha="left", va="center",
                    fontsize=18)


def _note(ax, text: str) -> None:
    """Say why a panel is empty (a statistics limit, not a failure)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=15, color="grey")


def _eta_text(lo: float, hi: float) -> str:
    return rf"${lo:g} < |\eta^\mathrm{{gen}}| < {hi:g}$"


def _panels(nrows: int, ncols: int, row_height: float, width: float = WIDTH, **kwargs):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, row_height * nrows), squeeze=False, **kwargs)
    return fig, axes


def _paired_panels(n: int, ncols: int, row_height: float, ratios=(3, 1)):
    """``n`` panels, each a main axes over a ratio axes sharing its x, in rows of ``ncols``: (fig, [(main, ratio)])."""
    nrows = -(-n // ncols)
    fig = plt.figure(figsize=(WIDTH, row_height * nrows))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.32, wspace=0.28)
    pairs = []
    for i in range(n):
        inner = outer[i // ncols, i % ncols].subgridspec(2, 1, height_ratios=ratios, hspace=0.06)
        main = fig.add_subplot(inner[0])
        ratio = fig.add_subplot(inner[1], sharex=main)
        main.tick_params(labelbottom=False)
        pairs.append((main, ratio))
    return fig, pairs


# --- the plots ---------------------------------------------------------------------------------------------------

def _bin_centre(b) -> float:
    return float(np.sqrt(b["pt_low"] * b["pt_high"]))


def _binned_series(bins, pick) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, err) over gen-pt ``bins``; ``pick(bin)`` gives (y, err) or None to skip."""
    x, y, err = [], [], []
    for b in bins:
        value = pick(b)
        if value is not None and value[0] is not None:
            x.append(_bin_centre(b))
            y.append(value[0])
            err.append(np.nan if value[1] is None else value[1])
    return np.array(x), np.array(y, dtype=float), np.nan_to_num(np.array(err, dtype=float))


def plot_response_distributions(truth, responses, metrics, path, pt_ranges=((30, 50), (100, 200), (500, 1000)), *,
                                label: Label):
    """The response of each method, one panel per |eta| bin (rows) and gen-pt range (columns), as a density
    normalised to all the panel's jets: the jets below and above the drawn range each in a bin of their own beyond
    it (shaded), and each method's median and IQR / median."""
    eta_bins = metrics["eta_bins"]
    styles = _method_styles(responses)
    fig, axes = _panels(len(eta_bins), len(pt_ranges), 3.4, sharex=True,
                        gridspec_kw={"hspace": 0.38, "wspace": 0.22})
    pt_gen, abs_eta = truth["pt_gen"], truth["abs_eta"]
    lo_edge, hi_edge, width, outside = 0.4, 1.6, 0.025, 0.1
    edges = np.concatenate([[lo_edge - outside], np.arange(lo_edge, hi_edge + width / 2, width), [hi_edge + outside]])
    for row, (lo_eta, hi_eta) in enumerate(eta_bins):
        for ax, (lo, hi) in zip(axes[row], pt_ranges):
            sel = (pt_gen >= lo) & (pt_gen < hi) & (abs_eta >= lo_eta) & (abs_eta < hi_eta)
            ax.set_title(rf"{_eta_text(lo_eta, hi_eta)}, ${lo}$–${hi}$ GeV")
            ax.axvspan(edges[0], lo_edge, color="0.9", lw=0)
            ax.axvspan(hi_edge, edges[-1], color="0.9", lw=0)
            if sel.sum() < MIN_JETS:
                _note(ax, f"{int(sel.sum())} jets: too few" if sel.any() else "no jets")
                continue
            top, lines = 0.0, []
            for method, response in responses.items():
                r = response[sel]
                counts, _ = np.histogram(np.clip(r, edges[0], edges[-1]), edges)
                density = counts / (len(r) * np.diff(edges))
                top = max(top, density.max())
                ax.stairs(density, edges, color=styles[method]["color"], lw=2,
                          ls="--" if method == STANDARD else "-", label=_name(method))
                q25, q50, q75 = quantiles(r)
                beyond = 100 * np.mean((r < lo_edge) | (r > hi_edge))
                lines.append((f"{q50:6.3f} {(q75 - q25) / q50:7.3f} {beyond:5.1f}", styles[method]["color"]))
            ax.set_ylim(0, top * 2.0)  # the numbers over the peak
            ax.text(0.03, 0.95, f"{int(sel.sum())} jets", transform=ax.transAxes, ha="left", va="top", fontsize=13)
            ax.text(0.97, 0.95, f"{'median':>6} {'IQR/med':>7} {'out %':>5}", transform=ax.transAxes, ha="right",
                    va="top", fontsize=12, family="monospace")
            for i, (text, colour) in enumerate(lines):
                ax.text(0.97, 0.95 - 0.09 * (i + 1), text, transform=ax.transAxes, ha="right", va="top", fontsize=12,
                        color=colour, family="monospace")
    for ax in axes[-1]:
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(r"$p_T^\mathrm{corr} / p_T^\mathrm{gen}$")
        ax.set_xticks([lo_edge - outside / 2, 0.6, 0.8, 1.0, 1.2, 1.4, hi_edge + outside / 2],
                      [f"<{lo_edge:g}", "0.6", "0.8", "1.0", "1.2", "1.4", f">{hi_edge:g}"])
        ax.xaxis.set_minor_locator(FixedLocator(np.arange(lo_edge, hi_edge + 0.01, 0.05)))
    for row in axes:
        row[0].set_ylabel("Jets / bin width")
    _label(axes[0][0], label, axes[0][-1])
    handles = [Line2D([], [], color=styles[m]["color"], lw=2, ls="--" if m == STANDARD else "-")
               for m in responses]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="0.9"))
    _legend_below(fig, axes[-1], handles, [*map(_name, responses), "all jets beyond the range"],
                  title=metrics["dataset"])
    _save(fig, path)


def _gen_reco_panels(eta_bins):
    """A column of gen-pt bins and one of reco-pt bins, a row per |eta| bin: (fig, axes, the cells as
    (ax, "gen" or "reco", row, |eta| low, |eta| high), column by column)."""
    fig, axes = _panels(len(eta_bins), 2, 3.3, sharex=True, sharey=True, gridspec_kw={"hspace": 0.32, "wspace": 0.08})
    cells = [(axes[row][col], axis, row, lo, hi) for col, axis in enumerate(("gen", "reco"))
             for row, (lo, hi) in enumerate(eta_bins)]
    return fig, axes, cells


def plot_closure(metrics, methods, path, *, label: Label):
    """Median response vs gen pt (left) and vs each correction's own corrected pt (right), per |eta| range; a
    model's network alone (before its residual correction) in open markers."""
    closure = metrics["closure"]
    eta_bins, edges = closure["eta_bins"], closure["pt_edges"]
    styles = _method_styles(methods)
    fig, axes, cells = _gen_reco_panels(eta_bins)
    everything = []
    for ax, axis, row, lo_eta, hi_eta in cells:
        series = []
        entries = [(m, closure["methods"][m], styles[m], _name(m)) for m in methods if m in closure["methods"]]
        entries += [(m, closure["network"][m], _network_style(styles[m]), f"{_name(m)}, network alone")
                    for m in methods if m in closure.get("network", {})]
        for i, (_, data, style, name) in enumerate(entries):
            x, y, err = _binned_series(data[axis][row], lambda b: (b["median"], b["median_err"]))
            series.append(Series(_dodge(x, i, len(entries)), y, err, style, name))
        _draw(ax, series)
        everything.append((ax, series))
        ax.axhline(1.0, color="grey", lw=1)
        ax.axhspan(0.99, 1.01, color="grey", alpha=0.15, lw=0)
        ax.set_title(_eta_text(lo_eta, hi_eta) + (", gen-pt bins" if axis == "gen" else ", reco-pt bins"))
    ylim = _range(np.concatenate([s.y for _, ss in everything for s in ss]), include=(0.98, 1.02), max_span=0.16)
    for ax, series in everything:
        ax.set_ylim(*ylim)
        _mark_off_scale(ax, series)
    for row in axes:
        row[0].set_ylabel("Median response")
    _log_pt_axis(axes[-1][0], edges)
    _log_pt_axis(axes[-1][1], edges, r"$p_T^\mathrm{corr}$ (each correction's own) [GeV]")
    _label(axes[0][0], label, axes[0][-1])
    _legend_below(fig, axes[-1], ncol=min(4, len(everything[0][1]) or 1),
                  title=metrics["dataset"] + r"; band: $\pm$1 %")
    _save(fig, path)


def plot_resolution_coverage(metrics, methods, path, *, label: Label):
    """The per-jet resolution's calibration: the share of jets inside each quantile network's predicted interval vs
    gen pt (left) and vs its corrected pt (right), per |eta| range, against the nominal share and its tolerance."""
    coverage = metrics.get("coverage") or {}
    closure = metrics["closure"]
    eta_bins, edges = closure["eta_bins"], closure["pt_edges"]
    models = [m for m in methods if m in coverage]
    styles = _method_styles(methods)
    fig, axes, cells = _gen_reco_panels(eta_bins)
    everything = []
    for ax, axis, row, lo_eta, hi_eta in cells:
        series = []
        for i, m in enumerate(models):
            x, y, err = _binned_series(coverage[m][axis][row], lambda b: (b["coverage"], b["coverage_err"]))
            levels = "–".join(f"{100 * q:g}" for q in (coverage[m]["levels"][0], coverage[m]["levels"][-1]))
            series.append(Series(_dodge(x, i, len(models)), 100 * y, 100 * err, styles[m],
                                 f"{_name(m)}, {levels} % interval"))
        _draw(ax, series)
        everything.append((ax, series))
        for m in models[:1]:  # the nominal share (the same for every model with the same levels)
            nominal, tolerance = 100 * coverage[m]["nominal"], 100 * coverage[m]["tolerance"]
            ax.axhline(nominal, color="grey", lw=1)
            ax.axhspan(nominal - tolerance, nominal + tolerance, color="grey", alpha=0.15, lw=0)
        if not models:
            _note(ax, "no network was trained with quantiles\n(hyperparameter quantiles)")
        ax.set_title(_eta_text(lo_eta, hi_eta) + (", gen-pt bins" if axis == "gen" else ", reco-pt bins"))
    values = np.concatenate([s.y for _, ss in everything for s in ss] or [np.array([68.0])])
    nominal = 100 * coverage[models[0]]["nominal"] if models else 68.0
    ylim = _range(values, include=(nominal - 6, nominal + 6), max_span=40)
    for ax, series in everything:
        ax.set_ylim(*ylim)
        _mark_off_scale(ax, series, digits=1)
    for row in axes:
        row[0].set_ylabel("Jets inside [%]")
    _log_pt_axis(axes[-1][0], edges)
    _log_pt_axis(axes[-1][1], edges, r"$p_T^\mathrm{corr}$ (the network's) [GeV]")
    _label(axes[0][0], label, axes[0][-1])
    band = f"; line: nominal, band: ±{100 * coverage[models[0]]['tolerance']:.0f} %" if models else ""
    _legend_below(fig, axes[-1], ncol=min(3, len(models) or 1), title=metrics["dataset"] + band)
    _save(fig, path)


def plot_median_response(metrics, methods, path, *, label: Label):
    """Median response per flavour vs gen pt: one column per method, one row per |eta| range, the same y axis
    everywhere; a flavour appears where its bins have jets."""
    eta_bins = metrics["eta_bins"]
    fig, axes = _panels(len(eta_bins), len(methods), 3.3, width=min(WIDTH, 5.0 * len(methods) + 1), sharex=True,
                        sharey=True, gridspec_kw={"hspace": 0.12, "wspace": 0.06})
    everything, shown = [], set()
    for col, method in enumerate(methods):
        for row in range(len(eta_bins)):
            ax = axes[row][col]
            bins = metrics["methods"][method][row]["bins"]
            series = []
            for i, f in enumerate(FLAVOURS):
                x, y, err = _binned_series(bins, lambda b, f=f: (b[f]["median"], b[f].get("median_err"))
                                           if b[f] else None)
                if len(x):
                    shown.add(f)
                    series.append(Series(_dodge(x, i, len(FLAVOURS)), y, err,
                                         {"color": FLAVOUR_COLOURS[f], "marker": "o"}, f))
            _draw(ax, series)
            if not series:
                _note(ax, f"no gen-pt bin with {MIN_JETS} jets of a flavour")
            everything.append((ax, series))
            ax.axhline(1.0, color="grey", lw=1)
        axes[0][col].set_title(_name(method))
    ylim = _range(np.concatenate([s.y for _, ss in everything for s in ss] or [[1.0]]), include=(0.98, 1.02),
                  max_span=0.16)
    for ax, series in everything:
        ax.set_ylim(*ylim)
        _mark_off_scale(ax, series)
    for row in axes:
        row[0].set_ylabel("Median response")
    _row_labels(axes[:, -1], [_eta_text(*b) for b in eta_bins])
    for ax in axes[-1]:
        _log_pt_axis(ax, metrics["pt_edges"], narrow=len(methods) > 2)
    _label(axes[0][0], label, axes[0][-1])
    handles = [Line2D([], [], color=FLAVOUR_COLOURS[f], marker="o", ls="none") for f in FLAVOURS if f in shown]
    _legend_below(fig, axes[-1], handles, [f for f in FLAVOURS if f in shown], title=metrics["dataset"])
    _save(fig, path)


def _difference(minuend: str, subtrahend: str):
    """A flavour's median minus another's, the error the two errors in quadrature (disjoint jets: independent)."""
    def pick(b):
        if not (b[minuend] and b[subtrahend]):
            return None
        err = np.hypot(b[minuend].get("median_err") or 0.0, b[subtrahend].get("median_err") or 0.0)
        return b[minuend]["median"] - b[subtrahend]["median"], err
    return pick


def plot_flavour_difference(metrics, methods, path, *, label: Label):
    """g - uds, then b - uds median response vs gen pt, per |eta| range, each method: a panel for each difference and
    range with a bin of MIN_JETS jets of both flavours (b jets are rare beyond the barrel), two panels a row."""
    eta_bins = metrics["eta_bins"]
    styles = _method_styles(methods)
    panels, missing = [], []
    for flavour in ("g", "b"):
        for row, bounds in enumerate(eta_bins):
            series = []
            for i, method in enumerate(methods):
                x, y, err = _binned_series(metrics["methods"][method][row]["bins"], _difference(flavour, "uds"))
                series.append(Series(_dodge(x, i, len(methods)), y, err, styles[method], _name(method)))
            if any(len(s.x) for s in series):
                panels.append((f"{flavour} $-$ uds, {_eta_text(*bounds)}", series))
            else:
                missing.append(f"{flavour} $-$ uds in {_eta_text(*bounds)}")
    ncols = 2
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = _panels(nrows, ncols, 3.3, sharex=True, sharey=True, gridspec_kw={"hspace": 0.32, "wspace": 0.08})
    flat = list(axes.ravel())
    for ax, (title, series) in zip(flat, panels):
        _draw(ax, series)
        ax.axhline(0.0, color="grey", lw=1)
        ax.set_title(title)
    ylim = _range(np.concatenate([s.y for _, ss in panels for s in ss] or [[0.0]]), include=(-0.02, 0.02),
                  max_span=0.16)
    for ax, (_, series) in zip(flat, panels):
        ax.set_ylim(*ylim)
        _mark_off_scale(ax, series)
    for ax in flat[len(panels):]:  # a spare panel says what is missing, or goes
        if missing:
            ax.axis("off")
            ax.text(0.5, 0.5, f"no gen-pt bin with {MIN_JETS} jets of both flavours:\n" + "\n".join(missing),
                    transform=ax.transAxes, ha="center", va="center", fontsize=15, color="grey")
            missing = []
        else:
            ax.remove()
    for row in axes:
        row[0].set_ylabel(r"$\Delta$ median response")
    for ax in axes[-1]:
        _log_pt_axis(ax, metrics["pt_edges"])
    for ax in flat[len(panels) - ncols:len(panels)]:  # the last drawn row's x axes, over a spare panel too
        ax.tick_params(labelbottom=True)
        _log_pt_axis(ax, metrics["pt_edges"])
    _label(flat[0], label, flat[min(1, len(flat) - 1)])
    title = metrics["dataset"] + ("; not drawn, no bin with 20 jets of both: " + ", ".join(missing) if missing else "")
    _legend_below(fig, flat[max(0, len(panels) - ncols):len(panels)], title=title)
    _save(fig, path)


def _view_series(bins, methods, styles, key, x_of, log=False, step=0.025):
    """One series per method over a view's ``bins`` (each with ``methods``): ``key`` and ``key_err``."""
    series = []
    for i, method in enumerate(methods):
        x, y, err = [], [], []
        for b in bins:
            s = (b.get("methods") or {}).get(method)
            if s and s.get(key) is not None:
                x.append(x_of(b))
                y.append(s[key])
                err.append(s.get(f"{key}_err") or 0.0)
        series.append(Series(_dodge(x, i, len(methods), log=log, step=step), np.array(y, float), np.array(err),
                             styles[method], _name(method)))
    return series


RATIO_LABEL = "Ratio\nto Std."


def _ratio_axis(ax, series: list[Series]) -> None:
    """A ratio panel: the line at 1, a range over the points (with 1 in view) and arrows for the ones beyond."""
    from matplotlib.ticker import MaxNLocator

    ax.axhline(1.0, color="grey", lw=1)
    _set_y(ax, series, include=(0.95, 1.02), max_span=0.8, pad=0.2)
    low, high = ax.get_ylim()  # a few tick labels and the one at 1, none against the panel above
    top = high - 0.1 * (high - low)
    ticks = {round(t, 6) for t in MaxNLocator(nbins=3).tick_values(low, high) if low <= t <= top}
    if low <= 1.0 <= top:  # the one at 1, and none so near it that their labels overlap
        ticks = {t for t in ticks if abs(t - 1.0) > 0.15 * (high - low)} | {1.0}
    ax.set_yticks(sorted(ticks))
    _mark_off_scale(ax, series, digits=2)
    ax.set_ylabel(RATIO_LABEL, fontsize=16)


def _resolution_axis(ax, series: list[Series]) -> None:
    """A resolution panel's range over its points (not from 0: the differences are a few per cent)."""
    _set_y(ax, series, min_span=0.02, max_span=0.4, pad=0.25)
    _mark_off_scale(ax, series)
    ax.set_ylabel("IQR / median")


def plot_response_vs_eta(metrics, methods, path, *, label: Label):
    """Median response vs |eta_gen| for jets above the summary's pt cut, and each network's resolution over the
    standard correction's (its error the scatter of the ratio over the resamples)."""
    view = metrics["views"]["eta"]
    styles = _method_styles(methods)
    fig = plt.figure(figsize=(10, 8.5))
    main, ratio = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 2), "hspace": 0.06})
    centre = lambda b: (b["low"] + b["high"]) / 2  # noqa: E731
    series = _view_series(view["bins"], methods, styles, "median", centre, step=0.06)
    _draw(main, series)
    main.axhline(1.0, color="grey", lw=1)
    _set_y(main, series, include=(0.98, 1.02), max_span=0.16)
    _mark_off_scale(main, series)
    main.set_ylabel("Median response")
    ratios = _view_series(view["bins"], [m for m in methods if m != STANDARD], styles, "resolution_ratio", centre,
                          step=0.06)
    _draw(ratio, ratios)
    _ratio_axis(ratio, ratios)
    ratio.set_ylabel("Resolution\nratio to Std.", fontsize=18)
    for ax in (main, ratio):
        for b in view["bins"][:-1]:  # the bins, and the detector's boundaries thicker
            ax.axvline(b["high"], color="grey", lw=1.2 if b["high"] in (1.3, 2.5, 3.0) else 0.4, ls=":")
    ratio.set_xlim(0, view["bins"][-1]["high"])
    ratio.set_xlabel(r"$|\eta^\mathrm{gen}|$")
    main.set_title(rf"$p_T^\mathrm{{gen}} > {view['min_pt']:g}$ GeV", fontsize=17)
    _label(main, label)
    _legend_below(fig, [ratio], ncol=min(3, len(methods)), title=metrics["dataset"])
    _save(fig, path)


def plot_resolution(metrics, methods, path, *, label: Label):
    """Resolution vs gen pt per |eta| range and, below, each network's over the standard correction's (its error
    the scatter of the ratio over the bootstrap resamples, the same for both)."""
    eta_bins, edges = metrics["eta_bins"], metrics["pt_edges"]
    styles = _method_styles(methods)
    fig, pairs = _paired_panels(len(eta_bins), 2, 5.6, ratios=(3, 1.5))
    networks = [m for m in methods if m != STANDARD]
    for region, (main, ratio) in enumerate(pairs):
        series, ratios = [], []
        for i, method in enumerate(methods):
            bins = metrics["methods"][method][region]["bins"]
            x, y, err = _binned_series(bins, lambda b: (b["all"]["resolution"], b["all"]["resolution_err"])
                                       if b["all"] else None)
            series.append(Series(_dodge(x, i, len(methods)), y, err, styles[method], _name(method)))
            if method != STANDARD:
                x, y, err = _binned_series(bins, lambda b: (b["all"].get("resolution_ratio"),
                                                            b["all"].get("resolution_ratio_err")) if b["all"] else None)
                ratios.append(Series(_dodge(x, networks.index(method), len(networks)), y, err, styles[method]))
        _draw(main, series)
        _draw(ratio, ratios)
        main.set_ylim(0, _range(np.concatenate([s.y for s in series]), include=(0.0,))[1])
        _mark_off_scale(main, series)
        _ratio_axis(ratio, ratios)
        main.set_title(_eta_text(*eta_bins[region]))
        main.set_ylabel("IQR / median")
        _log_pt_axis(ratio, edges)
    _label(pairs[0][0], label, pairs[min(1, len(pairs) - 1)][0])
    _legend_below(fig, [r for _, r in pairs[-2:]], title=metrics["dataset"])
    _save(fig, path)


PILEUP_NAMES = {"rho": r"$\rho$ [GeV]", "npv": "Number of primary vertices"}


def _pileup_panels(metrics, methods, path, label: Label, key: str):
    """Per pileup variable (columns: rho, number of vertices) and view region (rows) the ``key`` of each method in
    the variable's quantile bins (dotted: their edges), each point at its bin's mean; with ``key`` resolution, a
    ratio panel to the standard correction below."""
    views = metrics["views"]
    variables = [v for v in ("rho", "npv") if v in views["pileup"]]
    if not variables:  # a predictions file without rho and npv (older than 96a3001)
        fig, ax = plt.subplots(figsize=(10, 4))
        _note(ax, "the predictions have no rho and no number of vertices: rerun the evaluate rule")
        _save(fig, path)
        return
    regions = views["regions"]
    styles = _method_styles(methods)
    resolution = key == "resolution"
    if resolution:
        fig, grid = _paired_panels(len(variables) * len(regions), len(variables), 5.2)
    else:
        fig, axes = _panels(len(regions), len(variables), 4.0, gridspec_kw={"hspace": 0.45, "wspace": 0.2})
        grid = [(ax, None) for ax in axes.ravel()]
    everything = []
    for i, (main, ratio) in enumerate(grid):
        region, variable = divmod(i, len(variables))
        pileup = views["pileup"][variables[variable]]
        bins = pileup["regions"][region]["bins"]
        step = 0.012 * (pileup["edges"][-1] - pileup["edges"][0])
        series = _view_series(bins, methods, styles, key, lambda b: b["mean"], step=step)
        _draw(main, series)
        everything.append((main, series))
        main.set_title(_eta_text(*regions[region]) + rf", ${views['pt_range'][0]:g} < p_T^\mathrm{{gen}} < "
                       rf"{views['pt_range'][1]:g}$ GeV")
        bottom = ratio if resolution else main
        bottom.set_xlabel(PILEUP_NAMES[variables[variable]])
        for ax in (main, ratio) if resolution else (main,):
            for edge in pileup["edges"][1:-1]:
                ax.axvline(edge, color="grey", lw=0.8, ls=":")
            ax.set_xlim(*_pileup_range(pileup))
        if resolution:
            ratios = _view_series(bins, [m for m in methods if m != STANDARD], styles, "resolution_ratio",
                                  lambda b: b["mean"], step=step)
            _draw(ratio, ratios)
            _ratio_axis(ratio, ratios)
            _resolution_axis(main, series)
        else:
            main.axhline(1.0, color="grey", lw=1)
            main.set_ylabel("Median response")
    if not resolution:
        ylim = _range(np.concatenate([s.y for _, ss in everything for s in ss] or [[1.0]]), include=(0.98, 1.02),
                      max_span=0.16)
        for ax, series in everything:
            ax.set_ylim(*ylim)
            _mark_off_scale(ax, series)
    top = [g[0] for g in grid[:len(variables)]]
    _label(top[0], label, top[-1])
    n_bins = len(views["pileup"][variables[0]]["edges"]) - 1
    _legend_below(fig, [(r if r is not None else m) for m, r in grid[-len(variables):]],
                  title=f"{metrics['dataset']}; {n_bins} quantile bins (dotted: their edges)")
    _save(fig, path)


def _pileup_range(pileup: dict) -> tuple[float, float]:
    """The x range of a pileup view: from the lowest value to a little beyond the last bin's mean (its upper edge
    is the largest value, far out in the tail)."""
    lo, inner, hi = pileup["edges"][0], pileup["edges"][-2], pileup["edges"][-1]
    means = [b["mean"] for region in pileup["regions"] for b in region["bins"][-1:] if b["mean"] is not None]
    last = max(means, default=hi)
    return lo, min(hi, last + 1.5 * (last - inner)) if last > inner else hi


def plot_pileup_response(metrics, methods, path, *, label: Label):
    """Median response in quantile bins of rho and of the number of vertices, per view region."""
    _pileup_panels(metrics, methods, path, label, "median")


def plot_pileup_resolution(metrics, methods, path, *, label: Label):
    """Resolution in quantile bins of rho and of the number of vertices, per view region, with each network's
    ratio to the standard correction."""
    _pileup_panels(metrics, methods, path, label, "resolution")


def plot_flavour_resolution(metrics, methods, path, *, label: Label):
    """Per flavour (those with jets) and view region: the median response, the resolution and each network's
    resolution over the standard correction's."""
    views = metrics["views"]
    styles = _method_styles(methods)
    n = len(views["flavour"])
    fig = plt.figure(figsize=(WIDTH, 10.5))
    grid = fig.add_gridspec(3, n, height_ratios=(2, 2, 1.3), hspace=0.08, wspace=0.22)
    medians, all_axes = [], []
    for col, region in enumerate(views["flavour"]):
        present = [f for f in FLAVOURS if region["flavours"][f].get(STANDARD)]
        x_of = {f: i for i, f in enumerate(present)}
        axes = [fig.add_subplot(grid[0, col])]
        axes += [fig.add_subplot(grid[r, col], sharex=axes[0]) for r in (1, 2)]
        bins = [{"flavour": f, "methods": region["flavours"][f]} for f in present]
        pos = lambda b: x_of[b["flavour"]]  # noqa: E731
        med = _view_series(bins, methods, styles, "median", pos, step=0.12)
        res = _view_series(bins, methods, styles, "resolution", pos, step=0.12)
        rat = _view_series(bins, [m for m in methods if m != STANDARD], styles, "resolution_ratio", pos, step=0.12)
        for ax, series in zip(axes, (med, res, rat)):
            _draw(ax, series)
        medians.append((axes[0], med))
        axes[0].axhline(1.0, color="grey", lw=1)
        _resolution_axis(axes[1], res)
        _ratio_axis(axes[2], rat)
        axes[2].set_xticks(range(len(present)), [f"{f}\n({region['n'][f]} jets)" for f in present])
        axes[2].set_xlim(-0.5, len(present) - 0.5)
        for ax in axes[:2]:
            ax.tick_params(labelbottom=False)
        for ax in axes:
            ax.xaxis.set_minor_locator(FixedLocator([]))
        axes[0].set_title(_eta_text(*region["abs_eta"]) + rf", ${views['pt_range'][0]:g} < p_T^\mathrm{{gen}} < "
                          rf"{views['pt_range'][1]:g}$ GeV")
        axes[0].set_ylabel("Median response")
        all_axes.append(axes)
    ylim = _range(np.concatenate([s.y for _, ss in medians for s in ss] or [[1.0]]), include=(0.98, 1.02),
                  max_span=0.16)
    for ax, series in medians:
        ax.set_ylim(*ylim)
        _mark_off_scale(ax, series)
    _label(all_axes[0][0], label, all_axes[-1][0])
    _legend_below(fig, [a[2] for a in all_axes], title=metrics["dataset"])
    _save(fig, path)


def plot_tail_fraction(metrics, methods, path, *, label: Label):
    """The fraction of jets beyond 3 sigma-equivalents of their gen-pt bin's median, per summary region."""
    summary = metrics["summary"]
    styles = _method_styles(methods)
    regions = list(summary)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    series = []
    for i, method in enumerate(methods):
        x, y, err = [], [], []
        for j, region in enumerate(regions):
            r = summary[region].get(method) or {}
            if r.get("tail_fraction") is not None:
                x.append(j)
                y.append(100 * r["tail_fraction"])
                err.append(100 * (r.get("tail_fraction_err") or 0.0))
        series.append(Series(_dodge(x, i, len(methods), log=False, step=0.15), np.array(y), np.array(err),
                             styles[method], _name(method)))
    _draw(ax, series)
    ax.axhline(100 * GAUSSIAN_TAIL, color="grey", lw=1, ls="--", label="Gaussian")
    ax.set_ylim(0, _range(np.concatenate([s.y + s.err for s in series]), include=(0.0,))[1])
    n_bins = len(metrics["eta_bins"])
    if n_bins < len(regions):
        ax.axvline(n_bins - 0.5, color="grey", lw=0.8, ls=":")  # the eta bins | the headline regions
    ax.set_xticks(range(len(regions)), [k.replace("<|eta|<", "–") for k in regions], fontsize=15)
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_xlim(-0.5, len(regions) - 0.5)
    ax.set_xlabel(r"$|\eta^\mathrm{gen}|$ range")
    ax.set_ylabel(rf"Jets beyond {TAIL_SIGMAS:g} $\sigma_\mathrm{{eq}}$ [%]")
    ax.set_title(rf"$p_T^\mathrm{{gen}} > {metrics['summary_min_pt']:g}$ GeV, "
                 r"$\sigma_\mathrm{eq}$ = IQR / 1.349 of each gen-pt bin", fontsize=16)
    _label(ax, label)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == "Gaussian")  # the methods first
    _legend_below(fig, [ax], [handles[i] for i in order], [labels[i] for i in order], ncol=min(4, len(methods) + 1),
                  title=metrics["dataset"])
    _save(fig, path)


# --- training ----------------------------------------------------------------------------------------------------

MAX_CURVES = 8
"""The loss curves draw this many points in colour (the best first); the others in grey."""


def plot_loss_curves(ranking: list[dict], path: str, *, label: Label) -> None:
    """Training (dashed) and validation (solid) loss per epoch: the best MAX_CURVES points in colour, the best
    thick, the others' validation loss in grey."""
    fig, ax = plt.subplots(figsize=(10, 7))
    varied = [k for k in hparams.varied([r["hparams"] for r in ranking]) if k != "model"]
    handles, labels = [], []
    for i, point in reversed(list(enumerate(ranking))):
        epochs = read_json(point["history"], "training history (JSON)", "rerun the train rule",
                           keys=("epochs",))["epochs"]
        n = [e["epoch"] for e in epochs]
        if i >= MAX_CURVES:
            ax.plot(n, [e["val_loss"] for e in epochs], lw=0.8, color="0.7", zorder=1)
            continue
        values = ", ".join(f"{k} {canonical_json(point['hparams'].get(k))}" for k in varied)
        colour = f"C{i}"
        line = ax.plot(n, [e["val_loss"] for e in epochs], lw=3 if i == 0 else 1.5, color=colour, zorder=3)[0]
        ax.plot(n, [e["train_loss"] for e in epochs], ls="--", lw=1.2, color=colour, zorder=2)
        handles.insert(0, line)
        labels.insert(0, f"{_name(point['hparams']['model'])} {point['name'].rsplit('-', 1)[1]}"
                      + (f": {values}" if values else ""))
    if len(ranking) > MAX_CURVES:
        handles.append(Line2D([], [], lw=0.8, color="0.7"))
        labels.append(f"the other {len(ranking) - MAX_CURVES} points (validation)")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss (MAE of log response)")
    _label(ax, label)
    _legend_below(fig, [ax], handles, labels, ncol=1 if len(labels) > 3 else len(labels),
                  title="solid: validation, dashed: training")
    _save(fig, path)


def make_training_plots(best_path: str, out_dir: str, label: Label | None = None) -> list[str]:
    """The loss curves of every point, from ``select-model``'s best.json."""
    label = label or Label.default()
    _style()
    ranking = read_json(best_path, "model selection (JSON)", "rerun the select_model rule",
                        keys=("ranking",))["ranking"]
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.png") for name in TRAINING_PLOTS}
    plot_loss_curves(ranking, paths["loss_curves"], label=label)
    return list(paths.values())


def make_plots(predictions_path: str, metrics_path: str, out_dir: str, dataset: str,
               label: Label | None = None, names=PLOTS) -> list[str]:
    """The physics plots ``names`` (all of them, or some, as for an evaluation sample): PNG and PDF, one file per
    plot in ``out_dir``, with the ``label``."""
    unknown = sorted(set(names) - set(PLOTS))
    if unknown:
        raise ValueError(f"unknown plots {unknown}; choose among {', '.join(PLOTS)}")
    from .evaluate import read_responses

    label = label or Label.default()
    _style()
    metrics = read_json(metrics_path, "metrics file (JSON)", "rerun the evaluate rule",
                        keys=("methods", "pt_edges", "eta_bins", "summary", "views", "closure"))
    metrics["dataset"] = dataset
    methods = list(metrics["methods"])
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.png") for name in PLOTS if name in names}
    if "response_distributions" in paths:
        truth, responses = read_responses(predictions_path)
        plot_response_distributions(truth, {m: responses[m] for m in methods}, metrics,
                                    paths["response_distributions"], label=label)
    for name, plot in (("closure", plot_closure), ("median_response", plot_median_response),
                       ("flavour_difference", plot_flavour_difference), ("response_vs_eta", plot_response_vs_eta),
                       ("resolution", plot_resolution), ("pileup_response", plot_pileup_response),
                       ("pileup_resolution", plot_pileup_resolution), ("flavour_resolution", plot_flavour_resolution),
                       ("tail_fraction", plot_tail_fraction), ("resolution_coverage", plot_resolution_coverage)):
        if name in paths:
            plot(metrics, methods, paths[name], label=label)
    return list(paths.values())


def _label_arguments(p) -> None:
    """The label of the plots (config key ``plots``)."""
    from .command import config_default

    p.add_argument("--energy", type=float, default=config_default("plots.energy_tev"),
                   help="centre-of-mass energy in TeV, for the label")
    p.add_argument("--experiment", default=config_default("plots.experiment"),
                   help="the experiment's name, in bold (only for its own samples; empty: none)")
    p.add_argument("--label", default=config_default("plots.label"),
                   help='after the experiment\'s name, e.g. "Simulation" or "Simulation Private Work"')


def _plots_arguments(p) -> None:
    p.add_argument("--predictions", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--dataset", default="")
    p.add_argument("--plots", nargs="+", choices=PLOTS, default=list(PLOTS), metavar="NAME",
                   help=f"only these plots (default: all of them: {', '.join(PLOTS)})")
    _label_arguments(p)


def _plots(a) -> None:
    import logging

    for path in make_plots(a.predictions, a.metrics, a.outdir, a.dataset, Label(a.energy, a.experiment, a.label),
                           a.plots):
        logging.getLogger(__name__).info("wrote %s", path)


def _training_plots_arguments(p) -> None:
    p.add_argument("--best", required=True, help="best.json from select-model")
    p.add_argument("--outdir", required=True)
    _label_arguments(p)


def _training_plots(a) -> None:
    import logging

    for path in make_training_plots(a.best, a.outdir, Label(a.energy, a.experiment, a.label)):
        logging.getLogger(__name__).info("wrote %s", path)


COMMANDS = {"plots": Command(_plots_arguments, _plots, reads=("predictions", "metrics"), outputs=("outdir",)),
            "training-plots": Command(_training_plots_arguments, _training_plots, reads=("best",),
                                      outputs=("outdir",))}
