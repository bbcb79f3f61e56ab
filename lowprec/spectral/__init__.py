"""Sparsified and quantized spectral clustering, with its random-matrix theory.

>>> from lowprec import spectral
>>> X, y = spectral.gaussian_mixture(n=400, p=200, rho=4.0, seed=0)
>>> K = spectral.kernel(X, "ternary", sparsity=0.9)
>>> K.storage, K.nbytes < 400 * 400 * 8 // 20      # vs the dense float64 kernel
('csr', True)
>>> round(spectral.theory("ternary", sparsity=0.9, c=0.5, rho=4.0).theta, 4)
2.3503
"""

from __future__ import annotations

from .asymptotics import (
    Prediction,
    accuracy,
    alignment,
    bulk_edge,
    isolated_eigenvalue,
    misclassification,
    phase_transition,
    predict,
    spectral_density,
    stieltjes,
    theory,
)
from .data import gaussian_mixture
from .kernel import CompactKernel, kernel
from .nonlinearity import Coefficients, Kind, Nonlinearity, as_nonlinearity

__all__ = [
    "SpectralClustering",
    "gaussian_mixture",
    "kernel",
    "CompactKernel",
    "Kind",
    "Nonlinearity",
    "Coefficients",
    "as_nonlinearity",
    "coefficients",
    "theory",
    "predict",
    "Prediction",
    "phase_transition",
    "alignment",
    "misclassification",
    "accuracy",
    "isolated_eigenvalue",
    "bulk_edge",
    "stieltjes",
    "spectral_density",
]


def coefficients(nonlinearity="linear", **params) -> Coefficients:
    """a0, a1, a2, nu of a nonlinearity (name, callable or Nonlinearity; parameters as in kernel)."""
    return as_nonlinearity(nonlinearity, **params).coefficients()


def __getattr__(name: str):
    if name == "SpectralClustering":  # scikit-learn loads on first use
        from .cluster import SpectralClustering

        return SpectralClustering
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
