"""Secondary vertices of the demo detector, found from its reconstructed tracks as CMS's inclusive vertex finder (IVF)
finds them: displaced decays of b and c hadrons, tau leptons and V0s, and fakes from prompt and pileup tracks.

The finder sees only what the detector measured: every track of every collision (hard and pileup, identified leptons
included, as IVF runs on all tracks), with its measured pt, direction, impact parameters d0 and z0 at the beam line and
their errors, and the reconstructed primary vertex (PV) z. Tracks are straight lines through (d0 sin phi, -d0 cos phi,
z0) along (cos phi, sin phi, sinh eta); their position error is sigma(d0) across the line in the transverse plane and
sigma(dz) in z (CMS also takes a track's error at its impact point). The PV sits on the beam line, measured to 12 um
([TRK]). Steps and parameters, CMSSW's [IVF] configuration (inclusiveCandidateVertexFinder, candidateVertexMerger,
candidateVertexArbitrator, inclusiveCandidateSecondaryVertices), which MiniAOD stores as slimmedSecondaryVertices:

1. Tracks: pt > 0.8 GeV and |dz(PV)| < 0.3 cm. Seeds among them: 3D impact parameter to the PV >= 50 um and its
   significance >= 1.2.
2. Clustering, per seed (TracksClusteringFromDisplacedSeed): every track whose points of closest approach to the seed
   are < 500 um apart, at < 4.5 sigma, with the distance x 20 < the seed's point's distance to the PV and both points
   ahead of the PV along their tracks (cos > 0.5); clusters of 2-30 tracks.
3. Fit: weighted least squares of the vertex position to the tracks' d0 and z0 (linear for straight lines), made
   adaptive as CMS's AdaptiveVertexFitter: each track weighs 1 / (1 + exp((chi2_i - 9) / 2T)), T annealed 256, 64,
   16, 4, 1 (GeometricAnnealing, sigmacut 3, ratio 0.25); ndof = 2 sum(w) - 3, chi2 = sum(w chi2_i); a vertex's
   tracks are those with w >= 0.5. Kept: 3D flight significance > 0.5, 2D > 2.5, chi2 / ndof < 10, the cosine
   between the flight direction and the sum of its tracks' directions > 0.95.
4. Merge (VertexMerging, 0.7 and 2): a vertex is dropped when more than 70 % of its tracks are in another vertex with
   at least as many tracks less than 2 sigma away.
5. Arbitration (TrackVertexArbitration): every track of the event above 0.4 GeV is reconsidered for each vertex and
   kept when it was in the fit or passes within 400 um (and 5 sigma, and a third of the flight distance) of the
   vertex, and is closer to it than to the PV and within dR < 0.4 of the flight direction; refit (step 3's fit).
6. Merge again (inclusiveCandidateSecondaryVertices: 0.2 and 10 sigma).
7. NanoAOD's SV table (PhysicsTools/NanoAOD vertices_cff.py, VertexTableProducer: svCut "", dlenMin 0, dlenSigMin
   3): 3D flight distance to the PV > 3 sigma. The vertices keep at least two tracks.

Simplified: CMS also runs the adaptive vertex reconstructor (several vertices per cluster) beside the single fit,
requires hits (pixel, layers) and uses tracks bent in the field; here tracks are straight and every track is measured
alike. The vertex's momentum is the sum of its tracks' with pion masses; dlen and dxy and their significances, as
NanoAOD's, include the PV error; chi2 is NanoAOD's reduced chi2 (chi2 / ndof); pAngle is the angle between the
momentum and the flight direction (NanoAOD computes it against PV - SV, which puts good vertices near pi).
Efficiency, fakes and merging follow from the tracks: no truth is used. Each vertex is associated with the nearest
reco jet within dR < 0.4 of its momentum, as PFNano's JetSVs table does.

[IVF] CMS, "Identification of heavy-flavour jets with the CMS detector in pp collisions at 13 TeV", JINST 13 (2018)
P05011 (BTV-16-002), Sec. 3.2, and CMSSW RecoVertex/AdaptiveVertexFinder. [TRK] CMS, JINST 9 (2014) P10009.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kinematics import delta_phi, sum_four_vectors
from ..ragged import local_index, offsets_from_counts
from .events import PION_MASS

MIN_TRACK_PT = 0.8
"""GeV: tracks that seed and form clusters (IVF minPt)."""
MAX_DZ_CM = 0.3
"""|dz| to the PV of those tracks (IVF maximumLongitudinalImpactParameter)."""
SEED_MIN_IP_CM, SEED_MIN_IP_SIGNIFICANCE = 0.005, 1.2
CLUSTER_MAX_DISTANCE_CM, CLUSTER_MAX_SIGNIFICANCE = 0.05, 4.5
CLUSTER_DISTANCE_RATIO, CLUSTER_MIN_COSINE = 20.0, 0.5
CLUSTER_MAX_TRACKS = 30
FIT_SIGMA_CUT = 3.0
ANNEALING = (256.0, 64.0, 16.0, 4.0, 1.0, 1.0)
"""Temperatures of the adaptive fit's iterations (the last repeated once at T = 1 to converge)."""
MIN_WEIGHT = 0.5
"""A track belongs to a vertex when its weight in the fit is at least this."""
VERTEX_MIN_COSINE, VERTEX_MIN_DLEN2D_SIGNIFICANCE, VERTEX_MIN_DLEN_SIGNIFICANCE = 0.95, 2.5, 0.5
VERTEX_MAX_REDUCED_CHI2 = 10.0
FIRST_MERGE, SECOND_MERGE = (0.7, 2.0), (0.2, 10.0)
"""(largest fraction of shared tracks, smallest distance significance) of the two merging steps."""
ARBITRATION_MIN_PT, ARBITRATION_DR, ARBITRATION_DISTANCE_CM = 0.4, 0.4, 0.04
ARBITRATION_SIGNIFICANCE, ARBITRATION_DLEN_FRACTION = 5.0, 0.333
MIN_DLEN_SIGNIFICANCE = 3.0
"""NanoAOD's SV table: dlenSigMin."""
PV_SIGMA_CM = 0.0012
"""Primary-vertex resolution in each coordinate ([TRK]: 10-12 um)."""
TRUE_DISPLACEMENT_CM = 0.005
"""Truth label only: a production vertex further than this from its collision's is displaced."""


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
    origin: np.ndarray | None = None
    """Audit only, never written: the true displaced production vertex (an id) shared by the most of the vertex's
    tracks if at least two share one, else -1 (a fake)."""
    origin_position: np.ndarray | None = None
    """Audit only: (n, 3) position of that production vertex relative to the true hard-collision vertex (cm); NaN
    for fakes and for production vertices of pileup collisions."""

    @property
    def energy(self):
        return np.sqrt((self.pt * np.cosh(self.eta)) ** 2 + self.mass**2)


