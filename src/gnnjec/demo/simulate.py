"""One chunk of demo events, from Pythia to reco jets and their PF candidates.

Events -> pileup overlay -> detector and PF -> CHS -> anti-kt jets -> flavour and matching, with
the truth the standard correction is derived from. Nothing loops over particles in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import detector, events, jets, primary, vertices
from .detector import Candidates
from .events import NEUTRINOS, Particles
from .pfnano import RECO_JET_PT_MIN, branches
from .vertices import Vertices

MU_RANGE = (10.0, 60.0)
"""Mean pileup per event, uniform: Run 2 averaged 32 and Run 3 about 45 (CMS luminosity public
results); the range covers both."""
RECO_JET_RAW_PT_MIN = 10.0
"""Reco jets are clustered above this raw pt: the writer checks that no correction factor can lift
a jet from below it over its 15 GeV threshold."""
GEN_JET_PT_MIN = 10.0


@dataclass
class JetTable:
    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    hadron_flavour: np.ndarray
    parton_flavour: np.ndarray


@dataclass
class Sample:
    """Events of one chunk: reco jets (raw four-momenta), GenJets and PF candidates."""

    n_events: int
    rho: np.ndarray
    npv: np.ndarray
    """Reconstructed vertices per event (:mod:`gnnjec.demo.primary`)."""
    mu: np.ndarray
    reco: JetTable
    area: np.ndarray
    gen_index: np.ndarray
    """Per reco jet: index of its GenJet in ``gen`` (global), or -1."""
    gen: JetTable
    cands: Candidates
    cand_jet: np.ndarray
    """Per candidate: index of its reco jet, or -1."""
    vertices: Vertices | None
    """None: a generator without secondary vertices (the files then have no SV and JetSVs)."""
    vertex_jet: np.ndarray | None
    """Per secondary vertex: index of its reco jet (nearest within dR < 0.4), or -1."""
    npv_good: np.ndarray | None = None
    """Vertices with at least four tracks in their fit (``PV_npvsGood``); None: as npv."""


class PileupPool:
    """Minimum-bias collisions generated once and overlaid many times."""

    def __init__(self, seed: int, size: int):
        self.size = size
        self.particles = events.minimum_bias_pool(seed, size)


def simulate(rng: np.random.Generator, seed: int, n_events: int, pool: PileupPool,
             process: str = events.DEFAULT_PROCESS) -> Sample:
    """``n_events`` events of hard process ``process`` (:data:`.events.PROCESSES`) with pileup from ``pool``."""
    return reconstruct(rng, events.generate_hard(seed, n_events, process), pool)


def reconstruct(rng: np.random.Generator, hard: events.HardEvents, pool: PileupPool | None,
                jet_pt_min: float = RECO_JET_RAW_PT_MIN) -> Sample:
    """The detector's view of ``hard`` with pileup from ``pool`` (None: without pileup, as the twin sample from which
    the L1 offset is measured), reco jets clustered above ``jet_pt_min`` raw."""
    n_events = hard.n_events
    mu = rng.uniform(*MU_RANGE, n_events) if pool else np.zeros(n_events)
    n_pileup = rng.poisson(mu)
    z_pv = rng.normal(0.0, events.BEAMSPOT_Z_CM, n_events)
    s = hard.stable
    signal = Particles(s.event, s.pdg, s.px, s.py, s.pz, s.e, s.vx, s.vy, s.vz + z_pv[s.event], s.charge)
    pu = events.overlay(rng, pool.particles, pool.size, n_pileup)[0] if pool else signal.take(np.zeros(0, np.int64))
    everything = Particles.concat([signal, pu])  # the detector does not need them in event order
    flag = np.concatenate([np.zeros(len(signal), bool), np.ones(len(pu), bool)])

    cands, secondary, primary_vertices = detector.reconstruct(rng, everything, flag, z_pv)
    rho = detector.fixed_grid_rho(cands, n_events)
    npv = primary_vertices.npv

    # GenJets: the hard collision's stable particles without neutrinos
    visible = ~np.isin(np.abs(s.pdg), NEUTRINOS) & (np.abs(s.eta) < jets.ETA_MAX)
    g = s.take(visible)
    g_mass = np.sqrt(np.maximum(g.e**2 - g.px**2 - g.py**2 - g.pz**2, 0.0))
    gen = jets.cluster(g.event, g.pt, g.eta, g.phi, g_mass, n_events, GEN_JET_PT_MIN)
    gen_hf, gen_pf = jets.flavours(gen, hard.partons, hard.heavy_hadrons)

    # reco jets: AK4 CHS, without the charged candidates associated with a pileup vertex
    chs = (cands.charge == 0) | (cands.from_pv != primary.NO_PV)
    c = cands.take(np.flatnonzero(chs))
    reco = jets.cluster(c.event, c.pt, c.eta, c.phi, c.mass, n_events, jet_pt_min)
    # PUPPI weights: from the whole event, for the candidates that end up in jets
    in_jet = np.zeros(len(cands.pt), bool)
    in_jet[np.flatnonzero(chs)[reco.constituent_jet >= 0]] = True
    c.puppiWeight = detector.puppi_weights(cands, in_jet, npv)[chs]
    reco_hf, reco_pf = jets.flavours(reco, hard.partons, hard.heavy_hadrons)
    return Sample(
        n_events=n_events,
        rho=rho,
        npv=npv,
        npv_good=primary_vertices.npv_good,
        mu=mu,
        reco=JetTable(reco.event, reco.pt, reco.eta, reco.phi, reco.mass, reco_hf, reco_pf),
        area=jets.passive_area(reco),
        gen_index=jets.match(reco, gen),
        gen=JetTable(gen.event, gen.pt, gen.eta, gen.phi, gen.mass, gen_hf, gen_pf),
        cands=c,
        cand_jet=reco.constituent_jet,
        vertices=secondary,
        vertex_jet=vertices.associate(secondary, reco.event, reco.eta, reco.phi),
    )


POOL_SIZE = 1000
"""Minimum-bias collisions per file; each event draws Poisson(mu) of them, rotated and mirrored."""
CHUNK_EVENTS = 500


def _seed(*parts: int) -> int:
    """A Pythia seed (1 ... 9e8) from the workflow's seed, the file and the chunk."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0]) % 900_000_000


