"""A parametric CMS-like detector and particle-flow reconstruction, on flat arrays.

Each number is a round value of a published CMS figure, or a modelling choice where it says so.
References: [TRK] CMS, "Description and performance of track and primary-vertex reconstruction
with the CMS tracker", JINST 9 (2014) P10009; [PF] CMS, "Particle-flow reconstruction and global
event description with the CMS detector", JINST 12 (2017) P10003; [ECAL] CMS ECAL test-beam
resolution, JINST 2 (2007) P04004; [HF] CMS HCAL, "Design, performance and calibration of the CMS
forward calorimeter wedges", EPJ C 53 (2008) 139; [PUPPI] D. Bertolini et al., JHEP 10 (2014) 059,
and CMS, JINST 15 (2020) P09018.

==========================  ======================================================================
Stage                       Model
==========================  ======================================================================
Tracking, |eta| < 2.5       charged particles with pt > 0.1 GeV; efficiency for pions 0.90 (|eta| <
                            1.2) and 0.82 (nuclear interactions in the endcap material) times
                            1 - exp(-(pt - 0.1)/0.4 GeV) [TRK Fig. 12-13]; muons 0.99; in dense
                            jet cores, tracks sharing hits are lost: 30 % x exp(-dR/0.005) with
                            dR to the nearest charged particle [TRK Sec. 5.2]; tracks made 10-60
                            cm from the beam (V0 decays) found half as often, none beyond;
                            sigma(pt)/pt = 0.6 % (+) 0.015 % pt in the barrel, 1.2 % (+) 0.03 % pt
                            beyond [TRK Fig. 17]; sigma(d0) = 20 um (+) 90 um/pt, sigma(dz) =
                            30 um (+) 110 um/pt, x1.5 beyond |eta| 1.2 [TRK Fig. 20]
Magnetic field              3.8 T: charged particles reach the calorimeters bent by
                            asin(0.57 GeV/m * R / pt), R the transverse radius of the calorimeter
                            face (1.29 m barrel ECAL, z = 3.15 m endcap, 11.2 m HF); those with
                            0.57 R / pt > 1 curl up and deposit nothing
Calorimeters and PF         showers without identity labels, clusters, track-cluster links by
                            extrapolated positions, blocks, HF's long and short fibres:
                            gnnjec.demo.calorimeter; identified electrons and muons leave no
                            energy there
Leptons                     electrons identified with 85 % probability (pt > 2 GeV) and measured to
                            2 %; muons (|eta| < 2.4, pt > 3 GeV) with 95 %; otherwise a track is a
                            charged hadron
Vertices                    hard collision and pileup at z ~ N(0, 3.5 cm); vertices found from the
                            prompt tracks by clustering in z, the primary one the largest sum pt^2;
                            every track associated as CMS's PrimaryVertexAssignment does
                            (pvAssocQuality 7, 5, 4, 1; fromPV 3-0: gnnjec.demo.primary); CHS
                            removes the tracks associated with another vertex (fromPV 0) and keeps
                            every other track, displaced or unassociated, and every neutral
Track details               as MiniAOD stores them (PFNano's branches): only above 0.5 GeV, else
                            d0, dz and their errors -1; integer normalised chi2 (chi2_15 / 15,
                            3 % outliers x4); lostInnerHits -1 (85 %), else 0 or 1, and at least
                            the pixel layers (r = 2.9, 6.8 cm) inside the production radius;
                            dz to the reconstructed primary vertex; trkQuality highPurity (5)
                            unless chi2 > 5 or two lost hits (1)
PUPPI                       alpha_i = log sum over charged-from-PV j with dR < 0.4 of (pt_j/dR)^2
                            (|eta| < 2.5; all particles beyond); weight = chi2_1 CDF of the
                            signed (alpha - median)^2 / RMS^2 of the charged pileup's alphas
                            (forward: of all particles), 0 where w pt < 0.2 + 0.015 NPV GeV;
                            charged from PV (weight 1): fromPV >= 2, or fromPV 1 and |dz| < 0.3
                            cm; other charged 0 [PUPPI 2020, Run 3 settings]
rho                         fixedGridRhoFastjetAll: median of pt / area over a 0.55 grid, |eta| < 5
==========================  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kinematics import delta_phi
from ..ragged import Columns, local_index
from . import calorimeter, primary, vertices
from .events import ELECTRON_MASS, MUON_MASS, NEUTRINOS, PION_MASS, Particles

BENDING_GEV_PER_M = 0.3 * 3.8 / 2
ECAL_RADIUS_M, ECAL_ENDCAP_Z_M, HF_Z_M = 1.29, 3.15, 11.2
PUPPI_DZ_CM = 0.3
"""PUPPI counts a charged candidate closest to the primary vertex (fromPV 1) as from it within this |dz|."""
PUPPI_PT_CUT = (0.2, 0.015)
"""A neutral's weighted pt below 0.2 + 0.015 NPV GeV sets its weight to 0 (CMS's PUPPI, Run 3)."""
RHO_GRID = 0.55


@dataclass
class Candidates(Columns):
    """PF candidates (NanoAOD names), with the truth the standard correction is derived from."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    pdgId: np.ndarray
    d0: np.ndarray
    dz: np.ndarray
    puppiWeight: np.ndarray
    d0Err: np.ndarray
    dzErr: np.ndarray
    trkChi2: np.ndarray
    lostInnerHits: np.ndarray
    pvAssocQuality: np.ndarray
    trkQuality: np.ndarray
    from_pv: np.ndarray
    """MiniAOD's fromPV (:mod:`gnnjec.demo.primary`): 3 in the primary vertex's fit, 2 associated with it, 1 closest
    to it, 0 associated with another vertex (what CHS removes); neutrals 3."""
    pileup_fraction: np.ndarray
    """Share of the candidate's energy that comes from pileup (truth)."""
    dz_pv: np.ndarray | None = None
    """A track's dz to the reconstructed primary vertex, whatever its pt (the stored ``dz`` is -1 below 0.5 GeV);
    0 for neutrals. PUPPI reads it."""



