"""The standard correction's fits on known answers: the L1 offset's parameters and the smoothed L2L3 curve."""

import numpy as np
import pytest

from gnnjec.demo import correction

P0, P1, P2 = -0.8, 0.35, 0.02


def calibration_jets(n, rng, response=lambda pt: 0.85 + 0.02 * np.log(pt)):
    """Jets with an offset area * (P0 + P1 rho + P2 rho log pt) + noise and a known response curve."""
    gen = np.exp(rng.uniform(np.log(15), np.log(2000), n))
    eta = rng.uniform(-1.2, 1.2, n)
    rho, area = rng.uniform(5, 60, n), rng.normal(0.5, 0.02, n)
    true_offset = area * (P0 + rho * (P1 + P2 * np.log(gen)))
    raw = gen * response(gen) * rng.normal(1, 0.1, n) + true_offset
    offset = true_offset + rng.normal(0, 3.0, n)  # the twin's fluctuations: noisy, right on average
    return raw, eta, rho, area, offset, gen


def test_l1_recovers_the_offset_and_l2l3_the_response():
    rng = np.random.default_rng(1)
    corr = correction.derive(*calibration_jets(60_000, rng))
    raw, eta, rho, area, _, gen = calibration_jets(20_000, np.random.default_rng(2))
    # the offset at given rho and pt, within 0.2 GeV where it is 5-20 GeV
    for r, pt in [(10, 20), (40, 20), (40, 500)]:
        expected = 0.5 * (P0 + r * (P1 + P2 * np.log(pt)))
        assert corr.offset(np.array([pt]), np.array([0.3]), np.array([r]), np.array([0.5]))[0] == pytest.approx(
            expected, abs=0.2)
    response = raw * corr.factor(raw, eta, rho, area) / gen
    for lo, hi in [(30, 60), (100, 200), (500, 1500)]:
        sel = (gen >= lo) & (gen < hi)
        assert np.median(response[sel]) == pytest.approx(1.0, abs=0.01)


def test_offset_is_never_negative():
    corr = correction.StandardCorrection(correction.ETA_EDGES, np.tile([-2.0, 0.1, 0.0], (9, 1)), [np.zeros(0)] * 9,
                                         [np.ones(0)] * 9)
    assert corr.l1(np.array([20.0]), np.array([0.0]), np.array([5.0]), np.array([0.5]))[0] == 1.0


def test_smoothing_lies_closer_to_the_truth_than_the_points():
    """Noisy medians of a smooth curve: the fit's degree is chosen by chi2 + 2 parameters and its curve is nearer
    the truth than the points are (the unsmoothed correction jumped by 1-2 % from bin to bin)."""
    rng = np.random.default_rng(3)
    x = np.linspace(np.log(20), np.log(2000), 20)
    truth = 1.25 - 0.05 * x + 0.002 * x**2
    sigma = np.full_like(x, 0.01)
    y = truth + sigma * rng.standard_normal(len(x))
    fitted = correction.smooth(x, y, sigma, x)
    assert np.sqrt(np.mean((fitted - truth) ** 2)) < 0.5 * np.sqrt(np.mean((y - truth) ** 2))
    # fewer than three points: their straight lines; none: nothing
    assert correction.smooth(x[:2], y[:2], sigma[:2], x[:2]) == pytest.approx(y[:2])
    assert len(correction.smooth(x[:0], y[:0], sigma[:0], x[:0])) == 0


def test_json_round_trip():
    corr = correction.derive(*calibration_jets(5000, np.random.default_rng(4)))
    again = correction.StandardCorrection.from_json(corr.to_json())
    pt, eta, rho, area = np.array([25.0, 300.0]), np.array([0.2, 1.1]), np.array([20.0, 40.0]), np.array([0.5, 0.5])
    assert again.factor(pt, eta, rho, area) == pytest.approx(corr.factor(pt, eta, rho, area))


def test_a_file_of_the_old_form_is_refused_in_one_line(tmp_path):
    """An older gnnjec wrote l1_offset (one number per |eta| bin): such a file is named, with the fix."""
    from gnnjec.errors import InputError

    old = tmp_path / "standard_jec.json"
    old.write_text('{"eta_edges": [0, 5.2], "l1_offset": [0.5], "l2l3": [{"log_pt": [], "factor": []}]}')
    with pytest.raises(InputError, match=r"standard_jec.json: not a standard correction .*'l1_parameters'; rerun the "
                                         r"synthetic_jec rule"):
        correction.load(old)
