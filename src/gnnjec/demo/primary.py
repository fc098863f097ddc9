"""Primary vertices of the demo detector, found from its tracks, and each charged candidate's association to
them, written as CMS writes it (PFNano's ``pvAssocQuality``; MiniAOD's ``fromPV``, which CHS reads).

Vertex finding (a modelling choice after [TRK] Sec. 6, the gap clustering of CMS's first vertex finder; its
deterministic annealing resolves vertices down to about 1 mm): prompt tracks, |d0| / sigma(d0) < 4 (CMS selects
tracks for vertexing by their impact-parameter significance to the beam line), measured in z to better than
``MAX_SIGMA_Z_CM``, sorted in z at their closest approach to the beam line and split where two neighbours are more
than ``GAP_CM`` apart. A cluster of at least two tracks is a vertex at the error-weighted mean z of its tracks,
refitted without those more than 3 sigma away; those within 3 sigma are used in its fit. Collisions closer than
about the gap merge and collisions with fewer than two well-measured prompt tracks are lost: the efficiency, the
merging and the number of vertices (``PV_npvs``) follow from the tracks, not from the truth. The primary vertex is
the one with the largest sum of pt^2 of its track jets (CMS's choice since Run 2, with track jets approximated by
cells of 0.8 x 0.8).

Association (after CMS's PrimaryVertexAssignment, PhysicsTools/PatAlgos; the order below, the displaced tracks'
protection before the dz compatibility with any vertex, is this model's choice: it keeps b- and c-decay tracks with
the primary vertex when a pileup vertex happens to lie within 3 sigma):

========================  ===========================================================  ==============  ========
quality (pvAssocQuality)  the track                                                    vertex          fromPV
========================  ===========================================================  ==============  ========
7 UsedInFitTight          is used in a vertex's fit                                    that vertex     3 (PV)
4 CompatibilityBTag       is displaced (|d0| / sigma >= 4) and within 1 cm of the PV    the PV          2
5 CompatibilityDz         is within 3 sigma in z of its nearest vertex                 that vertex     2 (PV)
1 OtherDeltaZ             none of these                                                nearest in z    1 (PV)
========================  ===========================================================  ==============  ========

fromPV is 0 (NoPV) for a track associated with another vertex. CHS removes exactly those: displaced tracks of b
and c decays and tracks that no vertex claims stay in the jets, as in CMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAP_CM = 0.02
"""Two z-sorted vertexing tracks further apart than this start a new vertex."""
MAX_SIGMA_Z_CM = 0.02
"""Tracks measured to better than this in z find the vertices (soft tracks, a few mm wide, would chain every
vertex of the event into one); every track is associated afterwards."""
FIT_ITERATIONS = 3
"""A vertex's z: the error-weighted mean of its tracks, refitted without those more than 3 sigma away."""
PROMPT_SIGNIFICANCE = 4.0
"""|d0| / sigma(d0) below which a track is used for vertexing (and above which it is displaced)."""
FIT_SIGMAS = 3.0
"""A track within this many sigma in z of a vertex is used in its fit (or compatible with it)."""
BTAG_DZ_CM = 1.0
"""A displaced track within this distance in z of the primary vertex is associated with it. CMS checks a displaced
track's distance to a jet's axis instead, which keeps b- and c-decay tracks with the primary vertex whatever their
dz; this model has no jets when it associates, and 1 cm keeps them as well (at 0.3 cm b jets lost 1.5 % of their
pt_gen to CHS, uds jets 0.5 %)."""
GOOD_TRACKS = 4
"""Tracks in a vertex's fit for it to count as good (``PV_npvsGood``: ndof = 2 sum(weights) - 3 > 4)."""

USED_IN_FIT, COMPATIBLE_DZ, COMPATIBLE_BTAG, OTHER_DZ = 7, 5, 4, 1
"""pvAssocQuality values (PFNano), as CMS's PrimaryVertexAssignment names them."""
NO_PV, PV_LOOSE, PV_TIGHT, PV_USED_IN_FIT = 0, 1, 2, 3
"""fromPV values (pat::PackedCandidate::PVAssoc)."""


@dataclass
class Association:
    quality: np.ndarray
    """pvAssocQuality per track."""
    from_pv: np.ndarray
    """fromPV per track."""
    z_pv: np.ndarray
    """Per event, the reconstructed primary vertex's z (cm; the beam spot, z = 0, in an event without a vertex)."""
    npv: np.ndarray
    """Per event, the number of reconstructed vertices."""
    npv_good: np.ndarray
    """Per event, those with at least GOOD_TRACKS tracks in their fit."""


