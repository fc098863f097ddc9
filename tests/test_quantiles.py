"""The per-jet resolution: networks trained with quantiles (hyperparameter ``quantiles``), their pinball loss,
export, residual correction, serving through the analysis API, and the coverage the evaluation reports."""

import json

import numpy as np
import pytest
import torch
from conftest import QUANTILES

from gnnjec import export, residual
from gnnjec.dataset import CloudData
from gnnjec.errors import ConfigError
from gnnjec.evaluate import compute_metrics, run_inference
from gnnjec.hparams import complete
from gnnjec.inference import OnnxRegressor
from gnnjec.metrics import coverage
from gnnjec.models import build_model
from gnnjec.training import PinballLoss


def test_the_pinball_loss_is_the_mae_at_the_median_and_its_minimum_is_the_quantile():
    prediction, target = torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([1.0])
    # r = 1 above every quantile: tau * r, averaged over the three and doubled
    assert PinballLoss((0.16, 0.5, 0.84))(prediction, target).item() == pytest.approx(2 * (0.16 + 0.5 + 0.84) / 3)
    x, y = torch.randn(64, 1), torch.randn(64)
    assert PinballLoss((0.5,))(x, y).item() == pytest.approx(torch.nn.L1Loss()(x[:, 0], y).item(), rel=1e-6)
    # minimised over constants, it finds the sample's quantiles
    sample = torch.from_numpy(np.random.default_rng(1).lognormal(0.0, 0.5, 20_000).astype(np.float32))
    q = torch.zeros(1, 3, requires_grad=True)
    optimiser = torch.optim.Adam([q], lr=0.02)
    for _ in range(1500):
        optimiser.zero_grad()
        PinballLoss((0.16, 0.5, 0.84))(q.expand(len(sample), 3), sample).backward()
        optimiser.step()
    np.testing.assert_allclose(q.detach().numpy()[0], np.quantile(sample.numpy(), [0.16, 0.5, 0.84]), atol=0.02)


def test_the_quantiles_never_cross_and_the_levels_are_checked():
    inputs = {"jet": ["log_pt_raw", "eta"], "charged": ["deta", "dphi", "log_pt"]}
    model = build_model(complete({"model": "dnn", "head_sizes": [8], "quantiles": [0.05, 0.25, 0.5, 0.75, 0.95]}),
                        inputs)
    with torch.no_grad():
        model.head[-1].weight.mul_(50)  # wild outputs: still in order
        out = model(torch.randn(200, 2), torch.randn(200, 5, 3), torch.ones(200, 5))
    assert out.shape == (200, 5) and bool((out.diff(dim=1) >= 0).all())  # softplus may underflow to a tie
    assert torch.equal(model.point(out), out[:, 2])
    for bad in ([0.16, 0.84], [0.5, 0.16], [0.0, 0.5], [0.5, 1.2]):
        with pytest.raises(ConfigError, match="training.defaults.quantiles: .* include 0.5"):
            complete({"quantiles": bad})
    with pytest.raises(ConfigError, match="training.defaults.loss: 'huber' with quantiles"):
        complete({"quantiles": QUANTILES, "loss": "huber"})


def test_points_that_differ_in_quantiles_cannot_be_ranked_against_each_other():
    from gnnjec.config import training_points

    defaults = {"model": "pfn", "quantiles": QUANTILES}
    assert len(training_points({"defaults": defaults, "grid": {"lr": [0.001, 0.002]}})) == 2
    with pytest.raises(ConfigError, match="config key training.grid.quantiles: the points differ in quantiles"):
        training_points({"defaults": defaults, "grid": {"quantiles": [[], QUANTILES]}})


