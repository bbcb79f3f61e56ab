"""Per-addition accumulation (lp.sum / lp.dot / lp.matmul) against the exact Fraction reference,
the deterministic swamping facts, stochastic accumulation statistics, specials and bad input."""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

import lowprec as lp
from lowprec import _accum_reference as R
from lowprec.accum import AccumModel

MODES = ["nearest", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic", "stochastic_equal"]
ACCS = ["e6m9", "bf16", "fp16", "e4m3", "e5m2", "tf32", "fp32"]
ORDERS = [{}, {"chunk": 3}, {"chunk": 7}, {"order": "pairwise"}]


def bits(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.uint64 if x.dtype == np.float64 else np.uint32)


def assert_bits(got, exp) -> None:
    got, exp = np.asarray(got), np.asarray(exp, dtype=np.asarray(got).dtype)
    nan = np.isnan(got) & np.isnan(exp)
    bad = (bits(got) != bits(exp)) & ~nan
    assert not bad.any(), f"{bad.sum()} of {bad.size} differ: got {got[bad][:5]}, expected {exp[bad][:5]}"


def operands(rng, dt, shape, spread=8):
    a = lp.quantize((rng.standard_normal(shape) * 4).astype(dt), "e5m2", saturate=True)
    b = rng.standard_normal(shape) * 2.0 ** rng.integers(-spread, spread, shape)
    return a, lp.quantize(b.astype(dt), "e4m3", saturate=True)


def reference_rows(a, b, c, m, seed):
    return np.array(
        [R.accumulate(list(a[r]), None if c is None else float(c[r]), m, seed, r, list(b[r])) for r in range(len(a))]
    )


@pytest.mark.parametrize("acc,mode,order", list(itertools.product(ACCS, MODES, range(len(ORDERS)))))
def test_dot_equals_exact_reference(acc, mode, order):
    rng = np.random.default_rng(zlib.crc32(f"{acc}/{mode}/{order}".encode()))  # fixed across runs
    m = AccumModel(acc=acc, rounding=mode, a_format="e5m2", b_format="e4m3", **ORDERS[order])
    for dt in (np.float32, np.float64):
        K = int(rng.integers(0, 24))
        a, b = operands(rng, dt, (6, K))
        c = rng.standard_normal(6).astype(dt)
        got = lp.dot(a, b, c=c, model=m, seed=11)
        assert_bits(got, reference_rows(a, b, c, m, 11))


OPTIONS = [
    (mode, extra)
    for mode in ("nearest", "toward_zero", "stochastic")
    for extra in ({"product_format": "e5m2"}, {"saturate": True})
] + [("stochastic", {"sr_bits": 4})]


@pytest.mark.parametrize("mode,extra", OPTIONS)
def test_options_equal_reference(mode, extra):
    rng = np.random.default_rng(3)
    m = AccumModel(acc="e5m2", rounding=mode, chunk=4, **extra)
    a, b = operands(rng, np.float32, (8, 21), spread=12)
    got = lp.dot(a, b, model=m, seed=2)
    assert_bits(got, reference_rows(a, b, None, m, 2))


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("order", [{}, {"chunk": 4}, {"order": "pairwise"}])
def test_stochastic_steps_at_range_edges_equal_reference(order, saturate):
    """Exact stochastic rounding on float64 lanes takes a short form while every sum of a step is a
    finite normal value of the accumulator and does not overflow it; other steps take the general
    one. Here 20 rows (two panels of 16) mix both in one step: sums through e5m2's subnormal range,
    exact zeros, overflow past e5m2's max (to inf, or saturated) and ordinary sums."""
    rng = np.random.default_rng(zlib.crc32(f"{order}/{saturate}".encode()))
    m = AccumModel(acc="e5m2", rounding="stochastic", saturate=saturate, **order)
    K = 40
    scale = 2.0 ** rng.choice([-16, -13, 0, 6, 14], size=(20, 1))  # per row: subnormal .. overflowing
    a = lp.quantize(rng.standard_normal((20, K)) * scale, "e5m2", saturate=True)
    b = lp.quantize(rng.choice([-1.0, 1.0, 0.5], size=(20, K)), "e5m2")
    a[3, ::2] = -a[3, 1::2]  # pairs that cancel exactly
    b[3] = 1.0
    got = lp.dot(a, b, model=m, seed=13)
    assert_bits(got, reference_rows(a, b, None, m, 13))
    assert np.isinf(got).any() != saturate and (got == 0).any()


@pytest.mark.parametrize("order", [{}, {"order": "pairwise"}])  # pairwise: sums of two terms -0 + -0
@pytest.mark.parametrize("acc", ["e5m2", "e5m2fnuz"])
def test_stochastic_zero_sums_keep_the_formats_sign_of_zero(acc, order):
    x = np.full((16, 8), -0.0)
    x[::3] = 0.0
    m = AccumModel(acc=acc, rounding="stochastic", **order)
    got = lp.sum(x, model=m, c=-0.0, seed=1)
    assert not got.any()
    assert np.array_equal(np.signbit(got), np.signbit(x[:, 0]) & (acc == "e5m2"))  # fnuz has no -0
    assert_bits(got, [R.accumulate(list(r), -0.0, m, 1, i) for i, r in enumerate(x)])


@pytest.mark.parametrize("mode", ["nearest", "stochastic"])
def test_long_chunked_sum_equals_reference(mode):
    # K >= 4 chunks and few rows: chunks run in parallel lanes, then the merges (same result)
    rng = np.random.default_rng(4)
    x = lp.quantize(rng.random((2, 1000)), "e6m9")
    m = AccumModel(acc="e6m9", rounding=mode, chunk=64)
    got = lp.sum(x, model=m, seed=9, c=[0.5, 2.0])
    exp = [R.accumulate(list(x[r]), [0.5, 2.0][r], m, 9, r) for r in range(2)]
    assert_bits(got, exp)


@pytest.mark.parametrize("mode", ["nearest", "up", "stochastic"])
@pytest.mark.parametrize("order", [{}, {"chunk": 5}, {"order": "pairwise"}])
def test_matmul_equals_reference(mode, order):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((2, 3, 13)).astype(np.float32)
    B = rng.standard_normal((13, 20)).astype(np.float32)  # shared over the batch
    C = rng.standard_normal((3, 20)).astype(np.float32)
    m = AccumModel(acc="bf16", rounding=mode, a_format="e4m3fn", b_format="e5m2", **order)
    got = lp.matmul(A, B, c=C, model=m, seed=4)
    Aq = lp.quantize(A, "e4m3fn")
    Bq = lp.quantize(B, "e5m2")
    exp = np.empty_like(got)
    for bi, i, j in itertools.product(range(2), range(3), range(20)):
        o = (bi * 3 + i) * 20 + j
        exp[bi, i, j] = R.accumulate(list(Aq[bi, i]), float(C[i, j]), m, 4, o, list(Bq[:, j]))
    assert_bits(got, exp)


def test_matmul_shapes_follow_numpy():
    rng = np.random.default_rng(6)
    A = lp.quantize(rng.standard_normal((4, 1, 5, 6)), "e5m2")
    B = lp.quantize(rng.standard_normal((3, 6, 2)), "e5m2")
    got = lp.matmul(A, B, acc="fp32")
    assert got.shape == (4, 3, 5, 2)
    np.testing.assert_array_equal(got, np.matmul(A, B))  # small exact products: fp32 sums are exact here
    v = lp.quantize(rng.standard_normal(6), "e5m2")
    assert lp.matmul(v, v, acc="fp32") == pytest.approx(float(v @ v))
    assert lp.matmul(A[0, 0], v, acc="fp32").shape == (5,)
    assert lp.matmul(v, B[0], acc="fp32").shape == (2,)


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((70, 90)).astype(np.float32)
    B = rng.standard_normal((90, 40)).astype(np.float32)
    kw = dict(a_format="e5m2", b_format="e5m2", acc="e6m9", chunk=16, rounding="stochastic", seed=3)
    assert_bits(lp.matmul(A, B, n_threads=1, **kw), lp.matmul(A, B, n_threads=2, **kw))
    x = rng.random(200_000).astype(np.float32)
    assert_bits(lp.sum(x, acc="e6m9", chunk=64, n_threads=1), lp.sum(x, acc="e6m9", chunk=64, n_threads=2))


def test_same_seed_same_result_other_seed_other_result():
    x = lp.quantize(np.random.default_rng(8).random((64, 500)), "e6m9")
    r1 = lp.sum(x, acc="e6m9", rounding="stochastic", seed=1)
    assert_bits(r1, lp.sum(x, acc="e6m9", rounding="stochastic", seed=1))
    assert not np.array_equal(r1, lp.sum(x, acc="e6m9", rounding="stochastic", seed=2))


# --- deterministic swamping facts (specs/fp8-training.md section 4) --------------------------------
def test_plain_e6m9_sum_stalls_at_1024():
    x = lp.quantize(np.random.default_rng(0).random(5000), "e6m9")
    assert lp.sum(x, acc="e6m9") == 1024.0
    assert lp.sum(x[:4000], acc="e6m9") == 1024.0  # reached after ~2000-2500 terms


def test_chunk64_e6m9_sum_stalls_at_65536():
    x = lp.quantize(np.random.default_rng(1).random(300_000), "e6m9")
    assert lp.sum(x, acc="e6m9", chunk=64) == 65536.0
    assert lp.sum(x, profile="ibm-fp8-2018") == 65536.0  # the profile sums terms x * 1 alike


def test_rne_loses_small_updates_sr_keeps_them():
    # w = 1 in (1,6,9) has half-ulp 2^-10: adding 2^-13 ten thousand times leaves 1.0 under RNE.
    terms = np.full((1, 10_000), 2.0**-13)
    assert lp.sum(terms, acc="e6m9", c=1.0)[0] == 1.0
    # Under SR the expectation is exact: 1 + 10^4 * 2^-13 = 2.2207. The 20 runs form a martingale
    # with steps bounded by one ulp <= 2^-8; Azuma: P(|mean - 2.2207| >= 0.5) <= 2 exp(-(20*0.5)^2 /
    # (2 * 2e5 * 2^-16)) < 1e-6.
    runs = lp.sum(np.repeat(terms, 20, axis=0), acc="e6m9", c=1.0, rounding="stochastic", seed=12)
    assert abs(runs.mean() - (1 + 10_000 * 2.0**-13)) < 0.5


def test_stochastic_addition_is_unbiased():
    # 1 + 3 * 2^-12 in (1,6,9) (ulp 2^-9 above 1): up with probability exactly 3/8.
    n = 100_000
    x = np.tile([1.0, 3 * 2.0**-12], (n, 1))
    r = lp.sum(x, acc="e6m9", rounding="stochastic", seed=5)
    assert set(np.unique(r)) <= {1.0, 1.0 + 2.0**-9}
    p = np.mean(r > 1.0)
    # Hoeffding: P(|p - 3/8| >= 0.0085) <= 2 exp(-2 n 0.0085^2) < 1e-6
    assert abs(p - 0.375) < 0.0085


# --- specials, output format, c ------------------------------------------------------------------
def test_specials_and_overflow():
    inf, nan = math.inf, math.nan
    assert lp.sum(np.array([1.0, inf, 2.0]), acc="e6m9") == inf
    assert math.isnan(lp.sum(np.array([inf, -inf]), acc="e6m9"))
    assert math.isnan(lp.sum(np.array([1.0, nan]), acc="bf16"))
    big = lp.format("e5m2").max
    assert lp.sum(np.array([big, big]), acc="e5m2") == inf
    assert lp.sum(np.array([big, big]), model=AccumModel(acc="e5m2", saturate=True)) == big
    assert lp.sum(np.array([big, big]), acc="e5m2", rounding="toward_zero") == big  # RZ never overflows


def test_out_format_and_addend():
    x = np.array([[0.1, 0.2, 0.3]])
    got = lp.sum(x, acc="fp32", c=1.0, out_format="e4m3fn")
    s32 = np.float32(1.0)
    for t in (0.1, 0.2, 0.3):
        s32 = np.float32(s32 + np.float32(t))  # fp32 additions, round to nearest
    s32 = float(s32)
    assert got[0] == lp.quantize(s32, "e4m3fn")
    assert lp.sum(np.zeros((2, 0)), acc="fp16", c=[0.1, -2.0]).tolist() == [float(lp.quantize(0.1, "fp16")), -2.0]


def test_float32_storage_matches_float64_storage():
    rng = np.random.default_rng(9)
    a, b = operands(rng, np.float64, (10, 40))
    kw = dict(acc="bf16", chunk=8, rounding="stochastic", seed=6)
    r64 = lp.dot(a, b, **kw)
    r32 = lp.dot(a.astype(np.float32), b.astype(np.float32), **kw)
    assert_bits(r32, r64.astype(np.float32))


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: lp.dot(np.ones(3), np.ones(4)), ValueError, "different lengths"),
        (lambda: lp.matmul(np.ones((2, 3)), np.ones((4, 2))), ValueError, "K = 3 vs 4"),
        (lambda: lp.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))), ValueError, "do not broadcast"),
        (lambda: lp.sum(np.ones(3), chunk=0), ValueError, "chunk must be >= 1"),
        (lambda: lp.sum(np.ones(3), chunk=-4), ValueError, "chunk"),
        (lambda: lp.sum(np.ones(3), chunk=2.5), TypeError, "chunk must be an int"),
        (lambda: lp.sum(np.ones(3), order="zigzag"), ValueError, "order must be one of"),
        (lambda: lp.sum(np.ones(3), order="pairwise", chunk=4), ValueError, "chunk applies"),
        (lambda: lp.sum(np.ones(3), order="chunked"), ValueError, "needs chunk"),
        (lambda: lp.sum(np.ones(3), profile="nvidia-z900-fp8"), ValueError, "unknown profile"),
        (lambda: lp.sum(np.ones(3), profile="ibm-fp8-2018", acc="fp16"), ValueError, "fixes acc"),
        (lambda: lp.sum(np.ones(3), acc="nope"), ValueError, "unknown format"),
        (lambda: lp.sum(np.ones(3), acc="int8"), TypeError, "acc must be a floating-point format"),
        (lambda: lp.sum(np.ones(3), acc="fp64"), ValueError, "at most 51"),
        (lambda: lp.sum(np.ones(3, np.float32), acc="e11m40"), ValueError, "float32 inputs allow at most 23"),
        (lambda: lp.sum(np.ones(3), rounding="sideways"), ValueError, "rounding"),
        (lambda: lp.sum(np.ones(3, np.int32)), TypeError, "x must be a float32 or float64"),
        (lambda: lp.sum(np.ones(3), axis=1), ValueError, "axis 1 is out of range"),
        (lambda: lp.sum(np.ones((2, 3)), c=np.ones(3)), ValueError, "does not broadcast"),
        (lambda: lp.sum(np.float64(1.0)), ValueError, "at least one dimension"),
        (lambda: lp.dot(np.ones(3), np.ones(3, np.float32)), TypeError, "same dtype"),
        (lambda: lp.dot(np.full(3, 0.1), np.full(3, 0.3)), ValueError, "not exact in float64"),
        (lambda: lp.sum(np.ones(3), model="fp16"), TypeError, "model must be"),
        (lambda: lp.sum(np.ones(3), model=AccumModel(), profile="ibm-fp8-2018"), ValueError, "either model"),
        (lambda: lp.sum(np.ones(3), n_threads=0), ValueError, "n_threads"),
        (lambda: lp.sum(np.ones(3), seed=-1), ValueError, "seed"),
        (lambda: AccumModel(sr_bits=4), ValueError, "sr_bits"),
        (lambda: AccumModel(saturate=1), TypeError, "saturate"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_inputs_are_not_modified():
    rng = np.random.default_rng(10)
    A = rng.standard_normal((5, 7)).astype(np.float32)
    B = rng.standard_normal((7, 3)).astype(np.float32)
    C = rng.standard_normal((5, 3)).astype(np.float32)
    copies = [A.copy(), B.copy(), C.copy()]
    lp.matmul(A, B, c=C, a_format="e4m3fn", b_format="e4m3fn", acc="e6m9", chunk=2)
    lp.matmul(A, B, c=C, profile="nvidia-h100-fp8")
    lp.sum(A, c=C[:, 0], acc="bf16", chunk=3)
    for before, after in zip(copies, (A, B, C), strict=True):
        assert_bits(after, before)


def test_model_round_trip_through_dict():
    m = AccumModel(
        acc="e6m9",
        rounding="stochastic",
        chunk=64,
        a_format="e5m2",
        b_format="mxfp8_e4m3",
        product_format="bf16",
        out_format="e4m3fn",
        sr_bits=8,
    )
    assert AccumModel(**m.to_dict()) == m
    bf = lp.load_profile("nvidia-b200-fp8").model()
    assert lp.BlockFMA(**bf.to_dict()) == bf
