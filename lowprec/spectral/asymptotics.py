"""Large-dimensional theory of kernel spectral clustering for a two-class Gaussian mixture.

Model (Liao, Couillet & Mahoney, "Sparse Quantized Spectral Clustering", ICLR 2021): data
``x_i = v_i mu + z_i`` in ``R^p`` with balanced labels ``v_i = +-1``, ``z_i ~ N(0, I_p)``, ``n`` samples,
``c = p / n`` and signal strength ``rho = ||mu||^2``. The kernel is ``K_ij = f(x_i^T x_j / sqrt(p)) / sqrt(p)``
for ``i != j`` and ``K_ii = 0``. An odd nonlinearity ``f`` enters the limits only through
``a1 = E[xi f(xi)]`` and ``nu = E[f(xi)^2]`` (``xi ~ N(0, 1)``), and the informative part only through the
noise inflation ``theta = nu / a1^2 >= 1`` (``theta = 1`` for linear ``f``).

Conventions used throughout:

* ``F(x) = x^4 + 2 x^3 + (1 - c theta) x^2 - 2 c x - c`` and the phase transition ``Gamma(c, theta)`` is its
  largest real root (its only positive root); an informative isolated eigenvalue exists iff ``rho > Gamma``.
* The *normalised* Stieltjes transform (``a1 = 1``, ``nu = theta``) has the explicit inverse
  ``z(m) = -1/m - m/(c + m) - (theta - 1) m / c``; the spectrum of ``K`` is that of the normalised
  model scaled by ``a1``.
* Stieltjes transforms follow ``m(z) = integral of 1 / (t - z) dmu(t)``, so ``Im m > 0`` for ``Im z > 0`` and
  ``m(z) ~ -1/z`` at infinity.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc

__all__ = [
    "Prediction",
    "accuracy",
    "alignment",
    "bulk_edge",
    "isolated_eigenvalue",
    "misclassification",
    "phase_transition",
    "predict",
    "quartic",
    "spectral_density",
    "stieltjes",
    "theory",
]

_THETA_TOL = 1e-9  # theta >= 1 holds by Cauchy-Schwarz; allow this much rounding below 1
_STIELTJES_TOL = 1e-12
_STIELTJES_MAXITER = 2000  # damped fixed-point sweeps before switching to Newton polishing
_NEWTON_MAXITER = 100


# ----------------------------------------------------------------------------------------------------------------
# input validation


def _real(name: str, value: object, *, positive: bool = False, nonneg: bool = False) -> float:
    """Return ``value`` as a finite float, raising TypeError/ValueError that name the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if positive and not x > 0:
        raise ValueError(f"{name} must be > 0, got {x}")
    if nonneg and not x >= 0:
        raise ValueError(f"{name} must be >= 0, got {x}")
    return x


def _numeric_array(name: str, value: object, kinds: str, what: str) -> np.ndarray:
    """``value`` as an array whose dtype kind is in ``kinds``, else TypeError naming the argument."""
    arr = None if isinstance(value, (str, bytes)) else np.asarray(value)
    if arr is None or arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return arr


def _c(c: object) -> float:
    return _real("c", c, positive=True)


def _rho(rho: object) -> float:
    return _real("rho", rho, nonneg=True)


def _theta(theta: object) -> float:
    t = _real("theta", theta)
    if t < 1.0 - _THETA_TOL:
        raise ValueError(f"theta must be >= 1 (theta = nu / a1^2 >= 1 by Cauchy-Schwarz), got {t}")
    return max(t, 1.0)


def _a1_positive(a1: object) -> float:
    a = _real("a1", a1)
    if not a > 0:
        raise ValueError(
            f"a1 must be > 0, got {a}: with a1 = 0 the kernel carries no informative spike "
            "(and a1 < 0 flips the spectrum; use -f instead)"
        )
    return a


def _nu(nu: object, a1: float) -> float:
    v = _real("nu", nu, nonneg=True)
    if v < a1 * a1 * (1.0 - _THETA_TOL):
        raise ValueError(f"nu must be >= a1^2 = {a1 * a1} (nu = E f^2 >= (E xi f)^2), got {v}")
    return max(v, a1 * a1)


# ----------------------------------------------------------------------------------------------------------------
# phase transition, alignment, error rate


