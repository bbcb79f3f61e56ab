"""The compiled kernels equal the NumPy reference bit for bit, for every mode, format and ISA."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FLOAT_FORMATS, assert_same_bits

import lowprec as lp
from lowprec import _reference as ref
from lowprec.rounding import Rounding

MODES = [(m, None) for m in Rounding] + [(Rounding.STOCHASTIC, 1), (Rounding.STOCHASTIC, 5), (Rounding.STOCHASTIC, 23)]
MODE_IDS = [m.value + (f"-r{r}" if r else "") for m, r in MODES]
SEED = 12345


def _check(x, fmt, mode, sr_bits, saturate):
    key = ref.stream_key(SEED) if mode.is_stochastic else 0
    got = lp.quantize(x, fmt, mode, saturate=saturate, sr_bits=sr_bits, seed=SEED)
    want = ref.quantize(x, fmt, mode, saturate, sr_bits, key)
    assert_same_bits(got, want, x)
    if not fmt.has_nan:
        x = x[~np.isnan(x)]
    codes = lp.encode(x, fmt, mode, saturate=saturate, sr_bits=sr_bits, seed=SEED)
    assert_same_bits(codes, ref.encode(x, fmt, mode, saturate, sr_bits, key), x)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", FLOAT_FORMATS)
def test_float32_inputs(f32_inputs, name, mode, sr_bits, saturate):
    fmt = lp.format(name)
    x = f32_inputs if fmt.bits <= 16 or mode is Rounding.NEAREST else f32_inputs[: 2**17]
    _check(x, fmt, mode, sr_bits, saturate)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", FLOAT_FORMATS)
def test_float64_inputs(f64_inputs, name, mode, sr_bits, saturate):
    _check(f64_inputs, lp.format(name), mode, sr_bits, saturate)


@pytest.mark.parametrize(
    "fmt",
    [
        lp.FloatFormat(4, 3, subnormals=False, specials="fn"),
        lp.FloatFormat(5, 2, subnormals=False),
        lp.FloatFormat(5, 2, specials="none"),  # IBM FP8 without reserved exponent: max 114688
        lp.FloatFormat(6, 9, specials="none"),
        lp.FloatFormat(3, 0, specials="none"),
        lp.FloatFormat(1, 2, specials="none"),
        lp.FloatFormat(8, 23, bias=100),
        lp.FloatFormat(11, 20),
        lp.FloatFormat(7, 12, bias=70, specials="fnuz"),
    ],
    ids=str,
)
@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
def test_unusual_formats(f32_inputs, f64_inputs, fmt, mode, sr_bits):
    x32 = f32_inputs[: 2**18]
    try:
        lp.quantize(x32[:1], fmt)
    except ValueError:  # wider than float32: float64 only
        x32 = None
    for x in (x32, f64_inputs):
        if x is not None:
            for sat in (False, True):
                _check(x, fmt, mode, sr_bits, sat)


@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
def test_every_isa_agrees(use_isa, f32_inputs, f64_inputs, mode, sr_bits):
    """Each instruction-set build of the kernels gives the reference's bits."""
    for name in ["e4m3fn", "e5m2", "bf16", "e2m1fn", "e4m3fnuz", "e6m9"]:
        fmt = lp.format(name)
        for x in (f32_inputs[::7], f64_inputs[::3]):
            _check(x, fmt, mode, sr_bits, False)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "fp16", "bf16", "e2m1fn", "e6m9", "tf32", "e3m4"])
def test_qtorch_compat_matches_its_reference(f32_inputs, name):
    fmt = lp.format(name)
    for stochastic in (False, True):
        mode = "stochastic" if stochastic else "nearest"
        got = lp.quantize(f32_inputs, fmt, mode, qtorch_compat=True, seed=SEED)
        want = ref.qtorch_quantize(f32_inputs, fmt.exp_bits, fmt.man_bits, stochastic, ref.stream_key(SEED))
        assert_same_bits(got, want, f32_inputs)


@pytest.mark.parametrize("dtype,n", [(np.float32, (1 << 21) + 37), (np.float64, (1 << 20) + 5)])
@pytest.mark.parametrize("mode", [Rounding.NEAREST, Rounding.STOCHASTIC], ids=lambda m: m.value)
def test_large_outputs(dtype, n, mode):
    """8 MiB outputs (hundreds of chunks over all threads) equal the reference bit for bit, also in place
    and into an output that is not 16-byte aligned."""
    fmt = lp.format("e4m3fn")
    x = np.random.default_rng(7).standard_normal(n).astype(dtype) * 100
    key = ref.stream_key(SEED) if mode.is_stochastic else 0
    want = ref.quantize(x, fmt, mode, False, None, key)
    assert_same_bits(lp.quantize(x, fmt, mode, seed=SEED), want, x)
    y = x.copy()
    lp.quantize(y, fmt, mode, seed=SEED, out=y)
    assert_same_bits(y, want, x)
    unaligned = np.empty(n + 1, dtype=dtype)[1:]
    lp.quantize(x, fmt, mode, seed=SEED, out=unaligned)
    assert_same_bits(unaligned, want, x)
