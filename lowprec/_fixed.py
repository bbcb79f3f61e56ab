"""Fixed-point and integer rounding (NumPy; values k * 2**-frac_bits)."""

from __future__ import annotations

import numpy as np

from . import _reference as ref
from .formats import FixedFormat
from .rounding import Rounding

__all__ = ["fixed_quantize", "fixed_encode", "fixed_decode"]


def _overflow_rule(fmt: FixedFormat, saturate: bool | None) -> str:
    if saturate is None:
        return fmt.overflow
    return "saturate" if saturate else "wrap"


def fixed_round(
    x: np.ndarray, fmt: FixedFormat, mode: Rounding, saturate: bool | None, sr_bits: int | None, key: int
) -> np.ndarray:
    """Integer multiples k (float64, exact) of 2**-frac_bits; NaN stays NaN."""
    v = np.asarray(x, dtype=np.float64).ravel()
    rule = _overflow_rule(fmt, saturate)
    finite = np.isfinite(v)
    scaled = np.ldexp(np.where(finite, np.abs(v), 0.0), fmt.frac_bits)  # exact power-of-two scaling
    q = np.floor(scaled)
    frac = scaled - q
    neg = np.signbit(v)
    k = q + ref._increment(q, frac, neg, mode, sr_bits, key)
    k = np.where(neg, -k, k)
    k = np.where(np.isinf(v), np.copysign(np.inf, v), k)
    if rule == "saturate":
        k = np.clip(k, fmt.kmin, fmt.kmax)
    elif rule == "wrap":
        span = 2.0**fmt.bits
        k = np.where(np.isinf(k), np.nan, k)
        k = np.mod(k - fmt.kmin, span) + fmt.kmin
    k = np.where(np.isnan(v), np.nan, k)
    return k.reshape(np.shape(x))


def fixed_quantize(
    x: np.ndarray, fmt: FixedFormat, mode: Rounding, saturate: bool | None, sr_bits: int | None, key: int
) -> np.ndarray:
    k = fixed_round(x, fmt, mode, saturate, sr_bits, key)
    r = np.ldexp(k, -fmt.frac_bits)
    r = np.where(r == 0, np.copysign(0.0, np.asarray(x, dtype=np.float64)), r)
    return r.astype(x.dtype)


def fixed_encode(
    x: np.ndarray, fmt: FixedFormat, mode: Rounding, saturate: bool | None, sr_bits: int | None, key: int
) -> np.ndarray:
    """Codes: k as an unsigned word of fmt.bits bits (two's complement for signed formats)."""
    if np.isnan(x).any():
        raise ValueError(f"x contains NaN, which format {fmt} cannot encode")
    if _overflow_rule(fmt, saturate) == "none":
        raise ValueError(f"format {fmt} has overflow='none': its values have no fixed-width code")
    k = fixed_round(x, fmt, mode, saturate, sr_bits, key).astype(np.int64)
    codes = k.astype(np.uint64) & np.uint64((1 << fmt.bits) - 1)
    return codes.astype(fmt.code_dtype)


def fixed_decode(codes: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    c = np.asarray(codes).astype(np.int64)
    if fmt.signed:
        c = np.where(c >= 2 ** (fmt.bits - 1), c - 2**fmt.bits, c)
    return np.ldexp(c.astype(np.float64), -fmt.frac_bits)
