"""Eager path of emulated linear layers whose GEMMs only round their operands.

For a config with an operand plan (``config.OperandPlan``: mode ``operands`` in all three GEMMs,
deterministic rounding to float formats, no scaling, no output rounding) the layer's GEMMs are
plain ``torch.mm`` calls on rounded operands, in one autograd function. The bits are those of
``lowprec::emulated_gemm`` (the same roundings and the same ``mm`` calls); operands that two GEMMs
round alike are rounded once.
"""

from __future__ import annotations

from typing import Any

import torch

from ._ops import round_tensor
from .config import OperandPlan


def _round(t: torch.Tensor, spec: tuple) -> torch.Tensor:
    fmt, mode = spec
    return t if fmt is None else round_tensor(t, fmt, mode)


class OperandsLinear(torch.autograd.Function):
    """``x @ w^T`` for 2-D ``x`` (M, K) and ``w`` (N, K) under an operand plan."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, plan: OperandPlan) -> torch.Tensor:
        xq, wq = _round(x, plan.x), _round(w, plan.w)
        ctx.save_for_backward(x, w, xq, wq)
        ctx.plan = plan
        return torch.mm(xq, wq.t())

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple:
        x, w, xq, wq = ctx.saved_tensors
        _, _, gdy, gw, wdy, wx, reuse_w, reuse_x, share_dy = ctx.plan
        dx = dw = None
        dyq = None
        # Operand layouts as in _gemm.py (an operand rounded on its own is rounded transposed, as
        # gemm_nt receives it), so that each mm call is the same BLAS call.
        if ctx.needs_input_grad[0]:
            dyq = _round(dy, gdy)
            dx = torch.mm(dyq, wq if reuse_w else _round(w.t(), gw).t())
        if ctx.needs_input_grad[1]:
            dyw = dyq if (share_dy and dyq is not None) else _round(dy, wdy)
            dw = torch.mm(dyw.t(), xq if reuse_x else _round(x.t(), wx).t())
        return dx, dw, None
