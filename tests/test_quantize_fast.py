"""The shorter kernel forms (nearest; stochastic, exact or r-bit) equal the reference.

Stochastic rounding handles "tiny" values (nonzero, more than 8 binades below the target's smallest
normal: over 32 discarded bits) apart: decided from the high half of the random word when the
target has at most 7 fraction bits (a tie there, and every tiny value of other targets, is
recomputed by the general routine). These tests mix ordinary and tiny values, on every instruction
set, at the ties and thresholds of each form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FLOAT_FORMATS, assert_same_bits

import lowprec as lp
from lowprec import _reference as ref
from lowprec.rounding import Rounding

SEED = 99
SR_BITS = [None, 1, 8, 23, 30, 31, 32, 40]
F32_FORMATS = [n for n in FLOAT_FORMATS if lp.format(n).emin >= -126 and lp.format(n).man_bits <= 23]
EXTRA = [
    lp.FloatFormat(7, 12, bias=70, specials="fnuz"),  # emin -69
    lp.FloatFormat(7, 10, bias=110),  # emin -109: region S outside the stochastic form's range
    lp.FloatFormat(4, 3, subnormals=False, specials="fn"),
    lp.FloatFormat(3, 0, specials="none"),  # no fraction bits: ties decided by the exponent's parity
    lp.FloatFormat(8, 7, subnormals=False),  # bf16 without subnormals: float32 subnormals flush
]


def _mixed(fmt: lp.FloatFormat, n: int, rng: np.random.Generator) -> np.ndarray:
    """Normal values around 2^emin and 1, ties of the subnormal grid, a few tiny values, specials."""
    smin = float(fmt.min_subnormal)
    parts = [
        rng.standard_normal(n) * np.float64(fmt.min_normal) * 4,
        rng.standard_normal(n),
        (rng.integers(0, 2 ** (fmt.man_bits + 1), n) + 0.5) * smin,  # ties on the subnormal grid
        rng.standard_normal(n) * float(fmt.max) / 2,
    ]
    x = np.concatenate(parts)
    tiny = rng.choice(x.size, 7, replace=False)
    x[tiny] = smin * 2.0 ** -rng.integers(9, 40, tiny.size) * rng.choice([-1, 1], tiny.size)
    x[rng.choice(x.size, 5, replace=False)] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    with np.errstate(over="ignore"):
        return x.astype(np.float32)


def _same(x, fmt, mode, sr_bits, saturate):
    got = lp.quantize(x, fmt, mode, saturate=saturate, sr_bits=sr_bits, seed=SEED)
    want = ref.quantize(x, fmt, mode, saturate, sr_bits, ref.stream_key(SEED))
    assert_same_bits(got, want, x)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("fmt", [lp.format(n) for n in F32_FORMATS] + EXTRA, ids=str)
def test_nearest_float32_and_float64(use_isa, fmt, saturate):
    rng = np.random.default_rng(1)
    x = _mixed(fmt, 3001, rng)
    _same(x, fmt, Rounding.NEAREST, None, saturate)
    _same(x.astype(np.float64), fmt, Rounding.NEAREST, None, saturate)


@pytest.mark.parametrize("sr_bits", SR_BITS, ids=lambda r: f"r{r}")
@pytest.mark.parametrize("fmt", [lp.format(n) for n in F32_FORMATS] + EXTRA, ids=str)
def test_stochastic_float32(use_isa, fmt, sr_bits):
    rng = np.random.default_rng(2)
    x = _mixed(fmt, 3001, rng)
    for sat in (False, True):
        _same(x, fmt, Rounding.STOCHASTIC, sr_bits, sat)


@pytest.mark.parametrize("sr_bits", [None, 8])
def test_block_recomputed_around_one_tiny_value(sr_bits):
    """One tiny value among ordinary ones, at several offsets of the array start: the random words
    follow the flat index, whatever the split between blocks and threads."""
    fmt = lp.format("e4m3fn")
    x = np.random.default_rng(3).standard_normal(5 * 128 + 17).astype(np.float32)
    x[300] = 3e-9  # 2^-28: 19 binades below e4m3fn's smallest subnormal
    _same(x, fmt, Rounding.STOCHASTIC, sr_bits, False)
    one = lp.quantize(x, fmt, "stochastic", sr_bits=sr_bits, seed=SEED, n_threads=1)
    for start in (0, 1, 129, 300):
        part = lp.quantize(x[start:], fmt, "stochastic", sr_bits=sr_bits, seed=SEED, n_threads=2)
        # A slice restarts the flat index: it equals the reference at its own indices.
        assert_same_bits(part, ref.quantize(x[start:], fmt, Rounding.STOCHASTIC, False, sr_bits, ref.stream_key(SEED)))
    assert_same_bits(one, lp.quantize(x, fmt, "stochastic", sr_bits=sr_bits, seed=SEED, n_threads=2))


def test_tiny_values_get_the_exact_probability():
    """Below 2^(emin - 8) the general form decides: 2^-20 into e4m3fn (spacing 2^-9) goes up with
    probability 2^-11, and no other value appears."""
    fmt = lp.format("e4m3fn")
    x = np.full(1 << 20, 2.0**-20, dtype=np.float32)
    y = lp.quantize(x, fmt, "stochastic", seed=5)
    assert set(np.unique(y).tolist()) <= {0.0, 2.0**-9}
    ups = int((y > 0).sum())
    # Binomial(2^20, 2^-11): mean 512, sd 22.6; |ups - 512| > 150 has probability < 1e-10.
    assert abs(ups - 512) <= 150


def _boundary_inputs(fmt: lp.FloatFormat, r: int | None, n: int = 4096):
    """Inputs that sit on the decision boundary set by each element's own random word.

    Element i lies in binade e (region N above 2^emin, region S below), between grid points
    base and base + g, at j float32 ulps above base (g = 2^dd ulps). Exact rounding goes up iff
    u < (j / 2^dd) * 2^64, so j = u >> (64 - dd) stays down and j + 1 goes up; with r < dd bits the
    fraction is first rounded to r bits (nearest-even), probed at the multiples, the midpoints and
    just past them. Returns x, whether each element must go up, and the grid step g.
    """
    rng = np.random.default_rng(4)
    u = ref.random_words(ref.stream_key(SEED), 0, n)
    m, emin = fmt.man_bits, fmt.emin
    lowest = max(emin - m if (fmt.subnormals and m > 0) else emin, -126)  # float32 normals only
    e = rng.integers(lowest, min(emin + 3, fmt.emax - 1) + 1, n)
    g = np.ldexp(1.0, np.where(e >= emin, e - m, emin - m))  # the target's spacing in binade e
    dd = (np.log2(g).astype(np.int64) - (e - 23)).astype(np.uint64)  # bits below the grid
    c = rng.integers(0, np.ldexp(1.0, e) / g)  # grid steps above 2^e
    base = np.ldexp(1.0, e) + c * g
    # 0: on the threshold, 1: one ulp past it; with r bits also 2: the midpoint, 3: one ulp past it
    kind = rng.integers(0, 4, n)
    bits = dd if r is None else np.minimum(dd, np.uint64(r))
    top = (u >> (np.uint64(64) - bits)).astype(np.float64)  # the top bits of u that decide
    step = np.ldexp(1.0, (dd - bits).astype(np.int64))  # ulps per unit of those bits
    offset = (kind % 2) + np.where((kind >= 2) & (bits < dd), step / 2, 0.0)
    j = top * step + offset
    j = np.minimum(j, np.ldexp(1.0, dd.astype(np.int64)) - 1)
    x = base + j * np.ldexp(1.0, e - 23)
    t = np.where(bits < dd, np.floor(j / step), j)  # exact: t = j (compared with top at full width)
    frac_half = bits < dd
    rem = j / step - np.floor(j / step)
    t = np.where(frac_half & ((rem > 0.5) | ((rem == 0.5) & (np.floor(j / step) % 2 == 1))), t + 1, t)
    up = top < t
    sign = rng.choice([-1.0, 1.0], n)
    return (sign * x).astype(np.float32), up, sign * base, sign * g


@pytest.mark.parametrize("sr_bits", [None, 3, 8, 23])
@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "fp16", "bf16", "e2m1fn", "e6m9", "e3m4", "tf32"])
def test_decision_boundaries(use_isa, name, sr_bits):
    """Up or down is decided by the right random bits to the last bit, in both regions."""
    fmt = lp.format(name)
    x, up, base, g = _boundary_inputs(fmt, sr_bits)
    assert 0.2 < up.mean() < 0.8  # both outcomes are probed
    want = np.where(up, base + g, base).astype(np.float32)
    got = lp.quantize(x, fmt, "stochastic", sr_bits=sr_bits, seed=SEED)
    assert_same_bits(got, want, x)
    assert_same_bits(ref.quantize(x, fmt, Rounding.STOCHASTIC, False, sr_bits, ref.stream_key(SEED)), want, x)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("name", ["e2m1fn", "e4m3fn", "e5m2", "e3m2fn", "fp16"])
def test_tiny_value_decisions(use_isa, name, dense):
    """Values more than 8 binades below 2^emin (over 32 discarded bits) next to their element's
    random word: |x| / s * 2^32 = u_hi + {-1, 0, 1/2, 1}, s the subnormal spacing. Exact rounding
    goes up iff u < that times 2^32; the middle two cases need the low half of u. Among ordinary
    values (sparse: tiny values redone one by one) and among other tiny values (dense: the kernel
    then decides them in vector form for targets with at most 7 fraction bits)."""
    fmt = lp.format(name)
    n = 1 << 16
    u = ref.random_words(ref.stream_key(SEED), 0, n)
    uh = (u >> np.uint64(32)).astype(np.float64)
    idx = np.flatnonzero(uh < 2**22)
    assert idx.size > 8
    off = np.array([-1.0, 0.0, 0.5, 1.0])[np.arange(idx.size) % 4]
    v = np.maximum(uh[idx] + off, 0.0)
    s = float(fmt.min_subnormal)
    x = np.ones(n, dtype=np.float32)
    if dense:  # random tiny values elsewhere (checked against the reference)
        rng = np.random.default_rng(6)
        x = (rng.uniform(0.5, 1.0, n) * 2.0 ** (fmt.emin - 9 - rng.integers(0, 20, n))).astype(np.float32)
    x[idx] = (v * s * 2.0**-32) * np.where(idx % 3 == 0, -1.0, 1.0)
    assert np.all(np.abs(x[idx]) < 2.0 ** (fmt.emin - 8))
    f = [int(vi * 2) << 31 for vi in v]  # (|x| / s) * 2^64 = v * 2^32, an integer (v has one fraction bit)
    up = np.array([int(u[i]) < fi for i, fi in zip(idx, f, strict=True)])
    assert up.any() and (~up).any()
    want = ref.quantize(x, fmt, Rounding.STOCHASTIC, False, None, ref.stream_key(SEED)) if dense else x.copy()
    want[idx] = np.where(up, s, 0.0) * np.sign(x[idx])
    got = lp.quantize(x, fmt, "stochastic", seed=SEED)
    assert_same_bits(got, want, x)


@pytest.mark.parametrize("sr_bits", [None, 8])
def test_switch_to_vector_tiny_form_mid_array(sr_bits):
    """Ordinary values, then mostly tiny ones (the kernel switches form between blocks), then
    ordinary again: the reference's bits throughout, for one thread or two."""
    fmt = lp.format("e2m1fn")
    rng = np.random.default_rng(8)
    parts = [rng.standard_normal(3000), rng.standard_normal(5000) * 2.0**-12, rng.standard_normal(3001)]
    x = np.concatenate(parts).astype(np.float32)
    want = ref.quantize(x, fmt, Rounding.STOCHASTIC, False, sr_bits, ref.stream_key(SEED))
    for nt in (1, 2):
        got = lp.quantize(x, fmt, "stochastic", sr_bits=sr_bits, seed=SEED, n_threads=nt)
        assert_same_bits(got, want, x)


