"""The calorimeters and particle flow's use of them: showers without identity labels, clusters, links, blocks.

The detector (:mod:`gnnjec.demo.detector`) hands over each particle that reaches the calorimeters with its type
(which decides how it showers) and the tracks with their extrapolated impact points; particle flow sees only
energies at positions. References as in :mod:`gnnjec.demo.detector`, and [PDG] the Review of Particle Physics,
"Passage of particles through matter" and "Particle detectors at accelerators" (PbWO4: lambda_I 20.3 cm; hadronic
showers' electromagnetic fraction, Groom's form); [HCAL] CMS, "Performance of the CMS hadron calorimeter with
cosmic ray muons and LHC beam data", JINST 5 (2010) T03012 (towers 0.087, HF's long and short fibres).

==========================  ======================================================================
Stage                       Model
==========================  ======================================================================
Electromagnetic showers     photons and electrons not identified as such, |eta| < 3: all their energy
                            in the ECAL, sigma/E = 2.8 %/sqrt(E) (+) 12 %/E (+) 0.3 % barrel [ECAL],
                            5.7 %/sqrt(E) (+) 25 %/E (+) 0.55 % endcap; the deposit's centre lands
                            N(0, 0.003) from the impact point (4 mm at the barrel's face)
Hadron showers              |eta| < 3: the raw energy is E x response(E), response 1 - 0.60 E^-0.30
                            (0.51 at 2 GeV, 0.70 at 10, 0.85 at 100: CMS is non-compensating, near
                            its E/p for isolated pions), sigma/E = 120 %/sqrt(E) (+) 7 % [PF Sec.
                            3.4], 10 % leak (times U(0.5, 1)). A hadron interacts in the ECAL with
                            probability 1 - exp(-1.1) = 0.67 (23 cm of PbWO4, lambda_I 20.3 cm
                            [PDG]); one that does leaves 1 - exp(-(1.1 - x)) of its raw energy there,
                            x its interaction depth in lambda (an exponential truncated to the
                            ECAL), times U(0.6, 1.4) (a modelling choice: the shower's profile is
                            not simulated); the rest in the HCAL. The ECAL part's centre lands
                            N(0, 0.01) from the impact point, the HCAL part's N(0, 0.03)
HF, 3 < |eta| < 5           Cherenkov light in long (L) and short (S, from 22 cm deep) fibres
                            [HCAL]: an electromagnetic shower (raw E smeared by 198 %/sqrt(E) (+)
                            9 %) puts a share s ~ |N(0, 0.03)| of its light into S; a hadron's raw
                            energy (E x (1 - 0.40 E^-0.20), smeared by 280 %/sqrt(E) (+) 11 %)
                            holds its electromagnetic part f E, f = 1 - (E / 0.7 GeV)^-0.18 [PDG,
                            Groom] + N(0, 0.12), seen in L only, and a hadronic rest shared
                            equally by L and S. Towers of 0.175 x 0.175
Clusters                    friends of friends on the deposits: ECAL deposits within 1.5 crystals
                            merge (0.0174 barrel; endcap 28.6 mm at z = 3.15 m, 0.019 at |eta| 1.5
                            to 0.082 at 2.9), so close photons (a boosted pi0's) make one cluster;
                            HCAL deposits within one tower (0.087) merge. A cluster exists above
                            its seed threshold (ECAL 0.23 GeV barrel, 0.6 GeV endcap; HCAL 0.8 GeV)
Links                       a track's impact point is extrapolated with an error N(0, 0.001 (+)
                            0.01 GeV / p) in eta and phi (multiple scattering; a modelling choice);
                            it is linked to the cluster of the nearest deposit centre within 2
                            crystals or 1.5 towers of it (a shower's extent and one cell more [PF
                            Sec. 4.1]); beyond the tracker (2.5 < |eta| < 3) an ECAL cluster is
                            linked to the HCAL cluster of the nearest HCAL deposit within 1.5
                            towers. Linked elements form blocks
Particle flow               blocks with tracks: the calorimeter energy E = calibrated(ECAL + HCAL
                            raw) (the single-hadron calibration E = raw / response(E), applied to the
                            block: several hadrons, or a photon beside a hadron, are mis-calibrated);
                            its excess over the tracks' momenta, where it exceeds 1.2 sqrt(p) (+)
                            0.07 p and 1 GeV, is a photon up to the block's ECAL energy, and a
                            neutral hadron for the rest above 1 GeV [PF Sec. 4.10]. Blocks without
                            tracks: each ECAL cluster is a photon (above 0.5 GeV barrel, 1 GeV
                            endcap), each HCAL cluster a neutral hadron of calibrated energy (above
                            0.8 GeV raw), an ECAL cluster linked to an HCAL cluster beyond the
                            tracker one neutral hadron of their calibrated sum. HF towers: an HF EM
                            candidate (pdgId 2) of L - S and an HF hadron (pdgId 1) of 2 S
                            calibrated as single pions, each above 1.4 GeV (CMS's HF
                            reconstruction, E_em = L - S, E_had = 2 S)
Not modelled                muons' and non-interacting hadrons' ionisation in the ECAL (0.3 GeV), the
                            showers' lateral profile over cells, cluster splitting by several seeds
==========================  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kinematics import delta_phi
from ..ragged import segment_sum

ECAL_CRYSTAL = 0.0174
ECAL_ENDCAP_CRYSTAL_M, ECAL_ENDCAP_Z_M = 0.0286, 3.15
ECAL_BARREL_ETA = 1.479
HCAL_TOWER = 0.087
HF_TOWER = 2 * np.pi / 36
ECAL_DEPTH_LAMBDA = 1.1
"""The ECAL's depth in nuclear interaction lengths: 23 cm of PbWO4 (lambda_I 20.3 cm)."""
ECAL_SEED = (0.23, 0.6)
"""An ECAL cluster's seed threshold, barrel and endcap (GeV)."""
HCAL_SEED = 0.8
PHOTON_MIN = (0.5, 1.0)
"""A photon candidate's least energy, barrel and endcap (GeV)."""
HF_MIN = 1.4
NEUTRAL_EXCESS_MIN = 1.0
TRACKER_ETA = 2.5
EM_SPREAD, HADRON_ECAL_SPREAD, HADRON_HCAL_SPREAD = 0.003, 0.01, 0.03
"""How far a deposit's centre lands from the impact point (eta and phi, each)."""
ECAL_LINK_CELLS, HCAL_LINK_CELLS = 2.0, 1.5
"""A track links to a cluster whose nearest deposit centre is within this many cells of it: a shower's cluster
reaches about one cell (ECAL, 3 x 3 crystals) or half a tower (HCAL) beyond its centre, and particle flow enlarges
the cluster by one cell [PF Sec. 4.1]."""


