"""Physics plots in CMS style (mplhep): response, resolution and flavour dependence."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.ticker import FixedLocator, NullFormatter

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402

from . import hparams, provenance  # noqa: E402
from .command import Command
from .features import FLAVOURS  # noqa: E402
from .files import atomic_output, canonical_json, read_json  # noqa: E402
from .metrics import MIN_JETS, quantiles  # noqa: E402
from .spec import METHOD_LABELS, PLOTS, STANDARD, TRAINING_PLOTS  # noqa: E402

FLAVOUR_STYLE = {"b": ("tab:red", "b"), "c": ("tab:orange", "c"), "uds": ("tab:blue", "uds"), "g": ("tab:green", "g")}
MARKERS = ("o", "s", "^", "v", "D", "P", "X")


def _name(method: str) -> str:
    return METHOD_LABELS.get(method, method)


@dataclass(frozen=True)
class Label:
    """The CMS label of the plots: 'CMS Simulation <text>' and the centre-of-mass energy (config key ``plots``)."""

    energy: float
    text: str

    @classmethod
    def default(cls) -> Label:
        """The configuration's defaults (the schema's ``plots.energy_tev`` and ``plots.cms_text``)."""
        from .schema import schema_default

        return cls(schema_default("plots.energy_tev"), schema_default("plots.cms_text"))

PT_TICKS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def _style() -> None:
    hep.style.use("CMS")


def _label(ax, label: Label) -> None:
    """'CMS Simulation <text>' over the axes' left and the energy over their right, as mplhep's CMS label
    draws them at font size 19; the dataset is named in the legend titles.

    The words after 'CMS' are placed against it when the figure is drawn. mplhep places them by drawing
    the whole figure at each label: on the twelve panels of the response distributions that was most of
    the plots' time."""
    size = 19
    cms = ax.text(0, 1.005, "CMS", transform=ax.transAxes, ha="left", va="bottom", fontsize=size * 1.3,
                  fontweight="bold")
    ax.annotate(f" Simulation {label.text}".rstrip(), xy=(1, 0), xycoords=cms, ha="left", va="bottom",
                fontsize=size, fontstyle="italic")
    ax.text(1, 1.005, f"({label.energy:g} TeV)", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=size / 1.1)


def _log_pt_axis(ax, metrics) -> None:
    """A log gen-pt axis labelled at round numbers (20, 50, 100, 200, ...), not only at powers of ten."""
    ax.set_xscale("log")
    lo, hi = metrics["pt_edges"][0], metrics["pt_edges"][-1]
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator([t for t in PT_TICKS if lo <= t <= hi]))
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(r"$p_T^\mathrm{gen}$ [GeV]")


def _save(fig, path: str) -> None:
    """Write ``path`` (PNG) and a PDF beside it, atomically."""
    for p in (path, str(Path(path).with_suffix(".pdf"))):
        with atomic_output(p) as tmp:
            png = p.endswith(".png")
            metadata = {provenance.KEY: provenance.as_json()} if png else {"Subject": provenance.comment()}
            fig.savefig(tmp, format=Path(p).suffix[1:], dpi=110, bbox_inches="tight", metadata=metadata)
    plt.close(fig)


def _series(metrics, region, method, pick):
    """(x, y, err) over the gen-pt bins of a region; ``pick(bin)`` gives (y, err) or None to skip."""
    x, y, err = [], [], []
    for b in metrics["methods"][method][region]["bins"]:
        value = pick(b)
        if value is not None:
            x.append(np.sqrt(b["pt_low"] * b["pt_high"]))
            y.append(value[0])
            err.append(value[1])
    return np.array(x), np.array(y), np.nan_to_num(np.array(err, dtype=float))


def _note_if_empty(ax, shown: int, text: str) -> None:
    """Say why a panel is empty (a statistics limit, not a failure)."""
    if not shown:
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=15, color="grey")


def _median_of(flavour):
    return lambda b: (b[flavour]["median"], b[flavour].get("median_err")) if b[flavour] else None


def _resolution(b):
    return (b["all"]["resolution"], b["all"]["resolution_err"]) if b["all"] else None


