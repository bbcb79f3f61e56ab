"""Fixed-point and integer formats (specs/formats.md §4)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lowprec as lp


def test_rounding_and_saturation():
    f = lp.FixedFormat(8, 4)
    x = np.array([0.03125, 0.09375, -0.03125, 7.97, 100.0, -100.0, np.inf, np.nan])
    got = lp.quantize(x, f)
    assert got[:6].tolist() == [0.0, 0.125, -0.0, 7.9375, 7.9375, -8.0]
    assert got[6] == 7.9375 and np.isnan(got[7])
    assert lp.quantize(x[:6], f, "up").tolist() == [0.0625, 0.125, -0.0, 7.9375, 7.9375, -8.0]
    assert lp.quantize(np.array([-100.0]), lp.FixedFormat(8, 4, symmetric=True)).tolist() == [-127 / 16]


def test_wrap_and_unbounded():
    x = np.array([128.0, 129.0, -129.0, 300.0])
    assert lp.quantize(x, lp.FixedFormat(8, overflow="wrap")).tolist() == [-128, -127, 127, 44]
    assert lp.quantize(x, lp.FixedFormat(8), saturate=False).tolist() == [-128, -127, 127, 44]
    assert lp.quantize(x, lp.FixedFormat(8, overflow="none")).tolist() == [128, 129, -129, 300]
    assert lp.quantize(x, lp.FixedFormat(8, signed=False)).tolist() == [128, 129, 0, 255]


def test_codes_are_twos_complement():
    x = np.array([-1.0, -128.0, 127.0, 0.0, 5.0])
    codes = lp.encode(x, "int8")
    assert codes.dtype == np.uint8 and codes.tolist() == [255, 128, 127, 0, 5]
    assert lp.decode(codes, "int8").tolist() == x.tolist()
    assert lp.encode(np.array([-1.0]), "int4").tolist() == [15]
    c = np.arange(16, dtype=np.uint8)
    assert (lp.encode(lp.decode(c, "int4"), "int4") == c).all()


@pytest.mark.parametrize("mode", ["nearest", "nearest_away", "toward_zero", "up", "down", "odd"])
def test_against_exact_fractions(mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000) * 4
    x = np.concatenate([x, np.arange(-40, 40) / 8 + 1 / 16])  # exact ties
    f = lp.FixedFormat(12, 5)
    got = lp.quantize(x, f, mode)
    for xi, gi in zip(x.tolist(), got.tolist(), strict=True):
        s = Fraction(xi) * 32
        lo = s.numerator // s.denominator
        frac = s - lo
        if frac == 0:
            k = lo
        elif mode == "nearest":
            k = lo + (frac > Fraction(1, 2) or (frac == Fraction(1, 2) and lo % 2 == 1))
        elif mode == "nearest_away":
            k = lo + (frac > Fraction(1, 2) or (frac == Fraction(1, 2) and s > 0))
        elif mode == "toward_zero":
            k = lo + (s < 0)
        elif mode == "up":
            k = lo + 1
        elif mode == "down":
            k = lo
        else:
            k = lo if lo % 2 else lo + 1
        k = max(-2048, min(2047, k))
        assert gi == k / 32, (xi, mode)
