"""Demo events written in the NanoAOD/PFNano layout (Run 2 or Run 3 names and types).

``Jet_pt`` carries the standard correction and ``Jet_rawFactor = 1 - pt_raw / Jet_pt``, as in
NanoAOD. PF candidates are stored for the constituents of the stored AK4 jets (PFNano's
"AK4 jets only" content), linked by ``JetPFCands_{jetIdx, pFCandsIdx}``.
"""

from __future__ import annotations

import os

import awkward as ak
import numpy as np

from .. import provenance
from ..files import atomic_output
from ..ragged import local_index, offsets_from_counts
from .correction import StandardCorrection

RECO_JET_PT_MIN = 15.0
RECO_JET_ETA_MAX = 4.7

RUN3_TYPES = {
    "Jet": {"genJetIdx": np.int16, "partonFlavour": np.int16, "hadronFlavour": np.uint8},
    "GenJet": {"partonFlavour": np.int16, "hadronFlavour": np.uint8},
    "PFCands": {"charge": np.int16},
    "JetPFCands": {"jetIdx": np.int16},
    "PV_npvs": np.uint8,
    "PV_npvsGood": np.uint8,
}
"""NanoAOD v12+ (Run 3) narrows these types; its rho branch is ``Rho_fixedGridRhoFastjetAll``."""

LAYOUTS = ("run2", "run3")


def jagged(fields: dict, counts: np.ndarray) -> ak.Array:
    return ak.zip({k: ak.unflatten(v, counts) for k, v in fields.items()})


def as_run3(chunk: dict) -> dict:
    """The same events in the Run 3 (NanoAOD v12+) branch names and types."""
    out = dict(chunk)
    out["Rho_fixedGridRhoFastjetAll"] = out.pop("fixedGridRhoFastjetAll")
    for name, types in RUN3_TYPES.items():
        if isinstance(types, dict):
            fields = {f: out[name][f] for f in out[name].fields}
            fields.update({f: ak.values_astype(fields[f], dtype) for f, dtype in types.items()})
            out[name] = ak.zip(fields)
        else:
            out[name] = out[name].astype(types)
    return out


def write(path: str | os.PathLike, chunks, layout: str = "run2") -> None:
    """Write an iterable of branch dictionaries as the ``Events`` tree of ``path``, atomically."""
    import uproot

    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: use one of {LAYOUTS}")
    with atomic_output(path) as tmp:
        with uproot.recreate(tmp) as out:
            for i, chunk in enumerate(chunks):
                if layout == "run3":
                    chunk = as_run3(chunk)
                if i == 0:
                    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in chunk.items()}
                    out.mktree("Events", types, field_name=lambda outer, inner: f"{outer}_{inner}",
                               counter_name=lambda c: f"n{c}")
                out["Events"].extend(chunk)
            out[provenance.KEY.replace(".", "_")] = provenance.as_json()  # a TObjString


TRACK_DETAILS = {"d0Err": np.float32, "dzErr": np.float32, "trkChi2": np.float32, "lostInnerHits": np.int32,
                 "pvAssocQuality": np.int32, "trkQuality": np.int32}
"""PFNano's track details of the candidates, written where the generator has them (not None)."""