def _smear(rng, x, sigma_rel):
    return x * (1.0 + sigma_rel * rng.standard_normal(len(x)))


def _tracking_efficiency(pt, abseta, muon):
    plateau = np.where(abseta < 1.2, 0.90, 0.82)
    turn_on = 1.0 - np.exp(-np.maximum(pt - 0.1, 0.0) / 0.4)
    return np.where(muon, 0.99, plateau * turn_on)


def _merged_hits(event, eta, phi, in_tracker) -> np.ndarray:
    """Chance to lose a track to a neighbour sharing its pixel hits: 30 % x exp(-dR / 0.005), dR to
    the nearest other charged particle (dense cores of high-pt jets; [TRK Sec. 5.2])."""
    from scipy.spatial import cKDTree

    loss = np.zeros(len(event))
    index = np.flatnonzero(in_tracker)
    if len(index) < 2:
        return loss
    xy = np.column_stack([eta[index] + 20.0 * event[index], phi[index]])
    distance, _ = cKDTree(xy).query(xy, k=2, distance_upper_bound=0.05)
    loss[index] = np.where(np.isfinite(distance[:, 1]), 0.3 * np.exp(-distance[:, 1] / 0.005), 0.0)
    return loss


def _calorimeter_radius(abseta):
    sinh = np.maximum(np.sinh(abseta), 1e-6)
    return np.where(abseta < 3.0, np.minimum(ECAL_RADIUS_M, ECAL_ENDCAP_Z_M / sinh), HF_Z_M / sinh)


