"""The nearest-even float tiles (csrc/include/lowprec/accumulate_lean.hpp) against the general
kernels and the exact Fraction reference, bit for bit, on every instruction set this CPU runs:
narrow and full-precision terms, the accumulator's subnormal range, overflow and specials (which
send a tile back to the general kernel), signed zeros, and the level lowprec picks."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

import lowprec as lp
from lowprec import _accum_reference as R
from lowprec import _accumulate as acc_mod
from lowprec._native import core
from lowprec.accum import AccumModel

ACCS = ["e6m9", "bf16", "fp16", "tf32", "e5m2", "e4m3"]
ORDERS = [{}, {"chunk": 3}, {"chunk": 64}]
# 1: ordinary; 2^-33: sums in e6m9's subnormal range; 2^13: e6m9 / fp16 / e5m2 overflow
SCALES = [1.0, 2.0**-33, 2.0**13]


def bits(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.uint64 if x.dtype == np.float64 else np.uint32)


def assert_same(got: np.ndarray, exp: np.ndarray) -> None:
    exp = np.asarray(exp).astype(got.dtype)
    bad = (bits(got) != bits(exp)) & ~(np.isnan(got) & np.isnan(exp))
    assert not bad.any(), f"{bad.sum()} of {bad.size} differ: got {got[bad][:4]}, expected {exp[bad][:4]}"


def matmul_level(A, B, C, m: AccumModel, level: int, key: int = 0) -> np.ndarray:
    """The kernel at a given level (0: double lanes, 1: general float, 2/3: float tiles); key: the
    accumulator stream's (stochastic modes)."""
    M, K = A.shape
    N = B.shape[1]
    out = np.empty((M, N), A.dtype)
    core.accum_matmul(
        A.reshape(-1), B.reshape(-1), None if C is None else C.reshape(-1), out.reshape(-1), 1, M, N, K, 0, 0,
        M * N, acc_mod._acc_tuple(m, key), acc_mod._prod_tuple(m, key), 0, acc_mod._ORDER_CODES[m.order],
        m.chunk or 0, m.steps(K), level, 2,
    )  # fmt: skip
    return out