def test_exported_quantiles_agree_with_torch_and_the_residual_moves_them_with_the_prediction(
        quantile_model, synthetic_clouds, tmp_path):
    checkpoint, onnx_path = quantile_model
    check = export.check_onnx(checkpoint, onnx_path, synthetic_clouds["test"], n_jets=500)
    assert check["passed"]
    regressor = OnnxRegressor(onnx_path)
    assert regressor.outputs == ["prediction", "quantiles"] and regressor.quantiles == tuple(QUANTILES)
    data = CloudData(synthetic_clouds["test"], regressor.inputs)
    out = regressor.predict_outputs(data, ("prediction", "quantiles"))
    assert out["quantiles"].shape == (data.n, 3)
    np.testing.assert_array_equal(out["prediction"], out["quantiles"][:, 1])
    assert np.all(np.diff(out["quantiles"], axis=1) > 0)
    table = {"eta_edges": [0.0, 1.3, 5.0], "log_pt_knots": [np.log(15.0), np.log(200.0)],
             "log_correction": [[0.05, -0.02], [0.1, -0.1]]}
    residual.graft(onnx_path, table, str(tmp_path / "grafted.onnx"))
    grafted = OnnxRegressor(str(tmp_path / "grafted.onnx"))
    assert set(grafted.outputs) == {"prediction", "quantiles", residual.NETWORK_OUTPUT, residual.NETWORK_QUANTILES}
    both = grafted.predict_outputs(data, tuple(grafted.outputs))
    shift = both["prediction"] - both[residual.NETWORK_OUTPUT]
    assert np.abs(shift).max() > 0.01
    np.testing.assert_allclose(both["quantiles"] - both[residual.NETWORK_QUANTILES], np.repeat(shift[:, None], 3, 1),
                               atol=1e-6)
    np.testing.assert_allclose(both[residual.NETWORK_QUANTILES], out["quantiles"], atol=1e-6)


def test_the_interval_calibration_is_derived_grafted_and_checked(quantile_model, synthetic_clouds, tmp_path):
    """The residual correction stage calibrates a quantile network's interval on the validation split, per |eta| bin
    and group of gen-pt bins: on those jets each level then holds its share; the grafted ONNX graph computes it."""
    cfg = {"enabled": True, "eta_edges": [0.0, 1.3, 2.5], "pt_range": [20, 3000], "n_pt_bins": 19, "min_jets": 150}
    result = residual.residual_correction(quantile_model[1], synthetic_clouds["val"], cfg, str(tmp_path / "m.onnx"),
                                          str(tmp_path / "table.json"))
    interval = result["interval"]
    assert interval["levels"] == QUANTILES
    scale = np.asarray(interval["scale"])
    assert scale.shape == (2, 19, 3) and np.all(scale[:, :, 1] == 1) and np.all(scale > 0)
    assert result["check"]["max_abs_diff"] < residual.CHECK_TOLERANCE
    after, before = result["interval_coverage"]["after"], result["interval_coverage"]["before"]
    assert abs(after["coverage"] - 0.68) < 0.04  # calibrated on these jets (group by group, interpolated)
    assert abs(after["coverage"] - 0.68) <= abs(before["coverage"] - 0.68) + 0.01
    # the graph: quantiles = prediction + scale * (network quantiles - network prediction); beyond |eta| 2.5, scale 1
    model = OnnxRegressor(str(tmp_path / "m.onnx"))
    data = CloudData(synthetic_clouds["test"], model.inputs)
    out = model.predict_outputs(data, ("prediction", "quantiles", residual.NETWORK_OUTPUT, residual.NETWORK_QUANTILES))
    offsets = out[residual.NETWORK_QUANTILES] - out[residual.NETWORK_OUTPUT][:, None]
    eta = np.abs(data.jet[:, model.inputs["jet"].index("eta")])
    forward = eta >= 2.5
    assert forward.sum() > 10
    np.testing.assert_allclose(out["quantiles"][forward], out["prediction"][forward, None] + offsets[forward],
                               atol=1e-5)
    central = ~forward
    ratio = (out["quantiles"][central] - out["prediction"][central, None]) / offsets[central]
    assert np.allclose(ratio[:, 1][np.isfinite(ratio[:, 1])], 1) or np.all(offsets[central, 1] == 0)
    assert np.all((ratio[:, [0, 2]] > residual.MIN_SCALE - 1e-4) & (ratio[:, [0, 2]] < np.max(scale) + 1e-4))


