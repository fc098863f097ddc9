"""Convert stage: NanoAOD/PFNano events -> particle clouds (one Parquet row per jet).

Each row holds the jet-level features (:data:`features.JET`), truth and bookkeeping
(:data:`features.TRUTH`), and two jagged collections, ``charged`` and ``neutral``, of constituent
features ordered by decreasing pt. Parquet keeps the jagged lists natively, is read column by
column, compresses well, and its row groups give the chunking that streaming training needs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import features as F
from .clouds import arrow_table, list_column, parquet_writer
from .command import Command, config_default, json_value
from .errors import ConfigError, InputError
from .files import atomic_output
from .kinematics import delta_phi
from .nanoaod import EventChunk, iterate_chunks
from .ragged import local_index, parents_from_counts
from .streams import WriteBehind, read_ahead

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which jets become training/evaluation examples (config key ``selection``)."""

    # each default is the configuration's (the schema's selection.*)
    min_gen_pt: float = field(default_factory=lambda: config_default("selection.min_gen_pt"))
    max_abs_gen_eta: float = field(default_factory=lambda: config_default("selection.max_abs_gen_eta"))
    # per collection; the hardest are kept
    max_constituents: int = field(default_factory=lambda: config_default("selection.max_constituents"))
    # False keeps unmatched jets too (pt_gen and target are NaN)
    require_gen_match: bool = field(default_factory=lambda: config_default("selection.require_gen_match"))
    invalid_jets: str = field(default_factory=lambda: config_default("selection.invalid_jets"))
    """Jets with a non-finite (NaN, ±inf) value in their kinematics, their constituents', vertices' or
    matched generator jet's, or with constituent links that disagree with ``Jet_nConstituents``:
    ``error`` refuses the file naming the branch; ``drop`` leaves those jets out and logs how many per
    branch; ``keep`` converts them as they are (analysis: every jet, in order)."""

    def __post_init__(self):
        if self.invalid_jets not in INVALID_JETS:
            raise ConfigError("selection.invalid_jets", f"{self.invalid_jets!r} unknown; use one of {INVALID_JETS}")

    @classmethod
    def from_config(cls, cfg: dict) -> Selection:
        return cls(**_known_keys(cls, cfg, "selection"))


INVALID_JETS = ("error", "drop", "keep")


