"""Export, ONNX check, evaluation and plots on a model trained on generated clouds."""

import json
import subprocess
import sys

import awkward as ak
import numpy as np
import onnx
import pytest

from gnnjec import evaluate, export, plotting
from gnnjec.errors import CheckFailed

EVAL_CFG = {"pt_min": 20, "pt_max": 3000, "n_pt_bins": 8, "eta_bins": [[0, 1.3], [1.3, 2.5], [2.5, 5.0]],
            "headline_eta_bins": [[0, 2.5], [2.5, 5.0]], "n_bootstrap": 10, "summary_min_pt": 30}


def test_onnx_has_dynamic_axes_and_feature_metadata(exported_model, trained_model):
    proto = onnx.load(exported_model)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["inputs"]) == trained_model[2]["inputs"]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert dims["jet"][0] == "batch" and dims["charged"][:2] == ["batch", "n_charged"]


def test_check_passes_and_reports_the_difference(exported_model, trained_model, synthetic_clouds):
    result = export.check_onnx(trained_model[0], exported_model, synthetic_clouds["val"], n_jets=300)
    assert result["passed"] and result["max_abs_diff"] < 1e-4
    assert set(result["max_abs_diff_by_batch_size"]) == {1, 3, 64, 1000}


def test_check_fails_loudly_on_a_wrong_model(tmp_path, trained_model, synthetic_clouds):
    # an ONNX file from a differently initialised network must fail the check
    import torch

    from gnnjec.checkpoint import load_model

    model, ckpt = load_model(trained_model[0])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    other = tmp_path / "other.pt"
    torch.save({**ckpt, "state_dict": model.state_dict()}, other)
    wrong = tmp_path / "wrong.onnx"
    export.export_onnx(str(other), str(wrong))
    with pytest.raises(CheckFailed, match="differs from torch"):
        export.check_onnx(trained_model[0], str(wrong), synthetic_clouds["val"], n_jets=100)


