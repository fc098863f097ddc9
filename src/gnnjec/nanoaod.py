"""Reading NanoAOD / PFNano: branch names across NanoAOD generations, and clear refusals.

Columns come back as flat numpy arrays with per-event counts (see :class:`EventChunk`), which is what
the convert stage works on. Local paths and ``root://`` URLs are both opened through uproot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import awkward as ak
import numpy as np

from .errors import InputError
from .ragged import offsets_from_counts

JET_FIELDS = ("pt", "eta", "phi", "mass", "rawFactor", "area", "genJetIdx", "hadronFlavour", "partonFlavour")
GENJET_FIELDS = ("pt", "eta", "phi")
PFCAND_FIELDS = ("pt", "eta", "phi", "mass", "charge", "pdgId", "d0", "dz", "puppiWeight")
LINK_FIELDS = ("jetIdx", "pFCandsIdx")
EVENT_ID = ("run", "luminosityBlock", "event")
RHO_BRANCHES = ("fixedGridRhoFastjetAll", "Rho_fixedGridRhoFastjetAll")  # Run 2 / NanoAOD v12+
NPV_BRANCH = "PV_npvs"


@dataclass
class Collection:
    """One NanoAOD collection of a chunk: flat fields and the per-event counts."""

    counts: np.ndarray
    fields: dict

    @property
    def offsets(self) -> np.ndarray:
        return offsets_from_counts(self.counts)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]


@dataclass
class EventChunk:
    """A chunk of events: event-level columns and the collections the convert stage needs."""

    n_events: int
    run: np.ndarray
    luminosity_block: np.ndarray
    event: np.ndarray
    rho: np.ndarray
    npv: np.ndarray
    jet: Collection
    genjet: Collection
    pfcands: Collection
    links: Collection


def open_events(path: str):
    """Open the ``Events`` tree of ``path``; any failure becomes one InputError line."""
    import uproot

    try:
        handle = uproot.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path in the config's samples") from None
    except Exception as err:  # uproot raises many types for a damaged file
        raise InputError(f"{path}: not a readable ROOT file ({_first_line(err)}); the file is corrupt or truncated, copy it again") from None
    try:
        tree = handle["Events"]
    except Exception:
        raise InputError(f"{path}: no 'Events' tree; is this a NanoAOD file?") from None
    if tree.num_entries == 0:
        raise InputError(f"{path}: the Events tree is empty; remove the file from the sample")
    return tree


def branch_map(tree, path: str) -> dict:
    """Logical name -> branch name for this file, or an InputError naming what is missing."""
    keys = set(tree.keys())
    link = [f"JetPFCands_{f}" for f in LINK_FIELDS]
    cands = [f"PFCands_{f}" for f in PFCAND_FIELDS]
    if not set(link) <= keys:
        have_fat = "FatJetPFCands_pFCandsIdx" in keys or "FatJetPFCand_pfCandIdx" in keys
        what = "only AK8 (FatJet) constituents" if have_fat else "no jet constituents"
        raise InputError(
            f"{path}: {what}; missing branches {', '.join(sorted(set(link) - keys))} "
            "- AK4 jet constituents need PFNano (cms-jet/PFNano), plain NanoAOD cannot be converted"
        )
    required = [f"Jet_{f}" for f in JET_FIELDS] + [f"GenJet_{f}" for f in GENJET_FIELDS] + cands + link
    required += [NPV_BRANCH, *EVENT_ID]
    missing = [b for b in required if b not in keys]
    rho = next((b for b in RHO_BRANCHES if b in keys), None)
    if rho is None:
        missing.append(" or ".join(RHO_BRANCHES))
    if missing:
        raise InputError(f"{path}: missing branches {', '.join(missing)}; produce the file with PFNano including them")
    mapping = {b: b for b in required}
    mapping["rho"] = rho
    return mapping


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip(": ")


def _flat(array, dtype) -> np.ndarray:
    return np.asarray(ak.flatten(array, axis=None) if array.ndim > 1 else array).astype(dtype, copy=False)


def _collection(arrays, prefix: str, fields, dtypes: dict) -> Collection:
    counts = np.asarray(ak.num(arrays[f"{prefix}_{fields[0]}"], axis=1), dtype=np.int64)
    return Collection(counts, {f: _flat(arrays[f"{prefix}_{f}"], dtypes.get(f, np.float32)) for f in fields})


_INT_FIELDS = {
    "genJetIdx": np.int64,
    "hadronFlavour": np.int64,
    "partonFlavour": np.int64,
    "charge": np.int32,
    "pdgId": np.int32,
    "jetIdx": np.int64,
    "pFCandsIdx": np.int64,
}


def iterate_chunks(path: str, step_size: int = 20_000) -> Iterator[EventChunk]:
    """Read ``path`` in chunks of ``step_size`` events."""
    tree = open_events(path)
    names = branch_map(tree, path)
    try:
        for arrays in tree.iterate(sorted(set(names.values())), step_size=step_size, library="ak"):
            yield EventChunk(
                n_events=len(arrays),
                run=np.asarray(arrays["run"], dtype=np.int64),
                luminosity_block=np.asarray(arrays["luminosityBlock"], dtype=np.int64),
                event=np.asarray(arrays["event"], dtype=np.int64),
                rho=np.asarray(arrays[names["rho"]], dtype=np.float32),
                npv=np.asarray(arrays[NPV_BRANCH], dtype=np.int64),
                jet=_collection(arrays, "Jet", JET_FIELDS, _INT_FIELDS),
                genjet=_collection(arrays, "GenJet", GENJET_FIELDS, _INT_FIELDS),
                pfcands=_collection(arrays, "PFCands", PFCAND_FIELDS, _INT_FIELDS),
                links=_collection(arrays, "JetPFCands", LINK_FIELDS, _INT_FIELDS),
            )
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{path}: reading failed ({_first_line(err)}); the file is corrupt or truncated, copy it again") from None
