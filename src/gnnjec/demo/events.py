"""Generator-level events from Pythia 8: named hard processes (QCD 2->2, tt-bar) and a minimum-bias pileup pool.

Pythia's batch interface (``Pythia.nextBatch``) hands back whole events as awkward arrays, so no
Python loop touches a particle. Everything here is flat numpy arrays with an ``event`` index.

Settings, and why:

* 13.6 TeV (Run 3), Pythia's default tune (Monash 2013; CMS's CP5 is a retune of it), MPI, ISR/FSR
  and hadronisation on: the underlying event, out-of-cone radiation and realistic fragmentation are
  what the toy lacked.
* QCD 2->2 (``HardQCD:all``) with ``pTHatMin`` below the lowest jet pt studied and a pT-hat bias
  (``PhaseSpace:bias2Selection``, power 4.5) that makes the jet pt spectrum roughly flat in log pt,
  as CMS's "Flat" QCD samples are. Events are used unweighted, like the thesis's sample. This is the
  process the networks train on and the standard correction is derived on (``qcd``).
* tt-bar (``Top:gg2ttbar``, ``Top:qqbar2ttbar``), inclusive decays and no pT-hat bias: another pt
  spectrum and flavour mix (b jets from the tops, light quarks from the W's), for evaluation only
  (``ttbar``). Tops and W's decay in the generator (their status is negative), so the stable list and
  the flavour truth need nothing of their own.
* Particles with c*tau > 1 m are stable (``ParticleDecays:limitTau0``): b and c hadrons, and also
  K0S and hyperons, decay with displaced vertices (CMS leaves the latter to Geant4, with the same
  effect on the detector).
* Pileup: minimum-bias (``SoftQCD:inelastic``) events from a pool, each reused with a random
  rotation in phi, a random sign of eta and its own vertex position (``overlay``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ragged import Columns, local_index, offsets_from_counts, parents_from_counts

SQRT_S = 13_600.0
PT_HAT_MIN = 10.0
BIAS_POWER = 4.5
BEAMSPOT_Z_CM = 3.5
"""RMS length of the luminous region in z (CMS Run 2/3: about 3.5 cm)."""

NEUTRINOS = (12, 14, 16)
PION_MASS, ELECTRON_MASS, MUON_MASS = 0.13957, 0.000511, 0.105658
"""GeV: the masses the detector gives its tracks and the vertices their tracks."""
TAU0_MAX_MM = 1000.0
"""Particles with c*tau below this decay in the generator: K0S, Lambda and the other hyperons decay
inside the tracker volume (as Geant4 decays them in CMS), giving displaced V0 vertices in every kind
of jet; charged pions and kaons and K0L (c*tau of metres) reach the calorimeters."""


def _pythia(seed: int, settings: list[str]):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in [
        f"Beams:eCM = {SQRT_S}",
        "Next:numberCount = 0",
        "Print:quiet = on",
        "Random:setSeed = on",
        f"Random:seed = {seed % 900_000_000 + 1}",
        "ParticleDecays:limitTau0 = on",
        f"ParticleDecays:tau0Max = {TAU0_MAX_MM}",
        *settings,
    ]:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia refused the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise")
    return pythia


HARD_QCD = [
    "HardQCD:all = on",
    f"PhaseSpace:pTHatMin = {PT_HAT_MIN}",
    "PhaseSpace:bias2Selection = on",
    f"PhaseSpace:bias2SelectionPow = {BIAS_POWER}",
    f"PhaseSpace:bias2SelectionRef = {PT_HAT_MIN}",
]
TTBAR = ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]
MINIMUM_BIAS = ["SoftQCD:inelastic = on"]

PROCESSES = {"qcd": HARD_QCD, "ttbar": TTBAR}
"""The hard processes by name (config key ``samples.<name>.synthetic.process``, ``gnnjec synthetic-pfnano
--process``): their Pythia settings. The schema's list of names is generated from these keys."""
DEFAULT_PROCESS = "qcd"
"""The training sample's process, and the standard correction's."""


@dataclass
class Particles(Columns):
    """A flat particle table. Momenta in GeV, production vertices in cm (relative to the
    interaction point of the particle's own collision), ``event`` indexes the events."""

    event: np.ndarray
    pdg: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray

    def __len__(self) -> int:
        return len(self.pdg)

    @property
    def pt(self):
        return np.hypot(self.px, self.py)

    @property
    def eta(self):
        pt = self.pt
        return np.arcsinh(self.pz / np.maximum(pt, 1e-9))

    @property
    def phi(self):
        return np.arctan2(self.py, self.px)


@dataclass
class HardEvents:
    """The hard-scatter events of a batch: stable particles, and the truth that labels flavour."""

    n_events: int
    stable: Particles
    partons: Particles
    """Partons at the end of the parton shower (entering hadronisation): partonFlavour's input."""
    heavy_hadrons: Particles
    """Weakly decaying b and c hadrons: hadronFlavour's input."""


