"""Spectral clustering on sparsified / quantized kernels, as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .kernel import STORAGES, CompactKernel, kernel
from .nonlinearity import as_nonlinearity

__all__ = ["SpectralClustering"]

_DENSE_BELOW = 64  # eigen-decompose tiny kernels densely (ARPACK needs n well above k)


class SpectralClustering(ClusterMixin, BaseEstimator):
    """Clustering by the top eigenvectors of K_ij = f(x_i.x_j/sqrt(p))/sqrt(p) (zero diagonal).

    Two classes: the sign of the eigenvector of the largest eigenvalue. k classes: k-means on the
    eigenvectors of the k largest eigenvalues. The kernel is built in compact form (see
    :func:`lowprec.spectral.kernel`), so sparse and quantized kernels never exist as dense matrices.

    Parameters
    ----------
    n_clusters : int
        Number of clusters k.
    nonlinearity : str, Nonlinearity or callable
        'linear', 'threshold', 'sign', 'ternary', 'mbit', 'puncture' or a vectorised f.
    sparsity : float
        Fraction of zero kernel entries in [0, 1) (threshold, ternary, puncture).
    bits, t_max : optional
        M-bit quantizer parameters ('mbit').
    center : bool
        Use f - a0 for a custom f.
    storage : {'auto', 'csr', 'packed', 'dense'}
        Kernel storage.
    eigen_solver : {'arpack', 'lobpcg', 'dense'}
        scipy.sparse.linalg.eigsh, scipy.sparse.linalg.lobpcg, or numpy.linalg.eigh on the dense kernel.
    n_components : int, optional
        Eigenvectors used for k-means (default: n_clusters; two clusters use one, by sign).
    n_init : int
        k-means restarts.
    tol : float
        Eigensolver tolerance (0: machine precision for ARPACK).
    random_state : int, Generator or None
        Start vector of the eigensolver, k-means initialisation and puncturing mask.
    n_threads : int, optional
        Threads of the compiled kernels.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    embedding_ : ndarray of shape (n_samples, n_components)
        Unit eigenvectors, largest eigenvalue first; each oriented so its largest entry is positive.
    eigenvalues_ : ndarray of shape (n_components,)
    kernel_ : CompactKernel
        The kernel matrix (also as ``affinity_matrix_``, the scikit-learn name).
    coefficients_ : Coefficients
        a0, a1, a2, nu of the nonlinearity; ``coefficients_.theta`` sets the phase transition.
    """

    def __init__(
        self,
        n_clusters: int = 2,
        *,
        nonlinearity="linear",
        sparsity: float = 0.0,
        bits: int | None = None,
        t_max: float | None = None,
        center: bool = False,
        storage: str = "auto",
        eigen_solver: str = "arpack",
        n_components: int | None = None,
        n_init: int = 10,
        tol: float = 0.0,
        random_state=None,
        n_threads: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.nonlinearity = nonlinearity
        self.sparsity = sparsity
        self.bits = bits
        self.t_max = t_max
        self.center = center
        self.storage = storage
        self.eigen_solver = eigen_solver
        self.n_components = n_components
        self.n_init = n_init
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self, n: int) -> int:
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"n_clusters must be an integer, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"n_clusters must be at least 1, got {k}")
        m = (1 if k <= 2 else k) if self.n_components is None else self.n_components
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if n <= max(k, m):
            raise ValueError(f"X has {n} samples: it needs more than n_clusters={k} and n_components={m}")
        if self.eigen_solver not in ("arpack", "lobpcg", "dense"):
            raise ValueError(f"eigen_solver must be 'arpack', 'lobpcg' or 'dense', got {self.eigen_solver!r}")
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {self.storage!r}")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ValueError(f"n_init must be a positive integer, got {self.n_init!r}")
        if not isinstance(self.tol, (int, float, np.floating)) or not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        return int(m)

    def fit(self, X, y=None) -> SpectralClustering:
        """Build the kernel of the rows of X, eigen-decompose it and assign labels."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n = X.shape[0]
        m = self._check_params(n)
        rng = check_random_state(self.random_state)
        nl = as_nonlinearity(
            self.nonlinearity, sparsity=self.sparsity, bits=self.bits, t_max=self.t_max, center=self.center
        )
        K = kernel(X, nl, storage=self.storage, seed=int(rng.randint(2**31)), n_threads=self.n_threads)
        vals, vecs = _top_eigenpairs(K, m, self.eigen_solver, self.tol, rng)
        vecs = vecs * np.where(vecs[np.abs(vecs).argmax(axis=0), np.arange(m)] < 0, -1.0, 1.0)
        if self.n_clusters == 1:
            labels = np.zeros(n, dtype=np.int64)
        elif self.n_clusters == 2 and m == 1:
            labels = (vecs[:, 0] < 0).astype(np.int64)
        else:
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=self.n_clusters, n_init=self.n_init, random_state=rng)
            labels = km.fit_predict(vecs).astype(np.int64)
        self.kernel_ = K
        self.affinity_matrix_ = K
        self.coefficients_ = nl.coefficients()
        self.eigenvalues_ = vals
        self.embedding_ = vecs
        self.labels_ = labels
        return self

    def score_alignment(self, y) -> float:
        """|v^T u|^2 / n for the top eigenvector v and the centred, normalised label vector u of y."""
        check_is_fitted(self, "embedding_")
        y = np.asarray(y)
        if y.shape != (self.embedding_.shape[0],):
            raise ValueError(f"y must have shape ({self.embedding_.shape[0]},), got {y.shape}")
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError("score_alignment needs exactly two classes in y")
        u = np.where(y == classes[0], 1.0, -1.0)
        u -= u.mean()
        u /= np.linalg.norm(u)
        return float((self.embedding_[:, 0] @ u) ** 2)


def _top_eigenpairs(
    K: CompactKernel, m: int, solver: str, tol: float, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """The m largest (algebraic) eigenvalues, descending, and unit eigenvectors as columns."""
    n = K.shape[0]
    if solver == "dense" or n < _DENSE_BELOW:
        w, v = np.linalg.eigh(K.toarray())
        return w[::-1][:m].copy(), v[:, ::-1][:, :m].copy()
    if solver == "lobpcg":
        from scipy.sparse.linalg import lobpcg

        X0 = rng.standard_normal((n, m + 2))
        w, v = lobpcg(K, X0, largest=True, tol=tol or None, maxiter=500)
        order = np.argsort(w)[::-1][:m]
        return w[order], v[:, order]
    from scipy.sparse.linalg import eigsh

    v0 = rng.uniform(-1.0, 1.0, n)
    w, v = eigsh(K, k=m, which="LA", v0=v0, tol=tol)
    order = np.argsort(w)[::-1]
    return w[order], v[:, order]
