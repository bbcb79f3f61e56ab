"""Synthetic data of the spectral-clustering model: a Gaussian mixture with isotropic unit noise."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gaussian_mixture"]


def _positive_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def gaussian_mixture(
    n: int, p: int, rho: float, seed: int | np.random.Generator | None = None, n_classes: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Samples x_i = mu_{y_i} + z_i with z_i ~ N(0, I_p) and balanced classes.

    Parameters
    ----------
    n, p : int
        Number of samples and dimension (c = p / n in the theory).
    rho : float
        Signal strength ||mu_a||^2 of every class mean. The means are the vertices of a regular simplex
        centred at 0 in a random k-dimensional subspace: +-mu for two classes.
    seed : int, Generator or None
        Source of randomness (numpy.random.default_rng).
    n_classes : int
        Number of classes k (2 by default); class sizes differ by at most one.

    Returns
    -------
    X : ndarray of shape (n, p), float64
        Rows are samples.
    y : ndarray of shape (n,), int64
        Class labels 0 .. k - 1.
    """
    k = _positive_int(n_classes, "n_classes", 2)
    n = _positive_int(n, "n", k)
    p = _positive_int(p, "p", k)
    if isinstance(rho, bool) or not isinstance(rho, (int, float, np.integer, np.floating)):
        raise TypeError(f"rho must be a number, got {type(rho).__name__}")
    if not (math.isfinite(rho) and rho >= 0):
        raise ValueError(f"rho must be a finite number >= 0, got {rho}")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((p, k)))  # k orthonormal directions
    means = basis.T - basis.T.mean(axis=0)  # regular simplex, centred
    means *= math.sqrt(rho) / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    X = rng.standard_normal((n, p))
    X += means[y]
    return X, y
