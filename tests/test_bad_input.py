"""Bad input gives a clear ValueError/TypeError naming the argument; inputs are never modified."""

from __future__ import annotations

import numpy as np
import pytest

import lowprec as lp

X = np.linspace(-3, 3, 101, dtype=np.float32)


@pytest.mark.parametrize("fn", [lp.quantize, lp.encode])
def test_unknown_format_and_rounding(fn):
    with pytest.raises(ValueError, match="unknown format 'e4m3x'"):
        fn(X, "e4m3x")
    with pytest.raises(ValueError, match="unknown rounding 'nearst'"):
        fn(X, "e4m3fn", "nearst")
    with pytest.raises(TypeError, match="rounding must be"):
        fn(X, "e4m3fn", 3)
    with pytest.raises(TypeError, match="format must be"):
        fn(X, 3.5)


@pytest.mark.parametrize(
    ("e", "m", "msg"), [(0, 3, "exp_bits"), (12, 3, "exp_bits"), (4, -1, "man_bits"), (4, 53, "man_bits")]
)
def test_bad_format_parameters(e, m, msg):
    with pytest.raises(ValueError, match=msg):
        lp.FloatFormat(e, m)


def test_more_bad_format_parameters():
    with pytest.raises(TypeError, match="exp_bits"):
        lp.FloatFormat(4.0, 3)
    with pytest.raises(ValueError, match="specials"):
        lp.FloatFormat(4, 3, specials="nan")
    with pytest.raises(ValueError, match="bias"):
        lp.FloatFormat(11, 3, bias=3000)
    with pytest.raises(ValueError, match="man_bits >= 1"):
        lp.FloatFormat(5, 0)
    with pytest.raises(ValueError, match="bits"):
        lp.FixedFormat(0)
    with pytest.raises(ValueError, match="overflow"):
        lp.FixedFormat(8, overflow="clip")
    with pytest.raises(ValueError, match="symmetric"):
        lp.FixedFormat(8, signed=False, symmetric=True)


def test_man_bits_too_large_for_dtype():
    with pytest.raises(ValueError, match="man_bits=30; float32 inputs allow at most 23"):
        lp.quantize(X, lp.FloatFormat(8, 30))
    # encode returns codes, not float32 values: it takes the exact float64 path instead
    assert lp.encode(X, lp.FloatFormat(5, 25)).dtype == np.uint32
    assert lp.quantize(X.astype(np.float64), lp.FloatFormat(8, 30)).dtype == np.float64


def test_format_wider_than_float32():
    with pytest.raises(ValueError, match="beyond float32"):
        lp.quantize(X, lp.FloatFormat(11, 4))
    # encode takes such formats from float32 input through the exact float64 path
    assert (
        lp.encode(X, lp.FloatFormat(11, 4)).tolist() == lp.encode(X.astype(np.float64), lp.FloatFormat(11, 4)).tolist()
    )


@pytest.mark.parametrize("fn", [lp.quantize, lp.encode])
@pytest.mark.parametrize(
    "bad",
    [
        np.arange(5),
        np.arange(5, dtype=np.uint8),
        np.ones(3, np.complex64),
        None,
        np.ones(3, bool),
        ["a"],
        np.float16([1, 2]),
    ],
)
def test_non_float_inputs(fn, bad):
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        fn(bad, "e4m3fn")


@pytest.mark.parametrize("fn", [lp.quantize, lp.encode])
def test_zero_d_empty_and_scalars_work(fn):
    assert fn(np.float32(1.0625), "e4m3fn").shape == ()
    assert fn(np.array(1.0625), "e4m3fn").shape == ()
    assert fn(np.zeros((0, 3), np.float32), "e4m3fn").shape == (0, 3)
    assert fn(1.0625, "e4m3fn") in (1.0, 0x38)
    assert fn([1.0625, 2.0], "e4m3fn").shape == (2,)


def test_non_contiguous_and_read_only_inputs():
    base = np.random.default_rng(0).standard_normal((64, 64))
    view = base[::2, ::3]
    want = lp.quantize(np.ascontiguousarray(view), "bf16")
    assert np.array_equal(lp.quantize(view, "bf16"), want)
    ro = base.copy()
    ro.setflags(write=False)
    assert np.array_equal(lp.quantize(ro, "e5m2"), lp.quantize(base, "e5m2"))
    assert np.array_equal(lp.quantize(base.T, "e5m2"), lp.quantize(base, "e5m2").T)


@pytest.mark.parametrize("mode", ["nearest", "stochastic", "up"])
def test_inputs_never_modified(mode):
    x = np.random.default_rng(2).standard_normal(100_000).astype(np.float32)
    keep = x.copy()
    lp.quantize(x, "e4m3fn", mode, seed=1)
    lp.encode(x, "e4m3fn", mode, seed=1)
    lp.mx_quantize(x, "mxfp4_e2m1")
    lp.mx_encode(x, "mxfp8_e4m3")
    assert np.array_equal(x.view(np.uint32), keep.view(np.uint32))


