"""Particle clouds in memory, padded batch by batch for the networks and for ONNX inference."""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from . import features as F
from .convert import read_clouds


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

    def __init__(self, path: str, inputs: dict[str, list[str]], truth: tuple[str, ...] = ("target",)):
        collections = [k for k in inputs if k != "jet"]
        stored = {k: F.stored_needed(inputs[k]) for k in collections}
        columns = list(dict.fromkeys([*inputs["jet"], *truth, "pt_raw"]))
        columns += [f"{k}.{f}" for k in collections for f in stored[k]]
        arrays = read_clouds(path, columns=columns)
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
            self.clouds[k] = Ragged(values, np.concatenate([[0], np.cumsum(counts)]))
        self.truth = {t: np.asarray(arrays[t]) for t in truth}

    def batch(self, rows: np.ndarray, max_constituents: int) -> list[np.ndarray]:
        """Arrays in the networks' argument order: jet, then (points, mask) per collection."""
        out = [self.jet[rows]]
        for k in self.collections:
            out.extend(self.clouds[k].pad(rows, max_constituents))
        return out


def _stack(columns, n) -> np.ndarray:
    if not columns:
        return np.zeros((n, 0), np.float32)
    return np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=1)


def robust_standardization(values: np.ndarray, max_samples: int = 1_000_000, seed: int = 0):
    """weaver-style centre (median) and scale (half the 16-84 % width) per feature column.

    Columns with no spread (one-hot flags, constants) are passed through unchanged.
    """
    if len(values) > max_samples:
        values = values[np.random.default_rng(seed).choice(len(values), max_samples, replace=False)]
    if len(values) == 0:
        return np.zeros(values.shape[1], np.float32), np.ones(values.shape[1], np.float32)
    p16, p50, p84 = np.percentile(values, [16, 50, 84], axis=0)
    width = np.maximum(p84 - p50, p50 - p16)
    flat = width <= 1e-8
    center = np.where(flat, 0.0, p50)
    scale = np.where(flat, 1.0, width)
    return center.astype(np.float32), scale.astype(np.float32)