def reconstruct(rng: np.random.Generator, particles: Particles, pileup: np.ndarray, z_pv: np.ndarray):
    """PF candidates and secondary vertices of all events in ``particles`` (``pileup`` flags pileup
    particles; ``z_pv`` is the hard vertex per event, in cm; particle vertices ``vz`` are absolute)."""
    pt_all = particles.pt
    keep = ~np.isin(np.abs(particles.pdg), NEUTRINOS) & (pt_all > 0.0)
    keep[keep] = np.abs(np.arcsinh(particles.pz[keep] / pt_all[keep])) < 5.0
    p = particles.take(keep)
    pu = pileup[keep].astype(np.float64)
    pt, eta, phi = p.pt, p.eta, p.phi
    n = len(p)
    abseta = np.abs(eta)
    energy = p.e
    apdg = np.abs(p.pdg)
    charge = np.rint(p.charge).astype(np.int64)
    charged = charge != 0
    is_e, is_mu, is_gamma = apdg == 11, apdg == 13, apdg == 22
    hadron = ~(is_e | is_mu | is_gamma)
    barrel = abseta < 1.2

    # ---- tracking --------------------------------------------------------------------------
    radius = np.hypot(p.vx, p.vy)
    merged_share = _merged_hits(p.event, eta, phi, charged & (abseta < 2.5))
    efficiency = _tracking_efficiency(pt, abseta, is_mu) * (1.0 - merged_share)
    efficiency *= np.where(radius < 10.0, 1.0, np.where(radius < 60.0, 0.5, 0.0))  # seeds need inner layers
    tracked = charged & (abseta < 2.5) & (pt > 0.1) & (rng.random(n) < efficiency)
    sigma_pt = np.hypot(np.where(barrel, 0.006, 0.012), np.where(barrel, 1.5e-4, 3e-4) * pt)
    track_pt = np.maximum(_smear(rng, pt, sigma_pt), 0.05)
    ip_scale = np.where(barrel, 1.0, 1.5)
    sigma_d0 = np.hypot(0.0020, 0.0090 / pt) * ip_scale
    sigma_dz = np.hypot(0.0030, 0.0110 / pt) * ip_scale
    # impact parameters of the straight-line track at its closest approach to the beam line
    d0_true = p.vx * np.sin(phi) - p.vy * np.cos(phi)
    z_closest = p.vz - (p.vx * np.cos(phi) + p.vy * np.sin(phi)) * np.sinh(eta)
    d0 = d0_true + sigma_d0 * rng.standard_normal(n)
    z0 = z_closest + sigma_dz * rng.standard_normal(n)  # measured: the vertices are found from these
    electron_id = is_e & tracked & (pt > 2.0) & (rng.random(n) < 0.85)
    muon_id = is_mu & tracked & (abseta < 2.4) & (pt > 3.0) & (rng.random(n) < 0.95)

    # ---- where each particle meets the calorimeters ----------------------------------------
    reach = BENDING_GEV_PER_M * _calorimeter_radius(abseta) / np.maximum(pt, 1e-6)
    curls = charged & (reach >= 1.0)
    phi_calo = np.where(charged, delta_phi(phi - charge * np.arcsin(np.minimum(reach, 1.0)), 0.0), phi)

    # ---- the calorimeters and particle flow's neutral candidates (gnnjec.demo.calorimeter) -------
    em = (is_gamma | (is_e & ~electron_id)) & ~curls
    showering = (em | (hadron & ~curls)) & ~is_mu
    sh = np.flatnonzero(showering)
    linked = np.flatnonzero(tracked & ~muon_id & ~electron_id & ~curls)
    track_p = track_pt[linked] * np.cosh(eta[linked])
    ext_eta, ext_phi = calorimeter.extrapolate(rng, eta[linked], phi_calo[linked], track_p)
    neutrals = calorimeter.particle_flow(
        rng,
        calorimeter.Showers(p.event[sh], energy[sh], eta[sh], phi_calo[sh], em[sh], pu[sh]),
        calorimeter.Tracks(p.event[linked], track_p, ext_eta, ext_phi),
    )

    # ---- candidates ------------------------------------------------------------------------
    parts = []
    # charged: tracks (hadrons, identified electrons and muons)
    ch = np.flatnonzero(tracked)
    code = np.where(electron_id[ch], 11, np.where(muon_id[ch], 13, 211))
    q = charge[ch]
    ch_pt = np.where(electron_id[ch], _smear(rng, pt[ch], np.full(len(ch), 0.02)), track_pt[ch])
    vtx = primary.associate(p.event[ch], z0[ch], sigma_dz[ch], ch_pt, eta[ch], phi[ch], d0[ch] / sigma_d0[ch],
                            len(z_pv))
    dz_pv = z0[ch] - vtx.z_pv[p.event[ch]]
    details = _track_details(rng, ch_pt, d0[ch], dz_pv, sigma_d0[ch], sigma_dz[ch], np.hypot(p.vx[ch], p.vy[ch]),
                             vtx.quality)
    parts.append(
        Candidates(
            p.event[ch], ch_pt, eta[ch], phi[ch],
            np.select([code == 11, code == 13], [ELECTRON_MASS, MUON_MASS], PION_MASS),
            q, np.where(code == 211, code * q, -code * q), details["d0"], details["dz"], np.zeros(len(ch)),
            details["d0Err"], details["dzErr"], details["trkChi2"], details["lostInnerHits"],
            details["pvAssocQuality"], details["trkQuality"], vtx.from_pv, pu[ch], dz_pv,
        )
    )
    parts.append(_neutral(neutrals.event, neutrals.energy, neutrals.eta, neutrals.phi, neutrals.code,
                          neutrals.pileup_fraction))
    cands = Candidates.concat(parts)
    order = np.argsort(cands.event, kind="stable")
    secondary = vertices.reconstruct(
        p.event[ch], track_pt[ch], eta[ch], phi[ch], d0[ch], z0[ch], sigma_d0[ch], sigma_dz[ch], vtx.z_pv,
        truth=vertices.Truth(p.vx[ch], p.vy[ch], p.vz[ch] - z_pv[p.event[ch]], pu[ch] > 0),  # the audit label only
    )
    return cands.take(order), secondary, vtx


