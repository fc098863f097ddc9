"""Feature definitions: the one place that says what every stored and every network input means.

The convert stage computes all of :data:`CHARGED`, :data:`NEUTRAL` and :data:`JET` for every jet;
the configuration picks the subset a network sees (``features:`` in ``config/config.yaml``), and the
trained model carries that list, so training, export and evaluation can never disagree on it.
"""

from __future__ import annotations

import numpy as np

from .kinematics import delta_phi
from .ragged import segment_sum

FLAVOURS = ("b", "c", "uds", "g")
"""Flavour classes, indexed by the stored ``flavour`` code (-1: undefined)."""

_KINEMATICS = {
    "pt": "constituent pt [GeV]",
    "log_pt": "log(pt / GeV)",
    "rel_pt": "pt / pt_raw of the jet",
    "log_rel_pt": "log(pt / pt_raw)",
    "eta": "constituent eta (absolute detector position)",
    "deta": "(eta - eta_jet) * sign(eta_jet)",
    "dphi": "phi - phi_jet, wrapped to [-pi, pi)",
    "dr": "sqrt(deta^2 + dphi^2)",
    "puppi_weight": "PUPPI weight",
}

CHARGED = {
    **_KINEMATICS,
    "d0": "transverse impact parameter [cm]",
    "dz": "longitudinal impact parameter [cm]",
    "charge": "electric charge",
    "is_hadron": "one-hot: |pdgId| == 211",
    "is_muon": "one-hot: |pdgId| == 13",
    "is_electron": "one-hot: |pdgId| == 11",
}
"""Features of charged constituents (charge != 0)."""

NEUTRAL = {
    **_KINEMATICS,
    "is_photon": "one-hot: pdgId == 22",
    "is_hadron": "one-hot: pdgId == 130",
    "is_hf_hadron": "one-hot: pdgId == 1 (HF hadronic)",
    "is_hf_em": "one-hot: pdgId == 2 (HF electromagnetic)",
}
"""Features of neutral constituents (charge == 0)."""

JET = {
    "pt_raw": "uncorrected jet pt, (1 - rawFactor) * Jet_pt [GeV]",
    "log_pt_raw": "log(pt_raw / GeV)",
    "eta": "jet eta",
    "abs_eta": "|jet eta|",
    "phi": "jet phi",
    "mass_raw": "uncorrected jet mass [GeV]",
    "area": "jet catchment area",
    "rho": "event pileup density fixedGridRhoFastjetAll [GeV]",
    "npv": "number of primary vertices PV_npvs",
    "n_constituents": "number of PF constituents",
    "n_charged": "number of charged constituents",
    "n_neutral": "number of neutral constituents",
    "multiplicity": "constituents with pt > 1 GeV",
    "ptd": "pT_D = sqrt(sum pt^2) / sum pt",
    "axis2": "minor axis of the pt^2-weighted (eta, phi) spread of the constituents",
}
"""Jet-level features (inputs joined before the regression head)."""

COLLECTIONS = {"charged": CHARGED, "neutral": NEUTRAL}

TRUTH = {
    "pt_std": "pt with the standard (L1L2L3) correction, Jet_pt",
    "pt_gen": "matched GenJet pt",
    "eta_gen": "matched GenJet eta",
    "phi_gen": "matched GenJet phi",
    "flavour": "flavour class code: index into FLAVOURS, -1 undefined",
    "hadron_flavour": "Jet_hadronFlavour",
    "parton_flavour": "Jet_partonFlavour",
    "target": "regression target log(pt_gen / pt_raw)",
    "split": "0 train, 1 validation, 2 test (hash of the event id)",
    "run": "run number",
    "luminosity_block": "luminosity block",
    "event": "event number",
}
"""Per-jet truth and bookkeeping columns, never network inputs."""

