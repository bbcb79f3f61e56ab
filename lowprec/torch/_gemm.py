"""Emulated GEMMs on tensors: ``y = x @ w^T`` under one :class:`GemmConfig`, and the autograd op
``lowprec::emulated_gemm`` whose three GEMMs each follow their own config.

``x`` is (M, K) or (B, M, K) and ``w`` (N, K) or (B, N, K): the reduction runs over the last axis
of both (the layout of ``torch.nn.functional.linear``), so every GEMM of a layer, backward ones
included, is this one primitive:

* forward ``y = x w^T``;
* input gradient ``dx = dy w = dy (w^T)^T``: ``gemm_nt(dy, w^T)`` under ``input_grad``;
* weight gradient ``dw = dy^T x = dy^T (x^T)^T``: ``gemm_nt(dy^T, x^T)`` under ``weight_grad``.

Seeds: the forward GEMM uses ``seed``, the input-gradient GEMM ``seed + 1`` and the
weight-gradient GEMM ``seed + 2`` (mod 2**63), each as :func:`lowprec.matmul`'s ``seed``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import torch

from .._accumulate import matmul as np_matmul
from ..accum import AccumModel
from ..mx import MXFormat, mx_quantize
from ._operands import OperandsLinear
from ._ops import round_tensor
from .config import EmulationConfig, GemmConfig, GemmMode, Scaling

__all__ = ["gemm_nt", "emulated_gemm", "grad_seeds", "eager"]

_SEED_MOD = 2**63


def grad_seeds(seed: int) -> tuple[int, int, int]:
    """Seeds of the (forward, input-gradient, weight-gradient) GEMMs of a call made with ``seed``."""
    return seed % _SEED_MOD, (seed + 1) % _SEED_MOD, (seed + 2) % _SEED_MOD


def _pow2_scale(t: torch.Tensor, fmt: object) -> int:
    """k such that max|t| * 2**k is as large as possible without passing fmt's max, nor 2**24 (wide
    formats such as bf16: products of scaled operands then stay finite in float32)."""
    if fmt is None or isinstance(fmt, MXFormat):  # MX blocks carry their own power-of-two scales
        return 0
    fmax = min(fmt.max, 2.0**24)
    amax = float(t.detach().abs().amax()) if t.numel() else 0.0
    if not math.isfinite(amax) or amax == 0.0:
        return 0
    return max(-126, min(126, math.floor(math.log2(fmax / amax))))


def _round_operand(t: torch.Tensor, fmt: object, mode, seed: int) -> torch.Tensor:
    """Operand rounded to fmt along its last axis (MX blocks run along K)."""
    if fmt is None:
        return t
    if isinstance(fmt, MXFormat):
        arr = t.detach().cpu().float().contiguous().numpy()
        res = mx_quantize(arr, fmt, axis=-1, rounding=mode.value, seed=seed)
        return torch.from_numpy(res).to(device=t.device, dtype=t.dtype)
    return round_tensor(t, fmt, mode, seed=seed)


def _exact(x: torch.Tensor, w: torch.Tensor, gc: GemmConfig, seed: int) -> torch.Tensor:
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xa = x.detach().to("cpu", dtype).numpy()
    wa = w.detach().to("cpu", dtype).numpy()
    res = np_matmul(xa, np.swapaxes(wa, -1, -2), model=gc.model, seed=seed)
    return torch.from_numpy(np.ascontiguousarray(res))


def _chunked(x: torch.Tensor, w: torch.Tensor, m: AccumModel, seed: int) -> torch.Tensor:
    """Chunk sums in the working dtype, rounded to acc; chunk sums added with per-addition rounding."""
    K, c = x.shape[-1], m.chunk
    nc = -(-K // c)
    pad = nc * c - K
    if pad:
        x = torch.nn.functional.pad(x, (0, pad))
        w = torch.nn.functional.pad(w, (0, pad))
    xs = x.reshape(*x.shape[:-1], nc, c).movedim(-2, -3)  # (..., nc, M, c)
    ws = w.reshape(*w.shape[:-1], nc, c).movedim(-2, -3)  # (..., nc, N, c)
    parts = torch.matmul(xs, ws.transpose(-1, -2))  # (..., nc, M, N)
    wide = torch.float64
    s = None
    for i in range(nc):
        p = round_tensor(parts.select(-3, i), m.acc, m.rounding, saturate=m.saturate, seed=(seed + 2 * i) % _SEED_MOD)
        if s is None:
            s = p.to(wide)
            continue
        s = round_tensor(s + p.to(wide), m.acc, m.rounding, saturate=m.saturate, seed=(seed + 2 * i + 1) % _SEED_MOD)
    return s.to(x.dtype)


def _rounded_operands(
    x: torch.Tensor, w: torch.Tensor, gc: GemmConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x, w) scaled (tensor scaling) and rounded to the operand formats (not in exact mode), and the
    power-of-two shift that undoes the scaling."""
    m = gc.model
    shift = 0
    if gc.scaling is Scaling.TENSOR:
        ka, kb = _pow2_scale(x, m.a_format), _pow2_scale(w, m.b_format)
        x, w, shift = x * 2.0**ka, w * 2.0**kb, ka + kb
    if gc.mode is not GemmMode.EXACT:
        x = _round_operand(x, m.a_format, m.operand_rounding, (seed + 3) % _SEED_MOD)
        w = _round_operand(w, m.b_format, m.operand_rounding, (seed + 4) % _SEED_MOD)
    return x, w, shift


