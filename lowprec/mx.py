"""OCP Microscaling (MX v1.0) block formats and the E8M0 scale format.

A block of ``block_size`` elements along one axis shares one E8M0 scale ``X = 2**e``; element ``i``
stores ``P_i`` in the element format and represents ``X * P_i``. Scale rules (``scale_rule=``):

``floor`` (OCP spec)
    ``e = floor(log2 amax) - emax_elem``; elements beyond the element max clip (saturate).
``ceil``
    ``e = ceil(log2 amax) - emax_elem``.
``rceil`` (NVIDIA cuBLAS/Transformer Engine MXFP8, torchao training default)
    ``e`` = exponent of ``fp32(amax * fp32(1 / max_elem))`` rounded up whenever a mantissa bit is set.
``even`` (torchao)
    amax first rounded to the element precision (nearest-even), then ``floor``.

Edges: an all-zero block gets ``X = 2**-127`` (code 0x00); a block holding NaN or inf gets
``X = NaN`` (0xFF) and all its elements decode to NaN; the exponent is clamped to [-127, 127].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _reference as ref
from .formats import FixedFormat, FloatFormat, ScaleFormat, format
from .rounding import Rounding, rounding_mode

__all__ = ["MXFormat", "MXArray", "mx_format", "mx_quantize", "mx_encode", "mx_decode", "SCALE_RULES"]

SCALE_RULES = ("floor", "ceil", "rceil", "even")
E8M0 = ScaleFormat(8, 127, name="e8m0fnu")


@dataclass(frozen=True)
class MXFormat:
    """An MX block format: element format, block size and scale rule.

    Parameters
    ----------
    element : FloatFormat or FixedFormat
        ``e4m3fn``, ``e5m2``, ``e2m3fn``, ``e3m2fn``, ``e2m1fn`` or MXINT8's ``FixedFormat(8, 6,
        symmetric=True)``.
    block_size : int
        Elements per shared scale (32 in OCP MX v1.0).
    scale_rule : str
        One of :data:`SCALE_RULES`.
    name : str, optional
    """

    element: FloatFormat | FixedFormat
    block_size: int = 32
    scale_rule: str = "floor"
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.element, (FloatFormat, FixedFormat)):
            raise TypeError(f"element must be a FloatFormat or FixedFormat, got {type(self.element).__name__}")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, (int, np.integer)):
            raise TypeError(f"block_size must be an int, got {type(self.block_size).__name__}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if self.scale_rule not in SCALE_RULES:
            raise ValueError(f"scale_rule must be one of {SCALE_RULES}, got {self.scale_rule!r}")

    @property
    def emax_elem(self) -> int:
        """Exponent of the element format's largest power of two (0 for MXINT8)."""
        if isinstance(self.element, FixedFormat):
            return int(math.floor(math.log2(self.element.max)))
        return self.element.emax

    @property
    def elem_max(self) -> float:
        return self.element.max

    def __str__(self) -> str:
        return self.name or f"MXFormat({self.element}, block_size={self.block_size}, scale_rule='{self.scale_rule}')"


_MX_ELEMENTS = {
    "mxfp8_e4m3": "e4m3fn",
    "mxfp8_e5m2": "e5m2",
    "mxfp6_e2m3": "e2m3fn",
    "mxfp6_e3m2": "e3m2fn",
    "mxfp4_e2m1": "e2m1fn",
    "mxfp4": "e2m1fn",
}
MXINT8_ELEMENT = FixedFormat(8, 6, signed=True, symmetric=True, name="mxint8_element")


def mx_format(spec: Any, block_size: int = 32, scale_rule: str = "floor") -> MXFormat:
    """Resolve ``"mxfp8_e4m3"``, ``"mxfp8_e5m2"``, ``"mxfp6_e2m3"``, ``"mxfp6_e3m2"``,
    ``"mxfp4_e2m1"``, ``"mxint8"``, or an element format, to an :class:`MXFormat`."""
    if isinstance(spec, MXFormat):
        return spec
    if isinstance(spec, str) and spec.lower() in _MX_ELEMENTS:
        elem: Any = format(_MX_ELEMENTS[spec.lower()])
        return MXFormat(elem, block_size, scale_rule, name=spec.lower())
    if isinstance(spec, str) and spec.lower() == "mxint8":
        return MXFormat(MXINT8_ELEMENT, block_size, scale_rule, name="mxint8")
    elem = format(spec)
    if isinstance(elem, ScaleFormat):
        raise ValueError("an MX element format cannot be the E8M0 scale format")
    return MXFormat(elem, block_size, scale_rule)


class MXArray(NamedTuple):
    """Codes of an MX-quantized array: element codes (shape of x) and E8M0 scale codes (the block
    axis shortened to the number of blocks)."""

    codes: np.ndarray
    scales: np.ndarray
    format: MXFormat
    axis: int


