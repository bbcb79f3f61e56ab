"""Number formats as data: floating point, fixed point / integer and the E8M0 scale format.

Conventions (see ``docs/formats.md``): ``man_bits`` counts stored fraction bits (precision
``man_bits + 1``); the default bias is ``2**(exp_bits - 1) - 1``; ``emin = 1 - bias``. Codes are laid
out sign | exponent | fraction, as in torch and ml_dtypes.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Specials",
    "FloatFormat",
    "FixedFormat",
    "ScaleFormat",
    "Format",
    "format",
    "catalogue",
]


class Specials(str, enum.Enum):
    """How a float format uses its top exponent field.

    ``ieee``: infinities and NaNs (IEEE 754). ``fn``: finite except the all-ones code, which is NaN
    (OCP E4M3). ``fnuz``: all finite; the negative-zero code is the only NaN (AMD/Graphcore).
    ``none``: all codes are finite numbers, no NaN and no infinity (OCP FP6/FP4).
    """

    IEEE = "ieee"
    FN = "fn"
    FNUZ = "fnuz"
    NONE = "none"


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format.

    Parameters
    ----------
    exp_bits : int
        Exponent field width, 1 to 11.
    man_bits : int
        Stored fraction bits (no implicit bit), 0 to 52.
    bias : int, optional
        Exponent bias; default ``2**(exp_bits - 1) - 1``.
    subnormals : bool
        Whether values below ``2**emin`` exist; without them the grid near zero is
        ``{0, +-2**emin}``.
    specials : Specials or str
        ``"ieee"``, ``"fn"``, ``"fnuz"`` or ``"none"``.
    name : str, optional
        Catalogue name (not part of equality).
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    specials: Specials = Specials.IEEE
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for arg in ("exp_bits", "man_bits"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{arg} must be an int, got {type(v).__name__}")
        if not 1 <= self.exp_bits <= 11:
            raise ValueError(f"exp_bits must be in 1..11, got {self.exp_bits}")
        if not 0 <= self.man_bits <= 52:
            raise ValueError(f"man_bits must be in 0..52, got {self.man_bits}")
        try:
            specials = Specials(self.specials)
        except ValueError:
            raise ValueError(f"specials must be one of {[s.value for s in Specials]}, got {self.specials!r}") from None
        object.__setattr__(self, "specials", specials)
        object.__setattr__(self, "exp_bits", int(self.exp_bits))
        object.__setattr__(self, "man_bits", int(self.man_bits))
        if self.bias is None:
            object.__setattr__(self, "bias", 2 ** (self.exp_bits - 1) - 1)
        elif isinstance(self.bias, bool) or not isinstance(self.bias, (int, np.integer)):
            raise TypeError(f"bias must be an int or None, got {type(self.bias).__name__}")
        object.__setattr__(self, "bias", int(self.bias))
        object.__setattr__(self, "subnormals", bool(self.subnormals))
        if specials is Specials.IEEE and self.man_bits == 0:
            raise ValueError("an 'ieee' format needs man_bits >= 1 to encode NaN")
        if specials is Specials.FN and self.exp_bits == 1 and self.man_bits == 0:
            raise ValueError("an 'fn' format needs more than one bit besides the sign")
        if self.emin < -1022 or self.emax > 1023:
            raise ValueError(f"bias {self.bias} puts the exponent range [{self.emin}, {self.emax}] outside float64's")
        if self.max <= 0:
            raise ValueError("the format has no positive finite value")

    # --- facts -----------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Code width in bits (sign + exponent + fraction)."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self) -> int:
        """Significant bits of a normal value, ``man_bits + 1``."""
        return self.man_bits + 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        top = 2**self.exp_bits - 1 - self.bias
        return top - 1 if self.specials is Specials.IEEE else top

    @property
    def max(self) -> float:
        """Largest finite value."""
        m = self.man_bits
        if self.specials is Specials.FN:
            frac = 2.0 - 2.0 ** (1 - m)  # the all-ones fraction is NaN
        else:
            frac = 2.0 - 2.0**-m
        return math.ldexp(frac, self.emax)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, ``2**emin``."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value: ``2**(emin - man_bits)``, or ``min_normal`` without subnormals."""
        return math.ldexp(1.0, self.emin - self.man_bits) if self.subnormals else self.min_normal

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger value, ``2**-man_bits``."""
        return math.ldexp(1.0, -self.man_bits)

    @property
    def has_inf(self) -> bool:
        return self.specials is Specials.IEEE

    @property
    def has_nan(self) -> bool:
        return self.specials is not Specials.NONE

    @property
    def has_negative_zero(self) -> bool:
        return self.specials is not Specials.FNUZ

    @property
    def code_dtype(self) -> np.dtype:
        """Unsigned integer dtype that holds one code."""
        return _code_dtype(self.bits)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Values (float64) of integer codes; the readable reference decoder."""
        c = np.asarray(codes).astype(np.uint64)
        m, e = self.man_bits, self.exp_bits
        sign = (c >> np.uint64(e + m)) & np.uint64(1)
        ef = ((c >> np.uint64(m)) & np.uint64(2**e - 1)).astype(np.int64)
        ff = (c & np.uint64(2**m - 1)).astype(np.float64)
        sub = np.ldexp(ff, self.emin - m)
        if not self.subnormals:
            sub = np.zeros_like(sub)
        norm = np.ldexp(1.0 + ff / 2.0**m, (ef - self.bias).astype(np.int32))
        v = np.where(ef == 0, sub, norm)
        top = ef == 2**e - 1
        if self.specials is Specials.IEEE:
            v = np.where(top, np.where(ff == 0, np.inf, np.nan), v)
        elif self.specials is Specials.FN:
            v = np.where(top & (ff == 2**m - 1), np.nan, v)
        v = np.where(sign == 1, -v, v)
        if self.specials is Specials.FNUZ:
            v = np.where((sign == 1) & (ef == 0) & (ff == 0), np.nan, v)
        return v

    def values(self) -> np.ndarray:
        """All codes' values in code order (float64), for formats of at most 16 bits."""
        if self.bits > 16:
            raise ValueError(f"values() enumerates formats of at most 16 bits; {self} has {self.bits}")
        return self.decode_codes(np.arange(2**self.bits, dtype=np.uint64))

    def __str__(self) -> str:
        return self.name or (
            f"FloatFormat(exp_bits={self.exp_bits}, man_bits={self.man_bits}, bias={self.bias}, "
            f"subnormals={self.subnormals}, specials='{self.specials.value}')"
        )


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point (or integer) format: values ``k * 2**-frac_bits``.

    Parameters
    ----------
    bits : int
        Word length including the sign bit (QPyTorch convention), 1 to 64.
    frac_bits : int
        Fraction bits; may be negative or exceed ``bits``.
    signed : bool
        Two's complement ``k in [-2**(bits-1), 2**(bits-1) - 1]``, else ``[0, 2**bits - 1]``.
    symmetric : bool
        Signed formats only: drop the most negative code, ``k >= -2**(bits-1) + 1``.
    overflow : {"saturate", "wrap", "none"}
        Clamp to the range, wrap around (two's complement, for accumulator models) or leave
        unbounded (QPyTorch ``clamp=False``).
    name : str, optional
    """

    bits: int
    frac_bits: int = 0
    signed: bool = True
    symmetric: bool = False
    overflow: str = "saturate"
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for arg in ("bits", "frac_bits"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{arg} must be an int, got {type(v).__name__}")
        if not 1 <= self.bits <= 64:
            raise ValueError(f"bits must be in 1..64, got {self.bits}")
        if self.signed and self.bits < 2:
            raise ValueError("a signed fixed-point format needs bits >= 2")
        if self.overflow not in ("saturate", "wrap", "none"):
            raise ValueError(f"overflow must be 'saturate', 'wrap' or 'none', got {self.overflow!r}")
        if self.symmetric and not self.signed:
            raise ValueError("symmetric applies to signed formats only")

    @property
    def scale(self) -> float:
        """Value of one unit in the last place, ``2**-frac_bits``."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def kmin(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def kmax(self) -> int:
        return 2**self.bits - 1 if not self.signed else 2 ** (self.bits - 1) - 1

    @property
    def max(self) -> float:
        return math.ldexp(float(self.kmax), -self.frac_bits)

    @property
    def min(self) -> float:
        return math.ldexp(float(self.kmin), -self.frac_bits)

    @property
    def eps(self) -> float:
        return self.scale

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (one unit), for symmetry with FloatFormat."""
        return self.scale

    @property
    def code_dtype(self) -> np.dtype:
        return _code_dtype(self.bits)

    def values(self) -> np.ndarray:
        """All representable values in increasing order (float64), for at most 16 bits."""
        if self.bits > 16:
            raise ValueError(f"values() enumerates formats of at most 16 bits; {self} has {self.bits}")
        return np.ldexp(np.arange(self.kmin, self.kmax + 1, dtype=np.float64), -self.frac_bits)

    def __str__(self) -> str:
        return self.name or (
            f"FixedFormat(bits={self.bits}, frac_bits={self.frac_bits}, signed={self.signed}, "
            f"symmetric={self.symmetric}, overflow='{self.overflow}')"
        )


@dataclass(frozen=True)
class ScaleFormat:
    """Unsigned power-of-two scale format (OCP MX E8M0): codes ``0..2**exp_bits - 2`` are
    ``2**(code - bias)``, the all-ones code is NaN; no zero, no sign, no infinity."""

    exp_bits: int = 8
    bias: int = 127
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= int(self.exp_bits) <= 10:
            raise ValueError(f"exp_bits must be in 1..10, got {self.exp_bits}")

    @property
    def bits(self) -> int:
        return self.exp_bits

    @property
    def emin(self) -> int:
        return -self.bias

    @property
    def emax(self) -> int:
        return 2**self.exp_bits - 2 - self.bias

    @property
    def max(self) -> float:
        return math.ldexp(1.0, self.emax)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        return self.min_normal

    @property
    def eps(self) -> float:
        return 1.0

    @property
    def code_dtype(self) -> np.dtype:
        return _code_dtype(self.bits)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        c = np.asarray(codes).astype(np.int64)
        v = np.ldexp(1.0, (c - self.bias).astype(np.int32))
        return np.where(c == 2**self.exp_bits - 1, np.nan, v)

    def values(self) -> np.ndarray:
        return self.decode_codes(np.arange(2**self.exp_bits))

    def __str__(self) -> str:
        return self.name or f"ScaleFormat(exp_bits={self.exp_bits}, bias={self.bias})"


Format = FloatFormat | FixedFormat | ScaleFormat


def _code_dtype(bits: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if bits <= np.dtype(dt).itemsize * 8:
            return np.dtype(dt)
    raise ValueError(f"no integer type holds {bits}-bit codes")


# --- the catalogue ---------------------------------------------------------------------------
def _f(name: str, e: int, m: int, specials: str = "ieee", bias: int | None = None) -> FloatFormat:
    return FloatFormat(e, m, bias=bias, specials=specials, name=name)


_CATALOGUE: dict[str, Format] = {
    f.name: f  # type: ignore[misc]
    for f in [
        _f("fp64", 11, 52),
        _f("fp32", 8, 23),
        _f("tf32", 8, 10),
        _f("bf16", 8, 7),
        _f("fp16", 5, 10),
        _f("e5m2", 5, 2),
        _f("e4m3fn", 4, 3, "fn"),
        _f("e4m3fnuz", 4, 3, "fnuz", bias=8),
        _f("e5m2fnuz", 5, 2, "fnuz", bias=16),
        _f("e4m3b11fnuz", 4, 3, "fnuz", bias=11),
        _f("e4m3", 4, 3),
        _f("e3m4", 3, 4),
        _f("e2m3fn", 2, 3, "none"),
        _f("e3m2fn", 3, 2, "none"),
        _f("e2m1fn", 2, 1, "none"),
        _f("e6m9", 6, 9),
        ScaleFormat(8, 127, name="e8m0fnu"),
        FixedFormat(8, 0, name="int8"),
        FixedFormat(4, 0, name="int4"),
        FixedFormat(16, 0, name="int16"),
        FixedFormat(8, 0, signed=False, name="uint8"),
        FixedFormat(4, 0, signed=False, name="uint4"),
    ]
}

_ALIASES = {
    "float64": "fp64",
    "double": "fp64",
    "float32": "fp32",
    "single": "fp32",
    "float": "fp32",
    "tensorfloat32": "tf32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float8_e5m2": "e5m2",
    "float8_e4m3fn": "e4m3fn",
    "float8_e4m3fnuz": "e4m3fnuz",
    "float8_e5m2fnuz": "e5m2fnuz",
    "float8_e4m3b11fnuz": "e4m3b11fnuz",
    "float8_e4m3": "e4m3",
    "float8_e3m4": "e3m4",
    "float6_e2m3fn": "e2m3fn",
    "float6_e3m2fn": "e3m2fn",
    "float4_e2m1fn": "e2m1fn",
    "float4_e2m1fn_x2": "e2m1fn",
    "float8_e8m0fnu": "e8m0fnu",
    "ibm-fp8": "e5m2",
    "ibm_fp8": "e5m2",
    "ibm-fp16": "e6m9",
    "ibm_fp16": "e6m9",
    "mxint8": "int8",
}

_GENERIC = re.compile(r"^e(\d+)m(\d+)(fnuz|fn)?$")
_GENERIC_INT = re.compile(r"^(u?)int(\d+)$")


def catalogue() -> dict[str, Format]:
    """The named formats, in display order (a copy)."""
    return dict(_CATALOGUE)


def _from_name(name: str) -> Format:
    key = name.strip().lower()
    if key.startswith("torch."):
        key = key[len("torch.") :]
    if key in _CATALOGUE:
        return _CATALOGUE[key]
    alias = _ALIASES.get(key)
    if alias:
        return _CATALOGUE[alias]
    m = _GENERIC.match(key)
    if m:
        e, man, kind = int(m.group(1)), int(m.group(2)), m.group(3)
        if kind == "fnuz":
            return FloatFormat(e, man, bias=2 ** (e - 1), specials="fnuz", name=key)
        return FloatFormat(e, man, specials="fn" if kind == "fn" else "ieee", name=key)
    m = _GENERIC_INT.match(key)
    if m:
        return FixedFormat(int(m.group(2)), 0, signed=m.group(1) == "", name=key)
    known = ", ".join(list(_CATALOGUE) + ["eXmY[fn|fnuz]", "intN", "uintN"])
    raise ValueError(f"unknown format {name!r}; known: {known}")


def format(spec: object) -> Format:  # noqa: A001 - mirrors numpy.dtype / torch.dtype naming
    """Resolve a format description to a format object.

    Accepts a name (``"e4m3fn"``, ``"bf16"``, ``"e6m9"``, ``"int8"``, aliases such as
    ``"float8_e4m3fn"``), a format object, a NumPy/ml_dtypes dtype, a torch dtype or a QPyTorch
    number object (``qtorch.FloatingPoint`` / ``qtorch.FixedPoint``).
    """
    if isinstance(spec, (FloatFormat, FixedFormat, ScaleFormat)):
        return spec
    if isinstance(spec, str):
        return _from_name(spec)
    t = type(spec)
    mod = t.__module__ or ""
    if mod.startswith("torch") and t.__name__ == "dtype":
        return _from_name(str(spec))
    if mod.startswith("qtorch"):
        if t.__name__ == "FloatingPoint":
            return FloatFormat(int(spec.exp), int(spec.man))  # type: ignore[attr-defined]
        if t.__name__ == "FixedPoint":
            return FixedFormat(
                int(spec.wl),  # type: ignore[attr-defined]
                int(spec.fl),  # type: ignore[attr-defined]
                signed=True,
                symmetric=bool(spec.symmetric),  # type: ignore[attr-defined]
                overflow="saturate" if spec.clamp else "none",  # type: ignore[attr-defined]
            )
        raise TypeError(f"unsupported qtorch number type {t.__name__}")
    if isinstance(spec, np.dtype) or (isinstance(spec, type) and issubclass(spec, np.generic)):
        return _from_name(np.dtype(spec).name)
    raise TypeError(
        "format must be a name, a FloatFormat/FixedFormat/ScaleFormat, a NumPy, ml_dtypes or torch "
        f"dtype, or a qtorch number; got {t.__name__}"
    )
