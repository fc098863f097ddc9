"""Feature definitions: the one place that says what every stored and every network input means.

The convert stage stores :data:`JET` and the constituent features of :data:`CHARGED` and
:data:`NEUTRAL` for every jet, except those in :data:`DERIVED`, which are computed when the clouds
are read; the configuration picks the subset a network sees (``features:`` in
``config/config.yaml``), and the trained model carries that list, so training, export and
evaluation can never disagree on it.
"""

from __future__ import annotations

import numpy as np

from .ragged import segment_sum

FLAVOURS = ("b", "c", "uds", "g")
"""Flavour classes, indexed by the stored ``flavour`` code (-1: undefined)."""

THESIS_FLAVOURS = ("u", "d", "s", "c", "b", "g")
"""The six classes of the thesis's flavour spread, indexed by :func:`thesis_flavour_class`'s code."""

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
    "has_track": "one-hot: track details stored (PFCands_d0Err > 0; MiniAOD keeps them above about 0.5 GeV)",
    "d0": "transverse impact parameter [cm] (0 without track details)",
    "dz": "longitudinal impact parameter [cm] (0 without track details)",
    "d0_sig": "d0 / d0Err (0 without track details)",
    "dz_sig": "dz / dzErr (0 without track details)",
    "track_chi2": "normalised track chi2, PFCands_trkChi2 (0 without track details)",
    "lost_inner_hits": "PFCands_lostInnerHits: -1 a hit in the first pixel layer, 0, 1, 2 (or more) lost",
    "high_purity": "one-hot: a highPurity track (PFCands_trkQuality bit 4)",
    "pv_used_in_fit": "one-hot: PFCands_pvAssocQuality >= 6, the track was used in the primary vertex fit",
    "pv_compatible": "one-hot: PFCands_pvAssocQuality 4 or 5, compatible with the primary vertex",
    "pv_other": "one-hot: PFCands_pvAssocQuality <= 1, closer to another vertex or none",
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

SV = {
    "pt": "secondary vertex pt (sum of its tracks) [GeV], JetSVs_pt",
    "log_pt": "log(pt / GeV)",
    "rel_pt": "pt / pt_raw of the jet",
    "log_rel_pt": "log(pt / pt_raw)",
    "eta": "secondary vertex eta (of its momentum)",
    "deta": "(eta - eta_jet) * sign(eta_jet)",
    "dphi": "phi - phi_jet, wrapped to [-pi, pi)",
    "dr": "sqrt(deta^2 + dphi^2)",
    "mass": "invariant mass of its tracks [GeV], JetSVs_mass",
    "ntracks": "number of tracks, JetSVs_ntracks",
    "dxy": "transverse flight distance from the primary vertex [cm], JetSVs_dxy",
    "dxy_sig": "its significance, JetSVs_dxysig",
    "d3d": "3D flight distance [cm], JetSVs_d3d",
    "d3d_sig": "its significance, JetSVs_d3dsig",
    "cos_pointing": "cosine of the angle between flight direction and momentum, JetSVs_costhetasvpv",
    "energy_ratio": "SV energy / jet energy, JetSVs_enration",
}
"""Features of secondary vertices associated with the jet (PFNano's SV and JetSVs collections)."""

SV_BRANCHES = {
    "mass": "mass", "ntracks": "ntracks", "dxy": "dxy", "dxy_sig": "dxysig", "d3d": "d3d", "d3d_sig": "d3dsig",
    "cos_pointing": "costhetasvpv", "energy_ratio": "enration",
}
"""SV feature -> JetSVs field it is read from."""

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
    "n_sv": "number of associated secondary vertices (in the SV table: flight significance > 3)",
    "multiplicity": "constituents with pt > 1 GeV",
    "ptd": "pT_D = sqrt(sum pt^2) / sum pt",
    "axis2": "minor axis of the pt^2-weighted (eta, phi) spread of the constituents",
}
"""Jet-level features (inputs joined before the regression head)."""