def test_coverage_is_nominal_for_true_quantiles_and_low_for_narrow_ones():
    rng = np.random.default_rng(3)
    n = 200_000
    pt_gen = np.exp(rng.uniform(np.log(20), np.log(2000), n))
    abs_eta = rng.uniform(0, 2.5, n)
    sigma = 0.1
    pt_corr = pt_gen * np.exp(rng.normal(0, sigma, n))  # the jet's estimate; pt_gen | estimate ~ lognormal
    edges = np.geomspace(20, 2000, 8)
    eta_bins = [[0.0, 1.3], [1.3, 2.5]]
    true = {q: pt_corr * np.exp(z * sigma) for q, z in ((0.16, -0.994), (0.5, 0.0), (0.84, 0.994))}
    c = coverage(pt_gen, abs_eta, pt_corr, true, edges, eta_bins, min_pt=30)
    assert c["nominal"] == pytest.approx(0.68) and c["levels"] == [0.16, 0.5, 0.84]
    assert c["summary"]["coverage"] == pytest.approx(0.68, abs=0.01)
    np.testing.assert_allclose(c["summary"]["below"], [0.16, 0.5, 0.84], atol=0.01)
    assert c["summary"]["gen"]["bins_beyond"] == 0 and c["summary"]["reco"]["bins_beyond"] == 0
    assert all(abs(b["coverage"] - 0.68) < 0.02 for row in c["gen"] for b in row)
    narrow = {q: pt_corr * np.exp(z * sigma / 2) for q, z in ((0.16, -0.994), (0.5, 0.0), (0.84, 0.994))}
    c = coverage(pt_gen, abs_eta, pt_corr, narrow, edges, eta_bins, min_pt=30)
    assert c["summary"]["coverage"] == pytest.approx(0.38, abs=0.02)  # P(|z| < 0.497)
    assert c["summary"]["gen"]["bins_beyond"] == c["summary"]["gen"]["bins"] > 3


def test_evaluation_reports_the_coverage_of_a_quantile_network(quantile_model, exported_model, synthetic_clouds,
                                                               tmp_path):
    cfg = {"pt_min": 20, "pt_max": 3000, "n_pt_bins": 8, "eta_bins": [[0, 1.3], [1.3, 2.5], [2.5, 5.0]],
           "n_bootstrap": 0, "summary_min_pt": 30}
    predictions, metrics_path = tmp_path / "predictions.parquet", tmp_path / "metrics.json"
    run_inference({"pfn": quantile_model[1], "dnn": exported_model}, synthetic_clouds["test"], str(predictions))
    import pyarrow.parquet as pq

    columns = pq.read_schema(predictions).names
    assert {"pt_q16_pfn", "pt_q50_pfn", "pt_q84_pfn"} <= set(columns) and not any("_dnn" in c and "pt_q" in c
                                                                                  for c in columns)
    text = compute_metrics(str(predictions), str(metrics_path), cfg)
    metrics = json.loads(metrics_path.read_text())
    assert list(metrics["coverage"]) == ["pfn"]
    c = metrics["coverage"]["pfn"]
    assert len(c["gen"]) == len(cfg["eta_bins"]) and len(c["gen"][0]) == cfg["n_pt_bins"]
    table = np.asarray(pq.read_table(predictions).to_pandas()[["pt_gen", "pt_q16_pfn", "pt_q84_pfn"]])
    barrel_share = c["summary"]["coverage"]
    assert 0.3 < barrel_share < 0.95  # a few epochs of a tiny network: an interval, if not yet a calibrated one
    assert np.all(table[:, 1] < table[:, 2])
    assert "Per-jet resolution (quantile outputs):\npfn: quantiles 16/50/84 %" in text


def test_the_jet_interface_gives_a_pt_resolution(quantile_model, exported_model, cms_file, tmp_path):
    """Every jet of the real pfnano.root gets its predicted 16-84 % interval in Gaussian sigmas (its width / 1.989),
    in GeV, as the convert stage's clouds and ONNX Runtime give it."""
    import awkward as ak
    from coffea.nanoevents import NanoEventsFactory, PFNanoAODSchema

    from gnnjec import convert
    from gnnjec.analysis import EVERY_JET, JetCorrection

    path = cms_file("pfnano.root")
    events = NanoEventsFactory.from_root({path: "Events"}, schemaclass=PFNanoAODSchema, mode="eager").events()
    jets = JetCorrection(quantile_model[1], threads=1).corrected_jets(events.Jet)
    resolution, pt = np.asarray(ak.flatten(jets.pt_resolution)), np.asarray(ak.flatten(jets.pt))
    assert np.all(resolution > 0) and 0.01 < np.median(resolution / pt) < 0.5
    convert.convert_file(path, str(tmp_path / "clouds.parquet"), EVERY_JET, convert.Split())
    regressor = OnnxRegressor(quantile_model[1])
    data = CloudData(str(tmp_path / "clouds.parquet"), regressor.inputs, truth=("pt_raw",))
    q = regressor.predict_outputs(data, ("quantiles",))["quantiles"]
    expected = data.truth["pt_raw"] * (np.exp(q[:, 2]) - np.exp(q[:, 0])) / 1.9889  # 16-84 %: 2 x 0.99446 sigma
    np.testing.assert_allclose(resolution, expected, rtol=1e-5)
    assert "pt_resolution" not in JetCorrection(exported_model, threads=1).corrected_jets(events.Jet).fields
