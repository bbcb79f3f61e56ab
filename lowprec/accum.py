"""Accumulation models: how a sum, dot product or matrix product adds its terms.

Two families, both frozen dataclasses:

* :class:`AccumModel` -- every addition rounded to an accumulator format (IBM-style chunk-based
  FP8 training, bf16/fp32 accumulators, stochastic accumulation), in sequential, chunked or
  pairwise order;
* :class:`BlockFMA` -- the tensor-core block-FMA model (``specs/accelerator-models.md``): blocks of
  F exact products aligned to the largest exponent, truncated, summed exactly, rounded once.

Accelerator profiles (:mod:`lowprec.profiles`) deserialize into these objects.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .formats import FloatFormat, format
from .mx import MXFormat, mx_format
from .rounding import Rounding, rounding_mode

__all__ = ["Order", "AccumModel", "BlockFMA", "Promotion", "as_float_format"]


class Order(str, enum.Enum):
    """Order of the additions of a reduction.

    ``sequential``: ``((c + t0) + t1) + ...``. ``chunked``: consecutive chunks of ``chunk`` terms
    are summed sequentially from zero, and each chunk sum is added to the running total
    (Wang et al. 2018). ``pairwise``: bottom-up pairs ``(t0 + t1), (t2 + t3), ...``, level by
    level (an odd subtree passes up unchanged), then the tree is added to ``c``.
    """

    SEQUENTIAL = "sequential"
    CHUNKED = "chunked"
    PAIRWISE = "pairwise"


def as_float_format(spec: Any, name: str, allow_none: bool = True) -> FloatFormat | None:
    """Resolve a float format argument (``None`` allowed when ``allow_none``)."""
    if spec is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a float format, got None")
    fmt = FloatFormat(**spec) if isinstance(spec, dict) else format(spec)
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"{name} must be a floating-point format, got {fmt}")
    return fmt


def _operand_format(spec: Any, name: str) -> Any:
    """A float format, an MX format (``"mxfp8_e4m3"``, :class:`~lowprec.MXFormat`) or None."""
    if spec is None:
        return None
    if isinstance(spec, MXFormat) or (isinstance(spec, str) and spec.strip().lower().startswith("mx")):
        return mx_format(spec)
    return as_float_format(spec, name)


def _check_int(v: Any, name: str, lo: int | None = None, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, got {type(v).__name__}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return int(v)


@dataclass(frozen=True)
class AccumModel:
    """Per-addition accumulation: each addition is rounded to ``acc`` with ``rounding``.

    Parameters
    ----------
    acc : format
        Accumulator format (at most 51 significant bits); default fp32.
    rounding : Rounding or str
        Rounding of every addition (any mode; stochastic modes draw reproducible random bits).
    chunk : int, optional
        Chunk length for chunk-based accumulation; implies ``order="chunked"``.
    order : Order or str, optional
        ``sequential`` (default without ``chunk``), ``chunked`` or ``pairwise``.
    a_format, b_format : format, optional
        Operand formats: operands are first rounded to them with ``operand_rounding``
        (``None``: operands are used as given). MX formats (``"mxfp8_e4m3"``, ...) are applied
        along the reduction axis, block scales included.
    operand_rounding : Rounding or str
        Rounding of the operands (default ``nearest``).
    product_format : format, optional
        ``None``: exact products (a fused multiply-add per step). Otherwise each product is
        rounded to this format with ``rounding`` before it is added.
    out_format : format, optional
        Format of the result, rounded once from the accumulator with ``out_rounding``
        (``None``: the accumulator value).
    out_rounding : Rounding or str
    saturate : bool
        Accumulator overflow clamps to +-max instead of giving inf/NaN.
    sr_bits : int, optional
        Random bits of stochastic accumulation (``rounding="stochastic"``); None: exact.
    """

    acc: Any = "fp32"
    rounding: Any = Rounding.NEAREST
    chunk: int | None = None
    order: Any = None
    a_format: Any = None
    b_format: Any = None
    operand_rounding: Any = Rounding.NEAREST
    product_format: Any = None
    out_format: Any = None
    out_rounding: Any = Rounding.NEAREST
    saturate: bool = False
    sr_bits: int | None = None

    def __post_init__(self) -> None:
        acc = as_float_format(self.acc, "acc", allow_none=False)
        if acc.precision > 51:
            raise ValueError(f"acc must have at most 51 significant bits, got {acc} ({acc.precision})")
        object.__setattr__(self, "acc", acc)
        object.__setattr__(self, "rounding", rounding_mode(self.rounding))
        object.__setattr__(self, "operand_rounding", rounding_mode(self.operand_rounding))
        object.__setattr__(self, "out_rounding", rounding_mode(self.out_rounding))
        chunk = _check_int(self.chunk, "chunk", 1, allow_none=True)
        object.__setattr__(self, "chunk", chunk)
        if self.order is None:
            order = Order.CHUNKED if chunk is not None else Order.SEQUENTIAL
        else:
            try:
                order = Order(self.order)
            except ValueError:
                names = ", ".join(o.value for o in Order)
                raise ValueError(f"order must be one of {names}, got {self.order!r}") from None
        if order is Order.CHUNKED and chunk is None:
            raise ValueError("order='chunked' needs chunk=<length>")
        if order is not Order.CHUNKED and chunk is not None:
            raise ValueError(f"chunk applies to order='chunked', not {order.value!r}")
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "a_format", _operand_format(self.a_format, "a_format"))
        object.__setattr__(self, "b_format", _operand_format(self.b_format, "b_format"))
        pf = as_float_format(self.product_format, "product_format")
        if pf is not None and pf.precision > 51:
            raise ValueError(f"product_format must have at most 51 significant bits, got {pf}")
        object.__setattr__(self, "product_format", pf)
        object.__setattr__(self, "out_format", as_float_format(self.out_format, "out_format"))
        if not isinstance(self.saturate, (bool, np.bool_)):
            raise TypeError(f"saturate must be a bool, got {type(self.saturate).__name__}")
        object.__setattr__(self, "saturate", bool(self.saturate))
        sr = _check_int(self.sr_bits, "sr_bits", 1, allow_none=True)
        if sr is not None and (self.rounding is not Rounding.STOCHASTIC or sr > 52):
            raise ValueError("sr_bits needs rounding='stochastic' and a value in 1..52")
        object.__setattr__(self, "sr_bits", sr)

    def replace(self, **changes: Any) -> AccumModel:
        """A copy with some fields changed (``dataclasses.replace``)."""
        if "chunk" in changes and "order" not in changes:
            changes["order"] = None
        return replace(self, **changes)

    def steps(self, K: int) -> int:
        """Random-stream indices used per output element for a reduction of K terms."""
        n_chunks = 0 if self.chunk is None else -(-K // self.chunk)
        return 1 + K + n_chunks

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (format names or field dicts, rounding names)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AccumModel:
        """Inverse of :meth:`to_dict` (unknown keys are errors)."""
        return cls(**_from_dict(cls, d))


@dataclass(frozen=True)
class Promotion:
    """Promotion of tensor-core partial sums to an fp32 register (DeepSeek-V3 section 3.3).

    Every ``every`` elements along K, the tensor-core partial (started from zero) is multiplied by
    the operands' scale product and added into an fp32 accumulator with round-to-nearest.

    Parameters
    ----------
    every : int
        K elements per promotion (128: four H100 WGMMAs).
    fma : bool
        ``True``: ``acc + s * partial`` is rounded once; ``False``: ``s * partial`` is rounded to
        fp32 first.
    scale_block : int, optional
        Fine-grained scaling (equal to ``every``): A is scaled per 1 x ``scale_block`` tile (per
        row) and B per ``scale_block`` x ``scale_block`` block, with scale ``amax / max(format)``
        (fp32); ``None``: the operands are taken as given (no scaling).
    power_of_two_scales : bool
        Round every scale up to a power of two.
    """

    every: int = 128
    fma: bool = False
    scale_block: int | None = 128
    power_of_two_scales: bool = False

    def __post_init__(self) -> None:
        _check_int(self.every, "every", 1)
        _check_int(self.scale_block, "scale_block", 1, allow_none=True)
        for name in ("fma", "power_of_two_scales"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool")
        if self.scale_block is not None and self.every != self.scale_block:
            raise ValueError("promotion: scale_block must equal every (one scale per promoted slice) or be None")


@dataclass(frozen=True)
class BlockFMA:
    """Tensor-core block-FMA model (``specs/accelerator-models.md`` section 2).

    Parameters
    ----------
    a_format, b_format : format
        Input formats (at most 11 significant bits); operands are rounded to them first with
        ``operand_rounding`` (tf32: toward zero, as the hardware reads fp32 data).
    block : int
        Products per block-FMA (F) -- or per instruction when ``sub_block`` splits it.
    extra_align_bits : int
        neab: terms keep 23 + neab fraction bits below the largest exponent.
    rounding : Rounding or str
        Final rounding of a block: ``toward_zero`` or ``nearest``.
    out_format : format
        Output and accumulator format: fp32 (``23 + min(neab, 0)`` fraction bits are kept) or fp16.
    min_exp_limit : int, optional
        Lower clamp of the alignment exponent.
    in_subnormals, out_subnormals : bool
        Without input subnormals inputs below the input format's smallest normal are flushed to
        zero; without output subnormals so is c below the output format's.
    sub_block : int, optional
        Split each instruction's ``block`` products into chained block-FMAs of ``sub_block``
        products, in the order given by ``split`` (FP8 through ``mma.sync``).
    split : tuple of tuple of int, optional
        Groups of residues ``k mod split_period``, e.g. ``((0, 1), (2, 3))``: the products of each
        group, in order, form consecutive sub-blocks.
    split_period : int
    late_c : bool
        Sub-blocks start from zero and c is added afterwards in one round-to-nearest addition.
    promotion : Promotion, optional
        Promote partial sums to an fp32 register every ``promotion.every`` elements.
    """

    a_format: Any = "fp16"
    b_format: Any = "fp16"
    block: int = 4
    extra_align_bits: int = 0
    rounding: Any = Rounding.TOWARD_ZERO
    out_format: Any = "fp32"
    min_exp_limit: int | None = None
    in_subnormals: bool = True
    out_subnormals: bool = True
    operand_rounding: Any = Rounding.NEAREST
    sub_block: int | None = None
    split: tuple[tuple[int, ...], ...] | None = None
    split_period: int | None = None
    late_c: bool = False
    promotion: Promotion | None = None
    perm: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        for name in ("a_format", "b_format"):
            f = as_float_format(getattr(self, name), name, allow_none=False)
            if f.precision > 11:
                raise ValueError(f"{name} must have at most 11 significant bits for the block-FMA model, got {f}")
            if f.emin < -126 or f.emax > 127:
                raise ValueError(f"{name} must fit the float32 exponent range, got {f}")
            object.__setattr__(self, name, f)
        out = as_float_format(self.out_format, "out_format", allow_none=False)
        if out.precision > 24 or out.emax > 127 or out.emin < -126:
            raise ValueError(f"out_format must fit in float32, got {out}")
        object.__setattr__(self, "out_format", out)
        _check_int(self.block, "block", 1)
        if self.block > 64:
            raise ValueError(f"block must be <= 64, got {self.block}")
        neab = _check_int(self.extra_align_bits, "extra_align_bits")
        if not -20 <= neab <= 3:
            raise ValueError(f"extra_align_bits must be in -20..3, got {neab}")
        rnd = rounding_mode(self.rounding)
        if rnd not in (Rounding.TOWARD_ZERO, Rounding.NEAREST):
            raise ValueError(f"rounding of a block-FMA must be 'toward_zero' or 'nearest', got {rnd.value!r}")
        object.__setattr__(self, "rounding", rnd)
        object.__setattr__(self, "operand_rounding", rounding_mode(self.operand_rounding))
        _check_int(self.min_exp_limit, "min_exp_limit", allow_none=True)
        for name in ("in_subnormals", "out_subnormals", "late_c"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.promotion is not None and not isinstance(self.promotion, Promotion):
            raise TypeError("promotion must be a Promotion or None")
        object.__setattr__(self, "perm", self._permutation())

    def _permutation(self) -> tuple[int, ...]:
        F = self.block
        sub = _check_int(self.sub_block, "sub_block", 1, allow_none=True)
        if self.split is None:
            if self.split_period is not None:
                raise ValueError("split_period needs split")
            if sub is not None and F % sub != 0:
                raise ValueError("block must be a multiple of sub_block")
            return tuple(range(F))
        period = _check_int(self.split_period, "split_period", 1)
        groups = tuple(tuple(int(r) for r in g) for g in self.split)
        object.__setattr__(self, "split", groups)
        flat = sorted(r for g in groups for r in g)
        if flat != list(range(period)):
            raise ValueError(f"split must partition the residues 0..{period - 1}, got {groups}")
        if F % period != 0:
            raise ValueError("block must be a multiple of split_period")
        return tuple(k for g in groups for k in range(F) if k % period in g)

    @property
    def block_out_format(self) -> FloatFormat:
        """Format a block's result is rounded to: fp32 keeps 23 + min(neab, 0) fraction bits."""
        out = self.out_format
        cut = min(self.extra_align_bits, 0)
        if out.man_bits == 23 and cut < 0:
            return FloatFormat(out.exp_bits, 23 + cut, bias=out.bias, subnormals=out.subnormals, specials=out.specials)
        return out

    def replace(self, **changes: Any) -> BlockFMA:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (format names or field dicts, rounding names)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BlockFMA:
        """Inverse of :meth:`to_dict` (unknown keys are errors)."""
        kw = _from_dict(cls, d)
        if kw.get("split") is not None:
            kw["split"] = tuple(tuple(int(r) for r in g) for g in kw["split"])
        if isinstance(kw.get("promotion"), Mapping):
            kw["promotion"] = Promotion(**_from_dict(Promotion, kw["promotion"]))
        return cls(**kw)


def _plain(v: Any) -> Any:
    if isinstance(v, FloatFormat):
        if v.name and format(v.name) == v:
            return v.name
        return {
            "exp_bits": v.exp_bits,
            "man_bits": v.man_bits,
            "bias": v.bias,
            "subnormals": v.subnormals,
            "specials": v.specials.value,
        }
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, Promotion):
        return _to_dict(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, MXFormat):
        return v.name
    return v


def _to_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.init}


def _from_dict(cls: type, d: Any) -> dict[str, Any]:
    """Keyword arguments of ``cls`` from a ``to_dict`` mapping (format field dicts become formats)."""
    from dataclasses import fields

    if not isinstance(d, Mapping):
        raise TypeError(f"{cls.__name__}.from_dict takes a mapping, got {type(d).__name__}")
    names = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {', '.join(map(repr, unknown))}; allowed: {sorted(names)}")
    kw = dict(d)
    for k, v in kw.items():
        if isinstance(v, Mapping) and "exp_bits" in v:
            kw[k] = FloatFormat(**v)
    return kw