def test_out_argument():
    x = np.linspace(-1, 1, 50)
    out = np.empty_like(x)
    r = lp.quantize(x, "e4m3fn", out=out)
    assert r is out and np.array_equal(out, lp.quantize(x, "e4m3fn"))
    strided = np.empty(100)[::2]
    assert np.array_equal(lp.quantize(x, "e4m3fn", out=strided), lp.quantize(x, "e4m3fn"))
    y = x.copy()
    lp.quantize(y, "e4m3fn", out=y)  # in place, when asked for
    assert np.array_equal(y, lp.quantize(x, "e4m3fn"))
    with pytest.raises(TypeError, match="out must have dtype float64"):
        lp.quantize(x, "e4m3fn", out=np.empty(50, np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        lp.quantize(x, "e4m3fn", out=np.empty(49))
    with pytest.raises(TypeError, match="out must be a numpy array"):
        lp.quantize(x, "e4m3fn", out=[0.0] * 50)
    ro = np.empty(50)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        lp.quantize(x, "e4m3fn", out=ro)
    with pytest.raises(TypeError, match="out must have dtype uint8"):
        lp.encode(x, "e4m3fn", out=np.empty(50, np.uint16))
    codes = np.empty(50, np.uint8)
    assert lp.encode(x, "e4m3fn", out=codes) is codes


def test_other_keyword_errors():
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        lp.quantize(X, "e4m3fn", n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        lp.quantize(X, "e4m3fn", n_threads=1.5)
    with pytest.raises(ValueError, match="seed must be in"):
        lp.quantize(X, "e4m3fn", "stochastic", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        lp.quantize(X, "e4m3fn", "stochastic", seed="a")
    with pytest.raises(ValueError, match="sr_bits applies to rounding='stochastic'"):
        lp.quantize(X, "e4m3fn", sr_bits=4)
    with pytest.raises(ValueError, match="sr_bits must be in 1..52"):
        lp.quantize(X, "e4m3fn", "stochastic", sr_bits=0)
    with pytest.raises(TypeError, match="saturate must be a bool"):
        lp.quantize(X, "e4m3fn", saturate="yes")
    with pytest.raises(TypeError, match="qtorch_compat"):
        lp.quantize(X, "e4m3fn", qtorch_compat=1)


def test_qtorch_compat_errors():
    with pytest.raises(TypeError, match="float32"):
        lp.quantize(X.astype(np.float64), "e4m3fn", qtorch_compat=True)
    with pytest.raises(ValueError, match="'nearest' or 'stochastic'"):
        lp.quantize(X, "e4m3fn", "up", qtorch_compat=True)
    with pytest.raises(ValueError, match="man_bits < 23"):
        lp.quantize(X, "fp32", qtorch_compat=True)
    with pytest.raises(ValueError, match="float formats"):
        lp.quantize(X, "int8", qtorch_compat=True)


def test_decode_errors():
    with pytest.raises(TypeError, match="codes must be an integer array"):
        lp.decode(np.ones(3), "e4m3fn")
    with pytest.raises(TypeError, match="codes must be an integer array"):
        lp.decode(None, "e4m3fn")
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 2\*\*4\)"):
        lp.decode(np.array([16]), "e2m1fn")
    with pytest.raises(ValueError, match=r"codes must lie"):
        lp.decode(np.array([-1]), "e4m3fn")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        lp.decode(np.array([1]), "e4m3fn", np.int32)
    with pytest.raises(ValueError, match="beyond float32"):
        lp.decode(np.array([1]), lp.FloatFormat(11, 4))
    assert lp.decode(np.zeros((0,), np.uint8), "e4m3fn").shape == (0,)


def test_encode_limits():
    with pytest.raises(ValueError, match="NaN"):
        lp.encode(np.array([np.nan]), "int8")
    with pytest.raises(ValueError, match="overflow='none'"):
        lp.encode(np.array([1.0]), lp.FixedFormat(8, overflow="none"))
    with pytest.raises(ValueError, match="at most 32 bits"):
        lp.encode(np.array([1.0]), "fp64")


def test_mx_errors():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        lp.mx_quantize(np.ones((4, 4)), axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        lp.mx_quantize(np.ones((4, 4)), axis=None)
    with pytest.raises(ValueError, match="at least one dimension"):
        lp.mx_quantize(np.float32(1.0))
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        lp.mx_quantize(np.ones(8), block_size=0)
    with pytest.raises(ValueError, match="scale_rule must be one of"):
        lp.mx_quantize(np.ones(8), scale_rule="round")
    with pytest.raises(ValueError, match="unknown format"):
        lp.mx_quantize(np.ones(8), "mxfp7")
    with pytest.raises(ValueError, match="E8M0"):
        lp.mx_format("e8m0fnu")
    with pytest.raises(TypeError, match="x must be"):
        lp.mx_quantize(np.ones(8, int))
    with pytest.raises(TypeError, match="data must be an MXArray"):
        lp.mx_decode(np.ones(3))
    enc = lp.mx_encode(np.ones(64))
    with pytest.raises(ValueError, match="scales do not match"):
        lp.mx_decode(enc._replace(scales=enc.scales[:1]))


def test_format_resolution_errors():
    with pytest.raises(TypeError, match="format must be"):
        lp.format(None)
    with pytest.raises(ValueError, match="unknown format"):
        lp.format("")
