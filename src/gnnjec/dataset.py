"""Particle clouds in memory, padded batch by batch for the networks and for ONNX inference."""

from __future__ import annotations

import os
from dataclasses import dataclass

import awkward as ak
import numpy as np
import pyarrow.parquet as pq

from . import features as F
from .clouds import CONVERT_AGAIN, clouds_schema, no_jets, read_clouds, require_columns
from .files import reading
from .ragged import offsets_from_counts
from .streams import read_ahead


@dataclass
class Ragged:
    """A jagged collection: ``values[offsets[i]:offsets[i+1]]`` are jet i's points."""

    values: np.ndarray  # [n_points, n_features] float32
    offsets: np.ndarray  # [n_jets + 1] int64

    def pad(self, rows: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Points of ``rows`` padded to the batch's longest (at most ``max_len``): (x, mask)."""
        start = self.offsets[rows]
        length = np.minimum(self.offsets[rows + 1] - start, max_len)
        width = max(int(length.max(initial=0)), 1)
        pos = np.arange(width)
        mask = pos[None, :] < length[:, None]
        x = np.zeros((len(rows), width, self.values.shape[1]), np.float32)
        x[mask] = self.values[(start[:, None] + pos[None, :])[mask]]
        return x, mask.astype(np.float32)


class CloudData:
    """Network inputs, target and truth of one clouds file, held as flat arrays."""

    def __init__(self, path, inputs: dict[str, list[str]], truth: tuple[str, ...] = ("target",),
                 row_groups: list[int] | None = None):
        """``path``: a clouds file, or clouds already in memory (an awkward array of the convert
        stage's records, as :func:`gnnjec.convert.clouds_from_chunk` makes them)."""
        collections = [k for k in inputs if k != "jet"]
        stored = {k: F.stored_needed(inputs[k]) for k in collections}
        columns = list(dict.fromkeys([*inputs["jet"], *truth, "pt_raw"]))
        columns += [f"{k}.{f}" for k in collections for f in stored[k]]
        is_file = isinstance(path, (str, os.PathLike))
        arrays = read_clouds(path, columns=columns, row_groups=row_groups) if is_file else path
        self.n = len(arrays)
        self.inputs = inputs
        self.collections = collections
        self.jet = _stack([arrays[f] for f in inputs["jet"]], self.n)
        pt_raw = np.asarray(arrays["pt_raw"], np.float32)
        self.clouds = {}
        for k in collections:
            counts = np.asarray(ak.num(arrays[k], axis=1), np.int64)
            flat = {f: np.asarray(ak.flatten(arrays[k][f])) for f in stored[k]}
            features = F.constituent_features(inputs[k], flat, np.repeat(pt_raw, counts))
            values = _stack([features[f] for f in inputs[k]], int(counts.sum()))
            self.clouds[k] = Ragged(values, offsets_from_counts(counts))
        self.truth = {t: np.asarray(arrays[t]) for t in truth}

    def batch(self, rows: np.ndarray, max_constituents: int) -> list[np.ndarray]:
        """Arrays in the networks' argument order: jet, then (points, mask) per collection."""
        out = [self.jet[rows]]
        for k in self.collections:
            out.extend(self.clouds[k].pad(rows, max_constituents))
        return out


class CloudStream:
    """A clouds file read a window of row groups at a time, so that it need not fit in memory.

    Each epoch visits the row groups in a new random order, packed into windows of about
    ``window_jets`` jets; the jets of a window are shuffled together and the next window is read
    while this one is used. With ``window_jets`` at least the file's size this is a full shuffle,
    and the file is read once and kept.
    """

    def __init__(self, path: str, inputs: dict[str, list[str]], truth: tuple[str, ...] = ("target",),
                 window_jets: int = 2_000_000):
        self.path, self.inputs, self.truth, self.window_jets = path, inputs, truth, window_jets
        clouds_schema(path)  # there, and Parquet
        with reading(path, "clouds Parquet file", CONVERT_AGAIN):
            meta = pq.ParquetFile(path).metadata
        self.group_sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.n = sum(self.group_sizes)
        if self.n == 0:
            raise no_jets(path)
        self._whole: CloudData | None = None  # the file, when it fits in one window

    def targets(self) -> np.ndarray:
        require_columns(self.path, ["target"])
        with reading(self.path, "clouds Parquet file", CONVERT_AGAIN):
            return pq.read_table(self.path, columns=["target"]).column("target").to_numpy()

    def windows(self, rng: np.random.Generator | None = None) -> list[list[int]]:
        """Row groups packed into windows, in file order or (with ``rng``) in a random order."""
        order = rng.permutation(len(self.group_sizes)) if rng is not None else range(len(self.group_sizes))
        windows, current, size = [], [], 0
        for group in order:
            current.append(int(group))
            size += self.group_sizes[group]
            if size >= self.window_jets:
                windows.append(current)
                current, size = [], 0
        return windows + [current] if current else windows

    def load(self, row_groups: list[int]) -> CloudData:
        if self.n <= self.window_jets:  # one window holds it all: read it once
            if self._whole is None:
                self._whole = CloudData(self.path, self.inputs, self.truth)
            return self._whole
        return CloudData(self.path, self.inputs, self.truth, row_groups=row_groups)

    def epoch(self, rng: np.random.Generator | None = None):
        """(window data, its rows in the order to use them) for each window of one pass over the file;
        the next window is read in the background while this one is used."""

        def windows():
            for groups in self.windows(rng):
                data = self.load(groups)
                yield data, (rng.permutation(data.n) if rng is not None else np.arange(data.n))

        return read_ahead(windows(), 1)


def _stack(columns, n) -> np.ndarray:
    if not columns:
        return np.zeros((n, 0), np.float32)
    return np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=1)


def robust_standardization(values: np.ndarray, max_samples: int = 1_000_000, seed: int = 0):
    """weaver-style centre (median) and scale (half the 16-84 % width) per feature column.

    Columns with no spread (one-hot flags, constants) are passed through unchanged. "No spread" is relative to
    the column's size: a constant that float rounding has left a few ulps wide (a mean over a jet's points of a
    feature that is 1 for every point) is a constant, not a feature to be scaled up by 10^7.
    """
    if len(values) > max_samples:
        values = values[np.random.default_rng(seed).choice(len(values), max_samples, replace=False)]
    if len(values) == 0:
        return np.zeros(values.shape[1], np.float32), np.ones(values.shape[1], np.float32)
    p16, p50, p84 = np.percentile(values, [16, 50, 84], axis=0)
    width = np.maximum(p84 - p50, p50 - p16)
    flat = width <= 1e-6 * np.maximum(1.0, np.abs(p50))
    center = np.where(flat, 0.0, p50)
    scale = np.where(flat, 1.0, width)
    return center.astype(np.float32), scale.astype(np.float32)