def test_evaluate_and_plot(exported_model, synthetic_clouds, tmp_path):
    """Two models evaluated side by side (here the same network under two family names, so their
    numbers must agree), the metrics with errors, the CSV table and every plot."""
    pred_path, metrics_path = tmp_path / "pred.parquet", tmp_path / "metrics.json"
    info = evaluate.run_inference({"pfn": exported_model, "pfn-lite": exported_model}, synthetic_clouds["test"],
                                  str(pred_path), threads=1)
    pred = ak.from_parquet(pred_path)
    test = ak.from_parquet(synthetic_clouds["test"], columns=["pt_gen", "pt_raw"])
    assert len(pred) == len(test) == info["pfn"]["jets"] and info["pfn"]["jets_per_second"] > 0
    np.testing.assert_allclose(np.asarray(pred.pt_corr_pfn),
                               np.asarray(pred.pt_raw) * np.exp(np.asarray(pred.prediction_pfn)), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(pred["pt_corr_pfn-lite"]), np.asarray(pred.pt_corr_pfn))
    csv_path = tmp_path / "metrics.csv"
    table = evaluate.compute_metrics(str(pred_path), str(metrics_path), EVAL_CFG,
                                     {k: v["point"] for k, v in info.items()}, str(csv_path))

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    m = json.loads(metrics_path.read_text(), parse_constant=refuse)
    assert list(m["methods"]) == ["standard", "pfn", "pfn-lite"] and m["models"] == {"pfn": "pfn", "pfn-lite": "pfn"}
    def values(method):  # the numbers, not their bootstrap errors (each method draws its own resamples)
        return [(b["all"] or {}).get("median") for region in m["methods"][method] for b in region["bins"]]

    assert values("pfn") == values("pfn-lite") and values("pfn") != values("standard")
    # every populated bin has bootstrap errors, the flavours' medians and the spread included
    for b in m["methods"]["pfn"][0]["bins"]:
        for key in ("all", "b", "c", "uds", "g"):
            if b[key]:
                assert b[key]["median_err"] > 0 and (key != "all" or b[key]["resolution_err"] > 0)
        if b["flavour_spread"] is not None:
            assert b["flavour_spread_err"] > 0
    # the CSV holds the same numbers, one row per method, region and gen-pt bin
    import csv

    rows = list(csv.DictReader(open(csv_path)))
    n_bins = len(m["pt_edges"]) - 1
    assert len(rows) == 3 * len(m["eta_bins"]) * n_bins
    first = m["methods"]["standard"][0]["bins"][0]
    row = rows[0]
    assert row["method"] == "standard" and float(row["pt_low"]) == first["pt_low"]
    assert (row["median"] == "") == (first["all"] is None)
    if first["all"]:
        assert float(row["median"]) == pytest.approx(first["all"]["median"])
    # the summary: each eta bin, then the headline regions not among them, each number with its error
    assert list(m["summary"]) == ["0<|eta|<1.3", "1.3<|eta|<2.5", "2.5<|eta|<5", "0<|eta|<2.5"]
    central = m["summary"]["0<|eta|<2.5"]["pfn"]
    assert central["resolution_gain_mean_err"] > 0 and central["median_response_err"] > 0
    assert central["resolution_gain_mean"] == m["summary"]["0<|eta|<2.5"]["pfn-lite"]["resolution_gain_mean"]
    assert "pfn-lite" in table and "standard" in table and "±" in table
    # even this tiny model must correct jets: median response near 1 above 30 GeV in the barrel
    assert abs(central["median_response"] - 1) < 0.05
    paths = plotting.make_plots(str(pred_path), str(metrics_path), str(tmp_path / "plots"), "test sample")
    assert len(paths) == len(plotting.PLOTS) == 11
    for p in paths:
        data = open(p, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        assert open(p.replace(".png", ".pdf"), "rb").read(4) == b"%PDF"


def test_label_sits_over_the_axes_with_the_configured_experiment_text_and_energy():
    import matplotlib.pyplot as plt

    plotting._style()
    fig, ax = plt.subplots()
    try:
        # what plots.energy_tev, plots.experiment and plots.label set
        plotting._label(ax, plotting.Label(13.0, "CMS", "Simulation Private Work"))
        fig.canvas.draw()
        texts = {t.get_text(): t.get_window_extent() for t in ax.texts}
        assert set(texts) == {"CMS", " Simulation Private Work", "(13 TeV)"}
        frame, cms, words, energy = (ax.get_window_extent(), texts["CMS"], texts[" Simulation Private Work"],
                                     texts["(13 TeV)"])
        assert cms.y0 >= frame.y1 - 1 and energy.y0 >= frame.y1 - 1  # above the axes, not over the data
        assert abs(cms.x0 - frame.x0) < 2 and abs(energy.x1 - frame.x1) < 2  # left and right aligned
        assert abs(words.x0 - cms.x1) < 2 and words.x1 < energy.x0  # the words follow 'CMS', clear of the energy
    finally:
        plt.close(fig)


def test_the_default_label_names_no_experiment():
    """The demo is no experiment's simulation: by default the label is a plain "Simulation", no "CMS"."""
    import matplotlib.pyplot as plt

    plotting._style()
    fig, ax = plt.subplots()
    ax.set_title("a panel's title")
    try:
        plotting._label(ax, plotting.Label.default())
        fig.canvas.draw()
        texts = {t.get_text(): t.get_window_extent() for t in ax.texts}
        assert set(texts) == {"Simulation", "(13.6 TeV)"}
        assert texts["Simulation"].y0 >= ax.title.get_window_extent().y1 - 1  # over the panel's title
    finally:
        plt.close(fig)


def test_evaluation_and_inference_do_not_import_torch():
    """ONNX-only code (evaluation, plots, inference) runs where torch is not installed."""
    code = ("import sys; import gnnjec.evaluate, gnnjec.inference, gnnjec.plotting, gnnjec.metrics; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_graph_networks_are_measured_against_the_jet_level_baseline(exported_model, synthetic_clouds, tmp_path):
    """With the baseline family among the models, the summary adds each graph network's gain over it, on the same
    jets and resamples: here the same network under both names, so exactly zero, with zero error."""
    from gnnjec.spec import BASELINE

    pred_path, metrics_path = tmp_path / "pred.parquet", tmp_path / "metrics.json"
    evaluate.run_inference({BASELINE: exported_model, "pfn": exported_model}, synthetic_clouds["test"], str(pred_path))
    text = evaluate.compute_metrics(str(pred_path), str(metrics_path), EVAL_CFG)
    versus = json.loads(metrics_path.read_text())["versus_baseline"]
    assert versus["baseline"] == BASELINE and list(versus["summary"]) == ["0<|eta|<2.5", "2.5<|eta|<5"]
    pfn = versus["summary"]["0<|eta|<2.5"]["pfn"]
    assert pfn["resolution_gain_mean"] == 0 and pfn["resolution_gain_mean_err"] == 0
    assert pfn["thesis_resolution_gain"] == 0 and pfn["thesis_resolution_gain_err"] == 0
    assert f"Against the jet-level baseline '{BASELINE}'" in text
    assert list(json.loads(metrics_path.read_text())["methods"]) == ["standard", BASELINE, "pfn"]


def test_several_clouds_files_are_evaluated_as_one_with_all_their_jets(exported_model, synthetic_clouds, tmp_path):
    """An evaluation-only sample's files (gnnjec evaluate --clouds A B): every jet of each, whatever its split, in
    the order of the files; the summary of such a sample adds the closure bin by bin and the flavour response."""
    import pyarrow.parquet as pq

    one, both = tmp_path / "one.parquet", tmp_path / "both.parquet"
    evaluate.run_inference({"pfn": exported_model}, synthetic_clouds["test"], str(one))
    info = evaluate.run_inference({"pfn": exported_model}, [synthetic_clouds["test"], synthetic_clouds["all"]],
                                  str(both))
    a, b = pq.read_table(one), pq.read_table(both)
    assert b.num_rows == a.num_rows + pq.read_metadata(synthetic_clouds["all"]).num_rows == info["pfn"]["jets"]
    assert b.slice(0, a.num_rows).equals(a)
    summary = evaluate.compute_metrics(str(both), str(tmp_path / "metrics.json"), EVAL_CFG, sample="more")
    assert summary.startswith(f"Evaluation sample 'more': all its {b.num_rows} jets")
    assert "Closure bin by bin" in summary and "Flavour response" in summary
    assert json.loads((tmp_path / "metrics.json").read_text())["sample"] == "more"


def test_cli_evaluate_refuses_missing_clouds(exported_model, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "evaluate", "--onnx", f"pfn={exported_model}", "--clouds",
                           str(tmp_path / "missing.parquet"), "--predictions", str(tmp_path / "p.parquet"),
                           "--metrics", str(tmp_path / "m.json"), "--summary", str(tmp_path / "s.txt"),
                           "--config", json.dumps(EVAL_CFG)], capture_output=True, text=True)
    assert proc.returncode == 2 and "missing.parquet: no such clouds file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("onnx", ["missing.onnx", "junk.onnx"])
def test_cli_evaluate_refuses_a_missing_or_broken_model(synthetic_clouds, tmp_path, onnx):
    (tmp_path / "junk.onnx").write_text("x")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "evaluate", "--onnx", f"pfn={tmp_path / onnx}", "--clouds",
                           synthetic_clouds["test"], "--predictions", str(out / "p.parquet"), "--metrics",
                           str(out / "m.json"), "--summary", str(out / "s.txt"), "--config", json.dumps(EVAL_CFG)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and onnx in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_batching_by_length_changes_no_prediction(exported_model, synthetic_clouds):
    """predict() batches jets by constituent count; the same jets in file order give the same numbers."""
    import numpy as np

    from gnnjec.dataset import CloudData
    from gnnjec.inference import OnnxRegressor

    regressor = OnnxRegressor(exported_model)
    data = CloudData(synthetic_clouds["test"], regressor.inputs)
    in_file_order = np.concatenate([regressor.predict_batch(data.batch(np.arange(s, min(s + 500, data.n)), 128))
                                    for s in range(0, data.n, 500)])
    np.testing.assert_allclose(regressor.predict(data, batch_size=500), in_file_order, atol=2e-6)