def _neutral(event, energy, eta, phi, code, pileup_fraction):
    """Neutral candidates, with PFNano's values for "no track" (-1, association quality 7, fromPV 3)."""
    m = len(event)
    zeros, none = np.zeros(m), np.full(m, -1.0)
    return Candidates(
        event.astype(np.int64), energy / np.cosh(eta), eta, phi, zeros, np.zeros(m, np.int64), code.astype(np.int64),
        none, none, zeros, none, none, none, np.full(m, -1, np.int64), np.full(m, 7, np.int64),
        np.zeros(m, np.int64), np.full(m, primary.PV_USED_IN_FIT, np.int64), pileup_fraction, zeros,
    )


TRACK_DETAILS_PT = 0.5
PIXEL_LAYERS_CM = (2.9, 6.8)


def _track_details(rng, pt, d0, dz, sigma_d0, sigma_dz, production_radius, association) -> dict:
    """PFNano's track details, as MiniAOD stores them: only above 0.5 GeV (else -1, and d0 and dz
    are -1 too); an integer normalised chi2; hits lost before the first measured layer (a track
    made beyond a pixel layer misses it); the association's quality (:mod:`gnnjec.demo.primary`); highPurity
    unless the fit is poor."""
    m = len(pt)
    has = pt > TRACK_DETAILS_PT
    chi2 = rng.chisquare(15, m) / 15 * np.where(rng.random(m) < 0.03, 4.0, 1.0)
    lost = np.where(rng.random(m) < 0.85, -1, np.where(rng.random(m) < 0.7, 0, 1))
    lost = np.maximum(lost, np.searchsorted(PIXEL_LAYERS_CM, production_radius))
    return {
        "d0": np.where(has, d0, -1.0),
        "dz": np.where(has, dz, -1.0),
        "d0Err": np.where(has, sigma_d0 * rng.uniform(0.85, 1.15, m), -1.0),
        "dzErr": np.where(has, sigma_dz * rng.uniform(0.85, 1.15, m), -1.0),
        "trkChi2": np.where(has, np.rint(chi2), -1.0),
        "lostInnerHits": lost.astype(np.int64),
        "pvAssocQuality": association.astype(np.int64),
        "trkQuality": np.where(has, np.where((chi2 > 5) | (lost >= 2), 1, 5), 0).astype(np.int64),
    }


REFERENCE_PER_EVENT = 200
"""At most this many pileup particles per event set PUPPI's median and RMS (a fixed subsample)."""


