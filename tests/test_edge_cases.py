"""Exact test vectors from specs/formats.md (ties, overflow thresholds, directed modes, double rounding)."""

from __future__ import annotations

import numpy as np
import pytest

import lowprec as lp

P = 2.0  # powers of two written as P**k for readability


def q(x, fmt, rounding="nearest", dtype=np.float64, **kw):
    return lp.quantize(np.array(x, dtype=dtype), fmt, rounding, **kw).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_boundary_ties(dtype):
    assert q([P**-10, 1.5 * P**-10, 3 * P**-10, 5 * P**-10, 15 * P**-10], "e4m3fn", dtype=dtype) == [
        0.0,
        P**-9,
        P**-8,
        P**-8,
        P**-6,
    ]
    neg0 = lp.quantize(np.array([-(P**-11)], dtype), "e4m3fn")
    assert neg0[0] == 0 and np.signbit(neg0[0])
    assert lp.encode(np.array([-(P**-11)], dtype), "e4m3fn").tolist() == [0x80]
    assert q([1.0625, 1.1875], "e4m3fn", dtype=dtype) == [1.0, 1.25]
    assert q([P**-17, 1.5 * P**-17, 3 * P**-17], "e5m2", dtype=dtype) == [0.0, P**-16, P**-15]
    assert q([P**-25, 1.5 * P**-25, 3 * P**-25], "fp16", dtype=dtype) == [0.0, P**-24, P**-23]
    assert q([P**-134, 1.5 * P**-134], "bf16", dtype=np.float64) == [0.0, P**-133]
    assert q([0.25, 0.2501, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25], "e2m1fn", dtype=dtype) == [
        0.0,
        0.5,
        1.0,
        1.0,
        2.0,
        2.0,
        4.0,
        4.0,
        -0.0,
    ]


OVERFLOW = [
    # format, last value kept -> max, first overflow -> result (non-saturating, nearest)
    ("e4m3fn", 464.0, 448.0, 464.0001, np.nan),
    ("e5m2", 61439.0, 57344.0, 61440.0, np.inf),
    ("e4m3fnuz", 247.99, 240.0, 248.0, np.nan),
    ("e5m2fnuz", 61439.0, 57344.0, 61440.0, np.nan),
    ("e4m3", 247.0, 240.0, 248.0, np.inf),
    ("fp16", 65519.99, 65504.0, 65520.0, np.inf),
]


@pytest.mark.parametrize(("name", "kept", "maxv", "over", "result"), OVERFLOW, ids=[o[0] for o in OVERFLOW])
def test_overflow_thresholds(name, kept, maxv, over, result):
    got = q([kept, over, -over], name)
    assert got[0] == maxv
    if np.isnan(result):
        assert np.isnan(got[1]) and np.isnan(got[2])
    else:
        assert got[1:] == [result, -result]
    assert q([over, np.inf, -np.inf], name, saturate=True) == [maxv, maxv, -maxv]


def test_bf16_overflow_midpoint():
    mid = 3.3961776e38  # bf16 max + half an ulp, rounded to float32 (a tie)
    assert q([mid], "bf16", dtype=np.float32) == [np.inf]
    assert q([np.nextafter(np.float32(mid), 0)], "bf16", dtype=np.float32)[0] == lp.format("bf16").max


def test_formats_without_inf_always_saturate():
    assert q([7.75, 8, np.inf, -np.inf], "e2m3fn") == [7.5, 7.5, 7.5, -7.5]
    assert q([30, np.inf], "e3m2fn") == [28.0, 28.0]
    assert q([5.01, np.inf], "e2m1fn") == [6.0, 6.0]
    assert np.isnan(q([np.nan], "e2m1fn")[0])  # quantize propagates NaN
    with pytest.raises(ValueError, match="NaN"):
        lp.encode(np.array([np.nan]), "e2m1fn")


def test_nan_codes():
    x = np.array([np.nan, -np.nan])
    assert lp.encode(x, "e4m3fn").tolist() == [0x7F, 0xFF]
    assert lp.encode(x, "e5m2").tolist() == [0x7E, 0xFE]
    assert lp.encode(x, "e4m3fnuz").tolist() == [0x80, 0x80]
    assert lp.encode(np.array([-0.0, 0.0]), "e4m3fnuz").tolist() == [0, 0]
    assert lp.encode(np.array([-0.0]), "e4m3fn").tolist() == [0x80]


