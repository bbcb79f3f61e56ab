"""Device-agnostic twin of the compiled rounding kernel, written with torch tensor ops only.

:func:`quantize_twin` rounds a float32/float64 tensor on whatever device it lives on (CPU, CUDA, ...)
and is bit-identical to :func:`lowprec.quantize` (the compiled kernel) for every deterministic
rounding mode; the stochastic modes draw the same counter-based random words, so the same key gives
the same result. It is a port of the plain-NumPy reference (``lowprec._reference``,
``lowprec._fixed`` and the E8M0 part of ``lowprec.mx``): rounding on *values* in float64, where
scaling by powers of two, ``floor`` and subtracting the integer part are exact.

Two things NumPy provides have to be built here:

* uint64 arithmetic, emulated on ``torch.int64``: addition and multiplication wrap the same way in
  two's complement, a logical right shift is an arithmetic shift followed by a mask, and an unsigned
  comparison is a signed one after flipping the top bit of both sides;
* ``ldexp`` with C semantics (one correct rounding, overflow to infinity, underflow to zero) for
  every exponent, from ``frexp`` and powers of two assembled from their bit patterns, so that no
  scaling depends on the accuracy of a device's ``pow``.
"""

from __future__ import annotations

import numpy as np
import torch

from .._fixed import _overflow_rule
from .._quantize import _check_fits
from ..formats import FixedFormat, FloatFormat, ScaleFormat, Specials
from ..rounding import Rounding, rounding_mode

__all__ = ["random_words_twin", "quantize_twin"]

_MASK64 = (1 << 64) - 1
_MIN64 = -(2**63)


def _s64(v: int) -> int:
    """The int64 whose two's-complement bit pattern is the uint64 ``v mod 2**64``."""
    v &= _MASK64
    return v - 2**64 if v >= 2**63 else v


_GOLDEN = _s64(0x9E3779B97F4A7C15)
_M1 = _s64(0xBF58476D1CE4E5B9)
_M2 = _s64(0x94D049BB133111EB)


# --- uint64 on int64 --------------------------------------------------------------------------------
def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of uint64 bit patterns held in int64, ``0 < s < 64``."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _unsigned_less(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``u < v`` for uint64 bit patterns held in int64."""
    return (u ^ _MIN64) < (v ^ _MIN64)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on uint64 bit patterns held in int64 (wrapping arithmetic)."""
    z = (z ^ _shr(z, 30)) * _M1
    z = (z ^ _shr(z, 27)) * _M2
    return z ^ _shr(z, 31)


def random_words_twin(key: int, first: int, n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The 64-bit random words of elements ``first .. first + n - 1`` of the stream ``key``.

    Returns an int64 tensor on ``device`` whose bit patterns equal
    ``lowprec._reference.random_words(key, first, n)`` (uint64): word ``i`` is
    ``mix64(key + (i + 1) * golden)`` modulo 2**64.
    """
    counter = _s64(int(key) + (int(first) + 1) * 0x9E3779B97F4A7C15)  # counter of element `first`
    steps = torch.arange(int(n), dtype=torch.int64, device=device)
    return mix64(counter + steps * _GOLDEN)


# --- exact powers of two ------------------------------------------------------------------------------
def _pow2(k: torch.Tensor) -> torch.Tensor:
    """``2.0**k`` (float64) for int64 k in [-1022, 1023], exactly, from its bit pattern."""
    return ((k + 1023) << 52).view(torch.float64)


