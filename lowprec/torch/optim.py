"""Low-precision optimizer wrapper (weights, gradients, optimizer state and master copy in chosen
formats, stochastic-rounding updates) and loss scaling.

Step order (``specs/fp8-training.md`` sections 5-8): gradients are unscaled and rounded to
``grad``; the wrapped optimizer then runs in float64 on the stored values (master copy if any,
else the weights), and every stored tensor is rounded once, from float64, to its own format:
master copy, weights (from the master copy when there is one), optimizer state (momentum,
Adam moments: every floating state tensor shaped like its parameter).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .._quantize import _check_seed
from ..formats import format
from ..rounding import Rounding, rounding_mode
from ._ops import round_many, round_tensor

__all__ = ["LossScaler", "LowPrecisionOptimizer"]

_GOLDEN = 0x9E3779B97F4A7C15
_ROLES = {"grad": 0, "weight": 1, "master": 2, "state": 3}


class LossScaler:
    """Static or dynamic loss scale.

    Parameters
    ----------
    scale : float
        Initial (or fixed) scale; the loss is multiplied by it before ``backward``.
    dynamic : bool
        Back off by ``backoff`` on a step with inf/NaN gradients (the step is skipped) and grow by
        ``growth`` after ``interval`` clean steps in a row. A static scaler still skips such steps.
    """

    def __init__(
        self,
        scale: float = 2.0**16,
        dynamic: bool = True,
        growth: float = 2.0,
        backoff: float = 0.5,
        interval: int = 2000,
    ) -> None:
        for name, v in (("scale", scale), ("growth", growth), ("backoff", backoff)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if not 0 < backoff < 1 or growth < 1:
            raise ValueError("need 0 < backoff < 1 <= growth")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive int, got {interval!r}")
        self.scale, self.dynamic = float(scale), bool(dynamic)
        self.growth, self.backoff, self.interval = float(growth), float(backoff), interval
        self.clean_steps = 0

    def update(self, found_inf: bool) -> None:
        if not self.dynamic:
            return
        if found_inf:
            self.scale *= self.backoff
            self.clean_steps = 0
        else:
            self.clean_steps += 1
            if self.clean_steps >= self.interval:
                self.scale *= self.growth
                self.clean_steps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "clean_steps": self.clean_steps}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.scale, self.clean_steps = float(d["scale"]), int(d["clean_steps"])

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "static"
        return f"LossScaler({kind}, scale={self.scale:g})"


def _as_scaler(spec: Any) -> LossScaler:
    if spec is None:
        return LossScaler(1.0, dynamic=False)
    if isinstance(spec, LossScaler):
        return spec
    if spec == "dynamic":
        return LossScaler()
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return LossScaler(float(spec), dynamic=False)
    raise TypeError(f"loss_scale must be None, a number, 'dynamic' or a LossScaler, got {spec!r}")


def _fmt(spec: Any, name: str) -> Any:
    if spec is None:
        return None
    try:
        return format(spec)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None


class LowPrecisionOptimizer:
    """Wrap a torch optimizer so weights, gradients, state and master copy live in low precision.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The update rule (SGD, Adam, ...), constructed on the model's parameters.
    weight, grad, state, master : format, optional
        Formats of the weights the model computes with, of the gradients fed to the update, of the
        optimizer state (momentum buffers, Adam moments) and of a master copy of the weights
        (``None``: weights not rounded / gradients as computed / state not rounded / no master
        copy, the weights are the stored copy). ``momentum`` is an alias of ``state``.
    rounding : Rounding or str
        Rounding of the stored tensors: weights, master copy and state (default ``stochastic``).
    grad_rounding : Rounding or str
        Rounding of the gradients (default ``nearest``).
    weight_rounding, state_rounding, master_rounding : optional
        Per-tensor overrides of ``rounding``.
    loss_scale : None, float, "dynamic" or LossScaler
        Static scale (e.g. 1000), dynamic scaling, or none. Scale the loss with :meth:`backward`
        or :meth:`scale_loss`; :meth:`step` divides it out and skips steps with inf/NaN gradients.
    seed : int, optional
        Seed of the stochastic roundings (tensor ``i`` of step ``t`` uses its own stream); ``None``
        draws one from torch's generator.

    Notes
    -----
    At construction the weights are rounded to ``weight`` (and the master copy is made) so the
    model computes with stored values from the first step on.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        weight: Any = None,
        grad: Any = None,
        state: Any = None,
        momentum: Any = None,
        master: Any = None,
        rounding: str | Rounding = "stochastic",
        grad_rounding: str | Rounding = "nearest",
        weight_rounding: str | Rounding | None = None,
        state_rounding: str | Rounding | None = None,
        master_rounding: str | Rounding | None = None,
        loss_scale: Any = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if state is not None and momentum is not None:
            raise ValueError("give state or its alias momentum, not both")
        self.optimizer = optimizer
        self.formats = {
            "weight": _fmt(weight, "weight"),
            "grad": _fmt(grad, "grad"),
            "state": _fmt(state if state is not None else momentum, "state"),
            "master": _fmt(master, "master"),
        }
        base = rounding_mode(rounding)
        self.roundings = {
            "weight": rounding_mode(weight_rounding) if weight_rounding is not None else base,
            "grad": rounding_mode(grad_rounding),
            "state": rounding_mode(state_rounding) if state_rounding is not None else base,
            "master": rounding_mode(master_rounding) if master_rounding is not None else base,
        }
        self.scaler = _as_scaler(loss_scale)
        self.seed = int(torch.randint(0, 2**62, ()).item()) if seed is None else _check_seed(seed)
        self.steps = 0
        self.skipped_steps = 0
        self.master: dict[torch.Tensor, torch.Tensor] = {}
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        with torch.no_grad():
            for i, p in enumerate(self._params):
                if self.formats["master"] is not None:
                    self.master[p] = self._round(p.detach(), "master", i)
                    src = self.master[p]
                else:
                    src = p.detach()
                if self.formats["weight"] is not None:
                    p.data = self._round(src, "weight", i).to(p.dtype)

    # --- helpers --------------------------------------------------------------------------------
    def _round(self, t: torch.Tensor, role: str, i: int) -> torch.Tensor:
        fmt = self.formats[role]
        if fmt is None:
            return t
        n = len(self._params)
        seed = (self.seed + ((self.steps * n + i) * 4 + _ROLES[role] + 1) * _GOLDEN) % 2**64
        return round_tensor(t, fmt, self.roundings[role], seed=seed)

    def _round_many(self, ts: list[torch.Tensor], role: str, idx: list[int]) -> list[torch.Tensor]:
        """``[self._round(t, role, i) for t, i in zip(ts, idx)]`` in one kernel call where possible."""
        fmt = self.formats[role]
        if fmt is None:
            return list(ts)
        n = len(self._params)
        seeds = [(self.seed + ((self.steps * n + i) * 4 + _ROLES[role] + 1) * _GOLDEN) % 2**64 for i in idx]
        return round_many(ts, fmt, self.roundings[role], seeds)

    def _grads_finite(self, grads: list[torch.Tensor]) -> bool:
        """No inf/NaN in any gradient (one pass, as GradScaler checks; multiplying by 1 changes no value)."""
        try:
            found = torch.zeros((), device=grads[0].device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones((), device=grads[0].device))
            return found.item() == 0
        except (RuntimeError, TypeError):  # mixed devices or dtypes
            return all(bool(torch.isfinite(g).all()) for g in grads)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @property
    def loss_scale(self) -> float:
        return self.scaler.scale

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss times the current scale (call ``backward`` on this)."""
        return loss * self.scaler.scale if self.scaler.scale != 1.0 else loss

    def backward(self, loss: torch.Tensor, **kw: Any) -> None:
        """``scale_loss(loss).backward()``."""
        self.scale_loss(loss).backward(**kw)

    # --- the step -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Unscale and round the gradients, update in float64, round every stored tensor once.

        Returns the closure's loss (or None). A step with inf/NaN gradients is skipped (counted in
        ``skipped_steps``) and, with dynamic scaling, the scale backs off.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        live = [(i, p) for i, p in enumerate(self._params) if p.grad is not None]
        if live and not self._grads_finite([p.grad.detach() for _, p in live]):
            self.scaler.update(True)
            self.skipped_steps += 1
            return loss
        idx = [i for i, _ in live]
        inv = 1.0 / self.scaler.scale
        grads = [p.grad.detach().double() for _, p in live]
        if inv != 1.0:
            grads = torch._foreach_mul(grads, inv)
        grads = self._round_many(grads, "grad", idx)
        saved = {}
        for (_, p), g in zip(live, grads, strict=True):
            saved[p] = (p.data, p.grad, p.dtype)
            src = self.master.get(p, p.data)
            p.data = src.double()
            p.grad = g
            for k, v in self.optimizer.state[p].items():
                if torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape:
                    self.optimizer.state[p][k] = v.double()
        try:
            self.optimizer.step()
        finally:
            news = [p.data for _, p in live]
            if self.master:
                masters = self._round_many(news, "master", idx)
                for (_, p), m in zip(live, masters, strict=True):
                    self.master[p] = m.to(self.master[p].dtype)
                weights = self._round_many(masters, "weight", idx)
            else:
                weights = self._round_many(news, "weight", idx)
            states, where = [], []
            for (i, p), w in zip(live, weights, strict=True):
                old_data, old_grad, _ = saved[p]
                old_data.copy_(w)
                p.data = old_data
                p.grad = old_grad
                st = self.optimizer.state[p]
                for k, v in st.items():
                    if torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape:
                        states.append(v)
                        where.append((i, p, k))
            rounded = self._round_many(states, "state", [i for i, _, _ in where])
            for (_, p, k), v in zip(where, rounded, strict=True):
                self.optimizer.state[p][k] = v.to(saved[p][2])
        self.steps += 1
        self.scaler.update(False)
        return loss

    # --- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "master": [self.master.get(p) for p in self._params],
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
            "seed": self.seed,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        self.scaler.load_state_dict(d["scaler"])
        self.master = {p: m.clone() for p, m in zip(self._params, d["master"], strict=True) if m is not None}
        self.steps, self.skipped_steps, self.seed = int(d["steps"]), int(d["skipped_steps"]), int(d["seed"])

    def __repr__(self) -> str:
        fm = ", ".join(f"{k}={v}" for k, v in self.formats.items() if v is not None)
        return f"LowPrecisionOptimizer({type(self.optimizer).__name__}, {fm}, {self.scaler})"