def hadron_response(energy):
    return 1.0 - 0.60 * np.power(np.maximum(energy, 0.05), -0.30)


def hf_hadron_response(energy):
    return 1.0 - 0.40 * np.power(np.maximum(energy, 0.05), -0.20)


def hf_em_fraction(energy):
    """The mean electromagnetic fraction of a hadron shower of ``energy`` GeV (Groom's form, E0 = 0.7 GeV, k = 0.82)."""
    return 1.0 - np.power(np.maximum(energy, 0.7) / 0.7, -0.18)


def calibrate(raw, response):
    """The single-hadron calibration: E = raw / response(E), solved by a few fixed-point steps."""
    energy = raw / response(raw)
    for _ in range(25):  # a contraction: |d/dE raw / response(E)| < 0.5 above 0.5 GeV
        energy = raw / response(energy)
    return energy


def hf_hadronic_calibration(e_had):
    """The HF hadron's energy from its hadronic part 2 S, as single pions calibrate it: a pion of energy E leaves on
    average f E as L - S and (response - f) E as 2 S, so 2 S is scaled by (1 - f) / (response - f) at the E it
    implies (a few fixed-point steps)."""
    def scale(energy):
        f = hf_em_fraction(energy)
        return (1.0 - f) / np.maximum(hf_hadron_response(energy) - f, 0.05)

    energy = e_had * scale(np.maximum(e_had, 1.0))
    for _ in range(10):
        energy = e_had * scale(np.maximum(energy, 1.0))
    return energy