@dataclass
class Truth:
    """Per track, for the audit label only: the true production point (vz relative to the hard collision's vertex;
    for pileup, consistent within a collision) and whether it is from a pileup collision."""

    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    pileup: np.ndarray


class Tracks:
    """Straight-line tracks relative to their event's PV: point of closest approach to the beam line ``p``, unit
    direction ``u`` (components as tuples of arrays), the 3D impact parameter to the PV and its error."""

    def __init__(self, event, pt, eta, phi, d0, z0, sigma_d0, sigma_dz, z_pv):
        self.event = np.asarray(event, np.int64)
        self.pt, self.eta, self.phi = pt, eta, phi
        self.d0, self.sd0, self.sdz = d0, sigma_d0, sigma_dz
        self.dz = z0 - z_pv[self.event]
        self.c, self.s, self.sh = np.cos(phi), np.sin(phi), np.sinh(eta)
        cosh = np.cosh(eta)
        self.p = (d0 * self.s, -d0 * self.c, self.dz)
        self.u = (self.c / cosh, self.s / cosh, self.sh / cosh)
        along = self.dz / cosh  # the PV's distance to the line: d0 across, dz / cosh(eta) in the (u, z) plane
        self.ip = np.hypot(d0, along)
        self.ip_sigma = np.sqrt((d0 * sigma_d0) ** 2 + (along * sigma_dz / cosh) ** 2) / np.maximum(self.ip, 1e-12)

    def point(self, t):
        return tuple(c[t] for c in self.p)

    def direction(self, t):
        return tuple(c[t] for c in self.u)

    def variance_along(self, t, m):
        """Variance of track ``t``'s position along unit vectors ``m``: sigma(d0) across the track in the
        transverse plane, along (sin phi, -cos phi, 0), and sigma(dz) in z."""
        across = m[0] * self.s[t] - m[1] * self.c[t]
        return (self.sd0[t] * across) ** 2 + (self.sdz[t] * m[2]) ** 2


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _unit(v):
    """Unit vectors and lengths of component tuples."""
    norm = np.sqrt(_dot(v, v))
    inverse = 1.0 / np.maximum(norm, 1e-15)
    return (v[0] * inverse, v[1] * inverse, v[2] * inverse), norm