def puppi_weights(c: Candidates, wanted: np.ndarray | None = None, npv: np.ndarray | None = None) -> np.ndarray:
    """PUPPI weights of the candidates of all events (see the module table); neutral weights are
    computed where ``wanted`` is true (all by default) and 0 elsewhere; ``npv`` per event sets the neutrals'
    pt cut (none given: one vertex)."""
    from scipy.spatial import cKDTree
    from scipy.stats import chi2

    charged = c.charge != 0
    dz = c.dz_pv if c.dz_pv is not None else np.zeros(len(c.pt))
    pv = charged & ((c.from_pv >= primary.PV_TIGHT) | ((c.from_pv == primary.PV_LOOSE) & (np.abs(dz) < PUPPI_DZ_CM)))
    central = np.abs(c.eta) < 2.5
    # one tree for all events: events are moved apart in eta; phi copies cover the wrap-around
    x = c.eta + 20.0 * c.event

    def points(index):
        xs, ys, origin = [x[index]], [c.phi[index]], [index]
        for shift in (2 * np.pi, -2 * np.pi):
            near = np.abs(c.phi[index] + shift) < np.pi + 0.4
            xs.append(x[index][near])
            ys.append(c.phi[index][near] + shift)
            origin.append(index[near])
        return np.column_stack([np.concatenate(xs), np.concatenate(ys)]), np.concatenate(origin)

    def alpha(targets, sources):
        src_xy, src = points(sources)
        tree_s = cKDTree(src_xy)
        tree_t = cKDTree(np.column_stack([x[targets], c.phi[targets]]))
        pairs = tree_t.sparse_distance_matrix(tree_s, 0.4, output_type="coo_matrix")
        dr = pairs.data
        ok = dr > 1e-4
        total = np.bincount(pairs.row[ok], weights=(c.pt[src[pairs.col[ok]]] / dr[ok]) ** 2, minlength=len(targets))
        with np.errstate(divide="ignore"):
            return np.log(total)  # -inf: nothing within dR < 0.4

    weights = np.where(charged, np.where(pv, 1.0, 0.0), 0.0)
    n_events = int(c.event.max(initial=-1)) + 1
    for in_tracker in (True, False):
        region = central if in_tracker else ~central
        neutral = np.flatnonzero(region & ~charged & (True if wanted is None else wanted))
        if len(neutral) == 0:
            continue
        # inside the tracker, alpha counts charged particles from the hard vertex and the charged
        # pileup gives the reference; beyond it, every particle counts and all of them are the
        # reference (most are pileup)
        sources = np.flatnonzero(pv) if in_tracker else np.flatnonzero(region)
        reference = np.flatnonzero((charged & ~pv & central) if in_tracker else (region & ~charged))
        reference = reference[local_rank(c.event[reference]) < REFERENCE_PER_EVENT]
        a_ref = alpha(reference, sources)
        a = alpha(neutral, sources)
        # the reference statistics count particles with neighbours; a neutral without any gets 0
        finite = np.isfinite(a_ref)
        reference, a_ref = reference[finite], a_ref[finite]
        # median and RMS (about the median, from the low side as PUPPI does) per event
        ev_ref = c.event[reference]
        median = np.full(n_events, np.nan)
        rms = np.full(n_events, np.nan)
        order = np.lexsort((a_ref, ev_ref))
        counts = np.bincount(ev_ref, minlength=n_events)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        has = counts > 0
        median[has] = a_ref[order][starts[has] + counts[has] // 2]
        low = a_ref < median[ev_ref]
        dev2 = np.bincount(ev_ref[low], weights=(a_ref[low] - median[ev_ref][low]) ** 2, minlength=n_events)
        n_low = np.bincount(ev_ref[low], minlength=n_events)
        rms = np.sqrt(dev2 / np.maximum(n_low, 1))
        med, sig = median[c.event[neutral]], rms[c.event[neutral]]
        ok = np.isfinite(med) & (sig > 0)
        signed = np.where(np.isfinite(a) & (a > med), (a - med) ** 2 / np.where(ok, sig, 1.0) ** 2, 0.0)
        w = np.where(ok, chi2.cdf(signed, 1), np.where(np.isfinite(a), 1.0, 0.0))
        n_vertices = np.ones(n_events) if npv is None else np.asarray(npv, np.float64)
        cut = PUPPI_PT_CUT[0] + PUPPI_PT_CUT[1] * n_vertices[c.event[neutral]]
        weights[neutral] = np.where(w * c.pt[neutral] < cut, 0.0, w)
    return weights


def local_rank(event: np.ndarray) -> np.ndarray:
    """Position of each entry among the entries of its event (``event`` sorted ascending)."""
    return local_index(np.bincount(event))


def fixed_grid_rho(c: Candidates, n_events: int) -> np.ndarray:
    """fixedGridRhoFastjetAll: median over 0.55-wide cells (|eta| < 5) of the cells' pt / area."""
    n_eta = int(round(10.0 / RHO_GRID))
    n_phi = int(round(2 * np.pi / RHO_GRID))
    inside = np.abs(c.eta) < 5.0
    ieta = np.clip(((c.eta[inside] + 5.0) / (10.0 / n_eta)).astype(np.int64), 0, n_eta - 1)
    iphi = np.clip(((c.phi[inside] + np.pi) / (2 * np.pi / n_phi)).astype(np.int64), 0, n_phi - 1)
    cells = n_eta * n_phi
    cell = c.event[inside] * cells + ieta * n_phi + iphi
    sums = np.bincount(cell, weights=c.pt[inside], minlength=n_events * cells)
    density = sums.reshape(n_events, cells) / ((10.0 / n_eta) * (2 * np.pi / n_phi))
    return np.median(density, axis=1)
