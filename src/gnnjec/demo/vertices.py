"""Secondary vertices of the demo detector: displaced decays of b and c hadrons (and of tau leptons).

Tracks from one decay share their production vertex. Every group of at least two tracked charged
particles of the hard collision with pt > 0.8 GeV, produced more than 50 um from the beam line,
is a vertex candidate; its position is the true decay point smeared by the vertex resolution
(30 um transverse and 60 um along z for two tracks, shrinking as 1/sqrt(tracks/2); CMS IVF vertices
reach 20-50 um, CMS BTV-16-002), its momentum the sum of the measured tracks (pion masses). A
candidate is found with 75 % probability and kept, as NanoAOD's SV table keeps them, when its
3D flight distance is more than 3 standard deviations. Each vertex is associated with the nearest
reco jet within dR < 0.4 of its momentum, as PFNano's JetSVs table does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kinematics import delta_phi, sum_four_vectors
from .events import PION_MASS

MIN_TRACK_PT = 0.8
MIN_RADIUS_CM = 0.005
SIGMA_XY_CM, SIGMA_Z_CM = 0.003, 0.006
EFFICIENCY = 0.75
MIN_SIGNIFICANCE = 3.0


@dataclass
class Vertices:
    """Reconstructed secondary vertices (NanoAOD ``SV_`` names); positions relative to the primary vertex."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    ntracks: np.ndarray
    chi2: np.ndarray
    ndof: np.ndarray
    dxy: np.ndarray
    dxySig: np.ndarray
    dlen: np.ndarray
    dlenSig: np.ndarray
    pAngle: np.ndarray

    @property
    def energy(self):
        return np.sqrt((self.pt * np.cosh(self.eta)) ** 2 + self.mass**2)


def reconstruct(rng, event, vx, vy, vz_from_pv, pt, eta, phi, usable) -> Vertices:
    """Vertices from the particles flagged ``usable`` (tracked, charged, from the hard collision);
    ``vz_from_pv`` is each particle's production z relative to the primary vertex (cm)."""
    sel = np.flatnonzero(usable & (pt > MIN_TRACK_PT) & (np.hypot(vx, vy) > MIN_RADIUS_CM))
    if len(sel) == 0:
        return _empty()
    key = np.column_stack([event[sel], np.round(vx[sel], 7), np.round(vy[sel], 7), np.round(vz_from_pv[sel], 7)])
    _, group, n_tracks = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    n_groups = len(n_tracks)
    pion = np.full(len(sel), PION_MASS)
    spt, seta, sphi, smass = sum_four_vectors(pt[sel], eta[sel], phi[sel], pion, group, n_groups)
    first = np.zeros(n_groups, np.int64)
    first[group[::-1]] = np.arange(len(sel))[::-1]
    tx, ty, tz = vx[sel][first], vy[sel][first], vz_from_pv[sel][first]
    scale = np.sqrt(2.0 / np.maximum(n_tracks, 2))
    x = tx + SIGMA_XY_CM * scale * rng.standard_normal(n_groups)
    y = ty + SIGMA_XY_CM * scale * rng.standard_normal(n_groups)
    z = tz + SIGMA_Z_CM * scale * rng.standard_normal(n_groups)
    dxy = np.hypot(x, y)
    dlen = np.sqrt(x * x + y * y + z * z)
    sigma_xy = SIGMA_XY_CM * scale
    sigma_3d = np.sqrt((sigma_xy * np.hypot(x, y)) ** 2 + (SIGMA_Z_CM * scale * z) ** 2) / np.maximum(dlen, 1e-9)
    px, py, pz = spt * np.cos(sphi), spt * np.sin(sphi), spt * np.sinh(seta)
    cos_angle = (x * px + y * py + z * pz) / np.maximum(dlen * np.sqrt(px * px + py * py + pz * pz), 1e-12)
    ndof = 2 * n_tracks - 3
    found = (n_tracks >= 2) & (rng.random(n_groups) < EFFICIENCY) & (dlen / sigma_3d > MIN_SIGNIFICANCE)
    k = np.flatnonzero(found)
    return Vertices(
        event=event[sel][first][k], pt=spt[k], eta=seta[k], phi=sphi[k], mass=smass[k], x=x[k], y=y[k], z=z[k],
        ntracks=n_tracks[k], chi2=rng.chisquare(np.maximum(ndof[k], 1)), ndof=ndof[k].astype(np.float64),
        dxy=dxy[k], dxySig=dxy[k] / sigma_xy[k], dlen=dlen[k], dlenSig=dlen[k] / sigma_3d[k],
        pAngle=np.arccos(np.clip(cos_angle[k], -1, 1)),
    )


def _empty() -> Vertices:
    z = np.zeros(0)
    return Vertices(np.zeros(0, np.int64), z, z, z, z, z, z, z, np.zeros(0, np.int64), z, z, z, z, z, z, z)


def associate(vertices: Vertices, jet_event, jet_eta, jet_phi, max_dr: float = 0.4) -> np.ndarray:
    """Index of the nearest jet (same event) within ``max_dr`` of each vertex's momentum, or -1."""
    from .jets import Jets, nearest_jet

    jets = Jets(jet_event, np.zeros(len(jet_event)), jet_eta, jet_phi, np.zeros(len(jet_event)), np.zeros(0, np.int64))
    return nearest_jet(jets, vertices.event, vertices.eta, vertices.phi, max_dr)


def pointing_cosine(v: Vertices) -> np.ndarray:
    return np.cos(v.pAngle)


def delta_r(v: Vertices, jet_eta, jet_phi) -> np.ndarray:
    return np.hypot(v.eta - jet_eta, delta_phi(v.phi, jet_phi))