def ecal_cell(abseta):
    """An ECAL crystal's width in eta and phi at ``abseta``."""
    return np.where(abseta < ECAL_BARREL_ETA, ECAL_CRYSTAL,
                    ECAL_ENDCAP_CRYSTAL_M * np.sinh(np.minimum(abseta, 3.0)) / ECAL_ENDCAP_Z_M)


@dataclass
class Showers:
    """What reaches the calorimeters, per particle: its event, energy, impact point and how it showers."""

    event: np.ndarray
    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    em: np.ndarray
    """Showers electromagnetically (a photon or an electron that is not identified); else hadronically."""
    pileup: np.ndarray


@dataclass
class Tracks:
    """The tracks particle flow links to the calorimeters: momentum and extrapolated impact point."""

    event: np.ndarray
    p: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


@dataclass
class Neutrals:
    """Neutral PF candidates: event, energy, eta, phi, pdgId and the truth share of pileup energy (audit only)."""

    event: np.ndarray
    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    code: np.ndarray
    pileup_fraction: np.ndarray


def extrapolate(rng, eta, phi, p):
    """A track's impact point as particle flow extrapolates it: the true one moved by the extrapolation's error."""
    sigma = np.hypot(0.001, 0.01 / np.maximum(p, 0.1))
    return eta + sigma * rng.standard_normal(len(p)), delta_phi(phi + sigma * rng.standard_normal(len(p)), 0.0)


def _points(event, eta, phi):
    """Positions where a Euclidean distance is dR for small separations; events lie 20 apart in eta."""
    return np.column_stack([eta + 20.0 * event, np.cos(phi), np.sin(phi)])


def components(n: int, i, j) -> tuple[int, np.ndarray]:
    """The connected components of ``n`` nodes joined by the edges (i, j): how many, and each node's."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    return connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)


def friends_of_friends(event, eta, phi, link) -> tuple[int, np.ndarray]:
    """Clusters of points: two points closer than the smaller of their ``link`` lengths are in the same one."""
    from scipy.spatial import cKDTree

    n = len(event)
    if n == 0:
        return 0, np.zeros(0, np.int64)
    xyz = _points(event, eta, phi)
    pairs = cKDTree(xyz).query_pairs(float(np.max(link)), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    close = np.linalg.norm(xyz[i] - xyz[j], axis=1) < np.minimum(link[i], link[j])
    return components(n, i[close], j[close])


def nearest(event, eta, phi, tol, d_event, d_eta, d_phi, d_label) -> np.ndarray:
    """Per query point, the label of the nearest of the ``d_*`` points within ``tol`` of it (per query), or -1."""
    from scipy.spatial import cKDTree

    out = np.full(len(event), -1, np.int64)
    if len(event) == 0 or len(d_event) == 0:
        return out
    dist, index = cKDTree(_points(d_event, d_eta, d_phi)).query(
        _points(event, eta, phi), k=1, distance_upper_bound=float(np.max(tol)))
    ok = np.isfinite(dist) & (dist < tol)
    out[ok] = d_label[index[ok]]
    return out


def weighted_position(weight, eta, phi, group, n) -> tuple[np.ndarray, np.ndarray]:
    """The ``weight``-weighted (eta, phi) of each of ``n`` groups (phi averaged as a direction, so across +-pi too)."""
    norm = np.maximum(segment_sum(weight, group, n), 1e-12)
    return (segment_sum(weight * eta, group, n) / norm,
            np.arctan2(segment_sum(weight * np.sin(phi), group, n), segment_sum(weight * np.cos(phi), group, n)))


@dataclass
class Clusters:
    """Clusters of one calorimeter: raw energy, energy-weighted position, pileup share; and each deposit's cluster."""

    event: np.ndarray
    raw: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    pileup: np.ndarray
    of_deposit: np.ndarray
    """Per deposit, its cluster (-1: the cluster is below its seed threshold)."""