def quartic(c: float, theta: float) -> np.ndarray:
    """Coefficients of ``F(x) = x^4 + 2x^3 + (1 - c theta) x^2 - 2c x - c``, highest degree first.

    Parameters
    ----------
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float
        Noise inflation ``nu / a1^2 >= 1``.

    Returns
    -------
    numpy.ndarray
        Shape ``(5,)`` float64 array usable with :func:`numpy.polyval` and :func:`numpy.roots`.
    """
    c, theta = _c(c), _theta(theta)
    return np.array([1.0, 2.0, 1.0 - c * theta, -2.0 * c, -c])


def _phase_transition(c: float, theta: float) -> float:
    coef = quartic(c, theta)
    r = np.roots(coef)
    real = r[np.abs(r.imag) <= 1e-7 * (1.0 + np.abs(r))].real
    # F(0) = -c < 0 and, by Descartes' rule of signs, F has exactly one positive root: Gamma.
    guess = float(real.max()) if real.size and real.max() > 0 else 1.0

    def f(x: float) -> float:
        return float(np.polyval(coef, x))

    lo, hi = 0.5 * guess, 2.0 * guess
    if not (f(lo) < 0 < f(hi)):
        lo, hi = 0.0, 1.0 + float(np.abs(coef[1:]).max())  # Cauchy bound on the roots
    return float(brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200))


def phase_transition(c: float, theta: float = 1.0) -> float:
    """Phase transition ``Gamma(c, theta)``: the largest real root of :func:`quartic`.

    An informative isolated eigenvalue exists, and spectral clustering beats chance, iff ``rho > Gamma``.
    ``theta = 1`` gives the classical BBP threshold ``sqrt(c)``.

    Parameters
    ----------
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float, default 1.0
        Noise inflation ``nu / a1^2 >= 1``.

    Returns
    -------
    float
        ``Gamma(c, theta) > 0``, accurate to double precision (numpy.roots estimate polished by brentq).
    """
    return _phase_transition(_c(c), _theta(theta))


def alignment(rho: float, c: float, theta: float = 1.0) -> float:
    """Limiting squared alignment ``|v_hat^T v|^2 / n`` of the top eigenvector with the labels.

    ``alpha = F(rho) / (rho (1 + rho)^3)`` if ``rho > Gamma(c, theta)``, else ``0``; with ``theta = 1``
    this is ``(rho^2 - c) / (rho (1 + rho))``.

    Parameters
    ----------
    rho : float
        Signal strength ``||mu||^2 >= 0``.
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float, default 1.0
        Noise inflation ``nu / a1^2 >= 1``.

    Returns
    -------
    float
        ``alpha`` in ``[0, 1)`` (``v`` is the +-1 label vector, ``||v_hat|| = 1``).
    """
    rho, c, theta = _rho(rho), _c(c), _theta(theta)
    if rho <= _phase_transition(c, theta):
        return 0.0
    a = float(np.polyval(quartic(c, theta), rho)) / (rho * (1.0 + rho) ** 3)
    return min(max(a, 0.0), 1.0)


def misclassification(rho: float, c: float, theta: float = 1.0) -> float:
    """Limiting misclassification rate ``Q(sqrt(alpha / (1 - alpha))) = erfc(sqrt(alpha / (2(1 - alpha)))) / 2``.

    Parameters
    ----------
    rho : float
        Signal strength ``||mu||^2 >= 0``.
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float, default 1.0
        Noise inflation ``nu / a1^2 >= 1``.

    Returns
    -------
    float
        Error rate in ``(0, 0.5]``; exactly ``0.5`` (chance) when ``rho <= Gamma(c, theta)``.
    """
    a = alignment(rho, c, theta)
    if a <= 0.0:
        return 0.5
    return float(0.5 * erfc(math.sqrt(a / (2.0 * (1.0 - a)))))


def accuracy(rho: float, c: float, theta: float = 1.0) -> float:
    """Limiting clustering accuracy ``1 - misclassification(rho, c, theta)``, in ``[0.5, 1)``."""
    return 1.0 - misclassification(rho, c, theta)


# ----------------------------------------------------------------------------------------------------------------
# limiting spectrum


def _z_of_m(m: float, c: float, theta: float) -> float:
    """Inverse ``z(m)`` of the normalised (a1 = 1, nu = theta) Stieltjes transform."""
    return -1.0 / m - m / (c + m) - (theta - 1.0) * m / c


def _dz_dm(m: float, c: float, theta: float) -> float:
    return 1.0 / (m * m) - c / (c + m) ** 2 - (theta - 1.0) / c