DEFAULT_INPUTS = {
    "charged": ["log_pt", "log_rel_pt", "deta", "dphi", "dr", "eta", "d0", "dz", "puppi_weight", "charge",
                "is_hadron", "is_muon", "is_electron"],
    "neutral": ["log_pt", "log_rel_pt", "deta", "dphi", "dr", "eta", "puppi_weight",
                "is_photon", "is_hadron", "is_hf_hadron", "is_hf_em"],
    "jet": ["log_pt_raw", "eta", "mass_raw", "area", "rho", "npv", "multiplicity", "ptd", "axis2"],
}


def flavour_class(hadron_flavour: np.ndarray, parton_flavour: np.ndarray) -> np.ndarray:
    """hadronFlavour if non-zero else |partonFlavour|, mapped to b=0, c=1, uds=2, g=3, other -1."""
    label = np.where(hadron_flavour != 0, hadron_flavour, np.abs(parton_flavour))
    return np.select([label == 5, label == 4, (label >= 1) & (label <= 3), label == 21], [0, 1, 2, 3], -1).astype(np.int8)


def constituent_features(cand: dict, jet: dict, parents: np.ndarray) -> dict:
    """Per-constituent features; ``cand`` holds PFCands fields, ``jet`` the jet axis and pt_raw.

    ``parents`` maps each constituent to its jet (row of ``jet``).
    """
    pt = cand["pt"].astype(np.float64)
    jet_eta = jet["eta"][parents]
    sign = np.where(jet_eta >= 0, 1.0, -1.0)
    deta = (cand["eta"] - jet_eta) * sign
    dphi = delta_phi(cand["phi"], jet["phi"][parents])
    rel_pt = pt / jet["pt_raw"][parents]
    apdg = np.abs(cand["pdgId"])
    return {
        "pt": pt,
        "log_pt": np.log(np.maximum(pt, 1e-3)),
        "rel_pt": rel_pt,
        "log_rel_pt": np.log(np.maximum(rel_pt, 1e-6)),
        "eta": cand["eta"],
        "deta": deta,
        "dphi": dphi,
        "dr": np.hypot(deta, dphi),
        "puppi_weight": cand["puppiWeight"],
        "d0": cand["d0"],
        "dz": cand["dz"],
        "charge": cand["charge"],
        "is_hadron": (apdg == 211) | (apdg == 130),
        "is_muon": apdg == 13,
        "is_electron": apdg == 11,
        "is_photon": apdg == 22,
        "is_hf_hadron": apdg == 1,
        "is_hf_em": apdg == 2,
    }


def jet_shape_features(cf: dict, parents: np.ndarray, n_jets: int) -> dict:
    """Multiplicity, pT_D and axis2 from the constituents' features (``cf`` as returned above)."""
    pt = cf["pt"]
    sum_pt = segment_sum(pt, parents, n_jets)
    w = pt * pt
    sum_w = segment_sum(w, parents, n_jets)
    safe_w = np.where(sum_w > 0, sum_w, 1.0)

    def mean(x):
        return segment_sum(w * x, parents, n_jets) / safe_w

    deta, dphi = cf["deta"], cf["dphi"]
    m_e, m_p = mean(deta), mean(dphi)
    a = mean(deta * deta) - m_e * m_e
    b = mean(dphi * dphi) - m_p * m_p
    c = mean(deta * dphi) - m_e * m_p
    minor = (a + b) / 2 - np.sqrt(((a - b) / 2) ** 2 + c * c)
    return {
        "multiplicity": np.bincount(parents[pt > 1.0], minlength=n_jets),
        "ptd": np.sqrt(sum_w) / np.where(sum_pt > 0, sum_pt, 1.0),
        "axis2": np.sqrt(np.clip(minor, 0.0, None)),
    }


def validate_inputs(inputs: dict) -> None:
    """Raise InputError naming the config key if a requested input feature does not exist."""
    from .errors import InputError

    known = {"jet": JET, **COLLECTIONS}
    for group, names in inputs.items():
        if group not in known:
            raise InputError(f"config key features.{group}: unknown group; use one of {sorted(known)}")
        for name in names:
            if name not in known[group]:
                raise InputError(
                    f"config key features.{group}: unknown feature {name!r}; known: {', '.join(known[group])}"
                )
