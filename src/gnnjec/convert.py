"""Convert stage: NanoAOD/PFNano events -> particle clouds (one Parquet row per jet).

Each row holds the jet-level features (:data:`features.JET`), truth and bookkeeping
(:data:`features.TRUTH`), and two jagged collections, ``charged`` and ``neutral``, of constituent
features ordered by decreasing pt. Parquet keeps the jagged lists natively, is read column by
column, compresses well, and its row groups give the chunking that streaming training needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import features as F
from .errors import InputError, atomic_output
from .nanoaod import EventChunk, iterate_chunks
from .ragged import parents_from_counts

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Selection:
    """Which jets become training/evaluation examples (config key ``selection``)."""

    min_gen_pt: float = 15.0
    max_abs_gen_eta: float = 5.0
    max_constituents: int = 256  # per collection; the hardest are kept
    require_gen_match: bool = True  # False keeps unmatched jets too (pt_gen and target are NaN)

    @classmethod
    def from_config(cls, cfg: dict) -> Selection:
        return cls(**cfg)


@dataclass(frozen=True)
class Split:
    """Reproducible train/val/test assignment from a hash of (run, luminosityBlock, event)."""

    train: float = 0.7
    val: float = 0.15
    seed: int = 0

    def assign(self, run, lumi, event) -> np.ndarray:
        u = event_uniform(run, lumi, event, self.seed)
        return np.where(u < self.train, 0, np.where(u < self.train + self.val, 1, 2)).astype(np.int8)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed, platform-independent 64-bit hash."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def event_uniform(run, lumi, event, seed: int) -> np.ndarray:
    """A number in [0, 1) per event that depends only on its id and the seed."""
    with np.errstate(over="ignore"):
        h = _mix64(np.asarray(event, np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))
        h = _mix64(h ^ np.asarray(lumi, np.uint64))
        h = _mix64(h ^ np.asarray(run, np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def _check_index(name: str, index: np.ndarray, limit: np.ndarray, path: str) -> None:
    bad = (index < 0) | (index >= limit)
    if bad.any():
        raise InputError(
            f"{path}: branch {name} has {int(bad.sum())} entries outside their collection "
            f"(first: {int(index[bad][0])} of {int(limit[bad][0])}); the file is inconsistent, regenerate it"
        )


def clouds_from_chunk(chunk: EventChunk, selection: Selection, split: Split, path: str) -> ak.Array:
    """Select gen-matched jets of a chunk and build their particle clouds."""
    jet, gen, pf, link = chunk.jet, chunk.genjet, chunk.pfcands, chunk.links
    jet_event = parents_from_counts(jet.counts)
    jet_offsets, gen_offsets, pf_offsets = jet.offsets, gen.offsets, pf.offsets

    # gen matching: valid only for 0 <= genJetIdx < nGenJet (never index with -1)
    gen_idx = jet["genJetIdx"]
    matched = (gen_idx >= 0) & (gen_idx < gen.counts[jet_event])
    gen_row = np.where(matched, gen_offsets[jet_event] + np.where(matched, gen_idx, 0), 0)
    if len(gen["pt"]) == 0:
        gen_pt = gen_eta = gen_phi = np.zeros(len(gen_row), np.float32)
    else:
        gen_pt, gen_eta, gen_phi = (gen[f][gen_row] for f in ("pt", "eta", "phi"))
    gen_pt, gen_eta, gen_phi = (np.where(matched, x, np.nan) for x in (gen_pt, gen_eta, gen_phi))
    selected = matched & (gen_pt >= selection.min_gen_pt) & (np.abs(gen_eta) <= selection.max_abs_gen_eta)
    if not selection.require_gen_match:
        selected |= ~matched
    rows = np.flatnonzero(selected)
    n_sel = len(rows)
    new_index = np.full(len(jet_event), -1, np.int64)
    new_index[rows] = np.arange(n_sel)

    # links JetPFCands -> (Jet, PFCands), bounds-checked
    link_event = parents_from_counts(link.counts)
    _check_index("JetPFCands_jetIdx", link["jetIdx"], jet.counts[link_event], path)
    _check_index("JetPFCands_pFCandsIdx", link["pFCandsIdx"], pf.counts[link_event], path)
    link_jet = new_index[jet_offsets[link_event] + link["jetIdx"]]
    keep = link_jet >= 0
    link_jet = link_jet[keep]
    cand_row = (pf_offsets[link_event] + link["pFCandsIdx"])[keep]

    ev = jet_event[rows]
    raw_scale = 1.0 - jet["rawFactor"][rows].astype(np.float64)
    jets = {
        "pt_raw": jet["pt"][rows] * raw_scale,
        "eta": jet["eta"][rows].astype(np.float64),
        "phi": jet["phi"][rows].astype(np.float64),
        "mass_raw": jet["mass"][rows] * raw_scale,
    }
    cand = {f: pf[f][cand_row] for f in pf.fields}
    order = np.lexsort((-cand["pt"], link_jet))
    cand = {k: v[order] for k, v in cand.items()}
    parents = link_jet[order]
    cf = F.constituent_features(cand, jets, parents)
    shapes = F.jet_shape_features(cf, parents, n_sel)

    charged = cand["charge"] != 0
    columns = {}
    for name, mask, spec in (("charged", charged, F.CHARGED), ("neutral", ~charged, F.NEUTRAL)):
        p = parents[mask]
        counts = np.bincount(p, minlength=n_sel)
        rank = np.arange(len(p)) - np.repeat(np.cumsum(counts) - counts, counts)
        cap = rank < selection.max_constituents
        counts = np.minimum(counts, selection.max_constituents)
        fields = {f: cf[f][mask][cap].astype(np.float32) for f in spec}
        columns[name] = ak.unflatten(ak.zip(fields), counts)
        columns[f"n_{name}"] = np.bincount(p, minlength=n_sel).astype(np.int32)

    pt_raw = jets["pt_raw"]
    out = {
        "pt_raw": pt_raw.astype(np.float32),
        "log_pt_raw": np.log(np.maximum(pt_raw, 1e-3)).astype(np.float32),
        "eta": jets["eta"].astype(np.float32),
        "abs_eta": np.abs(jets["eta"]).astype(np.float32),
        "phi": jets["phi"].astype(np.float32),
        "mass_raw": jets["mass_raw"].astype(np.float32),
        "area": jet["area"][rows].astype(np.float32),
        "rho": chunk.rho[ev].astype(np.float32),
        "npv": chunk.npv[ev].astype(np.float32),
        "n_constituents": np.bincount(parents, minlength=n_sel).astype(np.int32),
        "n_charged": columns.pop("n_charged"),
        "n_neutral": columns.pop("n_neutral"),
        "multiplicity": shapes["multiplicity"].astype(np.int32),
        "ptd": shapes["ptd"].astype(np.float32),
        "axis2": shapes["axis2"].astype(np.float32),
        "pt_std": jet["pt"][rows].astype(np.float32),
        "pt_gen": gen_pt[rows].astype(np.float32),
        "eta_gen": gen_eta[rows].astype(np.float32),
        "phi_gen": gen_phi[rows].astype(np.float32),
        "flavour": F.flavour_class(jet["hadronFlavour"][rows], jet["partonFlavour"][rows]),
        "hadron_flavour": jet["hadronFlavour"][rows].astype(np.int32),
        "parton_flavour": jet["partonFlavour"][rows].astype(np.int32),
        "target": np.log(gen_pt[rows] / np.maximum(pt_raw, 1e-3)).astype(np.float32),
        "split": split.assign(chunk.run[ev], chunk.luminosity_block[ev], chunk.event[ev]),
        "run": chunk.run[ev],
        "luminosity_block": chunk.luminosity_block[ev],
        "event": chunk.event[ev],
        **columns,
    }
    return ak.zip(out, depth_limit=1)


def convert_file(path: str, output: str, selection: Selection, split: Split, step_size: int = 20_000) -> dict:
    """Convert one NanoAOD/PFNano file to a Parquet file of particle clouds (written atomically)."""
    start = time.perf_counter()
    n_events = n_jets = 0
    writer = None
    with atomic_output(output) as tmp:
        try:
            for chunk in iterate_chunks(path, step_size):
                clouds = clouds_from_chunk(chunk, selection, split, path)
                table = ak.to_arrow_table(clouds, extensionarray=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table, row_group_size=max(len(table), 1))
                n_events += chunk.n_events
                n_jets += len(clouds)
                elapsed = time.perf_counter() - start
                log.info("%s: %d events, %d jets, %.0f events/s", path, n_events, n_jets, n_events / max(elapsed, 1e-9))
        finally:
            if writer is not None:
                writer.close()
    return {"input": path, "events": n_events, "jets": n_jets, "seconds": time.perf_counter() - start}


def merge_splits(parts: list[str], outputs: dict[str, str]) -> dict:
    """Stream per-file clouds into one Parquet file per split (train/val/test), row group by row group."""
    counts = dict.fromkeys(outputs, 0)
    schema = None
    if not parts:
        raise InputError("no converted files to merge; check the config's samples")
    with contextlib.ExitStack() as stack:
        tmps = {name: stack.enter_context(atomic_output(path)) for name, path in outputs.items()}
        writers = {}
        for part in parts:
            reader = pq.ParquetFile(part)
            if schema is None:
                schema = reader.schema_arrow
                writers = {name: pq.ParquetWriter(tmps[name], schema, compression="zstd") for name in outputs}
            elif reader.schema_arrow != schema:
                raise InputError(f"{part}: its columns differ from {parts[0]}; reconvert all files with the same version")
            for i in range(reader.num_row_groups):
                table = reader.read_row_group(i)
                split = table.column("split").to_numpy()
                for code, name in enumerate(SPLITS):
                    if name in writers:
                        sel = table.filter(pa.array(split == code))
                        if sel.num_rows:
                            writers[name].write_table(sel)
                            counts[name] += sel.num_rows
        for w in writers.values():
            w.close()
    return counts


def read_clouds(path: str, columns: list[str] | None = None) -> ak.Array:
    """Read a clouds Parquet file (all columns, or the named ones)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such clouds file; run the convert stage first")
    return ak.from_parquet(path, columns=columns)
