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
