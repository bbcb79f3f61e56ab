"""Kernel matrices K_ij = f(x_i.x_j/sqrt(p))/sqrt(p) (zero diagonal), built blockwise in compact form.

Gram blocks come from BLAS (a few hundred rows at a time); the compiled core turns each block into
its compact form directly, so the dense n x n float64 matrix is never held for the sparse kinds:

* ``csr``: strict upper triangle, int8 values times one scale (sign, ternary, mbit up to 7 bits) or
  float64 values (threshold, puncture), int32 column indices;
* ``packed``: full rows of codes at 1, 2, 4 or 8 bits, value = levels[code] * scale (sign, ternary, mbit);
* ``dense``: float64 (linear, custom f, or on request).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.linalg import LinearOperator

from .._native import core
from .._quantize import _check_seed, _check_threads
from .._reference import stream_key
from .nonlinearity import Kind, Nonlinearity, as_nonlinearity

__all__ = ["CompactKernel", "kernel", "STORAGES"]

STORAGES = ("auto", "csr", "packed", "dense")
_BLOCK_BYTES = 32 << 20  # Gram block size
_SLICES = 16  # fixed row partition of the symmetric CSR product (thread-count independent)


def _check_X(X: object) -> np.ndarray:
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__") and not hasattr(X, "__array__"):
        raise TypeError(f"X must be a 2-D array of numbers, got {type(X).__name__}")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"X must be a 2-D array of numbers: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"X must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {arr.shape}")
    n, p = arr.shape
    if n < 2:
        raise ValueError(f"X must have at least 2 samples (rows), got {n}")
    if p < 1:
        raise ValueError("X must have at least 1 feature (column)")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("X contains NaN or infinity")
    return arr


def _block_rows(n: int, block_rows: int | None) -> int:
    if block_rows is None:  # at most 32 MiB and at most an eighth of the rows: never the whole n x n Gram
        return max(8, min(-(-n // 8), _BLOCK_BYTES // (8 * n)))
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
    return int(block_rows)


class CompactKernel(LinearOperator):
    """A symmetric kernel matrix in compact storage, usable wherever SciPy takes a LinearOperator.

    Attributes
    ----------
    storage : {'csr', 'packed', 'dense'}
    nonlinearity : Nonlinearity
    scale : float
        Value of a unit level (csr with int8 values, packed); 1 otherwise.
    n_features : int
        p, the data dimension the kernel was built from.
    """

    def __init__(
        self,
        n: int,
        n_features: int,
        nonlinearity: Nonlinearity,
        storage: str,
        arrays: dict[str, np.ndarray],
        scale: float = 1.0,
        n_threads: int | None = None,
    ) -> None:
        super().__init__(np.dtype(np.float64), (n, n))
        self.n_features = n_features
        self.nonlinearity = nonlinearity
        self.storage = storage
        self.scale = float(scale)
        self.arrays = arrays
        self.n_threads = _check_threads(n_threads)
        self._work: np.ndarray | None = None

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by the stored arrays."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    @property
    def nnz(self) -> int:
        """Non-zero off-diagonal entries (both triangles)."""
        n = self.shape[0]
        if self.storage == "csr":
            return 2 * int(self.arrays["indptr"][-1])
        if self.storage == "dense":
            return int(np.count_nonzero(self.arrays["values"]))
        levels = self.arrays["levels"]
        codes = self._codes()
        nz = int(np.count_nonzero(levels[codes]))
        return nz - int(np.count_nonzero(levels[codes[np.arange(n), np.arange(n)]]))

    @property
    def density(self) -> float:
        """Fraction of non-zero off-diagonal entries."""
        n = self.shape[0]
        return self.nnz / (n * (n - 1))

    # -- products ------------------------------------------------------------------------------
    def _matvec(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1))
        n = self.shape[0]
        if x.shape[0] != n:
            raise ValueError(f"x must have {n} entries, got {x.shape[0]}")
        if self.storage == "dense":
            return self.arrays["values"] @ x
        y = np.empty(n)
        if self.storage == "csr":
            if self._work is None:
                self._work = np.empty(n * _SLICES)
            a = self.arrays
            core.spectral_csr_matvec(
                a["indptr"], a["indices"], a["data"], self.scale, x, y, self._work, _SLICES, self.n_threads
            )
        else:
            bits = int(self.arrays["bits"][0])
            if self._work is None:
                groups = -(-n // (8 // bits))
                self._work = np.empty(groups * 256)
            core.spectral_packed_matvec(
                self.arrays["codes"], bits, self.arrays["levels"], self.scale, x, y, self._work, self.n_threads
            )
        return y

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.storage == "dense":
            return self.arrays["values"] @ X
        return np.column_stack([self._matvec(X[:, k]) for k in range(X.shape[1])])

    def _adjoint(self) -> CompactKernel:
        return self

    # -- conversions ---------------------------------------------------------------------------
    def _codes(self) -> np.ndarray:
        """Unpacked n x n codes of the packed storage."""
        n = self.shape[0]
        bits = int(self.arrays["bits"][0])
        per_byte = 8 // bits
        packed = self.arrays["codes"]
        shifts = (np.arange(per_byte) * bits).astype(np.uint8)
        codes = (packed[:, :, None] >> shifts) & np.uint8((1 << bits) - 1)
        return codes.reshape(n, -1)[:, :n]

    def toarray(self) -> np.ndarray:
        """The dense n x n float64 matrix."""
        if self.storage == "dense":
            return self.arrays["values"].copy()
        if self.storage == "packed":
            K = self.arrays["levels"][self._codes()] * self.scale
            np.fill_diagonal(K, 0.0)
            return K
        return self.tocsr().toarray()

    def tocsr(self) -> csr_array:
        """Both triangles as a SciPy CSR array of float64 values."""
        n = self.shape[0]
        if self.storage != "csr":
            return csr_array(self.toarray())
        a = self.arrays
        upper = csr_array((a["data"].astype(np.float64) * self.scale, a["indices"], a["indptr"]), shape=(n, n))
        return (upper + upper.T).tocsr()

    def __repr__(self) -> str:
        n = self.shape[0]
        return (
            f"CompactKernel(n={n}, nonlinearity={self.nonlinearity.name!r}, storage={self.storage!r}, "
            f"density={self.density:.4g}, nbytes={self.nbytes})"
        )


def _code_arrays(nl: Nonlinearity, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    edges, levels, unit = nl.code_table()
    # int8 value of each code for CSR; 8-bit codes (packed only) keep just their sign, which is all the
    # compiled code reads from them there
    small = levels if np.abs(levels).max() <= 127 else np.sign(levels)
    return edges, small.astype(np.int8), levels, unit / math.sqrt(p)


def _choose_storage(nl: Nonlinearity, storage: str, n: int) -> str:
    if not isinstance(storage, str) or storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    k = nl.kind
    allowed = {"dense"}
    if nl.is_piecewise_constant:
        allowed |= {"packed"} | ({"csr"} if k is not Kind.MBIT or (nl.bits or 0) <= 7 else set())
    elif k in (Kind.THRESHOLD, Kind.PUNCTURE):
        allowed |= {"csr"}
    if storage == "auto":
        if nl.is_piecewise_constant:
            density = 1.0 - nl.sparsity
            csr_bytes = 5 * density * n * (n - 1) / 2
            packed_bytes = n * math.ceil(n * _packed_bits(nl) / 8)
            return "csr" if "csr" in allowed and csr_bytes < packed_bytes else "packed"
        return "csr" if "csr" in allowed and nl.sparsity > 0 else "dense"
    if storage not in allowed:
        raise ValueError(
            f"storage {storage!r} is not available for the {nl.name!r} nonlinearity; use one of {sorted(allowed)}"
        )
    return storage


def _packed_bits(nl: Nonlinearity) -> int:
    edges, _, _ = nl.code_table()
    need = max(1, math.ceil(math.log2(len(edges) + 1)))
    return next(b for b in (1, 2, 4, 8) if b >= need)


def kernel(
    X: np.ndarray,
    nonlinearity: str | Nonlinearity | Callable[[np.ndarray], np.ndarray] = "linear",
    *,
    sparsity: float = 0.0,
    bits: int | None = None,
    t_max: float | None = None,
    center: bool = False,
    storage: str = "auto",
    seed: int | None = 0,
    block_rows: int | None = None,
    n_threads: int | None = None,
) -> CompactKernel:
    """Kernel matrix K_ij = f(x_i.x_j/sqrt(p))/sqrt(p), K_ii = 0, of the rows x_i of X.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Rows are samples; entries should have about unit variance (the sparsity levels are
        calibrated on t ~ N(0, 1)).
    nonlinearity : str, Nonlinearity or callable
        'linear', 'threshold', 'sign', 'ternary', 'mbit', 'puncture', or a vectorised f.
    sparsity, bits, t_max, center
        Parameters of the nonlinearity (see :class:`Nonlinearity`).
    storage : {'auto', 'csr', 'packed', 'dense'}
        'auto' picks the smaller of csr and packed for sign/ternary/mbit, csr for sparse float kinds,
        dense for linear and custom f.
    seed : int or None
        Seed of the puncturing mask (counter-based: the mask does not depend on blocks or threads);
        None draws one.
    block_rows : int, optional
        Rows per Gram block (default: blocks of at most 32 MiB and n/8 rows).
    n_threads : int, optional
        Threads of the compiled kernels (default: all cores or OMP_NUM_THREADS).

    Returns
    -------
    CompactKernel
        A SciPy LinearOperator with ``toarray``, ``tocsr``, ``nbytes`` and ``density``.
    """
    nl = as_nonlinearity(nonlinearity, sparsity=sparsity, bits=bits, t_max=t_max, center=center)
    if nl.kind is Kind.CUSTOM:
        nl.warn_if_uncentred()
    Xc = _check_X(X)
    seed = _check_seed(seed)
    n, p = Xc.shape
    nt = _check_threads(n_threads)
    rows = _block_rows(n, block_rows)
    kind = _choose_storage(nl, storage, n)
    sqrt_p = math.sqrt(p)
    if kind == "dense":
        return _dense(Xc, nl, rows, sqrt_p, seed, nt)
    if nl.is_piecewise_constant:
        edges, values8, levels, scale = _code_arrays(nl, p)
        emap = (0, sqrt_p, 0.0, 0, 0.0, n)
    else:
        edges, values8, levels, scale = np.empty(0), np.empty(0, np.int8), None, 1.0
        if nl.kind is Kind.THRESHOLD:
            emap = (1, sqrt_p, nl.threshold, 0, 0.0, n)
        else:
            emap = (2, sqrt_p, 0.0, stream_key(seed, 0), nl.keep, n)
    if kind == "packed":
        bits_ = _packed_bits(nl)
        row_bytes = math.ceil(n * bits_ / 8)
        codes = np.empty((n, row_bytes), dtype=np.uint8)
        for r0 in range(0, n, rows):
            G = Xc[r0 : r0 + rows] @ Xc.T
            core.spectral_pack(G, emap, edges, values8, bits_, codes[r0 : r0 + rows], nt)
            del G  # one Gram block alive at a time
        lv = np.zeros(1 << bits_)
        lv[: len(levels)] = levels
        arrays = {"codes": codes, "levels": lv, "bits": np.array([bits_], np.int8)}
        return CompactKernel(n, p, nl, "packed", arrays, scale, nt)
    data_dtype = np.int8 if nl.is_piecewise_constant else np.float64
    counts_all = np.zeros(n + 1, dtype=np.int64)
    idx_parts, val_parts = [], []
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        G = Xc[r0:r1] @ Xc[r0:].T
        counts = np.empty(r1 - r0, dtype=np.int64)
        core.spectral_csr_count(G, r0, r0, emap, edges, values8, counts, nt)
        starts = np.zeros(r1 - r0, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        total = int(counts.sum())
        idx = np.empty(total, dtype=np.int32)
        val = np.empty(total, dtype=data_dtype)
        core.spectral_csr_fill(G, r0, r0, emap, edges, values8, starts, idx, val, nt)
        del G
        counts_all[r0 + 1 : r1 + 1] = counts
        idx_parts.append(idx)
        val_parts.append(val)
    indptr = np.cumsum(counts_all)
    indices = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int32)
    del idx_parts
    data = np.concatenate(val_parts) if val_parts else np.empty(0, data_dtype)
    del val_parts
    arrays = {"indptr": indptr, "indices": indices, "data": data}
    return CompactKernel(n, p, nl, "csr", arrays, scale, nt)


def _dense(Xc: np.ndarray, nl: Nonlinearity, rows: int, sqrt_p: float, seed: int, nt: int) -> CompactKernel:
    from ._reference import entries, puncture_mask

    n, p = Xc.shape
    K = np.empty((n, n))
    mask = puncture_mask(n, nl.keep, seed) if nl.kind is Kind.PUNCTURE else None
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        K[r0:r1] = entries((Xc[r0:r1] @ Xc.T) / sqrt_p, nl, sqrt_p, None if mask is None else mask[r0:r1])
    np.fill_diagonal(K, 0.0)
    return CompactKernel(n, p, nl, "dense", {"values": K}, 1.0, nt)
