"""Rounding modes (see ``docs/rounding.md`` and specs: every discarded bit counts)."""

from __future__ import annotations

import enum

__all__ = ["Rounding", "rounding_mode"]


class Rounding(str, enum.Enum):
    """How a value between two neighbours ``a < x < b`` of a format is rounded.

    ``nearest``: to the nearer, ties to the even significand (IEEE default). ``nearest_away``:
    ties away from zero. ``toward_zero``, ``up`` (toward +inf), ``down`` (toward -inf).
    ``odd``: to whichever of a, b has an odd last bit (sticky rounding for later re-rounding).
    ``stochastic``: b with probability ``(x - a) / (b - a)``, exactly, using every discarded bit;
    with ``sr_bits=r`` the probability is first rounded to r bits (P3109 style).
    ``stochastic_equal``: a or b with probability 1/2 each (CPFloat mode 6; biased).
    """

    NEAREST = "nearest"
    NEAREST_AWAY = "nearest_away"
    TOWARD_ZERO = "toward_zero"
    UP = "up"
    DOWN = "down"
    ODD = "odd"
    STOCHASTIC = "stochastic"
    STOCHASTIC_EQUAL = "stochastic_equal"

    @property
    def is_stochastic(self) -> bool:
        return self in (Rounding.STOCHASTIC, Rounding.STOCHASTIC_EQUAL)


_ALIASES = {
    "rne": "nearest",
    "nearest_even": "nearest",
    "rn": "nearest",
    "rna": "nearest_away",
    "rz": "toward_zero",
    "truncate": "toward_zero",
    "ru": "up",
    "rd": "down",
    "ro": "odd",
    "sr": "stochastic",
}


def rounding_mode(spec: object) -> Rounding:
    """Resolve a rounding name or :class:`Rounding` (aliases: rne, rna, rz, ru, rd, ro, sr)."""
    if isinstance(spec, Rounding):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"rounding must be a string or Rounding, got {type(spec).__name__}")
    key = spec.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return Rounding(key)
    except ValueError:
        names = ", ".join(r.value for r in Rounding)
        raise ValueError(f"unknown rounding {spec!r}; choose one of: {names}") from None
