"""Reading NanoAOD / PFNano: branch names across NanoAOD generations, and clear refusals.

Columns come back as flat numpy arrays with per-event counts (see :class:`EventChunk`), which is what
the convert stage works on. Local paths and ``root://`` URLs are both opened through uproot.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import awkward as ak
import numpy as np

from .errors import ConfigError, InputError
from .ragged import offsets_from_counts

log = logging.getLogger(__name__)

JET_FIELDS = ("pt", "eta", "phi", "mass", "rawFactor", "area", "genJetIdx", "hadronFlavour", "partonFlavour")
GENJET_FIELDS = ("pt", "eta", "phi")
PFCAND_FIELDS = ("pt", "eta", "phi", "mass", "charge", "pdgId", "d0", "dz", "puppiWeight")
TRACK_FIELDS = ("d0Err", "dzErr", "trkChi2", "lostInnerHits", "pvAssocQuality", "trkQuality")
"""PFNano's track details of PF candidates (-1 where MiniAOD stored none: neutrals and charged
candidates below about 0.5 GeV). Optional: files without them read as having no track details."""
NO_TRACK_DETAILS = {
    "d0Err": -1.0, "dzErr": -1.0, "trkChi2": -1.0, "lostInnerHits": -1, "pvAssocQuality": 7, "trkQuality": 0,
}
LINK_FIELDS = ("jetIdx", "pFCandsIdx")
SV_FIELDS = ("eta", "phi")
JETSV_FIELDS = (
    "jetIdx", "sVIdx", "pt", "mass", "ntracks", "dxy", "dxysig", "d3d", "d3dsig", "costhetasvpv", "enration",
)
"""Secondary vertices: PFNano's SV collection (for its direction) and JetSVs, one entry per
(jet, vertex) pair with the vertex's properties. Optional: files without them have no vertices."""
EVENT_ID = ("run", "luminosityBlock", "event")
N_CONSTITUENTS = "Jet_nConstituents"  # optional: checked against the JetPFCands links
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
    svs: Collection | None = None  # None: the file has no secondary vertices
    jet_svs: Collection | None = None
    jet_n_constituents: np.ndarray | None = None  # Jet_nConstituents, where the file has it
    entry_stop: int = 0  # events of the file read so far, this chunk included
    entries_total: int = 0  # events in the file


def open_events(path: str):
    """Open the ``Events`` tree of ``path``; any failure becomes one InputError line."""
    import uproot

    try:
        handle = uproot.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path in the config's samples") from None
    except Exception as err:  # uproot raises many types for a damaged file
        raise InputError(_open_error(path, err)) from None
    try:
        tree = handle["Events"]
    except Exception:
        raise InputError(f"{path}: no 'Events' tree; is this a NanoAOD file?") from None
    if tree.num_entries == 0:
        raise InputError(f"{path}: the Events tree is empty; remove the file from the sample")
    return tree


def _open_error(path: str, err: Exception) -> str:
    """One line for a file that would not open: missing on the server, unreachable, or damaged."""
    text = str(err).lower()
    if "://" in path:
        if "[3011]" in text or "no such file" in text:
            return f"{path}: no such file on the server; check the URL in the config's samples"
        if "no module named" in text or "xrootd" in text and "install" in text:
            return f"{path}: reading root:// URLs needs the XRootD client: pip install fsspec-xrootd xrootd"
        if "connection" in text or "[3010]" in text or "auth" in text or "permission" in text:
            return (f"{path}: cannot open over XRootD ({_first_line(err)}); check the server name and port, "
                    "and a valid grid proxy (voms-proxy-init --voms cms)")
    return f"{path}: not a readable ROOT file ({_first_line(err)}); the file is corrupt or truncated, copy it again"


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
    present = _optional_group(keys, [f"PFCands_{f}" for f in TRACK_FIELDS], "PFCands' track details", path)
    have_vertices = _optional_group(
        keys, [f"SV_{f}" for f in SV_FIELDS] + [f"JetSVs_{f}" for f in JETSV_FIELDS], "secondary vertices (SV, JetSVs)",
        path,
    )
    required += present + have_vertices
    missing = [b for b in required if b not in keys]
    rho = next((b for b in RHO_BRANCHES if b in keys), None)
    if rho is None:
        missing.append(" or ".join(RHO_BRANCHES))
    if missing:
        raise InputError(f"{path}: missing branches {', '.join(missing)}; produce the file with PFNano including them")
    mapping = {b: b for b in required}
    mapping["rho"] = rho
    mapping["n_constituents"] = N_CONSTITUENTS if N_CONSTITUENTS in keys else None
    mapping["track_details"] = bool(present)
    mapping["vertices"] = bool(have_vertices)
    return mapping


def branches_to_read(names: dict) -> list[str]:
    """The branches of :func:`branch_map`'s mapping (its flags and absent optional branches left out)."""
    return sorted({b for b in names.values() if isinstance(b, str)})


def _optional_group(keys: set, branches: list[str], what: str, path: str) -> list[str]:
    """The branches of an optional group that PFNano writes all together: all, none, or an InputError."""
    present = [b for b in branches if b in keys]
    if present and len(present) < len(branches):
        raise InputError(
            f"{path}: missing branches {', '.join(b for b in branches if b not in keys)} of the {what}; "
            "PFNano writes all of them or none: produce the file again"
        )
    return present


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip(": ")


def _flat(array, dtype) -> np.ndarray:
    return np.asarray(ak.flatten(array, axis=None) if array.ndim > 1 else array).astype(dtype, copy=False)