def _m_edge(c: float, theta: float) -> float:
    """Root ``m*`` of ``dz/dm`` in ``(-c, 0)`` closest to 0 (``dz/dm`` goes from +inf at 0- to -inf at -c+)."""
    grid = -c * np.geomspace(1e-12, 1.0 - 1e-12, 400)
    d = 1.0 / grid**2 - c / (c + grid) ** 2 - (theta - 1.0) / c
    i = int(np.argmax(d < 0))  # first sign change scanning from m = 0- toward m = -c
    if i == 0:
        raise RuntimeError(f"no sign change of dz/dm in (-c, 0) for c={c}, theta={theta}")
    return float(brentq(_dz_dm, grid[i], grid[i - 1], args=(c, theta), xtol=1e-300, rtol=4 * np.finfo(float).eps))


def bulk_edge(c: float, theta: float = 1.0, a1: float = 1.0) -> float:
    """Right edge of the limiting spectrum (the bulk) of ``K``.

    Computed as ``a1 * z(m*)`` with ``z(m) = -1/m - m/(c + m) - (theta - 1) m / c`` the inverse of the
    normalised Stieltjes transform and ``m*`` the zero of ``dz/dm`` in ``(-c, 0)`` closest to 0.
    For ``theta = 1`` (``K = X^T X / p - I``) this is the Marchenko-Pastur edge ``(1 + 1/sqrt(c))^2 - 1``.

    Parameters
    ----------
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float, default 1.0
        Noise inflation ``nu / a1^2 >= 1``.
    a1 : float, default 1.0
        Linear Hermite coefficient ``E[xi f(xi)] > 0`` (scales the whole spectrum).

    Returns
    -------
    float
        The right bulk edge of the spectrum of ``K``.
    """
    c, theta, a1 = _c(c), _theta(theta), _a1_positive(a1)
    return a1 * _z_of_m(_m_edge(c, theta), c, theta)


def _stieltjes_residual(m: np.ndarray, z: np.ndarray, c: float, a1: float, nu: float) -> np.ndarray:
    return -1.0 / (z + a1 * a1 * m / (c + a1 * m) + (nu - a1 * a1) * m / c)


def stieltjes(z: complex | np.ndarray, c: float, a1: float = 1.0, nu: float = 1.0) -> complex | np.ndarray:
    """Stieltjes transform ``m(z)`` of the limiting spectrum of ``K`` for ``Im z > 0``.

    Solves ``m = -1 / (z + a1^2 m / (c + a1 m) + (nu - a1^2) m / c)`` (a Marchenko-Pastur part plus a
    semicircle of variance ``(nu - a1^2) / c``) by damped fixed-point iteration started at ``m = i``
    (damping 0.5; the iterates stay in the upper half plane), vectorised over ``z``. Points not converged to
    ``|dm| < 1e-12`` after a fixed number of sweeps (near the bulk edges, where the map is barely
    contracting) are finished by Newton's method on the equivalent cubic; the root in the upper half plane is
    unique. ``a1 = 0`` gives the pure semicircle.

    Parameters
    ----------
    z : complex or array_like of complex
        Evaluation points, all with ``Im z > 0``.
    c : float
        Dimension ratio ``p / n > 0``.
    a1 : float, default 1.0
        Linear Hermite coefficient ``E[xi f(xi)] >= 0``.
    nu : float, default 1.0
        Second moment ``E[f(xi)^2] >= a1^2``.

    Returns
    -------
    complex or numpy.ndarray
        ``m(z)`` with ``Im m > 0``; a Python complex for scalar ``z``, else a complex128 array of ``z``'s shape.
    """
    c = _c(c)
    a1 = _real("a1", a1, nonneg=True)
    nu = _nu(nu, a1)
    zz = _numeric_array("z", z, "iufc", "a complex number or array of complex numbers").astype(np.complex128)
    scalar = zz.ndim == 0
    if not np.all(np.isfinite(zz)):
        raise ValueError("z must be finite")
    if not np.all(zz.imag > 0):
        raise ValueError("z must have a positive imaginary part (Im z > 0)")
    zf = zz.ravel()
    m = np.full(zf.shape, 1j, dtype=np.complex128)
    active = np.arange(zf.size)
    for _ in range(_STIELTJES_MAXITER):
        if active.size == 0:
            break
        old = m[active]
        new = 0.5 * old + 0.5 * _stieltjes_residual(old, zf[active], c, a1, nu)
        m[active] = new
        active = active[np.abs(new - old) >= _STIELTJES_TOL * np.maximum(1.0, np.abs(new))]
    if active.size:
        m[active] = _newton_polish(m[active], zf[active], c, a1, nu)
    return complex(m[0]) if scalar else m.reshape(zz.shape)


