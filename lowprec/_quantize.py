"""Elementwise rounding: ``quantize``, ``encode`` and ``decode``."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np

from . import _reference as ref
from ._fixed import fixed_decode, fixed_encode, fixed_quantize
from ._native import core, default_threads
from .formats import FixedFormat, FloatFormat, ScaleFormat, Specials, format
from .rounding import Rounding, rounding_mode

__all__ = ["quantize", "encode", "decode"]

_MODE_CODES = {
    Rounding.NEAREST: 0,
    Rounding.NEAREST_AWAY: 1,
    Rounding.TOWARD_ZERO: 2,
    Rounding.UP: 3,
    Rounding.DOWN: 4,
    Rounding.ODD: 5,
    Rounding.STOCHASTIC: 6,
    Rounding.STOCHASTIC_EQUAL: 8,
}
_SR_BITS_MODE = 7
_QTORCH_MODES = {Rounding.NEAREST: 9, Rounding.STOCHASTIC: 10}
_SPECIALS_CODES = {Specials.IEEE: 0, Specials.FN: 1, Specials.FNUZ: 2, Specials.NONE: 3}
_LIMITS = {np.dtype(np.float32): (-126, 127, 23), np.dtype(np.float64): (-1022, 1023, 52)}


# --- argument checking -------------------------------------------------------------------------
def _as_float_array(x: Any, name: str = "x") -> tuple[np.ndarray, bool]:
    """Return (array, was_scalar); float32/float64 only."""
    if x is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    was_scalar = np.isscalar(x)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype not in _LIMITS:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr, bool(was_scalar)


def _check_fits(fmt: FloatFormat, dtype: np.dtype) -> None:
    lo, hi, man = _LIMITS[dtype]
    if fmt.man_bits > man:
        raise ValueError(f"format {fmt} has man_bits={fmt.man_bits}; {dtype} inputs allow at most {man}")
    if fmt.emin < lo or fmt.emax > hi:
        raise ValueError(
            f"format {fmt} spans exponents [{fmt.emin}, {fmt.emax}], beyond {dtype}'s [{lo}, {hi}]; use float64"
        )


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _check_threads(n_threads: Any) -> int:
    if n_threads is None:
        return default_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be an int or None, got {type(n_threads).__name__}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return int(n_threads)


def _check_seed(seed: Any) -> int:
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int or None, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


def _check_sr_bits(sr_bits: Any, mode: Rounding) -> int | None:
    if sr_bits is None:
        return None
    if mode is not Rounding.STOCHASTIC:
        raise ValueError(f"sr_bits applies to rounding='stochastic' only, not {mode.value!r}")
    if isinstance(sr_bits, bool) or not isinstance(sr_bits, (int, np.integer)):
        raise TypeError(f"sr_bits must be an int or None, got {type(sr_bits).__name__}")
    if not 1 <= sr_bits <= 52:
        raise ValueError(f"sr_bits must be in 1..52, got {sr_bits}")
    return int(sr_bits)


def _check_bool(v: Any, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    return bool(v)


def _params(fmt: FloatFormat, mode: Rounding, saturate: bool, sr_bits: int | None, key: int, qtorch: bool) -> tuple:
    if qtorch:
        code = _QTORCH_MODES[mode]
    elif sr_bits is not None:
        code = _SR_BITS_MODE
    else:
        code = _MODE_CODES[mode]
    return (
        fmt.exp_bits,
        fmt.man_bits,
        fmt.emin,
        int(fmt.subnormals),
        _SPECIALS_CODES[fmt.specials],
        int(saturate),
        code,
        sr_bits or 0,
        key,
        fmt.max,
    )


def _check_qtorch(fmt: FloatFormat, mode: Rounding, arr: np.ndarray) -> None:
    if arr.dtype != np.float32:
        raise TypeError(f"qtorch_compat=True takes float32 input (as QPyTorch), got {arr.dtype}")
    if mode not in _QTORCH_MODES:
        raise ValueError(f"qtorch_compat=True supports rounding 'nearest' or 'stochastic', not {mode.value!r}")
    if fmt.exp_bits > 8 or fmt.man_bits > 23 or (fmt.man_bits == 23 and mode is Rounding.NEAREST):
        raise ValueError(
            "qtorch_compat=True needs exp_bits <= 8 and man_bits < 23 (QPyTorch flips the sign at man_bits=23)"
        )


def _prepare(x: Any, fmt_spec: Any, rounding: Any, sr_bits: Any, seed: Any, n_threads: Any, saturate: Any):
    arr, was_scalar = _as_float_array(x)
    fmt = format(fmt_spec)
    mode = rounding_mode(rounding)
    sr = _check_sr_bits(sr_bits, mode)
    nt = _check_threads(n_threads)
    sat = None if saturate is None else _check_bool(saturate, "saturate")
    key = ref.stream_key(_check_seed(seed)) if mode.is_stochastic else 0
    return arr, was_scalar, fmt, mode, sr, nt, sat, key


def _finish(res: np.ndarray, out: np.ndarray | None, was_scalar: bool):
    if out is not None:
        if res is not out:
            out[...] = res
        return out
    if was_scalar:
        return res[()]
    return res


# --- public API -----------------------------------------------------------------------------------
def quantize(
    x: Any,
    fmt: Any,
    rounding: str | Rounding = "nearest",
    *,
    saturate: bool | None = None,
    sr_bits: int | None = None,
    seed: int | None = None,
    qtorch_compat: bool = False,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> Any:
    """Round every element of ``x`` to the format ``fmt``; same dtype and shape out.

    Parameters
    ----------
    x : array_like of float32 or float64
        Input; never modified. float64 is rounded from its own 53 bits (no double rounding).
    fmt : str, format object, dtype or qtorch number
        Target format, see :func:`lowprec.format`.
    rounding : str or Rounding
        ``nearest`` (ties to even, default), ``nearest_away``, ``toward_zero``, ``up``, ``down``,
        ``odd``, ``stochastic``, ``stochastic_equal``.
    saturate : bool, optional
        Float formats: ``False`` (default) sends overflow to inf where the format has it, else NaN;
        ``True`` clamps everything beyond +-max, infinities included, to +-max. Formats without inf
        and NaN always saturate. Fixed point: overrides the format's ``overflow``
        (``True`` = saturate, ``False`` = wrap).
    sr_bits : int, optional
        With ``rounding="stochastic"``: use r random bits (probability rounded to r bits) instead of
        exact stochastic rounding.
    seed : int, optional
        Seed of the counter-based random stream (stochastic modes). Element ``i`` of the flattened
        array always draws the same bits for the same seed, whatever the thread count. ``None``
        draws a fresh seed.
    qtorch_compat : bool
        Reproduce ``qtorch.quant.float_quantize`` bit for bit (float32 only; ties away, no
        infinities, its own range rules).
    out : ndarray, optional
        Destination with the shape and dtype of ``x`` (may be ``x`` itself).
    n_threads : int, optional
        Threads for the compiled kernel; default all cores (``OMP_NUM_THREADS`` respected).

    Returns
    -------
    ndarray (or scalar for scalar input)
    """
    arr, was_scalar, fm, mode, sr, nt, sat, key = _prepare(x, fmt, rounding, sr_bits, seed, n_threads, saturate)
    qtorch = _check_bool(qtorch_compat, "qtorch_compat")
    if out is not None:
        _check_out(out, arr.shape, arr.dtype)
    if isinstance(fm, FixedFormat):
        if qtorch:
            raise ValueError("qtorch_compat applies to float formats")
        res = fixed_quantize(arr, fm, mode, sat, sr, key)
        return _finish(res, out, was_scalar)
    if isinstance(fm, ScaleFormat):
        from .mx import scale_quantize

        res = scale_quantize(arr, fm, mode, sr, key)
        return _finish(res, out, was_scalar)
    if qtorch:
        _check_qtorch(fm, mode, arr)
    else:
        _check_fits(fm, arr.dtype)
    params = _params(fm, mode, bool(sat), sr, key, qtorch)
    src = np.ascontiguousarray(arr).reshape(-1)
    direct = out is not None and out.flags.c_contiguous
    if direct and np.may_share_memory(src, out) and src.ctypes.data != out.ctypes.data:
        direct = False  # out overlaps x with an offset: round into a new array first
    dst = out.reshape(-1) if direct else np.empty(arr.shape, arr.dtype).reshape(-1)
    if core is None:
        if qtorch:
            r = ref.qtorch_quantize(src, fm.exp_bits, fm.man_bits, mode is Rounding.STOCHASTIC, key)
        else:
            r = ref.quantize(src, fm, mode, bool(sat), sr, key)
        dst[...] = r
    else:
        core.quantize(src, dst, params, nt)
    res = out if direct else dst.reshape(arr.shape)
    return _finish(res, out, was_scalar)


def encode(
    x: Any,
    fmt: Any,
    rounding: str | Rounding = "nearest",
    *,
    saturate: bool | None = None,
    sr_bits: int | None = None,
    seed: int | None = None,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> Any:
    """Round ``x`` to ``fmt`` and return the codes (unsigned integers, torch/ml_dtypes bit layout).

    Codes are ``sign | exponent | fraction`` in the smallest of uint8/16/32 that holds
    ``fmt.bits`` bits (fixed point: two's complement). Formats without NaN raise ``ValueError`` on
    NaN input. Other arguments as in :func:`quantize`.
    """
    arr, was_scalar, fm, mode, sr, nt, sat, key = _prepare(x, fmt, rounding, sr_bits, seed, n_threads, saturate)
    code_dtype = fm.code_dtype
    if out is not None:
        _check_out(out, arr.shape, code_dtype)
    if isinstance(fm, FixedFormat):
        return _finish(fixed_encode(arr, fm, mode, sat, sr, key), out, was_scalar)
    if isinstance(fm, ScaleFormat):
        from .mx import scale_encode

        return _finish(scale_encode(arr, fm, mode, sr, key), out, was_scalar)
    if fm.bits > 32:
        raise ValueError(f"encode supports codes of at most 32 bits; {fm} has {fm.bits}")
    if not fm.has_nan and np.isnan(arr).any():
        raise ValueError(f"x contains NaN, which format {fm} cannot encode")
    src = arr
    if arr.dtype == np.float32:
        try:
            _check_fits(fm, arr.dtype)
        except ValueError:
            src = arr.astype(np.float64)  # exact; the float64 kernel covers the wider range
    _check_fits(fm, src.dtype)
    params = _params(fm, mode, bool(sat), sr, key, False)
    flat = np.ascontiguousarray(src).reshape(-1)
    codes = np.empty(flat.shape, code_dtype)
    if core is None:
        codes[...] = ref.encode(flat, fm, mode, bool(sat), sr, key)
    else:
        core.encode(flat, codes, params, nt)
    return _finish(codes.reshape(arr.shape), out, was_scalar)


_LUT_CACHE: dict[tuple[Any, np.dtype], np.ndarray] = {}


def decode(codes: Any, fmt: Any, dtype: Any = np.float32, *, out: np.ndarray | None = None) -> Any:
    """Values of the codes ``codes`` of format ``fmt``, as ``dtype`` (float32 default, or float64).

    ``codes`` must be an integer array whose values fit in ``fmt.bits`` bits.
    """
    fm = format(fmt)
    dt = np.dtype(dtype)
    if dt not in _LIMITS:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if codes is None:
        raise TypeError("codes must be an integer array, got None")
    was_scalar = np.isscalar(codes)
    c = codes if isinstance(codes, np.ndarray) else np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise TypeError(f"codes must be an integer array, got dtype {c.dtype}")
    if c.size and (int(c.min()) < 0 or int(c.max()) >= 2**fm.bits):
        raise ValueError(f"codes must lie in [0, 2**{fm.bits}) for format {fm}")
    if isinstance(fm, FloatFormat):
        _check_fits(fm, dt)
    if out is not None:
        _check_out(out, c.shape, dt)
    if isinstance(fm, FixedFormat):
        res = fixed_decode(c, fm).astype(dt)
    elif fm.bits <= 16:
        key = (fm, dt)
        lut = _LUT_CACHE.get(key)
        if lut is None:
            lut = fm.decode_codes(np.arange(2**fm.bits, dtype=np.uint64)).astype(dt)
            _LUT_CACHE[key] = lut
        res = lut[c]
    else:
        res = fm.decode_codes(c).astype(dt)
    return _finish(res, out, bool(was_scalar))
