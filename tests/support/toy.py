"""The toy generator, a test double of the demo's Pythia generator: seeded, fast, parametric jets written
in the NanoAOD/PFNano layout by the demo's writer (:func:`gnnjec.demo.pfnano.branches`).

Kept for fast tests: it makes thousands of events a second, but its detector hands a network
shortcuts the real one does not have (a pileup-truth PUPPI weight, identical gen and reco content),
so no physics result should come from it; the demo uses Pythia. It is a generator as
:func:`gnnjec.demo.write_pfnano` and :func:`gnnjec.demo.derive_standard_correction` take one
(``generator=toy``): :func:`chunks` and :func:`derive_standard_correction`. Its files have no
secondary vertices and no PF candidates' track details.

The point is a calibration problem that is *real*: a flavour-blind correction leaves a flavour
dependence and a resolution that a network looking at the constituents can improve on, but cannot
remove. Every number below is a modelling choice of this toy detector, not a CMS measurement.

===========================  ===============================================================
Ingredient                   Model
===========================  ===============================================================
Events                       npv = 1 + Poisson(mu), mu ~ U(8, 60); rho = 0.35 + 0.52 npv + N(0, 1)
Hard jets                    2 + Poisson(1.2) per event; pt_gen log-uniform in [15, 3000] GeV;
                             |eta| uniform below min(4.7, acosh(6500 GeV / pt)); b:c:uds:g = 1:1:2:2
Multiplicity                 Poisson(n), n = 3 + 4 ln(pt/5) for uds, +1.5 for c, +3 for b;
                             gluons 4 + 6.5 ln(pt/5) (more constituents)
Fragmentation                momentum fractions ~ Dirichlet(alpha): uds 0.6, c 0.75, b 0.9, g 1.1
                             (gluons softer); angular width ~ w / sqrt(pt_particle), w: uds 0.40,
                             c 0.45, b 0.50, g 0.60, truncated at dR = 0.4
Species                      hadrons: 62 % charged (pi+-), 26 % photons, 12 % neutral hadrons
Heavy flavour                b (c) jets: 22 % (12 %) semileptonic: an e or mu with z ~ U(.05,.35)
                             and a neutrino with z ~ U(.03,.30); 45 % (30 %) of charged tracks are
                             displaced, |d0| ~ Exp(400 um) for b, Exp(200 um) for c
GenJet                       vector sum of all hard-jet particles, *neutrinos included* (like
                             ak4GenJetsWithNu), so semileptonic decays lower the reco response
Tracking (|eta| < 2.5)       eff = 0.95 (1 - exp(-pt / 0.4 GeV)), sigma/pt = 0.7 % (+) 0.01 % pt;
                             an untracked charged hadron is seen as a neutral hadron
Electrons / muons            e: 90 % identified (sigma 2 %), else a photon; mu (|eta| < 2.4):
                             97 % identified (sigma 1 %), else lost; neutrinos are never seen
Photons (ECAL, |eta| < 3)    response 0.98, sigma/E = 4 %/sqrt(E) (+) 1 %, E > 0.8 GeV
Neutral hadrons (|eta| < 3)  response 1 - 0.38 E^-0.22 (non-linear: 0.67 at 2 GeV, 0.87 at
                             100 GeV), sigma/E = 100 %/sqrt(E) (+) 8 %, E > 2 GeV
Coherent calorimeter scale   all calorimeter deposits of a jet share a factor N(1, 6 %): shower
                             fluctuations that no single candidate shows, so no network can undo them
2.5 < |eta| < 3              no tracker: charged hadrons are measured as neutral hadrons
HF (|eta| > 3)               hadrons -> pdgId 1, response 0.85 - 0.3 E^-0.25, sigma/E = 140 %/sqrt(E)
                             (+) 12 %; e/gamma -> pdgId 2, response 0.95, sigma/E = 28 %/sqrt(E)
                             (+) 6 %; E > 6 GeV
Pileup in the jet cone       Poisson(rho * A * o(eta) / 0.9 GeV) particles, pt = 0.15 + Exp(0.75)
                             GeV, o = 1 (0.7 for |eta| > 3); charged PU is removed by CHS (90 %),
                             survivors have dz ~ N(0, 5 cm); PUPPI weights: 1 for PV tracks, ~0 for
                             PU tracks, pt-dependent for neutrals (low for pileup)
Pileup jets                  Poisson(0.02 npv) per event, pt 12-40 GeV, made of pileup only: no
                             GenJet, genJetIdx = -1, flavour 0
Reco jet                     four-vector sum of its PF candidates (so constituents close to pt_raw),
                             area ~ N(0.50, 0.015); stored if the corrected pt > 15 GeV
"Standard" correction        the demo's (:mod:`gnnjec.demo.correction`): L1 fitted to the truth
                             pileup pt in each jet + smoothed L2L3 (median response in bins of
                             |eta| and gen pt), derived on a separate calibration sample
                             (:func:`derive_standard_correction`);
                             ``Jet_pt`` carries it and ``Jet_rawFactor = 1 - pt_raw / Jet_pt``
===========================  ===============================================================

Simplifications: each gen jet's particles are reconstructed into its own reco jet (no clustering,
no overlaps), photons are not paired into pi0s, and there is no underlying event beyond pileup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnnjec.demo import correction as standard
from gnnjec.demo import pfnano
from gnnjec.demo.correction import StandardCorrection
from gnnjec.demo.detector import Candidates
from gnnjec.demo.simulate import JetTable
from gnnjec.demo.simulate import Sample as Chunk
from gnnjec.kinematics import delta_phi, sum_four_vectors
from gnnjec.ragged import Columns, parents_from_counts, segment_sum, sort_within_parents

# internal species codes
CHARGED_HADRON, PHOTON, NEUTRAL_HADRON, ELECTRON, MUON, NEUTRINO = range(6)
MASSES = np.array([0.13957, 0.0, 0.497611, 0.000511, 0.105658, 0.0])

# flavour codes: index into the per-flavour parameter tables below
B, C, UDS, G = range(4)
FLAVOUR_FRACTIONS = np.array([1, 1, 2, 2]) / 6
HADRON_FLAVOUR = np.array([5, 4, 0, 0])
MULT_OFFSET = np.array([6.0, 4.5, 3.0, 4.0])
MULT_SLOPE = np.array([4.0, 4.0, 4.0, 6.5])
DIRICHLET_ALPHA = np.array([0.9, 0.75, 0.6, 1.1])
WIDTH = np.array([0.50, 0.45, 0.40, 0.60])
SEMILEPTONIC = np.array([0.22, 0.12, 0.0, 0.0])
DISPLACED_FRACTION = np.array([0.45, 0.30, 0.0, 0.0])
DISPLACEMENT_CM = np.array([0.04, 0.02, 0.0, 0.0])

JET_RADIUS = 0.4
CALO_JET_SCALE = 0.06
BEAM_ENERGY = 6500.0
ETA_MAX = 4.7
PT_GEN_RANGE = (15.0, 3000.0)
GEN_JET_PT_MIN = 10.0

ETA_EDGES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.2])


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------


@dataclass
class Particles(Columns):
    """Flat particle table; ``jet`` indexes the jet table, ``pileup`` marks pileup particles."""

    jet: np.ndarray
    species: np.ndarray
    charge: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    displacement: np.ndarray
    pileup: np.ndarray


def _truncated_exponential(rng, scale, limit):
    u = rng.random(len(scale))
    return -scale * np.log1p(-u * (1.0 - np.exp(-limit / scale)))


def _hard_particles(rng, jet_pt, jet_eta, jet_phi, flavour):
    """Gen-level particles of the hard jets: fragmentation, heavy-flavour decays."""
    n_jets = len(jet_pt)
    mean_mult = MULT_OFFSET[flavour] + MULT_SLOPE[flavour] * np.log(jet_pt / 5.0)
    n_had = np.maximum(1, rng.poisson(mean_mult))
    semilep = rng.random(n_jets) < SEMILEPTONIC[flavour]
    z_lep = np.where(semilep, rng.uniform(0.05, 0.35, n_jets), 0.0)
    z_nu = np.where(semilep, rng.uniform(0.03, 0.30, n_jets), 0.0)

    # hadrons: Dirichlet momentum fractions of what the leptons leave
    jet = parents_from_counts(n_had)
    gamma = rng.gamma(DIRICHLET_ALPHA[flavour][jet])
    z = gamma / segment_sum(gamma, jet, n_jets)[jet] * (1.0 - z_lep - z_nu)[jet]
    species = rng.choice([CHARGED_HADRON, PHOTON, NEUTRAL_HADRON], size=len(jet), p=[0.62, 0.26, 0.12])
    displaced = (species == CHARGED_HADRON) & (rng.random(len(jet)) < DISPLACED_FRACTION[flavour][jet])

    # leptons and neutrinos of semileptonic decays
    sl_jets = np.flatnonzero(semilep)
    lep_species = np.where(rng.random(len(sl_jets)) < 0.5, ELECTRON, MUON)
    jet = np.concatenate([jet, sl_jets, sl_jets])
    z = np.concatenate([z, z_lep[sl_jets], z_nu[sl_jets]])
    species = np.concatenate([species, lep_species, np.full(len(sl_jets), NEUTRINO)])
    displaced = np.concatenate([displaced, np.ones(len(sl_jets), bool), np.zeros(len(sl_jets), bool)])

    pt = z * jet_pt[jet]
    width = WIDTH[flavour][jet] * 0.5 / np.sqrt(np.maximum(pt, 0.3))
    dr = _truncated_exponential(rng, width, JET_RADIUS)
    angle = rng.uniform(0, 2 * np.pi, len(jet))
    eta = np.clip(jet_eta[jet] + dr * np.cos(angle), -5.0, 5.0)
    phi = delta_phi(jet_phi[jet] + dr * np.sin(angle), 0.0)
    charge = np.where(np.isin(species, (CHARGED_HADRON, ELECTRON, MUON)), rng.choice([-1, 1], len(jet)), 0)
    scale = DISPLACEMENT_CM[flavour][jet]
    displacement = np.where(displaced, rng.exponential(np.maximum(scale, 1e-9)) * rng.choice([-1, 1], len(jet)), 0.0)
    return Particles(jet, species, charge, pt, eta, phi, displacement, np.zeros(len(jet), bool))


def _pileup_particles(rng, jet_eta, jet_phi, rho, area, mean_count_scale=1.0):
    """Pileup particles uniformly inside the cone of each jet."""
    offset = np.where(np.abs(jet_eta) > 3.0, 0.7, 1.0)
    n = rng.poisson(rho * area * offset / 0.9 * mean_count_scale)
    jet = parents_from_counts(n)
    m = len(jet)
    r = JET_RADIUS * np.sqrt(rng.random(m))
    angle = rng.uniform(0, 2 * np.pi, m)
    species = rng.choice([CHARGED_HADRON, PHOTON, NEUTRAL_HADRON], size=m, p=[0.55, 0.30, 0.15])
    charge = np.where(species == CHARGED_HADRON, rng.choice([-1, 1], m), 0)
    return Particles(
        jet,
        species,
        charge,
        0.15 + rng.exponential(0.75, m),
        np.clip(jet_eta[jet] + r * np.cos(angle), -5.0, 5.0),
        delta_phi(jet_phi[jet] + r * np.sin(angle), 0.0),
        np.zeros(m),
        np.ones(m, bool),
    )


def _hadron_response(energy):
    return 1.0 - 0.38 * np.power(np.maximum(energy, 0.1), -0.22)


def _hf_hadron_response(energy):
    return 0.85 - 0.3 * np.power(np.maximum(energy, 0.1), -0.25)


def _smear_energy(rng, energy, response, stochastic, constant):
    sigma = np.hypot(stochastic / np.sqrt(np.maximum(energy, 1e-3)), constant)
    return np.maximum(energy * response * (1.0 + sigma * rng.standard_normal(len(energy))), 0.0)


def _reconstruct(rng, p: Particles, chs_keep=0.1) -> tuple[Candidates, np.ndarray]:
    """Detector response: particle type and region decide what is measured, and how well. The
    candidates (their ``event`` is the jet's until :func:`simulate` sets it; no track details: None)
    and, per candidate, its jet."""
    n = len(p.pt)
    abseta = np.abs(p.eta)
    energy = p.pt * np.cosh(p.eta)
    tracker, hf = abseta < 2.5, abseta >= 3.0  # 2.5-3: calorimeters without tracking

    # what each particle is seen as: 211, 22, 130, 11, 13, 1 (HF hadron), 2 (HF e/gamma), 0 lost
    sp = p.species
    tracked = tracker & (rng.random(n) < 0.95 * (1 - np.exp(-p.pt / 0.4)))
    electron_id = tracker & (rng.random(n) < 0.90)
    muon_id = (abseta < 2.4) & (rng.random(n) < 0.97)
    seen = np.zeros(n, np.int64)
    hadron = (sp == CHARGED_HADRON) | (sp == NEUTRAL_HADRON)
    seen[(sp == CHARGED_HADRON) & tracked] = 211
    seen[(sp == CHARGED_HADRON) & ~tracked & ~hf] = 130
    seen[(sp == NEUTRAL_HADRON) & ~hf] = 130
    seen[hadron & hf] = 1
    seen[(sp == PHOTON) & ~hf] = 22
    seen[(sp == ELECTRON) & electron_id] = 11
    seen[(sp == ELECTRON) & ~electron_id & ~hf] = 22
    seen[((sp == PHOTON) | (sp == ELECTRON)) & hf] = 2
    seen[(sp == MUON) & muon_id] = 13
    # charged hadron subtraction: pileup tracks are mostly removed before clustering
    chs_removed = p.pileup & (seen == 211) & (rng.random(n) >= chs_keep)
    seen[chs_removed] = 0

    # measured energy / pt
    pt = np.zeros(n)
    track = seen == 211
    pt[track] = p.pt[track] * (1 + np.hypot(0.007, 1e-4 * p.pt[track]) * rng.standard_normal(track.sum()))
    ele = seen == 11
    pt[ele] = p.pt[ele] * (1 + 0.02 * rng.standard_normal(ele.sum()))
    mu = seen == 13
    pt[mu] = p.pt[mu] * (1 + np.hypot(0.01, 1e-4 * p.pt[mu]) * rng.standard_normal(mu.sum()))
    cosh = np.cosh(p.eta)
    # a coherent calorimeter scale per jet (shared shower fluctuations): seen in no single candidate
    jet_scale = rng.normal(1.0, CALO_JET_SCALE, int(p.jet.max(initial=-1)) + 1)[p.jet]
    for code, response, stochastic, constant in (
        (22, lambda e: 0.98, 0.04, 0.01),
        (130, _hadron_response, 1.0, 0.08),
        (1, _hf_hadron_response, 1.4, 0.12),
        (2, lambda e: 0.95, 0.28, 0.06),
    ):
        sel = seen == code
        e = energy[sel]
        pt[sel] = _smear_energy(rng, e, response(e), stochastic, constant) * jet_scale[sel] / cosh[sel]

    # thresholds
    e_reco = pt * cosh
    keep = (
        ((seen == 211) & (pt > 0.5))
        | ((seen == 11) & (pt > 0.5))
        | ((seen == 13) & (pt > 0.5))
        | ((seen == 22) & (e_reco > 0.8))
        | ((seen == 130) & (e_reco > 2.0))
        | (((seen == 1) | (seen == 2)) & (e_reco > 6.0) & (pt > 0.5))
    )
    idx = np.flatnonzero(keep)
    seen, pt = seen[idx], pt[idx]
    m = len(idx)

    angular = np.select(
        [seen == 211, seen == 11, seen == 13, seen == 22, seen == 130], [0.001, 0.002, 0.001, 0.004, 0.02], 0.03
    )
    eta = p.eta[idx] + angular * rng.standard_normal(m)
    phi = delta_phi(p.phi[idx] + angular * rng.standard_normal(m), 0.0)
    charge = np.where(np.isin(seen, (211, 11, 13)), p.charge[idx], 0)
    pdg = np.where(charge != 0, seen * np.where(seen == 211, charge, -charge), seen)
    mass = np.select(
        [seen == 211, seen == 11, seen == 13, seen == 130], [MASSES[0], MASSES[3], MASSES[4], MASSES[2]], 0.0
    )

    pileup = p.pileup[idx]
    with_track = charge != 0
    d0 = np.where(with_track, p.displacement[idx] + np.hypot(0.0015, 0.008 / pt) * rng.standard_normal(m), 0.0)
    dz_pu = np.where(pileup, 5.0 * rng.standard_normal(m), 0.0)
    dz = np.where(with_track, dz_pu + p.displacement[idx] + np.hypot(0.003, 0.012 / pt) * rng.standard_normal(m), 0.0)
    u = rng.random(m)
    puppi_signal = np.clip(1.0 - np.exp(-pt / 2.0) * u * 1.2, 0.0, 1.0)
    puppi_pileup = np.clip(u**3 * (1.0 - np.exp(-pt / 8.0)), 0.0, 1.0)
    puppi = np.where(with_track, np.where(pileup, 0.0, 1.0), np.where(pileup, puppi_pileup, puppi_signal))
    jet = p.jet[idx]
    no_details = None  # d0Err, dzErr, trkChi2, lostInnerHits, pvAssocQuality, trkQuality, from_pv
    cands = Candidates(jet, pt, eta, phi, mass, charge, pdg, d0, dz, puppi, *[no_details] * 7, pileup.astype(float))
    return cands, jet


@dataclass
class Sample:
    """One simulated chunk: events, jets (hard and pileup), gen-level truth and PF candidates."""

    n_events: int
    npv: np.ndarray
    rho: np.ndarray
    mu: np.ndarray
    jet_event: np.ndarray
    is_hard: np.ndarray
    flavour: np.ndarray
    parton_flavour: np.ndarray
    gen_pt: np.ndarray
    gen_eta: np.ndarray
    gen_phi: np.ndarray
    gen_mass: np.ndarray
    raw_pt: np.ndarray
    raw_eta: np.ndarray
    raw_phi: np.ndarray
    raw_mass: np.ndarray
    area: np.ndarray
    pileup_pt: np.ndarray
    cands: Candidates
    cand_jet: np.ndarray
    """Per candidate: index of its jet."""


def simulate(rng: np.random.Generator, n_events: int) -> Sample:
    """Simulate ``n_events`` events down to reco jets and their PF candidates (no correction yet)."""
    mu = rng.uniform(8, 60, n_events)
    npv = 1 + rng.poisson(mu)
    rho = np.maximum(0.35 + 0.52 * npv + rng.standard_normal(n_events), 0.0)

    n_hard = 2 + rng.poisson(1.2, n_events)
    n_pu_jets = rng.poisson(0.02 * npv)
    # hard jets
    hard_event = parents_from_counts(n_hard)
    n_h = len(hard_event)
    lo, hi = PT_GEN_RANGE
    pt_target = lo * (hi / lo) ** rng.random(n_h)
    eta_lim = np.minimum(ETA_MAX, np.arccosh(np.maximum(BEAM_ENERGY / pt_target, 1.0 + 1e-9)))
    eta_axis = rng.uniform(-1, 1, n_h) * eta_lim
    phi_axis = rng.uniform(-np.pi, np.pi, n_h)
    flavour = rng.choice(4, size=n_h, p=FLAVOUR_FRACTIONS)
    parton = np.select([flavour == B, flavour == C, flavour == G], [5, 4, 21], rng.integers(1, 4, n_h))
    parton = np.where((flavour == UDS) & (rng.random(n_h) < 0.03), 0, parton)  # ambiguous parton
    parton = parton * np.where((flavour != G) & (rng.random(n_h) < 0.5), -1, 1)

    # pileup jets: soft clumps of pileup, no gen jet
    pu_event = parents_from_counts(n_pu_jets)
    n_p = len(pu_event)
    pu_pt = 12.0 * (40.0 / 12.0) ** rng.random(n_p)
    pu_eta = rng.uniform(-ETA_MAX, ETA_MAX, n_p)
    pu_phi = rng.uniform(-np.pi, np.pi, n_p)

    jet_event = np.concatenate([hard_event, pu_event])
    order = np.argsort(jet_event, kind="stable")
    n_j = n_h + n_p
    is_hard = np.concatenate([np.ones(n_h, bool), np.zeros(n_p, bool)])
    axis_eta = np.concatenate([eta_axis, pu_eta])
    axis_phi = np.concatenate([phi_axis, pu_phi])
    area = np.clip(rng.normal(0.50, 0.015, n_j), 0.4, 0.6)

    hard = _hard_particles(rng, pt_target, eta_axis, phi_axis, flavour)
    gen_pt, gen_eta, gen_phi, gen_mass = sum_four_vectors(
        hard.pt, hard.eta, hard.phi, MASSES[hard.species], hard.jet, n_h
    )
    # pileup jets: a gluon-like spray whose particles all count as pileup
    pu_spray = _hard_particles(rng, pu_pt, pu_eta, pu_phi, np.full(n_p, G))
    pu_spray.jet = pu_spray.jet + n_h
    pu_spray.pileup[:] = True
    in_cone = _pileup_particles(rng, axis_eta, axis_phi, rho[jet_event], area)
    cands, cand_jet = _reconstruct(rng, Particles.concat([hard, pu_spray, in_cone]))

    raw_pt, raw_eta, raw_phi, raw_mass = sum_four_vectors(cands.pt, cands.eta, cands.phi, cands.mass, cand_jet, n_j)
    pileup_pt = segment_sum(cands.pt * cands.pileup_fraction, cand_jet, n_j)

    def pad(a, fill):
        return np.concatenate([a, np.full(n_p, fill, dtype=np.asarray(a).dtype)])

    # re-order jets by event (hard then pileup jets inside each event); candidates follow
    inverse = np.empty(n_j, np.int64)
    inverse[order] = np.arange(n_j)
    cands.event = jet_event[cand_jet]
    return Sample(
        n_events=n_events,
        npv=npv,
        rho=rho,
        mu=mu,
        jet_event=jet_event[order],
        is_hard=is_hard[order],
        flavour=pad(flavour, -1)[order],
        parton_flavour=pad(parton, 0)[order],
        gen_pt=pad(gen_pt, 0.0)[order],
        gen_eta=pad(gen_eta, 0.0)[order],
        gen_phi=pad(gen_phi, 0.0)[order],
        gen_mass=pad(gen_mass, 0.0)[order],
        raw_pt=raw_pt[order],
        raw_eta=raw_eta[order],
        raw_phi=raw_phi[order],
        raw_mass=raw_mass[order],
        area=area[order],
        pileup_pt=pileup_pt[order],
        cands=cands,
        cand_jet=inverse[cand_jet],
    )


# --------------------------------------------------------------------------------------------
# the flavour-blind "standard" correction (L1 offset + L2L3 response), as a JEC table
# --------------------------------------------------------------------------------------------


def derive_standard_correction(seed: int, n_events: int, processes: int = 1) -> StandardCorrection:
    """Derive the correction on a calibration sample of the toy, as CMS does on QCD simulation (in this
    process: ``processes`` is the demo generator's)."""
    sample = simulate(np.random.default_rng(seed), n_events)
    hard = sample.is_hard & (sample.raw_pt > 0)
    return standard.derive(
        sample.raw_pt[hard],
        sample.raw_eta[hard],
        sample.rho[sample.jet_event][hard],
        sample.area[hard],
        sample.pileup_pt[hard],
        sample.gen_pt[hard],
        min_jets=50,
    )


# --------------------------------------------------------------------------------------------
# NanoAOD layout
# --------------------------------------------------------------------------------------------


def as_chunk(sample: Sample) -> Chunk:
    """The simulated events as the demo's writer takes them (:class:`gnnjec.demo.simulate.Sample`):
    the reco jets (hard and pileup), GenJets from the hard jets above GEN_JET_PT_MIN (by pt inside
    each event), the match of each jet to its own GenJet; no secondary vertices."""
    ev = sample.jet_event
    hadron_flavour = np.where(sample.flavour >= 0, HADRON_FLAVOUR[np.maximum(sample.flavour, 0)], 0)
    reco = JetTable(ev, sample.raw_pt, sample.raw_eta, sample.raw_phi, sample.raw_mass, hadron_flavour,
                    sample.parton_flavour)
    gen_idx = np.flatnonzero(sample.is_hard & (sample.gen_pt > GEN_JET_PT_MIN))
    g = gen_idx[sort_within_parents(ev[gen_idx], sample.gen_pt[gen_idx])]
    gen = JetTable(ev[g], sample.gen_pt[g], sample.gen_eta[g], sample.gen_phi[g], sample.gen_mass[g],
                   HADRON_FLAVOUR[sample.flavour[g]], sample.parton_flavour[g])
    gen_index = np.full(len(ev), -1, np.int64)
    gen_index[g] = np.arange(len(g))
    return Chunk(n_events=sample.n_events, rho=sample.rho, npv=sample.npv, mu=sample.mu, reco=reco, area=sample.area,
                 gen_index=gen_index, gen=gen, cands=sample.cands,
                 cand_jet=sample.cand_jet, vertices=None, vertex_jet=None)


def nanoaod_chunk(sample: Sample, correction: StandardCorrection, first_event: int, lumi: int) -> dict:
    """A simulated chunk as NanoAOD/PFNano branches (the demo's writer; counters come from uproot)."""
    return pfnano.branches(as_chunk(sample), correction, first_event, lumi)


def chunks(n_events: int, seed: int, file_index: int, correction: StandardCorrection, chunk_events: int = 10_000):
    """NanoAOD branches of ``n_events`` toy events, a chunk at a time (seeded by seed and file)."""
    rng = np.random.default_rng([seed, file_index])
    done = 0
    while done < n_events:
        n = min(chunk_events, n_events - done)
        yield nanoaod_chunk(simulate(rng, n), correction, 1 + file_index * 10_000_000 + done, 1 + file_index)
        done += n