def _newton_polish(m: np.ndarray, z: np.ndarray, c: float, a1: float, nu: float) -> np.ndarray:
    """Finish the fixed point by Newton on ``G(m) = m (z + s(m)) + 1``, falling back to damped sweeps."""
    b = nu - a1 * a1
    for _ in range(_NEWTON_MAXITER):
        s = a1 * a1 * m / (c + a1 * m) + b * m / c
        ds = a1 * a1 * c / (c + a1 * m) ** 2 + b / c
        g = m * (z + s) + 1.0
        step = g / (z + s + m * ds)
        cand = m - step
        ok = np.isfinite(cand) & (cand.imag > 0)
        m = np.where(ok, cand, 0.5 * m + 0.5 * _stieltjes_residual(m, z, c, a1, nu))
        if np.all(ok & (np.abs(step) < _STIELTJES_TOL * np.maximum(1.0, np.abs(m)))):
            break
    return m


def spectral_density(
    x: float | np.ndarray, c: float, a1: float = 1.0, nu: float = 1.0, eta: float = 1e-5
) -> np.ndarray:
    """Limiting eigenvalue density of ``K``, ``Im m(x + i eta) / pi``.

    The density is smoothed by a Cauchy kernel of width ``eta``: point masses (e.g. the mass ``1 - c`` at
    ``-a1`` when ``c < 1`` and ``nu = a1^2``) appear as Lorentzian peaks of height ``~ mass / (pi eta)``.

    Parameters
    ----------
    x : float or array_like of float
        Real evaluation points.
    c : float
        Dimension ratio ``p / n > 0``.
    a1 : float, default 1.0
        Linear Hermite coefficient ``E[xi f(xi)] >= 0`` (``a1 = 0``: semicircle ``c sqrt(4 nu / c - x^2) / (2 pi nu)``).
    nu : float, default 1.0
        Second moment ``E[f(xi)^2] >= a1^2``.
    eta : float, default 1e-5
        Distance ``> 0`` above the real axis.

    Returns
    -------
    numpy.ndarray
        Float64 density values of ``x``'s shape.
    """
    eta = _real("eta", eta, positive=True)
    xx = _numeric_array("x", x, "iuf", "a real number or array of real numbers").astype(np.float64)
    if not np.all(np.isfinite(xx)):
        raise ValueError("x must be finite")
    m = stieltjes(xx + 1j * eta, c, a1, nu)
    return np.asarray(np.imag(m) / np.pi, dtype=np.float64)


# ----------------------------------------------------------------------------------------------------------------
# isolated eigenvalue


