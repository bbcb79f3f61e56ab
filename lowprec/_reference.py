"""Plain-NumPy reference of the compiled kernels, written to be read, not to be fast.

It rounds on *values* (float64 arithmetic that is exact here: scaling by powers of two, floor and
subtraction of the integer part), whereas the kernels round on bit patterns, so the two are
independent implementations of ``specs/formats.md``. The compiled kernels must equal this module bit
for bit; it is also the fallback when the compiled module is not available.
"""

from __future__ import annotations

import numpy as np

from .formats import FloatFormat, Specials
from .rounding import Rounding

__all__ = ["mix64", "stream_key", "random_words", "quantize", "encode", "qtorch_quantize"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int = 0) -> int:
    """Key of the random stream for (seed, stream): ``mix64(seed + (stream + 1) * golden)``."""
    z = (int(seed) + (int(stream) + 1) * int(_GOLDEN)) & _MASK64
    z = ((z ^ (z >> 30)) * int(_M1)) & _MASK64  # mix64 on a Python int
    z = ((z ^ (z >> 27)) * int(_M2)) & _MASK64
    return z ^ (z >> 31)


def random_words(key: int, first: int, n: int) -> np.ndarray:
    """The 64-bit random words of elements ``first .. first + n - 1``."""
    idx = np.arange(first, first + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (idx + np.uint64(1)) * _GOLDEN
    return mix64(z)


def _fraction_word(frac: np.ndarray) -> np.ndarray:
    """floor(frac * 2^64) with a sticky last bit when frac * 2^64 is not an integer (frac in [0, 1))."""
    hi_f = np.floor(np.ldexp(frac, 32))
    rest = np.ldexp(frac, 32) - hi_f
    lo_f = np.floor(np.ldexp(rest, 32))
    sticky = (np.ldexp(rest, 32) - lo_f) > 0
    word = (hi_f.astype(np.uint64) << np.uint64(32)) | lo_f.astype(np.uint64)
    return word | sticky.astype(np.uint64)


def _increment(
    q: np.ndarray,
    frac: np.ndarray,
    neg: np.ndarray,
    mode: Rounding,
    sr_bits: int | None,
    key: int,
    odd: np.ndarray | None = None,
) -> np.ndarray:
    """Whether to step from q (the value rounded toward zero, in units) to q + 1.

    ``odd`` says whether the code of q is odd (default: q itself is odd); ties of ``nearest`` go
    to the even code and ``odd`` rounds to the odd code.
    """
    inexact = frac > 0
    if odd is None:
        odd = (q % 2) == 1
    if mode is Rounding.NEAREST:
        return (frac > 0.5) | ((frac == 0.5) & odd)
    if mode is Rounding.NEAREST_AWAY:
        return frac >= 0.5
    if mode is Rounding.TOWARD_ZERO:
        return np.zeros(q.shape, bool)
    if mode is Rounding.UP:
        return inexact & ~neg
    if mode is Rounding.DOWN:
        return inexact & neg
    if mode is Rounding.ODD:
        return inexact & ~odd
    u = random_words(key, 0, q.size).reshape(q.shape)
    if mode is Rounding.STOCHASTIC_EQUAL:
        return inexact & ((u >> np.uint64(63)) == 1)
    if sr_bits is None:  # exact: up with probability frac
        return u < _fraction_word(frac)
    t = np.rint(np.ldexp(frac, sr_bits)).astype(np.uint64)  # RNE(frac * 2^r)
    return (u >> np.uint64(64 - sr_bits)) < t


def _round_values(
    x: np.ndarray, fmt: FloatFormat, mode: Rounding, saturate: bool, sr_bits: int | None, key: int
) -> np.ndarray:
    """Round float64 values x to fmt; returns float64 (NaN for NaN results)."""
    a = np.abs(x)
    neg = np.signbit(x)
    finite = np.isfinite(x)
    a_f = np.where(finite, a, 0.0)
    _, ex = np.frexp(a_f)
    e = ex.astype(np.int64) - 1  # floor(log2 a) for a > 0
    below = (e < fmt.emin) | (a_f == 0)
    m_sub = fmt.man_bits if fmt.subnormals else 0
    unit = np.where(below, fmt.emin - m_sub, np.maximum(e, fmt.emin) - fmt.man_bits)
    scaled = np.ldexp(a_f, (-unit).astype(np.int32))  # exact: a power-of-two scaling
    q = np.floor(scaled)
    frac = scaled - q
    # Parity of q's code: its last fraction bit, or with no fraction bits the exponent field's.
    odd = (q % 2) == 1
    if fmt.man_bits == 0:
        odd = np.where(below, odd, ((e + fmt.bias) % 2) == 1)
    inc = _increment(q, frac, neg, mode, sr_bits, key, odd)
    r = np.ldexp(q + inc, unit.astype(np.int32))

    has_inf = fmt.specials is Specials.IEEE
    always_sat = saturate or fmt.specials is Specials.NONE
    big = np.inf if has_inf else np.nan
    over = r > fmt.max
    # round-to-odd never passes a max whose code is odd (all formats but 'fn', whose max is even)
    odd_max = fmt.specials is not Specials.FN if fmt.man_bits > 0 else fmt.specials is not Specials.IEEE
    if mode is Rounding.TOWARD_ZERO or (mode is Rounding.ODD and odd_max):
        sat = np.ones(r.shape, bool)
    elif mode is Rounding.UP:
        sat = neg | always_sat
    elif mode is Rounding.DOWN:
        sat = ~neg | always_sat
    else:
        sat = np.full(r.shape, always_sat)
    r = np.where(over, np.where(sat, fmt.max, big), r)
    r = np.where(np.isinf(x), fmt.max if always_sat else big, r)
    r = np.where(np.isnan(x), np.nan, r)
    r = np.where(neg, -r, r)
    if fmt.specials is Specials.FNUZ:
        r = np.where(r == 0, 0.0, r)  # no negative zero
    return r


def _rounded_flat(
    x: np.ndarray, fmt: FloatFormat, mode: Rounding, saturate: bool, sr_bits: int | None, key: int
) -> np.ndarray:
    """Flattened float64 results of rounding x (NaN, inf and overflow casts are expected here)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _round_values(np.asarray(x).astype(np.float64).ravel(), fmt, mode, saturate, sr_bits, key)


def quantize(
    x: np.ndarray,
    fmt: FloatFormat,
    mode: Rounding = Rounding.NEAREST,
    saturate: bool = False,
    sr_bits: int | None = None,
    key: int = 0,
) -> np.ndarray:
    """Reference quantize of a float32/float64 array (same dtype out, random words from index 0)."""
    x = np.asarray(x)
    return _rounded_flat(x, fmt, mode, saturate, sr_bits, key).astype(x.dtype).reshape(x.shape)


def encode(
    x: np.ndarray,
    fmt: FloatFormat,
    mode: Rounding = Rounding.NEAREST,
    saturate: bool = False,
    sr_bits: int | None = None,
    key: int = 0,
) -> np.ndarray:
    """Reference encode: round, then write sign | exponent | fraction codes."""
    x = np.asarray(x)
    v = _rounded_flat(x, fmt, mode, saturate, sr_bits, key)
    m, e = fmt.man_bits, fmt.exp_bits
    sign = np.signbit(v)  # NaN keeps its sign (ieee, fn); fnuz has one NaN code
    a = np.abs(np.where(np.isfinite(v), v, 0.0))
    _, ex = np.frexp(a)
    ee = ex.astype(np.int64) - 1
    normal = (a >= fmt.min_normal) & (a > 0)
    sub_code = np.ldexp(np.where(normal, 0.0, a), fmt.man_bits - fmt.emin).astype(
        np.uint64
    )  # integer multiples of the spacing
    frac = np.ldexp(a, (-ee).astype(np.int32)) - 1.0  # in [0, 1) for normals
    norm_code = ((np.where(normal, ee, 0) + fmt.bias).astype(np.uint64) << np.uint64(m)) | np.ldexp(
        np.where(normal, frac, 0.0), m
    ).astype(np.uint64)
    code = np.where(normal, norm_code, sub_code)
    top = np.uint64(2**e - 1) << np.uint64(m)
    code = np.where(np.isinf(v), top, code)
    if fmt.specials is Specials.IEEE:
        nan_code = top | np.uint64(1 << (m - 1))
    elif fmt.specials is Specials.FN:
        nan_code = top | np.uint64(2**m - 1)
    else:
        nan_code = np.uint64(0)
    code = np.where(np.isnan(v), nan_code, code)
    signbit = np.uint64(1) << np.uint64(e + m)
    code = code | np.where(sign, signbit, np.uint64(0))
    if fmt.specials is Specials.FNUZ:
        code = np.where(np.isnan(v), signbit, code)
    return code.astype(fmt.code_dtype).reshape(x.shape)


def qtorch_quantize(x: np.ndarray, exp_bits: int, man_bits: int, stochastic: bool = False, key: int = 0) -> np.ndarray:
    """QPyTorch ``float_quantize`` (CPU kernel) re-stated on float32 bit patterns."""
    x = np.asarray(x, dtype=np.float32)
    flat = x.ravel()
    bits = flat.view(np.uint32).astype(np.uint64)
    mask = (1 << (23 - man_bits)) - 1
    if stochastic:
        add = (random_words(key, 0, flat.size) >> np.uint64(32)) & np.uint64(mask)
    else:
        add = np.full(flat.size, 1 << (22 - man_bits), dtype=np.uint64)
    low32 = np.uint64(0xFFFFFFFF)
    not_mask = np.uint64(~mask & 0xFFFFFFFF)
    target_exp = ((bits >> np.uint64(23)) & np.uint64(0xFF)).astype(np.int64) - 127
    min_exp = -((1 << (exp_bits - 1)) - 2)
    sign = bits >> np.uint64(31)
    shift = ((np.uint64(127 + min_exp) << np.uint64(23)) | (sign << np.uint64(31))).astype(np.uint32).view(np.float32)
    val = (flat + shift).astype(np.float32)
    qs = ((val.view(np.uint32).astype(np.uint64) + add) & low32 & not_mask).astype(np.uint32)
    sub_result = (qs.view(np.float32) - shift).astype(np.float32)
    qn = (bits + add) & low32 & not_mask
    qexp = ((qn >> np.uint64(23)) & np.uint64(0xFF)).astype(np.int64)
    max_exp_store = (1 << (exp_bits - 1)) + 127
    max_man = (0x7FFFFF >> (23 - man_bits)) << (23 - man_bits)
    max_num = np.uint64((max_exp_store << 23) | max_man)
    clipped = (sign << np.uint64(31)) | max_num
    qn = np.where((qn != 0) & (qexp > max_exp_store), clipped, qn).astype(np.uint32)
    out = np.where(target_exp < min_exp, sub_result, qn.view(np.float32))
    return out.astype(np.float32).reshape(x.shape)