def _spread(b):
    return None if b["flavour_spread"] is None else (b["flavour_spread"], b.get("flavour_spread_err"))


def _region_panels(metrics, height: float):
    """One figure with a panel per |eta| region: the figure and its (axes, region) pairs."""
    n = len(metrics["eta_bins"])
    fig, axes = plt.subplots(1, n, figsize=(9 * n, height), squeeze=False)
    return fig, list(zip(axes[0], range(n)))


def _region_text(metrics, region) -> str:
    lo, hi = metrics["eta_bins"][region]
    return metrics["dataset"] + "\n" + rf"${lo:g} < |\eta^\mathrm{{gen}}| < {hi:g}$"


def plot_response_distributions(truth, responses, metrics, path, pt_ranges=((30, 50), (100, 200), (500, 1000)), *,
                                cms: Label):
    """The response of each method, one panel per |eta| bin (rows) and gen-pt range (columns), with each
    method's median and IQR / median in the legend."""
    eta_bins = metrics["eta_bins"]
    fig, axes = plt.subplots(len(eta_bins), len(pt_ranges), figsize=(9 * len(pt_ranges), 8 * len(eta_bins)),
                             squeeze=False, gridspec_kw={"hspace": 0.32})
    pt_gen, abs_eta = truth["pt_gen"], truth["abs_eta"]
    bins = np.linspace(0.5, 1.5, 51)
    for row, (lo_eta, hi_eta) in enumerate(eta_bins):
        for ax, (lo, hi) in zip(axes[row], pt_ranges):
            sel = (pt_gen >= lo) & (pt_gen < hi) & (abs_eta >= lo_eta) & (abs_eta < hi_eta)
            _note_if_empty(ax, sel.sum() >= MIN_JETS, f"fewer than {MIN_JETS} jets")
            for method, response in responses.items():
                r = response[sel]
                if len(r) < MIN_JETS:
                    continue
                q25, q50, q75 = quantiles(r)
                counts, _ = np.histogram(np.clip(r, bins[0], bins[-1]), bins)
                hep.histplot(counts, bins, ax=ax, density=True, lw=2,
                             label=f"{_name(method)}: median {q50:.3f}, IQR/med. {(q75 - q25) / q50:.3f}")
            ax.set_xlabel(r"Response $p_T^\mathrm{corr} / p_T^\mathrm{gen}$")
            ax.set_ylabel("Jets (normalised)")
            ax.set_xlim(bins[0], bins[-1])
            ax.set_ylim(0, ax.get_ylim()[1] * 1.45)  # room for the legend
            title = (rf"${lo} < p_T^\mathrm{{gen}} < {hi}$ GeV, ${lo_eta:g} < |\eta^\mathrm{{gen}}| < {hi_eta:g}$"
                     f" ({int(sel.sum())} jets)")
            ax.legend(title=title, fontsize=13, title_fontsize=14, loc="upper left")
            _label(ax, cms)
    _save(fig, path)


def plot_median_response(metrics, methods, path, *, cms: Label):
    fig, panels = _region_panels(metrics, height=8)
    for ax, region in panels:
        for method, marker, fill in zip(methods, MARKERS, ("none", *["full"] * 6)):
            for flavour in FLAVOURS:
                x, y, err = _series(metrics, region, method, _median_of(flavour))
                colour, name = FLAVOUR_STYLE[flavour]
                ax.errorbar(x, y, yerr=err, marker=marker, ls="-" if method != STANDARD else ":", color=colour,
                            fillstyle=fill, capsize=0, label=f"{name}, {_name(method)}")
        ax.axhline(1.0, color="grey", lw=1)
        _log_pt_axis(ax, metrics)
        ax.set_ylim(0.90, 1.06)
        ax.set_ylabel("Median response")
        ax.legend(ncol=2, fontsize=13, title=_region_text(metrics, region), title_fontsize=15, loc="lower right")
        _label(ax, cms)
    _save(fig, path)