def clusters(event, raw, eta, phi, pileup, link, seed) -> Clusters:
    """Friends-of-friends clusters of the deposits, kept above ``seed`` (per cluster, from its position)."""
    n, label = friends_of_friends(event, eta, phi, link)
    energy = segment_sum(raw, label, n)
    norm = np.maximum(energy, 1e-12)
    c_eta, c_phi = weighted_position(raw, eta, phi, label, n)
    c_event = np.zeros(n, np.int64)
    c_event[label] = event
    keep = energy > seed(np.abs(c_eta))
    new = np.cumsum(keep) - 1
    return Clusters(c_event[keep], energy[keep], c_eta[keep], c_phi[keep],
                    (segment_sum(raw * pileup, label, n) / norm)[keep], np.where(keep[label], new[label], -1))


def _ecal_seed(abseta):
    return np.where(abseta < ECAL_BARREL_ETA, ECAL_SEED[0], ECAL_SEED[1])


def particle_flow(rng: np.random.Generator, showers: Showers, tracks: Tracks) -> Neutrals:
    """The neutral PF candidates of all events: deposits, clusters, links and blocks (the module table)."""
    s = showers
    n = len(s.event)
    abseta = np.abs(s.eta)
    hf = abseta >= 3.0
    e = s.energy

    # ---- deposits of |eta| < 3 ------------------------------------------------------------------------------
    em = s.em & ~hf
    had = ~s.em & ~hf
    em_sigma = np.where(
        abseta < 1.5,
        np.sqrt((0.028 / np.sqrt(e)) ** 2 + (0.12 / e) ** 2 + 0.003**2),
        np.sqrt((0.057 / np.sqrt(e)) ** 2 + (0.25 / e) ** 2 + 0.0055**2),
    )
    raw = np.where(em, e * (1 + em_sigma * rng.standard_normal(n)), 0.0)
    had_sigma = np.hypot(1.2 / np.sqrt(np.maximum(e, 1e-3)), 0.07)
    had_raw = e * hadron_response(e) * (1 + had_sigma * rng.standard_normal(n))
    had_raw *= np.where(rng.random(n) < 0.10, rng.uniform(0.5, 1.0, n), 1.0)
    raw = np.maximum(np.where(had, had_raw, raw), 0.0)
    # where a hadron starts its shower: the depth x (in lambda) of its first interaction, if inside the ECAL
    starts_in_ecal = had & (rng.random(n) < 1.0 - np.exp(-ECAL_DEPTH_LAMBDA))
    depth = -np.log(1.0 - rng.random(n) * (1.0 - np.exp(-ECAL_DEPTH_LAMBDA)))
    share = np.clip((1.0 - np.exp(-(ECAL_DEPTH_LAMBDA - depth))) * rng.uniform(0.6, 1.4, n), 0.0, 1.0)
    ecal_raw = np.where(em, raw, np.where(starts_in_ecal, share * raw, 0.0))
    hcal_raw = np.where(had, raw - ecal_raw, 0.0)

    def landing(spread):
        return s.eta + spread * rng.standard_normal(n), delta_phi(s.phi + spread * rng.standard_normal(n), 0.0)

    ecal_eta, ecal_phi = landing(np.where(em, EM_SPREAD, HADRON_ECAL_SPREAD))
    hcal_eta, hcal_phi = landing(np.full(n, HADRON_HCAL_SPREAD))
    de = np.flatnonzero(ecal_raw > 0)
    dh = np.flatnonzero(hcal_raw > 0)
    ecal = clusters(s.event[de], ecal_raw[de], ecal_eta[de], ecal_phi[de], s.pileup[de],
                    1.5 * ecal_cell(np.abs(ecal_eta[de])), _ecal_seed)
    hcal = clusters(s.event[dh], hcal_raw[dh], hcal_eta[dh], hcal_phi[dh], s.pileup[dh],
                    np.full(len(dh), HCAL_TOWER), lambda a: np.full(len(a), HCAL_SEED))
    de_ok, dh_ok = ecal.of_deposit >= 0, hcal.of_deposit >= 0

    # ---- links and blocks --------------------------------------------------------------------------------------
    t = tracks
    n_e, n_h, n_t = len(ecal.raw), len(hcal.raw), len(t.p)
    ecal_deposits = (s.event[de][de_ok], ecal_eta[de][de_ok], ecal_phi[de][de_ok], ecal.of_deposit[de_ok])
    hcal_deposits = (s.event[dh][dh_ok], hcal_eta[dh][dh_ok], hcal_phi[dh][dh_ok], hcal.of_deposit[dh_ok])
    to_ecal = nearest(t.event, t.eta, t.phi, ECAL_LINK_CELLS * ecal_cell(np.abs(t.eta)), *ecal_deposits)
    to_hcal = nearest(t.event, t.eta, t.phi, np.full(n_t, HCAL_LINK_CELLS * HCAL_TOWER), *hcal_deposits)
    outside = np.flatnonzero(np.abs(ecal.eta) >= TRACKER_ETA)
    e_to_h = nearest(ecal.event[outside], ecal.eta[outside], ecal.phi[outside],
                     np.full(len(outside), HCAL_LINK_CELLS * HCAL_TOWER), *hcal_deposits)
    track_node = n_e + n_h + np.arange(n_t)
    edges = np.concatenate([
        np.column_stack([track_node, to_ecal])[to_ecal >= 0],
        np.column_stack([track_node, n_e + to_hcal])[to_hcal >= 0],
        np.column_stack([outside, n_e + e_to_h])[e_to_h >= 0],
    ]).astype(np.int64).reshape(-1, 2)
    n_blocks, block = components(n_e + n_h + n_t, edges[:, 0], edges[:, 1])
    b_ecal, b_hcal, b_track = block[:n_e], block[n_e:n_e + n_h], block[n_e + n_h:]
    block_ecal = segment_sum(ecal.raw, b_ecal, n_blocks)
    block_hcal = segment_sum(hcal.raw, b_hcal, n_blocks)
    block_p = segment_sum(t.p, b_track, n_blocks)
    has_track = np.bincount(b_track, minlength=n_blocks) > 0

    def weighted(values_e, values_h):
        """Energy-weighted block averages of an ECAL and an HCAL cluster quantity."""
        norm = np.maximum(block_ecal + block_hcal, 1e-12)
        return (segment_sum(ecal.raw * values_e, b_ecal, n_blocks) + segment_sum(hcal.raw * values_h, b_hcal,
                                                                                 n_blocks)) / norm

    block_pu = weighted(ecal.pileup, hcal.pileup)
    block_event = np.zeros(n_blocks, np.int64)
    block_event[b_ecal], block_event[b_hcal], block_event[b_track] = ecal.event, hcal.event, t.event

    e_eta, e_phi = weighted_position(ecal.raw, ecal.eta, ecal.phi, b_ecal, n_blocks)
    h_eta, h_phi = weighted_position(hcal.raw, hcal.eta, hcal.phi, b_hcal, n_blocks)
    parts = []

    # blocks with tracks: the calorimeters' calibrated excess over the tracks [PF Sec. 4.10]
    calo = calibrate(block_ecal + block_hcal, hadron_response)
    sigma = np.hypot(1.2 * np.sqrt(np.maximum(block_p, 1e-9)), 0.07 * block_p)
    excess = np.where(has_track, calo - block_p, 0.0)
    significant = has_track & (excess > np.maximum(sigma, NEUTRAL_EXCESS_MIN))
    photon = np.where(significant, np.minimum(excess, block_ecal), 0.0)
    hadron = np.where(significant, excess - photon, 0.0)
    k = np.flatnonzero(photon > PHOTON_MIN[0])
    parts.append((block_event[k], photon[k], e_eta[k], e_phi[k], np.full(len(k), 22), block_pu[k]))
    k = np.flatnonzero(hadron > NEUTRAL_EXCESS_MIN)
    pos_eta = np.where(block_hcal[k] > 0, h_eta[k], e_eta[k])
    pos_phi = np.where(block_hcal[k] > 0, h_phi[k], e_phi[k])
    parts.append((block_event[k], hadron[k], pos_eta, pos_phi, np.full(len(k), 130), block_pu[k]))

    # blocks without tracks: beyond the tracker an ECAL and an HCAL cluster linked make one neutral hadron; else
    # each ECAL cluster is a photon and each HCAL cluster a neutral hadron
    both = ~has_track & (block_ecal > 0) & (block_hcal > 0)
    k = np.flatnonzero(both)  # every HCAL cluster is above its seed
    total_eta = (block_ecal[k] * e_eta[k] + block_hcal[k] * h_eta[k]) / (block_ecal[k] + block_hcal[k])
    parts.append((block_event[k], calibrate(block_ecal[k] + block_hcal[k], hadron_response), total_eta,
                  np.where(block_hcal[k] >= block_ecal[k], h_phi[k], e_phi[k]), np.full(len(k), 130), block_pu[k]))
    alone = ~has_track & ~both
    k = np.flatnonzero(alone[b_ecal] & (ecal.raw > np.where(np.abs(ecal.eta) < ECAL_BARREL_ETA, *PHOTON_MIN)))
    parts.append((ecal.event[k], ecal.raw[k], ecal.eta[k], ecal.phi[k], np.full(len(k), 22), ecal.pileup[k]))
    k = np.flatnonzero(alone[b_hcal] & (hcal.raw > HCAL_SEED))
    parts.append((hcal.event[k], calibrate(hcal.raw[k], hadron_response), hcal.eta[k], hcal.phi[k],
                  np.full(len(k), 130), hcal.pileup[k]))

    parts.append(_forward(rng, s, hf))
    return Neutrals(*(np.concatenate(column) for column in zip(*parts)))