def _project(m, covariance):
    """m^T C m for component tuples ``m`` and (n, 3, 3) covariances."""
    return sum(m[i] * m[j] * covariance[:, i, j] * (1.0 if i == j else 2.0) for i in range(3) for j in range(i, 3))


def fit(tracks: Tracks, vertex, track, n_vertices: int):
    """Adaptive weighted least-squares fit of ``n_vertices`` positions, each to its (``vertex``, ``track``) pairs:
    the d0 and dz each track would have from the vertex, d0 = x sin phi - y cos phi and dz = z - (x cos phi + y sin
    phi) sinh eta, against the measured ones. Returns positions (n, 3), covariances (n, 3, 3), the pairs' weights,
    chi2 and ndof per vertex."""
    t = track
    zero = np.zeros(len(t))
    a = (tracks.s[t], -tracks.c[t], zero)
    b = (-tracks.c[t] * tracks.sh[t], -tracks.s[t] * tracks.sh[t], zero + 1.0)
    d0, dz = tracks.d0[t], tracks.dz[t]
    inv_d0, inv_dz = 1.0 / tracks.sd0[t] ** 2, 1.0 / tracks.sdz[t] ** 2
    weight, chi2_track = np.ones(len(t)), zero
    for temperature in (None, *ANNEALING):
        if temperature is not None:  # weights from the previous position, then refit
            x = (chi2_track - FIT_SIGMA_CUT**2) / (2.0 * temperature)
            weight = 0.5 * (1.0 - np.tanh(0.5 * x))
        wd, wz = weight * inv_d0, weight * inv_dz
        matrix = np.zeros((n_vertices, 3, 3))
        for i in range(3):
            for j in range(i, 3):
                matrix[:, i, j] = matrix[:, j, i] = np.bincount(
                    vertex, weights=wd * a[i] * a[j] + wz * b[i] * b[j], minlength=n_vertices)
        rhs = np.stack([np.bincount(vertex, weights=wd * d0 * a[i] + wz * dz * b[i], minlength=n_vertices)
                        for i in range(3)], axis=1)
        matrix += np.eye(3) * 1e-3  # a prior 30 cm wide: keeps a vertex of parallel tracks solvable
        covariance = np.linalg.inv(matrix)
        position = np.einsum("nij,nj->ni", covariance, rhs)
        v = (position[vertex, 0], position[vertex, 1], position[vertex, 2])
        chi2_track = (d0 - _dot(a, v)) ** 2 * inv_d0 + (dz - _dot(b, v)) ** 2 * inv_dz
    chi2 = np.bincount(vertex, weights=weight * chi2_track, minlength=n_vertices)
    ndof = 2.0 * np.bincount(vertex, weights=weight, minlength=n_vertices) - 3.0
    return position, covariance, weight, chi2, ndof


