"""The flavour-blind standard correction (L1 offset + L2L3 response) of the demo detector.

As CMS does on QCD simulation [CMS, JINST 12 (2017) P02014, Secs. 4 and 5]:

* **L1** removes the pileup offset with the hybrid jet-area parametrisation (ibid., Eq. 4.2):
  offset = A * (p0(eta) + p1(eta) * rho + p2(eta) * rho * log(pt_raw)), a linear fit per |eta| bin to the
  offset of each jet, measured as CMS does from the same events reconstructed with and without pileup
  (:func:`gnnjec.demo.simulate._calibration_jets`). The offset is never negative (L1 never raises a jet).
* **L2L3** inverts the median response pt_L1 / pt_gen in bins of |eta| and gen pt, and smooths it: a polynomial in
  log pt_L1 fitted to the inverted medians with their errors, its degree (1 to 5) chosen by the smallest
  chi2 + 2 * parameters, as CMS fits its MC-truth response with a smooth function of log pt rather than reading
  the bins; held constant beyond the fitted range.

It is derived on a sample of its own, never on the jets it is applied to, and knows nothing of flavour: what it
leaves is the network's to win.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import provenance
from ..files import atomic_output, read_json

ETA_EDGES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.2])
PT_EDGES = np.geomspace(10.0, 3500.0, 26)
MIN_JETS = 40
MAX_DEGREE = 5
CURVE_POINTS = 40
"""The smoothed L2L3 curve is stored as this many points in log pt_L1, interpolated linearly."""


@dataclass
class StandardCorrection:
    """L1 offset parameters per |eta| bin and an L2L3 response curve per |eta| bin, interpolated in log pt."""

    eta_edges: np.ndarray
    l1_parameters: np.ndarray
    """Per |eta| bin: p0, p1, p2 of offset / area = p0 + p1 * rho + p2 * rho * log(pt_raw)."""
    l2l3_log_pt: list[np.ndarray]
    l2l3_factor: list[np.ndarray]

    def eta_bin(self, eta):
        return np.clip(np.digitize(np.abs(eta), self.eta_edges) - 1, 0, len(self.eta_edges) - 2)

    def offset(self, pt_raw, eta, rho, area):
        p0, p1, p2 = self.l1_parameters[self.eta_bin(eta)].T
        return np.maximum(area * (p0 + rho * (p1 + p2 * np.log(np.maximum(pt_raw, 1e-3)))), 0.0)

    def l1(self, pt_raw, eta, rho, area):
        return np.maximum(1.0 - self.offset(pt_raw, eta, rho, area) / np.maximum(pt_raw, 1e-6), 1e-4)

    def factor(self, pt_raw, eta, rho, area):
        """Total correction pt_corr / pt_raw."""
        l1 = self.l1(pt_raw, eta, rho, area)
        log_pt_l1 = np.log(np.maximum(pt_raw * l1, 1e-3))
        bins = self.eta_bin(eta)
        l2l3 = np.ones_like(log_pt_l1)
        for b in np.unique(bins):
            sel = bins == b
            if len(self.l2l3_log_pt[b]):
                l2l3[sel] = np.interp(log_pt_l1[sel], self.l2l3_log_pt[b], self.l2l3_factor[b])
        return l1 * l2l3

    def to_json(self) -> dict:
        return {
            "description": "flavour-blind L1 (area * (p0 + p1 rho + p2 rho log pt_raw)) + smoothed L2L3 correction of "
                           "the demo detector",
            "eta_edges": self.eta_edges.tolist(),
            "l1_parameters": self.l1_parameters.tolist(),
            "l2l3": [{"log_pt": x.tolist(), "factor": y.tolist()} for x, y in zip(self.l2l3_log_pt, self.l2l3_factor)],
        }

    @classmethod
    def from_json(cls, data: dict) -> StandardCorrection:
        return cls(
            np.asarray(data["eta_edges"]),
            np.asarray(data["l1_parameters"], dtype=np.float64).reshape(-1, 3),
            [np.asarray(d["log_pt"]) for d in data["l2l3"]],
            [np.asarray(d["factor"]) for d in data["l2l3"]],
        )


def fit_offset(offset, rho, area, pt_raw) -> np.ndarray:
    """p0, p1, p2 of offset / area = p0 + p1 rho + p2 rho log(pt_raw), by least squares (the mean offset)."""
    if len(offset) < 3:
        return np.zeros(3)
    x = np.column_stack([np.ones(len(offset)), rho, rho * np.log(np.maximum(pt_raw, 1e-3))])
    return np.linalg.lstsq(x, offset / np.maximum(area, 1e-6), rcond=None)[0]


def smooth(x, y, sigma, grid, max_degree: int = MAX_DEGREE) -> np.ndarray:
    """At ``grid``, the polynomial in ``x`` fitted to ``y`` +- ``sigma`` of the degree (1 ... max_degree, at most
    len(x) - 2) with the smallest chi2 + 2 (degree + 1); with fewer than three points, their straight lines."""
    best = None
    for degree in range(1, min(max_degree, len(x) - 2) + 1):
        coefficients = np.polyfit(x, y, degree, w=1.0 / sigma)
        score = np.sum(((np.polyval(coefficients, x) - y) / sigma) ** 2) + 2 * (degree + 1)
        if best is None or score < best[0]:
            best = (score, coefficients)
    if best is None:
        return np.interp(grid, x, y) if len(x) else y
    return np.polyval(best[1], grid)


def derive(raw_pt, eta, rho, area, offset, gen_pt, min_jets: int = MIN_JETS) -> StandardCorrection:
    """Derive L1 and L2L3 from matched jets of a calibration sample (all arrays per jet; ``offset`` is each jet's
    pileup offset, NaN where it is unknown: those jets enter L2L3 only)."""
    raw_pt, eta, rho, area, offset, gen_pt = map(np.asarray, (raw_pt, eta, rho, area, offset, gen_pt))
    bins = np.clip(np.digitize(np.abs(eta), ETA_EDGES) - 1, 0, len(ETA_EDGES) - 2)
    n_bins = len(ETA_EDGES) - 1
    known = np.isfinite(offset)
    l1 = np.array([fit_offset(offset[s], rho[s], area[s], raw_pt[s]) for s in (known & (bins == b)
                                                                                  for b in range(n_bins))])
    partial = StandardCorrection(ETA_EDGES, l1, [np.zeros(0)] * n_bins, [np.ones(0)] * n_bins)
    pt_l1 = raw_pt * partial.l1(raw_pt, eta, rho, area)
    xs, ys = [], []
    for b in range(n_bins):
        x, y, sigma = [], [], []
        for lo, hi in zip(PT_EDGES[:-1], PT_EDGES[1:]):
            sel = (bins == b) & (gen_pt >= lo) & (gen_pt < hi)
            if sel.sum() >= min_jets:
                response = pt_l1[sel] / gen_pt[sel]
                q25, q50, q75 = np.percentile(response, [25, 50, 75])
                x.append(np.log(np.median(pt_l1[sel])))
                y.append(1.0 / q50)
                # the median's error, 1.2533 sigma / sqrt(n) for a Gaussian, from the IQR; as a factor's error
                sigma.append(1.2533 * (q75 - q25) / 1.349 / np.sqrt(sel.sum()) / q50**2)
        order = np.argsort(x)
        x, y, sigma = (np.asarray(v, dtype=np.float64)[order] for v in (x, y, sigma))
        grid = np.linspace(x[0], x[-1], CURVE_POINTS) if len(x) >= 2 else x
        xs.append(grid)
        ys.append(smooth(x, y, np.maximum(sigma, 1e-6), grid))
    return StandardCorrection(ETA_EDGES, l1, xs, ys)


def save(correction: StandardCorrection, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(provenance.with_provenance(correction.to_json()), indent=1))


def load(path: str | os.PathLike) -> StandardCorrection:
    # an older gnnjec wrote l1_offset (rho * area * c(eta)): its file lacks l1_parameters and is derived again
    return StandardCorrection.from_json(read_json(path, "standard correction (JSON)", "rerun the synthetic_jec rule",
                                                  keys=("eta_edges", "l1_parameters", "l2l3")))