def _scale(m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``m * 2**t`` rounded once, for ``m`` a mantissa of ``frexp`` (``0.5 <= |m| < 1``, or 0, inf, NaN).

    Two products with normal powers of two, the first exact: ``m * 2**t1`` stays in [2**-61, 4), and
    ``2**t2`` with ``t2 = clamp(t, -1022, 1023)`` does the single rounding (to a subnormal, to inf or
    to 0). Where ``t1`` is clamped the exact result is below 2**-1082 or at least 2**1024, and rounds
    to the same 0 or inf. Zeros, infinities and NaN pass through unchanged.
    """
    t2 = t.clamp(-1022, 1023)
    t1 = (t - t2).clamp(-60, 2)
    return (m * _pow2(t1)) * _pow2(t2)


def _ldexp(x: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """``x * 2**k`` (float64) rounded once, as C ``ldexp``: overflow to inf, underflow to (signed) 0."""
    if isinstance(k, int):
        k = max(-4000, min(4000, k))  # beyond, every nonzero double goes to 0 or inf alike
    m, ex = torch.frexp(x)
    return _scale(m, ex.to(torch.int64) + k)


# --- the rounding decision ------------------------------------------------------------------------------
def _fraction_word(frac: torch.Tensor) -> torch.Tensor:
    """floor(frac * 2^64) with a sticky last bit when frac * 2^64 is not an integer (frac in [0, 1)).

    int64 bit patterns of the uint64 words.
    """
    hi_f = torch.floor(frac * 2.0**32)
    rest = frac * 2.0**32 - hi_f
    lo_f = torch.floor(rest * 2.0**32)
    sticky = (rest * 2.0**32 - lo_f) > 0
    word = (hi_f.to(torch.int64) << 32) | lo_f.to(torch.int64)
    return word | sticky.to(torch.int64)


def _increment(
    q: torch.Tensor,
    frac: torch.Tensor,
    neg: torch.Tensor,
    mode: Rounding,
    sr_bits: int | None,
    key: int,
    odd: torch.Tensor | None = None,
) -> torch.Tensor:
    """Whether to step from q (the value rounded toward zero, in units) to q + 1.

    ``odd`` says whether the code of q is odd (default: q itself is odd); ties of ``nearest`` go
    to the even code and ``odd`` rounds to the odd code.
    """
    inexact = frac > 0
    if odd is None:
        odd = torch.fmod(q, 2.0) == 1
    if mode is Rounding.NEAREST:
        return (frac > 0.5) | ((frac == 0.5) & odd)
    if mode is Rounding.NEAREST_AWAY:
        return frac >= 0.5
    if mode is Rounding.TOWARD_ZERO:
        return torch.zeros_like(inexact)
    if mode is Rounding.UP:
        return inexact & ~neg
    if mode is Rounding.DOWN:
        return inexact & neg
    if mode is Rounding.ODD:
        return inexact & ~odd
    u = random_words_twin(key, 0, q.numel(), q.device).reshape(q.shape)
    if mode is Rounding.STOCHASTIC_EQUAL:
        return inexact & (u < 0)  # top bit set
    if sr_bits is None:  # exact: up with probability frac
        return _unsigned_less(u, _fraction_word(frac))
    t = torch.round(frac * 2.0**sr_bits).to(torch.int64)  # RNE(frac * 2^r), in [0, 2^r]
    return _shr(u, 64 - sr_bits) < t


# --- floating point ------------------------------------------------------------------------------------
def _round_values(
    x: torch.Tensor, fmt: FloatFormat, mode: Rounding, saturate: bool, sr_bits: int | None, key: int
) -> torch.Tensor:
    """Round float64 values x to fmt; returns float64 (NaN for NaN results)."""
    a = torch.abs(x)
    neg = torch.signbit(x)
    finite = torch.isfinite(x)
    a_f = torch.where(finite, a, 0.0)
    m_a, ex = torch.frexp(a_f)
    e = ex.to(torch.int64) - 1  # floor(log2 a) for a > 0
    below = (e < fmt.emin) | (a_f == 0)
    m_sub = fmt.man_bits if fmt.subnormals else 0
    unit = torch.where(below, fmt.emin - m_sub, torch.clamp(e, min=fmt.emin) - fmt.man_bits)
    scaled = _scale(m_a, ex - unit)  # exact: a power-of-two scaling
    q = torch.floor(scaled)
    frac = scaled - q
    # Parity of q's code: its last fraction bit, or with no fraction bits the exponent field's.
    odd = torch.fmod(q, 2.0) == 1
    if fmt.man_bits == 0:
        odd = torch.where(below, odd, torch.remainder(e + fmt.bias, 2) == 1)
    inc = _increment(q, frac, neg, mode, sr_bits, key, odd)
    r = _ldexp(q + inc.to(q.dtype), unit)

    has_inf = fmt.specials is Specials.IEEE
    always_sat = saturate or fmt.specials is Specials.NONE
    big = float("inf") if has_inf else float("nan")
    over = r > fmt.max
    # round-to-odd never passes a max whose code is odd (all formats but 'fn', whose max is even)
    odd_max = fmt.specials is not Specials.FN if fmt.man_bits > 0 else fmt.specials is not Specials.IEEE
    if mode is Rounding.TOWARD_ZERO or (mode is Rounding.ODD and odd_max):
        sat = torch.ones_like(over)
    elif mode is Rounding.UP:
        sat = neg | always_sat
    elif mode is Rounding.DOWN:
        sat = ~neg | always_sat
    else:
        sat = torch.full_like(over, always_sat)
    r = torch.where(over & sat, fmt.max, torch.where(over, big, r))
    r = torch.where(torch.isinf(x), fmt.max if always_sat else big, r)
    r = torch.where(torch.isnan(x), float("nan"), r)
    r = torch.where(neg, -r, r)
    if fmt.specials is Specials.FNUZ:
        r = torch.where(r == 0, 0.0, r)  # no negative zero
    return r


# --- fixed point --------------------------------------------------------------------------------------
def _mod(a: torch.Tensor, b: float) -> torch.Tensor:
    """``numpy.mod`` for float64 (result with the sign of b, b > 0), step for step."""
    r = torch.fmod(a, b)
    return torch.where(r != 0, torch.where(r < 0, r + b, r), 0.0)


def _fixed_round(
    v: torch.Tensor, fmt: FixedFormat, mode: Rounding, saturate: bool | None, sr_bits: int | None, key: int
) -> torch.Tensor:
    """Integer multiples k (float64, exact) of 2**-frac_bits; NaN stays NaN."""
    rule = _overflow_rule(fmt, saturate)
    finite = torch.isfinite(v)
    scaled = _ldexp(torch.where(finite, torch.abs(v), 0.0), fmt.frac_bits)  # exact power-of-two scaling
    q = torch.floor(scaled)
    frac = scaled - q
    neg = torch.signbit(v)
    k = q + _increment(q, frac, neg, mode, sr_bits, key).to(q.dtype)
    k = torch.where(neg, -k, k)
    k = torch.where(torch.isinf(v), torch.copysign(torch.full_like(v, float("inf")), v), k)
    if rule == "saturate":
        k = torch.clamp(k, float(fmt.kmin), float(fmt.kmax))
    elif rule == "wrap":
        span = 2.0**fmt.bits
        k = torch.where(torch.isinf(k), float("nan"), k)
        k = _mod(k - float(fmt.kmin), span) + float(fmt.kmin)
    return torch.where(torch.isnan(v), float("nan"), k)


def _fixed_quantize(
    v: torch.Tensor, fmt: FixedFormat, mode: Rounding, saturate: bool | None, sr_bits: int | None, key: int
) -> torch.Tensor:
    k = _fixed_round(v, fmt, mode, saturate, sr_bits, key)
    r = _ldexp(k, -fmt.frac_bits)
    return torch.where(r == 0, torch.copysign(torch.zeros_like(v), v), r)


# --- E8M0 scales ----------------------------------------------------------------------------------------
def _scale_quantize(v: torch.Tensor, fmt: ScaleFormat, mode: Rounding, sr_bits: int | None, key: int) -> torch.Tensor:
    """Positive reals rounded to powers of two ``2**e``, ``emin <= e <= emax``; NaN otherwise."""
    ok = torch.isfinite(v) & (v > 0)
    vv = torch.where(ok, v, 1.0)
    fr, ex = torch.frexp(vv)
    k = ex.to(torch.int64) - 1  # vv = 2^k * (1 + f)
    frac = fr * 2.0 - 1.0  # f in [0, 1), exact
    code_odd = torch.remainder(k + fmt.bias, 2) == 1
    ones = torch.ones_like(v)
    inc = _increment(ones, frac, torch.zeros_like(ok), mode, sr_bits, key, code_odd)
    e = (k + inc.to(torch.int64)).clamp(min=fmt.emin)
    r = _ldexp(torch.ones_like(v), e)
    return torch.where(ok & (e <= fmt.emax), r, float("nan"))


# --- public --------------------------------------------------------------------------------------------
def quantize_twin(
    x: torch.Tensor,
    fmt: FloatFormat | FixedFormat | ScaleFormat,
    mode: Rounding,
    saturate: bool | None = None,
    sr_bits: int | None = None,
    key: int = 0,
) -> torch.Tensor:
    """Round every element of ``x`` to ``fmt``, as :func:`lowprec.quantize` does, with torch ops.

    Parameters
    ----------
    x : torch.Tensor
        float32 or float64, on any device, of any shape and strides; never modified.
    fmt : FloatFormat, FixedFormat or ScaleFormat
        The resolved target format.
    mode : Rounding
        Rounding mode.
    saturate : bool, optional
        Float formats: ``None`` or ``False`` send overflow to inf (NaN where the format has no inf),
        ``True`` clamps to +-max. Fixed point: ``None`` applies the format's ``overflow`` rule,
        ``True`` saturates, ``False`` wraps. Ignored for ScaleFormat.
    sr_bits : int, optional
        With ``Rounding.STOCHASTIC``: round the probability to this many random bits.
    key : int
        Key of the random stream (``lowprec._reference.stream_key(seed)``); element ``i`` of the
        flattened (C-order) tensor draws word ``i`` of ``random_words_twin(key, 0, n)``.

    Returns
    -------
    torch.Tensor
        New contiguous tensor of ``x``'s dtype, shape and device.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be a float32 or float64 tensor, got dtype {x.dtype}")
    mode = rounding_mode(mode)
    key = int(key) & _MASK64
    v = x.detach().reshape(-1).to(torch.float64)  # exact; a copy in C order where x is strided
    if isinstance(fmt, FixedFormat):
        r = _fixed_quantize(v, fmt, mode, saturate, sr_bits, key)
    elif isinstance(fmt, ScaleFormat):
        r = _scale_quantize(v, fmt, mode, sr_bits, key)
    elif isinstance(fmt, FloatFormat):
        _check_fits(fmt, np.dtype(np.float32 if x.dtype == torch.float32 else np.float64))
        r = _round_values(v, fmt, mode, bool(saturate), sr_bits, key)
    else:
        raise TypeError(f"fmt must be a FloatFormat, FixedFormat or ScaleFormat, got {type(fmt).__name__}")
    return r.to(x.dtype).reshape(x.shape)  # r is a fresh tensor, never x's storage
