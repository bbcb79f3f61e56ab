"""pytest-benchmark fixtures for lowprec's elementwise kernels.

Run with ``pytest bench/ --benchmark-only``. Options: ``--lp-n-log2`` (default 24: 2^24 elements)
and ``--lp-threads`` (default 2). No timing assertions: ratios against memcpy and peers are
printed by ``bench/report.py``; here pytest-benchmark's group tables hold the memcpy rows and the
peers next to lowprec.
"""

from __future__ import annotations

import gc

import pytest
from _bench_common import Arrays


def pytest_addoption(parser):
    group = parser.getgroup("lowprec-bench")
    group.addoption("--lp-n-log2", type=int, default=24, help="log2 of the element count (default 24)")
    group.addoption("--lp-threads", type=int, default=2, help="threads for lowprec and torch (default 2)")


@pytest.fixture(scope="session")
def arrays(request) -> Arrays:
    a = Arrays.make(request.config.getoption("--lp-n-log2"), request.config.getoption("--lp-threads"))
    yield a
    del a
    gc.collect()


@pytest.fixture
def run(benchmark, arrays):
    """``run(fn, group, rounds)``: time ``fn`` with fixed rounds (one warm-up), grouped by dtype/size."""

    def _run(fn, group: str, rounds: int, **extra):
        benchmark.group = f"{group} n=2^{arrays.n_log2} threads={arrays.threads}"
        benchmark.extra_info.update(extra)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)

    return _run