# --- float64 inputs -------------------------------------------------------------------------------
# The float64 stochastic form has a narrow variant (region N only; elements below 2^emin redone one
# by one) and a wide one (both regions; only elements with more than 63 discarded bits redone); a
# call switches to the wide one once region S passes 1/512 of the elements seen.
F64_SR_BITS = [None, 1, 8, 23, 40, 52]
F64_EXTRA = EXTRA + [
    lp.FloatFormat(11, 40),  # emin -1022: region S is float64's own subnormal range
    lp.FloatFormat(9, 30, subnormals=False),
]


def _mixed64(fmt: lp.FloatFormat, n: int, rng: np.random.Generator) -> np.ndarray:
    """Full-precision float64 values around 2^emin, 1 and max, ties of the subnormal grid, values
    with more than 63 discarded bits, specials."""
    smin = float(fmt.min_subnormal)
    with np.errstate(over="ignore"):  # beyond float64's range for the widest formats: infinities
        parts = [
            rng.standard_normal(n) * float(fmt.min_normal) * 4,
            rng.standard_normal(n),
            (rng.integers(0, 2 ** min(fmt.man_bits + 1, 50), n) + 0.5) * smin,
            rng.standard_normal(n) * (float(fmt.max) / 2),
        ]
    x = np.concatenate(parts)
    with np.errstate(under="ignore"):
        tiny = rng.choice(x.size, 9, replace=False)
        x[tiny] = smin * 2.0 ** -rng.integers(11, 80, tiny.size) * rng.uniform(1, 2, tiny.size)
        # the last binade with 63 discarded bits, and the first with 64 (mS = m with subnormals)
        edge = rng.choice(x.size, 40, replace=False)
        ms = fmt.man_bits if fmt.subnormals else 0
        x[edge] = np.ldexp(rng.uniform(1, 2, edge.size), fmt.emin - ms - 11 - np.arange(edge.size) % 2)
    x[rng.choice(x.size, 5, replace=False)] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    return x


