"""Format facts against specs/formats.md, exhaustive code round trips, name resolution."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch
from conftest import SMALL_FORMATS, as_bits

import lowprec as lp

P = 2.0
# name: (e, m, bias, specials, max, min normal, min subnormal) from the spec's catalogue table
SPEC = {
    "fp32": (8, 23, 127, "ieee", float(np.finfo(np.float32).max), P**-126, P**-149),
    "tf32": (8, 10, 127, "ieee", (2 - P**-10) * P**127, P**-126, P**-136),
    "bf16": (8, 7, 127, "ieee", (2 - P**-7) * P**127, P**-126, P**-133),
    "fp16": (5, 10, 15, "ieee", 65504.0, P**-14, P**-24),
    "e5m2": (5, 2, 15, "ieee", 57344.0, P**-14, P**-16),
    "e4m3fn": (4, 3, 7, "fn", 448.0, P**-6, P**-9),
    "e4m3": (4, 3, 7, "ieee", 240.0, P**-6, P**-9),
    "e3m4": (3, 4, 3, "ieee", 15.5, P**-2, P**-6),
    "e4m3fnuz": (4, 3, 8, "fnuz", 240.0, P**-7, P**-10),
    "e5m2fnuz": (5, 2, 16, "fnuz", 57344.0, P**-15, P**-17),
    "e4m3b11fnuz": (4, 3, 11, "fnuz", 30.0, P**-10, P**-13),
    "e2m3fn": (2, 3, 1, "none", 7.5, 1.0, 0.125),
    "e3m2fn": (3, 2, 3, "none", 28.0, P**-2, 0.0625),
    "e2m1fn": (2, 1, 1, "none", 6.0, 1.0, 0.5),
    "e6m9": (6, 9, 31, "ieee", (2 - P**-9) * P**31, P**-30, P**-39),
}


@pytest.mark.parametrize("name", list(SPEC))
def test_catalogue_facts(name):
    f = lp.format(name)
    e, m, bias, specials, mx, mn, ms = SPEC[name]
    assert (f.exp_bits, f.man_bits, f.bias, f.specials.value) == (e, m, bias, specials)
    assert (f.max, f.min_normal, f.min_subnormal, f.eps) == (mx, mn, ms, P**-m)
    assert f.bits == 1 + e + m


def test_value_sets():
    e2m1 = sorted(set(lp.format("e2m1fn").values().tolist()))  # -0 and 0 compare equal
    assert e2m1 == [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]
    pos = sorted(v for v in lp.format("e2m3fn").values().tolist() if v > 0)
    assert pos == [k / 8 for k in range(1, 16)] + [2 + k / 4 for k in range(8)] + [4 + k / 2 for k in range(8)]
    pos = sorted(v for v in lp.format("e3m2fn").values().tolist() if v > 0)
    assert pos[:4] == [0.0625, 0.125, 0.1875, 0.25] and pos[-4:] == [16, 20, 24, 28] and len(pos) == 31


@pytest.mark.parametrize("name", SMALL_FORMATS)
def test_every_code_round_trips(name):
    """encode(decode(c)) == c for every code that is not NaN; NaN codes go to the canonical NaN."""
    f = lp.format(name)
    codes = np.arange(2**f.bits, dtype=f.code_dtype)
    for dt in (np.float32, np.float64):
        vals = lp.decode(codes, f, dt)
        back = lp.encode(vals, f)
        nan = np.isnan(vals)
        assert (back[~nan] == codes[~nan]).all()
        if nan.any():
            canon = lp.encode(np.array([np.nan], dt), f)[0]
            assert np.isnan(lp.decode(back[nan], f)).all() and canon in back[nan]
        assert (as_bits(lp.quantize(vals, f)) == as_bits(vals))[~nan].all()  # values are fixed points
    assert f.values().size == 2**f.bits


def test_integer_and_scale_formats():
    i8 = lp.format("int8")
    assert (i8.kmin, i8.kmax, i8.max, i8.min) == (-128, 127, 127.0, -128.0)
    assert lp.format("uint8").values().tolist() == list(range(256))
    assert lp.FixedFormat(8, 4, symmetric=True).min == -127 / 16
    s = lp.format("e8m0fnu")
    assert (s.max, s.min_normal) == (P**127, P**-127)
    assert np.isnan(s.values()[255]) and s.values()[0] == P**-127
    codes = np.arange(255, dtype=np.uint8)
    assert (lp.encode(lp.decode(codes, s), s) == codes).all()


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("float8_e4m3fn", "e4m3fn"),
        ("E4M3FN", "e4m3fn"),
        ("bfloat16", "bf16"),
        ("half", "fp16"),
        ("ibm-fp16", "e6m9"),
        ("torch.float8_e5m2", "e5m2"),
        (torch.float8_e4m3fnuz, "e4m3fnuz"),
        (torch.bfloat16, "bf16"),
        (torch.float16, "fp16"),
        (torch.float8_e8m0fnu, "e8m0fnu"),
        (np.dtype(ml_dtypes.float8_e4m3b11fnuz), "e4m3b11fnuz"),
        (ml_dtypes.float6_e3m2fn, "e3m2fn"),
        (ml_dtypes.float4_e2m1fn, "e2m1fn"),
        (np.float16, "fp16"),
        (np.dtype("float32"), "fp32"),
    ],
)
def test_format_resolution(spec, name):
    assert lp.format(spec) == lp.format(name)


def test_generic_names():
    assert lp.format("e6m9") == lp.FloatFormat(6, 9)
    assert lp.format("e3m5fn") == lp.FloatFormat(3, 5, specials="fn")
    assert lp.format("e5m3fnuz") == lp.FloatFormat(5, 3, bias=16, specials="fnuz")
    assert lp.format("int12") == lp.FixedFormat(12)
    assert lp.format("uint3") == lp.FixedFormat(3, signed=False)
    f = lp.FloatFormat(4, 3)
    assert lp.format(f) is f


def test_facts_agree_with_ml_dtypes_finfo():
    for name, mt in [
        ("e4m3fn", ml_dtypes.float8_e4m3fn),
        ("e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
        ("e3m4", ml_dtypes.float8_e3m4),
        ("e2m1fn", ml_dtypes.float4_e2m1fn),
        ("bf16", ml_dtypes.bfloat16),
    ]:
        fi = ml_dtypes.finfo(mt)
        f = lp.format(name)
        assert f.max == float(fi.max) and f.min_normal == float(fi.smallest_normal)
        assert f.min_subnormal == float(fi.smallest_subnormal)


def test_formats_are_frozen_and_hashable():
    f = lp.format("e4m3fn")
    with pytest.raises(AttributeError):
        f.man_bits = 4
    assert len({f, lp.FloatFormat(4, 3, specials="fn"), lp.format("e4m3")}) == 2
    assert math.isinf(lp.decode(np.array([0x7C], np.uint8), "e5m2")[0])