def plot_closure(metrics, methods, path, *, cms: Label):
    """Median response of all jets vs gen pt, per |eta| range: how well each correction closes."""
    fig, panels = _region_panels(metrics, height=7)
    for ax, region in panels:
        for method, marker in zip(methods, MARKERS):
            x, y, err = _series(metrics, region, method,
                                lambda b: (b["all"]["median"], b["all"]["median_err"]) if b["all"] else None)
            ax.errorbar(x, y, yerr=err, marker=marker, ls="none", label=_name(method))
        ax.axhline(1.0, color="grey", lw=1)
        ax.axhspan(0.99, 1.01, color="grey", alpha=0.15, lw=0)
        _log_pt_axis(ax, metrics)
        ax.set_ylim(0.94, 1.06)
        ax.set_ylabel("Median response (all flavours)")
        ax.legend(title=_region_text(metrics, region) + "\nband: $\\pm$1 %", fontsize=16, title_fontsize=15)
        _label(ax, cms)
    _save(fig, path)


def _difference(minuend: str, subtrahend: str):
    def pick(b):
        if not (b[minuend] and b[subtrahend]):
            return None
        err = np.hypot(b[minuend].get("median_err") or 0.0, b[subtrahend].get("median_err") or 0.0)
        return b[minuend]["median"] - b[subtrahend]["median"], err
    return pick


def plot_flavour_difference(metrics, methods, path, *, cms: Label):
    """g - uds and b - uds median response vs gen pt: the flavour dependence each correction leaves."""
    fig, panels = _region_panels(metrics, height=7)
    for ax, region in panels:
        shown = 0
        for flavour in ("g", "b"):
            colour = FLAVOUR_STYLE[flavour][0]
            for method, marker in zip(methods, MARKERS):
                x, y, err = _series(metrics, region, method, _difference(flavour, "uds"))
                shown += len(x)
                ax.errorbar(x, y, yerr=err, marker=marker, color=colour,
                            fillstyle="none" if method == STANDARD else "full",
                            ls=":" if method == STANDARD else "-", label=f"{flavour} $-$ uds, {_name(method)}")
        _note_if_empty(ax, shown, f"no gen-pt bin with {MIN_JETS} jets of each flavour")
        ax.axhline(0.0, color="grey", lw=1)
        _log_pt_axis(ax, metrics)
        ax.set_ylim(-0.10, 0.06)
        ax.set_ylabel("Difference of median responses")
        ax.legend(title=_region_text(metrics, region), ncol=1, fontsize=14, title_fontsize=15, loc="lower right")
        _label(ax, cms)
    _save(fig, path)