def _flight(position, covariance):
    """3D and 2D flight distance to the PV and their significances (vertex and PV errors)."""
    total = covariance + np.eye(3) * PV_SIGMA_CM**2
    direction, dlen = _unit((position[:, 0], position[:, 1], position[:, 2]))
    direction_xy, dxy = _unit((position[:, 0], position[:, 1], 0.0 * position[:, 2]))
    dlen_sigma, dxy_sigma = np.sqrt(_project(direction, total)), np.sqrt(_project(direction_xy, total))
    return dlen, dlen / np.maximum(dlen_sigma, 1e-12), dxy, dxy / np.maximum(dxy_sigma, 1e-12)


def _pairs_in_event(group_event, item_event, n_events: int):
    """All (group, item) pairs of the same event; items must be sorted by event."""
    offsets = offsets_from_counts(np.bincount(item_event, minlength=n_events))
    count = offsets[group_event + 1] - offsets[group_event]
    group = np.repeat(np.arange(len(group_event)), count)
    return group, offsets[group_event][group] + local_index(count)


def _merge(position, covariance, vertex, track, n_vertices: int, max_fraction: float, min_significance: float):
    """CMS's VertexMerging: a vertex is dropped when more than ``max_fraction`` of its tracks (``vertex``, ``track``
    pairs) are in another vertex with at least as many tracks (ties: the earlier one stays) closer than
    ``min_significance``. Returns the mask of vertices kept."""
    n_tracks = np.bincount(vertex, minlength=n_vertices)
    order = np.argsort(track, kind="stable")
    v_sorted, t_sorted = vertex[order], track[order]
    _, start, count = np.unique(t_sorted, return_index=True, return_counts=True)
    group = np.repeat(np.arange(len(start)), count)
    size = count[group]
    first = np.repeat(np.arange(len(order)), size)
    second = start[group][first] + local_index(size)
    one, other = v_sorted[first], v_sorted[second]
    distinct = one != other
    key, shared = np.unique(one[distinct] * n_vertices + other[distinct], return_counts=True)
    one, other = key // n_vertices, key % n_vertices
    difference = position[one] - position[other]
    direction, distance = _unit((difference[:, 0], difference[:, 1], difference[:, 2]))
    variance = _project(direction, covariance[one] + covariance[other])
    significance = distance / np.sqrt(np.maximum(variance, 1e-24))
    dominated = ((shared / n_tracks[one] > max_fraction) & (significance < min_significance)
                 & ((n_tracks[other] > n_tracks[one]) | ((n_tracks[other] == n_tracks[one]) & (other < one))))
    keep = np.ones(n_vertices, bool)
    keep[one[dominated]] = False
    return keep


def _closest_approach(tracks: Tracks, i, j):
    """Points of closest approach of lines ``i`` and ``j`` (on i, on j)."""
    pi, pj, ui, uj = tracks.point(i), tracks.point(j), tracks.direction(i), tracks.direction(j)
    w0 = (pi[0] - pj[0], pi[1] - pj[1], pi[2] - pj[2])
    b = _dot(ui, uj)
    d, e = _dot(ui, w0), _dot(uj, w0)
    inverse = 1.0 / np.maximum(1.0 - b * b, 1e-12)
    s, t = (b * e - d) * inverse, (e - b * d) * inverse
    return tuple(p + s * u for p, u in zip(pi, ui)), tuple(p + t * u for p, u in zip(pj, uj))