def largest_lift(correction) -> float:
    """The largest corrected pt a jet below RECO_JET_RAW_PT_MIN raw can reach: L1 only lowers pt, so a jet of L1-
    corrected pt y < RECO_JET_RAW_PT_MIN ends at y * L2L3(y), whose largest value over y bounds it."""
    y = np.geomspace(1.0, RECO_JET_RAW_PT_MIN, 400)  # up to the threshold itself: the bound is the limit there
    return max((float(np.max(y * np.interp(np.log(y), x, f)))
                for x, f in zip(correction.l2l3_log_pt, correction.l2l3_factor) if len(f)), default=0.0)


def chunks(n_events: int, seed: int, file_index: int, correction, chunk_events: int = CHUNK_EVENTS,
           process: str = events.DEFAULT_PROCESS):
    """NanoAOD branches of ``n_events`` Pythia events of hard process ``process``, a chunk at a time (seeded by seed
    and file)."""
    events.process_settings(process)  # an unknown name fails before the pileup pool is made
    lifted = largest_lift(correction)
    if lifted >= RECO_JET_PT_MIN:
        raise ValueError(
            f"the standard correction lifts a jet of less than {RECO_JET_RAW_PT_MIN} GeV raw to {lifted:.1f} GeV: "
            f"jets clustered above {RECO_JET_RAW_PT_MIN} GeV raw miss some over {RECO_JET_PT_MIN} GeV"
        )
    rng = np.random.default_rng([seed, file_index])
    pool = PileupPool(_seed(seed, file_index, 1_000_000), POOL_SIZE)
    done = 0
    while done < n_events:
        n = min(chunk_events, n_events - done)
        sample = simulate(rng, _seed(seed, file_index, done), n, pool, process)
        yield branches(sample, correction, 1 + file_index * 10_000_000 + done, 1 + file_index)
        done += n


TWIN_JET_PT_MIN = 3.0
"""The twin without pileup is clustered from this raw pt: a jet at the pileup sample's threshold has its twin
whatever the offset."""
TWIN_MAX_DR = 0.2


def _calibration_jets(seed: int, part: int, n_events: int) -> list[np.ndarray]:
    """Matched jets of one part of the calibration sample: raw pt, eta, rho, area, offset, gen pt.

    The offset is CMS's simulated one [JINST 12 (2017) P02014, Sec. 4]: each event is reconstructed with and without
    its pileup and a jet's offset is its raw pt minus that of its twin (the nearest jet within dR < 0.2 of the
    event without pileup; NaN without one). The detector's fluctuations differ between the two, so one offset is
    noisy and only their average is the offset."""
    rng = np.random.default_rng([seed, 999_999, part])
    pool = PileupPool(_seed(seed, 999_999, part, 1_000_000), POOL_SIZE)
    columns = []
    done = 0
    while done < n_events:
        n = min(CHUNK_EVENTS, n_events - done)
        hard = events.generate_hard(_seed(seed, 999_999, part, done), n)
        s = reconstruct(rng, hard, pool)
        twin = reconstruct(rng, hard, None, jet_pt_min=TWIN_JET_PT_MIN).reco
        m = s.gen_index >= 0
        t = jets.nearest_jet(twin, s.reco.event[m], s.reco.eta[m], s.reco.phi[m], TWIN_MAX_DR)
        offset = np.where(t >= 0, s.reco.pt[m] - twin.pt[t], np.nan)
        columns.append((s.reco.pt[m], s.reco.eta[m], s.rho[s.reco.event[m]], s.area[m], offset,
                        s.gen.pt[s.gen_index[m]]))
        done += n
    return [np.concatenate(c) for c in zip(*columns)]


CALIBRATION_PART_EVENTS = 4000
"""The calibration sample is simulated in parts of this size, each seeded by its index, so the
correction does not depend on how many processes share the work."""


def derive_standard_correction(seed: int, n_events: int, processes: int = 1):
    """The standard correction, derived on ``n_events`` events of its own (seeded apart from the
    files), its parts simulated ``processes`` at a time."""
    from concurrent.futures import ProcessPoolExecutor

    from . import correction

    n_parts = -(-n_events // CALIBRATION_PART_EVENTS)
    sizes = [n_events // n_parts + (i < n_events % n_parts) for i in range(n_parts)]
    if processes == 1 or n_parts == 1:
        parts = [_calibration_jets(seed, i, size) for i, size in enumerate(sizes)]
    else:
        with ProcessPoolExecutor(min(processes, n_parts)) as pool:
            parts = list(pool.map(_calibration_jets, [seed] * n_parts, range(n_parts), sizes))
    return correction.derive(*(np.concatenate(c) for c in zip(*parts)), min_jets=30)
