"""Benchmarks of emulated accumulation (``lp.matmul``, ``lp.sum``) against float32 BLAS and memcpy.

Run with ``pytest bench/test_accum_bench.py --benchmark-only``. Threads: ``--lp-threads``
(default 2, also numpy's OpenBLAS and torch); sum length: ``--lp-n-log2`` (default 24); matmul
size M = N = K: environment variable ``LP_BENCH_MATMUL_SIZE`` (default 512). The cases are those
of ``report_accum.py``, which prints the ratios and targets; no timing assertion here.

Groups (one pytest-benchmark table each, so the relative column reads as "times slower than the
reference"):

* ``accum matmul`` -- numpy float32 ``A @ B`` (the reference), every lowprec matmul case, and
  qtorch (operand quantization only, fp32 GEMM -- not an equivalent emulation);
* ``accum sum``    -- both memcpy references of the same input bytes, numpy ``x.sum()``, and the
  lowprec sums.
"""

from __future__ import annotations

import gc
import os

import pytest
from _bench_common import PeerUnavailable
from report_accum import (
    CASES,
    MEMCPY,
    AccumArrays,
    blas_threads,
    lowprec_case,
    numpy_matmul,
    numpy_sum,
    qtorch_case,
)

ROUNDS_REF = 20  # numpy matmul / memcpy / numpy sum (milliseconds each)
ROUNDS_MATMUL = 3  # lowprec matmul (~0.3-1 s a call at 512)
ROUNDS_SUM = 5  # lowprec sum (~0.1-0.2 s a call at 2^24)
ROUNDS_PEER = 5  # qtorch

MATMUL_CASES = [c for c in CASES if c.kind == "matmul"]
SUM_CASES = [c for c in CASES if c.kind == "sum"]
QTORCH_SPECS = list(dict.fromkeys(c.qtorch for c in CASES if c.qtorch is not None))


@pytest.fixture(scope="module")
def accum_arrays(request) -> AccumArrays:
    threads = request.config.getoption("--lp-threads")
    size = int(os.environ.get("LP_BENCH_MATMUL_SIZE", "512"))
    blas_threads(threads)
    a = AccumArrays.make(size, request.config.getoption("--lp-n-log2"), threads)
    yield a
    del a
    gc.collect()


@pytest.fixture
def run_accum(benchmark, accum_arrays):
    """``run_accum(fn, kind, rounds)``: fixed rounds after one warm-up, grouped by kind and size."""
    a = accum_arrays

    def _run(fn, kind: str, rounds: int, **extra):
        if kind == "matmul":
            benchmark.group = f"accum matmul M=N=K={a.size} threads={a.threads}"
            extra.setdefault("macs", a.macs)
        else:
            benchmark.group = f"accum sum n=2^{a.sum_n_log2} threads={a.threads}"
            extra.setdefault("input_bytes", a.x.nbytes)
        benchmark.extra_info.update(extra)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)

    return _run


def test_numpy_matmul(run_accum, accum_arrays):
    run_accum(numpy_matmul(accum_arrays), "matmul", ROUNDS_REF)


@pytest.mark.parametrize("case", MATMUL_CASES, ids=[c.key for c in MATMUL_CASES])
def test_lowprec_matmul(run_accum, accum_arrays, case):
    run_accum(lowprec_case(accum_arrays, case), "matmul", ROUNDS_MATMUL, target=case.target, label=case.label)


@pytest.mark.parametrize("method", list(MEMCPY))
def test_sum_memcpy(run_accum, accum_arrays, method):
    run_accum(MEMCPY[method](accum_arrays), "sum", ROUNDS_REF)


def test_numpy_sum(run_accum, accum_arrays):
    run_accum(numpy_sum(accum_arrays), "sum", ROUNDS_REF)


@pytest.mark.parametrize("case", SUM_CASES, ids=[c.key for c in SUM_CASES])
def test_lowprec_sum(run_accum, accum_arrays, case):
    run_accum(lowprec_case(accum_arrays, case), "sum", ROUNDS_SUM, target=case.target, label=case.label)


# qtorch last: torch's own OpenMP runtime starts only after the lowprec cases ran
@pytest.mark.parametrize("spec", QTORCH_SPECS, ids=[f"e{e}m{m}-{r}" for e, m, r in QTORCH_SPECS])
def test_qtorch_matmul(run_accum, accum_arrays, spec):
    try:
        fn = qtorch_case(accum_arrays, spec)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    run_accum(fn, "matmul", ROUNDS_PEER, note="qtorch (operand quantization only, fp32 GEMM)")