def _isolated(rho: float, c: float, theta: float) -> float:
    """Normalised spike location ``lambda`` (a1 = 1), or nan when ``rho <= Gamma``."""
    if rho <= _phase_transition(c, theta):
        return float("nan")
    m_star = _m_edge(c, theta)

    def spike(m: float) -> float:
        lam = _z_of_m(m, c, theta)
        delta = (1.0 + (1.0 + lam) * m + (theta - 1.0) * m * m / c) / c
        return 1.0 + (rho * m / c) * (1.0 - delta)

    # on the branch m in (m*, 0) of the real-axis transform right of the bulk, z(m) increases from the edge
    # to +inf; the spike equation tends to 1 as m -> 0- and is negative at m* exactly when rho > Gamma
    if spike(m_star) >= 0.0:  # rho within rounding of Gamma: the spike sits at the bulk edge
        return _z_of_m(m_star, c, theta)
    hi = m_star * 1e-12
    while spike(hi) <= 0.0 and hi < -1e-290:
        hi *= 1e-6
    m = brentq(spike, m_star, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    return _z_of_m(float(m), c, theta)


def isolated_eigenvalue(rho: float, c: float, theta: float = 1.0, a1: float = 1.0) -> float:
    """Limiting position of the informative isolated (spike) eigenvalue of ``K``.

    ``K``'s spike is ``a1 * lambda`` where ``lambda`` (right of the bulk) solves
    ``1 + (rho m / c)(1 - delta) = 0``, ``delta = [1 + (1 + lambda) m + (theta - 1) m^2 / c] / c`` and
    ``m = m(lambda)`` the normalised (``a1 = 1``, ``nu = theta``) real-axis Stieltjes transform on the branch
    ``m ~ -1/lambda`` at infinity. It is solved for ``m`` in ``(m*, 0)`` with ``lambda = z(m)``.
    ``theta = 1`` gives ``lambda = (1 + rho)(rho + c) / (c rho) - 1``.

    Parameters
    ----------
    rho : float
        Signal strength ``||mu||^2 >= 0``.
    c : float
        Dimension ratio ``p / n > 0``.
    theta : float, default 1.0
        Noise inflation ``nu / a1^2 >= 1``.
    a1 : float, default 1.0
        Linear Hermite coefficient ``E[xi f(xi)] > 0``.

    Returns
    -------
    float
        ``a1 * lambda`` (strictly right of :func:`bulk_edge` for ``rho > Gamma``), or ``nan`` when
        ``rho <= Gamma(c, theta)`` (no isolated eigenvalue).
    """
    rho, c, theta, a1 = _rho(rho), _c(c), _theta(theta), _a1_positive(a1)
    return a1 * _isolated(rho, c, theta)


# ----------------------------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class Prediction:
    """Large-dimensional predictions for one kernel and one data model.

    Attributes
    ----------
    c : float
        Dimension ratio ``p / n``.
    rho : float
        Signal strength ``||mu||^2``.
    a1 : float
        ``E[xi f(xi)]``, the linear Hermite coefficient of ``f``.
    nu : float
        ``E[f(xi)^2]``.
    theta : float
        Noise inflation ``nu / a1^2 >= 1``.
    phase_transition : float
        ``Gamma(c, theta)``; clustering beats chance iff ``rho > Gamma``.
    alignment : float
        Limiting ``|v_hat^T v|^2 / n`` (0 below the transition).
    accuracy : float
        Limiting clustering accuracy ``1 - error`` (0.5 below the transition).
    error : float
        Limiting misclassification rate.
    eigenvalue : float
        Limiting informative isolated eigenvalue of ``K`` (``a1 * lambda``), nan below the transition.
    bulk_edge : float
        Right edge of the limiting bulk spectrum of ``K``.
    """

    c: float
    rho: float
    a1: float
    nu: float
    theta: float
    phase_transition: float
    alignment: float
    accuracy: float
    error: float
    eigenvalue: float
    bulk_edge: float


def predict(c: float, rho: float, a1: float = 1.0, nu: float | None = None) -> Prediction:
    """All limiting quantities for the kernel with coefficients ``(a1, nu)``.

    Parameters
    ----------
    c : float
        Dimension ratio ``p / n > 0``.
    rho : float
        Signal strength ``||mu||^2 >= 0``.
    a1 : float, default 1.0
        ``E[xi f(xi)] > 0``.
    nu : float or None, default None
        ``E[f(xi)^2] >= a1^2``; ``None`` means ``a1^2`` (linear ``f``, ``theta = 1``).

    Returns
    -------
    Prediction
        With ``theta = nu / a1^2``.
    """
    c, rho, a1 = _c(c), _rho(rho), _a1_positive(a1)
    nu = a1 * a1 if nu is None else _nu(nu, a1)
    theta = max(nu / (a1 * a1), 1.0)
    err = misclassification(rho, c, theta)
    return Prediction(
        c=c,
        rho=rho,
        a1=a1,
        nu=nu,
        theta=theta,
        phase_transition=_phase_transition(c, theta),
        alignment=alignment(rho, c, theta),
        accuracy=1.0 - err,
        error=err,
        eigenvalue=a1 * _isolated(rho, c, theta),
        bulk_edge=a1 * _z_of_m(_m_edge(c, theta), c, theta),
    )


def theory(
    nonlinearity="linear",
    *,
    c: float,
    rho: float,
    sparsity: float = 0.0,
    bits: int | None = None,
    t_max: float | None = None,
    center: bool = False,
) -> Prediction:
    """Large-n predictions for spectral clustering with a nonlinearity at c = p/n and signal rho.

    The nonlinearity (name, callable or Nonlinearity, with its parameters as in
    :func:`lowprec.spectral.kernel`) enters through a1 and nu; see :func:`predict` for the fields.

    >>> th = theory("ternary", sparsity=0.9, c=0.5, rho=4.0)
    >>> round(th.theta, 4), round(th.phase_transition, 4)
    (2.3503, 0.7953)
    """
    from .nonlinearity import as_nonlinearity

    coef = as_nonlinearity(nonlinearity, sparsity=sparsity, bits=bits, t_max=t_max, center=center).coefficients()
    if not coef.a1 > 0:
        raise ValueError(f"the nonlinearity has a1 = {coef.a1:.3g} <= 0: its kernel carries no informative spike")
    return predict(c, rho, a1=coef.a1, nu=coef.nu)
