"""The residual correction: the numerical inversion (known answers), the grafted ONNX nodes, the stage."""

import json

import numpy as np
import onnx
import pytest

from gnnjec import residual
from gnnjec.command import config_default
from gnnjec.errors import ConfigError
from gnnjec.inference import OnnxRegressor

CFG = {"enabled": True, "eta_edges": [0.0, 1.3, 2.5, 5.0], "pt_range": [20, 3000], "n_pt_bins": 19, "min_jets": 100}


def _jets(n, seed, response):
    """Jets on a falling spectrum (pt_gen ~ pt^-4 above 15 GeV) with pt_corr = response(pt_gen, |eta|) * pt_gen
    smeared by 8 % (log-normal), as a network's output would be."""
    rng = np.random.default_rng(seed)
    pt_gen = 15.0 * (1 - rng.random(n)) ** (-1 / 3)
    abs_eta = rng.uniform(0, 5, n)
    pt_corr = response(pt_gen, abs_eta) * pt_gen * np.exp(rng.normal(0, 0.08, n))
    return pt_corr, pt_gen, abs_eta


def _low(pt_gen, abs_eta):
    """2-4 % low at low pt, closing at high pt; 3 % lower again beyond |eta| 2.5."""
    return (1 - 0.04 * (30 / np.maximum(pt_gen, 30)) ** 0.5) * np.where(abs_eta > 2.5, 0.97, 1.0)


def _gen_closure(pt_corr, pt_gen, abs_eta, edges, eta):
    sel = (abs_eta >= eta[0]) & (abs_eta < eta[1])
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = sel & (pt_gen >= lo) & (pt_gen < hi)
        if s.sum() >= 2000:
            out.append(np.median(pt_corr[s] / pt_gen[s]))
    return np.asarray(out)


def test_inversion_closes_a_known_response_in_gen_pt_bins():
    # derived on one sample and applied to another: a response 2-7 % low closes to 0.4 % in every populated bin
    table = residual.derive(*_jets(400_000, 1, _low), CFG)
    pt_corr, pt_gen, abs_eta = _jets(400_000, 2, _low)
    reco_eta = abs_eta  # the toy's reco |eta| is the gen one
    after = pt_corr * np.exp(residual.evaluate_table(table, np.log(pt_corr), reco_eta))
    edges = residual.pt_edges(CFG)
    for eta in ([0, 1.3], [1.3, 2.5], [2.5, 5.0]):
        before_dev = np.abs(_gen_closure(pt_corr, pt_gen, abs_eta, edges, eta) - 1)
        after_dev = np.abs(_gen_closure(after, pt_gen, abs_eta, edges, eta) - 1)
        assert before_dev.max() > 0.02 and len(after_dev) >= 4
        assert after_dev.max() < 0.004, (eta, after_dev)
    # the correction itself is the inverse of the response where it is known: 1/0.97/(1 - 0.04 sqrt(30/50))
    # at pt_corr about 50 GeV and |eta| 4 (within the medians' precision and the bias of a bin's typical pt)
    c = np.exp(residual.evaluate_table(table, np.log([50 * _low(50, 4.0)]), [4.0]))[0]
    assert c == pytest.approx(1 / _low(50, 4.0), rel=3e-3)


def test_an_unbiased_network_gets_no_correction_and_empty_bins_none():
    table = residual.derive(*_jets(400_000, 3, lambda pt, eta: np.ones_like(pt)), CFG)
    populated = [np.asarray(p["log_correction"])[np.asarray(p["jets"]) >= 2000] for p in table["inversion_points"]]
    assert all(len(p) >= 4 for p in populated)
    assert max(np.abs(p).max() for p in populated) < 0.005
    # too few jets anywhere: no points, and a zero correction rather than an invented one
    empty = residual.derive(*_jets(50, 4, _low), CFG)
    assert all(p["log_pt"] == [] for p in empty["inversion_points"])
    assert np.all(np.asarray(empty["log_correction"]) == 0)


def test_the_table_interpolates_in_log_pt_holds_its_ends_and_stops_at_the_last_eta_edge():
    table = {"eta_edges": [0.0, 1.0, 2.0], "log_pt_knots": [np.log(10), np.log(100)],
             "log_correction": [[0.0, np.log(1.1)], [0.2, 0.2]]}
    got = residual.evaluate_table(table, np.log([10, np.sqrt(1000), 100, 5, 1000, 50, 50, 50]),
                                  [0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 2.0, 7.0])
    assert got == pytest.approx([0, np.log(1.1) / 2, np.log(1.1), 0, np.log(1.1), 0.2, 0, 0])


