"""Emulated layers: ``nn.Linear`` and ``nn.Conv2d`` whose GEMMs follow an :class:`EmulationConfig`.

They are subclasses that add no parameters or buffers, so state dicts, hooks and ``.to(device)``
behave as for the originals; :func:`lowprec.torch.emulate_` converts layers in place (the same
objects change class) and :func:`lowprec.torch.restore_` converts them back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import functional as LF
from ._gemm import emulated_gemm
from ._ops import _seed_tensor
from .config import EmulationConfig, as_config

__all__ = ["EmulatedLinear", "EmulatedConv2d", "SUPPORTED"]


class _Emulated:
    """Mixin: the config and the class the layer was converted from."""

    emulation: EmulationConfig
    _lp_original: type

    def _attach(self, config: Any, original: type) -> None:
        cfg = as_config(config)
        if cfg is None:
            raise ValueError("config must describe an emulation, got None")
        self.emulation = cfg
        self._lp_original = original

    def extra_repr(self) -> str:  # type: ignore[override]
        base = super().extra_repr()  # type: ignore[misc]
        return f"{base}, emulation={self.emulation.name or 'custom'}"


class EmulatedLinear(_Emulated, nn.Linear):
    """``nn.Linear`` whose forward, input-gradient and weight-gradient GEMMs are emulated."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, config: Any, **kw: Any) -> None:
        super().__init__(in_features, out_features, bias, **kw)
        self._attach(config, nn.Linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        ok = isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == w.shape[1] and x.dtype == w.dtype
        if ok and x.device == w.device:  # LF.linear's checks hold: its GEMM call without them
            cfg = self.emulation
            y = emulated_gemm(x, w, cfg, _seed_tensor(None, cfg.stochastic))
            return y if self.bias is None else y + self.bias
        return LF.linear(x, w, self.bias, self.emulation)


class EmulatedConv2d(_Emulated, nn.Conv2d):
    """``nn.Conv2d`` computed as its im2col GEMM, whose three GEMMs are emulated."""

    def __init__(self, *args: Any, config: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._attach(config, nn.Conv2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = torch.nn.functional.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding: Any = 0
        else:
            padding = self.padding
        return LF.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, self.emulation)


SUPPORTED: dict[type, type] = {nn.Linear: EmulatedLinear, nn.Conv2d: EmulatedConv2d}