COLLECTIONS = {"charged": CHARGED, "neutral": NEUTRAL, "sv": SV}

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
    "charged": ["log_pt", "log_rel_pt", "deta", "dphi", "dr", "eta", "has_track", "d0", "dz", "d0_sig", "dz_sig",
                "track_chi2", "lost_inner_hits", "high_purity", "pv_used_in_fit", "pv_compatible", "pv_other",
                "puppi_weight", "charge", "is_hadron", "is_muon", "is_electron"],
    "neutral": ["log_pt", "log_rel_pt", "deta", "dphi", "dr", "eta", "puppi_weight",
                "is_photon", "is_hadron", "is_hf_hadron", "is_hf_em"],
    "sv": ["log_pt", "log_rel_pt", "deta", "dphi", "dr", "mass", "ntracks", "dxy", "dxy_sig", "d3d", "d3d_sig",
           "cos_pointing", "energy_ratio"],
    "jet": ["log_pt_raw", "eta", "mass_raw", "area", "rho", "npv", "multiplicity", "ptd", "axis2"],
}


def flavour_class(hadron_flavour: np.ndarray, parton_flavour: np.ndarray) -> np.ndarray:
    """hadronFlavour if non-zero else |partonFlavour|, mapped to b=0, c=1, uds=2, g=3, other -1."""
    label = np.where(hadron_flavour != 0, hadron_flavour, np.abs(parton_flavour))
    classes = np.select([label == 5, label == 4, (label >= 1) & (label <= 3), label == 21], [0, 1, 2, 3], -1)
    return classes.astype(np.int8)


def thesis_flavour_class(hadron_flavour: np.ndarray, parton_flavour: np.ndarray) -> np.ndarray:
    """hadronFlavour if non-zero else |partonFlavour|, mapped to the thesis's six classes u=0, d=1, s=2, c=3, b=4,
    g=5 (:data:`THESIS_FLAVOURS`), other -1."""
    label = np.where(hadron_flavour != 0, hadron_flavour, np.abs(parton_flavour))
    classes = np.select([label == 2, label == 1, label == 3, label == 4, label == 5, label == 21],
                        [0, 1, 2, 3, 4, 5], -1)
    return classes.astype(np.int8)


ONE_HOT_IDS = {
    "is_hadron": (211, 130),
    "is_muon": (13,),
    "is_electron": (11,),
    "is_photon": (22,),
    "is_hf_hadron": (1,),
    "is_hf_em": (2,),
}
"""|pdgId| values of each one-hot flag (stored as booleans)."""

TRACK_FLAGS = ("has_track", "high_purity", "pv_used_in_fit", "pv_compatible", "pv_other")

STORED_TYPES = {**{name: np.bool_ for name in (*ONE_HOT_IDS, *TRACK_FLAGS)}, "charge": np.int8,
                "lost_inner_hits": np.int8, "ntracks": np.int8}
"""Storage type of the constituent features that are not float32."""


DERIVED = {
    "log_pt": ("pt",),
    "rel_pt": ("pt",),
    "log_rel_pt": ("pt",),
    "dr": ("deta", "dphi"),
}
"""Constituent features computed when the clouds are read, from the stored features named (and the
jet's ``pt_raw``). They cost nothing to recompute, so the clouds files do not carry them."""


def stored(names) -> list[str]:
    """The features of ``names`` that the convert stage stores."""
    return [n for n in names if n not in DERIVED]


def stored_needed(names) -> list[str]:
    """The stored features from which all of ``names`` are read or derived."""
    return list(dict.fromkeys(s for n in names for s in DERIVED.get(n, (n,))))


