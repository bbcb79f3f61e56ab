"""The ``lowprec::quantize`` custom op: elementwise rounding of tensors, autograd-aware.

CPU float32/float64 tensors go through the compiled kernel on zero-copy NumPy views; other
devices use the pure-torch twin (``_twin.py``), bit-identical for deterministic modes and drawing
the same random bits for the same seed. float16/bfloat16 tensors are rounded through float32
(exact) and cast back, which is exact because the format must fit the tensor's dtype.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .. import _reference as ref
from .._native import core
from .._quantize import _check_fits as np_check_fits
from .._quantize import _check_seed, _check_sr_bits, _params
from .._quantize import quantize as np_quantize
from ..formats import FixedFormat, FloatFormat, ScaleFormat, format
from ..rounding import Rounding, rounding_mode
from ._twin import quantize_twin

__all__ = ["quantize", "round_tensor", "round_many", "fmt_key", "fmt_from_key", "BACKENDS"]

BACKENDS = ("auto", "kernel", "torch")
_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_DTYPE_LIMITS = {  # (emin, emax, man_bits) of the values a dtype holds exactly
    torch.float32: (-126, 127, 23),
    torch.float64: (-1022, 1023, 52),
    torch.float16: (-14, 15, 10),
    torch.bfloat16: (-126, 127, 7),
}


# --- formats as op arguments (custom ops take strings) -------------------------------------------
def fmt_key(fmt: Any) -> str:
    """A string naming ``fmt`` exactly (its name when the name resolves to it, else its fields)."""
    if isinstance(fmt, FloatFormat):
        if fmt.name:
            try:
                if format(fmt.name) == fmt:
                    return fmt.name
            except (ValueError, TypeError):
                pass
        d = {"kind": "float", "exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits, "bias": fmt.bias}
        d.update(subnormals=fmt.subnormals, specials=fmt.specials.value)
        return json.dumps(d, sort_keys=True)
    if isinstance(fmt, FixedFormat):
        d = {"kind": "fixed", "bits": fmt.bits, "frac_bits": fmt.frac_bits, "signed": fmt.signed}
        d.update(symmetric=fmt.symmetric, overflow=fmt.overflow)
        return json.dumps(d, sort_keys=True)
    if isinstance(fmt, ScaleFormat):
        return json.dumps({"kind": "scale", "exp_bits": fmt.exp_bits, "bias": fmt.bias}, sort_keys=True)
    raise TypeError(f"not a format: {fmt!r}")


@lru_cache(maxsize=1024)
def fmt_from_key(key: str) -> Any:
    if not key.startswith("{"):
        return format(key)
    d = json.loads(key)
    kind = d.pop("kind")
    return {"float": FloatFormat, "fixed": FixedFormat, "scale": ScaleFormat}[kind](**d)


# --- the rounding itself -------------------------------------------------------------------------
def _check_fits(fmt: Any, dtype: torch.dtype) -> None:
    """Every value of fmt must be exact in dtype (float16/bfloat16 tensors are rounded via float32)."""
    if dtype in (torch.float32, torch.float64):
        if isinstance(fmt, FloatFormat):
            np_check_fits(fmt, np.dtype("float32" if dtype == torch.float32 else "float64"))
        return
    np_check_fits_any(fmt)
    emin, emax, man = _DTYPE_LIMITS[dtype]
    if isinstance(fmt, FloatFormat):
        ok = fmt.man_bits <= man and fmt.emax <= emax and fmt.emin - fmt.man_bits >= emin - man
    elif isinstance(fmt, FixedFormat):
        ok = fmt.bits - int(fmt.signed) <= man + 1 and -fmt.frac_bits >= emin - man and fmt.bits - fmt.frac_bits <= emax
    else:
        ok = -fmt.bias >= emin - man and 254 - fmt.bias <= emax
    if not ok:
        raise ValueError(f"format {fmt} does not fit {dtype}: round a float32 or float64 tensor instead")


def np_check_fits_any(fmt: Any) -> None:
    if isinstance(fmt, FloatFormat):
        np_check_fits(fmt, np.dtype("float32"))


@lru_cache(maxsize=512)
def _kernel_params(fmt: Any, mode: Rounding, saturate: bool | None, sr_bits: int | None, dtype: torch.dtype):
    """The compiled kernel's parameter tuple (random key left at 0) for float formats, else None; the
    format is first checked to fit ``dtype``."""
    _check_fits(fmt, dtype)
    if core is None or not isinstance(fmt, FloatFormat) or dtype not in (torch.float32, torch.float64):
        return None
    return _params(fmt, mode, bool(saturate), sr_bits, 0, False)


@lru_cache(maxsize=1024)
def _cached_kernel_params(fmt: Any, mode: Rounding, saturate: bool | None, sr_bits: int | None, dtype: torch.dtype):
    return _kernel_params(fmt, mode, saturate, sr_bits, dtype)


def _params_for(fmt: Any, mode: Rounding, saturate: bool | None, sr_bits: int | None, dtype: torch.dtype):
    """_kernel_params, remembered per argument tuple (formats are frozen dataclasses)."""
    try:
        return _cached_kernel_params(fmt, mode, saturate, sr_bits, dtype)
    except TypeError:  # an unhashable argument: not cached
        return _kernel_params(fmt, mode, saturate, sr_bits, dtype)


def round_tensor(
    x: torch.Tensor,
    fmt: Any,
    mode: Rounding,
    *,
    saturate: bool | None = None,
    sr_bits: int | None = None,
    seed: int = 0,
    backend: str = "auto",
) -> torch.Tensor:
    """x rounded to fmt: a new contiguous tensor of x's dtype and device (no autograd).

    The random word of flattened element i is the one :func:`lowprec.quantize` draws for ``seed``.
    """
    params = _params_for(fmt, mode, saturate, sr_bits, x.dtype)  # also checks that fmt fits x.dtype
    if params is not None and x.is_cpu and backend != "torch":  # CPU float32/float64, a float format
        return _kernel_round([x], params, [seed])[0]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    use_kernel = backend == "kernel" or (backend == "auto" and work.device.type == "cpu")
    if use_kernel:
        src = work.detach().cpu()
        kparams = _kernel_params(fmt, mode, saturate, sr_bits, src.dtype)
        if kparams is not None:
            out = _kernel_round([src], kparams, [seed])[0]
        else:
            res = np_quantize(src.contiguous().numpy(), fmt, mode, saturate=saturate, sr_bits=sr_bits, seed=seed)
            out = torch.from_numpy(np.asarray(res))
        out = out.to(x.device)
    else:
        key = ref.stream_key(seed) if mode.is_stochastic else 0
        out = quantize_twin(work.detach(), fmt, mode, saturate, sr_bits, key)
    return out if out.dtype == x.dtype else out.to(x.dtype)


def _kernel_round(
    ts: list[torch.Tensor], params: tuple, seeds: list[int], outs: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """The compiled kernel on CPU tensors of one dtype (float32 or float64), in one call on their
    buffers: tensor i with the random key of seeds[i]; into ``outs`` (contiguous tensors of the same
    shapes and dtype, each its input itself or overlapping no input) or new contiguous tensors."""
    srcs = [t.detach().contiguous() for t in ts]
    if outs is None:
        outs = [torch.empty_like(t, memory_format=torch.contiguous_format) for t in srcs]
    core.quantize_many(
        [t.data_ptr() for t in srcs],
        [t.data_ptr() for t in outs],
        [t.numel() for t in srcs],
        list(seeds),
        srcs[0].dtype == torch.float64,
        params,
        core.default_threads(),
    )
    return outs


def round_many(
    ts: list[torch.Tensor], fmt: Any, mode: Rounding, seeds: list[int], outs: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """``[round_tensor(t, fmt, mode, seed=s) for t, s in zip(ts, seeds)]``, in one kernel call when the
    tensors are CPU float32 (or all float64) tensors and fmt is a float format.

    ``outs``: tensors to write the results into (returned), each contiguous, shaped and typed like
    its input, and either that input itself (in place) or overlapping no input.
    """
    if ts:
        dtype = ts[0].dtype
        params = _params_for(fmt, mode, None, None, dtype)
        if params is not None and all(t.is_cpu and t.dtype == dtype for t in ts):
            if outs is not None and not all(
                o.is_cpu and o.dtype == dtype and o.is_contiguous() and o.shape == t.shape
                for o, t in zip(outs, ts, strict=True)
            ):
                raise ValueError("outs must be contiguous CPU tensors shaped and typed like their inputs")
            return _kernel_round(ts, params, seeds, outs)
    res = [round_tensor(t, fmt, mode, seed=s) for t, s in zip(ts, seeds, strict=True)]
    if outs is None:
        return res
    for o, r in zip(outs, res, strict=True):
        o.copy_(r)
    return outs


def _saturate_arg(s: int) -> bool | None:
    return None if s < 0 else bool(s)


@torch.library.custom_op("lowprec::quantize", mutates_args=())
def _quantize_op(
    x: torch.Tensor,
    fmt: str,
    rounding: str,
    saturate: int,
    sr_bits: int,
    seed: torch.Tensor,
    bwd_fmt: str,
    bwd_rounding: str,
    bwd_sr_bits: int,
    bwd_seed: torch.Tensor,
    backend: str,
) -> torch.Tensor:
    return round_tensor(
        x,
        fmt_from_key(fmt),
        Rounding(rounding),
        saturate=_saturate_arg(saturate),
        sr_bits=sr_bits or None,
        seed=int(seed) & (2**64 - 1),
        backend=backend,
    )


@_quantize_op.register_fake
def _(x, fmt, rounding, saturate, sr_bits, seed, bwd_fmt, bwd_rounding, bwd_sr_bits, bwd_seed, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _setup(ctx, inputs, output):
    ctx.bwd = inputs[6:]


def _backward(ctx, grad):
    bwd_fmt, bwd_rounding, bwd_sr_bits, bwd_seed, backend = ctx.bwd
    if bwd_fmt:
        grad = _quantize_op(grad, bwd_fmt, bwd_rounding, -1, bwd_sr_bits, bwd_seed, "", "nearest", 0, bwd_seed, backend)
    return grad, None, None, None, None, None, None, None, None, None, None


_quantize_op.register_autograd(_backward, setup_context=_setup)


_ZERO_SEED = torch.zeros((), dtype=torch.int64)


def _seed_tensor(seed: Any, stochastic: bool) -> torch.Tensor:
    if seed is None:
        if not stochastic:
            return _ZERO_SEED  # read, never written
        return torch.randint(0, 2**62, (), dtype=torch.int64)  # torch's generator: torch.manual_seed applies
    if isinstance(seed, torch.Tensor):
        if seed.numel() != 1 or seed.dtype.is_floating_point or seed.dtype.is_complex:
            raise TypeError("seed tensor must hold one integer")
        return seed.reshape(()).to(torch.int64)
    s = _check_seed(seed)
    return torch.tensor(s - 2**64 if s >= 2**63 else s, dtype=torch.int64)


def _format_arg(spec: Any, name: str) -> Any:
    try:
        f = format(spec)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None
    return f


def quantize(
    x: torch.Tensor,
    fmt: Any,
    rounding: str | Rounding = "nearest",
    *,
    backward: Any = None,
    backward_rounding: str | Rounding = "nearest",
    saturate: bool | None = None,
    sr_bits: int | None = None,
    backward_sr_bits: int | None = None,
    seed: int | torch.Tensor | None = None,
    backward_seed: int | torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Round a tensor to a format, with a straight-through gradient.

    Parameters
    ----------
    x : Tensor
        float32, float64, float16 or bfloat16, any device; never modified.
    fmt : format
        Target format (name, format object, torch/ml_dtypes dtype); it must fit ``x.dtype``.
    rounding : str or Rounding
        Any :class:`lowprec.Rounding` (default ``nearest``, ties to even).
    backward : format, optional
        The gradient is rounded to this format with ``backward_rounding``; ``None`` passes it
        through unchanged (the straight-through estimator).
    saturate, sr_bits : optional
        As :func:`lowprec.quantize`.
    seed, backward_seed : int or Tensor, optional
        Seeds of the stochastic modes: element i (flattened) draws the bits
        :func:`lowprec.quantize` draws for the same seed. ``None`` draws one from torch's generator
        (so ``torch.manual_seed`` makes runs repeatable).
    backend : {"auto", "kernel", "torch"}
        ``auto``: compiled kernel for CPU tensors, pure-torch twin elsewhere.

    Returns
    -------
    Tensor
        New memory, same shape, dtype and device as ``x``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be a float32, float64, float16 or bfloat16 tensor, got {x.dtype}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    f = _format_arg(fmt, "fmt")
    mode = rounding_mode(rounding)
    sr = _check_sr_bits(sr_bits, mode)
    if saturate is not None and not isinstance(saturate, bool):
        raise TypeError(f"saturate must be a bool or None, got {type(saturate).__name__}")
    _check_fits(f, x.dtype)
    if backend == "kernel" and x.device.type != "cpu":
        raise ValueError(f"backend='kernel' needs a CPU tensor, got device {x.device}")
    bf, bmode, bsr = "", Rounding.NEAREST, 0
    if backward is not None:
        bformat = _format_arg(backward, "backward")
        bmode = rounding_mode(backward_rounding)
        bsr = _check_sr_bits(backward_sr_bits, bmode) or 0
        _check_fits(bformat, x.dtype)
        bf = fmt_key(bformat)
    return _quantize_op(
        x,
        fmt_key(f),
        mode.value,
        -1 if saturate is None else int(saturate),
        sr or 0,
        _seed_tensor(seed, mode.is_stochastic),
        bf,
        bmode.value,
        bsr,
        _seed_tensor(backward_seed, bmode.is_stochastic and bool(bf)),
        backend,
    )
