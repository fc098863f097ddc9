"""The demo detector against CMS: the standard correction's resolution and its flavour response.

The standard correction is derived on one Pythia sample and applied to another, as in the workflow.
Reference: CMS, "Jet energy scale and resolution in the CMS experiment in pp collisions at 8 TeV",
JINST 12 (2017) P02014: AK4 PF jets at central rapidities have a resolution of "15-20 % at
30 GeV, about 10 % at 100 GeV, and 5 % at 1 TeV" (Gaussian widths; here IQR / (1.349 median) of
pt / pt_gen in |eta| < 1.3, which equals the width for a Gaussian). Flavour: the thesis's standard
correction gives u 1.016 and g 0.988 for pt > 30 GeV (CMS Pythia: uds - g of 2-4 % at 30 GeV
falling to about 1 % at 1 TeV, ibid. Sec. 8).
"""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from gnnjec.demo import correction, simulate

EVENTS = 3000

pytestmark = pytest.mark.slow  # 6000 Pythia events


def matched_jets(seed: int, n_events: int):
    """Per matched jet of a sample of ``n_events``: raw pt, eta, rho, area, gen pt, hadron and parton flavour."""
    pool = simulate.PileupPool(seed, simulate.POOL_SIZE)
    rng = np.random.default_rng(seed)
    out = []
    for chunk in range(0, n_events, simulate.CHUNK_EVENTS):
        s = simulate.simulate(rng, seed * 1000 + chunk, min(simulate.CHUNK_EVENTS, n_events - chunk), pool)
        m = s.gen_index >= 0
        g = s.gen_index[m]
        out.append(np.column_stack([
            s.reco.pt[m], s.reco.eta[m], s.rho[s.reco.event[m]], s.area[m], s.gen.pt[g],
            s.gen.hadron_flavour[g], s.gen.parton_flavour[g],
        ]))
    return np.concatenate(out)


def standard_correction(seed: int, n_events: int):
    """Derived as the workflow derives it (its offsets from the sample reconstructed with and without pileup)."""
    return correction.derive(*simulate._calibration_jets(seed, 0, n_events), min_jets=30)


@pytest.fixture(scope="module")
def responses():
    with ProcessPoolExecutor(2) as pool:
        corr = pool.submit(standard_correction, 101, EVENTS)
        test = pool.submit(matched_jets, 202, EVENTS).result()
        corr = corr.result()
    raw, eta, rho, area, gen_pt, hadron, parton = test.T
    response = raw * corr.factor(raw, eta, rho, area) / gen_pt
    flavour = np.where(hadron == 5, "b", np.where(hadron == 4, "c", np.where(np.isin(np.abs(parton), [1, 2, 3]), "uds",
                       np.where(parton == 21, "g", "?"))))
    return response, np.abs(eta), gen_pt, flavour, rho


@pytest.mark.parametrize("low, high, cms", [(25, 40, 0.175), (80, 130, 0.10), (700, 1500, 0.05)])
def test_standard_resolution_within_20_percent_of_cms(responses, low, high, cms):
    response, abseta, gen_pt, _, _ = responses
    sel = (abseta < 1.3) & (gen_pt >= low) & (gen_pt < high)
    assert sel.sum() > 150
    q25, q50, q75 = np.percentile(response[sel], [25, 50, 75])
    assert q50 == pytest.approx(1.0, abs=0.03)
    width = (q75 - q25) / (1.349 * q50)
    assert width == pytest.approx(cms, rel=0.2), f"{low}-{high} GeV: {width:.3f} against CMS {cms}"


def test_quark_jets_respond_more_than_gluon_jets(responses):
    response, abseta, gen_pt, flavour, _ = responses
    sel = (abseta < 2.5) & (gen_pt > 30)
    uds = np.median(response[sel & (flavour == "uds")])
    g = np.median(response[sel & (flavour == "g")])
    # the goal is the thesis's 2-3 %: these 3000 measured +1.8 +- 0.3 % with the CMS-like CHS (2026-11-30)
    assert 0.015 <= uds - g <= 0.035, f"uds {uds:.4f}, g {g:.4f}"


def test_standard_correction_does_not_drift_with_pileup(responses):
    """L1's rho dependence (an offset p0 + p1 rho + p2 rho log pt per unit area, fitted to the offsets of the same
    events reconstructed with and without pileup): the median response at 30-150 GeV is the same in the terciles
    of rho. Measured 2026-11-30: the spread of the three medians was 2.9 % at 30-60 GeV with the offset read from the
    truth as rho * area * c(eta); each median here has an error of about 0.4 %."""
    response, abseta, gen_pt, _, rho = responses
    sel = (abseta < 2.5) & (gen_pt >= 30) & (gen_pt < 150)
    edges = np.quantile(rho[sel], [0, 1 / 3, 2 / 3, 1])
    medians = [np.median(response[sel & (rho >= lo) & (rho <= hi)]) for lo, hi in zip(edges[:-1], edges[1:])]
    assert max(medians) - min(medians) < 0.012, medians
