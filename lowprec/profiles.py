"""Accelerator profiles: declarative TOML descriptions of how a chip multiplies and accumulates.

Profiles live in the ``emulators/`` folder of the source tree (installed as ``lowprec/emulators``),
one file per accelerator and mode, schema-versioned and strict: an unknown key is an error. A
user can copy one (``lp.profile_path(name)``), edit it and load it by path. The schema is in
``emulators/README.md``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .accum import AccumModel, BlockFMA, Promotion, as_float_format

__all__ = ["Profile", "load_profile", "available_profiles", "profile_path", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
_TOP = {
    "schema",
    "name",
    "kind",
    "summary",
    "description",
    "sources",
    "validation",
    "operands",
    "accumulator",
    "block_fma",
    "outputs",
    "promotion",
}
_OPERANDS = {"a_format", "b_format", "choices", "rounding"}
_ACCUMULATOR = {
    "format",
    "rounding",
    "chunk",
    "order",
    "product_format",
    "out_format",
    "out_rounding",
    "saturate",
    "sr_bits",
}
_BLOCK = {
    "block",
    "extra_align_bits",
    "in_subnormals",
    "out_subnormals",
    "sub_block",
    "split",
    "split_period",
    "late_c",
    "rounding",
    "min_exp_limit",
}
_OUTPUT = {"format", "rounding", "min_exp_limit", "validation"} | _BLOCK
_PROMOTION = {"every", "fma", "scale_block", "power_of_two_scales"}


class ProfileError(ValueError):
    """A profile file that does not follow the schema."""


@dataclass(frozen=True)
class Profile:
    """A loaded accelerator profile.

    Attributes
    ----------
    name, kind, summary, description
        ``kind`` is ``"block-fma"`` (tensor-core model) or ``"per-add"`` (every addition rounded).
    sources : tuple of str
        Where the parameters come from.
    validation : str or None
        What the parameters have been checked against.
    outputs : tuple of str
        Output modes (``"fp32"``, ``"fp16"``, ...), the default first.
    choices : tuple of FloatFormat
        Operand formats a call may pick with ``a_format``/``b_format`` (FP8 profiles).
    path : str
        The file it was loaded from.
    """

    name: str
    kind: str
    summary: str
    description: str
    sources: tuple[str, ...]
    validation: str | None
    models: tuple[tuple[str, AccumModel | BlockFMA], ...] = field(repr=False)
    choices: tuple[Any, ...] = field(repr=False, default=())
    path: str | None = field(default=None, compare=False)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.models)

    def model(self, out_format: Any = None, a_format: Any = None, b_format: Any = None) -> AccumModel | BlockFMA:
        """The model of one output mode, with operand formats chosen among ``choices``."""
        modes = dict(self.models)
        if out_format is None:
            m = self.models[0][1]
        else:
            key = out_format if isinstance(out_format, str) and out_format in modes else None
            if key is None:
                want = as_float_format(out_format, "out_format")
                for k, mm in self.models:
                    if mm.out_format == want:
                        key = k
                        break
            if key is None:
                if isinstance(self.models[0][1], AccumModel):  # per-add: any output format
                    m = self.models[0][1].replace(out_format=out_format)
                    return self.model_with(m, a_format, b_format)
                raise ValueError(
                    f"profile {self.name!r} has no {out_format} output mode; available: {', '.join(self.outputs)}"
                )
            m = modes[key]
        return self.model_with(m, a_format, b_format)

    def model_with(self, m: Any, a_format: Any = None, b_format: Any = None) -> Any:
        """m with the operand formats a call picked (checked against ``choices``)."""
        changes = {}
        for arg, v in (("a_format", a_format), ("b_format", b_format)):
            if v is None:
                continue
            f = as_float_format(v, arg)
            if self.choices and f not in self.choices:
                names = ", ".join(str(c) for c in self.choices)
                raise ValueError(f"profile {self.name!r} takes {arg} in {{{names}}}, got {f}")
            if not self.choices and f != getattr(m, arg):
                raise ValueError(f"profile {self.name!r} fixes {arg} = {getattr(m, arg)}, got {f}")
            changes[arg] = f
        return m.replace(**changes) if changes else m

    def __str__(self) -> str:
        return f"{self.name}: {self.summary}"


def _dir() -> Path:
    """Folder of the shipped profiles (installed package data, or the source tree's emulators/)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "emulators", here.parent / "emulators"):
        if cand.is_dir():
            return cand
    return here / "emulators"


def _load_file(path: str) -> Profile:
    return _load_cached(path, os.stat(path).st_mtime_ns)


@lru_cache(maxsize=256)
def _load_cached(path: str, mtime: int) -> Profile:
    if sys.version_info >= (3, 11):  # imported here: `import lowprec` loads numpy only
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{p.name}: malformed TOML: {exc}") from None
    try:
        return _parse(data, str(p))
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{p.name}: {exc}") from None


def _check_keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise TypeError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}")
    return table