@pytest.mark.parametrize("sr_bits", F64_SR_BITS, ids=lambda r: f"r{r}")
@pytest.mark.parametrize("fmt", [lp.format(n) for n in FLOAT_FORMATS] + F64_EXTRA, ids=str)
def test_stochastic_float64(use_isa, fmt, sr_bits):
    rng = np.random.default_rng(12)
    x = _mixed64(fmt, 3001, rng)  # region S frequent: the wide form after the first block
    ones = np.ones(1 << 17)
    ones[rng.choice(ones.size, 60, replace=False)] = x[rng.choice(x.size, 60, replace=False)]
    for arr in (x, ones):  # ones: a few elements of each kind, the narrow form throughout
        for sat in (False, True):
            _same(arr, fmt, Rounding.STOCHASTIC, sr_bits, sat)


def _boundary64(fmt: lp.FloatFormat, r: int | None, u: np.ndarray, rng: np.random.Generator):
    """float64 inputs on the decision boundary of their own random words u (see _boundary_inputs):
    x = 2^e + c * g + j * 2^(e - 52) in binade e, grid step g, j < 2^dd with dd the discarded bits;
    exact rounding goes up iff (u >> (64 - dd)) < j, r-bit rounding iff (u >> (64 - r)) < RNE(j /
    2^(dd - r)). j is put on and next to each threshold. Returns x, expected results."""
    m, emin = fmt.man_bits, fmt.emin
    lowest = emin - m if (fmt.subnormals and m > 0) else emin
    x, want = [], []
    for w in u.tolist():
        e = int(rng.integers(lowest, min(emin + 3, fmt.emax - 1) + 1))
        ge = max(e, emin) - m  # log2 of the grid step
        dd = ge - (e - 52)
        bits = dd if r is None or r >= dd else r
        step = 1 << (dd - bits)
        top = w >> (64 - bits)
        kind = int(rng.integers(0, 4))
        j = top * step + (kind % 2) + (step // 2 if kind >= 2 and step > 1 else 0)
        j = min(j, (1 << dd) - 1)
        if bits == dd:
            t = j
        else:
            q, rem = divmod(j, step)
            t = q + (1 if 2 * rem > step or (2 * rem == step and q % 2 == 1) else 0)
        c = int(rng.integers(0, 1 << (e - ge))) if e > ge else 0
        sign = 1.0 if rng.integers(0, 2) else -1.0
        base = sign * math.ldexp(1.0, e) + sign * c * math.ldexp(1.0, ge)
        x.append(sign * math.ldexp((1 << 52) + (c << dd) + j, e - 52))
        want.append(base + sign * math.ldexp(1.0, ge) if top < t else base)
    return np.array(x), np.array(want)


@pytest.mark.parametrize("sr_bits", [None, 3, 8, 23, 40])
@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "fp16", "bf16", "e2m1fn", "e6m9", "fp32", "tf32"])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_decision_boundaries_float64(use_isa, name, sr_bits, layout):
    """Up or down by the right random bits to the last one, float64 inputs, in both regions; dense:
    boundary values side by side (the wide form after the first block), sparse: spread among ones
    (the narrow form, region S redone one by one)."""
    fmt = lp.format(name)
    rng = np.random.default_rng(13)
    n = 1500
    size = n if layout == "dense" else n * 700
    idx = np.arange(n) if layout == "dense" else np.sort(rng.choice(size, n, replace=False))
    u = ref.random_words(ref.stream_key(SEED), 0, size)[idx]
    xb, wb = _boundary64(fmt, sr_bits, u, rng)
    x = np.ones(size)
    x[idx] = xb
    want = np.ones(size)
    want[idx] = wb
    moved = np.abs(wb) > np.abs(xb)
    assert 0.2 < moved.mean() < 0.8  # both outcomes are probed
    got = lp.quantize(x, fmt, "stochastic", sr_bits=sr_bits, seed=SEED)
    assert_same_bits(got, want, x)