def plot_response_vs_eta(truth, responses, metrics, path, min_pt: float = 30.0, *, cms: Label):
    """Median response vs |eta_gen| for jets above ``min_pt``, with the median's error from its IQR."""
    fig, ax = plt.subplots(figsize=(10, 7))
    pt_gen, abs_eta = truth["pt_gen"], truth["abs_eta"]
    edges = np.array([0, 0.5, 1.0, 1.3, 1.7, 2.0, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0])
    for (method, r), marker in zip(responses.items(), MARKERS):
        x, y, err = [], [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (abs_eta >= lo) & (abs_eta < hi) & (pt_gen > min_pt)
            if sel.sum() >= MIN_JETS:
                q25, q50, q75 = quantiles(r[sel])
                x.append((lo + hi) / 2)
                y.append(q50)
                err.append(1.2533 * (q75 - q25) / 1.349 / np.sqrt(sel.sum()))  # a Gaussian's median error
        ax.errorbar(x, y, yerr=err, marker=marker, ls="none", label=_name(method))
    ax.axhline(1.0, color="grey", lw=1)
    for boundary in (1.3, 2.5, 3.0):  # barrel / endcap with tracking / endcap without / forward
        ax.axvline(boundary, color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 5)
    ax.set_ylim(0.94, 1.06)
    ax.set_xlabel(r"$|\eta^\mathrm{gen}|$")
    ax.set_ylabel("Median response")
    ax.legend(title=metrics["dataset"] + "\n" + rf"$p_T^\mathrm{{gen}} > {min_pt:g}$ GeV", fontsize=16,
              title_fontsize=15)
    _label(ax, cms)
    _save(fig, path)


def plot_resolution(metrics, methods, path, *, cms: Label):
    regions = range(len(metrics["eta_bins"]))
    fig, axes = plt.subplots(2, len(regions), figsize=(9 * len(regions), 9), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}, sharex="col")
    reference = STANDARD
    for col, region in enumerate(regions):
        ax, rax = axes[0][col], axes[1][col]
        xr, yr, er = _series(metrics, region, reference, _resolution)
        shown = []
        for method, marker in zip(methods, MARKERS):
            x, y, err = _series(metrics, region, method, _resolution)
            line = ax.errorbar(x, y, yerr=err, marker=marker, ls="none", label=_name(method))
            common = np.intersect1d(x, xr)
            if method != reference and len(common):
                mine, ref = np.isin(x, common), np.isin(xr, common)
                ratio = y[mine] / yr[ref]
                # errors added in quadrature (the two share their jets: an upper bound)
                ratio_err = ratio * np.hypot(err[mine] / y[mine], er[ref] / yr[ref])
                rax.errorbar(common, ratio, yerr=ratio_err, marker=marker, ls="none", color=line[0].get_color())
                shown += [ratio - ratio_err, ratio + ratio_err]
        _log_pt_axis(ax, metrics)
        ax.set_xlabel("")
        ax.set_ylabel("Resolution (IQR / median)")
        ax.legend(title=_region_text(metrics, region), fontsize=16, title_fontsize=16)
        _label(ax, cms)
        rax.axhline(1.0, color="grey", lw=1)
        rax.set_ylim(*_ratio_range(np.concatenate(shown) if shown else np.ones(1)))
        rax.set_ylabel("Ratio to Std.", fontsize=16)
        _log_pt_axis(rax, metrics)
    _save(fig, path)


def plot_flavour_spread(metrics, methods, path, *, cms: Label):
    fig, panels = _region_panels(metrics, height=7)
    for ax, region in panels:
        shown = 0
        for method, marker in zip(methods, MARKERS):
            x, y, err = _series(metrics, region, method, _spread)
            ax.errorbar(x, y, yerr=err, marker=marker, label=_name(method))
            shown += len(x)
        _note_if_empty(ax, shown, f"no gen-pt bin with {MIN_JETS} jets\nof each of b, c, uds and g")
        _log_pt_axis(ax, metrics)
        ax.set_ylabel("Flavour spread")
        ax.set_ylim(bottom=0)
        ax.legend(title=_region_text(metrics, region) + "\n" + r"$\Sigma_f\,|\tilde R_f - \langle \tilde R \rangle|$",
                  fontsize=16, title_fontsize=16)
        _label(ax, cms)
    _save(fig, path)


def _ratio_range(values: np.ndarray) -> tuple[float, float]:
    """A ratio panel's range: every point and its error bar, with 1 in view and a margin."""
    values = values[np.isfinite(values)]
    lo, hi = min(values.min(initial=1.0), 1.0), max(values.max(initial=1.0), 1.0)
    margin = 0.08 * max(hi - lo, 0.1)
    return lo - margin, hi + margin


def plot_loss_curves(ranking: list[dict], path: str, *, cms: Label) -> None:
    """Training (dashed) and validation (solid) loss per epoch of every point, the best in bold."""
    fig, ax = plt.subplots(figsize=(10, 7))
    varied = [k for k in hparams.varied([r["hparams"] for r in ranking]) if k != "model"]
    for i, point in enumerate(ranking):
        epochs = read_json(point["history"], "training history (JSON)", "rerun the train rule",
                           keys=("epochs",))["epochs"]
        n = [e["epoch"] for e in epochs]
        values = ", ".join(f"{k} {canonical_json(point['hparams'].get(k))}" for k in varied)
        label = (f"{_name(point['hparams']['model'])} {point['name'].rsplit('-', 1)[1]}"
                 + (f": {values}" if values else ""))
        line = ax.plot(n, [e["val_loss"] for e in epochs], lw=3 if i == 0 else 1.2,
                       label=label if i < 8 else None)[0]
        ax.plot(n, [e["train_loss"] for e in epochs], ls="--", lw=1.2, color=line.get_color())
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss (MAE of log response)")
    ax.legend(title="solid: validation, dashed: training", fontsize=13, title_fontsize=13)
    _label(ax, cms)
    _save(fig, path)


