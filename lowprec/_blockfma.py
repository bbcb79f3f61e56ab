"""Driver of the block-FMA tensor-core model (``lowprec.accum.BlockFMA``) over the compiled kernel."""

from __future__ import annotations

import numpy as np

from ._native import core
from ._quantize import _params, quantize
from .accum import AccumModel, BlockFMA
from .formats import FloatFormat
from .rounding import Rounding

__all__ = ["blockfma_matmul", "prepare_operand"]

_NO_LIMIT = -(2**30)
_MODE = {Rounding.TOWARD_ZERO: 2, Rounding.NEAREST: 0}


def prepare_operand(x: np.ndarray, fmt: FloatFormat, m: BlockFMA, n_threads: int | None = None) -> np.ndarray:
    """x rounded to the input format with the model's operand rounding, as float32 (subnormals
    flushed when the model has none); float32 inputs are rounded directly, others from float64."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    q = quantize(x, fmt, m.operand_rounding, n_threads=n_threads)
    if not m.in_subnormals:
        q = np.where(np.abs(q) < fmt.min_normal, 0.0 * q, q)
    return q.astype(np.float32, copy=False)


def _float_lanes(m: BlockFMA) -> bool:
    """Whether the model meets the conditions of the float-lane kernel (``blockfma_lean.hpp``): no
    late c, block sums below 2^24 (2^neab (2F + 1) <= 1) and products of the input formats that are
    normal float32 numbers."""
    F = m.sub_block or m.block
    if m.late_c or 2.0**m.extra_align_bits * (2 * F + 1) > 1:
        return False
    lo = [f.min_subnormal if (m.in_subnormals and f.subnormals) else f.min_normal for f in (m.a_format, m.b_format)]
    return lo[0] * lo[1] >= 2.0**-126 and m.a_format.max * m.b_format.max < 2.0**128


def _ints(m: BlockFMA) -> tuple:
    out = m.out_format
    return (
        m.block,
        m.sub_block or m.block,
        int(m.late_c),
        m.extra_align_bits,
        m.a_format.emin,
        m.b_format.emin,
        -126,
        _NO_LIMIT if m.min_exp_limit is None else m.min_exp_limit,
        int(m.out_subnormals),
        out.emin,
        out.emax,
        int(_float_lanes(m)),
    )


def _kernel(A: np.ndarray, B: np.ndarray, C: np.ndarray, m: BlockFMA, nt: int) -> np.ndarray:
    """C + A B for float32 operands of the input formats, C float64 values of the output format;
    A (nb|1, M, K), B (nb|1, K, N), C (nb, M, N) -> float64 (nb, M, N)."""
    nb, M, N = C.shape
    K = A.shape[-1]
    out = np.empty((nb, M, N), np.float64)
    sA = 0 if A.shape[0] == 1 else M * K
    sB = 0 if B.shape[0] == 1 else K * N
    out_p = _params(m.block_out_format, m.rounding, False, None, 0, False)
    late_p = _params(m.out_format, Rounding.NEAREST, False, None, 0, False)
    perm = np.asarray(m.perm, dtype=np.int32)
    core.bfma_matmul(
        np.ascontiguousarray(A, np.float32).reshape(-1),
        np.ascontiguousarray(B, np.float32).reshape(-1),
        np.ascontiguousarray(C, np.float64).reshape(-1),
        out.reshape(-1),
        nb,
        M,
        N,
        K,
        sA,
        sB,
        M * N,
        out_p,
        late_p,
        _ints(m),
        perm,
        _MODE[m.rounding],
        nt,
    )
    return out


def _scales(amax: np.ndarray, fmt: FloatFormat, pow2: bool) -> np.ndarray:
    """fp32 scales amax / max(fmt) (1 for an all-zero group), optionally rounded up to powers of two."""
    s = amax.astype(np.float32) / np.float32(fmt.max)
    s = np.where(s > 0, s, np.float32(1.0)).astype(np.float32)
    return np.exp2(np.ceil(np.log2(s))).astype(np.float32) if pow2 else s


def _promoted(A: np.ndarray, B: np.ndarray, C: np.ndarray, m: BlockFMA, nt: int) -> np.ndarray:
    """Promotion to fp32 every m.promotion.every elements of K (DeepSeek-V3 scheme)."""
    from ._accumulate import _rows  # _accumulate imports this module

    pr = m.promotion
    P = pr.every
    nb, M, N = C.shape
    K = A.shape[-1]
    acc = C.astype(np.float32)
    fp32_acc = AccumModel(acc="fp32", rounding="nearest")
    Ab = np.broadcast_to(A, (nb, M, K)).astype(np.float32)
    Bb = np.broadcast_to(B, (nb, K, N)).astype(np.float32)
    for k0 in range(0, K, P):
        k1 = min(K, k0 + P)
        As, Bs = Ab[:, :, k0:k1], Bb[:, k0:k1, :]
        if pr.scale_block is not None:
            g = pr.scale_block
            sa = _scales(np.max(np.abs(As), axis=-1), m.a_format, pr.power_of_two_scales)
            ncb = -(-N // g)
            Bp = np.zeros((nb, k1 - k0, ncb * g), np.float32)
            Bp[:, :, :N] = Bs
            bmax = np.max(np.abs(Bp.reshape(nb, k1 - k0, ncb, g)), axis=(1, 3))
            sb = _scales(bmax, m.b_format, pr.power_of_two_scales)
            sbj = np.repeat(sb, g, axis=-1)[:, :N]  # (nb, N)
            Aq = quantize(As / sa[..., None], m.a_format, m.operand_rounding, saturate=True)
            Bq = quantize(Bs / sbj[:, None, :], m.b_format, m.operand_rounding, saturate=True)
            scale = (sa[:, :, None] * sbj[:, None, :]).astype(np.float32)  # fp32 product, RNE
        else:
            Aq = prepare_operand(As, m.a_format, m, nt)
            Bq = prepare_operand(Bs, m.b_format, m, nt)
            scale = np.ones((nb, M, N), np.float32)
        partial = _kernel(Aq, Bq, np.zeros((nb, M, N)), m, nt)
        if pr.fma:
            term = scale.astype(np.float64) * partial  # exact: 24 x 14 bits
            acc = _rows(term.reshape(-1, 1), None, acc.reshape(-1), fp32_acc, 0, nt).reshape(nb, M, N)
        else:
            acc = (acc + (scale.astype(np.float64) * partial).astype(np.float32)).astype(np.float32)
    return acc.astype(np.float64)


def _batched(x: np.ndarray, batch: tuple[int, ...], tail: tuple[int, int]) -> np.ndarray:
    """x as (1 | prod(batch), *tail): shared when it has no batch dimensions."""
    if x.ndim == 2:
        return x.reshape((1,) + tail)
    if x.shape[:-2] != batch:
        x = np.broadcast_to(x, batch + tail)
    return x.reshape((-1,) + tail)


def blockfma_matmul(A: np.ndarray, B: np.ndarray, C: np.ndarray | None, m: BlockFMA, nt: int) -> np.ndarray:
    """D = C + A @ B under the block-FMA model; A (..., M, K), B (..., K, N); result in A's dtype."""
    dtype = A.dtype
    M, K = A.shape[-2:]
    N = B.shape[-1]
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    nb = int(np.prod(batch)) if batch else 1
    out_fmt = m.out_format
    if C is None:
        Cv = np.zeros((nb, M, N), np.float64)
    else:
        Cv = quantize(np.asarray(C, np.float64), out_fmt, "nearest").reshape(nb, M, N)
    A3, B3 = _batched(A, batch, (M, K)), _batched(B, batch, (K, N))
    if m.promotion is not None:
        res = _promoted(A3, B3, Cv, m, nt)
    else:
        res = _kernel(prepare_operand(A3, m.a_format, m, nt), prepare_operand(B3, m.b_format, m, nt), Cv, m, nt)
    return res.astype(dtype).reshape(batch + (M, N))