def test_sparse_gen_pt_bins_are_merged_until_each_point_has_min_jets():
    """Known answer: 10 bins over [20, 3000] GeV, 1000 jets in each of the 3 below 100 GeV and 150 in each of the 7
    above: the 3 give a point each; above, 4 bins reach 600 >= 500 jets and the 3 left (450) join them: one point
    of 1050 jets over 100-3000 GeV."""
    cfg = {**CFG, "eta_edges": [0.0, 5.0], "n_pt_bins": 10, "min_jets": 500}
    edges = residual.pt_edges(cfg)
    centres = np.sqrt(edges[:-1] * edges[1:])
    counts = np.where(centres < 100, 1000, 150)
    pt_gen = np.repeat(centres, counts)
    table = residual.derive(pt_gen * 0.95, pt_gen, np.full(len(pt_gen), 1.0), cfg)
    points = table["inversion_points"][0]
    low = int(np.sum(centres < 100))
    assert points["jets"] == [1000] * low + [150 * (len(centres) - low)]
    assert points["gen_pt"][-1] == pytest.approx([edges[low], edges[-1]])
    assert np.allclose(points["log_correction"], -np.log(0.95))


def test_the_grafted_model_applies_the_table_to_the_network(exported_model, synthetic_clouds, tmp_path):
    from gnnjec.dataset import CloudData

    network = OnnxRegressor(exported_model)
    jet = network.inputs["jet"]
    knots = np.log([15.0, 40.0, 200.0])
    table = {"eta_edges": [0.0, 1.3, 5.0], "log_pt_knots": knots.tolist(),
             "log_correction": [[0.05, -0.02, 0.01], [0.1, 0.0, -0.1]]}
    model = tmp_path / "model.onnx"
    residual.graft(exported_model, table, str(model))
    grafted = OnnxRegressor(str(model))
    assert grafted.outputs == ["prediction", residual.NETWORK_OUTPUT]
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(meta["residual"])["log_correction"] == table["log_correction"]
    data = CloudData(synthetic_clouds["test"], network.inputs, truth=("pt_raw",))
    net = network.predict(data)
    assert np.array_equal(grafted.predict(data, output=residual.NETWORK_OUTPUT), net)
    log_pt_corr = data.jet[:, jet.index("log_pt_raw")].astype(np.float64) + net
    expected = residual.evaluate_table(table, log_pt_corr, np.abs(data.jet[:, jet.index("eta")]))
    assert np.abs(grafted.predict(data) - net - expected).max() < 1e-5
    assert len(np.unique(np.round(expected, 4))) > 20  # the test spans the table, not one constant


def test_the_stage_writes_the_model_its_table_and_closure(exported_model, synthetic_clouds, tmp_path):
    cfg = {**{k: config_default(f"residual.{k}") for k in CFG}, "min_jets": 30}
    out = residual.residual_correction(exported_model, synthetic_clouds["val"], cfg, str(tmp_path / "model.onnx"),
                                       str(tmp_path / "residual.json"))
    written = json.loads((tmp_path / "residual.json").read_text())
    assert written["enabled"] and written["check"]["max_abs_diff"] < residual.CHECK_TOLERANCE
    assert "provenance" in written and len(written["log_correction"]) == len(cfg["eta_edges"]) - 1
    before, after = (np.array(out["closure_gen_pt"][k], dtype=float) for k in ("before", "after"))
    assert np.array(out["closure_reco_pt"]["after"], dtype=float).shape == after.shape
    # on the jets it was derived on, the inversion closes every bin it used to within the interpolation
    assert np.nanmax(np.abs(after - 1)) < np.nanmax(np.abs(before - 1)) + 1e-9
    assert OnnxRegressor(str(tmp_path / "model.onnx")).outputs == ["prediction", residual.NETWORK_OUTPUT]
    # switched off: the model is the network, byte for byte
    off = residual.residual_correction(exported_model, synthetic_clouds["val"], {**cfg, "enabled": False},
                                       str(tmp_path / "off.onnx"), str(tmp_path / "off.json"))
    assert off == {"enabled": False}
    assert (tmp_path / "off.onnx").read_bytes() == open(exported_model, "rb").read()


def test_a_model_without_the_jet_inputs_it_reads_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"features\.jet.*log_pt_raw.*residual\.enabled: false"):
        residual._jet_input({"jet": ["eta", "area"]}, ("log_pt_raw", "pt_raw"))
    assert residual._jet_input({"jet": ["area", "pt_raw"]}, ("log_pt_raw", "pt_raw")) == (1, True)
