"""The demo's secondary-vertex finder (gnnjec.demo.vertices) on constructed straight-line tracks: known answers."""

import numpy as np
import pytest

from gnnjec.demo import vertices

SIGMA_D0, SIGMA_DZ = 0.002, 0.003


def lines(event, origin, pt, eta, phi, rng=None):
    """Tracks from ``origin`` (relative to the PV at z = 0): their d0 and z0 at the beam line, smeared by their
    errors when ``rng`` is given."""
    x, y, z = origin
    phi, eta = np.asarray(phi, float), np.asarray(eta, float)
    d0 = x * np.sin(phi) - y * np.cos(phi)
    z0 = z - (x * np.cos(phi) + y * np.sin(phi)) * np.sinh(eta)
    n = len(phi)
    if rng is not None:
        d0 = d0 + SIGMA_D0 * rng.standard_normal(n)
        z0 = z0 + SIGMA_DZ * rng.standard_normal(n)
    return {"event": np.full(n, event), "pt": np.asarray(pt, float), "eta": eta, "phi": phi, "d0": d0, "z0": z0,
            "sigma_d0": np.full(n, SIGMA_D0), "sigma_dz": np.full(n, SIGMA_DZ)}


def join(*parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def find(tracks, n_events=1, truth=None):
    return vertices.reconstruct(**tracks, z_pv=np.zeros(n_events), truth=truth)


def decay(event, origin, n, rng, pt=3.0, spread=0.05):
    """``n`` tracks of ``pt`` GeV around the flight direction of a decay at ``origin``."""
    x, y, z = origin
    phi = np.arctan2(y, x) + spread * rng.standard_normal(n)
    eta = np.arcsinh(z / np.hypot(x, y)) + spread * rng.standard_normal(n)
    return lines(event, origin, np.full(n, pt), eta, phi, rng)


def test_three_tracks_from_a_point_half_a_centimetre_away_give_one_vertex_there():
    rng = np.random.default_rng(1)
    v = find(decay(0, (0.3, 0.4, 0.1), 3, rng))
    assert len(v.pt) == 1 and v.ntracks[0] == 3
    found = np.array([v.x[0], v.y[0], v.z[0]])
    assert np.linalg.norm(found - [0.3, 0.4, 0.1]) < 4 * v.dlen[0] / v.dlenSig[0]  # within its errors
    assert v.dxy[0] == pytest.approx(0.5, abs=0.01) and v.dlenSig[0] > 10 and v.ndof[0] == pytest.approx(3, abs=0.2)
    assert v.mass[0] > 3 * 0.13957 and v.pAngle[0] < 0.1


def test_the_fit_is_unbiased_and_its_errors_are_right():
    """Many 3-track vertices: the fitted positions' pulls, with the fit's covariance, are chi2 with 3 dof."""
    rng = np.random.default_rng(2)
    n = 400
    origins = np.column_stack([rng.uniform(0.05, 0.5, n), rng.uniform(-0.5, 0.5, n), rng.uniform(-1, 1, n)])
    parts = [decay(i, tuple(o), 3, rng, spread=0.1) for i, o in enumerate(origins)]
    t = join(*parts)
    tracks = vertices.Tracks(t["event"], t["pt"], t["eta"], t["phi"], t["d0"], t["z0"], t["sigma_d0"], t["sigma_dz"],
                             np.zeros(n))
    position, covariance, weight, chi2, ndof = vertices.fit(tracks, t["event"], np.arange(len(t["pt"])), n)
    residual = position - origins
    pull2 = np.einsum("ni,nij,nj->n", residual, np.linalg.inv(covariance), residual)
    assert np.mean(pull2) == pytest.approx(3.0, rel=0.2)
    assert np.median(weight) > 0.9 and np.mean(chi2 / ndof) == pytest.approx(1.0, rel=0.3)


def test_an_outlier_is_down_weighted():
    rng = np.random.default_rng(3)
    t = join(decay(0, (0.3, 0.4, 0.1), 4, rng), decay(0, (0.33, 0.38, 0.1), 1, rng))  # 360 um aside
    tracks = vertices.Tracks(t["event"], t["pt"], t["eta"], t["phi"], t["d0"], t["z0"], t["sigma_d0"], t["sigma_dz"],
                             np.zeros(1))
    position, covariance, weight, _, _ = vertices.fit(tracks, np.zeros(5, int), np.arange(5), 1)
    assert weight[4] < 0.01 and weight[:4].min() > 0.5
    residual = position[0] - [0.3, 0.4, 0.1]
    assert residual @ np.linalg.inv(covariance[0]) @ residual < 16  # the four tracks' vertex, within its errors


def test_prompt_tracks_give_no_vertex():
    rng = np.random.default_rng(4)
    assert len(find(lines(0, (0, 0, 0), [5.0, 3.0], [0.3, 0.25], [0.5, 0.6], rng)).pt) == 0
    # 200 events of 12 prompt tracks in a jet: fakes from mismeasured impact parameters are rare
    n = 200
    parts = [lines(i, (0, 0, 0), rng.uniform(1, 10, 12), 0.3 + 0.15 * rng.standard_normal(12),
                   1.0 + 0.15 * rng.standard_normal(12), rng) for i in range(n)]
    assert len(find(join(*parts), n).pt) < 0.05 * n


def test_a_pileup_collision_on_the_beam_line_is_no_secondary_vertex():
    """Tracks of a collision 2 mm from the PV in z: displaced in 3D, but on the beam line (IVF's 2D cut)."""
    rng = np.random.default_rng(5)
    parts = [lines(i, (0, 0, 0.2), np.full(5, 2.0), rng.uniform(-1, 1, 5), rng.uniform(-np.pi, np.pi, 5), rng)
             for i in range(50)]
    assert len(find(join(*parts), 50).pt) < 3


def test_vertices_sharing_tracks_merge_and_distinct_ones_stay_apart():
    """Each track of a 5-track decay seeds a cluster of the same tracks: one vertex comes out. A second decay 1 cm
    away in another direction stays a vertex of its own; a third in another event too."""
    rng = np.random.default_rng(6)
    t = join(decay(0, (0.3, 0.4, 0.1), 5, rng), decay(0, (-0.6, 0.8, -0.2), 3, rng), decay(1, (0.1, -0.2, 0.0), 2,
                                                                                           rng))
    v = find(t, 2)
    assert list(v.event) == [0, 0, 1]  # sorted by event, then pt
    assert sorted(v.ntracks[:2]) == [3, 5] and v.ntracks[2] == 2
    assert v.pt[0] >= v.pt[1]


def test_a_prompt_track_pointing_near_a_vertex_is_arbitrated_to_the_primary():
    """A prompt track 15 mrad from the flight direction passes 75 um from the vertex, compatible with it, but it
    is closer to the PV: it is not added."""
    rng = np.random.default_rng(7)
    flight = (np.arcsinh(0.1 / 0.5), np.arctan2(0.4, 0.3))
    t = join(decay(0, (0.3, 0.4, 0.1), 3, rng), lines(0, (0, 0, 0), [4.0], [flight[0]], [flight[1] + 0.015], rng))
    v = find(t)
    assert len(v.pt) == 1 and v.ntracks[0] == 3


def test_the_truth_label_names_the_shared_production_vertex_and_flags_fakes():
    rng = np.random.default_rng(8)
    b = decay(0, (0.3, 0.4, 0.1), 3, rng)
    t = join(b)
    truth = vertices.Truth(np.full(3, 0.3), np.full(3, 0.4), np.full(3, 0.1), np.zeros(3, bool))
    v = find(t, truth=truth)
    assert v.origin[0] >= 0 and v.origin_position[0] == pytest.approx([0.3, 0.4, 0.1])
    # the same tracks labelled as coming from three different points: a fake
    truth = vertices.Truth(np.array([0.3, 0.31, 0.32]), np.full(3, 0.4), np.full(3, 0.1), np.zeros(3, bool))
    v = find(t, truth=truth)
    assert v.origin[0] == -1 and np.isnan(v.origin_position[0]).all()


def test_no_tracks_no_vertices():
    v = find(join(lines(0, (0, 0, 0), [], [], [])))
    assert len(v.pt) == 0 and v.event.dtype == np.int64