def _parse(data: dict[str, Any], path: str) -> Profile:
    _check_keys(data, _TOP, "the top level")
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise ValueError(f"schema must be {SCHEMA_VERSION}, got {schema!r}")
    for req in ("name", "kind", "summary", "description", "sources"):
        if req not in data:
            raise ValueError(f"missing required key {req!r}")
    kind = data["kind"]
    ops = _check_keys(data.get("operands", {}), _OPERANDS, "[operands]")
    choices = tuple(as_float_format(c, "operands.choices") for c in ops.get("choices", ()))
    if kind == "per-add":
        if "block_fma" in data or "outputs" in data or "promotion" in data:
            raise ValueError("a per-add profile takes [accumulator], not [block_fma]/[outputs]/[promotion]")
        acc = dict(_check_keys(data.get("accumulator", {}), _ACCUMULATOR, "[accumulator]"))
        if "format" not in acc:
            raise ValueError("[accumulator] needs format")
        acc["acc"] = acc.pop("format")
        model = AccumModel(
            a_format=ops.get("a_format"),
            b_format=ops.get("b_format"),
            operand_rounding=ops.get("rounding", "nearest"),
            **acc,
        )
        models: tuple[tuple[str, Any], ...] = (("default", model),)
    elif kind == "block-fma":
        if "accumulator" in data:
            raise ValueError("a block-fma profile takes [block_fma] and [outputs], not [accumulator]")
        base = dict(_check_keys(data.get("block_fma", {}), _BLOCK, "[block_fma]"))
        outs = data.get("outputs")
        if not isinstance(outs, dict) or not outs:
            raise ValueError("[outputs] must define at least one output mode, e.g. [outputs.fp32]")
        promo = data.get("promotion")
        promotion = None
        if promo is not None:
            pk = dict(_check_keys(promo, _PROMOTION, "[promotion]"))
            if pk.get("scale_block") == 0:  # TOML has no null: 0 turns fine-grained scaling off
                pk["scale_block"] = None
            promotion = Promotion(**pk)
        ms = []
        for oname, otab in outs.items():
            o = dict(_check_keys(otab, _OUTPUT, f"[outputs.{oname}]"))
            o.pop("validation", None)
            if "rounding" not in o and "rounding" not in base:
                raise ValueError(f"[outputs.{oname}] needs rounding ('toward_zero' or 'nearest')")
            fmt = o.pop("format", oname)
            kw = {**base, **o}
            if "split" in kw:
                kw["split"] = tuple(tuple(g) for g in kw["split"])
            ms.append(
                (
                    oname,
                    BlockFMA(
                        a_format=ops.get("a_format"),
                        b_format=ops.get("b_format"),
                        operand_rounding=ops.get("rounding", "nearest"),
                        out_format=fmt,
                        promotion=promotion,
                        **kw,
                    ),
                )
            )
        models = tuple(ms)
    else:
        raise ValueError(f"kind must be 'block-fma' or 'per-add', got {kind!r}")
    sources = data["sources"]
    if isinstance(sources, str):
        sources = [sources]
    return Profile(
        name=str(data["name"]),
        kind=kind,
        summary=str(data["summary"]),
        description=str(data["description"]).strip(),
        sources=tuple(str(s) for s in sources),
        validation=data.get("validation"),
        models=models,
        choices=choices,
        path=path,
    )


def available_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    return sorted(p.stem for p in _dir().glob("*.toml"))


def profile_path(name: str) -> Path:
    """Path of a shipped profile file (to copy and edit)."""
    if not isinstance(name, str):
        raise TypeError(f"profile name must be a str, got {type(name).__name__}")
    p = _dir() / f"{name}.toml"
    if not p.is_file():
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(available_profiles())}")
    return p


def load_profile(spec: Any) -> Profile:
    """Load a profile by shipped name (``"nvidia-h100-fp8"``), by path (``"my.toml"``), or pass a
    :class:`Profile` through."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.endswith(".toml")):
        p = Path(spec)
        if not p.is_file():
            raise ValueError(f"profile file {str(p)!r} does not exist")
        return _load_file(str(p.resolve()))
    if not isinstance(spec, str):
        raise TypeError(f"profile must be a name, a path or a Profile, got {type(spec).__name__}")
    return _load_file(str(profile_path(spec).resolve()))
