"""Model conversion in place (``emulate_``/``restore_``) and the scoped ``emulation`` context.

Per-layer configs are keyed by exact module name (as in ``model.named_modules()``), ``"re:"``
regular expression (``re.fullmatch`` on the name, first match in the mapping's order) or
``"_default"``; exact names win over regexes, regexes over ``_default``. A ``None`` config keeps a
layer in float32 (and restores it if it was emulated).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from . import functional as LF
from .config import EmulationConfig, as_config
from .layers import SUPPORTED, _Emulated

__all__ = ["emulate_", "restore_", "emulation", "emulated_layers"]

_UNSET = object()


def _convertible(mod: nn.Module) -> bool:
    return isinstance(mod, _Emulated) or type(mod) in SUPPORTED


def _set(mod: nn.Module, cfg: EmulationConfig | None) -> None:
    if cfg is None:
        _restore_one(mod)
        return
    if not isinstance(mod, _Emulated):
        orig = type(mod)
        mod.__class__ = SUPPORTED[orig]
        mod._lp_original = orig
    mod.emulation = cfg


def _restore_one(mod: nn.Module) -> None:
    if isinstance(mod, _Emulated):
        mod.__class__ = mod._lp_original
        del mod.emulation
        del mod._lp_original


def _resolve_specs(config: Any) -> tuple[dict[str, Any], list[tuple[str, re.Pattern, Any]], Any]:
    """(exact, regex, default) configs from a single spec or a per-layer mapping."""
    if not isinstance(config, Mapping):
        return {}, [], as_config(config)
    exact: dict[str, Any] = {}
    regex: list[tuple[str, re.Pattern, Any]] = []
    default: Any = _UNSET
    for key, spec in config.items():
        if not isinstance(key, str):
            raise TypeError(f"config keys must be layer names, 're:<regex>' or '_default', got {key!r}")
        cfg = as_config(spec)
        if key == "_default":
            default = cfg
        elif key.startswith("re:"):
            try:
                regex.append((key, re.compile(key[3:]), cfg))
            except re.error as e:
                raise ValueError(f"config key {key!r} is not a valid regular expression: {e}") from None
        else:
            exact[key] = cfg
    return exact, regex, default


def emulate_(model: nn.Module, config: Any, filter_fn: Callable[[nn.Module, str], bool] | None = None) -> nn.Module:
    """Convert a model's ``nn.Linear`` and ``nn.Conv2d`` layers to emulated ones, in place.

    Parameters
    ----------
    model : nn.Module
        Converted in place (the layer objects change class; parameters, state dict keys, hooks and
        optimizer references are untouched). Idempotent; :func:`restore_` undoes it.
    config : config spec or mapping
        One spec for every supported layer (a profile name such as ``"ibm-fp8-2018"``, a
        :class:`lowprec.Profile`, an :class:`EmulationConfig`, a model), or a mapping from layer
        names, ``"re:<regex>"`` and ``"_default"`` to specs (``None`` = keep float32). Layers a
        mapping does not reach are left as they are.
    filter_fn : callable, optional
        ``filter_fn(module, name) -> bool``; layers for which it returns False are left alone.

    Returns
    -------
    nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        An exact name in the mapping that is not a module of the model, or an unknown profile.

    Warns
    -----
    UserWarning
        An exact name that is not a Linear/Conv2d layer (skipped), or a ``re:`` key that matches no
        supported layer.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError("filter_fn must be callable or None")
    exact, regex, default = _resolve_specs(config)
    modules = dict(model.named_modules())
    missing = [k for k in exact if k not in modules]
    if missing:
        names = [n for n, m in modules.items() if _convertible(m)]
        raise ValueError(f"config names {missing} are not modules of the model; convertible layers: {names}")
    for k in exact:
        if not _convertible(modules[k]):
            warnings.warn(
                f"layer {k!r} is a {type(modules[k]).__name__}; only nn.Linear and nn.Conv2d are emulated: skipped",
                stacklevel=2,
            )
    used = set()
    for name, mod in modules.items():
        if not _convertible(mod) or (filter_fn is not None and not filter_fn(mod, name)):
            continue
        if name in exact:
            _set(mod, exact[name])
            continue
        for key, pat, cfg in regex:
            if pat.fullmatch(name):
                used.add(key)
                _set(mod, cfg)
                break
        else:
            if default is not _UNSET:
                _set(mod, default)
    for key, _, _ in regex:
        if key not in used:
            warnings.warn(f"config key {key!r} matches no nn.Linear/nn.Conv2d layer of the model", stacklevel=2)
    return model


def restore_(model: nn.Module) -> nn.Module:
    """Turn every emulated layer of ``model`` back into its original class, in place."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for mod in model.modules():
        _restore_one(mod)
    return model


def emulated_layers(model: nn.Module) -> dict[str, EmulationConfig]:
    """Names and configs of the emulated layers of ``model``."""
    return {n: m.emulation for n, m in model.named_modules() if isinstance(m, _Emulated)}


class emulation(TorchFunctionMode):  # noqa: N801 - used as a context manager, like torch.no_grad
    """Scoped emulation for functional code: inside ``with emulation(config):`` the calls
    ``F.linear``, ``F.conv2d``, ``torch.matmul``/``@``, ``torch.mm`` and ``torch.bmm`` on floating
    tensors run as emulated GEMMs (with autograd). Nothing is patched; leaving the block restores
    plain torch. Layers already converted by :func:`emulate_` keep their own configs.

    Parameters
    ----------
    config : config spec
        As for :func:`emulate_` (one spec, not a mapping).
    seed : int, optional
        Base seed of stochastic configs: call ``i`` inside the block uses ``seed + 3 * i``
        (``None``: every call draws from torch's generator).
    """

    def __init__(self, config: Any, seed: int | None = None) -> None:
        super().__init__()
        if isinstance(config, Mapping):
            raise TypeError("emulation() takes one config; per-layer mappings are for emulate_()")
        self.config = as_config(config)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self.seed = seed
        self.calls = 0

    def _next_seed(self) -> int | None:
        if self.seed is None:
            return None
        s = self.seed + 3 * self.calls
        self.calls += 1
        return s

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        cfg = self.config
        if cfg is not None and all(not isinstance(a, torch.Tensor) or a.dtype.is_floating_point for a in args[:2]):
            if func in (F.linear, torch._C._nn.linear):
                return LF.linear(*args, **kwargs, config=cfg, seed=self._next_seed())
            if func in (F.conv2d, torch.conv2d):
                return LF.conv2d(*args, **kwargs, config=cfg, seed=self._next_seed())
            if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm):
                return LF.matmul(args[0], args[1], cfg, self._next_seed())
            if func in (torch.bmm, torch.Tensor.bmm):
                return LF.bmm(args[0], args[1], cfg, self._next_seed())
        return func(*args, **kwargs)
