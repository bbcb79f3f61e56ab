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


def _is_stored_state(k: str, v: Any, p: torch.Tensor) -> bool:
    """A state tensor stored in low precision: floating and shaped like its parameter (a step
    counter is not, even for a 0-d parameter)."""
    return k != "step" and torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape


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
        self._work: dict[tuple[int, str], torch.Tensor] = {}  # float64 work tensors (see step)
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

    def _round_many(
        self, ts: list[torch.Tensor], role: str, idx: list[int], outs: list[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """``[self._round(t, role, i) for t, i in zip(ts, idx)]`` in one kernel call where possible,
        into ``outs`` when given (``ts`` itself when the role has no format)."""
        fmt = self.formats[role]
        if fmt is None:
            return list(ts)
        n = len(self._params)
        seeds = [(self.seed + ((self.steps * n + i) * 4 + _ROLES[role] + 1) * _GOLDEN) % 2**64 for i in idx]
        return round_many(ts, fmt, self.roundings[role], seeds, outs)

    def _buffer(self, i: int, name: str, like: torch.Tensor) -> torch.Tensor:
        """A float64 work tensor shaped like ``like`` on its device, kept between steps."""
        key = (i, name)
        b = self._work.get(key)
        if b is None or b.shape != like.shape or b.device != like.device:
            b = torch.empty(like.shape, dtype=torch.float64, device=like.device)
            self._work[key] = b
        return b

    def _buffers(self, live: list[tuple[int, torch.Tensor]], name: str) -> list[torch.Tensor]:
        return [self._buffer(i, name, p) for i, p in live]

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
        if not live:
            self.optimizer.step()
            self.steps += 1
            self.scaler.update(False)
            return loss
        idx = [i for i, _ in live]
        # Everything the update reads, in float64 work tensors kept between steps (one foreach copy
        # per role): gradients (unscaled, then rounded), stored weights (master copy if any), state.
        # Each role is rounded in place in them, then copied to the stored tensors.
        g_in = self._buffers(live, "grad_in")
        torch._foreach_copy_(g_in, [p.grad for _, p in live])
        inv = 1.0 / self.scaler.scale
        if inv != 1.0:
            torch._foreach_mul_(g_in, inv)
        grads = self._round_many(g_in, "grad", idx, g_in)  # in place
        data = self._buffers(live, "data")
        torch._foreach_copy_(data, [self.master.get(p, p.data) for _, p in live])
        saved, st_in, st_buf = [], [], []
        for (i, p), d, g in zip(live, data, grads, strict=True):
            saved.append((p.data, p.grad))
            p.data, p.grad = d, g
            st = self.optimizer.state[p]
            for k, v in list(st.items()):
                if _is_stored_state(k, v, p):
                    st_in.append(v)
                    st[k] = self._buffer(i, "state_in:" + k, v)
                    st_buf.append(st[k])
        if st_in:
            torch._foreach_copy_(st_buf, st_in)
        try:
            self.optimizer.step()
        finally:
            news = [p.data for _, p in live]
            if self.master:
                masters = self._round_many(news, "master", idx, news)  # in place, as below
                torch._foreach_copy_([self.master[p] for _, p in live], masters)
                weights = self._round_many(masters, "weight", idx, masters)
            else:
                weights = self._round_many(news, "weight", idx, news)
            for (_, p), (old_data, old_grad) in zip(live, saved, strict=True):
                p.data, p.grad = old_data, old_grad
            torch._foreach_copy_([p.data for _, p in live], weights)
            # State after the update (new tensors on a first step), rounded to its format and stored
            # in the parameter's dtype: into the tensors it came from, or new ones.
            stored = {id(b): v for b, v in zip(st_buf, st_in, strict=True)}
            states, where = [], []
            for i, p in live:
                for k, v in self.optimizer.state[p].items():
                    if _is_stored_state(k, v, p):
                        states.append(v)
                        where.append((i, p, k))
            # in place: work tensors, or float64 state the update has just made
            rounded = self._round_many(states, "state", [i for i, _, _ in where], states)
            for (_, p, k), v, r in zip(where, states, rounded, strict=True):
                old = stored.get(id(v))
                if old is not None and old.shape == r.shape:
                    old.copy_(r)
                    self.optimizer.state[p][k] = old
                else:
                    self.optimizer.state[p][k] = r.to(p.dtype, copy=True)
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