def _product(xq: torch.Tensor, wq: torch.Tensor, gc: GemmConfig, seed: int, shift: int, out_dtype) -> torch.Tensor:
    """The GEMM of operands prepared by :func:`_rounded_operands`."""
    m = gc.model
    out_fmt = getattr(m, "out_format", None) if isinstance(m, AccumModel) else None
    if gc.mode is GemmMode.EXACT:
        mm = m.replace(out_format=None) if (shift and out_fmt is not None) else m
        y = _exact(xq, wq, GemmConfig(mm, gc.mode), seed).to(xq.device)
        if not (shift and out_fmt is not None):
            out_fmt = None
    elif gc.mode is GemmMode.CHUNK:
        y = _chunked(xq, wq, m, seed)
    else:
        y = torch.matmul(xq, wq.transpose(-1, -2))
    if shift:
        half = -shift // 2
        y = y * 2.0**half * 2.0 ** (-shift - half)
    if out_fmt is not None:
        mode = m.out_rounding if isinstance(m, AccumModel) else m.rounding
        y = round_tensor(y, out_fmt, mode, seed=(seed + 5) % _SEED_MOD)
    return y.to(out_dtype)


def gemm_nt(x: torch.Tensor, w: torch.Tensor, gc: GemmConfig, seed: int) -> torch.Tensor:
    """``x @ w^T`` under ``gc``; a new tensor on x's device (no autograd)."""
    if gc.mode is GemmMode.FLOAT32 or gc.model is None:
        return torch.matmul(x, w.transpose(-1, -2))
    xq, wq, shift = _rounded_operands(x, w, gc, seed)
    return _product(xq, wq, gc, seed, shift, x.dtype)


@torch.library.custom_op("lowprec::emulated_gemm", mutates_args=())
def _emulated_gemm_op(x: torch.Tensor, w: torch.Tensor, config: str, seed: torch.Tensor) -> torch.Tensor:
    cfg = EmulationConfig.from_json(config)
    return gemm_nt(x, w, cfg.forward, grad_seeds(int(seed))[0]).contiguous()


@_emulated_gemm_op.register_fake
def _(x, w, config, seed):
    return x.new_empty((*x.shape[:-1], w.shape[-2]))


def _setup(ctx, inputs, output):
    x, w, config, seed = inputs
    ctx.save_for_backward(x, w)
    ctx.config, ctx.seed = config, seed


def _backward(ctx, dy):
    x, w = ctx.saved_tensors
    cfg = EmulationConfig.from_json(ctx.config)
    dx = dw = None
    if ctx.needs_input_grad[0]:
        dx = _gemm_nt_op(dy, w.transpose(-1, -2), _json(cfg.input_grad), ctx.seed, 1)
    if ctx.needs_input_grad[1]:
        dw = _gemm_nt_op(dy.transpose(-1, -2), x.transpose(-1, -2), _json(cfg.weight_grad), ctx.seed, 2)
    return dx, dw, None, None


@torch.library.custom_op("lowprec::gemm_nt", mutates_args=())
def _gemm_nt_op(x: torch.Tensor, w: torch.Tensor, config: str, seed: torch.Tensor, which: int) -> torch.Tensor:
    """One GEMM of the three (which = 0, 1, 2: forward, input-gradient, weight-gradient seed)."""
    return gemm_nt(x, w, _gemm_from_json(config), grad_seeds(int(seed))[which]).contiguous()


@_gemm_nt_op.register_fake
def _(x, w, config, seed, which):
    return x.new_empty((*x.shape[:-1], w.shape[-2]))


@lru_cache(maxsize=512)
def _json(cfg: EmulationConfig | GemmConfig) -> str:
    return json.dumps(cfg.to_dict())


@torch.compiler.assume_constant_result
def _config_json(cfg: EmulationConfig) -> str:
    """``_json(cfg)``, which torch.compile calls at trace time and keeps as a constant (it does not
    trace the cache's lock or the JSON encoder)."""
    return _json(cfg)


