"""The toy generator: layout, determinism and the physics that makes the problem real."""

import awkward as ak
import numpy as np
import pytest
import uproot

from gnnjec import demo

from support import toy

NANO_BRANCHES = {
    "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_rawFactor", "Jet_area", "Jet_genJetIdx",
    "Jet_hadronFlavour", "Jet_partonFlavour", "Jet_nConstituents", "nGenJet", "GenJet_pt", "GenJet_eta",
    "GenJet_phi", "GenJet_mass", "nPFCands", "PFCands_pt", "PFCands_eta", "PFCands_phi", "PFCands_mass",
    "PFCands_charge", "PFCands_pdgId", "PFCands_d0", "PFCands_dz", "PFCands_puppiWeight", "nJetPFCands",
    "JetPFCands_jetIdx", "JetPFCands_pFCandsIdx", "fixedGridRhoFastjetAll", "PV_npvs", "run",
    "luminosityBlock", "event",
}


def test_writes_nanoaod_layout(synthetic_file):
    tree = uproot.open(synthetic_file)["Events"]
    assert NANO_BRANCHES <= set(tree.keys())
    assert tree.num_entries == 4000
    a = tree.arrays(["nJet", "Jet_pt", "nJetPFCands", "JetPFCands_jetIdx", "Jet_nConstituents"])
    assert np.all(ak.num(a.Jet_pt) == a.nJet)
    # every constituent link points into the jet table, and counts agree with Jet_nConstituents
    assert ak.all(a.JetPFCands_jetIdx < a.nJet[:, None])
    per_jet = ak.flatten(ak.run_lengths(a.JetPFCands_jetIdx))
    assert np.array_equal(np.asarray(per_jet), np.asarray(ak.flatten(a.Jet_nConstituents)))


def test_same_seed_same_events_other_index_other_events(tmp_path, standard_jec):
    corr = demo.load_correction(standard_jec)
    paths = []
    for name, index in (("a", 0), ("b", 0), ("c", 1)):
        paths.append(tmp_path / f"{name}.root")
        demo.write_pfnano(paths[-1], 300, seed=5, file_index=index, correction=corr, generator=toy)
    read = [uproot.open(p)["Events"].arrays(["Jet_pt", "PFCands_pt", "event"]) for p in paths]
    assert ak.array_equal(read[0], read[1])
    assert not np.array_equal(np.asarray(read[0].event), np.asarray(read[2].event))
    assert not ak.array_equal(read[0].Jet_pt, read[2].Jet_pt)


def test_gen_matching_and_unmatched_jets(synthetic_file):
    a = uproot.open(synthetic_file)["Events"].arrays(
        ["Jet_genJetIdx", "nGenJet", "Jet_partonFlavour", "Jet_hadronFlavour"])
    idx = a.Jet_genJetIdx
    assert ak.all((idx == -1) | ((idx >= 0) & (idx < a.nGenJet[:, None])))
    unmatched = ak.sum(idx == -1)
    assert 0 < unmatched < 0.2 * ak.sum(ak.num(idx))  # pileup jets and lost gen jets, not most jets
    # flavour composition b:c:uds:g ~ 1:1:2:2 among matched jets
    had, part = ak.flatten(a.Jet_hadronFlavour[idx >= 0]), ak.flatten(a.Jet_partonFlavour[idx >= 0])
    frac_b = np.mean(np.asarray(had) == 5)
    frac_g = np.mean(np.asarray(part) == 21)
    assert 0.12 < frac_b < 0.22 and 0.27 < frac_g < 0.40


@pytest.fixture(scope="module")
def calibrated(standard_jec):
    """A fresh simulated sample with the standard correction applied: response per jet."""
    corr = demo.load_correction(standard_jec)
    s = toy.simulate(np.random.default_rng(99), 15000)
    hard = s.is_hard & (s.raw_pt > 0) & (s.gen_pt > 0)
    factor = corr.factor(s.raw_pt, s.raw_eta, s.rho[s.jet_event], s.area)[hard]
    raw, gen = s.raw_pt[hard], s.gen_pt[hard]
    return {"response": raw * factor / gen, "pt_gen": gen,
            "abs_eta": np.abs(s.gen_eta[hard]), "flavour": s.flavour[hard], "raw": raw / gen,
            "rho": s.rho[s.jet_event][hard]}


def test_standard_correction_closes_for_the_flavour_mix(calibrated):
    c = calibrated
    for lo, hi in ((30, 100), (100, 1000)):
        sel = (c["pt_gen"] > lo) & (c["pt_gen"] < hi) & (c["abs_eta"] < 2.5)
        assert abs(np.median(c["response"][sel]) - 1) < 0.015
    # the raw response depends on pileup, the corrected one hardly
    sel = (c["pt_gen"] > 30) & (c["pt_gen"] < 60) & (c["abs_eta"] < 2.5)
    low, high = sel & (c["rho"] < 12), sel & (c["rho"] > 25)
    assert np.median(c["raw"][high]) - np.median(c["raw"][low]) > 0.08
    assert abs(np.median(c["response"][high]) - np.median(c["response"][low])) < 0.03


def test_flavour_dependence_remains_after_standard_correction(calibrated):
    c = calibrated
    sel = (c["pt_gen"] > 30) & (c["pt_gen"] < 150) & (c["abs_eta"] < 2.5)
    med = {f: np.median(c["response"][sel & (c["flavour"] == code)]) for code, f in enumerate("bcug")}
    assert med["u"] > med["g"] + 0.01  # gluons: softer particles, lower calorimeter response
    assert med["u"] > med["b"] + 0.015  # b: semileptonic neutrinos
    # resolution improves with pt, as a calorimeter's does
    res = []
    for lo, hi in ((30, 50), (300, 500)):
        r = c["response"][(c["pt_gen"] > lo) & (c["pt_gen"] < hi) & (c["abs_eta"] < 2.5)]
        q = np.percentile(r, [25, 50, 75])
        res.append((q[2] - q[0]) / q[1])
    assert res[0] > 2 * res[1]


def test_raw_factor_undoes_the_correction(synthetic_file):
    a = uproot.open(synthetic_file)["Events"].arrays(["Jet_pt", "Jet_rawFactor"])
    raw = ak.flatten(a.Jet_pt * (1 - a.Jet_rawFactor))
    assert ak.all(raw > 0) and ak.all(raw < ak.flatten(a.Jet_pt) * 5)
