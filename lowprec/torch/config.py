"""Emulation recipes: what each GEMM of a layer computes (forward, input-gradient, weight-gradient).

A :class:`GemmConfig` pairs an accumulation model (:class:`lowprec.AccumModel` or
:class:`lowprec.BlockFMA`) with a :class:`GemmMode` (how faithfully it is emulated) and an operand
:class:`Scaling`. An :class:`EmulationConfig` holds one per GEMM; accelerator profiles deserialize
into it, and it round-trips through plain dicts and JSON.

GEMM operand order (the ``a_format``/``b_format`` of each model):

========================  =========================  ==================
GEMM                      a (first operand)          b (second operand)
========================  =========================  ==================
forward ``y = x W^T``     input ``x``                weight ``W^T``
input-grad ``dx = dy W``  output gradient ``dy``     weight ``W``
weight-grad ``dW``        output gradient ``dy^T``   input ``x``
========================  =========================  ==================
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

from ..accum import AccumModel, BlockFMA
from ..formats import FloatFormat
from ..profiles import Profile, load_profile

__all__ = ["GemmMode", "Scaling", "GemmConfig", "EmulationConfig", "as_config"]

_GEMMS = ("forward", "input_grad", "weight_grad")


class GemmMode(str, enum.Enum):
    """How a GEMM is emulated, most faithful first.

    ``exact``: every addition rounded as the model says (``lowprec.matmul``; CPU kernels).
    ``chunk``: operands rounded, each chunk summed in float32 and rounded to the accumulator, the
    chunk sums then added with per-addition rounding (``AccumModel`` with ``chunk`` only; cheaper,
    swamping inside a chunk is not modelled). ``operands``: operands rounded, float32 GEMM, output
    rounded to ``out_format`` if the model has one. ``float32``: the plain torch GEMM.
    """

    EXACT = "exact"
    CHUNK = "chunk"
    OPERANDS = "operands"
    FLOAT32 = "float32"


class Scaling(str, enum.Enum):
    """Operand scaling before rounding to the operand formats.

    ``none``: operands are rounded as given. ``tensor``: each operand is multiplied by the power of
    two that brings its largest magnitude closest to (not above) the format's max, and the product
    is divided by both afterwards (exact power-of-two scaling, as FP8 recipes with per-tensor scales).
    """

    NONE = "none"
    TENSOR = "tensor"


def _model_kind(m: Any) -> str:
    return "block-fma" if isinstance(m, BlockFMA) else "per-add"


@dataclass(frozen=True)
class GemmConfig:
    """One GEMM's arithmetic.

    Parameters
    ----------
    model : AccumModel or BlockFMA, optional
        Operand formats, accumulator and rounding (``None``: float32, the plain torch GEMM).
    mode : GemmMode or str
        Emulation fidelity (default ``exact``); forced to ``float32`` when ``model`` is None.
    scaling : Scaling or str
        Operand scaling (default ``none``).
    """

    model: AccumModel | BlockFMA | None = None
    mode: Any = GemmMode.EXACT
    scaling: Any = Scaling.NONE

    def __post_init__(self) -> None:
        if self.model is not None and not isinstance(self.model, (AccumModel, BlockFMA)):
            raise TypeError(f"model must be an AccumModel, a BlockFMA or None, got {type(self.model).__name__}")
        try:
            mode = GemmMode(self.mode)
        except ValueError:
            raise ValueError(f"mode must be one of {[m.value for m in GemmMode]}, got {self.mode!r}") from None
        try:
            scaling = Scaling(self.scaling)
        except ValueError:
            raise ValueError(f"scaling must be one of {[s.value for s in Scaling]}, got {self.scaling!r}") from None
        if self.model is None:
            mode = GemmMode.FLOAT32
        if mode is GemmMode.CHUNK and not (isinstance(self.model, AccumModel) and self.model.chunk is not None):
            raise ValueError("mode='chunk' needs an AccumModel with a chunk length")
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "scaling", scaling)
        # Derived once: a plain attribute read, which torch.compile traces (a cached_property's lock
        # it does not).
        object.__setattr__(self, "_stochastic", self._draws_random_bits())

    @property
    def stochastic(self) -> bool:
        """Whether the GEMM draws random bits (stochastic operand, accumulator or output rounding)."""
        return self._stochastic  # type: ignore[attr-defined]

    def _draws_random_bits(self) -> bool:
        m = self.model
        if m is None or self.mode is GemmMode.FLOAT32:
            return False
        modes = [m.operand_rounding]
        if isinstance(m, AccumModel):
            modes += [m.out_rounding]
            if self.mode is not GemmMode.OPERANDS:
                modes.append(m.rounding)
        return any(r.is_stochastic for r in modes)

    def replace(self, **changes: Any) -> GemmConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form; :meth:`from_dict` inverts it."""
        m = self.model
        return {
            "mode": self.mode.value,
            "scaling": self.scaling.value,
            "kind": None if m is None else _model_kind(m),
            "model": None if m is None else m.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GemmConfig:
        if not isinstance(d, Mapping):
            raise TypeError(f"GemmConfig.from_dict takes a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"mode", "scaling", "kind", "model"})
        if unknown:
            raise ValueError(f"unknown GemmConfig key(s) {unknown}; allowed: kind, mode, model, scaling")
        md, kind = d.get("model"), d.get("kind", "per-add")
        if md is None:
            model = None
        elif kind == "per-add":
            model = AccumModel.from_dict(md)
        elif kind == "block-fma":
            model = BlockFMA.from_dict(md)
        else:
            raise ValueError(f"kind must be 'per-add' or 'block-fma', got {kind!r}")
        return cls(model, d.get("mode", "exact"), d.get("scaling", "none"))


class OperandPlan(NamedTuple):
    """The operand roundings of a config whose three GEMMs only round their operands: (format,
    rounding) of x and w (forward), dy and w (input gradient), dy and x (weight gradient), and which
    roundings coincide (so that they are done once)."""

    x: tuple
    w: tuple
    dy_input_grad: tuple
    w_input_grad: tuple
    dy_weight_grad: tuple
    x_weight_grad: tuple
    reuse_w: bool  # the input-gradient GEMM rounds w as the forward does
    reuse_x: bool  # the weight-gradient GEMM rounds x as the forward does
    share_dy: bool  # both gradient GEMMs round dy alike


def _operand_plan(cfg: EmulationConfig) -> OperandPlan | None:
    """The OperandPlan of a config whose three GEMMs only round their operands to float formats,
    deterministically and without scaling or output rounding; None for any other config."""
    specs = []
    for g in _GEMMS:
        gc = getattr(cfg, g)
        m = gc.model
        if gc.mode is not GemmMode.OPERANDS or gc.scaling is not Scaling.NONE or m.operand_rounding.is_stochastic:
            return None
        if isinstance(m, AccumModel) and m.out_format is not None:
            return None
        if not all(f is None or isinstance(f, FloatFormat) for f in (m.a_format, m.b_format)):
            return None
        specs += [(m.a_format, m.operand_rounding), (m.b_format, m.operand_rounding)]
    fx, fw, gdy, gw, wdy, wx = specs
    return OperandPlan(fx, fw, gdy, gw, wdy, wx, gw == fw, wx == fx, wdy == gdy)


def _gemm(spec: Any, name: str) -> GemmConfig:
    if isinstance(spec, GemmConfig):
        return spec
    if spec is None or isinstance(spec, (AccumModel, BlockFMA)):
        return GemmConfig(spec)
    if isinstance(spec, Mapping):
        return GemmConfig.from_dict(spec)
    raise TypeError(f"{name} must be a GemmConfig, an AccumModel, a BlockFMA or None, got {type(spec).__name__}")


@dataclass(frozen=True)
class EmulationConfig:
    """The arithmetic of a layer's three GEMMs.

    Parameters
    ----------
    forward : GemmConfig (or a model)
        ``y = x W^T`` (a convolution as its im2col GEMM).
    input_grad, weight_grad : GemmConfig (or a model), optional
        ``dx = dy W`` and ``dW = dy^T x``; default: the forward config.
    name : str, optional
        Label (the profile name for :meth:`from_profile`).
    """

    forward: Any = None
    input_grad: Any = None
    weight_grad: Any = None
    name: str | None = None

    def __post_init__(self) -> None:
        fwd = _gemm(self.forward, "forward")
        object.__setattr__(self, "forward", fwd)
        for g in ("input_grad", "weight_grad"):
            v = getattr(self, g)
            object.__setattr__(self, g, fwd if v is None else _gemm(v, g))
        object.__setattr__(self, "_stochastic", any(getattr(self, g).stochastic for g in _GEMMS))
        object.__setattr__(self, "_float32", all(getattr(self, g).mode is GemmMode.FLOAT32 for g in _GEMMS))
        object.__setattr__(self, "_operand_plan", _operand_plan(self))
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a str or None, got {type(self.name).__name__}")

    # --- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_profile(
        cls, profile: Any, mode: Any = GemmMode.EXACT, scaling: Any = Scaling.NONE, **model_changes: Any
    ) -> EmulationConfig:
        """All three GEMMs follow an accelerator profile (name, path or :class:`lowprec.Profile`).

        ``model_changes`` edit the profile's model (e.g. ``acc="e5m2"``, ``chunk=32``).
        """
        p = load_profile(profile)
        model = p.model()
        if model_changes:
            model = model.replace(**model_changes)
        return cls(GemmConfig(model, mode, scaling), name=p.name)

    @classmethod
    def uniform(cls, model: Any, mode: Any = GemmMode.EXACT, scaling: Any = Scaling.NONE) -> EmulationConfig:
        """The same model and mode for all three GEMMs."""
        return cls(GemmConfig(model, mode, scaling))

    # --- views and edits ------------------------------------------------------------------------
    @property
    def gemms(self) -> dict[str, GemmConfig]:
        return {g: getattr(self, g) for g in _GEMMS}

    @property
    def is_float32(self) -> bool:
        """Every GEMM is the plain float32 one."""
        return self._float32  # type: ignore[attr-defined]

    @property
    def stochastic(self) -> bool:
        """Whether any GEMM draws random bits."""
        return self._stochastic  # type: ignore[attr-defined]

    def replace(self, **changes: Any) -> EmulationConfig:
        """A copy with some GEMM configs (or the name) replaced."""
        return replace(self, **changes)

    def with_mode(self, mode: Any) -> EmulationConfig:
        """The same models, every GEMM emulated in ``mode``."""
        return replace(self, **{g: c.replace(mode=mode) for g, c in self.gemms.items() if c.model is not None})

    def with_model(self, **changes: Any) -> EmulationConfig:
        """Every GEMM's model edited the same way (``cfg.with_model(a_format="e6m9", b_format="e6m9")``)."""
        return replace(
            self, **{g: c.replace(model=c.model.replace(**changes)) for g, c in self.gemms.items() if c.model}
        )

    # --- serialization --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-compatible); :meth:`from_dict` inverts it."""
        d: dict[str, Any] = {"name": self.name}
        d.update({g: c.to_dict() for g, c in self.gemms.items()})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EmulationConfig:
        if not isinstance(d, Mapping):
            raise TypeError(f"EmulationConfig.from_dict takes a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", *_GEMMS})
        if unknown:
            raise ValueError(f"unknown EmulationConfig key(s) {unknown}; allowed: name, {', '.join(_GEMMS)}")
        if "forward" not in d:
            raise ValueError("EmulationConfig.from_dict needs a 'forward' entry")
        return cls(**{g: GemmConfig.from_dict(d[g]) for g in _GEMMS if g in d}, name=d.get("name"))

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, s: str) -> EmulationConfig:
        if not isinstance(s, str):
            raise TypeError(f"from_json takes a str, got {type(s).__name__}")
        return _from_json_cached(s)


@lru_cache(maxsize=512)
def _from_json_cached(s: str) -> EmulationConfig:
    return EmulationConfig.from_dict(json.loads(s))


def as_config(spec: Any) -> EmulationConfig | None:
    """Resolve a config description: ``None`` (float32, leave alone), an :class:`EmulationConfig`, a
    :class:`GemmConfig` or model (all three GEMMs), a profile name, ``.toml`` path or
    :class:`lowprec.Profile`."""
    if spec is None or isinstance(spec, EmulationConfig):
        return spec
    if isinstance(spec, (GemmConfig, AccumModel, BlockFMA)):
        return EmulationConfig(spec)
    if isinstance(spec, (str, Profile)) or hasattr(spec, "__fspath__"):
        return EmulationConfig.from_profile(spec)
    raise TypeError(
        "config must be None, an EmulationConfig, a GemmConfig, an AccumModel/BlockFMA, a profile name or path, "
        f"or a Profile; got {type(spec).__name__}"
    )