def measured_features(names, kin: dict, cand) -> dict:
    """Stored constituent features ``names`` (convert stage), each a flat array over the constituents.

    ``kin`` holds the float32 ``pt``, ``eta``, ``deta`` and ``dphi`` of the constituents (relative to
    their jet, see :data:`CHARGED`); ``cand`` maps PFCands field names (``pdgId``, ``charge``, ``d0``,
    ``dz``, ``puppiWeight``, the track details of :data:`gnnjec.nanoaod.TRACK_FIELDS`, and
    ``abs_pdgId``) to the constituents' values and is only read for the features asked for.
    """
    out = {}
    for name in names:
        if name in ("pt", "eta", "deta", "dphi"):
            value = kin[name]
        elif name == "puppi_weight":
            value = cand["puppiWeight"]
        elif name == "charge":
            value = cand[name]
        elif name in ("has_track", "d0", "dz", "d0_sig", "dz_sig", "track_chi2"):
            value = _track_detail(name, cand)
        elif name == "lost_inner_hits":
            value = np.clip(cand["lostInnerHits"], -1, 2)
        elif name == "high_purity":
            value = (cand["trkQuality"] & 4) != 0
        elif name == "pv_used_in_fit":
            value = cand["pvAssocQuality"] >= 6
        elif name == "pv_compatible":
            value = (cand["pvAssocQuality"] == 4) | (cand["pvAssocQuality"] == 5)
        elif name == "pv_other":
            value = cand["pvAssocQuality"] <= 1
        elif name in SV_BRANCHES:
            value = cand[SV_BRANCHES[name]]
        elif name in ONE_HOT_IDS:
            value = np.logical_or.reduce([cand["abs_pdgId"] == i for i in ONE_HOT_IDS[name]])
        else:
            raise KeyError(f"no stored definition for constituent feature {name!r}")
        out[name] = np.asarray(value, dtype=STORED_TYPES.get(name, np.float32))
    return out


def _track_detail(name: str, cand) -> np.ndarray:
    """Impact parameters and track quality, 0 where PFNano has no track details (its -1)."""
    has = (cand["d0Err"] > 0) & (cand["dzErr"] > 0)
    if name == "has_track":
        return has
    if name in ("d0", "dz"):
        return np.where(has, cand[name], 0.0)
    if name == "track_chi2":
        return np.where(has, cand["trkChi2"], 0.0)
    base = name[:2]  # d0_sig, dz_sig
    return np.where(has, cand[base] / np.where(has, cand[f"{base}Err"], 1.0), 0.0)


def constituent_features(names, columns, pt_raw: np.ndarray) -> dict:
    """Network inputs ``names`` (float32) from the stored ``columns``; ``pt_raw``: each constituent's jet."""
    out = {}
    for name in names:
        if name == "log_pt":
            value = np.log(np.maximum(columns["pt"], 1e-3))
        elif name in ("rel_pt", "log_rel_pt"):
            value = columns["pt"] / pt_raw
            if name == "log_rel_pt":
                value = np.log(np.maximum(value, 1e-6))
        elif name == "dr":
            value = np.hypot(columns["deta"], columns["dphi"])
        else:
            value = columns[name]
        out[name] = np.asarray(value, dtype=np.float32)
    return out


def jet_shape_features(pt: np.ndarray, deta: np.ndarray, dphi: np.ndarray, parents: np.ndarray, n_jets: int) -> dict:
    """Multiplicity, pT_D and axis2 of each jet from all its constituents' pt and (deta, dphi)."""
    pt = pt.astype(np.float64)
    sum_pt = segment_sum(pt, parents, n_jets)
    w = pt * pt
    sum_w = segment_sum(w, parents, n_jets)
    safe_w = np.where(sum_w > 0, sum_w, 1.0)

    def mean(x):
        return segment_sum(w * x, parents, n_jets) / safe_w

    deta, dphi = deta.astype(np.float64), dphi.astype(np.float64)
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
    from .errors import ConfigError

    known = {"jet": JET, **COLLECTIONS}
    for group, names in inputs.items():
        if group not in known:
            raise ConfigError(f"features.{group}", f"unknown group; use one of {sorted(known)}")
        for name in names:
            if name not in known[group]:
                raise ConfigError(
                    f"features.{group}", f"unknown feature {name!r}; known: {', '.join(known[group])}"
                )