def _clusters(tracks: Tracks, n_events: int):
    """IVF's seeds and the tracks compatible with each: (cluster, track) pairs, the seed included."""
    candidate = np.flatnonzero((tracks.pt > MIN_TRACK_PT) & (np.abs(tracks.dz) < MAX_DZ_CM))
    candidate = candidate[np.argsort(tracks.event[candidate], kind="stable")]
    is_seed = (tracks.ip[candidate] >= SEED_MIN_IP_CM) & (
        tracks.ip[candidate] >= SEED_MIN_IP_SIGNIFICANCE * tracks.ip_sigma[candidate])
    seeds = candidate[is_seed]
    cluster, position = _pairs_in_event(tracks.event[seeds], tracks.event[candidate], n_events)
    seed, track = seeds[cluster], candidate[position]
    other = seed != track
    cluster, seed, track = cluster[other], seed[other], track[other]
    on_seed, on_track = _closest_approach(tracks, seed, track)
    direction, distance = _unit(tuple(a - b for a, b in zip(on_seed, on_track)))
    variance = tracks.variance_along(seed, direction) + tracks.variance_along(track, direction)
    seed_dir, seed_to_pv = _unit(on_seed)
    track_dir, _ = _unit(on_track)
    near = ((distance < CLUSTER_MAX_DISTANCE_CM) & (distance * CLUSTER_DISTANCE_RATIO < seed_to_pv)
            & (distance * distance < CLUSTER_MAX_SIGNIFICANCE**2 * variance)
            & (_dot(seed_dir, tracks.direction(seed)) > CLUSTER_MIN_COSINE)
            & (_dot(track_dir, tracks.direction(track)) > CLUSTER_MIN_COSINE))
    vertex = np.concatenate([np.arange(len(seeds)), cluster[near]])
    member = np.concatenate([seeds, track[near]])
    size = np.bincount(vertex, minlength=len(seeds))
    good = (size >= 2) & (size <= CLUSTER_MAX_TRACKS)
    renumber = np.cumsum(good) - 1
    keep = good[vertex]
    return renumber[vertex[keep]], member[keep], int(good.sum())


def _belonging(weight, vertex, track, keep):
    """The (vertex, track) pairs of tracks that belong to the kept vertices, the vertices renumbered."""
    renumber = np.cumsum(keep) - 1
    take = keep[vertex] & (weight >= MIN_WEIGHT)
    return renumber[vertex[take]], track[take]


def _arbitrate(tracks: Tracks, position, covariance, v_event, in_fit, good, n_events: int):
    """CMS's TrackVertexArbitration: the (vertex, track) pairs to refit, from every track above 0.4 GeV of the
    vertex's event; ``in_fit`` and ``good`` tell whether a pair's key (vertex * n_tracks + track) was in the fit
    and belonged to the vertex."""
    arbitrated = np.flatnonzero(tracks.pt > ARBITRATION_MIN_PT)
    arbitrated = arbitrated[np.argsort(tracks.event[arbitrated], kind="stable")]
    vertex, where = _pairs_in_event(v_event, tracks.event[arbitrated], n_events)
    t = arbitrated[where]
    # every track kept is within dR < 0.4 of the flight direction: that first
    flight_eta = np.arcsinh(position[:, 2] / np.maximum(np.hypot(position[:, 0], position[:, 1]), 1e-12))
    flight_phi = np.arctan2(position[:, 1], position[:, 0])
    d_eta = flight_eta[vertex] - tracks.eta[t]
    near = np.abs(d_eta) < ARBITRATION_DR
    vertex, t, d_eta = vertex[near], t[near], d_eta[near]
    near = d_eta**2 + delta_phi(flight_phi[vertex], tracks.phi[t]) ** 2 < ARBITRATION_DR**2
    vertex, t = vertex[near], t[near]
    key = vertex * len(tracks.pt) + t
    was_in_fit, was_good = _contains(in_fit, key), _contains(good, key)
    p, u = tracks.point(t), tracks.direction(t)
    to_vertex = tuple(position[vertex, i] - p[i] for i in range(3))
    along = _dot(to_vertex, u)
    perpendicular, ip_sv = _unit(tuple(to_vertex[i] - along * u[i] for i in range(3)))
    ip_sv_variance = tracks.variance_along(t, perpendicular) + _project(perpendicular, covariance[vertex])
    dlen = np.linalg.norm(position, axis=1)[vertex]
    ip_pv = tracks.ip[t]
    close = (ip_sv < ARBITRATION_DISTANCE_CM) & (ip_sv < dlen * ARBITRATION_DLEN_FRACTION)
    candidate = was_in_fit | (close & (ip_sv**2 < ARBITRATION_SIGNIFICANCE**2 * ip_sv_variance))
    take = candidate & (((ip_sv < ip_pv) & close) | (was_good & (ip_sv <= ip_pv)))
    return vertex[take], t[take]