@lru_cache(maxsize=512)
def _gemm_from_json(s: str) -> GemmConfig:
    return GemmConfig.from_dict(json.loads(s))


_emulated_gemm_op.register_autograd(_backward, setup_context=_setup)


def _reusable(gc: GemmConfig) -> bool:
    """True when gc's rounded operands do not depend on the seed or on a tensor scale, so a GEMM with the
    same operand formats can share them."""
    m = gc.model
    return (
        gc.mode in (GemmMode.OPERANDS, GemmMode.CHUNK)
        and gc.scaling is Scaling.NONE
        and not m.operand_rounding.is_stochastic
        and not isinstance(m.a_format, MXFormat)
        and not isinstance(m.b_format, MXFormat)
    )


class _EagerGemm(torch.autograd.Function):
    """Eager twin of ``lowprec::emulated_gemm``: the same three GEMMs with the same seeds (so the same
    bits), without the custom-op dispatch. Operands rounded to nearest (deterministic) are rounded
    once and shared: the forward's x and w feed the gradient GEMMs that round them to the same format,
    and dy is rounded once when both gradient GEMMs use the same format for it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, cfg: EmulationConfig, seed: int) -> torch.Tensor:
        gc = cfg.forward
        ctx.cfg, ctx.seed = cfg, seed
        if gc.mode is GemmMode.FLOAT32 or gc.model is None or not _reusable(gc):
            ctx.save_for_backward(x, w, None, None)
            return gemm_nt(x, w, gc, grad_seeds(seed)[0]).contiguous()
        s0 = grad_seeds(seed)[0]
        xq, wq, shift = _rounded_operands(x, w, gc, s0)
        ctx.save_for_backward(x, w, xq, wq)
        return _product(xq, wq, gc, s0, shift, x.dtype).contiguous()

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, w, xq, wq = ctx.saved_tensors
        cfg = ctx.cfg
        fwd = cfg.forward.model if xq is not None else None
        _, s1, s2 = grad_seeds(ctx.seed)
        dyq: dict = {}

        def gemm(a: torch.Tensor, b: torch.Tensor, b_rounded, b_fmt, gc: GemmConfig, s: int, a_t: bool):
            """gemm_nt(a, b) where b's rounding to b_fmt (forward) is b_rounded, a = dy or dy^T."""
            if gc.mode is GemmMode.FLOAT32 or gc.model is None or not _reusable(gc):
                return gemm_nt(a, b, gc, s)
            m = gc.model
            key = (m.a_format, m.operand_rounding)
            if key not in dyq:
                dyq[key] = _round_operand(dy, m.a_format, m.operand_rounding, (s + 3) % _SEED_MOD)
            aq = dyq[key].transpose(-1, -2) if a_t else dyq[key]
            if b_rounded is not None and m.b_format == b_fmt and m.operand_rounding == fwd.operand_rounding:
                bq = b_rounded
            else:
                bq = _round_operand(b, m.b_format, m.operand_rounding, (s + 4) % _SEED_MOD)
            return _product(aq, bq, gc, s, 0, a.dtype)

        dx = dw = None
        if ctx.needs_input_grad[0]:
            wt = None if wq is None else wq.transpose(-1, -2)
            dx = gemm(dy, w.transpose(-1, -2), wt, fwd and fwd.b_format, cfg.input_grad, s1, False).contiguous()
        if ctx.needs_input_grad[1]:
            xt = None if xq is None else xq.transpose(-1, -2)
            dw = gemm(
                dy.transpose(-1, -2), x.transpose(-1, -2), xt, fwd and fwd.a_format, cfg.weight_grad, s2, True
            ).contiguous()
        return dx, dw, None, None


def eager(x: torch.Tensor) -> bool:
    """True outside torch.compile, tracing and fake tensors (where the custom op must be called)."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or isinstance(x, torch._subclasses.FakeTensor))


def emulated_gemm(x: torch.Tensor, w: torch.Tensor, cfg: EmulationConfig, seed: torch.Tensor) -> torch.Tensor:
    """``x @ w^T`` with autograd: forward, input-gradient and weight-gradient GEMMs under ``cfg``.

    Eager calls run the GEMMs directly (for 2-D operand-only configs as plain ``torch.mm`` calls on
    rounded operands, see ``_operands.py``); under ``torch.compile`` (or when tracing) the call is the
    custom op ``lowprec::emulated_gemm``. All compute the same bits.
    """
    if not eager(x):
        return _emulated_gemm_op(x, w, _config_json(cfg), seed)
    plan = cfg._operand_plan  # type: ignore[attr-defined]
    if plan is not None and x.ndim == 2 and w.ndim == 2:  # operand-only GEMMs: plain mm calls
        return OperandsLinear.apply(x, w, plan)
    return _EagerGemm.apply(x, w, cfg, int(seed))
