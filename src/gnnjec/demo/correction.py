"""The flavour-blind standard correction (L1 offset + L2L3 response) of the demo detector.

As CMS does on QCD simulation [CMS, JINST 12 (2017) P02014]: L1 removes the pileup offset,
rho * area * offset(|eta|), with the offset per unit rho * area measured from the pileup energy in
jets (the demo knows it from the truth); L2L3 then inverts the median response pt_L1 / pt_gen in
bins of |eta| and gen pt, interpolated in log pt_L1. It is derived on a sample of its own, never on
the jets it is applied to, and knows nothing of flavour: what it leaves is the network's to win.
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


@dataclass
class StandardCorrection:
    """L1 offset per |eta| bin and an L2L3 response curve per |eta| bin, interpolated in log pt."""

    eta_edges: np.ndarray
    l1_offset: np.ndarray  # pileup pt per unit (rho * area), per |eta| bin
    l2l3_log_pt: list[np.ndarray]
    l2l3_factor: list[np.ndarray]

    def eta_bin(self, eta):
        return np.clip(np.digitize(np.abs(eta), self.eta_edges) - 1, 0, len(self.eta_edges) - 2)

    def l1(self, pt_raw, eta, rho, area):
        offset = rho * area * self.l1_offset[self.eta_bin(eta)]
        return np.maximum(1.0 - offset / np.maximum(pt_raw, 1e-6), 1e-4)

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
            "description": "flavour-blind L1 (rho*area*offset) + L2L3 correction of the demo detector",
            "eta_edges": self.eta_edges.tolist(),
            "l1_offset": self.l1_offset.tolist(),
            "l2l3": [{"log_pt": x.tolist(), "factor": y.tolist()} for x, y in zip(self.l2l3_log_pt, self.l2l3_factor)],
        }

    @classmethod
    def from_json(cls, data: dict) -> StandardCorrection:
        return cls(
            np.asarray(data["eta_edges"]),
            np.asarray(data["l1_offset"]),
            [np.asarray(d["log_pt"]) for d in data["l2l3"]],
            [np.asarray(d["factor"]) for d in data["l2l3"]],
        )


def derive(raw_pt, eta, rho, area, pileup_pt, gen_pt, min_jets: int = MIN_JETS) -> StandardCorrection:
    """Derive L1 and L2L3 from matched jets of a calibration sample (all arrays per jet)."""
    raw_pt, eta, rho, area, pileup_pt, gen_pt = map(np.asarray, (raw_pt, eta, rho, area, pileup_pt, gen_pt))
    bins = np.clip(np.digitize(np.abs(eta), ETA_EDGES) - 1, 0, len(ETA_EDGES) - 2)
    n_bins = len(ETA_EDGES) - 1
    rho_area = rho * area
    l1_offset = np.array(
        [pileup_pt[bins == b].sum() / max(rho_area[bins == b].sum(), 1e-9) for b in range(n_bins)]
    )
    partial = StandardCorrection(ETA_EDGES, l1_offset, [np.zeros(0)] * n_bins, [np.ones(0)] * n_bins)
    pt_l1 = raw_pt * partial.l1(raw_pt, eta, rho, area)
    xs, ys = [], []
    for b in range(n_bins):
        x, y = [], []
        for lo, hi in zip(PT_EDGES[:-1], PT_EDGES[1:]):
            sel = (bins == b) & (gen_pt >= lo) & (gen_pt < hi)
            if sel.sum() >= min_jets:
                x.append(np.log(np.median(pt_l1[sel])))
                y.append(1.0 / np.median(pt_l1[sel] / gen_pt[sel]))
        order = np.argsort(x)
        xs.append(np.asarray(x, dtype=np.float64)[order])
        ys.append(np.asarray(y, dtype=np.float64)[order])
    return StandardCorrection(ETA_EDGES, l1_offset, xs, ys)


def save(correction: StandardCorrection, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(provenance.with_provenance(correction.to_json()), indent=1))


def load(path: str | os.PathLike) -> StandardCorrection:
    return StandardCorrection.from_json(read_json(path, "standard correction (JSON)", "rerun the synthetic_jec rule"))