def reconstruct(event, pt, eta, phi, d0, z0, sigma_d0, sigma_dz, z_pv, truth: Truth | None = None) -> Vertices:
    """Secondary vertices from the reconstructed tracks of all collisions (the module's docstring): per track its
    ``event``, measured ``pt``, ``eta``, ``phi``, ``d0`` and ``z0`` (cm) at the closest approach to the beam line and
    their errors; ``z_pv`` is each event's reconstructed primary vertex z. ``truth`` only labels the vertices."""
    n_events = len(z_pv)
    tracks = Tracks(event, pt, eta, phi, d0, z0, sigma_d0, sigma_dz, np.asarray(z_pv, np.float64))
    n_all = len(tracks.pt)
    vertex, track, n = _clusters(tracks, n_events)
    if n == 0:
        return _empty()

    # fit each cluster; IVF's selection of the fitted vertices
    position, covariance, weight, chi2, ndof = fit(tracks, vertex, track, n)
    belongs = weight >= MIN_WEIGHT
    n_good = np.bincount(vertex[belongs], minlength=n)
    direction_sum = tuple(np.bincount(vertex[belongs], weights=u[track[belongs]], minlength=n) for u in tracks.u)
    _, dlen_sig, _, dxy_sig = _flight(position, covariance)
    flight, _ = _unit((position[:, 0], position[:, 1], position[:, 2]))
    cosine = _dot(_unit(direction_sum)[0], flight)
    keep = ((n_good >= 2) & (ndof > 0) & (dlen_sig > VERTEX_MIN_DLEN_SIGNIFICANCE)
            & (dxy_sig > VERTEX_MIN_DLEN2D_SIGNIFICANCE) & (chi2 < VERTEX_MAX_REDUCED_CHI2 * np.maximum(ndof, 1e-9))
            & (cosine > VERTEX_MIN_COSINE))
    v_event = np.zeros(n, np.int64)
    v_event[vertex] = tracks.event[track]
    in_fit = weight >= 1.0 / 255.0  # reco::Vertex keeps a track's weight to 1/255
    fit_vertex, fit_track = _belonging(in_fit.astype(np.float64), vertex, track, keep)
    good_vertex, good_track = _belonging(weight, vertex, track, keep)
    position, covariance, v_event = position[keep], covariance[keep], v_event[keep]
    n = int(keep.sum())
    if n == 0:
        return _empty()
    kept = np.flatnonzero(_merge(position, covariance, good_vertex, good_track, n, *FIRST_MERGE))

    # arbitration and refit of the vertices left
    renumber = np.full(n, -1)
    renumber[kept] = np.arange(len(kept))
    in_fit = np.sort(renumber[fit_vertex] * n_all + fit_track)
    good = np.sort(renumber[good_vertex] * n_all + good_track)
    position, covariance, v_event = position[kept], covariance[kept], v_event[kept]
    vertex, track = _arbitrate(tracks, position, covariance, v_event, in_fit, good, n_events)
    enough = np.bincount(vertex, minlength=len(kept)) >= 2
    renumber = np.cumsum(enough) - 1
    take = enough[vertex]
    vertex, track, v_event, n = renumber[vertex[take]], track[take], v_event[enough], int(enough.sum())
    if n == 0:
        return _empty()
    position, covariance, weight, chi2, ndof = fit(tracks, vertex, track, n)
    n_good = np.bincount(vertex[weight >= MIN_WEIGHT], minlength=n)
    keep = (n_good >= 2) & (ndof > 0)
    good_vertex, good_track = _belonging(weight, vertex, track, keep)
    position, covariance, chi2, ndof, v_event = position[keep], covariance[keep], chi2[keep], ndof[keep], v_event[keep]
    n = int(keep.sum())
    if n == 0:
        return _empty()
    keep = _merge(position, covariance, good_vertex, good_track, n, *SECOND_MERGE)

    # NanoAOD's SV table
    dlen, dlen_sig, dxy, dxy_sig = _flight(position, covariance)
    keep &= (dlen > 0) & (dlen_sig > MIN_DLEN_SIGNIFICANCE)
    good_vertex, good_track = _belonging(np.ones(len(good_vertex)), good_vertex, good_track, keep)
    k = np.flatnonzero(keep)
    n = len(k)
    spt, seta, sphi, smass = sum_four_vectors(tracks.pt[good_track], tracks.eta[good_track], tracks.phi[good_track],
                                              np.full(len(good_track), PION_MASS), good_vertex, n)
    x, y, z = position[k, 0], position[k, 1], position[k, 2]
    px, py, pz = spt * np.cos(sphi), spt * np.sin(sphi), spt * np.sinh(seta)
    cos_angle = (x * px + y * py + z * pz) / np.maximum(dlen[k] * np.sqrt(px * px + py * py + pz * pz), 1e-12)
    origin, origin_position = (None, None) if truth is None else _origin(truth, good_vertex, good_track, n)
    out = Vertices(
        event=v_event[k], pt=spt, eta=seta, phi=sphi, mass=smass, x=x, y=y, z=z,
        ntracks=np.bincount(good_vertex, minlength=n).astype(np.int64), chi2=chi2[k] / ndof[k], ndof=ndof[k],
        dxy=dxy[k], dxySig=dxy_sig[k], dlen=dlen[k], dlenSig=dlen_sig[k], pAngle=np.arccos(np.clip(cos_angle, -1, 1)),
        origin=origin, origin_position=origin_position,
    )
    return _take(out, np.lexsort((-out.pt, out.event)))