@pytest.mark.parametrize("name", ["e4m3fn", "e6m9", "bf16", "fp16"])
def test_float64_with_63_and_64_discarded_bits(use_isa, name):
    """Values whose fraction has 63 discarded bits (the last binade the vector form decides) and 64
    (the first one redone by the general routine), next to their element's random word u: with v
    the 53-bit significand, up iff u < 2v (63 bits), u < v (64 bits); v = floor(u / 2) or floor(u / 2)
    + 1, resp. u or u + 1. Among region S values, so that the kernel is in its wide form."""
    fmt = lp.format(name)
    n = 1 << 19
    u = ref.random_words(ref.stream_key(SEED), 0, n)
    rng = np.random.default_rng(14)
    x = rng.uniform(0.1, 0.9, n) * float(fmt.min_normal)  # region S
    e = fmt.emin - fmt.man_bits - 11  # binade of the 63-bit values
    i63 = np.flatnonzero((u >= np.uint64(2**53)) & (u < np.uint64(2**54)))
    i64 = np.flatnonzero((u >= np.uint64(2**52)) & (u < np.uint64(2**53)))
    assert i63.size > 50 and i64.size > 50
    plus = {int(i): bool(rng.integers(0, 2)) for i in np.concatenate([i63, i64])}
    want = np.asarray(ref.quantize(x, fmt, Rounding.STOCHASTIC, False, None, ref.stream_key(SEED))).copy()
    s = float(fmt.min_subnormal)
    for idx, bits, half in ((i63, 63, True), (i64, 64, False)):
        for i in idx.tolist():
            w = int(u[i])
            v = (w >> 1 if half else w) + plus[i]
            sign = -1.0 if i % 3 == 0 else 1.0
            x[i] = sign * math.ldexp(v, e - 52 - (bits - 63))
            up = w < (2 * v if half else v)
            assert up == plus[i]
            want[i] = sign * s if up else sign * 0.0
    got = lp.quantize(x, fmt, "stochastic", seed=SEED)
    assert_same_bits(got, want, x)


