"""Functional emulated GEMMs: ``linear``, ``conv2d``, ``matmul``, ``bmm`` with autograd.

Each takes ``config`` (anything :func:`lowprec.torch.as_config` accepts; ``None`` = plain torch)
and an optional ``seed`` for stochastic configs (``None``: drawn from torch's generator). The
forward GEMM and both gradient GEMMs follow their own accumulation models; bias additions, the
im2col gather of a convolution and its col2im scatter stay in the tensor's dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ._gemm import emulated_gemm
from ._ops import _seed_tensor
from .config import EmulationConfig, as_config

__all__ = ["linear", "conv2d", "matmul", "bmm"]

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_tensor(t: Any, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be a floating-point tensor (float32/float64/float16/bfloat16), got {t.dtype}")
    return t


def _check_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{na} and {nb} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{na} and {nb} must be on the same device, got {a.device} and {b.device}")


def _resolve(config: Any) -> EmulationConfig | None:
    cfg = as_config(config)
    return None if cfg is None or cfg.is_float32 else cfg


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, config: Any = None, seed: Any = None
) -> torch.Tensor:
    """``x @ weight^T + bias`` (``torch.nn.functional.linear``) with emulated GEMMs.

    ``x`` is (..., in_features), ``weight`` (out_features, in_features).
    """
    _check_tensor(x, "x")
    _check_tensor(weight, "weight")
    _check_pair(x, weight, "x", "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x's last dimension must be in_features={weight.shape[1]}, got shape {tuple(x.shape)}")
    cfg = _resolve(config)
    if cfg is None:
        return F.linear(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])
    y = emulated_gemm(x2, weight, cfg, _seed_tensor(seed, cfg.stochastic))
    y = y.reshape(*x.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


def _pair(v: Any, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in t):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    config: Any = None,
    seed: Any = None,
) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` as its im2col GEMM with emulated arithmetic.

    ``x`` is (N, C, H, W) (or unbatched (C, H, W)); the GEMM reduces over ``C/groups * kh * kw``.
    ``padding`` may be ``"valid"``, ``"same"``, an int or a pair (zeros).
    """
    _check_tensor(x, "x")
    _check_tensor(weight, "weight")
    _check_pair(x, weight, "x", "weight")
    cfg = _resolve(config)
    if cfg is None:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (out, in/groups, kh, kw), got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    O, Cg, kh, kw = weight.shape
    if x.shape[1] != Cg * groups or O % groups:
        raise ValueError(
            f"x has {x.shape[1]} channels; weight {tuple(weight.shape)} with groups={groups} needs {Cg * groups}"
        )
    st, dil = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0)
        elif padding == "same":
            if st != (1, 1):
                raise ValueError("padding='same' needs stride 1")
            tot = [d * (k - 1) for d, k in zip(dil, (kh, kw), strict=True)]
            x = F.pad(x, (tot[1] // 2, tot[1] - tot[1] // 2, tot[0] // 2, tot[0] - tot[0] // 2))
            pad = (0, 0)
        else:
            raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    else:
        pad = _pair(padding, "padding")
    N, _, H, W = x.shape
    Ho = (H + 2 * pad[0] - dil[0] * (kh - 1) - 1) // st[0] + 1
    Wo = (W + 2 * pad[1] - dil[1] * (kw - 1) - 1) // st[1] + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"input {H}x{W} is smaller than the dilated kernel")
    cols = F.unfold(x, (kh, kw), dilation=dil, padding=pad, stride=st)  # (N, C*kh*kw, L)
    L = cols.shape[-1]
    s = _seed_tensor(seed, cfg.stochastic)
    outs = []
    for g in range(groups):
        cg = cols[:, g * Cg * kh * kw : (g + 1) * Cg * kh * kw].transpose(1, 2).reshape(N * L, Cg * kh * kw)
        wg = weight[g * (O // groups) : (g + 1) * (O // groups)].reshape(O // groups, -1)
        outs.append(emulated_gemm(cg, wg, cfg, s + 3 * g if groups > 1 else s))
    y = torch.cat(outs, dim=1) if groups > 1 else outs[0]  # (N*L, O)
    y = y.reshape(N, L, O).transpose(1, 2).reshape(N, O, Ho, Wo)
    if bias is not None:
        y = y + bias.reshape(1, O, 1, 1)
    return y.squeeze(0) if unbatched else y


def matmul(a: torch.Tensor, b: torch.Tensor, config: Any = None, seed: Any = None) -> torch.Tensor:
    """``torch.matmul`` with emulated GEMMs (1-D promotion and batch broadcasting as torch).

    Gradients: ``da = dc b^T`` under ``input_grad``, ``db = (dc^T a)^T`` under ``weight_grad``.
    """
    _check_tensor(a, "a")
    _check_tensor(b, "b")
    _check_pair(a, b, "a", "b")
    cfg = _resolve(config)
    if cfg is None:
        return torch.matmul(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul operands must have at least one dimension")
    A = a.unsqueeze(0) if a.ndim == 1 else a
    B = b.unsqueeze(-1) if b.ndim == 1 else b
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"matmul shapes {tuple(a.shape)} and {tuple(b.shape)} do not match")
    batch = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    M, K, N = A.shape[-2], A.shape[-1], B.shape[-1]
    A3 = A.expand(*batch, M, K).reshape(-1, M, K)
    Bt3 = B.expand(*batch, K, N).reshape(-1, K, N).transpose(-1, -2)
    y = emulated_gemm(A3, Bt3, cfg, _seed_tensor(seed, cfg.stochastic)).reshape(*batch, M, N)
    if a.ndim == 1:
        y = y.squeeze(-2)
    if b.ndim == 1:
        y = y.squeeze(-1)
    return y


def bmm(a: torch.Tensor, b: torch.Tensor, config: Any = None, seed: Any = None) -> torch.Tensor:
    """``torch.bmm`` ((B, M, K) @ (B, K, N)) with emulated GEMMs."""
    for t, n in ((a, "a"), (b, "b")):
        _check_tensor(t, n)
        if t.ndim != 3:
            raise ValueError(f"{n} must be 3-D for bmm, got shape {tuple(t.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm batch sizes differ: {a.shape[0]} and {b.shape[0]}")
    return matmul(a, b, config, seed)
