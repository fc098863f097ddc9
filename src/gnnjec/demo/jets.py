"""Jets: anti-kt R = 0.4 with FastJet, jet areas, flavour labels and reco-to-gen matching.

* GenJets: all stable generator particles of the hard collision except neutrinos (CMS's
  ``ak4GenJetsNoNu``), pt > 10 GeV.
* Reco jets: the PF candidates that charged-hadron subtraction keeps (AK4 CHS, the thesis's jets).
* Area: the passive area of an anti-kt jet, which is its disc of radius R minus the parts within R
  of a harder jet and beyond |eta| = 5, counted on a fixed grid of points (the FastJet active
  area of these jets differs by a few per cent; the L1 correction uses rho * area).
* Flavour, the CMS "ghost" definitions approximated by nearest-jet association within R:
  hadronFlavour is 5 if a weakly decaying b hadron belongs to the jet, else 4 for a c hadron,
  else 0; partonFlavour is the code of the hardest parton at the end of the shower in the jet,
  unless a b (then c) parton is there.
* Matching: each reco jet to the nearest GenJet within dR < 0.2 (half the radius), NanoAOD's
  ``Jet_genJetIdx``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from ..kinematics import delta_phi, to_cartesian, to_collider
from ..ragged import offsets_from_counts, parents_from_counts

R = 0.4
ETA_MAX = 5.0


@contextlib.contextmanager
def _quiet_stdout():
    """FastJet prints its banner on stdout the first time it clusters; keep logs clean."""
    fd = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


@dataclass
class Jets:
    """Jets of many events: four-momenta, their event, and which input particle went where."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    constituent_jet: np.ndarray
    """For every input particle, the index of its jet (-1: in no kept jet)."""


def cluster(event, pt, eta, phi, mass, n_events: int, min_pt: float) -> Jets:
    """Anti-kt R = 0.4 per event on flat particle arrays (``event`` sorted ascending)."""
    import awkward as ak
    import fastjet

    if len(event) and np.any(np.diff(event) < 0):
        raise ValueError("cluster: particles must be grouped by event")
    px, py, pz, e = to_cartesian(pt, eta, phi, mass)
    counts = np.bincount(event, minlength=n_events)
    particles = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}), counts)
    with _quiet_stdout():
        sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, R))
        jets = sequence.inclusive_jets(min_pt=min_pt)
        members = sequence.constituent_index(min_pt=min_pt)
    n_jets = ak.to_numpy(ak.num(jets))
    flat = ak.flatten(jets)
    jpt, jeta, jphi, jmass = to_collider(*(ak.to_numpy(flat[f]).astype(np.float64) for f in ("px", "py", "pz", "E")))
    # order jets by pt inside each event (FastJet's inclusive jets are not sorted)
    jet_event = parents_from_counts(n_jets)
    order = np.lexsort((-jpt, jet_event))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    # constituents: local particle index -> global, jet -> its sorted position
    per_jet = ak.to_numpy(ak.num(ak.flatten(members, axis=1)))
    local = ak.to_numpy(ak.flatten(members, axis=None)).astype(np.int64)
    jet_of_member = parents_from_counts(per_jet)
    first_particle = offsets_from_counts(counts)[:-1]
    constituent_jet = np.full(len(event), -1, np.int64)
    constituent_jet[first_particle[jet_event[jet_of_member]] + local] = rank[jet_of_member]
    return Jets(jet_event[order], jpt[order], jeta[order], jphi[order], jmass[order], constituent_jet)


