"""Dense NumPy reference of the compact kernels, written to be read: the test oracle.

K_ij = f(t_ij)/sqrt(p) for i != j with t = x_i.x_j/sqrt(p) (rows of X are samples), K_ii = 0.
"""

from __future__ import annotations

import math

import numpy as np

from .._reference import mix64, stream_key
from .nonlinearity import Kind, Nonlinearity

__all__ = ["dense_kernel", "entries", "puncture_mask"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def puncture_mask(n: int, keep: float, seed: int) -> np.ndarray:
    """Symmetric boolean mask: entry (i, j), i < j, is kept when its uniform draw is below ``keep``.

    The draw of (i, j) is the counter-based word at index i * n + j of the stream (seed, 0), top 53 bits.
    """
    i, j = np.triu_indices(n, 1)
    idx = i.astype(np.uint64) * np.uint64(n) + j.astype(np.uint64)
    with np.errstate(over="ignore"):
        words = mix64(np.uint64(stream_key(seed, 0)) + (idx + np.uint64(1)) * _GOLDEN)
    u = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53
    mask = np.zeros((n, n), dtype=bool)
    mask[i, j] = u < keep
    return mask | mask.T


def entries(t: np.ndarray, nl: Nonlinearity, sqrt_p: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Kernel values f(t)/sqrt(p) of scaled Gram entries t (mask: kept entries of puncture)."""
    if nl.is_piecewise_constant:
        edges, levels, unit = nl.code_table()
        return levels[np.searchsorted(edges, t, side="right")] * (unit / sqrt_p)
    if nl.kind is Kind.THRESHOLD:
        return np.where(np.abs(t) > nl.threshold, t / sqrt_p, 0.0)
    if nl.kind is Kind.PUNCTURE:
        return np.where(mask, t / sqrt_p, 0.0)
    return nl(t) / sqrt_p


def dense_kernel(X: np.ndarray, nl: Nonlinearity, seed: int = 0) -> np.ndarray:
    """The n x n float64 kernel of the rows of X under the nonlinearity nl."""
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    sqrt_p = math.sqrt(p)
    mask = puncture_mask(n, nl.keep, seed) if nl.kind is Kind.PUNCTURE else None
    K = entries((X @ X.T) / sqrt_p, nl, sqrt_p, mask)
    np.fill_diagonal(K, 0.0)
    return K
