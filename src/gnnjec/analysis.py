"""Apply the exported correction in an analysis: coffea NanoEvents jets, or the convert stage's
clouds, to corrected pt with ONNX Runtime (no torch, no training code).

    from coffea.nanoevents import NanoEventsFactory, PFNanoAODSchema
    from gnnjec.analysis import JetCorrection

    events = NanoEventsFactory.from_root({"pfnano.root": "Events"}, schemaclass=PFNanoAODSchema,
                                         mode="eager").events()
    correction = JetCorrection("results/export/pfn/model.onnx")
    pt = correction.corrected_pt(events)          # like events.Jet.pt: one value per jet
    jets = ak.with_field(events.Jet, pt, "pt_gnn")

The jets' constituents (``Jet.constituents.pf``, through ``JetPFCands``), secondary vertices
(``JetSVs``, ``SV``), ρ and the number of vertices become the network's inputs exactly as the
convert stage makes them for training (one code path: :func:`gnnjec.convert.clouds_from_chunk`).
Every jet is corrected, matched to a generator jet or not, so data work as simulation does.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from .convert import Selection, Split, clouds_from_chunk
from .dataset import CloudData
from .errors import InputError
from .inference import OnnxRegressor
from .nanoaod import (
    EVENT_ID,
    GENJET_FIELDS,
    JET_FIELDS,
    JETSV_FIELDS,
    LINK_FIELDS,
    NPV_BRANCH,
    PFCAND_FIELDS,
    RHO_BRANCHES,
    SV_FIELDS,
    TRACK_FIELDS,
    chunk_from_arrays,
)

EVERY_JET = Selection(min_gen_pt=0.0, max_abs_gen_eta=float("inf"), require_gen_match=False, invalid_jets="keep")
"""Keep every reco jet, in order, as it is (the training selection cuts on the matched generator jet and
refuses jets with NaN values; here such a jet gets a NaN correction)."""

GEN_DEFAULTS = {"genJetIdx": -1, "hadronFlavour": 0, "partonFlavour": 0}
"""What a jet of data (no generator truth) reads as."""


def _field(events, collection: str, name: str):
    try:
        return events[collection][name]
    except Exception:  # coffea raises different types for a missing collection or field
        return None


def nanoevents_arrays(events) -> tuple[dict, dict, bool, bool]:
    """The branch-named arrays of coffea NanoEvents (PFNanoAODSchema) that the convert stage reads,
    with its names map, and whether track details and secondary vertices are present."""
    arrays = {}
    for name in EVENT_ID:
        arrays[name] = events[name]
    rho = next((b for b in RHO_BRANCHES if b in events.fields or (b.startswith("Rho_") and "Rho" in events.fields)),
               None)
    if rho is None:
        raise InputError(f"NanoEvents: no {' or '.join(RHO_BRANCHES)}; the events need the jets' pileup density")
    arrays[rho] = events.Rho.fixedGridRhoFastjetAll if rho.startswith("Rho_") else events[rho]
    arrays[NPV_BRANCH] = events.PV.npvs
    missing = []
    for collection, fields in (("Jet", JET_FIELDS), ("PFCands", PFCAND_FIELDS), ("JetPFCands", LINK_FIELDS)):
        for f in fields:
            value = _field(events, collection, f)
            if value is None and collection == "Jet" and f in GEN_DEFAULTS:
                value = ak.values_astype(ak.zeros_like(events.Jet.pt), np.int64) + GEN_DEFAULTS[f]
            if value is None:
                missing.append(f"{collection}_{f}")
            arrays[f"{collection}_{f}"] = value
    if missing:
        raise InputError(f"NanoEvents: missing {', '.join(missing)}; AK4 constituents need PFNano read with "
                         "PFNanoAODSchema")
    for f in GENJET_FIELDS:  # data: no generator jets
        value = _field(events, "GenJet", f)
        arrays[f"GenJet_{f}"] = value if value is not None else ak.zeros_like(events.Jet.pt)[:, :0]
    track_details = all(_field(events, "PFCands", f) is not None for f in TRACK_FIELDS)
    if track_details:
        arrays.update({f"PFCands_{f}": events.PFCands[f] for f in TRACK_FIELDS})
    vertices = all(_field(events, "SV", f) is not None for f in SV_FIELDS) and \
        all(_field(events, "JetSVs", f) is not None for f in JETSV_FIELDS)
    if vertices:
        arrays.update({f"SV_{f}": events.SV[f] for f in SV_FIELDS})
        arrays.update({f"JetSVs_{f}": events.JetSVs[f] for f in JETSV_FIELDS})
    return arrays, {"rho": rho}, track_details, vertices


class JetCorrection:
    """An exported network (``results/export/<family>/model.onnx``) applied to jets."""

    def __init__(self, onnx_path: str, threads: int | None = None):
        self.regressor = OnnxRegressor(onnx_path, threads)

    def corrected_pt_of_clouds(self, clouds) -> np.ndarray:
        """Corrected pt of every jet of a clouds file (or in-memory clouds), in its order."""
        data = CloudData(clouds, self.regressor.inputs, truth=("pt_raw",))
        return (data.truth["pt_raw"] * np.exp(self.regressor.predict(data))).astype(np.float32)

    def corrected_pt(self, events) -> ak.Array:
        """Corrected pt of every jet of coffea NanoEvents (PFNanoAODSchema), shaped like ``events.Jet.pt``."""
        arrays, names, track_details, vertices = nanoevents_arrays(events)
        chunk = chunk_from_arrays(arrays, names, track_details, vertices)
        clouds = ak.from_arrow(clouds_from_chunk(chunk, EVERY_JET, Split(), "NanoEvents"))
        counts = ak.num(events.Jet.pt, axis=1)
        if len(clouds) != int(ak.sum(counts)):
            raise InputError(f"NanoEvents: {len(clouds)} jets converted of {int(ak.sum(counts))}")
        pt = self.corrected_pt_of_clouds(clouds) if len(clouds) else np.zeros(0, np.float32)
        return ak.unflatten(pt, counts)
