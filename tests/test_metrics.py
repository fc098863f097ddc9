"""The thesis's metric definitions, checked on distributions whose answers are known."""

import numpy as np
import pytest

from gnnjec import metrics


def test_resolution_is_iqr_over_median():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.1, 200_000)
    assert metrics.resolution(x) == pytest.approx(2 * 0.6745 * 0.1, rel=0.02)
    assert metrics.resolution(2 * x) == pytest.approx(metrics.resolution(x))  # scale-free


def test_flavour_spread_definition():
    assert metrics.flavour_spread([1.0, 1.02, 0.98, 1.0]) == pytest.approx(0.04)
    assert metrics.flavour_spread([1.01, 1.01, 1.01, 1.01]) == 0


def test_binned_metrics_find_the_injected_flavour_shift():
    rng = np.random.default_rng(1)
    n = 40_000
    pt = np.exp(rng.uniform(np.log(20), np.log(1000), n))
    eta = rng.uniform(0, 5, n)
    flavour = rng.integers(0, 4, n)
    good = rng.normal(1.0, 0.05, n)
    biased = good + np.where(flavour == 3, -0.03, 0.0)  # gluons 3 % low
    m = metrics.binned_metrics({"standard": biased, "net": good}, pt, eta, flavour,
                               np.geomspace(20, 1000, 6), [[0, 2.5], [2.5, 5]], n_bootstrap=5)
    bins_std = m["methods"]["standard"][0]["bins"]
    bins_net = m["methods"]["net"][0]["bins"]
    for b_std, b_net in zip(bins_std, bins_net):
        # medians: 1, 1, 1, 0.97 -> spread = 3 * 0.0075 + 0.0225 = 0.045
        assert b_std["flavour_spread"] == pytest.approx(0.045, abs=0.01)
        assert b_net["flavour_spread"] < 0.015
        assert b_std["g"]["median"] == pytest.approx(0.97, abs=0.005)
        assert b_net["all"]["resolution_err"] > 0
    summary = metrics.summarize({"standard": biased, "net": good}, m, pt, eta, flavour, min_pt=30)
    region = summary["0<|eta|<2.5"]
    assert region["net"]["flavour_spread_change"] < -0.6
    assert region["net"]["resolution_gain_mean"] > 0
    text = metrics.format_summary(summary)
    assert "0<|eta|<2.5" in text and "net" in text


def test_sparse_bins_are_null():
    m = metrics.binned_metrics({"standard": np.ones(5)}, np.full(5, 50.0), np.zeros(5), np.zeros(5, int),
                               np.array([20.0, 100.0]), [[0, 2.5]], n_bootstrap=0)
    assert m["methods"]["standard"][0]["bins"][0]["all"] is None


def _grid_jets(bins, n=2001):
    """Jets whose responses in each (pt, width) bin are 1 + width * u, u evenly spaced in [-1, 1]:
    quartiles at -0.5 and 0.5 exactly, so IQR / median = width."""
    u = np.linspace(-1.0, 1.0, n)
    pt = np.concatenate([np.full(n, p) for p, _, _ in bins])
    standard = np.concatenate([1 + w * u for _, w, _ in bins])
    net = np.concatenate([1 + w * u for _, _, w in bins])
    return pt, standard, net


def test_summary_gain_is_the_plain_mean_over_bins_above_30_gev():
    # (pt, standard width, network width): 25 GeV is below min_pt and must not count (gain -100 %)
    pt, standard, net = _grid_jets([(25.0, 0.1, 0.2), (50.0, 0.2, 0.1), (100.0, 0.1, 0.1), (200.0, 0.08, 0.06)])
    eta, flavour = np.zeros(len(pt)), np.arange(len(pt)) % 4
    edges = np.array([20.0, 30.0, 70.0, 150.0, 300.0])
    m = metrics.binned_metrics({"standard": standard, "net": net}, pt, eta, flavour, edges, [[0, 2.5]], n_bootstrap=0)
    assert [b["all"]["resolution"] for b in m["methods"]["net"][0]["bins"]] == pytest.approx([0.2, 0.1, 0.1, 0.06])
    summary = metrics.summarize({"standard": standard, "net": net}, m, pt, eta, flavour, min_pt=30)["0<|eta|<2.5"]
    assert summary["net"]["resolution_gain_mean"] == pytest.approx((0.5 + 0.0 + 0.25) / 3)
    assert (summary["net"]["bins_better"], summary["net"]["bins_compared"]) == (2, 3)
    assert summary["standard"]["resolution_gain_mean"] == 0.0
    assert summary["net"]["n_jets"] == 3 * 2001


