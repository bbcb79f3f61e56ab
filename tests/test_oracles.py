"""Bit-exact agreement with other libraries: numpy float16, ml_dtypes, torch casts, QPyTorch."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch
from conftest import as_bits, assert_same_bits

import lowprec as lp

# (lowprec name, ml_dtypes type, saturate setting that matches ml_dtypes' casts)
ML_DTYPES = [
    ("bf16", ml_dtypes.bfloat16),
    ("e5m2", ml_dtypes.float8_e5m2),
    ("e4m3fn", ml_dtypes.float8_e4m3fn),
    ("e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    ("e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
    ("e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz),
    ("e4m3", ml_dtypes.float8_e4m3),
    ("e3m4", ml_dtypes.float8_e3m4),
    ("e2m3fn", ml_dtypes.float6_e2m3fn),
    ("e3m2fn", ml_dtypes.float6_e3m2fn),
    ("e2m1fn", ml_dtypes.float4_e2m1fn),
]


def _codes_of(arr: np.ndarray, bits: int) -> np.ndarray:
    raw = arr.view(np.uint8 if arr.dtype.itemsize == 1 else np.uint16)
    return raw & raw.dtype.type(2**bits - 1)


def test_fp16_matches_numpy(f32_inputs):
    x = f32_inputs
    assert_same_bits(lp.quantize(x, "fp16"), x.astype(np.float16).astype(np.float32), x)
    finite_nan = ~np.isnan(x)  # numpy keeps NaN payloads; lowprec writes the canonical quiet NaN
    assert_same_bits(lp.encode(x, "fp16")[finite_nan], x.astype(np.float16).view(np.uint16)[finite_nan], x)


def test_every_float16_pattern_decodes_like_numpy():
    codes = np.arange(2**16, dtype=np.uint16)
    assert_same_bits(lp.decode(codes, "fp16"), codes.view(np.float16).astype(np.float32))


@pytest.mark.parametrize(("name", "mtype"), ML_DTYPES, ids=[n for n, _ in ML_DTYPES])
def test_matches_ml_dtypes(f32_inputs, name, mtype):
    fmt = lp.format(name)
    x = f32_inputs if fmt.has_nan else f32_inputs[~np.isnan(f32_inputs)]  # ml_dtypes maps NaN to -0/+0 there
    theirs = x.astype(mtype)
    assert_same_bits(lp.quantize(x, fmt), theirs.astype(np.float32), x)
    assert_same_bits(lp.encode(x, fmt), _codes_of(theirs, fmt.bits).astype(fmt.code_dtype), x)
    # decode of every code equals ml_dtypes' value
    codes = np.arange(2**fmt.bits, dtype=fmt.code_dtype)
    raw = codes.astype(np.uint8 if np.dtype(mtype).itemsize == 1 else np.uint16)
    assert_same_bits(lp.decode(codes, fmt), raw.view(mtype).astype(np.float32))


def test_e8m0_matches_ml_dtypes_half_up():
    rng = np.random.default_rng(3)
    x = np.ldexp(rng.uniform(1, 2, 200_000), rng.integers(-126, 128, 200_000)).astype(np.float32)
    x = np.concatenate([x, np.float32([1.5, 3, 0.75, 2.0**-126, 1.5 * 2.0**127, 2.0**127])])
    theirs = x.astype(ml_dtypes.float8_e8m0fnu)
    # float32-subnormal inputs are left out: ml_dtypes rounds 1.45 * 2^-127 up to 2^-126, while the
    # half-up rule (f = 0.45 < 1/2) gives 2^-127; that case is checked in test_mx.py.
    ok = np.isfinite(x)
    assert_same_bits(lp.encode(x[ok], "e8m0fnu", "nearest_away"), theirs.view(np.uint8)[ok], x[ok])
    assert_same_bits(lp.quantize(x[ok], "e8m0fnu", "nearest_away"), theirs.astype(np.float32)[ok], x[ok])


TORCH_CASTS = [
    ("e4m3fn", torch.float8_e4m3fn, True),  # torch 2.13 saturates e4m3fn casts
    ("e5m2", torch.float8_e5m2, False),
    ("e4m3fnuz", torch.float8_e4m3fnuz, False),
    ("e5m2fnuz", torch.float8_e5m2fnuz, False),
    ("bf16", torch.bfloat16, False),
    ("fp16", torch.float16, False),
]


@pytest.mark.parametrize(("name", "tdtype", "saturate"), TORCH_CASTS, ids=[n for n, _, _ in TORCH_CASTS])
def test_matches_torch_casts(f32_inputs, name, tdtype, saturate):
    x = f32_inputs
    theirs = torch.from_numpy(x.copy()).to(tdtype)
    assert_same_bits(lp.quantize(x, name, saturate=saturate), theirs.to(torch.float32).numpy(), x)
    fmt = lp.format(name)
    mine = lp.encode(x, name, saturate=saturate)
    tc = theirs.view(torch.uint8 if fmt.bits == 8 else torch.int16).numpy().view(fmt.code_dtype)
    keep = ~np.isnan(x)  # torch keeps NaN payloads in bf16/fp16
    assert_same_bits(mine[keep], tc[keep], x[keep])


def test_torch_e4m3fn_saturation_rules():
    x = np.float32([464, 465, 1e30, np.inf, -np.inf, np.nan, -500])
    got = lp.quantize(x, "e4m3fn", saturate=True)
    want = torch.from_numpy(x).to(torch.float8_e4m3fn).float().numpy()
    assert_same_bits(got, want, x)
    assert got[:5].tolist() == [448, 448, 448, 448, -448]


QTORCH_FORMATS = [(4, 3), (5, 2), (5, 10), (6, 9), (8, 7), (8, 10), (3, 4), (2, 1), (8, 22), (2, 3)]


@pytest.mark.parametrize(("e", "m"), QTORCH_FORMATS, ids=[f"e{e}m{m}" for e, m in QTORCH_FORMATS])
def test_qtorch_compat_equals_qtorch(f32_inputs, e, m):
    from qtorch.quant import float_quantize

    x = f32_inputs
    theirs = float_quantize(torch.from_numpy(x.copy()), e, m, rounding="nearest").numpy()
    assert_same_bits(lp.quantize(x, lp.FloatFormat(e, m), qtorch_compat=True), theirs, x)


def test_qtorch_number_objects_resolve():
    from qtorch import FixedPoint, FloatingPoint

    assert lp.format(FloatingPoint(exp=5, man=2)) == lp.FloatFormat(5, 2)
    f = lp.format(FixedPoint(wl=8, fl=4, clamp=True, symmetric=False))
    assert (f.bits, f.frac_bits, f.overflow) == (8, 4, "saturate")


def test_qtorch_stochastic_compat_is_distributionally_equal():
    """QPyTorch's SR uses an unseedable generator: compare up-rounding frequencies.

    x = 1 + 0.3 * 2^-3 in e4m3 grid units: P(up) = 0.3 (qtorch adds 20 random bits to 23-3 discarded
    bits). n = 400,000 draws each: the two frequencies differ by more than 0.006 with probability
    < 1e-9 (each has sd 7.2e-4; the difference has sd 1.03e-3, 0.006 is 5.8 sd).
    """
    from qtorch.quant import float_quantize

    n = 400_000
    x = np.full(n, 1 + 0.3 * 2.0**-3, np.float32)
    theirs = float_quantize(torch.from_numpy(x.copy()), 4, 3, rounding="stochastic").numpy()
    mine = lp.quantize(x, lp.FloatFormat(4, 3), "stochastic", qtorch_compat=True, seed=1)
    assert set(np.unique(mine).tolist()) == set(np.unique(theirs).tolist()) == {1.0, 1.125}
    assert abs((mine == 1.125).mean() - (theirs == 1.125).mean()) < 0.006


def test_qtorch_fixed_point_matches():
    from qtorch.quant import fixed_point_quantize

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(200_000) * 8).astype(np.float32)
    x = np.concatenate([x, np.float32([0.5, 1.5, 2.5, -0.5, -2.5, 0.25, 100, -100])])
    for wl, fl in [(8, 4), (8, 0), (16, 8), (4, 2)]:
        theirs = fixed_point_quantize(torch.from_numpy(x.copy()), wl, fl, rounding="nearest").numpy()
        mine = lp.quantize(x, lp.FixedFormat(wl, fl))
        np.testing.assert_array_equal(as_bits(mine + 0.0), as_bits(theirs + 0.0))  # +0.0 folds -0 to 0
