"""Every plot is written, at a size readable at page width, from a predictions file of the standard correction, a
jet-level DNN and a GNN with a residual correction (and from an older file without pileup or the network alone)."""

import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gnnjec import evaluate, plotting

CFG = {"pt_min": 20, "pt_max": 3000, "n_pt_bins": 12, "eta_bins": [[0, 1.3], [1.3, 2.5], [2.5, 5.0]],
       "headline_eta_bins": [[0, 2.5]], "n_bootstrap": 5, "summary_min_pt": 30, "seed": 0}


def _predictions(path, n=6000, pileup=True, network=True, seed=0):
    """A predictions file as evaluate writes it: responses of width 0.15 (standard), 0.12 (DNN), 0.10 (PFN), the
    PFN's network 2 % low before its residual correction, wider with rho."""
    rng = np.random.default_rng(seed)
    pt_gen = np.exp(rng.uniform(np.log(20), np.log(1500), n))
    eta_gen = rng.uniform(-4.5, 4.5, n)
    rho = rng.uniform(5, 60, n)
    hadron = rng.choice([0, 4, 5], n, p=[0.7, 0.15, 0.15])
    parton = rng.choice([1, 2, 3, 21], n)
    flavour = np.where(hadron == 5, 0, np.where(hadron == 4, 1, np.where(parton == 21, 3, 2)))
    noise = rng.normal(0, 1, (3, n)) * (1 + rho / 60)
    columns = {"pt_gen": pt_gen, "eta_gen": eta_gen, "flavour": flavour, "hadron_flavour": hadron,
               "parton_flavour": parton, "pt_raw": 0.8 * pt_gen, "pt_std": pt_gen * (1 + 0.15 * noise[0]),
               "target": np.full(n, np.log(1.25))}
    if pileup:
        columns |= {"rho": rho, "npv": np.round(rho * 0.7).astype(np.int64)}
    columns |= {"pt_corr_pfn": pt_gen * (1 + 0.10 * noise[1]), "pt_corr_dnn": pt_gen * (1 + 0.12 * noise[2])}
    if network:
        columns["pt_network_pfn"] = 0.98 * columns["pt_corr_pfn"]
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), path)


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    predictions, metrics = tmp / "predictions.parquet", tmp / "metrics.json"
    _predictions(predictions)
    summary = evaluate.compute_metrics(str(predictions), str(metrics), CFG)
    return tmp, predictions, metrics, summary


def test_every_plot_is_written_at_page_width(evaluated):
    tmp, predictions, metrics, _ = evaluated
    paths = plotting.make_plots(str(predictions), str(metrics), str(tmp / "plots"), "test sample",
                                plotting.Label(13.6, "", "Simulation"))
    assert [p.rsplit("/", 1)[1][:-4] for p in paths] == list(plotting.PLOTS)
    for p in paths:
        width, height = _png_size(p)
        assert 700 <= width <= 1800 and height <= 2000, (p, width, height)  # readable at page width
        assert open(p.replace(".png", ".pdf"), "rb").read(4) == b"%PDF"


def test_metrics_order_standard_dnn_gnn_and_summary_has_tails_and_closure(evaluated):
    _, _, metrics, summary = evaluated
    m = json.loads(metrics.read_text())
    assert list(m["methods"]) == ["standard", "dnn", "pfn"]  # the jet-level baseline before the GNN
    assert list(m["closure"]["network"]) == ["pfn"]
    assert m["summary_min_pt"] == 30 and set(m["views"]["pileup"]) == {"rho", "npv"}
    assert "Tails" in summary and "pfn, network alone" in summary
    # the network alone is 2 % low where the final correction closes
    barrel = m["closure"]["summary"]
    assert barrel["network"]["pfn"]["gen"]["deviation"] > barrel["methods"]["pfn"]["gen"]["deviation"]


def test_plots_of_an_older_predictions_file_without_pileup_or_network(tmp_path):
    """A predictions file from before the rho, npv and network columns still gets every plot (the pileup plots say
    what is missing) and closure without the network alone."""
    predictions, metrics = tmp_path / "p.parquet", tmp_path / "m.json"
    _predictions(predictions, n=3000, pileup=False, network=False)
    evaluate.compute_metrics(str(predictions), str(metrics), CFG)
    m = json.loads(metrics.read_text())
    assert m["views"]["pileup"] == {} and m["closure"]["network"] == {}
    paths = plotting.make_plots(str(predictions), str(metrics), str(tmp_path / "plots"), "old sample")
    assert len(paths) == len(plotting.PLOTS) and all(_png_size(p)[0] <= 1800 for p in paths)


def test_training_plots(tmp_path):
    ranking = []
    for i in range(10):  # more points than the loss curves colour
        history = tmp_path / f"h{i}.json"
        history.write_text(json.dumps({"epochs": [{"epoch": e, "val_loss": 0.1 - 0.001 * e + 0.0005 * i,
                                                   "train_loss": 0.1 - 0.002 * e} for e in range(1, 6)]}))
        ranking.append({"name": f"pfn-{i:08x}", "history": str(history), "best_val_loss": 0.095 + 0.0005 * i,
                        "hparams": {"model": "pfn", "lr": 0.001 * (i + 1)}})
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"ranking": ranking}))
    paths = plotting.make_training_plots(str(best), str(tmp_path / "plots"))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["loss_curves.png"]
    assert _png_size(paths[0])[0] <= 1800


def test_off_scale_points_are_marked_on_the_frame():
    """A point beyond the automatic range is an open triangle on the frame with its value, not a point lost."""
    import matplotlib.pyplot as plt

    plotting._style()
    fig, ax = plt.subplots()
    try:
        y = np.array([1.0, 1.01, 0.99, 1.005, 0.80])
        series = [plotting.Series(np.arange(5.0), y, np.zeros(5), {"color": "red", "marker": "s"}, "a")]
        plotting._draw(ax, series)
        plotting._set_y(ax, series, include=(0.98, 1.02), max_span=0.1)
        plotting._mark_off_scale(ax, series)
        lo, hi = ax.get_ylim()
        assert lo > 0.80 and lo < 0.98 and hi > 1.02  # 0.80 left out, the others and 1 +- 2 % in view
        assert [t.get_text() for t in ax.texts] == ["0.800"]
        arrows = [line for line in ax.lines if line.get_marker() == "v"]
        assert len(arrows) == 1 and arrows[0].get_ydata()[0] == pytest.approx(lo + 0.035 * (hi - lo))
    finally:
        plt.close(fig)


def test_the_pdf_and_the_png_of_a_plot_carry_the_same_provenance(tmp_path, monkeypatch):
    """provenance.read reads every output kind the README lists, the plots' PDFs too (their /Subject), escapes and
    all: a parameter with parentheses and a backslash survives PDF's string syntax."""
    import matplotlib.pyplot as plt

    from gnnjec import plotting, provenance

    monkeypatch.setattr(provenance, "_current", None)  # restored after the test: other tests see no stage's record
    record = provenance.begin("plots", {"dataset": "Sample (v2) \\ private"}, [])
    fig = plt.figure()
    fig.gca().plot([1, 2], [3, 4])
    plotting._save(fig, str(tmp_path / "p.png"))
    assert provenance.read(tmp_path / "p.pdf") == provenance.read(tmp_path / "p.png") == record
