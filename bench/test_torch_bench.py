"""Benchmarks of lowprec.torch training steps (demo MLP and CNN, batch 32 of digits) against float32.

Run with ``pytest bench/test_torch_bench.py --benchmark-only`` (``python -m pytest
bench/test_torch_bench.py`` runs them too). Threads: ``--lp-threads`` (default 2; torch's
``set_num_threads``, which lowprec's OpenMP default follows). The cases and the step are those of
``report_torch.py``, which prints the ratios to float32 and the targets; no timing assertion here.

Groups (one pytest-benchmark table each, so the relative column reads as "times slower than the
float32 step"):

* ``torch step mlp`` -- float32 (plain torch, SGD; the reference), ``ibm-fp8-2018`` in GEMM modes
  operands, chunk and exact, ``acc8`` exact, and the two breakdown rows (float32 GEMMs with the
  ``LowPrecisionOptimizer``; exact GEMMs with plain SGD);
* ``torch step cnn`` -- float32 and ``ibm-fp8-2018`` exact.

A round runs ``iterations`` consecutive steps (enough for ~20 ms, at least one); pytest-benchmark
reports the time per step.
"""

from __future__ import annotations

import math
import time

import pytest
from report_torch import CASE, CASES, TrainStep, fixed_batches, set_threads

ROUNDS = 15  # per case; a round lasts ~20 ms or one step
MIN_ROUND_S = 0.02

MLP_CASES = list(CASES)
CNN_CASES = [CASE["float32"], CASE["ibm-exact"]]


@pytest.fixture(scope="module")
def torch_batches(request) -> list:
    set_threads(request.config.getoption("--lp-threads"))
    return fixed_batches()


def _iterations(step: TrainStep) -> int:
    t0 = time.perf_counter()
    step()
    return max(1, math.ceil(MIN_ROUND_S / max(time.perf_counter() - t0, 1e-7)))


@pytest.fixture
def run_step(benchmark, torch_batches, request):
    """``run_step(kind, case)``: build and warm up the case, then time steps in fixed rounds."""
    threads = request.config.getoption("--lp-threads")

    def _run(kind: str, case) -> None:
        step = TrainStep(kind, case, torch_batches)
        benchmark.group = f"torch step {kind} batch 32 threads={threads}"
        benchmark.extra_info.update(label=case.label, target=case.target)
        benchmark.pedantic(step, rounds=ROUNDS, iterations=_iterations(step), warmup_rounds=1)
        if step.skipped is not None:
            benchmark.extra_info["skipped_steps"] = step.skipped

    return _run


@pytest.mark.parametrize("case", MLP_CASES, ids=[c.key for c in MLP_CASES])
def test_mlp_step(run_step, case):
    run_step("mlp", case)


@pytest.mark.parametrize("case", CNN_CASES, ids=[c.key for c in CNN_CASES])
def test_cnn_step(run_step, case):
    run_step("cnn", case)
