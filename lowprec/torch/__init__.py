"""lowprec for torch: train whole networks under emulated numerics.

>>> import torch, lowprec.torch as lpt
>>> lpt.quantize(torch.tensor([1.0625, 300.0]), "e4m3fn")  # ties to even; 300 -> 288
tensor([  1., 288.])

* :func:`quantize` -- autograd-aware rounding (``lowprec::quantize`` custom op; works under
  ``torch.compile``), straight-through gradient optionally rounded to a backward format.
* :func:`emulate_` / :func:`restore_` -- convert a model's Linear/Conv2d layers in place, per layer
  (exact name, ``re:`` regex, ``_default``); :class:`emulation` -- the same for functional code.
* :class:`EmulationConfig` -- the three GEMMs of a layer (forward, input-gradient, weight-gradient),
  each an accumulation model with an emulation mode; accelerator profiles deserialize into it.
* :class:`LowPrecisionOptimizer` -- formats and rounding for weights, gradients, optimizer state and
  master copy; loss scaling.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - torch is a declared extra
    raise ImportError("lowprec.torch needs torch: pip install 'lowprec[torch]' (torch==2.13.0)") from e

from . import functional
from ._gemm import grad_seeds
from ._ops import quantize
from .config import EmulationConfig, GemmConfig, GemmMode, Scaling, as_config
from .convert import emulate_, emulated_layers, emulation, restore_
from .layers import EmulatedConv2d, EmulatedLinear
from .optim import LossScaler, LowPrecisionOptimizer

__all__ = [
    "quantize",
    "functional",
    "EmulationConfig",
    "GemmConfig",
    "GemmMode",
    "Scaling",
    "as_config",
    "emulate_",
    "restore_",
    "emulation",
    "emulated_layers",
    "EmulatedLinear",
    "EmulatedConv2d",
    "LowPrecisionOptimizer",
    "LossScaler",
    "grad_seeds",
]
