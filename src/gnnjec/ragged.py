"""Flat-array helpers for ragged (jagged) data held as ``values`` + ``counts``.

Both the synthetic generator and the convert stage work on flat numpy arrays with a parent index
(particle -> jet, jet -> event) rather than on Python loops; these helpers keep that bookkeeping in
one place.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np


class Columns:
    """Mixin for a dataclass of equal-length arrays (one row per particle, candidate, ...)."""

    def take(self, index):
        """The rows ``index`` (integer indices or a boolean mask), as a new table."""
        return type(self)(*(getattr(self, f.name)[index] for f in fields(self)))

    @classmethod
    def concat(cls, parts: list):
        """The rows of ``parts`` one after the other."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0+c1, ...]`` as int64, length ``len(counts) + 1``."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def parents_from_counts(counts: np.ndarray) -> np.ndarray:
    """For every child, the index of its parent: ``[0]*c0 + [1]*c1 + ...``."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def local_index(counts: np.ndarray) -> np.ndarray:
    """Position of every child inside its parent: ``[0..c0-1, 0..c1-1, ...]``."""
    offsets = offsets_from_counts(counts)
    return np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], counts)


def segment_sum(values: np.ndarray, parents: np.ndarray, n_parents: int) -> np.ndarray:
    """Sum ``values`` per parent (parents with no children get 0)."""
    return np.bincount(parents, weights=values, minlength=n_parents)


def segment_max(values: np.ndarray, parents: np.ndarray, n_parents: int, empty: float = 0.0) -> np.ndarray:
    """Maximum of ``values`` per parent (``empty`` where a parent has no children)."""
    out = np.full(n_parents, -np.inf)
    np.maximum.at(out, parents, values)
    out[~np.isfinite(out)] = empty
    return out


def sort_within_parents(parents: np.ndarray, key: np.ndarray, descending: bool = True) -> np.ndarray:
    """Permutation that groups children by parent and orders each group by ``key``."""
    return np.lexsort((-key if descending else key, parents))