def branches(sample, correction: StandardCorrection, first_event: int, lumi: int) -> dict:
    """A simulated chunk (:class:`gnnjec.demo.simulate.Sample`) as NanoAOD/PFNano branches: with SV and
    JetSVs unless ``sample.vertices`` is None, with the candidates' TRACK_DETAILS unless they are None."""
    n_events = sample.n_events
    reco, gen = sample.reco, sample.gen
    rho_jet = sample.rho[reco.event]
    factor = correction.factor(reco.pt, reco.eta, rho_jet, sample.area)
    jet_pt = reco.pt * factor
    keep = np.flatnonzero((jet_pt > RECO_JET_PT_MIN) & (np.abs(reco.eta) < RECO_JET_ETA_MAX))
    order = keep[np.lexsort((-jet_pt[keep], reco.event[keep]))]
    jet_counts = np.bincount(reco.event[order], minlength=n_events)
    rank = np.full(len(reco.pt), -1, np.int64)
    rank[order] = np.arange(len(order))

    gen_offsets = offsets_from_counts(np.bincount(gen.event, minlength=n_events))
    gen_idx = sample.gen_index[order]
    gen_local = np.where(gen_idx >= 0, gen_idx - gen_offsets[reco.event[order]], -1)

    # constituents of the stored jets, in jet order and by pt inside a jet
    c = sample.cands
    cand_rank = _stored(sample.cand_jet, rank)
    member = np.flatnonzero(cand_rank >= 0)
    member = member[np.lexsort((-c.pt[member], cand_rank[member]))]
    cand_counts = np.bincount(c.event[member], minlength=n_events)
    jet_local = local_index(jet_counts)
    link_jet = jet_local[cand_rank[member]]
    link_cand = local_index(cand_counts)
    n_constituents = np.bincount(cand_rank[member], minlength=len(order))

    jets = {
        "pt": jet_pt[order].astype(np.float32),
        "eta": reco.eta[order].astype(np.float32),
        "phi": reco.phi[order].astype(np.float32),
        "mass": (reco.mass * factor)[order].astype(np.float32),
        "rawFactor": (1.0 - 1.0 / factor[order]).astype(np.float32),
        "area": sample.area[order].astype(np.float32),
        "genJetIdx": gen_local.astype(np.int32),
        "hadronFlavour": reco.hadron_flavour[order].astype(np.int32),
        "partonFlavour": reco.parton_flavour[order].astype(np.int32),
        "nConstituents": np.minimum(n_constituents, 255).astype(np.uint8),
    }
    gen_jets = {
        "pt": gen.pt.astype(np.float32),
        "eta": gen.eta.astype(np.float32),
        "phi": gen.phi.astype(np.float32),
        "mass": gen.mass.astype(np.float32),
        "partonFlavour": gen.parton_flavour.astype(np.int32),
        "hadronFlavour": gen.hadron_flavour.astype(np.int32),
    }
    pf = {
        "pt": c.pt[member].astype(np.float32),
        "eta": c.eta[member].astype(np.float32),
        "phi": c.phi[member].astype(np.float32),
        "mass": c.mass[member].astype(np.float32),
        "charge": c.charge[member].astype(np.int32),
        "pdgId": c.pdgId[member].astype(np.int32),
        "d0": c.d0[member].astype(np.float32),
        "dz": c.dz[member].astype(np.float32),
        "puppiWeight": c.puppiWeight[member].astype(np.float32),
        **{f: getattr(c, f)[member].astype(dtype) for f, dtype in TRACK_DETAILS.items() if getattr(c, f) is not None},
    }
    out = {
        "run": np.ones(n_events, np.uint32),
        "luminosityBlock": np.full(n_events, lumi, np.uint32),
        "event": np.arange(first_event, first_event + n_events, dtype=np.uint64),
        "fixedGridRhoFastjetAll": sample.rho.astype(np.float32),
        "PV_npvs": sample.npv.astype(np.int32),
        "PV_npvsGood": (sample.npv if getattr(sample, "npv_good", None) is None else sample.npv_good).astype(np.int32),
        "Pileup_nTrueInt": sample.mu.astype(np.float32),
        "genWeight": np.ones(n_events, np.float32),
        "Jet": jagged(jets, jet_counts),
        "GenJet": jagged(gen_jets, np.bincount(gen.event, minlength=n_events)),
        "PFCands": jagged(pf, cand_counts),
        "JetPFCands": jagged(
            {"jetIdx": link_jet.astype(np.int32), "pFCandsIdx": link_cand.astype(np.int32)}, cand_counts
        ),
    }
    if sample.vertices is not None:
        sv_branches, jet_sv_branches, sv_counts, pair_counts = _vertices(sample, rank, jet_local, n_events)
        out["SV"] = jagged(sv_branches, sv_counts)
        out["JetSVs"] = jagged(jet_sv_branches, pair_counts)
    return out


def _stored(jet_index: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per object: the stored position (``rank``) of its jet, -1 for no jet or a jet not stored."""
    return np.where(jet_index >= 0, rank[np.maximum(jet_index, 0)], -1)


def _vertices(sample, rank: np.ndarray, jet_local: np.ndarray, n_events: int):
    """NanoAOD's SV table (all vertices) and PFNano's JetSVs (vertex, stored jet) pairs."""
    v = sample.vertices
    sv_counts = np.bincount(v.event, minlength=n_events)
    sv = {
        name: getattr(v, name).astype(np.float32)
        for name in (
            "pt", "eta", "phi", "mass", "x", "y", "z", "chi2", "ndof", "dxy", "dxySig", "dlen", "dlenSig", "pAngle"
        )
    }
    sv["ntracks"] = v.ntracks.astype(np.uint8)
    jet = _stored(sample.vertex_jet, rank)
    pairs = np.flatnonzero(jet >= 0)
    pairs = pairs[np.lexsort((-v.pt[pairs], jet[pairs]))]
    reco = sample.reco
    j = sample.vertex_jet[pairs]
    jet_energy = np.sqrt((reco.pt[j] * np.cosh(reco.eta[j])) ** 2 + reco.mass[j] ** 2)
    pair = {
        "jetIdx": jet_local[jet[pairs]].astype(np.int32),
        "sVIdx": local_index(sv_counts)[pairs].astype(np.int32),
        "pt": v.pt[pairs],
        "mass": v.mass[pairs],
        "ntracks": v.ntracks[pairs].astype(np.float32),
        "dxy": v.dxy[pairs],
        "dxysig": v.dxySig[pairs],
        "d3d": v.dlen[pairs],
        "d3dsig": v.dlenSig[pairs],
        "costhetasvpv": np.cos(v.pAngle[pairs]),
        "enration": v.energy[pairs] / jet_energy,
    }
    pair = {k: (a if a.dtype == np.int32 else a.astype(np.float32)) for k, a in pair.items()}
    return sv, pair, sv_counts, np.bincount(v.event[pairs], minlength=n_events)