def _known_keys(cls, cfg: dict, key: str) -> dict:
    """``cfg`` if it has only ``cls``'s fields, else one InputError line naming the unknown key."""
    if not isinstance(cfg, dict):
        raise ConfigError(key, f"expected a mapping, got {cfg!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in cfg if k not in names]
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown; the keys are {', '.join(names)}")
    return cfg


@dataclass(frozen=True)
class Split:
    """Reproducible train/val/test assignment from a hash of (run, luminosityBlock, event)."""

    # each default is the configuration's (the schema's split.*)
    train: float = field(default_factory=lambda: config_default("split.train"))
    val: float = field(default_factory=lambda: config_default("split.val"))
    seed: int = field(default_factory=lambda: config_default("split.seed"))

    @classmethod
    def from_config(cls, cfg: dict) -> Split:
        split = cls(**_known_keys(cls, cfg, "split"))
        if not (0 < split.train and 0 < split.val and split.train + split.val < 1):
            raise ConfigError("split", f"train {split.train} and val {split.val} must be positive with "
                             "train + val < 1 (test is the rest)")
        return split

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


def constituent_order(jet: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Permutation grouping constituents by jet, hardest first, exactly and stably.

    One integer sort: (jet << 32) | ~bits(pt). The bit pattern of a non-negative float32 grows with
    its value, so this orders like ``np.lexsort((-pt, jet))`` at a fraction of its cost.
    """
    bits = np.maximum(pt, 0).astype(np.float32).view(np.uint32)
    key = (jet.astype(np.uint64) << np.uint64(32)) | (np.uint32(0xFFFFFFFF) - bits).astype(np.uint64)
    return np.argsort(key, kind="stable")


def clouds_from_chunk(chunk: EventChunk, selection: Selection, split: Split, path: str,
                      dropped: Counter | None = None) -> pa.Table:
    """Select gen-matched jets of a chunk and build their particle clouds (one row per jet).

    Invalid jets (see :attr:`Selection.invalid_jets`) are refused, or left out and counted per
    branch in ``dropped``."""
    jet, gen, pf, link = chunk.jet, chunk.genjet, chunk.pfcands, chunk.links
    jet_event = parents_from_counts(jet.counts)

    # gen matching: valid only for 0 <= genJetIdx < nGenJet (never index with -1)
    gen_idx = jet["genJetIdx"]
    matched = (gen_idx >= 0) & (gen_idx < gen.counts[jet_event])
    gen_row = np.where(matched, gen.offsets[jet_event] + np.where(matched, gen_idx, 0), 0)
    if len(gen["pt"]) == 0:
        gen_pt = gen_eta = gen_phi = np.zeros(len(gen_row), np.float32)
    else:
        gen_pt, gen_eta, gen_phi = (gen[f][gen_row] for f in ("pt", "eta", "phi"))
    gen_pt, gen_eta, gen_phi = (np.where(matched, x, np.nan) for x in (gen_pt, gen_eta, gen_phi))
    selected = matched & (gen_pt >= selection.min_gen_pt) & (np.abs(gen_eta) <= selection.max_abs_gen_eta)
    if not selection.require_gen_match:
        selected |= ~matched
    if selection.invalid_jets != "keep":
        reasons = {}
        invalid = invalid_jets(chunk, jet_event, matched, gen_row, path, reasons)
        if invalid and selection.invalid_jets == "error":
            branch, bad = next(iter(invalid.items()))
            reason = _invalid_reason(branch, bad, chunk, jet_event, reasons.get(branch, "NaN or infinite"))
            raise InputError(f"{path}: {reason}; the "
                             "file is damaged: produce it again, or set selection.invalid_jets: drop to leave such "
                             "jets out")
        for branch, bad in invalid.items():
            if dropped is not None:
                dropped[branch] += int((bad & selected).sum())
            selected &= ~bad
    rows = np.flatnonzero(selected)
    n_sel = len(rows)
    new_index = np.full(len(jet_event), -1, np.int64)
    new_index[rows] = np.arange(n_sel)

    # links JetPFCands -> (Jet, PFCands), bounds-checked; constituents of selected jets, hardest first
    link_event = parents_from_counts(link.counts)
    _check_index("JetPFCands_jetIdx", link["jetIdx"], jet.counts[link_event], path)
    _check_index("JetPFCands_pFCandsIdx", link["pFCandsIdx"], pf.counts[link_event], path)
    link_jet = new_index[jet.offsets[link_event] + link["jetIdx"]]
    keep = link_jet >= 0
    parents = link_jet[keep]
    cand_row = (pf.offsets[link_event] + link["pFCandsIdx"])[keep]
    order = constituent_order(parents, pf["pt"][cand_row])
    parents, cand_row = parents[order], cand_row[order]

    ev = jet_event[rows]
    raw_scale = 1.0 - jet["rawFactor"][rows].astype(np.float64)
    pt_raw = jet["pt"][rows] * raw_scale
    jet_eta, jet_phi = jet["eta"][rows], jet["phi"][rows]
    kin = {"pt": pf["pt"][cand_row], "eta": pf["eta"][cand_row]}
    kin["deta"] = ((kin["eta"] - jet_eta[parents]) * np.where(jet_eta >= 0, 1, -1).astype(np.float32)[parents])
    kin["dphi"] = delta_phi(pf["phi"][cand_row], jet_phi[parents]).astype(np.float32)
    shapes = F.jet_shape_features(kin["pt"], kin["deta"], kin["dphi"], parents, n_sel)
    n_constituents = np.bincount(parents, minlength=n_sel)

    clouds = {}
    charged = pf["charge"][cand_row] != 0
    for name, mask, spec in (("charged", charged, F.CHARGED), ("neutral", ~charged, F.NEUTRAL)):
        idx = np.flatnonzero(mask)
        counts = np.bincount(parents[idx], minlength=n_sel)
        idx = idx[local_index(counts) < selection.max_constituents]  # the hardest, as they are ordered
        sub_rows = cand_row[idx]
        cand = _Gather(pf, sub_rows)
        features = F.measured_features(F.stored(spec), {k: v[idx] for k, v in kin.items()}, cand)
        clouds[name] = list_column(features, np.minimum(counts, selection.max_constituents))
        clouds[f"n_{name}"] = counts.astype(np.int32)

    clouds["sv"], clouds["n_sv"] = _vertex_cloud(chunk, new_index, jet_event, jet_eta, jet_phi, selection, path)

    columns = {
        "pt_raw": pt_raw.astype(np.float32),
        "log_pt_raw": np.log(np.maximum(pt_raw, 1e-3)).astype(np.float32),
        "eta": jet_eta.astype(np.float32),
        "abs_eta": np.abs(jet_eta).astype(np.float32),
        "phi": jet_phi.astype(np.float32),
        "mass_raw": (jet["mass"][rows] * raw_scale).astype(np.float32),
        "area": jet["area"][rows].astype(np.float32),
        "rho": chunk.rho[ev].astype(np.float32),
        "npv": chunk.npv[ev].astype(np.float32),
        "n_constituents": n_constituents.astype(np.int32),
        "n_charged": clouds.pop("n_charged"),
        "n_neutral": clouds.pop("n_neutral"),
        "n_sv": clouds.pop("n_sv"),
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
        **clouds,
    }
    return arrow_table(columns)


def _jets_with(bad_items: np.ndarray, item_jet: np.ndarray, n_jets: int) -> np.ndarray:
    """Jets (global index) that own at least one bad item."""
    return np.bincount(item_jet[bad_items], minlength=n_jets) > 0


def _all_finite(values: np.ndarray) -> bool:
    return values.dtype.kind != "f" or bool(np.isfinite(values).all())


MAX_ABS_ETA = 5.5
"""Beyond this |eta| nothing is measured (HF ends at 5.2; jets' axes and candidates reach about 5.1 in CMS files):
a jet or a constituent there is an impossible value."""

PHYSICAL_RANGES = {
    "Jet_pt": "zero or negative", "Jet_rawFactor": "1 or more (a raw pt of zero or less)",
    "Jet_eta": f"beyond |eta| {MAX_ABS_ETA}", "GenJet_pt": "zero or negative", "PFCands_pt": "zero or negative",
    "PFCands_eta": f"beyond |eta| {MAX_ABS_ETA}", "PFCands_charge": "not -1, 0 or 1",
}
"""The physical-range checks of :func:`invalid_jets`, by branch. A negative rawFactor is a correction factor below
one, which CMS files have (down to -0.77 in the real files of the tests), so it is not among them."""


def invalid_jets(chunk: EventChunk, jet_event: np.ndarray, matched: np.ndarray, gen_row: np.ndarray,
                 path: str, reasons: dict | None = None) -> dict[str, np.ndarray]:
    """Branch -> which jets of the chunk it makes invalid: a non-finite value in the jet's own
    kinematics, its event's rho, its matched generator jet, a linked constituent or vertex; a value out of its
    physical range (:data:`PHYSICAL_RANGES`: pt of the jet, its generator jet or a linked constituent zero or
    negative, rawFactor of 1
    or more, |eta| beyond :data:`MAX_ABS_ETA`, a charge not -1, 0 or 1); or a count of constituent links that
    disagrees with ``Jet_nConstituents`` (where the file has it). Only branches with an invalid jet are listed;
    ``reasons`` receives, per branch, what is wrong with it. Each branch is first checked whole, which is all the
    work for a sound file; only a branch with a bad value is traced to its jets."""
    jet, pf, link = chunk.jet, chunk.pfcands, chunk.links
    n_jets = len(jet_event)
    out = {}
    reasons = {} if reasons is None else reasons

    def note(branch: str, bad: np.ndarray, why: str = "NaN or infinite") -> None:
        if bad.any():
            out[branch] = out[branch] | bad if branch in out else bad
            reasons[branch] = why if reasons.get(branch, why) == why else "NaN, infinite or impossible"

    for name in ("pt", "eta", "phi", "mass", "rawFactor", "area"):
        if not _all_finite(jet[name]):
            note(f"Jet_{name}", ~np.isfinite(jet[name]))
    if not _all_finite(chunk.rho):
        note("rho (fixedGridRhoFastjetAll)", ~np.isfinite(chunk.rho)[jet_event])
    gen = chunk.genjet
    for name in ("pt", "eta", "phi"):
        if len(gen[name]) and not _all_finite(gen[name]):
            note(f"GenJet_{name}", matched & ~np.isfinite(gen[name][gen_row]))
    link_event = parents_from_counts(link.counts)
    _check_index("JetPFCands_jetIdx", link["jetIdx"], jet.counts[link_event], path)
    _check_index("JetPFCands_pFCandsIdx", link["pFCandsIdx"], pf.counts[link_event], path)
    link_jet = jet.offsets[link_event] + link["jetIdx"]
    for name, values in pf.fields.items():
        if not _all_finite(values):
            bad_link = ~np.isfinite(values[pf.offsets[link_event] + link["pFCandsIdx"]])
            note(f"PFCands_{name}", _jets_with(bad_link, link_jet, n_jets))
    with np.errstate(invalid="ignore"):  # finite values only: NaN and infinities are noted above
        note("Jet_pt", np.isfinite(jet["pt"]) & (jet["pt"] <= 0), PHYSICAL_RANGES["Jet_pt"])
        note("Jet_rawFactor", np.isfinite(jet["rawFactor"]) & (jet["rawFactor"] >= 1), PHYSICAL_RANGES["Jet_rawFactor"])
        note("Jet_eta", np.isfinite(jet["eta"]) & (np.abs(jet["eta"]) > MAX_ABS_ETA), PHYSICAL_RANGES["Jet_eta"])
        if len(gen["pt"]):  # the matched generator jet's: the target's numerator
            note("GenJet_pt", matched & np.isfinite(gen["pt"][gen_row]) & (gen["pt"][gen_row] <= 0),
                 PHYSICAL_RANGES["GenJet_pt"])
        linked = pf.offsets[link_event] + link["pFCandsIdx"]
        for name, impossible in (("pt", lambda v: np.isfinite(v) & (v <= 0)),
                                 ("eta", lambda v: np.isfinite(v) & (np.abs(v) > MAX_ABS_ETA)),
                                 ("charge", lambda v: np.isfinite(v) & (v != -1) & (v != 0) & (v != 1))):
            values = pf.fields.get(name)
            if values is not None and len(values) and impossible(values).any():
                note(f"PFCands_{name}", _jets_with(impossible(values[linked]), link_jet, n_jets),
                     PHYSICAL_RANGES[f"PFCands_{name}"])
    if chunk.jet_n_constituents is not None:
        links = np.bincount(link_jet, minlength=n_jets)
        stored = chunk.jet_n_constituents
        # NanoAOD stores the count as uint8 in some generations: 256 or more read modulo 256, or as 255
        agrees = (links == stored) | (links % 256 == stored) | ((stored == 255) & (links >= 255))
        note("Jet_nConstituents", ~agrees)
    if chunk.jet_svs is not None:
        pairs, sv = chunk.jet_svs, chunk.svs
        sound = [_all_finite(v) for v in pairs.fields.values()] + [_all_finite(sv[n]) for n in ("eta", "phi")]
        if not all(sound):
            pair_event = parents_from_counts(pairs.counts)
            pair_jet = np.clip(jet.offsets[pair_event] + pairs["jetIdx"], 0, max(n_jets - 1, 0))
            for name, values in pairs.fields.items():
                if not _all_finite(values):
                    note(f"JetSVs_{name}", _jets_with(~np.isfinite(values), pair_jet, n_jets))
            in_table = (pairs["sVIdx"] >= 0) & (pairs["sVIdx"] < sv.counts[pair_event])
            sv_row = np.minimum(sv.offsets[pair_event] + np.where(in_table, pairs["sVIdx"], 0),
                                max(len(sv["eta"]) - 1, 0))
            for name in ("eta", "phi"):
                if not _all_finite(sv[name]):
                    note(f"SV_{name}", _jets_with(in_table & ~np.isfinite(sv[name][sv_row]), pair_jet, n_jets))
    return out


def _invalid_reason(branch: str, bad: np.ndarray, chunk: EventChunk, jet_event: np.ndarray,
                    why: str = "NaN or infinite") -> str:
    first = int(np.flatnonzero(bad)[0])
    ev = jet_event[first]
    where = f"first: jet {first - int(chunk.jet.offsets[ev])} of event {int(chunk.event[ev])}"
    if branch == "Jet_nConstituents":
        return f"{int(bad.sum())} jets whose JetPFCands links disagree with branch Jet_nConstituents ({where})"
    return f"branch {branch} is {why} for {int(bad.sum())} jets ({where})"


def _vertex_cloud(chunk: EventChunk, new_index, jet_event, jet_eta, jet_phi, selection: Selection, path: str):
    """The secondary vertices of the selected jets, hardest first: PFNano's JetSVs pairs whose vertex
    is in the SV table (NanoAOD keeps those with flight significance > 3; the others have
    ``sVIdx`` -1 and no direction)."""
    n_sel = len(jet_eta)
    spec = F.stored(F.SV)
    if chunk.jet_svs is None:
        empty = {name: np.zeros(0, F.STORED_TYPES.get(name, np.float32)) for name in spec}
        return list_column(empty, np.zeros(n_sel, np.int64)), np.zeros(n_sel, np.int32)
    pairs, sv = chunk.jet_svs, chunk.svs
    pair_event = parents_from_counts(pairs.counts)
    _check_index("JetSVs_jetIdx", pairs["jetIdx"], chunk.jet.counts[pair_event], path)
    in_table = pairs["sVIdx"] >= 0
    _check_index("JetSVs_sVIdx", np.where(in_table, pairs["sVIdx"], 0), np.where(in_table, sv.counts[pair_event], 1),
                 path)
    jet_row = new_index[chunk.jet.offsets[pair_event] + pairs["jetIdx"]]
    keep = np.flatnonzero(in_table & (jet_row >= 0))
    parents = jet_row[keep]
    order = np.lexsort((-pairs["pt"][keep], parents))
    keep, parents = keep[order], parents[order]
    sv_row = sv.offsets[pair_event[keep]] + pairs["sVIdx"][keep]
    eta = sv["eta"][sv_row]
    kin = {
        "pt": pairs["pt"][keep],
        "eta": eta,
        "deta": ((eta - jet_eta[parents]) * np.where(jet_eta >= 0, 1, -1).astype(np.float32)[parents]),
        "dphi": delta_phi(sv["phi"][sv_row], jet_phi[parents]).astype(np.float32),
    }
    counts = np.bincount(parents, minlength=n_sel)
    first = local_index(counts) < selection.max_constituents
    features = F.measured_features(spec, {k: v[first] for k, v in kin.items()}, _Gather(pairs, keep[first]))
    return list_column(features, np.minimum(counts, selection.max_constituents)), counts.astype(np.int32)


class _Gather:
    """PFCands fields of some candidate rows, gathered on first use (only the features asked for)."""

    def __init__(self, pfcands, rows: np.ndarray):
        self._pf, self._rows, self._cache = pfcands, rows, {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.abs(self["pdgId"]) if name == "abs_pdgId" else self._pf[name][self._rows]
        return self._cache[name]


def convert_file(path: str, output: str, selection: Selection, split: Split,
                 step_size: int | str | None = None) -> dict:
    """Convert one NanoAOD/PFNano file to a Parquet file of particle clouds (written atomically).

    The file is read in chunks of ``step_size`` (events, or bytes in memory like ``"100 MB"``), one ahead, while the
    previous chunk's row group is written in the background: memory is bounded by about three chunks.
    """
    start = time.perf_counter()
    n_events = n_jets = 0
    writer = None
    dropped = Counter()
    with atomic_output(output) as tmp:
        try:
            with WriteBehind() as behind:
                for chunk in read_ahead(iterate_chunks(path, step_size)):
                    table = clouds_from_chunk(chunk, selection, split, path, dropped)
                    if writer is None:
                        writer = parquet_writer(tmp, table.schema)
                    behind.submit(writer.write_table, table, row_group_size=max(table.num_rows, 1))
                    n_events += chunk.n_events
                    n_jets += table.num_rows
                    _progress(path, chunk, n_jets, time.perf_counter() - start)
        finally:
            if writer is not None:
                writer.close()
    if dropped:
        log.warning("%s: dropped %d invalid jets (selection.invalid_jets: drop); per branch: %s", path,
                    sum(dropped.values()), ", ".join(f"{k} {v}" for k, v in dropped.most_common()))
    return {"input": path, "events": n_events, "jets": n_jets, "dropped": dict(dropped),
            "seconds": time.perf_counter() - start}


def _progress(path: str, chunk: EventChunk, n_jets: int, elapsed: float) -> None:
    """One log line per chunk: done/total events, rate and time left (readable in a batch log too)."""
    done, total = chunk.entry_stop, max(chunk.entries_total, 1)
    rate = done / max(elapsed, 1e-9)
    log.info("%s: %d/%d events (%.0f%%), %d jets, %.0f events/s, %.0f s left",
             path, done, total, 100 * done / total, n_jets, rate, (total - done) / max(rate, 1e-9))


def _arguments(p) -> None:
    p.add_argument("input", help="local path or root:// URL")
    p.add_argument("--output", required=True)
    p.add_argument("--selection", type=json_value, default={}, help="config key selection (JSON)")
    p.add_argument("--split", type=json_value, default={}, help="config key split (JSON)")
    p.add_argument("--step-size", default=config_default("convert.step_size"),
                   help="events per chunk, or memory per chunk like '100 MB'")


def _run(a) -> None:
    from .nanoaod import step_size

    info = convert_file(a.input, a.output, Selection.from_config(a.selection), Split.from_config(a.split),
                        step_size(a.step_size))
    log.info("converted %(events)d events, %(jets)d jets in %(seconds).1f s", info)


COMMANDS = {"convert": Command(_arguments, _run, reads=("input",), outputs=("output",))}
