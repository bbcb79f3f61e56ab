"""Stochastic rounding: unbiased, exact probabilities, reproducible by (seed, flat index).

Bounds are Hoeffding bounds: for N independent draws in an interval of width u,
P(|mean - E| >= t) <= 2 exp(-2 N t^2 / u^2). Each bound below is set so that a correct
implementation fails with probability < 1e-6 over the choice of seed (union bound over cases).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import as_bits

import lowprec as lp

N = 1_000_000


def hoeffding_t(n: int, p_fail: float) -> float:
    """Half-width t (in units of the interval width) with P(|mean - E| >= t) <= p_fail."""
    return math.sqrt(math.log(2 / p_fail) / (2 * n))


DELTAS = [0.0, 1 / 1024, 0.1, 0.25, 0.3, 0.5, 0.7, 0.875, 0.999]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_of_rounding_up_equals_distance(dtype):
    a, u = 1.0, 0.125  # e4m3fn neighbours 1 and 1.125
    t = hoeffding_t(N, 1e-6 / (2 * len(DELTAS)))
    for i, d in enumerate(DELTAS):
        x = np.full(N, a + d * u, dtype)
        r = lp.quantize(x, "e4m3fn", "stochastic", seed=100 + i)
        assert set(np.unique(r).tolist()) <= {1.0, 1.125}
        freq = (r == 1.125).mean()
        assert abs(freq - float(np.asarray(a + d * u, dtype) - a) / u) < t, (d, freq)


def test_unbiased_in_subnormal_range_and_negative():
    fmt = lp.format("e5m2")
    u = fmt.min_subnormal
    t = hoeffding_t(N, 1e-6 / 4)
    for i, x0 in enumerate([0.37 * u, -2.61 * u, 1000.3, -7.77e-5]):
        x = np.full(N, x0)
        r = lp.quantize(x, fmt, "stochastic", seed=i)
        lo, hi = np.unique(r)[[0, -1]]
        assert abs(r.mean() - x0) < t * (hi - lo)


@pytest.mark.parametrize(
    ("r", "d", "p"), [(1, 0.3, 0.5), (2, 0.3, 0.25), (2, 0.125, 0.0), (3, 0.3, 0.25), (4, 0.96875, 1.0)]
)
def test_sr_bits_probability_is_rounded_to_r_bits(r, d, p):
    """P(up) = RNE(d * 2^r) / 2^r exactly (d = 0.125 with r = 2 is a tie: 0.5 -> 0)."""
    x = np.full(N, 1 + d * 0.125)
    got = (lp.quantize(x, "e4m3fn", "stochastic", sr_bits=r, seed=9) == 1.125).mean()
    assert abs(got - p) < hoeffding_t(N, 1e-6 / 5)
    if p in (0.0, 1.0):
        assert got == p


def test_stochastic_equal_is_a_fair_coin_on_inexact_values():
    x = np.full(N, 1 + 0.01 * 0.125)
    got = (lp.quantize(x, "e4m3fn", "stochastic_equal", seed=3) == 1.125).mean()
    assert abs(got - 0.5) < hoeffding_t(N, 1e-6)
    exact = np.full(1000, 1.125)
    assert (lp.quantize(exact, "e4m3fn", "stochastic_equal", seed=3) == 1.125).all()


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_bits_for_any_thread_count(mode, dtype):
    x = np.random.default_rng(0).standard_normal(3 * 2**18 + 17).astype(dtype)
    ref = lp.quantize(x, "e5m2", mode, seed=42, n_threads=1)
    for nt in (2, 3, 8):
        assert (as_bits(lp.quantize(x, "e5m2", mode, seed=42, n_threads=nt)) == as_bits(ref)).all()
    assert (
        as_bits(lp.encode(x, "e5m2", mode, seed=42, n_threads=2)) == lp.encode(x, "e5m2", mode, seed=42, n_threads=1)
    ).all()


def test_random_bits_depend_only_on_seed_and_index():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(2**17).astype(np.float32)
    y = x.copy()
    y[::2] = rng.standard_normal(y[::2].size)  # change every other element
    rx = lp.quantize(x, "bf16", "stochastic", seed=5)
    ry = lp.quantize(y, "bf16", "stochastic", seed=5)
    assert (as_bits(rx[1::2]) == as_bits(ry[1::2])).all()
    # layout does not matter: a Fortran-ordered or strided view rounds like its C-ordered copy
    m = x.reshape(256, 512)
    assert (
        as_bits(lp.quantize(m.T, "bf16", "stochastic", seed=5))
        == as_bits(lp.quantize(np.ascontiguousarray(m.T), "bf16", "stochastic", seed=5))
    ).all()


def test_different_seeds_differ_and_none_draws_fresh():
    x = np.full(10_000, 1 + 0.5 * 0.125)
    a = lp.quantize(x, "e4m3fn", "stochastic", seed=1)
    b = lp.quantize(x, "e4m3fn", "stochastic", seed=2)
    # each element differs with probability 1/2; fewer than 4000 of 10000 differing has p < 1e-6
    assert (a != b).sum() > 4000
    c = lp.quantize(x, "e4m3fn", "stochastic")
    d = lp.quantize(x, "e4m3fn", "stochastic")
    assert (c != d).sum() > 4000


def test_sr_overflow_probability():
    """Between max and max + ulp, SR overflows with probability delta (then the policy applies)."""
    fmt = lp.format("e5m2")
    x = np.full(N, 57344 + 0.25 * 8192)
    r = lp.quantize(x, fmt, "stochastic", seed=11)
    assert abs(np.isinf(r).mean() - 0.25) < hoeffding_t(N, 1e-6 / 2)
    rs = lp.quantize(x, fmt, "stochastic", seed=11, saturate=True)
    assert (rs == 57344).all()