def test_directed_modes_and_overflow():
    big = [1e6, -1e6]
    assert q(big, "e5m2", "toward_zero") == [57344.0, -57344.0]
    assert q(big, "e5m2", "down") == [57344.0, -np.inf]
    assert q(big, "e5m2", "up") == [np.inf, -57344.0]
    assert q([1.01, -1.01], "e4m3fn", "up") == [1.125, -1.0]
    assert q([1.01, -1.01], "e4m3fn", "down") == [1.0, -1.125]
    assert q([1.01, -1.01, 1.0625], "e4m3fn", "toward_zero") == [1.0, -1.0, 1.0]
    assert q([1.0625, -1.0625, 1.03], "e4m3fn", "nearest_away") == [1.125, -1.125, 1.0]
    # the smallest subnormal is reached from any positive value rounding up
    assert q([1e-300], "e4m3fn", "up") == [P**-9]
    assert q([np.inf], "e4m3fn", "toward_zero") == [np.nan] or np.isnan(q([np.inf], "e4m3fn", "toward_zero")[0])


def test_round_to_odd():
    assert q([65520, 1e6], "fp16", "odd") == [65504.0, 65504.0]  # ieee max is odd: never overflows
    assert q([1.0625, 1.125, 1.0], "e4m3fn", "odd") == [1.125, 1.125, 1.0]
    got = q([449.0], "e4m3fn", "odd")  # odd neighbour 480 lies beyond max (448 is even): overflow
    assert np.isnan(got[0])
    assert q([449.0], "e4m3fn", "odd", saturate=True) == [448.0]


DOUBLE_ROUNDING = [
    ("bf16", 1 + P**-8 + P**-30, 1.0078125),
    ("e4m3fn", 1.0625 + P**-40, 1.125),
    ("e4m3fn", 464 + P**-30, np.nan),
    ("e5m2", 61440 - P**-20, 57344.0),
    ("e2m1fn", 2.5 + P**-40, 3.0),
]


@pytest.mark.parametrize(("name", "x", "want"), DOUBLE_ROUNDING)
def test_float64_is_rounded_directly(name, x, want):
    got = q([x], name)[0]
    assert (np.isnan(got) and np.isnan(want)) or got == want


def test_fnuz_has_no_negative_zero():
    r = lp.quantize(np.array([-0.0, -1e-30]), "e4m3fnuz")
    assert not np.signbit(r).any()


def test_ibm_formats():
    assert lp.format("ibm-fp8") == lp.FloatFormat(5, 2)
    assert lp.FloatFormat(5, 2, specials="none").max == 114688.0
    assert lp.FloatFormat(6, 9, specials="none").max == pytest.approx(8.58e9, rel=1e-3)
    assert q([1e9], "e6m9") == [954 * P**20]  # spacing 2^20 at 2^29; 1e9 / 2^20 = 953.67


def test_subnormals_off_grid_is_zero_or_min_normal():
    f = lp.FloatFormat(4, 3, subnormals=False, specials="fn")
    assert q([P**-7 * 0.99, P**-7, P**-7 * 1.01, P**-6 * 0.7, -(P**-8)], f) == [0.0, 0.0, P**-6, P**-6, -0.0]
    assert q([P**-9], f, "up") == [P**-6]


def test_exponent_only_format_ties_to_even_code():
    f = lp.FloatFormat(3, 0, specials="none")  # values 2^k; codes k + 3
    # 3 = 1.5 * 2: between 2 (code 4, even) and 4 (code 5): goes to 2; 6 between 4 (5) and 8 (6): 8;
    # 0.75 between 0.5 (code 2) and 1 (code 3): 0.5; 1.5 between 1 (code 3) and 2 (code 4): 2
    assert q([3.0, 6.0, 0.75, 1.5], f) == [2.0, 8.0, 0.5, 2.0]


@pytest.mark.parametrize("mode", ["nearest", "up", "down", "toward_zero", "odd"])
def test_no_subnormals_at_the_input_types_own_emin(mode):
    """bf16 without subnormals on float32 input (and its float64 analogue): input subnormals go to 0
    or 2**emin, as the reference rounds them."""
    from lowprec import _reference as ref
    from lowprec.rounding import Rounding

    for fmt, dtype, emin in (
        (lp.FloatFormat(8, 7, subnormals=False), np.float32, -126),
        (lp.FloatFormat(11, 40, subnormals=False), np.float64, -1022),
    ):
        tiny = np.ldexp(1.0, emin)
        x = np.array([tiny / 3, -tiny / 2, tiny * 0.75, -tiny * 0.25, tiny * (1 - 2.0**-20)], dtype=dtype)
        got = lp.quantize(x, fmt, mode)
        want = ref.quantize(x, fmt, Rounding(mode))
        assert np.array_equal(got.view(f"u{x.itemsize}"), want.view(f"u{x.itemsize}"))
        assert set(np.abs(got).tolist()) <= {0.0, tiny}