def test_summary_spread_uses_the_flavour_medians_of_all_jets_above_30_gev():
    n = 1001
    centres = {0: 0.95, 1: 0.98, 2: 1.02, 3: 0.99}                         # b, c, uds, g
    flavour = np.repeat(np.arange(4), n)
    u = np.tile(np.linspace(-1, 1, n), 4)
    standard = np.array([centres[f] for f in flavour]) + 0.01 * u
    net = 1.0 + 0.01 * u
    pt = np.full(4 * n, 60.0)
    pt[::10] = 25.0                                                          # below 30 GeV: ignored
    standard[::10] = 5.0                                                     # would move the medians if counted
    eta = np.zeros(4 * n)
    m = metrics.binned_metrics({"standard": standard, "net": net}, pt, eta, flavour, np.array([20.0, 30.0, 100.0]),
                               [[0, 2.5]], n_bootstrap=0)
    summary = metrics.summarize({"standard": standard, "net": net}, m, pt, eta, flavour, min_pt=30)["0<|eta|<2.5"]
    medians = summary["standard"]["flavour_medians"]
    assert [medians[f] for f in ("b", "c", "uds", "g")] == pytest.approx([0.95, 0.98, 1.02, 0.99], abs=1e-4)
    # mean of the medians 0.985: |-0.035| + |-0.005| + |0.035| + |0.005| = 0.08
    assert summary["standard"]["flavour_spread"] == pytest.approx(0.08, abs=2e-4)
    assert summary["net"]["flavour_spread"] == pytest.approx(0.0, abs=2e-4)
    assert summary["net"]["flavour_spread_change"] == pytest.approx(-1.0, abs=3e-3)


def test_headline_errors_script_reproduces_the_summary_and_its_spread(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import awkward as ak

    rng = np.random.default_rng(3)
    n = 20_000
    pt_gen = np.exp(rng.uniform(np.log(30), np.log(1000), n))
    flavour = rng.integers(0, 4, n)
    standard = rng.normal(1.0, 0.10, n) + np.where(flavour == 3, -0.02, 0.0)
    network = 1.0 + (standard - np.where(flavour == 3, -0.02, 0.0) - 1.0) * 0.8   # 20 % narrower, no flavour shift
    table = {"pt_gen": pt_gen, "eta_gen": rng.uniform(-2.4, 2.4, n), "flavour": flavour.astype(np.int8),
             "pt_std": standard * pt_gen, "pt_corr": network * pt_gen}
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"p{seed}.parquet"
        ak.to_parquet(ak.Array(table), path)
        paths.append(str(path))
    script = Path(__file__).resolve().parents[1] / "scripts" / "headline_errors.py"
    out = subprocess.run([sys.executable, str(script), *paths, "--labels", "a", "b", "--resamples", "20",
                          "--eta-bins", "0", "2.5"], capture_output=True, text=True, check=True).stdout
    import re

    def numbers(label):  # gain, its error, spread change, its error
        line = next(x for x in out.splitlines() if x.startswith(label))
        return [float(v) for v in re.findall(r"[+-]?\d+(?:\.\d+)?", line.split("0<|eta|<2.5")[1])]

    gain, gain_err, spread, _ = numbers("a ")
    responses = {"standard": standard, "net": network}
    abs_eta = np.abs(table["eta_gen"])
    edges = np.geomspace(20, 3000, 20)
    m = metrics.binned_metrics(responses, pt_gen, abs_eta, flavour, edges, [[0, 2.5]], n_bootstrap=0)
    summary = metrics.summarize(responses, m, pt_gen, abs_eta, flavour)["0<|eta|<2.5"]["net"]
    assert gain == pytest.approx(100 * summary["resolution_gain_mean"], abs=0.05)   # the workflow's own summary
    assert spread == pytest.approx(100 * summary["flavour_spread_change"], abs=0.5)
    assert 19 < gain < 23 and spread < -80                  # 20 % narrower, the gluon shift gone
    assert gain_err > 0                                       # a bootstrap error is printed
    mean = numbers("mean")
    assert mean[0] == pytest.approx(gain) and mean[1] == pytest.approx(0.0, abs=0.05)  # identical files