def _flat(batch_prt, mask, charges) -> Particles:
    import awkward as ak

    sel = batch_prt[mask]
    counts = ak.to_numpy(ak.num(sel))
    flat = ak.flatten(sel)

    def column(a):
        return ak.to_numpy(a).astype(np.float64)

    vertex = flat.vProd
    mm_to_cm = 0.1
    pdg = ak.to_numpy(flat.id).astype(np.int32)
    codes, inverse = np.unique(pdg, return_inverse=True)
    return Particles(
        event=parents_from_counts(counts),
        pdg=pdg,
        px=column(flat.p.px),
        py=column(flat.p.py),
        pz=column(flat.p.pz),
        e=column(flat.p.e),
        vx=column(ak.fill_none(vertex.px, 0.0)) * mm_to_cm,
        vy=column(ak.fill_none(vertex.py, 0.0)) * mm_to_cm,
        vz=column(ak.fill_none(vertex.pz, 0.0)) * mm_to_cm,
        charge=np.array([charges(c) for c in codes], np.float64)[inverse],
    )


def _heavy_quark(pdg: np.ndarray) -> np.ndarray:
    """The heaviest quark of a hadron's code (5, 4, ... or 0 for leptons, gauge bosons, partons)."""
    a = np.abs(pdg)
    return np.where(a > 100, np.maximum((a // 100) % 10, (a // 1000) % 10), 0)


def _last_heavy_hadrons(prt):
    """Hadrons with a b or c quark that have no daughter with the same heavy quark: the weakly
    decaying ones (B*0 -> B0 gamma keeps the B0, B -> D X keeps both the B and the D)."""
    import awkward as ak

    counts = ak.to_numpy(ak.num(prt.id))
    first = np.repeat(offsets_from_counts(counts)[:-1], counts)
    quark = _heavy_quark(ak.to_numpy(ak.flatten(prt.id)))
    heavy = (quark == 4) | (quark == 5)
    mother = ak.to_numpy(ak.flatten(prt.mother1)) + first
    child = np.flatnonzero(heavy & (ak.to_numpy(ak.flatten(prt.mother1)) > 0))
    not_last = np.zeros(len(quark), bool)
    same = quark[mother[child]] == quark[child]
    not_last[mother[child][same]] = True
    return ak.unflatten(heavy & ~not_last, counts)


def process_settings(process: str) -> list[str]:
    """The Pythia settings of hard process ``process`` (a key of :data:`PROCESSES`)."""
    try:
        return PROCESSES[process]
    except KeyError:
        raise ValueError(f"unknown hard process {process!r}; choose one of {', '.join(PROCESSES)}") from None


def generate_hard(seed: int, n_events: int, process: str = DEFAULT_PROCESS) -> HardEvents:
    """``n_events`` events of hard process ``process`` (:data:`PROCESSES`): stable particles and flavour truth."""
    pythia = _pythia(seed, process_settings(process))
    batch = pythia.nextBatch(n_events)
    if len(batch) != n_events:
        raise RuntimeError(f"Pythia produced {len(batch)} of {n_events} events")
    prt = batch.prt
    status = prt.status
    charges = pythia.particleData.charge
    stable = _flat(prt, status > 0, charges)
    abs_id = abs(prt.id)
    abs_status = abs(status)
    is_parton = ((abs_id >= 1) & (abs_id <= 5)) | (abs_id == 21)
    partons = _flat(prt, is_parton & ((abs_status == 71) | (abs_status == 72)), charges)
    heavy_hadrons = _flat(prt, _last_heavy_hadrons(prt), charges)
    return HardEvents(n_events, stable, partons, heavy_hadrons)


def minimum_bias_pool(seed: int, n_events: int) -> Particles:
    """Stable particles of ``n_events`` minimum-bias collisions (inelastic), the pileup pool."""
    pythia = _pythia(seed, MINIMUM_BIAS)
    batch = pythia.nextBatch(n_events)
    return _flat(batch.prt, batch.prt.status > 0, pythia.particleData.charge)


def overlay(
    rng: np.random.Generator, pool: Particles, n_pool: int, n_pileup: np.ndarray
) -> tuple[Particles, np.ndarray]:
    """Pileup for each event: ``n_pileup[i]`` pool collisions, each rotated in phi, mirrored in eta
    at random and moved to its own vertex z. Returns the particles (``event`` = the event they are
    overlaid on) and, per particle, the index of its collision (``z`` of its vertex in ``vz``)."""
    total = int(n_pileup.sum())
    picks = rng.integers(0, n_pool, total)
    event_of_pick = parents_from_counts(n_pileup)
    pool_offsets = offsets_from_counts(np.bincount(pool.event, minlength=n_pool))
    sizes = pool_offsets[picks + 1] - pool_offsets[picks]
    pick_of_particle = parents_from_counts(sizes)
    index = pool_offsets[picks][pick_of_particle] + local_index(sizes)
    p = pool.take(index)
    angle = rng.uniform(-np.pi, np.pi, total)[pick_of_particle]
    mirror = np.where(rng.random(total) < 0.5, -1.0, 1.0)[pick_of_particle]
    z_vertex = rng.normal(0.0, BEAMSPOT_Z_CM, total)[pick_of_particle]
    c, s = np.cos(angle), np.sin(angle)
    px, py = c * p.px - s * p.py, s * p.px + c * p.py
    vx, vy = c * p.vx - s * p.vy, s * p.vx + c * p.vy
    out = Particles(
        event_of_pick[pick_of_particle], p.pdg, px, py, mirror * p.pz, p.e, vx, vy, mirror * p.vz + z_vertex, p.charge
    )
    return out, pick_of_particle