def _collection(arrays, prefix: str, fields, dtypes: dict) -> Collection:
    counts = np.asarray(ak.num(arrays[f"{prefix}_{fields[0]}"], axis=1), dtype=np.int64)
    return Collection(counts, {f: _flat(arrays[f"{prefix}_{f}"], dtypes.get(f, np.float32)) for f in fields})


def _pfcands(arrays, track_details: bool) -> Collection:
    fields = PFCAND_FIELDS + TRACK_FIELDS if track_details else PFCAND_FIELDS
    pf = _collection(arrays, "PFCands", fields, _INT_FIELDS)
    if not track_details:
        n = len(pf["pt"])
        for name, value in NO_TRACK_DETAILS.items():
            pf.fields[name] = np.full(n, value, dtype=_INT_FIELDS.get(name, np.float32))
    return pf


_INT_FIELDS = {
    "genJetIdx": np.int64,
    "hadronFlavour": np.int64,
    "partonFlavour": np.int64,
    "charge": np.int32,
    "pdgId": np.int32,
    "jetIdx": np.int64,
    "pFCandsIdx": np.int64,
    "sVIdx": np.int64,
    "ntracks": np.int32,
    "lostInnerHits": np.int32,
    "pvAssocQuality": np.int32,
    "trkQuality": np.int32,
}


STEP_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(kB|MB|GB)\s*$")


def step_size(value: int | str) -> int | str:
    """A chunk size: a number of events (int or digits), or an in-memory size such as ``"100 MB"``."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        if int(value) < 1:
            raise ConfigError("convert.step_size", f"{value!r} must be at least 1 event")
        return int(value)
    if isinstance(value, str) and STEP_SIZE.match(value):
        return value.strip()
    raise ConfigError("convert.step_size", f"{value!r} is neither a number of events nor a size like '100 MB'")


_UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9}


def events_per_chunk(tree, branches: list[str], step_size: int | str) -> int:
    """Events per chunk: ``step_size`` itself, or as many as fit a size like ``"100 MB"``.

    The size per event comes from the branches' uncompressed bytes in the file's metadata
    (``fTotBytes``), so nothing is read for it: that matters over XRootD.
    """
    if isinstance(step_size, int):
        return step_size
    text = step_size.strip()
    target = float(text[:-2]) * _UNITS[text[-2:]]
    per_event = sum(tree[b].uncompressed_bytes for b in branches) / max(tree.num_entries, 1)
    return max(1, int(target // max(per_event, 1.0)))


def chunk_from_arrays(arrays, names: dict, track_details: bool, vertices: bool, entry_stop: int = 0,
                      entries_total: int = 0) -> EventChunk:
    """An :class:`EventChunk` from per-event arrays named like the branches (``arrays["Jet_pt"]``:
    uproot's, or any mapping such as one built from coffea NanoEvents) and :func:`branch_map`'s names."""
    n_events = len(arrays["run"])
    return EventChunk(
        n_events=n_events,
        run=np.asarray(arrays["run"], dtype=np.int64),
        luminosity_block=np.asarray(arrays["luminosityBlock"], dtype=np.int64),
        event=np.asarray(arrays["event"], dtype=np.int64),
        rho=np.asarray(arrays[names["rho"]], dtype=np.float32),
        npv=np.asarray(arrays[NPV_BRANCH], dtype=np.int64),
        jet=_collection(arrays, "Jet", JET_FIELDS, _INT_FIELDS),
        genjet=_collection(arrays, "GenJet", GENJET_FIELDS, _INT_FIELDS),
        pfcands=_pfcands(arrays, track_details),
        links=_collection(arrays, "JetPFCands", LINK_FIELDS, _INT_FIELDS),
        svs=_collection(arrays, "SV", SV_FIELDS, _INT_FIELDS) if vertices else None,
        jet_svs=_collection(arrays, "JetSVs", JETSV_FIELDS, _INT_FIELDS) if vertices else None,
        jet_n_constituents=_flat(arrays[names["n_constituents"]], np.int64) if names.get("n_constituents") else None,
        entry_stop=entry_stop or n_events,
        entries_total=entries_total or n_events,
    )


def iterate_chunks(path: str, step_size: int | str | None = None) -> Iterator[EventChunk]:
    """Read ``path`` in chunks of ``step_size`` events, or of about that many bytes in memory
    (``"100 MB"``, sized from the file's metadata by :func:`events_per_chunk`; the configuration's
    ``convert.step_size`` when None)."""
    if step_size is None:
        from .command import config_default

        step_size = config_default("convert.step_size")
    tree = open_events(path)
    names = branch_map(tree, path)
    track_details = names.pop("track_details")
    vertices = names.pop("vertices")
    if not track_details:
        log.warning("%s: no PFCands track details (%s); every constituent reads as without them",
                    path, ", ".join(TRACK_FIELDS))
    if not vertices:
        log.warning("%s: no secondary vertices (SV, JetSVs); every jet reads as without them", path)
    branches = branches_to_read(names)
    try:
        step = events_per_chunk(tree, branches, step_size)
        entry_stop, total = 0, tree.num_entries
        for arrays in tree.iterate(branches, step_size=step, library="ak"):
            entry_stop += len(arrays)
            yield chunk_from_arrays(arrays, names, track_details, vertices, entry_stop, total)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{path}: reading failed ({_first_line(err)}); "
                         "the file is corrupt or truncated, copy it again") from None