def rows_level(X, C, m: AccumModel, level: int, key: int = 0) -> np.ndarray:
    R_, K = X.shape
    out = np.empty(R_, X.dtype)
    S = m.steps(K)
    core.accum_rows(
        X.reshape(-1), None, C, out, R_, K, (0, S, 1, S, 0, K), acc_mod._acc_tuple(m, key),
        acc_mod._prod_tuple(m, key), 0, acc_mod._ORDER_CODES[m.order], m.chunk or 0, level, 2,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("acc,order,scale", list(itertools.product(ACCS, range(len(ORDERS)), SCALES)))
def test_matmul_tiles_equal_general_kernel(isa, acc, order, scale):
    rng = np.random.default_rng(zlib.crc32(f"{acc}/{order}/{scale}".encode()))  # fixed across runs
    m = AccumModel(acc=acc, **ORDERS[order])
    M, K, N = 13, int(rng.integers(60, 140)), 37  # partial row tiles and column panels
    A = lp.quantize((rng.standard_normal((M, K)) * scale).astype(np.float32), "e5m2", saturate=True)
    B = lp.quantize(rng.standard_normal((K, N)).astype(np.float32) * 2.0 ** rng.integers(-5, 5, (K, N)), "e4m3")
    B = B.astype(np.float32)
    C = lp.quantize((rng.standard_normal((M, N)) * scale).astype(np.float32), acc, saturate=True)
    level = acc_mod._fast_level(m, np.dtype(np.float32), A, B)
    assert level == (3 if lp.format(acc).precision >= 7 else 2)  # products of e5m2 x e4m3 have 7 bits
    exp = matmul_level(A.astype(np.float64), B.astype(np.float64), C.astype(np.float64), m, 0)
    for lv in range(1, level + 1):
        assert_same(matmul_level(A, B, C, m, lv), exp)


# 150 rows: full tiles of 96 lanes and a partial one; 11 rows: one narrow group of 16 lanes
@pytest.mark.parametrize("rows", [150, 11])
@pytest.mark.parametrize("acc,order,scale", list(itertools.product(ACCS, range(len(ORDERS)), SCALES)))
def test_row_tiles_equal_general_kernel(isa, acc, order, scale, rows):
    rng = np.random.default_rng(zlib.crc32(f"{acc}/{order}/{scale}/rows".encode()))
    m = AccumModel(acc=acc, **ORDERS[order])
    X = (rng.standard_normal((rows, int(rng.integers(1, 200)))) * scale).astype(np.float32)  # 24-bit terms
    X[rng.random(X.shape) < 0.3] *= 2.0**-14
    C = lp.quantize((rng.standard_normal(rows) * scale).astype(np.float32), acc, saturate=True)
    assert acc_mod._fast_level(m, np.dtype(np.float32), X, None) == 2
    exp = rows_level(X.astype(np.float64), C.astype(np.float64), m, 0)
    for lv in (1, 2):
        assert_same(rows_level(X, C, m, lv), exp)
    Xn = lp.quantize(X, "e3m2")  # terms narrower than the accumulator: plain float sums
    if lp.format(acc).precision >= 3 and lp.format(acc).precision <= 11:
        assert acc_mod._fast_level(m, np.dtype(np.float32), Xn, None) == 3
        assert_same(rows_level(Xn, C, m, 3), rows_level(Xn.astype(np.float64), C.astype(np.float64), m, 0))


def test_tie_created_by_a_float_sum_is_resolved(isa):
    # 1 + 2^-10 is a midpoint of e6m9's grid; 2^-35 added to it must round up, but the float sum
    # 1 + 2^-10 + 2^-35 is the midpoint itself (the float tiles round the sum to odd first)
    m = AccumModel(acc="e6m9")
    X = np.array([[2.0**-35, 1 + 2.0**-10], [-(2.0**-35), 1 + 2.0**-10]], np.float32)
    got = rows_level(X, None, m, 2)
    assert got.tolist() == [1 + 2.0**-9, 1.0]
    assert_same(got, [R.accumulate(list(map(float, r)), None, m, 0, i) for i, r in enumerate(X)])


def test_signed_zeros_and_specials_equal_reference(isa):
    m = AccumModel(acc="e6m9", chunk=2)
    X = np.array(
        [
            [-0.0, -0.0, -0.0],
            [-(2.0**-45), 0.0, -0.0],  # a negative sum below half the smallest subnormal: -0
            [1.0, -1.0, -0.0],  # x + (-x) is +0
            [np.inf, 1.0, 2.0],
            [np.nan, 1.0, 2.0],
            [np.inf, -np.inf, 1.0],
            [2.0**31, 2.0**31, 2.0**31],  # overflow of e6m9
        ],
        np.float32,
    )
    X = np.repeat(X, 10, axis=0)  # several tiles, each with a special row
    exp = rows_level(X.astype(np.float64), None, m, 0)  # the general kernel (the reference takes finite terms)
    fin = np.isfinite(X).all(axis=1)
    assert_same(exp[fin], [R.accumulate(list(map(float, r)), None, m, 0, 0) for r in X[fin]])
    assert_same(rows_level(X, None, m, 2), exp)
    assert_same(lp.sum(X, model=m), exp)
    # a negative sum rounded to zero keeps its sign; -0 + -0 is -0 (the model starts from +0 or c)
    seq = AccumModel(acc="e6m9")
    tiny = rows_level(np.array([[-(2.0**-45)], [-0.0]], np.float32), np.array([0.0, -0.0], np.float32), seq, 3)
    assert bits(tiny).tolist() == [0x80000000, 0x80000000]


def test_overflowing_tile_does_not_change_other_tiles(isa):
    rng = np.random.default_rng(7)
    A = lp.quantize(rng.standard_normal((20, 64)).astype(np.float32), "e5m2")
    B = lp.quantize(rng.standard_normal((64, 20)).astype(np.float32), "e5m2")
    A[9, :] = 57344.0  # row 9 overflows e6m9's range (max about 4.3e9) in the even columns
    B[:, ::2] = 57344.0
    m = AccumModel(acc="e6m9", chunk=8, a_format="e5m2", b_format="e5m2")
    got = lp.matmul(A, B, model=m)
    assert np.isinf(got[9, ::2]).all() and np.isfinite(np.delete(got, 9, axis=0)).all()
    exp = np.array(
        [[R.accumulate(list(A[i]), None, m, 0, i * 20 + j, list(B[:, j])) for j in range(20)] for i in range(20)]
    )
    assert_same(got, exp)


def test_public_calls_use_the_tiles():
    rng = np.random.default_rng(0)
    a = lp.quantize(rng.standard_normal((4, 8)).astype(np.float32), "e5m2")
    b = lp.quantize(rng.standard_normal((8, 4)).astype(np.float32), "e5m2")
    f32 = np.dtype(np.float32)
    ibm = AccumModel(acc="e6m9", chunk=64, a_format="e5m2", b_format="e5m2")
    assert acc_mod._fast_level(ibm, f32, a, b) == 3
    assert acc_mod._fast_level(ibm.replace(order="pairwise", chunk=None), f32, a, b) == 1
    assert acc_mod._fast_level(ibm.replace(rounding="toward_zero"), f32, a, b) == 1
    sr = ibm.replace(rounding="stochastic")
    assert acc_mod._fast_level(sr, f32, a, b) == 1  # float lanes, short form (test_accumulate_sr_float.py)
    assert acc_mod._fast_level(sr.replace(order="pairwise", chunk=None), f32, a, b) == 0
    assert acc_mod._fast_level(sr.replace(sr_bits=8), f32, a, b) == 0
    assert acc_mod._fast_level(sr.replace(product_format="e5m2"), f32, a, b) == 0
    assert acc_mod._fast_level(sr.replace(acc="bf16"), f32, a, b) == 0  # emin -126: subnormals of float
    assert acc_mod._fast_level(sr.replace(a_format=None, b_format=None), f32, a * 1.1, b) == 0  # wide terms
    assert acc_mod._fast_level(ibm.replace(product_format="e5m2"), f32, a, b) == 1
    assert acc_mod._fast_level(ibm.replace(acc="fp32"), f32, a, b) == 0
    x = rng.standard_normal((2, 100)).astype(np.float32)
    assert acc_mod._fast_level(AccumModel(acc="e6m9", chunk=64), f32, x, None) == 2
