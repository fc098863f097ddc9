"""Four-vector arithmetic on flat numpy arrays in the collider coordinates (pt, eta, phi, mass)."""

from __future__ import annotations

import numpy as np

from .ragged import segment_sum


def to_cartesian(pt, eta, phi, mass):
    """(px, py, pz, E) from (pt, eta, phi, mass), all float64."""
    pt = np.asarray(pt, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    energy = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    return px, py, pz, energy


def to_collider(px, py, pz, energy):
    """(pt, eta, phi, mass) from (px, py, pz, E); massless-safe, eta finite for pt > 0."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), 0.0))
    phi = np.arctan2(py, px)
    m2 = energy * energy - (px * px + py * py + pz * pz)
    mass = np.sqrt(np.clip(m2, 0.0, None))
    return pt, eta, phi, mass


def sum_four_vectors(pt, eta, phi, mass, parents, n_parents):
    """Vector sum of children per parent, returned as (pt, eta, phi, mass)."""
    px, py, pz, energy = to_cartesian(pt, eta, phi, mass)
    return to_collider(
        segment_sum(px, parents, n_parents),
        segment_sum(py, parents, n_parents),
        segment_sum(pz, parents, n_parents),
        segment_sum(energy, parents, n_parents),
    )


def delta_phi(phi1, phi2):
    """phi1 - phi2 wrapped into [-pi, pi)."""
    return (np.asarray(phi1) - np.asarray(phi2) + np.pi) % (2 * np.pi) - np.pi