@pytest.mark.parametrize("mode", [Rounding.STOCHASTIC, Rounding.NEAREST], ids=lambda m: m.value)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_and_overlapping_out(use_isa, dtype, mode):
    """out=x, and out overlapping x one element further on: the bits of a separate output, also for
    the elements the stochastic forms redo after their vector pass (tiny values; float64: region S,
    here sparse so that the kernel stays in its narrow form)."""
    fmt = lp.format("e4m3fn")
    rng = np.random.default_rng(15)
    x = np.ones(20000, dtype=dtype) * 3
    idx = rng.choice(x.size, 40, replace=False)
    x[idx] = (_mixed(fmt, 10, rng)[:40] if dtype == np.float32 else _mixed64(fmt, 10, rng)[:40]).astype(dtype)
    want = ref.quantize(x, fmt, mode, False, None, ref.stream_key(SEED) if mode.is_stochastic else 0)
    y = x.copy()
    assert lp.quantize(y, fmt, mode, seed=SEED, out=y) is y
    assert_same_bits(y, want, x)
    buf = np.concatenate([x, np.zeros(1, dtype=dtype)])
    lp.quantize(buf[:-1], fmt, mode, seed=SEED, out=buf[1:])
    assert_same_bits(buf[1:], want, x)
    buf = np.concatenate([np.zeros(1, dtype=dtype), x])
    lp.quantize(buf[1:], fmt, mode, seed=SEED, out=buf[:-1])
    assert_same_bits(buf[:-1], want, x)
