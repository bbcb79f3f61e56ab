"""Kernel nonlinearities f and their Gaussian coefficients a0, a1, a2, nu, theta.

A kernel entry is f(t)/sqrt(p) with t = x_i.x_j/sqrt(p), which is close to N(0, 1) for unit-variance
data. Sparsity levels are calibrated on that Gaussian: thresholding at t0 = sqrt(2) erfinv(eps)
zeros a fraction eps of the entries.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import numpy as np

__all__ = ["Kind", "Nonlinearity", "Coefficients", "as_nonlinearity"]

_TAIL = 12.0  # |xi| beyond which N(0, 1) mass (< 2e-32) is ignored by quadrature


class Kind(str, Enum):
    """Family of the nonlinearity f."""

    LINEAR = "linear"  # f(t) = t
    THRESHOLD = "threshold"  # t 1{|t| > t0}: selective sparsification
    SIGN = "sign"  # sign(t), with sign(0) = +1 (one bit per entry)
    TERNARY = "ternary"  # sign(t) 1{|t| > t0}
    MBIT = "mbit"  # M-bit uniform mid-rise quantizer, clipped at +-t_max
    PUNCTURE = "puncture"  # t times a symmetric Bernoulli(1 - eps) mask (random, not a function of t)
    CUSTOM = "custom"  # any vectorised callable


@dataclass(frozen=True)
class Coefficients:
    """Hermite coefficients of f under xi ~ N(0, 1).

    a0 = E f(xi), a1 = E[xi f(xi)], a2 = E[(xi^2 - 1) f(xi)]/sqrt(2), nu = E[f(xi)^2]; theta = nu/a1^2 is the
    effective noise inflation of the kernel (1 for linear f).
    """

    a0: float
    a1: float
    a2: float
    nu: float

    @property
    def theta(self) -> float:
        return self.nu / self.a1**2 if self.a1 != 0 else math.inf


def _phi(t: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(np.isfinite(t), np.exp(-0.5 * np.square(t)) / math.sqrt(2 * math.pi), 0.0)


def _piecewise_coefficients(edges: np.ndarray, levels: np.ndarray, unit: float) -> Coefficients:
    """Closed forms for a piecewise-constant f: levels[k] * unit on [edges[k-1], edges[k])."""
    from scipy.special import ndtr

    t = np.concatenate([[-np.inf], edges, [np.inf]])
    lo, hi = t[:-1], t[1:]
    lv = levels.astype(np.float64) * unit
    mass = ndtr(hi) - ndtr(lo)
    finite = np.where(np.isfinite(t), t, 0.0)
    tphi = finite * _phi(finite) * np.isfinite(t)
    a0 = float(np.sum(lv * mass))
    a1 = float(np.sum(lv * (_phi(lo) - _phi(hi))))
    a2 = float(np.sum(lv * (tphi[:-1] - tphi[1:]))) / math.sqrt(2)
    nu = float(np.sum(lv**2 * mass))
    return Coefficients(a0, a1, a2, nu)


def _quadrature_coefficients(f: Callable[[np.ndarray], np.ndarray], breakpoints: tuple[float, ...]) -> Coefficients:
    """Adaptive quadrature of the four Gaussian moments of f on [-12, 12], split at the breakpoints."""
    from scipy.integrate import quad

    def value(x: float) -> float:
        return float(np.asarray(f(np.array([x], dtype=np.float64)), dtype=np.float64).reshape(-1)[0])

    pts = sorted(b for b in breakpoints if -_TAIL < b < _TAIL)
    grid = [-_TAIL, *pts, _TAIL]

    def moment(g: Callable[[float], float]) -> float:
        def integrand(x: float) -> float:
            return g(x) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

        return sum(
            quad(integrand, a, b, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
            for a, b in zip(grid[:-1], grid[1:], strict=True)
        )

    return Coefficients(
        a0=moment(value),
        a1=moment(lambda x: x * value(x)),
        a2=moment(lambda x: (x * x - 1.0) * value(x)) / math.sqrt(2),
        nu=moment(lambda x: value(x) ** 2),
    )


@lru_cache(maxsize=32)
def _best_t_max(bits: int) -> float:
    """Clipping level minimising theta for the M-bit mid-rise quantizer."""
    from scipy.optimize import minimize_scalar

    def theta(t_max: float) -> float:
        return Nonlinearity(Kind.MBIT, bits=bits, t_max=t_max).coefficients().theta

    res = minimize_scalar(theta, bounds=(0.25, 8.0), method="bounded", options={"xatol": 1e-10})
    return float(res.x)


@dataclass(frozen=True)
class Nonlinearity:
    """A kernel nonlinearity f with its parameters.

    Parameters
    ----------
    kind : Kind
        Family of f.
    sparsity : float
        Fraction eps in [0, 1) of zero kernel entries under the Gaussian model: threshold and ternary
        zero |t| <= sqrt(2) erfinv(eps); puncture keeps each entry with probability 1 - eps. Must be 0
        for the other kinds.
    bits : int, optional
        M in 1..8 for ``mbit``.
    t_max : float, optional
        Clipping level of ``mbit`` (levels (k + 1/2) delta - t_max, delta = 2 t_max / 2^M); default: the
        level that minimises theta.
    func : callable, optional
        Vectorised f for ``custom``.
    center : bool
        Use f - a0 (removes the non-informative rank-one spike a0 1 1^T; for ``custom``).
    breakpoints : tuple of float
        Discontinuities of a custom f, to split the quadrature.
    """

    kind: Kind
    sparsity: float = 0.0
    bits: int | None = None
    t_max: float | None = None
    func: Callable[[np.ndarray], np.ndarray] | None = None
    center: bool = False
    breakpoints: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _kind(self.kind))
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, (int, float, np.integer, np.floating)):
            raise TypeError(f"sparsity must be a number, got {type(s).__name__}")
        if not (0.0 <= float(s) < 1.0):
            raise ValueError(f"sparsity must lie in [0, 1), got {s}")
        object.__setattr__(self, "sparsity", float(s))
        k = self.kind
        if s and k not in (Kind.THRESHOLD, Kind.TERNARY, Kind.PUNCTURE):
            raise ValueError(f"sparsity applies to threshold, ternary and puncture, not to {k.value!r}")
        if k is Kind.MBIT:
            if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
                raise TypeError("bits must be an integer in 1..8 for the mbit nonlinearity")
            if not 1 <= self.bits <= 8:
                raise ValueError(f"bits must lie in 1..8, got {self.bits}")
            object.__setattr__(self, "bits", int(self.bits))
            t_max = _best_t_max(int(self.bits)) if self.t_max is None else self.t_max
            if not (isinstance(t_max, (int, float, np.floating)) and math.isfinite(t_max) and t_max > 0):
                raise ValueError(f"t_max must be a positive finite number, got {self.t_max!r}")
            object.__setattr__(self, "t_max", float(t_max))
        elif self.bits is not None or self.t_max is not None:
            raise ValueError(f"bits and t_max apply to the mbit nonlinearity, not to {k.value!r}")
        if k is Kind.CUSTOM:
            if not callable(self.func):
                raise TypeError("func must be a callable for the custom nonlinearity")
        elif self.func is not None:
            raise ValueError(f"func applies to the custom nonlinearity, not to {k.value!r}")
        object.__setattr__(self, "breakpoints", tuple(float(b) for b in self.breakpoints))

    # -- parameters ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short label, e.g. 'ternary-0.9' or 'mbit-2'."""
        if self.kind is Kind.MBIT:
            return f"mbit-{self.bits}"
        if self.sparsity:
            return f"{self.kind.value}-{self.sparsity:g}"
        if self.kind is Kind.CUSTOM:
            return getattr(self.func, "__name__", "custom")
        return self.kind.value

    @property
    def threshold(self) -> float:
        """t0 = sqrt(2) erfinv(sparsity): entries with |t| <= t0 are zero (threshold, ternary)."""
        from scipy.special import erfinv

        return math.sqrt(2.0) * float(erfinv(self.sparsity))

    @property
    def keep(self) -> float:
        """Probability 1 - sparsity of keeping an entry (puncture)."""
        return 1.0 - self.sparsity

    @property
    def is_piecewise_constant(self) -> bool:
        """True for sign, ternary and mbit: entries are levels[code] * unit."""
        return self.kind in (Kind.SIGN, Kind.TERNARY, Kind.MBIT)

    def code_table(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(edges, levels, unit) of a piecewise-constant f.

        code(t) = #{k : t >= edges[k]} and f(t) = levels[code] * unit, with integer levels.
        """
        if self.kind is Kind.SIGN:
            return np.array([0.0]), np.array([-1, 1], np.int64), 1.0
        if self.kind is Kind.TERNARY:
            t0 = self.threshold
            return np.array([-t0, np.nextafter(t0, np.inf)]), np.array([-1, 0, 1], np.int64), 1.0
        if self.kind is Kind.MBIT:
            m = 1 << int(self.bits)  # type: ignore[arg-type]
            t_max = float(self.t_max)  # type: ignore[arg-type]
            delta = 2.0 * t_max / m
            edges = -t_max + delta * np.arange(1, m, dtype=np.float64)
            return edges, 2 * np.arange(m, dtype=np.int64) + 1 - m, delta / 2.0
        raise ValueError(f"{self.kind.value!r} is not piecewise constant")

    # -- f -------------------------------------------------------------------------------------
    def __call__(self, t: np.ndarray) -> np.ndarray:
        """f(t), elementwise (float64). Not defined for puncture, whose mask is random."""
        t = np.asarray(t, dtype=np.float64)
        k = self.kind
        if k is Kind.LINEAR:
            return t.copy()
        if k is Kind.THRESHOLD:
            return np.where(np.abs(t) > self.threshold, t, 0.0)
        if self.is_piecewise_constant:
            edges, levels, unit = self.code_table()
            return levels[np.searchsorted(edges, t, side="right")] * unit
        if k is Kind.CUSTOM:
            out = np.asarray(self.func(t), dtype=np.float64)  # type: ignore[misc]
            if out.shape != t.shape:
                raise ValueError(f"func must return an array of the input's shape {t.shape}, got {out.shape}")
            return out - _coefficients_cached(self).a0 if self.center else out
        raise ValueError("puncture is a random mask, not a function of t; use lowprec.spectral.kernel")

    # -- coefficients --------------------------------------------------------------------------
    def coefficients(self) -> Coefficients:
        """a0, a1, a2, nu (closed forms, or adaptive quadrature for custom f)."""
        c = _coefficients_cached(self)
        if self.center and c.a0 != 0.0:
            return Coefficients(0.0, c.a1, c.a2, c.nu - c.a0**2)
        return c

    def warn_if_uncentred(self, tol: float = 1e-8) -> None:
        """Warn when a0 != 0 (a non-informative 1 1^T spike) or a2 != 0 (spikes on non-Gaussian data)."""
        c = self.coefficients()
        problems = {
            "a0": (c.a0, "the kernel gets a non-informative rank-one spike a0 1 1^T; pass center=True to use f - a0"),
            "a2": (c.a2, "on non-Gaussian data the kernel can show non-informative isolated eigenvalues"),
        }
        for name, (value, consequence) in problems.items():
            if abs(value) > tol:
                message = f"nonlinearity {self.name!r} has {name} = {value:.3g} != 0: {consequence}"
                warnings.warn(message, UserWarning, stacklevel=3)


@lru_cache(maxsize=256)
def _coefficients_cached(nl: Nonlinearity) -> Coefficients:
    k = nl.kind
    if k is Kind.LINEAR:
        return Coefficients(0.0, 1.0, 0.0, 1.0)
    if k is Kind.PUNCTURE:
        return Coefficients(0.0, nl.keep, 0.0, nl.keep)
    if k is Kind.THRESHOLD:
        s = math.sqrt(0.5) * nl.threshold
        a1 = 2.0 / math.sqrt(math.pi) * s * math.exp(-s * s) + math.erfc(s)
        return Coefficients(0.0, a1, 0.0, a1)
    if nl.is_piecewise_constant:
        return _piecewise_coefficients(*nl.code_table())
    return _quadrature_coefficients(nl.func, nl.breakpoints)  # type: ignore[arg-type]


def _kind(kind: object) -> Kind:
    if isinstance(kind, Kind):
        return kind
    if not isinstance(kind, str):
        raise TypeError(f"nonlinearity must be a name, a Nonlinearity or a callable, got {type(kind).__name__}")
    try:
        return Kind(kind.lower())
    except ValueError:
        names = ", ".join(k.value for k in Kind if k is not Kind.CUSTOM)
        raise ValueError(f"unknown nonlinearity {kind!r}; expected one of {names}, or a callable") from None


def as_nonlinearity(
    nonlinearity: str | Kind | Nonlinearity | Callable[[np.ndarray], np.ndarray] = "linear",
    *,
    sparsity: float = 0.0,
    bits: int | None = None,
    t_max: float | None = None,
    center: bool = False,
    breakpoints: tuple[float, ...] = (),
) -> Nonlinearity:
    """Build a Nonlinearity from a name ('linear', 'threshold', 'sign', 'ternary', 'mbit', 'puncture'),
    a callable (custom f) or a Nonlinearity (returned unchanged when no other argument is given)."""
    if isinstance(nonlinearity, Nonlinearity):
        if sparsity or bits is not None or t_max is not None or center or breakpoints:
            raise ValueError("pass either a Nonlinearity or its parameters, not both")
        return nonlinearity
    if callable(nonlinearity) and not isinstance(nonlinearity, (str, Kind)):
        return Nonlinearity(Kind.CUSTOM, sparsity, bits, t_max, nonlinearity, center, tuple(breakpoints))
    return Nonlinearity(_kind(nonlinearity), sparsity, bits, t_max, None, center, tuple(breakpoints))
