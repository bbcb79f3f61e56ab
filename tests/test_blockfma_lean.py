"""The float-lane block-FMA kernel (csrc/include/lowprec/blockfma_lean.hpp) against the float64
kernel and the exact reference, bit for bit, on every instruction set: partial tiles, zeros of both
signs, the input formats' subnormals, mixed operand formats, both output modes, and the inputs the
float kernel hands back to the float64 kernel (infinite or NaN c, an overflow inside the product,
alignment exponents outside float32's range)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import lowprec as lp
from lowprec import _accum_reference as R
from lowprec import _blockfma

LEAN = ["nvidia-h100-fp8", "nvidia-h200-fp8", "nvidia-ada-fp8", "nvidia-h100-fp8-promote128"]
NOT_LEAN = [
    "nvidia-h100-fp8-mma",  # late c, 13 + 3 alignment bits
    "nvidia-b200-fp8",
    "nvidia-h100-fp16",
    "nvidia-a100-bf16",
    "nvidia-a100-tf32",
    "nvidia-v100-fp16",
]
PAIRS = [("e4m3fn", "e4m3fn"), ("e5m2", "e5m2"), ("e4m3fn", "e5m2")]


def bits(x: np.ndarray) -> np.ndarray:
    """Bit patterns with every NaN made the same (payloads are not part of the model)."""
    u = np.array(x, np.float32).view(np.uint32).copy()
    u[np.isnan(x)] = 0x7FC00000
    return u


def operands(rng, a_fmt, b_fmt, batch=2, M=13, K=100, N=37, emax=None):
    """Operands of the input formats over their whole range (subnormals, zeros of both signs), or
    with exponents up to emax."""
    fa, fb = lp.format(a_fmt), lp.format(b_fmt)

    def draw(shape, f):
        e = rng.integers(f.emin - f.man_bits, (f.emax if emax is None else emax) + 1, shape)
        x = rng.standard_normal(shape) * np.exp2(e)
        x[rng.random(shape) < 0.08] = 0.0
        x[rng.random(shape) < 0.04] = -0.0
        return lp.quantize(x.astype(np.float32), f, saturate=True)

    return draw((batch, M, K), fa), draw((batch, K, N), fb)


def addend(rng, shape, out_fmt):
    """c of the output format over a wide range, with zeros of both signs."""
    f = lp.format(out_fmt)
    c = rng.standard_normal(shape) * np.exp2(rng.integers(max(f.emin, -40), min(f.emax, 40), shape))
    c[..., ::5] = 0.0
    c[..., 1::7] = -0.0
    return lp.quantize(c.astype(np.float32), f)


def test_which_models_take_float_lanes():
    for name in LEAN:
        for a, b in PAIRS:
            assert _blockfma._float_lanes(lp.load_profile(name).model(a_format=a, b_format=b)), (name, a, b)
    for name in NOT_LEAN:
        assert not _blockfma._float_lanes(lp.load_profile(name).model()), name
    m = lp.load_profile("nvidia-h100-fp8").model()
    # the block sums must stay below 2^24: 2^neab (2F + 1) <= 1
    assert _blockfma._float_lanes(m.replace(extra_align_bits=-7))
    assert not _blockfma._float_lanes(m.replace(extra_align_bits=-6))
    assert not _blockfma._float_lanes(m.replace(block=64, extra_align_bits=-7))
    # products of the input formats must be normal float32 numbers
    assert not _blockfma._float_lanes(m.replace(a_format="bf16", b_format="bf16"))


def matmul(A, B, C, profile, a_fmt, b_fmt, out_format=None):
    kw = {} if out_format is None else {"out_format": out_format}
    return lp.matmul(A, B, c=C, profile=profile, a_format=a_fmt, b_format=b_fmt, **kw)


# every output mode of every float-lane profile (the promotion profile has fp32 output only)
MODES = [(p, o) for p in LEAN for o in ([None] if "promote" in p else [None, "fp16"])]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize(("profile", "out_format"), MODES)
def test_float_lanes_equal_float64_kernel(use_isa, profile, out_format, pair, monkeypatch):
    rng = np.random.default_rng(zlib.crc32(repr((profile, pair, out_format)).encode()))
    A, B = operands(rng, *pair, emax=None if out_format is None else 2)  # fp16: mostly finite results
    out_fmt = out_format or "fp32"
    C = addend(rng, (2, 13, 37), out_fmt)
    got = matmul(A, B, C, profile, *pair, out_format)
    with monkeypatch.context() as mp:
        mp.setattr(_blockfma, "_float_lanes", lambda m: False)
        want = matmul(A, B, C, profile, *pair, out_format)
    assert np.array_equal(bits(got), bits(want))
    assert np.isfinite(got).mean() > 0.9  # the comparison is about values, not NaN and inf


def flagged_inputs(out_format="fp32"):
    """Rows that the float kernel must hand back, with ordinary rows around them in the same tiles:
    row 1 has c = +inf, -inf, NaN; row 2 positive products on c = the output format's max (with fp16
    output the first block overflows and the next one starts from inf); row 5 (fp32 output) no
    products and c at 2^-112 .. 2^-126, alignment exponents on both sides of float32's range."""
    rng = np.random.default_rng(5)
    M, K, N = 7, 70, 19
    A = lp.quantize((rng.standard_normal((M, K)) * 4).astype(np.float32), "e4m3fn")
    B = lp.quantize(np.abs(rng.standard_normal((K, N)) * 4).astype(np.float32), "e4m3fn")
    C = lp.quantize((rng.standard_normal((M, N)) * 8).astype(np.float32), out_format)
    C[1, :3] = [np.inf, -np.inf, np.nan]
    A[2, :] = np.abs(A[2, :])
    C[2, :] = lp.format(out_format).max
    if out_format == "fp32":
        A[5, :] = 0.0
        C[5, :] = np.ldexp(1.5, -(np.arange(N) % 15) - 112).astype(np.float32)
    return A, B, C