# --- E8M0 scale conversion -----------------------------------------------------------------------
def scale_exponents(x: np.ndarray, fmt: ScaleFormat, mode: Rounding, sr_bits: int | None, key: int) -> np.ndarray:
    """Exponents (float64: integers, NaN for NaN codes) of positive reals rounded to E8M0.

    ``nearest`` breaks the tie at 1.5 * 2**k toward the even code (gfloat), ``nearest_away``
    upward (ml_dtypes and torch casts), ``down``/``toward_zero`` floor, ``up`` ceil.
    """
    v = np.asarray(x, dtype=np.float64).ravel()
    ok = np.isfinite(v) & (v > 0)
    vv = np.where(ok, v, 1.0)
    fr, ex = np.frexp(vv)
    k = ex.astype(np.int64) - 1  # vv = 2^k * (1 + f)
    frac = fr * 2.0 - 1.0  # f in [0, 1), exact
    code_odd = ((k + fmt.bias) % 2) == 1
    inc = ref._increment(np.ones(v.shape), frac, np.zeros(v.shape, bool), mode, sr_bits, key, code_odd)
    e = (k + inc).astype(np.float64)
    e = np.where(e < fmt.emin, float(fmt.emin), e)
    e = np.where(e > fmt.emax, np.nan, e)
    return np.where(ok, e, np.nan)


def scale_quantize(x: np.ndarray, fmt: ScaleFormat, mode: Rounding, sr_bits: int | None, key: int) -> np.ndarray:
    e = scale_exponents(x, fmt, mode, sr_bits, key)
    r = np.ldexp(1.0, np.where(np.isnan(e), 0, e).astype(np.int32))
    return np.where(np.isnan(e), np.nan, r).astype(x.dtype).reshape(x.shape)


def scale_encode(x: np.ndarray, fmt: ScaleFormat, mode: Rounding, sr_bits: int | None, key: int) -> np.ndarray:
    e = scale_exponents(x, fmt, mode, sr_bits, key)
    c = np.where(np.isnan(e), 2**fmt.exp_bits - 1, np.where(np.isnan(e), 0, e) + fmt.bias)
    return c.astype(fmt.code_dtype).reshape(np.shape(x))


# --- block scales ----------------------------------------------------------------------------------
def _block_scale_exponents(blocks: np.ndarray, fmt: MXFormat) -> np.ndarray:
    """Scale exponent per block (float64 integers in [-127, 127], NaN for a NaN scale)."""
    bad = ~np.isfinite(blocks).all(axis=-1)
    amax = np.max(np.abs(np.where(np.isfinite(blocks), blocks, 0.0)), axis=-1)
    zero = amax == 0
    safe = np.where(zero, 1.0, amax)
    rule = fmt.scale_rule
    if rule == "rceil":
        inv = np.float32(1.0) / np.float32(fmt.elem_max)
        v = (safe.astype(np.float32) * inv).astype(np.float64)  # fp32(amax * fp32(1/max_elem))
        fr, ex = np.frexp(v)
        e = ex.astype(np.int64) - 1 + (fr != 0.5)  # round up when any mantissa bit is set
        e = np.where(v <= 2.0**-127, -127, e)
        e = np.where(np.isinf(v), 127, e)
    else:
        if rule == "even" and isinstance(fmt.element, FloatFormat):
            safe = ref.quantize(safe, FloatFormat(11, fmt.element.man_bits), Rounding.NEAREST)
        fr, ex = np.frexp(safe)
        lg = ex.astype(np.int64) - 1  # floor(log2)
        if rule == "ceil":
            lg = lg + (fr != 0.5)
        e = lg - fmt.emax_elem
    e = np.clip(e, -127, 127).astype(np.float64)
    e = np.where(zero, -127.0, e)
    return np.where(bad, np.nan, e)


