"""Benchmarks of lowprec.spectral's compact kernels: construction and one matvec, against dense NumPy.

Run with ``pytest bench/test_spectral_bench.py --benchmark-only`` (``python -m pytest
bench/test_spectral_bench.py`` runs them too). Data: ``spectral.gaussian_mixture(n, p=1000, rho=4,
seed=0)`` with n = 4000 (environment variable ``LP_BENCH_SPECTRAL_N``). Threads: ``--lp-threads``
(default 2; lowprec's ``n_threads`` and numpy's OpenBLAS). ``report_spectral.py`` prints the scale
run, the dense path and scikit-learn side by side with the targets; no timing assertion here.

Groups (one pytest-benchmark table each, so the relative column reads as "times slower than the
fastest row"):

* ``spectral kernel build`` -- numpy's Gram ``X @ X.T`` (the GEMM alone, a floor for any builder),
  the dense float64 reference ``dense_kernel`` (ternary, 99 % sparsity), and ``spectral.kernel`` for
  csr ternary 99 %, csr ternary 90 % and packed sign (1 bit per entry);
* ``spectral matvec`` -- numpy's dense ``K_dense @ x`` (n x n float64; the reference) and ``K @ x``
  of each compact kernel. Each compact product is checked against ``dense_kernel(X, nl) @ x`` on the
  same X (relative error <= 1e-12 in the 2-norm).
"""

from __future__ import annotations

import gc
import math
import os
import time

import numpy as np
import pytest
from report_accum import SETTLE_S, blas_threads

from lowprec import spectral
from lowprec.spectral._reference import dense_kernel

P = 1000
RHO = 4.0
ROUNDS_BUILD = 5  # spectral.kernel, numpy Gram (~0.1-1 s a call at n = 4000)
ROUNDS_DENSE_BUILD = 3  # dense_kernel (several n x n temporaries)
ROUNDS_MATVEC = 20  # a round lasts ~20 ms or one call
MIN_ROUND_S = 0.02
REL_TOL = 1e-12

#: id -> (nonlinearity, sparsity, storage the kernel must pick)
CASES = {
    "csr-ternary-99": ("ternary", 0.99, "csr"),
    "csr-ternary-90": ("ternary", 0.90, "csr"),
    "packed-sign": ("sign", 0.0, "packed"),
}


def _n() -> int:
    return int(os.environ.get("LP_BENCH_SPECTRAL_N", "4000"))


@pytest.fixture(scope="module")
def spectral_data(request) -> dict:
    threads = request.config.getoption("--lp-threads")
    blas_threads(threads)
    X, _ = spectral.gaussian_mixture(_n(), P, RHO, seed=0)
    x = np.random.default_rng(1).standard_normal(X.shape[0])
    d = {"X": X, "x": x, "threads": threads, "kernels": {}}
    yield d
    d.clear()
    gc.collect()


def _compact(d: dict, key: str):
    """The compact kernel of a case, built once per module."""
    if key not in d["kernels"]:
        name, sparsity, _ = CASES[key]
        d["kernels"][key] = spectral.kernel(d["X"], name, sparsity=sparsity, n_threads=d["threads"])
    return d["kernels"][key]


def _iterations(fn) -> int:
    """Calls per round for ~20 ms rounds, from the fastest of a few calls after an idle pause (the previous
    test's spinning OpenBLAS/OpenMP workers go to sleep first)."""
    fn()
    time.sleep(SETTLE_S)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return max(1, math.ceil(MIN_ROUND_S / max(min(ts), 1e-7)))


def _group(d: dict, what: str) -> str:
    n = d["X"].shape[0]
    return f"spectral {what} n={n} p={P} threads={d['threads']}"


# --- kernel construction --------------------------------------------------------------------------------
def test_build_numpy_gram(benchmark, spectral_data):
    d = spectral_data
    X = d["X"]
    benchmark.group = _group(d, "kernel build")
    benchmark.extra_info.update(label="numpy X @ X.T (Gram GEMM alone)", nbytes=8 * X.shape[0] ** 2)
    benchmark.pedantic(lambda: X @ X.T, rounds=ROUNDS_BUILD, warmup_rounds=1, iterations=1)


def test_build_dense_reference(benchmark, spectral_data):
    d = spectral_data
    X = d["X"]
    nl = spectral.as_nonlinearity("ternary", sparsity=0.99)
    benchmark.group = _group(d, "kernel build")
    benchmark.extra_info.update(label="dense_kernel ternary 99 % (n x n float64)", nbytes=8 * X.shape[0] ** 2)
    benchmark.pedantic(lambda: dense_kernel(X, nl), rounds=ROUNDS_DENSE_BUILD, warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("key", list(CASES))
def test_build_compact(benchmark, spectral_data, key):
    d = spectral_data
    name, sparsity, storage = CASES[key]
    X, threads = d["X"], d["threads"]
    benchmark.group = _group(d, "kernel build")
    K = benchmark.pedantic(
        lambda: spectral.kernel(X, name, sparsity=sparsity, n_threads=threads),
        rounds=ROUNDS_BUILD,
        warmup_rounds=1,
        iterations=1,
    )
    assert K.storage == storage
    benchmark.extra_info.update(label=f"spectral.kernel {key}", nbytes=K.nbytes, storage=K.storage)
    d["kernels"].setdefault(key, K)


# --- one matvec ---------------------------------------------------------------------------------------------
def test_matvec_numpy_dense(benchmark, spectral_data):
    d = spectral_data
    K_dense = dense_kernel(d["X"], spectral.as_nonlinearity("ternary", sparsity=0.99))
    x = d["x"]

    def fn():
        return K_dense @ x

    benchmark.group = _group(d, "matvec")
    benchmark.extra_info.update(label="numpy dense K_dense @ x (float64)", nbytes=K_dense.nbytes)
    benchmark.pedantic(fn, rounds=ROUNDS_MATVEC, warmup_rounds=1, iterations=_iterations(fn))


@pytest.mark.parametrize("key", list(CASES))
def test_matvec_compact(benchmark, spectral_data, key):
    d = spectral_data
    K, x = _compact(d, key), d["x"]
    name, sparsity, _ = CASES[key]

    def fn():
        return K @ x

    benchmark.group = _group(d, "matvec")
    benchmark.extra_info.update(label=f"K @ x, {key}", nbytes=K.nbytes, storage=K.storage, density=K.density)
    y = benchmark.pedantic(fn, rounds=ROUNDS_MATVEC, warmup_rounds=1, iterations=_iterations(fn))
    ref = dense_kernel(d["X"], spectral.as_nonlinearity(name, sparsity=sparsity)) @ x
    err = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    benchmark.extra_info["rel_err_vs_dense"] = float(err)
    assert err <= REL_TOL, f"{key}: relative 2-norm error {err:.3g} against dense_kernel @ x"
