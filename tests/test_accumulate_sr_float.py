"""Exact stochastic accumulation on float lanes (kernel level 1) against double lanes (level 0) and
the Fraction reference, bit for bit.

Float lanes take a short form for steps whose sum is exact in float and a normal value of the
accumulator; every other step (inexact float sums, subnormal results, overflow, specials) is redone
on double lanes. The cases below mix both inside one run of steps and one panel of 16 lanes."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import test_accumulate_lean as lean
from conftest import assert_same_bits

import lowprec as lp
from lowprec import _accum_reference as R
from lowprec import _accumulate as acc_mod
from lowprec.accum import AccumModel

# e6m16, e7m20: few discarded bits (7, 3), so that a step whose float sum is inexact would mostly
# change the result if it were not redone on double lanes (the public calls keep such accumulators
# on double lanes for these terms; the kernel must be exact either way)
ACCS = ["e6m9", "fp16", "e5m2", "e4m3", "e5m2fnuz", "e6m16", "e7m20"]
ORDERS = [{}, {"chunk": 3}, {"chunk": 64}]
# 1: ordinary; 2^-20: sums near and below the accumulators' smallest normals; 2^9: overflow
SCALES = [1.0, 2.0**-20, 2.0**9]
KEY = 0x243F6A8885A308D3


def assert_same(got: np.ndarray, exp) -> None:
    assert_same_bits(got, np.asarray(exp).astype(got.dtype))


def matmul_level(A, B, C, m: AccumModel, level: int) -> np.ndarray:
    return lean.matmul_level(A, B, C, m, level, KEY)


def rows_level(X, C, m: AccumModel, level: int) -> np.ndarray:
    return lean.rows_level(X, C, m, level, KEY)


def operands(rng, shape_a, shape_b, scale):
    """e5m2 x e4m3 operands (7-bit products); a few columns of B span 2^-12 .. 2^12, so that their
    float sums are often inexact (the double form)."""
    A = lp.quantize((rng.standard_normal(shape_a) * scale).astype(np.float32), "e5m2", saturate=True)
    B = rng.standard_normal(shape_b).astype(np.float32)
    B[:, ::5] *= 2.0 ** rng.integers(-12, 12, (shape_b[0], len(range(0, shape_b[1], 5))))
    return A, lp.quantize(B, "e4m3", saturate=True)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("acc,order,scale", list(itertools.product(ACCS, range(len(ORDERS)), SCALES)))
def test_matmul_float_lanes_equal_double_lanes(isa, acc, order, scale, saturate):
    rng = np.random.default_rng(zlib.crc32(f"{acc}/{order}/{scale}/{saturate}".encode()))  # fixed across runs
    m = AccumModel(acc=acc, rounding="stochastic", saturate=saturate, **ORDERS[order])
    M, K, N = 13, int(rng.integers(60, 140)), 37  # partial column panels
    A, B = operands(rng, (M, K), (K, N), scale)
    C = (rng.standard_normal((M, N)) * scale).astype(np.float32)  # rounded in the kernel (step 0)
    C[0, :3] = [-0.0, np.inf, np.nan]
    expect_level = 1 if lp.format(acc).precision <= 17 else 0  # 7-bit products: 24 - p >= 7
    assert acc_mod._fast_level(m, np.dtype(np.float32), A, B) == expect_level
    exp = matmul_level(A.astype(np.float64), B.astype(np.float64), C.astype(np.float64), m, 0)
    assert_same(matmul_level(A, B, C, m, 1), exp)
    assert_same(matmul_level(A.astype(np.float64), B.astype(np.float64), C.astype(np.float64), m, 1), exp)


# 150 rows: ten panels of 16 lanes; 11 rows: one partial panel
@pytest.mark.parametrize("rows", [150, 11])
@pytest.mark.parametrize("acc,order,scale", list(itertools.product(ACCS, range(len(ORDERS)), SCALES)))
def test_rows_float_lanes_equal_double_lanes(isa, acc, order, scale, rows):
    rng = np.random.default_rng(zlib.crc32(f"{acc}/{order}/{scale}/rows".encode()))
    m = AccumModel(acc=acc, rounding="stochastic", **ORDERS[order])
    X = lp.quantize((rng.standard_normal((rows, int(rng.integers(1, 200)))) * scale).astype(np.float32), "bf16")
    X[rng.random(X.shape) < 0.05] *= 2.0**-12  # terms far below the sum: inexact float sums
    X[rng.random(X.shape) < 0.02] = 0.0
    C = (rng.standard_normal(rows) * scale).astype(np.float32)
    exp = rows_level(X.astype(np.float64), C.astype(np.float64), m, 0)
    assert_same(rows_level(X, C, m, 1), exp)


@pytest.mark.parametrize("order", [{}, {"chunk": 4}])
def test_float_lanes_equal_reference(order):
    """The public calls take float lanes here and equal the exact Fraction reference."""
    rng = np.random.default_rng(zlib.crc32(f"ref/{order}".encode()))
    m = AccumModel(acc="e5m2", rounding="stochastic", a_format="e5m2", b_format="e4m3", **order)
    scale = 2.0 ** rng.choice([-14, -8, 0, 5, 13], size=(20, 1))  # per row: subnormal .. overflowing
    a, b = operands(rng, (20, 40), (20, 40), 1.0)
    a = lp.quantize((a * scale).astype(np.float32), "e5m2", saturate=True)
    c = rng.standard_normal(20).astype(np.float32)
    assert acc_mod._fast_level(m, np.dtype(np.float32), a, b) == 1
    got = lp.dot(a, b, c=c, model=m, seed=21)
    exp = [R.accumulate(list(a[r]), float(c[r]), m, 21, r, list(b[r])) for r in range(20)]
    assert_same(got, exp)


def test_c_not_exact_in_float_takes_double_lanes():
    m = AccumModel(acc="e6m9", rounding="stochastic", chunk=8)
    C64 = np.array([1.0 + 2.0**-40, 3.0])
    assert acc_mod._float_lanes_c(1, C64, m)[0] == 0  # c's low bits matter to its rounding
    assert acc_mod._float_lanes_c(1, C64.astype(np.float32).astype(np.float64), m)[0] == 1
    x = lp.quantize(np.random.default_rng(1).standard_normal((2, 30)), "e5m2")
    got = lp.sum(x, c=C64, model=m, seed=4)
    assert_same(got, [R.accumulate(list(x[r]), float(C64[r]), m, 4, r) for r in range(2)])


def test_matmul_benchmark_case_equals_double_lanes(monkeypatch):
    """The benchmark's case (e5m2 operands, e6m9 chunk-64 stochastic accumulation), batched, through
    the public call, against the same call held to double lanes."""
    rng = np.random.default_rng(8)
    A = rng.standard_normal((2, 40, 300)).astype(np.float32)
    B = rng.standard_normal((300, 45)).astype(np.float32)
    kw = dict(a_format="e5m2", b_format="e5m2", acc="e6m9", chunk=64, rounding="stochastic", seed=3)
    got = lp.matmul(A, B, **kw)
    monkeypatch.setattr(acc_mod, "_stochastic_float_ok", lambda m: False)
    assert_same(got, lp.matmul(A, B, **kw))
