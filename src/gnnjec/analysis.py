"""Apply the exported correction in an analysis: coffea NanoEvents jets (eager, dask, or inside a
``processor.Runner``), or the convert stage's clouds, with ONNX Runtime only (no torch, no training code).

    from coffea.nanoevents import NanoEventsFactory, PFNanoAODSchema
    from gnnjec.analysis import JetCorrection

    events = NanoEventsFactory.from_root({"pfnano.root": "Events"}, schemaclass=PFNanoAODSchema,
                                         mode="eager").events()          # or mode="dask"
    correction = JetCorrection("results/export/pfn/model.onnx")
    jets = correction.corrected_jets(events.Jet[events.Jet.pt > 30])  # pt and mass corrected, every field kept

The jets' constituents (``Jet.constituents.pf``, through ``JetPFCands``), secondary vertices
(``JetSVs``, ``SV``), ρ and the number of vertices become the network's inputs exactly as the
convert stage makes them for training (one code path: :func:`gnnjec.convert.clouds_from_chunk`).
Every jet is corrected, matched to a generator jet or not, so data work as simulation does.

A :class:`JetCorrection` pickles without its ONNX Runtime session (each worker builds its own on first
use), so it can be a processor's attribute or travel to dask workers. On dask-awkward arrays the
correction is one ``map_partitions`` whose typetracer pass touches only the branches the network reads,
so column optimisation reads those and no others.
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

CORRECTED_FIELDS = {
    "pt": "the network's corrected pt (with its residual correction where the model has one)",
    "mass": "the mass scaled by the same factor (the four-vector is scaled; eta and phi are kept)",
    "pt_raw": "pt before any correction, pt * (1 - rawFactor)",
    "mass_raw": "mass before any correction",
    "pt_orig": "pt as given (the file's standard correction)",
    "mass_orig": "mass as given",
    "jet_energy_correction": "the network's factor: corrected over raw",
    "pt_resolution": "a network trained with quantiles only: the width of its predicted interval of pt_gen (the lowest "
                     "to the highest quantile) over the same interval's width in standard deviations of a Gaussian "
                     "(1.99 for 16-84 %, 1.35 for 25-75 %), in GeV",
}
"""The fields :meth:`JetCorrection.corrected_jets` sets or adds (coffea's jet-correction factories' names);
every other field of the jets is kept."""


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


def sigmas(levels) -> float:
    """How many standard deviations of a Gaussian lie between its lowest and highest quantiles ``levels``."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(max(levels)) - NormalDist().inv_cdf(min(levels))


def _is_dask(array) -> bool:
    return type(array).__module__.startswith("dask_awkward")


def _is_typetracer(array) -> bool:
    return ak.backend(array) == "typetracer"


def _keys(event: np.ndarray, jets) -> np.ndarray:
    """One row per jet: its event and the bits of its pt, eta and phi (a jet's identity within its event)."""
    keys = np.empty((len(event), 4), np.uint32)
    keys[:, 0] = event
    for column, name in enumerate(("pt", "eta", "phi"), 1):
        keys[:, column] = np.asarray(ak.flatten(jets[name]), np.float32).view(np.uint32)
    return keys