def passive_area(jets: Jets, spacing: float = 0.02) -> np.ndarray:
    """Area of each anti-kt jet: its disc minus what harder jets within 2R and |eta| > 5 take."""
    g = np.arange(-R, R + spacing / 2, spacing)
    gx, gy = np.meshgrid(g, g)
    disc = gx**2 + gy**2 < R * R
    dx, dy = gx[disc], gy[disc]
    cell = spacing * spacing
    n = len(jets.pt)
    free = np.ones((n, len(dx)), bool)
    free &= np.abs(jets.eta[:, None] + dx[None, :]) < ETA_MAX
    # pairs of jets in the same event closer than 2R; jets are pt-ordered inside each event
    offsets = offsets_from_counts(np.bincount(jets.event, minlength=int(jets.event.max(initial=-1)) + 1))
    soft, hard = [], []
    for k in range(1, int(np.diff(offsets).max(initial=0))):
        i = np.arange(n)
        j = i - k
        valid = (j >= 0) & (jets.event[np.maximum(j, 0)] == jets.event)
        soft.append(i[valid])
        hard.append(j[valid])
    if soft:
        soft, hard = np.concatenate(soft), np.concatenate(hard)
        close = np.hypot(jets.eta[soft] - jets.eta[hard], delta_phi(jets.phi[soft], jets.phi[hard])) < 2 * R
        soft, hard = soft[close], hard[close]
        for start in range(0, len(soft), 2048):  # bounded memory: 2048 pairs x grid points
            i, j = soft[start : start + 2048], hard[start : start + 2048]
            deta = (jets.eta[i] - jets.eta[j])[:, None] + dx[None, :]
            dphi = delta_phi(jets.phi[i][:, None] + dy[None, :], jets.phi[j][:, None])
            np.logical_and.at(free, i, deta**2 + dphi**2 >= R * R)
    return free.sum(axis=1) * cell


def nearest_jet(jets: Jets, event, eta, phi, max_dr: float = R) -> np.ndarray:
    """For each object, the nearest jet of its event within ``max_dr`` (-1 if none)."""
    n_events = int(max(jets.event.max(initial=-1), np.max(event, initial=-1))) + 1
    offsets = offsets_from_counts(np.bincount(jets.event, minlength=n_events))
    best = np.full(len(event), -1, np.int64)
    best_dr = np.full(len(event), max_dr)
    for k in range(int(np.diff(offsets).max(initial=0))):
        j = offsets[event] + k
        valid = j < offsets[event + 1]
        jj = np.where(valid, j, 0)
        dr = np.hypot(eta - jets.eta[jj], delta_phi(phi, jets.phi[jj]))
        better = valid & (dr < best_dr)
        best[better] = j[better]
        best_dr[better] = dr[better]
    return best


def flavours(jets: Jets, partons, hadrons) -> tuple[np.ndarray, np.ndarray]:
    """(hadronFlavour, partonFlavour) of each jet from the generator's partons and heavy hadrons."""
    n = len(jets.pt)
    h_jet = nearest_jet(jets, hadrons.event, hadrons.eta, hadrons.phi)
    h_quark = np.abs(hadrons.pdg)
    h_quark = np.maximum((h_quark // 100) % 10, (h_quark // 1000) % 10)
    has_b = np.zeros(n, bool)
    has_c = np.zeros(n, bool)
    has_b[h_jet[(h_jet >= 0) & (h_quark == 5)]] = True
    has_c[h_jet[(h_jet >= 0) & (h_quark == 4)]] = True
    hadron_flavour = np.where(has_b, 5, np.where(has_c, 4, 0))

    p_jet = nearest_jet(jets, partons.event, partons.eta, partons.phi)
    inside = p_jet >= 0
    pj, pid, ppt = p_jet[inside], partons.pdg[inside], partons.pt[inside]
    parton_flavour = np.zeros(n, np.int64)
    # hardest parton per jet: sort by (jet, pt) and take the last of each jet
    order = np.lexsort((ppt, pj))
    last = np.flatnonzero(np.r_[pj[order][1:] != pj[order][:-1], True])
    parton_flavour[pj[order][last]] = pid[order][last]
    for quark in (4, 5):  # b overrides c overrides the hardest
        sel = np.abs(pid) == quark
        parton_flavour[pj[sel]] = pid[sel]
    return hadron_flavour, parton_flavour


def match(reco: Jets, gen: Jets, max_dr: float = R / 2) -> np.ndarray:
    """Index (into ``gen``) of the nearest GenJet within ``max_dr`` of each reco jet, or -1."""
    return nearest_jet(gen, reco.event, reco.eta, reco.phi, max_dr)