def plot_validation_loss(ranking: list[dict], path: str, *, cms: Label) -> None:
    """Best validation loss of every point, ranked (the first is the one exported)."""
    fig, ax = plt.subplots(figsize=(max(10, 0.45 * len(ranking) + 4), 7))
    losses = [p["best_val_loss"] for p in ranking]
    ax.plot(range(1, len(losses) + 1), losses, marker="o", ls="none")
    ax.set_xticks(range(1, len(losses) + 1), [p["name"] for p in ranking], rotation=60, ha="right", fontsize=12)
    ax.set_xlim(0.5, len(losses) + 0.5)
    ax.set_ylabel("Best validation loss")
    _label(ax, cms)
    _save(fig, path)


def make_training_plots(best_path: str, out_dir: str, label: Label | None = None) -> list[str]:
    """Loss curves and the validation loss of every point, from ``select-model``'s best.json."""
    label = label or Label.default()
    _style()
    ranking = read_json(best_path, "model selection (JSON)", "rerun the select_model rule",
                        keys=("ranking",))["ranking"]
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.png") for name in TRAINING_PLOTS}
    plot_loss_curves(ranking, paths["loss_curves"], cms=label)
    plot_validation_loss(ranking, paths["validation_loss"], cms=label)
    return list(paths.values())


def make_plots(predictions_path: str, metrics_path: str, out_dir: str, dataset: str,
               label: Label | None = None) -> list[str]:
    """All physics plots: PNG and PDF, one file per plot in ``out_dir``, with the CMS ``label``."""
    from .evaluate import read_responses

    label = label or Label.default()
    _style()
    metrics = read_json(metrics_path, "metrics file (JSON)", "rerun the evaluate rule",
                        keys=("methods", "pt_edges", "eta_bins"))
    metrics["dataset"] = dataset
    methods = list(metrics["methods"])
    truth, responses = read_responses(predictions_path)
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{name}.png") for name in PLOTS}
    plot_response_distributions(truth, responses, metrics, paths["response_distributions"], cms=label)
    plot_closure(metrics, methods, paths["closure"], cms=label)
    plot_median_response(metrics, methods, paths["median_response"], cms=label)
    plot_flavour_difference(metrics, methods, paths["flavour_difference"], cms=label)
    plot_response_vs_eta(truth, responses, metrics, paths["response_vs_eta"], cms=label)
    plot_resolution(metrics, methods, paths["resolution"], cms=label)
    plot_flavour_spread(metrics, methods, paths["flavour_spread"], cms=label)
    return list(paths.values())


def _label_arguments(p) -> None:
    """The CMS label of the plots (config key ``plots``)."""
    from .command import config_default

    p.add_argument("--energy", type=float, default=config_default("plots.energy_tev"),
                   help="centre-of-mass energy in TeV, for the label")
    p.add_argument("--cms-text", default=config_default("plots.cms_text"), help='text after "CMS Simulation"')


def _plots_arguments(p) -> None:
    p.add_argument("--predictions", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--dataset", default="")
    _label_arguments(p)


def _plots(a) -> None:
    import logging

    for path in make_plots(a.predictions, a.metrics, a.outdir, a.dataset, Label(a.energy, a.cms_text)):
        logging.getLogger(__name__).info("wrote %s", path)


def _training_plots_arguments(p) -> None:
    p.add_argument("--best", required=True, help="best.json from select-model")
    p.add_argument("--outdir", required=True)
    _label_arguments(p)


def _training_plots(a) -> None:
    import logging

    for path in make_training_plots(a.best, a.outdir, Label(a.energy, a.cms_text)):
        logging.getLogger(__name__).info("wrote %s", path)


COMMANDS = {"plots": Command(_plots_arguments, _plots, reads=("predictions", "metrics"), outputs=("outdir",)),
        "training-plots": Command(_training_plots_arguments, _training_plots, reads=("best",), outputs=("outdir",))}
