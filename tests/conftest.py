"""Shared inputs and comparison helpers for the test suite."""

from __future__ import annotations

import numpy as np
import pytest

import lowprec as lp
from lowprec._native import core

# Catalogue float formats that quantize float32 arrays (fp64 needs float64 inputs).
FLOAT_FORMATS = [n for n, f in lp.catalogue().items() if isinstance(f, lp.FloatFormat) and n != "fp64"]
SMALL_FORMATS = [n for n in FLOAT_FORMATS if lp.format(n).bits <= 16]


@pytest.fixture(params=core.isa_available())
def isa(request):
    """Each instruction set this machine runs, made the active one for the test."""
    before = core.isa()
    core.set_isa(request.param)
    yield request.param
    core.set_isa(before)


def as_bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(actual: np.ndarray, expected: np.ndarray, inputs: np.ndarray | None = None) -> None:
    """Bit-for-bit equality; NaNs match any NaN (payload aside)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    same = as_bits(actual) == as_bits(expected)
    if actual.dtype.kind == "f":
        same |= np.isnan(actual) & np.isnan(expected)
    if not same.all():
        i = np.flatnonzero(~same.ravel())[:5]
        where = "" if inputs is None else f" inputs {np.asarray(inputs).ravel()[i].tolist()}"
        raise AssertionError(
            f"{(~same).sum()} of {same.size} differ:{where} got {actual.ravel()[i].tolist()} "
            f"expected {expected.ravel()[i].tolist()}"
        )


def edge_values(fmt: lp.FloatFormat) -> np.ndarray:
    """Values around a format's thresholds: max, overflow midpoint, min normal, subnormal ties."""
    m = fmt.man_bits
    pts = [fmt.max, fmt.min_normal, fmt.min_subnormal, 1.0, 1.0 + fmt.eps, 1.0 + fmt.eps / 2]
    pts += [fmt.max + fmt.max * 2.0 ** -(m + 1), fmt.max * (1 + 2.0 ** -(m + 2)), fmt.max * 2]
    pts += [fmt.min_subnormal * k / 2 for k in range(0, 9)]
    pts += [fmt.min_normal * (1 - 2.0 ** -(m + 1)), fmt.min_normal * (1 - 2.0 ** -(m + 2))]
    base = np.array(pts, dtype=np.float64)
    near = np.concatenate([np.nextafter(base, np.inf), np.nextafter(base, -np.inf), base])
    near = np.concatenate([near, -near, [0.0, -0.0, np.inf, -np.inf, np.nan]])
    return near


@pytest.fixture(scope="session")
def f32_inputs() -> np.ndarray:
    """All 65,536 float16 patterns, 10^6 random float32 bit patterns (every binade, NaN and inf
    included) and the edge values of every catalogue format."""
    rng = np.random.default_rng(20261121)
    half = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)
    rand = rng.integers(0, 2**32, 10**6, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edges = np.concatenate([edge_values(lp.format(n)) for n in SMALL_FORMATS]).astype(np.float32)
    return np.concatenate([half, rand, edges])


@pytest.fixture(scope="session")
def f64_inputs() -> np.ndarray:
    """Random float64 over exponents [-160, 160] with full 53-bit significands, plus edges."""
    rng = np.random.default_rng(7)
    n = 300_000
    sig = 1.0 + rng.integers(0, 2**52, n, dtype=np.uint64).astype(np.float64) / 2.0**52
    x = np.ldexp(sig, rng.integers(-160, 161, n)) * rng.choice([-1.0, 1.0], n)
    edges = np.concatenate([edge_values(lp.format(n)) for n in SMALL_FORMATS])
    return np.concatenate([x, edges])


def pytest_generate_tests(metafunc):
    if "kernel_isa" in metafunc.fixturenames:
        from lowprec._native import core

        metafunc.parametrize("kernel_isa", core.isa_available())


@pytest.fixture
def use_isa(kernel_isa):
    """Run the test with one kernel instruction set, then restore the best one."""
    lp.set_isa(kernel_isa)
    yield kernel_isa
    lp.set_isa("best")