@pytest.mark.parametrize("out_format", ["fp32", "fp16"])
def test_flagged_tiles_equal_float64_kernel(use_isa, out_format, monkeypatch):
    A, B, C = flagged_inputs(out_format)
    got = lp.matmul(A, B, c=C, profile="nvidia-h100-fp8", out_format=out_format)
    with monkeypatch.context() as mp:
        mp.setattr(_blockfma, "_float_lanes", lambda m: False)
        want = lp.matmul(A, B, c=C, profile="nvidia-h100-fp8", out_format=out_format)
    assert np.array_equal(bits(got), bits(want))
    assert got[1, 0] == np.inf and got[1, 1] == -np.inf and np.isnan(got[1, 2])
    assert np.all(np.isinf(got[2])) == (out_format == "fp16")


def test_flagged_tiles_equal_reference():
    A, B, C = flagged_inputs()
    m = lp.load_profile("nvidia-h100-fp8").model()
    got = lp.matmul(A, B, c=C, profile="nvidia-h100-fp8")
    for i in (0, 2, 3, 5, 6):  # finite rows, in tiles with flagged rows (rows 0..3 and 4..6)
        for j in range(B.shape[1]):
            want = R.blockfma_dot(list(map(float, A[i])), list(map(float, B[:, j])), float(C[i, j]), m)
            assert bits(got[i, j]) == bits(np.float32(want)), (i, j, got[i, j], want)
    assert np.array_equal(bits(got[5]), bits(C[5]))  # nothing added to c (1 fraction bit)


_H100 = lp.load_profile("nvidia-h100-fp8").model(a_format="e5m2", b_format="e4m3fn")
CUSTOM = {
    "no subnormals": _H100.replace(in_subnormals=False, out_subnormals=False),
    "neab -7 (block sums up to 2^23)": _H100.replace(extra_align_bits=-7),
    "F = 16": _H100.replace(block=16),
    "min_exp_limit -20": _H100.replace(min_exp_limit=-20),
    "nearest, fp32": _H100.replace(rounding="nearest"),
}


@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_custom_models_equal_float64_kernel(use_isa, name, monkeypatch):
    m = CUSTOM[name]
    assert _blockfma._float_lanes(m)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    A, B = operands(rng, "e5m2", "e4m3fn", M=11, K=80, N=21)
    C = addend(rng, (2, 11, 21), "fp32")
    C[:, :, ::9] = np.float32(1e-40)  # fp32 subnormals: flushed without output subnormals
    got = lp.matmul(A, B, c=C, model=m)
    with monkeypatch.context() as mp:
        mp.setattr(_blockfma, "_float_lanes", lambda m: False)
        want = lp.matmul(A, B, c=C, model=m)
    assert np.array_equal(bits(got), bits(want))


@pytest.mark.parametrize("e", range(-128, -104))
def test_alignment_exponent_at_float_range_edge(use_isa, e):
    """c alone (no products) at 2^e: the float kernel handles E >= neab - 103 = -113 itself and hands
    lower ones back; the result is c (1 fraction bit, nothing added)."""
    A = np.zeros((4, 32), np.float32)
    B = np.ones((32, 16), np.float32)
    C = np.full((4, 16), np.ldexp(np.float32(1.5), e), np.float32)
    C[1] *= -1
    got = lp.matmul(A, B, c=C, profile="nvidia-h100-fp8")
    assert np.array_equal(bits(got), bits(C))


def test_rows_of_one_tile_are_independent():
    """A tile's rows share b loads only: each row equals the same row computed alone, in every
    position of a tile and in a partial last tile."""
    rng = np.random.default_rng(3)
    A, B = operands(rng, "e4m3fn", "e5m2", batch=1, M=9, K=96, N=33)
    C = addend(rng, (1, 9, 33), "fp32")
    full = matmul(A, B, C, "nvidia-h100-fp8", "e4m3fn", "e5m2")
    for i in range(9):
        alone = matmul(A[:, i : i + 1], B, C[:, i : i + 1], "nvidia-h100-fp8", "e4m3fn", "e5m2")
        assert np.array_equal(bits(full[:, i]), bits(alone[:, 0])), i


def test_zero_results_keep_the_float64_kernels_sign():
    """Blocks with nothing to sum give +0; cancelling sums give +0; c = -0 with zero products too."""
    A = np.zeros((4, 32), np.float32)
    A[1, 0], A[1, 1] = 1.0, -1.0
    B = np.ones((32, 16), np.float32)
    C = np.full((4, 16), -0.0, np.float32)
    got = lp.matmul(A, B, c=C, profile="nvidia-h100-fp8")
    assert not np.signbit(got).any() and not got.any()
    m = lp.load_profile("nvidia-h100-fp8").model()
    assert math.copysign(1.0, R.blockfma_dot([1.0, -1.0], [1.0, 1.0], -0.0, m)) > 0