def _blocked(x: np.ndarray, axis: int, k: int) -> tuple[np.ndarray, int]:
    """Move axis last and pad it with zeros to a multiple of k; returns (blocks, original length)."""
    xm = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = xm.shape[-1]
    nb = -(-n // k)
    pad = nb * k - n
    if pad:
        xm = np.concatenate([xm, np.zeros((*xm.shape[:-1], pad))], axis=-1)
    return xm.reshape(*xm.shape[:-1], nb, k), n


def _check_axis(x: np.ndarray, axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension for block scaling")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {x.ndim} dimensions")
    return int(axis) % x.ndim


def _prepare(x: Any, fmt: Any, axis: Any, block_size: Any, scale_rule: Any, rounding: Any, seed: Any):
    from ._quantize import _as_float_array, _check_seed

    arr, _ = _as_float_array(x)
    ax = _check_axis(arr, axis)
    f = mx_format(fmt) if not isinstance(fmt, MXFormat) else fmt
    if block_size is not None or scale_rule is not None:
        f = MXFormat(
            f.element,
            f.block_size if block_size is None else block_size,
            f.scale_rule if scale_rule is None else scale_rule,
            f.name,
        )
    mode = rounding_mode(rounding)
    seed_v = _check_seed(seed) if mode.is_stochastic else 0
    return arr, ax, f, mode, seed_v


def _quantize_blocks(arr: np.ndarray, ax: int, f: MXFormat, mode: Rounding, seed: int, flush_subnormals: bool):
    from ._quantize import quantize

    src = np.where(np.abs(arr) < 2.0**-126, 0.0 * arr, arr) if flush_subnormals else arr
    blocks, n = _blocked(src, ax, f.block_size)
    e = _block_scale_exponents(blocks, f)
    e_int = np.where(np.isnan(e), 0, e).astype(np.int32)
    scaled = np.ldexp(blocks, -e_int[..., None])  # exact: float64 power-of-two scaling
    p = quantize(scaled, f.element, mode, saturate=True, seed=seed if mode.is_stochastic else None)
    return blocks, n, e, p


def mx_quantize(
    x: Any,
    fmt: Any = "mxfp8_e4m3",
    *,
    axis: int = -1,
    block_size: int | None = None,
    scale_rule: str | None = None,
    rounding: str = "nearest",
    seed: int | None = None,
    flush_subnormals: bool = False,
) -> np.ndarray:
    """Quantize ``x`` to an MX format and return the dequantized values (dtype of ``x``).

    Parameters
    ----------
    x : array_like of float32/float64
    fmt : str or MXFormat
        ``"mxfp8_e4m3"``, ``"mxfp8_e5m2"``, ``"mxfp6_e2m3"``, ``"mxfp6_e3m2"``, ``"mxfp4_e2m1"``,
        ``"mxint8"``, or an :class:`MXFormat`.
    axis : int
        Axis along which blocks of ``block_size`` consecutive elements share a scale; a last partial
        block forms a block of its own.
    block_size, scale_rule : optional
        Override the format's (32, ``"floor"``).
    rounding, seed
        Element rounding (elements always saturate), as in :func:`lowprec.quantize`.
    flush_subnormals : bool
        Treat float32-subnormal inputs as zero (as some hardware does).
    """
    arr, ax, f, mode, seed_v = _prepare(x, fmt, axis, block_size, scale_rule, rounding, seed)
    blocks, n, e, p = _quantize_blocks(arr, ax, f, mode, seed_v, flush_subnormals)
    vals = np.ldexp(p, np.where(np.isnan(e), 0, e).astype(np.int32)[..., None])
    vals = np.where(np.isnan(e)[..., None], np.nan, vals)
    vals = vals.reshape(*vals.shape[:-2], -1)[..., :n]
    return np.moveaxis(vals, -1, ax).astype(arr.dtype)


def mx_encode(
    x: Any,
    fmt: Any = "mxfp8_e4m3",
    *,
    axis: int = -1,
    block_size: int | None = None,
    scale_rule: str | None = None,
    rounding: str = "nearest",
    seed: int | None = None,
    flush_subnormals: bool = False,
) -> MXArray:
    """Like :func:`mx_quantize` but return the element codes and the E8M0 scale codes."""
    from ._quantize import encode

    arr, ax, f, mode, seed_v = _prepare(x, fmt, axis, block_size, scale_rule, rounding, seed)
    blocks, n, e, p = _quantize_blocks(arr, ax, f, mode, seed_v, flush_subnormals)
    codes = encode(p, f.element, "nearest", saturate=True)  # p is already on the element grid
    codes = codes.reshape(*codes.shape[:-2], -1)[..., :n]
    scales = np.where(np.isnan(e), 255, np.where(np.isnan(e), 0, e) + 127).astype(np.uint8)
    return MXArray(np.moveaxis(codes, -1, ax), np.moveaxis(scales, -1, ax), f, ax)


def mx_decode(data: MXArray, dtype: Any = np.float32) -> np.ndarray:
    """Values of an :class:`MXArray`: ``X * P`` per element (NaN where the block's scale is NaN)."""
    from ._quantize import decode

    if not isinstance(data, MXArray):
        raise TypeError(f"data must be an MXArray, got {type(data).__name__}")
    f, ax = data.format, data.axis
    p = decode(data.codes, f.element, np.float64)
    pm = np.moveaxis(p, ax, -1)
    n = pm.shape[-1]
    sm = np.moveaxis(np.asarray(data.scales), ax, -1)
    if sm.shape[-1] != -(-n // f.block_size):
        raise ValueError("scales do not match the number of blocks along the axis")
    se = np.repeat(sm.astype(np.int64), f.block_size, axis=-1)[..., :n]
    vals = np.ldexp(pm, (se - 127).astype(np.int32))
    vals = np.where(se == 255, np.nan, vals)
    return np.moveaxis(vals, -1, ax).astype(dtype)
