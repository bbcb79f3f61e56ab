"""Compact spectral kernels against the dense NumPy reference, storage choices and bad input.

Entry-for-entry comparisons use data on a dyadic grid (multiples of 1/2 in [-1.5, 1.5]), whose
Gram entries are exact in float64 whatever the BLAS summation order: the compact kernel must then
equal the reference bit for bit. On Gaussian data a Gram block and the full Gram product may differ
in the last bit (BLAS orders sums by shape), so values are compared to 1e-13 relative there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowprec import spectral
from lowprec.spectral._reference import dense_kernel, puncture_mask

CASES = [
    ("linear", {}),
    ("sign", {}),
    ("ternary", {"sparsity": 0.6}),
    ("ternary", {"sparsity": 0.95}),
    ("threshold", {"sparsity": 0.7}),
    ("puncture", {"sparsity": 0.8}),
    ("mbit", {"bits": 2}),
    ("mbit", {"bits": 3, "t_max": 2.0}),
    ("mbit", {"bits": 5}),
    ("mbit", {"bits": 8, "t_max": 3.0}),
    (lambda t: np.tanh(t), {}),
]
STORAGES = ("csr", "packed", "dense")


def _dyadic(n: int, p: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, (n, p)) - 1.5  # values +-0.5, +-1.5: variance 1.25


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _available(name, kw) -> list[str]:
    nl = spectral.as_nonlinearity(name, **kw)
    out = ["dense"]
    if nl.is_piecewise_constant:
        out.append("packed")
        if nl.kind is not spectral.Kind.MBIT or nl.bits <= 7:
            out.append("csr")
    elif nl.kind in (spectral.Kind.THRESHOLD, spectral.Kind.PUNCTURE):
        out.append("csr")
    return out


@pytest.mark.parametrize("name,kw", CASES, ids=lambda c: c if isinstance(c, str) else str(c))
@pytest.mark.parametrize("n,block_rows", [(203, 7), (64, None), (131, 131)])
def test_exact_against_reference(name, kw, n, block_rows):
    X = _dyadic(n, 37, seed=n)
    ref = dense_kernel(X, spectral.as_nonlinearity(name, **kw), seed=11)
    assert np.count_nonzero(ref) > 0
    for storage in _available(name, kw):
        K = spectral.kernel(X, name, storage=storage, seed=11, block_rows=block_rows, **kw)
        assert K.storage == storage
        np.testing.assert_array_equal(_bits(K.toarray()), _bits(ref), err_msg=storage)
        assert K.nnz == np.count_nonzero(ref)


def test_unavailable_storage_is_an_error():
    X = _dyadic(20, 5)
    for name, kw in CASES:
        for storage in set(STORAGES) - set(_available(name, kw)):
            with pytest.raises(ValueError, match="storage"):
                spectral.kernel(X, name, storage=storage, **kw)


def test_sign_of_zero_is_plus_one():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # rows 0 and 1 are orthogonal: t = 0
    for storage in ("csr", "packed"):
        K = spectral.kernel(X, "sign", storage=storage).toarray()
        assert K[0, 1] == K[1, 0] == 1 / math.sqrt(2)


@pytest.mark.parametrize("name,kw", CASES[:10], ids=lambda c: c if isinstance(c, str) else str(c))
def test_gaussian_data_against_reference(name, kw):
    X = np.random.default_rng(5).standard_normal((300, 80))
    ref = dense_kernel(X, spectral.as_nonlinearity(name, **kw), seed=2)
    x = np.random.default_rng(6).standard_normal(300)
    for storage in _available(name, kw):
        K = spectral.kernel(X, name, storage=storage, seed=2, block_rows=50, **kw)
        D = K.toarray()
        # same support and values up to the last bits of a Gram entry: a sum of 80 products of size ~1
        # carries an absolute error below 80 * 80 * 2^-53 ~ 1e-12, i.e. ~1e-14 after the two 1/sqrt(p)
        # factors (no entry sits that close to a threshold for this seed: a shift across one would
        # show as a support mismatch)
        np.testing.assert_array_equal(D != 0, ref != 0)
        np.testing.assert_allclose(D, ref, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(K @ x, ref @ x, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(
            K.matmat(np.column_stack([x, -2 * x])), ref @ np.column_stack([x, -2 * x]), rtol=1e-11, atol=1e-12
        )
        np.testing.assert_allclose(K.tocsr().toarray(), D, rtol=0, atol=0)
        assert K.T @ x == pytest.approx(K @ x, rel=0, abs=0)


@pytest.mark.parametrize(
    "name,kw,storage",
    [
        ("ternary", {"sparsity": 0.9}, "csr"),
        ("threshold", {"sparsity": 0.5}, "csr"),
        ("sign", {}, "packed"),
        ("mbit", {"bits": 3}, "packed"),
    ],
)
def test_products_do_not_depend_on_threads(name, kw, storage):
    X = np.random.default_rng(9).standard_normal((1500, 60))
    x = np.random.default_rng(10).standard_normal(1500)
    y1 = spectral.kernel(X, name, storage=storage, n_threads=1, block_rows=100, **kw) @ x
    y2 = spectral.kernel(X, name, storage=storage, n_threads=2, block_rows=100, **kw) @ x
    np.testing.assert_array_equal(_bits(y1), _bits(y2))


def test_puncture_mask_is_symmetric_seeded_and_blockwise():
    X = np.random.default_rng(3).standard_normal((257, 30))
    a = spectral.kernel(X, "puncture", sparsity=0.7, seed=4, block_rows=10, n_threads=1).toarray()
    b = spectral.kernel(X, "puncture", sparsity=0.7, seed=4, block_rows=257, n_threads=2).toarray()
    c = spectral.kernel(X, "puncture", sparsity=0.7, seed=5).toarray()
    np.testing.assert_array_equal(a != 0, b != 0)  # the mask does not depend on blocks or threads
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)  # Gram blocks may differ in the last bit
    np.testing.assert_array_equal(a, a.T)
    assert not np.array_equal(a != 0, c != 0)
    mask = puncture_mask(2000, 0.3, seed=1)
    kept = mask[np.triu_indices(2000, 1)].mean()
    # 1999000 independent Bernoulli(0.3) draws: sd 3.2e-4; 0.002 is > 6 sd (false failure < 1e-9)
    assert abs(kept - 0.3) < 0.002


@pytest.mark.parametrize("name,eps", [("ternary", 0.9), ("ternary", 0.99), ("threshold", 0.9), ("puncture", 0.9)])
def test_measured_sparsity_matches(name, eps):
    X, _ = spectral.gaussian_mixture(1500, 800, rho=0.0, seed=0)
    K = spectral.kernel(X, name, sparsity=eps)
    # t ~ N(0, 1) up to O(1/p) kurtosis; ~1.1e6 weakly dependent pairs: an absolute 0.004 leaves room
    # for the dependence (pairs share rows) and the p = 800 non-Gaussianity
    assert abs((1 - K.density) - eps) < 0.004


@pytest.mark.parametrize(
    "name,kw",
    [
        ("sign", {}),
        ("ternary", {"sparsity": 0.9}),
        ("ternary", {"sparsity": 0.99}),
        ("mbit", {"bits": 3}),
        ("threshold", {"sparsity": 0.95}),
    ],
)
def test_auto_storage_is_the_smallest(name, kw):
    X = np.random.default_rng(0).standard_normal((400, 50))
    auto = spectral.kernel(X, name, **kw)
    sizes = [spectral.kernel(X, name, storage=s, **kw).nbytes for s in _available(name, kw)]
    assert auto.nbytes <= 1.05 * min(sizes)


def test_compact_is_much_smaller_than_dense():
    X, _ = spectral.gaussian_mixture(2000, 500, rho=2.0, seed=1)
    dense_bytes = 2000 * 2000 * 8
    assert spectral.kernel(X, "ternary", sparsity=0.99).nbytes < dense_bytes / 100
    assert spectral.kernel(X, "sign").nbytes < dense_bytes / 60
    assert spectral.kernel(X, "ternary", sparsity=0.9).nbytes < dense_bytes / 30


def test_input_is_not_modified_and_dtypes_accepted():
    X = _dyadic(50, 9)
    before = X.copy()
    ref = spectral.kernel(X, "ternary", sparsity=0.5).toarray()
    np.testing.assert_array_equal(X, before)
    for arr in (X.astype(np.float32), np.asfortranarray(X), X.tolist(), (X * 2).astype(np.int64) / 2):
        np.testing.assert_array_equal(spectral.kernel(arr, "ternary", sparsity=0.5).toarray(), ref)


def test_custom_function_and_centring():
    X = np.random.default_rng(0).standard_normal((120, 40))
    with pytest.warns(UserWarning) as record:
        K = spectral.kernel(X, np.abs)
    messages = " | ".join(str(w.message) for w in record)
    assert "a0 = 0.798" in messages and "a2 = 0.564" in messages  # |t| is even: a2 = 1/sqrt(pi)
    a0 = math.sqrt(2 / math.pi)
    with pytest.warns(UserWarning, match="a2") as record:
        Kc = spectral.kernel(X, np.abs, center=True)
    assert not any("a0" in str(w.message) for w in record)
    t = (X @ X.T) / math.sqrt(40)
    expected = (np.abs(t) - a0) / math.sqrt(40)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(Kc.toarray(), expected, rtol=1e-13, atol=1e-15)
    assert K.toarray()[0, 1] > Kc.toarray()[0, 1]


def test_repr_and_sizes():
    X = np.random.default_rng(0).standard_normal((100, 20))
    K = spectral.kernel(X, "ternary", sparsity=0.9)
    assert "ternary-0.9" in repr(K) and K.shape == (100, 100) and K.dtype == np.float64
    assert K.n_features == 20 and 0 < K.density < 0.2


# --- bad input ----------------------------------------------------------------------------------
X_OK = np.random.default_rng(0).standard_normal((10, 4))


@pytest.mark.parametrize(
    "X,exc,match",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "NaN or inf"),
        (np.ones(5), ValueError, "2-D"),
        (np.ones((1, 5)), ValueError, "at least 2 samples"),
        (np.ones((5, 0)), ValueError, "at least 1 feature"),
        ("abc", TypeError, "X"),
        (np.ones((3, 3), dtype=complex), TypeError, "real"),
        ([[1, 2], [3]], TypeError, "X"),
    ],
)
def test_bad_X(X, exc, match):
    with pytest.raises(exc, match=match):
        spectral.kernel(X, "sign")


@pytest.mark.parametrize(
    "args,kw,exc,match",
    [
        (("ternary",), {"sparsity": 1.0}, ValueError, "sparsity"),
        (("ternary",), {"sparsity": -0.1}, ValueError, "sparsity"),
        (("ternary",), {"sparsity": "0.5"}, TypeError, "sparsity"),
        (("sign",), {"sparsity": 0.5}, ValueError, "sparsity"),
        (("gaussian",), {}, ValueError, "unknown nonlinearity"),
        ((3,), {}, TypeError, "nonlinearity"),
        (("mbit",), {}, TypeError, "bits"),
        (("mbit",), {"bits": 9}, ValueError, "bits"),
        (("mbit",), {"bits": 2, "t_max": -1.0}, ValueError, "t_max"),
        (("sign",), {"bits": 2}, ValueError, "bits"),
        (("sign",), {"storage": "coo"}, ValueError, "storage"),
        (("sign",), {"block_rows": 0}, ValueError, "block_rows"),
        (("sign",), {"n_threads": 0}, ValueError, "n_threads"),
        (("puncture",), {"sparsity": 0.5, "seed": -1}, ValueError, "seed"),
        ((lambda t: t[:1],), {}, ValueError, "shape"),
    ],
)
def test_bad_arguments(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        spectral.kernel(X_OK, *args, **kw)


def test_matvec_checks_length():
    K = spectral.kernel(X_OK, "sign")
    with pytest.raises(ValueError):
        K @ np.ones(11)