def associate(event, z0, sigma_z, pt, eta, phi, d0_significance, n_events: int) -> Association:
    """Find the vertices of every event from its tracks (``event``, ``z0`` at the closest approach to the beam line
    in cm, its error, ``pt``, ``eta``, ``phi``, the transverse impact parameter's significance) and associate each
    track (see the module's docstring)."""
    event = np.asarray(event, np.int64)
    n = len(event)
    seeds = np.flatnonzero((np.abs(d0_significance) < PROMPT_SIGNIFICANCE) & (sigma_z < MAX_SIGMA_Z_CM))
    order = seeds[np.lexsort((z0[seeds], event[seeds]))]
    ev, z = event[order], z0[order]
    new = np.ones(len(order), bool)
    new[1:] = (ev[1:] != ev[:-1]) | (np.diff(z) > GAP_CM)
    cluster = np.cumsum(new) - 1
    n_clusters = int(cluster[-1]) + 1 if len(order) else 0
    w = 1.0 / sigma_z[order] ** 2
    in_fit = np.ones(len(order), bool)
    for _ in range(FIT_ITERATIONS):  # the weighted mean, without the tracks more than 3 sigma from it
        z_fit = np.bincount(cluster[in_fit], weights=(w * z)[in_fit], minlength=n_clusters) / np.maximum(
            np.bincount(cluster[in_fit], weights=w[in_fit], minlength=n_clusters), 1e-300)
        in_fit = np.abs(z - z_fit[cluster]) < FIT_SIGMAS * sigma_z[order]
    fitted = np.bincount(cluster[in_fit], minlength=n_clusters)
    valid = fitted >= 2
    # the vertices; the primary one per event: the largest sum of pt^2 of its fit's track jets
    vertex_of_cluster = np.full(n_clusters, -1)
    vertex_of_cluster[valid] = np.arange(int(valid.sum()))
    v_event = np.zeros(n_clusters, np.int64)
    v_event[cluster] = ev
    v_event, v_z = v_event[valid], z_fit[valid]
    sum_pt2 = _track_jet_pt2(cluster[in_fit], pt[order][in_fit], eta[order][in_fit], phi[order][in_fit],
                             n_clusters)[valid]
    npv = np.bincount(v_event, minlength=n_events)
    npv_good = np.bincount(v_event[fitted[valid] >= GOOD_TRACKS], minlength=n_events)
    pv = np.full(n_events, -1)
    by_sum = np.lexsort((sum_pt2, v_event))  # by event, the largest sum last
    last = np.r_[v_event[by_sum][1:] != v_event[by_sum][:-1], True] if len(by_sum) else np.zeros(0, bool)
    pv[v_event[by_sum][last]] = by_sum[last]
    z_pv = np.where(pv >= 0, v_z[np.maximum(pv, 0)], 0.0)

    # each track: the vertex whose fit it is in, else its nearest vertex in z
    vertex = np.full(n, -1)
    used = np.zeros(n, bool)
    fit_tracks = order[in_fit & valid[cluster]]
    vertex[fit_tracks] = vertex_of_cluster[cluster[in_fit & valid[cluster]]]
    used[fit_tracks] = True
    nearest = _nearest_vertex(event, z0, v_event, v_z)
    rest = ~used & (nearest >= 0)
    vertex[rest] = nearest[rest]
    dz_vertex = np.where(vertex >= 0, np.abs(z0 - v_z[np.maximum(vertex, 0)]), np.inf)
    is_pv = (vertex >= 0) & (vertex == pv[event])
    displaced = np.abs(d0_significance) >= PROMPT_SIGNIFICANCE
    near_pv = (pv[event] >= 0) & (np.abs(z0 - z_pv[event]) < BTAG_DZ_CM)
    btag = ~used & displaced & near_pv
    compatible = ~used & ~btag & (dz_vertex < FIT_SIGMAS * sigma_z)
    quality = np.select([used, compatible, btag], [USED_IN_FIT, COMPATIBLE_DZ, COMPATIBLE_BTAG], OTHER_DZ)
    other = ~used & ~compatible & ~btag
    from_pv = np.select([used & is_pv, compatible & is_pv, btag, other & (is_pv | (npv[event] == 0))],
                        [PV_USED_IN_FIT, PV_TIGHT, PV_TIGHT, PV_LOOSE], NO_PV)
    return Association(quality.astype(np.int64), from_pv.astype(np.int64), z_pv, npv, npv_good)


def _track_jet_pt2(vertex, pt, eta, phi, n_vertices: int) -> np.ndarray:
    """Per vertex, the sum of pt^2 of its track jets, approximated by its tracks' pt summed in cells of 0.8 x 0.8
    in (eta, phi), about a jet's size: CMS chooses the primary vertex by the pt^2 of the jets of its tracks, which
    a hard collision's collimated tracks win over a pileup collision's spread of soft ones."""
    cell = (vertex * 8 + np.clip(((eta + 3.2) / 0.8).astype(np.int64), 0, 7)) * 8 + np.clip(
        ((phi + np.pi) / (np.pi / 4)).astype(np.int64), 0, 7)
    cells, inverse = np.unique(cell, return_inverse=True)
    jet_pt = np.bincount(inverse, weights=pt)
    return np.bincount(cells // 64, weights=jet_pt**2, minlength=n_vertices)


def _nearest_vertex(event, z0, v_event, v_z) -> np.ndarray:
    """Per track, the index of the vertex of its event nearest in z, or -1 (an event without vertices)."""
    out = np.full(len(event), -1)
    if len(v_event) == 0:
        return out
    key = v_event * 1e4 + v_z  # events far apart: |z| < 30 cm
    order = np.argsort(key, kind="stable")
    sorted_key, sorted_event = key[order], v_event[order]
    t_key = event * 1e4 + z0
    right = np.searchsorted(sorted_key, t_key)
    best = np.full(len(event), np.inf)
    for candidate in (right - 1, right):
        index = np.clip(candidate, 0, len(order) - 1)
        same = (candidate >= 0) & (candidate < len(order)) & (sorted_event[index] == event)
        distance = np.where(same, np.abs(sorted_key[index] - t_key), np.inf)
        better = distance < best
        out[better] = order[index][better]
        best[better] = distance[better]
    return out