def original_index(jets, all_jets) -> np.ndarray:
    """For each jet of ``jets`` (flattened), its flat position in ``all_jets`` (``events.Jet`` as read): the jets
    may be a selection, reordered, of the same events. A jet found nowhere is one InputError."""
    counts, all_counts = np.asarray(ak.num(jets, axis=1)), np.asarray(ak.num(all_jets, axis=1))
    keys = _keys(np.repeat(np.arange(len(counts)), counts), jets)
    all_keys = _keys(np.repeat(np.arange(len(all_counts)), all_counts), all_jets)
    if np.array_equal(counts, all_counts) and np.array_equal(keys, all_keys):
        return np.arange(len(keys))
    rows = np.concatenate([all_keys, keys]).view(np.dtype((np.void, 16))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    found = first[inverse[len(all_keys):]]
    lost = np.flatnonzero(found >= len(all_keys))
    if len(lost):
        raise InputError(f"jets: {len(lost)} of {len(keys)} jets are not jets of their events' Jet collection "
                         "(their pt, eta or phi changed); pass the jets as read, selected or reordered only, "
                         "before any other correction")
    return found


class JetCorrection:
    """An exported network (``results/export/<family>/model.onnx``) applied to jets."""

    def __init__(self, onnx_path: str, threads: int | None = None):
        self.onnx_path, self.threads = str(onnx_path), threads
        self._regressor = OnnxRegressor(self.onnx_path, threads)  # a model that does not load fails here

    @property
    def regressor(self) -> OnnxRegressor:
        if self._regressor is None:  # unpickled on a worker: its own session, built once
            self._regressor = OnnxRegressor(self.onnx_path, self.threads)
        return self._regressor

    def __getstate__(self) -> dict:
        return {"onnx_path": self.onnx_path, "threads": self.threads, "_regressor": None}

    def corrected_pt_of_clouds(self, clouds) -> np.ndarray:
        """Corrected pt of every jet of a clouds file (or in-memory clouds), in its order."""
        data = CloudData(clouds, self.regressor.inputs, truth=("pt_raw",))
        return (data.truth["pt_raw"] * np.exp(self.regressor.predict(data))).astype(np.float32)

    def corrected_jets(self, jets, events=None):
        """``jets`` (coffea's ``events.Jet``, whole or a selection or reordering of it) with the network's
        corrected pt and mass and the fields of :data:`CORRECTED_FIELDS`; every other field is kept. ``events``:
        the events the jets belong to (default: the file's events, which is right unless events were selected).
        Eager arrays give eager arrays; dask-awkward arrays give one lazy ``map_partitions``."""
        if events is None:
            try:
                events = jets._events()
            except AttributeError:
                raise InputError("jets: not jets of coffea NanoEvents (they do not know their events); pass "
                                 "events=, the events they belong to") from None
        if _is_dask(jets):
            import dask_awkward as dak

            return dak.map_partitions(self._corrected_jets, jets, events, label="gnnjec-corrected-jets")
        return self._corrected_jets(jets, events)

    def corrected_pt(self, events):
        """Corrected pt of every jet of coffea NanoEvents (PFNanoAODSchema), shaped like ``events.Jet.pt``."""
        return self.corrected_jets(events.Jet, events).pt

    def _corrected_jets(self, jets, events):
        if not _is_typetracer(jets) and len(jets) != len(events):
            raise InputError(f"jets: {len(jets)} events of jets but {len(events)} events; the events were "
                             "selected: pass events=, the same selection of events")
        if "rawFactor" not in jets.fields:
            raise InputError("jets: no rawFactor field; pass NanoAOD AK4 jets (events.Jet), whose raw pt is "
                             "pt * (1 - rawFactor)")
        if _is_typetracer(jets):  # dask-awkward's pass without data: touch what the network reads, give the form
            for array in nanoevents_arrays(events)[0].values():
                ak.typetracer.touch_data(array)
            for name in ("pt", "eta", "phi", "mass", "rawFactor"):
                ak.typetracer.touch_data(jets[name])
            factor = resolution = jets.pt
        else:
            corrected, factor_all, resolution_all = self._correct_events(events)
            index = original_index(jets, events.Jet)
            counts = ak.num(jets, axis=1)
            factor = ak.unflatten(factor_all[index], counts)
            resolution = ak.unflatten(resolution_all[index], counts) if resolution_all is not None else None
        raw = 1 - jets.rawFactor
        fields = {"pt_orig": jets.pt, "mass_orig": jets.mass, "pt_raw": jets.pt * raw, "mass_raw": jets.mass * raw,
                  "jet_energy_correction": factor}
        fields["pt"] = fields["pt_raw"] * factor if _is_typetracer(jets) else ak.unflatten(corrected[index], counts)
        fields["mass"] = fields["mass_raw"] * factor
        if self.regressor.quantiles:
            fields["pt_resolution"] = resolution
        for name in CORRECTED_FIELDS:
            if name in fields:
                jets = ak.with_field(jets, fields[name], name)
        return jets

    def _correct_events(self, events) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Corrected pt, the network's factor and the pt resolution (None without quantiles) of every jet of
        ``events.Jet``, flat, in order."""
        arrays, names, track_details, vertices = nanoevents_arrays(events)
        chunk = chunk_from_arrays(arrays, names, track_details, vertices)
        clouds = ak.from_arrow(clouds_from_chunk(chunk, EVERY_JET, Split(), "NanoEvents"))
        n_jets = int(ak.sum(ak.num(events.Jet, axis=1)))
        if len(clouds) != n_jets:
            raise InputError(f"NanoEvents: {len(clouds)} jets converted of {n_jets}")
        quantiles = bool(self.regressor.quantiles)
        if not len(clouds):
            return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32) if quantiles else None
        data = CloudData(clouds, self.regressor.inputs, truth=("pt_raw",))
        out = self.regressor.predict_outputs(data, ("prediction", "quantiles") if quantiles else ("prediction",))
        factor = np.exp(out["prediction"]).astype(np.float32)
        resolution = None
        if quantiles:  # the interval from the lowest quantile to the highest, in Gaussian standard deviations
            spread = np.exp(out["quantiles"][:, -1]) - np.exp(out["quantiles"][:, 0])
            resolution = (data.truth["pt_raw"] * spread / sigmas(self.regressor.quantiles)).astype(np.float32)
        return (data.truth["pt_raw"] * factor).astype(np.float32), factor, resolution
