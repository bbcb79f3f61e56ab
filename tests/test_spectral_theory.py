"""Large-dimensional theory of kernel spectral clustering (lowprec.spectral.asymptotics).

Every expected value is computed here independently of the module: closed forms written out in this file,
polynomial roots from numpy, scipy's normal distribution, the spec's reference tables, and a small
fixed-seed Monte-Carlo simulation of the kernel matrix.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
from scipy.special import erf, erfinv
from scipy.stats import norm

from lowprec.spectral import asymptotics as th

SIGN_A1 = math.sqrt(2 / math.pi)  # a1 of f = sign (nu = 1, theta = pi/2)


def F(x: float, c: float, theta: float) -> float:
    """The quartic of spec section 5, written out."""
    return x**4 + 2 * x**3 + (1 - c * theta) * x**2 - 2 * c * x - c


def alpha_ref(rho: float, c: float, theta: float) -> float:
    """Spec section 5 alignment above the transition."""
    return F(rho, c, theta) / (rho * (1 + rho) ** 3)


def spike_closed_form(rho: float, c: float, theta: float) -> float:
    """Normalised spike location, solved by hand from the spec's spike equation.

    With lambda = z(m) = -1/m - m/(c + m) - (theta - 1) m / c one finds 1 + (1 + lambda) m + (theta - 1) m^2 / c
    = c m / (c + m), so delta = m / (c + m) and the equation 1 + (rho m / c)(1 - delta) = 1 + rho m / (c + m) = 0
    gives m = -c / (1 + rho), i.e. lambda = (1 + rho) / c + 1 / rho + (theta - 1) / (1 + rho).
    """
    return (1 + rho) / c + 1 / rho + (theta - 1) / (1 + rho)


def dz_dm(m: float, c: float, theta: float) -> float:
    return 1 / m**2 - c / (c + m) ** 2 - (theta - 1) / c


def theta_threshold(eps: float) -> float:
    """theta of hard thresholding with sparsity eps (spec section 4).

    theta = 1 / a1 with a1 = (2/sqrt(pi)) s e^{-s^2} + 1 - erf s and s = erfinv(eps).
    """
    s = erfinv(eps)
    return 1 / (2 / math.sqrt(math.pi) * s * math.exp(-s * s) + 1 - erf(s))


def theta_ternary(eps: float) -> float:
    """theta of the sparse sign with sparsity eps (spec section 4): pi (1 - erf s) / (2 e^{-2 s^2})."""
    s = erfinv(eps)
    return math.pi * (1 - erf(s)) / (2 * math.exp(-2 * s * s))


# ---------------------------------------------------------------------------------------------------------------
# quartic and phase transition

THETAS = [1.0, math.pi / 2, 2.2764, 2.3503, 10.0, 11.8355, 100.0]
GAMMA_TABLE = {
    0.5: [0.7071, 0.7429, 0.7902, 0.7953, 1.4368, 1.5962, 6.0836],
    1.0: [1.0, 1.0738, 1.1711, 1.1816, 2.3235, 2.5727, 9.0117],
}


def test_quartic_coefficients():
    c, theta = 0.7, 2.5
    np.testing.assert_array_equal(th.quartic(c, theta), [1, 2, 1 - c * theta, -2 * c, -c])
    # theta = 1: F = (x^2 - c)(x + 1)^2
    np.testing.assert_allclose(th.quartic(c, 1.0), np.polymul([1, 0, -c], [1, 2, 1]), rtol=0, atol=1e-15)


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_gamma_reference_table(c):
    # The table's theta headers are rounded to 4 decimals; dGamma/dtheta <= 0.07 here, so that shifts Gamma by
    # < 4e-6. Rounding Gamma to 4 decimals allows 5e-5, but Gamma(0.5, 2.2764) = 0.790149 lies 5.07e-5 from the
    # printed 0.7902: the table was computed from the unrounded theta_threshold(0.9) = 2.276421, for which
    # Gamma = 0.790151 (see the next test, which checks every entry within half a unit of the last digit).
    # Hence 6e-5 here.
    for theta, expected in zip(THETAS, GAMMA_TABLE[c], strict=True):
        assert th.phase_transition(c, theta) == pytest.approx(expected, abs=6e-5), theta


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_gamma_reference_table_with_unrounded_theta(c):
    thetas = [1.0, math.pi / 2, theta_threshold(0.9), theta_ternary(0.9), 10.0, theta_threshold(0.99), 100.0]
    for theta, expected in zip(thetas, GAMMA_TABLE[c], strict=True):
        assert abs(th.phase_transition(c, theta) - expected) <= 5e-5 + 1e-12, theta


@pytest.mark.parametrize("c", [1e-4, 0.01, 0.3, 0.5, 1.0, 2.0, 7.5, 300.0])
def test_gamma_theta_one_is_sqrt_c(c):
    assert th.phase_transition(c) == pytest.approx(math.sqrt(c), rel=1e-13, abs=0)
    assert th.phase_transition(c, 1.0) == pytest.approx(math.sqrt(c), rel=1e-13, abs=0)


@pytest.mark.parametrize("c", [0.05, 0.5, 1.0, 4.0])
@pytest.mark.parametrize("theta", [1.0, 1.3, math.pi / 2, 3.0, 50.0, 1e4])
def test_gamma_is_the_positive_root(c, theta):
    g = th.phase_transition(c, theta)
    assert g > 0
    scale = g**4 + 2 * g**3 + abs(1 - c * theta) * g**2 + 2 * c * g + c
    assert abs(F(g, c, theta)) <= 1e-14 * scale
    # it is the largest real root: F changes sign there and stays positive to the right
    assert F(g * (1 - 1e-9), c, theta) < 0 < F(g * (1 + 1e-9), c, theta)
    roots = np.roots([1, 2, 1 - c * theta, -2 * c, -c])
    assert g == pytest.approx(roots[np.abs(roots.imag) < 1e-9].real.max(), rel=1e-9)


@pytest.mark.parametrize("c", [0.2, 0.5, 1.0, 3.0])
def test_gamma_increasing_in_theta(c):
    g = [th.phase_transition(c, t) for t in (1.0, 1.01, 1.5, 2.0, 5.0, 20.0, 100.0)]
    assert all(a < b for a, b in zip(g[:-1], g[1:], strict=True))


# ---------------------------------------------------------------------------------------------------------------
# alignment and error rate


@pytest.mark.parametrize("c", [0.1, 0.5, 1.0, 2.0])
def test_alignment_theta_one_closed_form(c):
    for rho in np.sqrt(c) * np.array([1.001, 1.1, 1.5, 2.0, 5.0, 40.0]):
        assert th.alignment(rho, c) == pytest.approx((rho**2 - c) / (rho * (1 + rho)), rel=1e-12)


@pytest.mark.parametrize("theta", [math.pi / 2, 2.5, 10.0])
def test_alignment_general_theta(theta):
    c = 0.5
    for rho in (1.7, 3.0, 12.0):
        expected = alpha_ref(rho, c, theta) if F(rho, c, theta) > 0 else 0.0
        assert th.alignment(rho, c, theta) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("c", "theta"), [(0.5, 1.0), (0.5, math.pi / 2), (1.0, 2.3503), (2.0, 10.0)])
def test_alignment_zero_below_and_positive_above_transition(c, theta):
    g = th.phase_transition(c, theta)
    for rho in (0.0, 0.3 * g, 0.99 * g, g):
        assert th.alignment(rho, c, theta) == 0.0
        assert th.accuracy(rho, c, theta) == 0.5
        assert th.misclassification(rho, c, theta) == 0.5
    for rho in (1.001 * g, 1.5 * g, 10 * g):
        a = th.alignment(rho, c, theta)
        assert 0 < a < 1
        assert 0.5 < th.accuracy(rho, c, theta) < 1
    # more signal, better alignment
    rhos = g * np.array([1.01, 1.2, 2.0, 5.0, 50.0])
    assert np.all(np.diff([th.alignment(r, c, theta) for r in rhos]) > 0)


@pytest.mark.parametrize(
    ("rho", "c", "theta"), [(2.0, 0.5, 1.0), (2.0, 0.5, math.pi / 2), (1.2, 1.0, 1.0), (30.0, 2.0, 10.0)]
)
def test_misclassification_is_gaussian_tail(rho, c, theta):
    a = alpha_ref(rho, c, theta)
    expected = norm.sf(math.sqrt(a / (1 - a)))
    assert th.misclassification(rho, c, theta) == pytest.approx(expected, rel=1e-12)
    assert th.accuracy(rho, c, theta) == pytest.approx(1 - expected, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# isolated eigenvalue and bulk edge


def test_isolated_eigenvalue_spec_references():
    # spec section 5: c = 0.5, rho = 2: linear 6.5, sign 6.690, 90 % thresholding 6.925 (a1 = 1)
    assert th.isolated_eigenvalue(2.0, 0.5) == pytest.approx(6.5, rel=1e-13)
    assert th.isolated_eigenvalue(2.0, 0.5, math.pi / 2) == pytest.approx(6.690, abs=5e-4)
    assert th.isolated_eigenvalue(2.0, 0.5, 2.2764) == pytest.approx(6.925, abs=5e-4)
    assert th.isolated_eigenvalue(2.0, 0.5, theta_threshold(0.9)) == pytest.approx(6.925, abs=5e-4)


@pytest.mark.parametrize("c", [0.1, 0.5, 1.0, 3.0])
def test_isolated_eigenvalue_theta_one_closed_form(c):
    for rho in np.sqrt(c) * np.array([1.01, 1.5, 3.0, 20.0]):
        expected = (1 + rho) * (rho + c) / (c * rho) - 1
        assert th.isolated_eigenvalue(rho, c) == pytest.approx(expected, rel=1e-12)
        assert th.isolated_eigenvalue(rho, c, 1.0, a1=0.4) == pytest.approx(0.4 * expected, rel=1e-12)


@pytest.mark.parametrize("c", [0.3, 1.0, 2.0])
@pytest.mark.parametrize("theta", [math.pi / 2, 2.5, 12.0])
def test_isolated_eigenvalue_general_theta(c, theta):
    for rho in (4.0, 10.0, 100.0):
        if F(rho, c, theta) > 0:
            assert th.isolated_eigenvalue(rho, c, theta) == pytest.approx(spike_closed_form(rho, c, theta), rel=1e-11)


@pytest.mark.parametrize("c", [0.5, 2.0])
@pytest.mark.parametrize("theta", [1.0, math.pi / 2, 2.2764, 10.0])
def test_spike_exists_iff_rho_above_gamma(c, theta):
    # The spike equation's root is m0 = -c/(1 + rho) (see spike_closed_form); it is on the branch right of the
    # bulk iff z(m) is increasing there, i.e. dz/dm(m0) > 0. That criterion is computed here without the module.
    g = th.phase_transition(c, theta)
    rhos = g * np.concatenate([[0.01, 0.5, 0.9], 1 + np.linspace(-1e-2, 1e-2, 21), [1.1, 2.0, 10.0]])
    rhos = rhos[np.abs(rhos / g - 1) > 1e-10]
    for rho in rhos:
        has_spike = dz_dm(-c / (1 + rho), c, theta) > 0
        assert has_spike == (rho > g), rho
        lam = th.isolated_eigenvalue(rho, c, theta)
        assert math.isnan(lam) == (not has_spike), rho
        if has_spike:
            assert lam == pytest.approx(spike_closed_form(rho, c, theta), rel=1e-10)
            assert lam > th.bulk_edge(c, theta)


@pytest.mark.parametrize("c", [0.05, 0.5, 1.0, 2.0, 10.0])
def test_bulk_edge_marchenko_pastur(c):
    # K = X^T X / p - I: X^T X / p has the Marchenko-Pastur law of ratio n/p = 1/c, right edge (1 + 1/sqrt(c))^2
    assert th.bulk_edge(c) == pytest.approx((1 + 1 / math.sqrt(c)) ** 2 - 1, rel=1e-13)
    assert th.bulk_edge(c, 1.0, a1=2.5) == pytest.approx(2.5 * ((1 + 1 / math.sqrt(c)) ** 2 - 1), rel=1e-13)


def _cubic(z: complex, c: float, a1: float, nu: float) -> list[complex]:
    """m (z + a1^2 m/(c + a1 m) + (nu - a1^2) m/c) + 1 = 0 multiplied by c (c + a1 m)."""
    b = nu - a1 * a1
    return [b * a1, z * c * a1 + a1 * a1 * c + b * c, z * c * c + c * a1, c * c]


@pytest.mark.parametrize(("c", "a1", "nu"), [(0.5, 1.0, 1.0), (0.5, 0.7, 1.0), (2.0, SIGN_A1, 1.0), (1.0, 1.3, 9.0)])
def test_bulk_edge_is_where_the_real_solutions_end(c, a1, nu):
    # Right of the support the Stieltjes equation has only real solutions on the real axis; inside it a complex
    # pair appears. Checked with numpy's roots of the cubic written out above.
    edge = th.bulk_edge(c, nu / a1**2, a1)
    for x in edge + np.array([1e-6, 0.1, 1.0, 30.0]) * edge:
        assert np.all(np.abs(np.roots(_cubic(x, c, a1, nu)).imag) < 1e-9 * abs(x)), x
    for x in edge - np.array([1e-6, 1e-2, 0.3]) * edge:
        assert np.abs(np.roots(_cubic(x, c, a1, nu)).imag).max() > 1e-5, x


@pytest.mark.parametrize(("c", "theta"), [(0.5, 1.0), (0.5, 2.2764), (1.0, math.pi / 2), (3.0, 10.0)])
def test_isolated_eigenvalue_merges_with_bulk_edge(c, theta):
    g = th.phase_transition(c, theta)
    edge = th.bulk_edge(c, theta)
    gaps = [th.isolated_eigenvalue(g * (1 + d), c, theta) - edge for d in (1e-6, 1e-3, 1e-1)]
    assert 0 <= gaps[0] < 1e-6 * edge  # the gap closes quadratically: ~ (rho - Gamma)^2
    assert gaps[0] < gaps[1] < gaps[2]
    assert math.isnan(th.isolated_eigenvalue(g * (1 - 1e-6), c, theta))


# ---------------------------------------------------------------------------------------------------------------
# Stieltjes transform and density


def _upper_root(coefs) -> complex:
    r = np.roots(coefs)
    up = r[r.imag > 0]
    assert up.size == 1
    return complex(up[0])


@pytest.mark.parametrize(
    ("c", "a1", "nu"), [(0.5, 1.0, 1.0), (2.0, 1.0, 1.0), (0.5, 0.0, 1.0), (0.5, 0.8, 1.0), (1.5, 2.0, 7.0)]
)
def test_stieltjes_solves_its_equation(c, a1, nu):
    edge = 2 * math.sqrt(nu / c) if a1 == 0 else th.bulk_edge(c, nu / a1**2, a1)
    zs = np.array([0.3 + 1j, -2 + 0.1j, 5 + 3j, edge + 1e-6j, edge - 1e-3 + 1e-6j, 0.2 + 1e-5j, 100 + 1e-5j])
    m = th.stieltjes(zs, c, a1, nu)
    assert m.shape == zs.shape and m.dtype == np.complex128
    for zi, mi in zip(zs, m, strict=True):
        coefs = _cubic(zi, c, a1, nu)
        if a1 == 0:  # semicircle: nu m^2 / c + z m + 1 = 0 (the cubic degenerates)
            coefs = [nu / c, zi, 1]
        elif nu == a1 * a1:  # Marchenko-Pastur: quadratic
            coefs = coefs[1:]
        assert mi == pytest.approx(_upper_root(coefs), rel=1e-9, abs=1e-12), zi


def test_stieltjes_marchenko_pastur_closed_form_and_shapes():
    c = 0.5
    z = np.array([[1 + 1j, -0.5 + 0.01j], [3 + 2j, 10j]])
    # theta = 1: (z + 1) m^2 + (z c + 1) m + c = 0
    expected = np.array([[_upper_root([zi + 1, zi * c + 1, c]) for zi in row] for row in z])
    np.testing.assert_allclose(th.stieltjes(z, c), expected, rtol=1e-11)
    s = th.stieltjes(2 + 1j, c)
    assert isinstance(s, complex)
    assert s == pytest.approx(_upper_root([3 + 1j, (2 + 1j) * c + 1, c]), rel=1e-11)
    # m ~ -1/z far away
    assert th.stieltjes(1e6j, c) == pytest.approx(-1 / 1e6j, rel=1e-5)


def _mp_density(x: np.ndarray, c: float) -> np.ndarray:
    """Continuous part of the law of X^T X / p - I (X p x n, ratio n/p = 1/c), at x."""
    g = 1 / c
    lo, hi = (1 - math.sqrt(g)) ** 2, (1 + math.sqrt(g)) ** 2
    t = x + 1
    inside = (t > lo) & (t < hi)
    out = np.zeros_like(t)
    out[inside] = np.sqrt((hi - t[inside]) * (t[inside] - lo)) / (2 * math.pi * g * t[inside])
    return out


@pytest.mark.parametrize("c", [0.5, 2.0])
def test_density_marchenko_pastur(c):
    lo, hi = (1 - 1 / math.sqrt(c)) ** 2 - 1, (1 + 1 / math.sqrt(c)) ** 2 - 1
    x = np.linspace(lo + 1e-2, hi - 1e-2, 2001)
    # eta = 1e-5 smooths the square-root edges; 1e-2 away from them the difference is < 3e-4
    np.testing.assert_allclose(th.spectral_density(x, c), _mp_density(x, c), rtol=0, atol=1e-3)
    # the continuous part carries mass min(c, 1)
    xs = np.linspace(lo, hi, 4001)
    assert np.trapezoid(th.spectral_density(xs, c), xs) == pytest.approx(min(c, 1.0), abs=1e-2)


def test_density_point_mass_at_minus_one():
    # c < 1: X^T X / p has rank p < n, a mass 1 - c at 0, i.e. at -1 for K; with eta = 1e-5 it is a Lorentzian,
    # of which +-1e-2 holds (2/pi) atan(1e3) = 99.94 %
    c = 0.5
    x = np.linspace(-1 - 1e-2, -1 + 1e-2, 20001)
    assert np.trapezoid(th.spectral_density(x, c), x) == pytest.approx(1 - c, abs=1e-2)
    assert th.spectral_density(-1.0, c) == pytest.approx((1 - c) / (math.pi * 1e-5), rel=1e-3)
    # no atom for c > 1
    assert th.spectral_density(-1.0, 2.0) < 1.0


@pytest.mark.parametrize(("c", "a1", "nu"), [(2.0, 1.0, 1.0), (0.5, 1.0, 2.0), (0.5, SIGN_A1, 1.0), (1.0, 0.0, 3.0)])
def test_density_integrates_to_one(c, a1, nu):
    right = 2 * math.sqrt(nu / c) if a1 == 0 else th.bulk_edge(c, nu / a1**2, a1)
    x = np.linspace(-right - 5, right + 1, 20001)
    d = th.spectral_density(x, c, a1, nu)
    assert np.all(d >= 0)
    assert np.trapezoid(d, x) == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize(("c", "nu"), [(0.5, 1.0), (2.0, 3.0)])
def test_density_semicircle(c, nu):
    r = 2 * math.sqrt(nu / c)
    x = np.linspace(-0.999 * r, 0.999 * r, 1001)
    expected = c * np.sqrt(4 * nu / c - x**2) / (2 * math.pi * nu)
    np.testing.assert_allclose(th.spectral_density(x, c, a1=0.0, nu=nu), expected, rtol=0, atol=1e-4)
    assert np.all(th.spectral_density(np.array([-1.1 * r, 1.1 * r]), c, a1=0.0, nu=nu) < 1e-4)


@pytest.mark.parametrize(("c", "a1", "nu"), [(0.5, 0.7, 0.7), (0.5, SIGN_A1, 1.0), (2.0, 2.0, 5.0)])
def test_density_vanishes_right_of_bulk_edge(c, a1, nu):
    e = th.bulk_edge(c, nu / a1**2, a1)
    inside, outside = th.spectral_density(np.array([e - 1e-2 * e, e + 1e-2 * e]), c, a1, nu)
    assert inside > 1e-3
    assert outside < 1e-4


# ---------------------------------------------------------------------------------------------------------------
# predict


def test_predict_linear_and_sign():
    p = th.predict(0.5, 2.0)
    assert (p.a1, p.nu, p.theta) == (1.0, 1.0, 1.0)
    assert p.phase_transition == pytest.approx(math.sqrt(0.5), rel=1e-13)
    assert p.alignment == pytest.approx(3.5 / 6, rel=1e-13)
    assert p.error == pytest.approx(norm.sf(math.sqrt(3.5 / 2.5)), rel=1e-12)
    assert p.accuracy == pytest.approx(1 - p.error, rel=1e-15)
    assert p.eigenvalue == pytest.approx(6.5, rel=1e-13)
    assert p.bulk_edge == pytest.approx((1 + math.sqrt(2)) ** 2 - 1, rel=1e-13)

    s = th.predict(0.5, 2.0, a1=SIGN_A1, nu=1.0)
    assert s.theta == pytest.approx(math.pi / 2, rel=1e-14)
    assert s.phase_transition == pytest.approx(0.7429, abs=5e-5)
    assert s.eigenvalue == pytest.approx(SIGN_A1 * 6.690, abs=5e-4)
    assert s.alignment == pytest.approx(alpha_ref(2.0, 0.5, math.pi / 2), rel=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rho = 3.0  # type: ignore[misc]


def test_predict_below_transition_and_scaling():
    p = th.predict(1.0, 0.9, a1=0.3)
    assert (p.alignment, p.accuracy, p.error) == (0.0, 0.5, 0.5)
    assert math.isnan(p.eigenvalue)
    assert p.bulk_edge == pytest.approx(0.3 * 3.0, rel=1e-13)
    q = th.predict(1.0, 4.0, a1=0.3, nu=0.09 * 2.5)
    assert q.theta == pytest.approx(2.5, rel=1e-14)
    assert q.eigenvalue == pytest.approx(0.3 * spike_closed_form(4.0, 1.0, 2.5), rel=1e-11)


# ---------------------------------------------------------------------------------------------------------------
# Monte-Carlo check against finite kernels


def test_monte_carlo_linear_and_sign_kernels():
    # Deterministic: fixed seed 20240601. c = p/n = 0.5, n = 1500, rho = ||mu||^2 = 2, labels +-1 balanced.
    # Kernels: linear K = X^T X / p and sign K = sign(X^T X / sqrt(p)) / sqrt(p), both with zero diagonal.
    # Over 200 seeds at this size the single-draw standard deviations are: top eigenvalue 0.16 (linear) and
    # 0.13 (sign), dominated by the O(n^{-1/2}) fluctuation of v^T Z^T mu / p; alignment 0.017; second eigenvalue
    # (the bulk edge, Tracy-Widom scale n^{-2/3}) 0.035. Finite-size biases seen in those runs: sign-kernel top
    # eigenvalue -0.045 (halving at n = 3000), bulk edges -0.04 (linear) and -0.07 (sign), both below the edge
    # as the Tracy-Widom mean predicts; the linear top eigenvalue and the alignments are unbiased to < 0.01.
    # Averaging 4 draws halves the noise, so the tolerances are bias + about 3 standard errors.
    c, n, rho, draws = 0.5, 1500, 2.0, 4
    p = int(c * n)
    rng = np.random.default_rng(20240601)
    v = np.repeat([1.0, -1.0], n // 2)
    mu = np.zeros(p)
    mu[0] = math.sqrt(rho)
    top, second, align, acc = np.zeros((2, draws)), np.zeros((2, draws)), np.zeros((2, draws)), np.zeros((2, draws))
    for k in range(draws):
        X = np.outer(mu, v) + rng.standard_normal((p, n))
        G = X.T @ X
        for j, K in enumerate((G / p, np.sign(G / math.sqrt(p)) / math.sqrt(p))):
            np.fill_diagonal(K, 0.0)
            w, V = scipy.linalg.eigh(K, subset_by_index=[n - 2, n - 1])
            top[j, k], second[j, k] = w[1], w[0]
            align[j, k] = (V[:, 1] @ v) ** 2 / n
            a = np.mean(np.sign(V[:, 1]) == v)
            acc[j, k] = max(a, 1 - a)
    top, second, align, acc = top.mean(1), second.mean(1), align.mean(1), acc.mean(1)

    # linear f: a1 = nu = 1, theta = 1
    assert th.isolated_eigenvalue(rho, c) == pytest.approx(top[0], abs=0.25)
    assert th.alignment(rho, c) == pytest.approx(align[0], abs=0.04)
    assert th.accuracy(rho, c) == pytest.approx(acc[0], abs=0.03)
    assert th.bulk_edge(c) == pytest.approx(second[0], abs=0.15)

    # sign f: a1 = sqrt(2/pi), nu = 1, theta = pi/2
    s = th.predict(c, rho, a1=SIGN_A1, nu=1.0)
    assert s.eigenvalue == pytest.approx(top[1], abs=0.25)
    assert s.alignment == pytest.approx(align[1], abs=0.04)
    assert s.accuracy == pytest.approx(acc[1], abs=0.03)
    assert s.bulk_edge == pytest.approx(second[1], abs=0.15)
    # the sign kernel's edge is not that of a rescaled linear kernel (theta = 1 would put it at 3.85)
    assert abs(SIGN_A1 * th.bulk_edge(c) - second[1]) > 0.15


# ---------------------------------------------------------------------------------------------------------------
# bad input


def _nu(a1, theta):
    """nu = a1^2 theta, or a valid placeholder when a1 or theta is the bad argument under test."""
    ok = all(isinstance(x, float) for x in (a1, theta))
    return a1 * a1 * theta if ok else 1.0


CALLS = {
    "quartic": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.quartic(c, theta),
    "phase_transition": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.phase_transition(c, theta),
    "alignment": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.alignment(rho, c, theta),
    "misclassification": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.misclassification(rho, c, theta),
    "accuracy": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.accuracy(rho, c, theta),
    "bulk_edge": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.bulk_edge(c, theta, a1),
    "isolated_eigenvalue": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.isolated_eigenvalue(rho, c, theta, a1),
    "predict": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.predict(c, rho, a1, _nu(a1, theta)),
    "stieltjes": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.stieltjes(1 + 1j, c, a1, _nu(a1, theta)),
    "spectral_density": lambda c=0.5, rho=1.0, theta=1.0, a1=1.0: th.spectral_density([0.5], c, a1, _nu(a1, theta)),
}
USES_RHO = {"alignment", "misclassification", "accuracy", "isolated_eigenvalue", "predict"}
USES_THETA = set(CALLS) - {"predict", "stieltjes", "spectral_density"}
NEEDS_A1 = {"bulk_edge", "isolated_eigenvalue", "predict"}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_bad_input(name):
    call = CALLS[name]
    call()  # the defaults are valid
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="c must be"):
            call(c=bad)
    for bad in ("0.5", None, 1 + 0j, True):
        with pytest.raises(TypeError, match="c must be"):
            call(c=bad)
    if name in USES_RHO:
        for bad in (-1e-3, math.nan, math.inf):
            with pytest.raises(ValueError, match="rho must be"):
                call(rho=bad)
        with pytest.raises(TypeError, match="rho must be"):
            call(rho="2")
        call(rho=0.0)
    if name in USES_THETA:
        for bad in (0.5, 1 - 1e-6, math.nan):
            with pytest.raises(ValueError, match="theta must be"):
                call(theta=bad)
        with pytest.raises(TypeError, match="theta must be"):
            call(theta="1")
        call(theta=1 - 1e-12)  # rounding below 1 is tolerated
    else:  # nu = a1^2 theta < a1^2
        with pytest.raises(ValueError, match="nu must be"):
            call(theta=0.5)
    if name in NEEDS_A1:
        for bad in (0.0, -0.5):
            with pytest.raises(ValueError, match="a1 must be > 0"):
                call(a1=bad)
    if name in NEEDS_A1 or name in {"stieltjes", "spectral_density"}:
        with pytest.raises(ValueError, match="a1 must be"):
            call(a1=math.nan)
        with pytest.raises(TypeError, match="a1 must be"):
            call(a1="1")


def test_bad_input_specific_arguments():
    with pytest.raises(ValueError, match="a1 = 0 the kernel carries no informative spike"):
        th.predict(0.5, 2.0, a1=0.0)
    with pytest.raises(ValueError, match="a1 must be >= 0"):
        th.stieltjes(1j, 0.5, a1=-1.0)
    with pytest.raises(TypeError, match="nu must be"):
        th.predict(0.5, 2.0, nu="1")
    with pytest.raises(ValueError, match="nu must be"):
        th.predict(0.5, 2.0, a1=1.0, nu=math.nan)
    with pytest.raises(ValueError, match="z must have a positive imaginary part"):
        th.stieltjes(np.array([1 + 1j, 2.0]), 0.5)
    with pytest.raises(ValueError, match="z must have a positive imaginary part"):
        th.stieltjes(1 - 1j, 0.5)
    with pytest.raises(ValueError, match="z must be finite"):
        th.stieltjes(complex(math.nan, 1.0), 0.5)
    with pytest.raises(TypeError, match="z must be"):
        th.stieltjes("1+1j", 0.5)
    with pytest.raises(ValueError, match="eta must be"):
        th.spectral_density([0.0], 0.5, eta=0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        th.spectral_density([0.0, math.nan], 0.5)
    with pytest.raises(TypeError, match="x must be"):
        th.spectral_density(["a"], 0.5)