def _contains(sorted_keys, keys):
    """Whether each of ``keys`` is in ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), bool)
    return sorted_keys[np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)] == keys


def _origin(truth: Truth, vertex, track, n: int):
    """Per vertex: the id of the displaced true production vertex most of its tracks share (at least two), or -1;
    and that vertex's position for the hard collision (NaN otherwise)."""
    vx, vy, vz, pileup = truth.vx[track], truth.vy[track], truth.vz[track], np.asarray(truth.pileup)[track]
    radius = np.hypot(vx, vy)
    displaced = (radius > TRUE_DISPLACEMENT_CM) | (~pileup & (np.hypot(radius, vz) > TRUE_DISPLACEMENT_CM))
    columns = np.column_stack([pileup, np.round(vx, 7), np.round(vy, 7), np.round(vz, 7)])
    _, production = np.unique(columns, axis=0, return_inverse=True)
    production = np.where(displaced, production.ravel(), -1)
    origin = np.full(n, -1, np.int64)
    position = np.full((n, 3), np.nan)
    ok = production >= 0
    if ok.any():
        key, first, count = np.unique(vertex[ok] * (production.max() + 1) + production[ok], return_index=True,
                                      return_counts=True)
        v, p = key // (production.max() + 1), key % (production.max() + 1)
        best = np.lexsort((count, v))  # per vertex the largest count last
        last = np.r_[v[best][1:] != v[best][:-1], True]
        chosen = best[last]
        shared = count[chosen] >= 2
        origin[v[chosen][shared]] = p[chosen][shared]
        row = np.flatnonzero(ok)[first[chosen][shared]]
        hard = ~pileup[row]
        position[v[chosen][shared][hard]] = np.column_stack([vx[row], vy[row], vz[row]])[hard]
    return origin, position


def _take(v: Vertices, index) -> Vertices:
    return Vertices(**{name: (None if value is None else value[index]) for name, value in vars(v).items()})


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