def _forward(rng, s: Showers, hf) -> tuple:
    """HF: long- and short-fibre energies per tower; an HF EM candidate of L - S and an HF hadron of 2 S calibrated."""
    i = np.flatnonzero(hf)
    e = s.energy[i]
    em = s.em[i]
    m = len(i)
    raw = np.where(em, e * (1 + np.hypot(1.98 / np.sqrt(e), 0.09) * rng.standard_normal(m)),
                   e * hf_hadron_response(e) * (1 + np.hypot(2.8 / np.sqrt(e), 0.11) * rng.standard_normal(m)))
    raw = np.maximum(raw, 0.0)
    em_part = np.where(em, raw * (1 - np.abs(0.03 * rng.standard_normal(m))),
                       np.clip(hf_em_fraction(e) + 0.12 * rng.standard_normal(m), 0.0, 1.0) * e)
    em_part = np.minimum(em_part, raw)
    short = (raw - em_part) / 2
    long_ = raw - short
    size = HF_TOWER
    key = ((s.event[i].astype(np.int64) * 400 + np.floor(s.eta[i] / size).astype(np.int64) + 200) * 100
           + np.floor((s.phi[i] + np.pi) / size).astype(np.int64))
    towers, of = np.unique(key, return_inverse=True)
    n = len(towers)
    sum_l, sum_s = segment_sum(long_, of, n), segment_sum(short, of, n)
    norm = np.maximum(sum_l + sum_s, 1e-12)
    t_eta, t_phi = weighted_position(raw, s.eta[i], s.phi[i], of, n)
    t_pu = segment_sum(raw * s.pileup[i], of, n) / norm
    t_event = (towers // 100 // 400).astype(np.int64)
    e_em, e_had = sum_l - sum_s, hf_hadronic_calibration(2 * sum_s)
    a, b = np.flatnonzero(e_em > HF_MIN), np.flatnonzero(e_had > HF_MIN)
    return (np.concatenate([t_event[a], t_event[b]]), np.concatenate([e_em[a], e_had[b]]),
            np.concatenate([t_eta[a], t_eta[b]]), np.concatenate([t_phi[a], t_phi[b]]),
            np.concatenate([np.full(len(a), 2), np.full(len(b), 1)]), np.concatenate([t_pu[a], t_pu[b]]))
