"""Gaussian coefficients of the kernel nonlinearities: closed forms, quadrature and the spec's table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erfinv

from lowprec import spectral

# theta values of specs/spectral-clustering.md, section 4 (printed to 4 decimals)
SPEC_THETA = [
    ("sign", {}, math.pi / 2),
    ("threshold", {"sparsity": 0.9}, 2.2764),
    ("threshold", {"sparsity": 0.99}, 11.8355),
    ("ternary", {"sparsity": 0.9}, 2.3503),
    ("ternary", {"sparsity": 0.99}, 11.9569),
    ("puncture", {"sparsity": 0.9}, 10.0),
    ("puncture", {"sparsity": 0.99}, 100.0),
    ("mbit", {"bits": 2, "t_max": 2.0}, 1.1349),
    ("mbit", {"bits": 3, "t_max": 2.5}, 1.0396),
    ("mbit", {"bits": 4, "t_max": 3.0}, 1.0126),
    ("linear", {}, 1.0),
]


@pytest.mark.parametrize("name,kw,theta", SPEC_THETA)
def test_theta_matches_spec_table(name, kw, theta):
    assert spectral.coefficients(name, **kw).theta == pytest.approx(theta, abs=5e-5)


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.5, 0.9, 0.99, 0.999])
def test_closed_forms_of_the_spec(eps):
    s = float(erfinv(eps))
    thr = spectral.coefficients("threshold", sparsity=eps)
    a1 = 2 / math.sqrt(math.pi) * s * math.exp(-s * s) + 1 - math.erf(s)
    assert thr.a1 == pytest.approx(a1, rel=1e-12) and thr.nu == pytest.approx(a1, rel=1e-12)
    ter = spectral.coefficients("ternary", sparsity=eps)
    assert ter.a1 == pytest.approx(math.sqrt(2 / math.pi) * math.exp(-s * s), rel=1e-12)
    assert ter.nu == pytest.approx(1 - math.erf(s), rel=1e-12)
    assert ter.theta == pytest.approx(math.pi * (1 - math.erf(s)) / (2 * math.exp(-2 * s * s)), rel=1e-12)
    for c in (thr, ter):
        assert abs(c.a0) < 1e-15 and abs(c.a2) < 1e-15  # odd f


@pytest.mark.parametrize(
    "name,kw,f,breaks",
    [
        ("sign", {}, lambda t: np.where(t >= 0, 1.0, -1.0), (0.0,)),
        ("ternary", {"sparsity": 0.8}, None, None),
        ("threshold", {"sparsity": 0.7}, None, None),
        ("mbit", {"bits": 3, "t_max": 2.2}, None, None),
    ],
)
def test_quadrature_agrees_with_closed_forms(name, kw, f, breaks):
    nl = spectral.as_nonlinearity(name, **kw)
    if f is None:  # the same f as a custom callable, integrated numerically
        f = nl.__call__
        if nl.is_piecewise_constant:
            breaks = tuple(nl.code_table()[0])
        else:
            breaks = (-nl.threshold, nl.threshold)
    custom = spectral.as_nonlinearity(f, breakpoints=breaks).coefficients()
    exact = nl.coefficients()
    for field in ("a0", "a1", "a2", "nu"):
        assert getattr(custom, field) == pytest.approx(getattr(exact, field), abs=1e-10), field


def test_quadrature_of_smooth_functions():
    c = spectral.coefficients(np.tanh)  # odd: a0 = a2 = 0
    assert abs(c.a0) < 1e-12 and abs(c.a2) < 1e-12
    # E[xi tanh xi] = E[1 - tanh^2 xi] (Stein), both by an independent Gauss-Hermite rule
    x, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    assert c.a1 == pytest.approx(np.sum(w * x * np.tanh(x)), rel=1e-9)
    assert c.a1 == pytest.approx(np.sum(w * (1 - np.tanh(x) ** 2)), rel=1e-9)
    assert c.nu == pytest.approx(np.sum(w * np.tanh(x) ** 2), rel=1e-9)
    q = spectral.coefficients(lambda t: t**2)  # a0 = 1, a2 = E[(xi^2 - 1) xi^2]/sqrt(2) = sqrt(2), nu = 3
    assert (q.a0, q.a1, q.a2, q.nu) == pytest.approx((1.0, 0.0, math.sqrt(2), 3.0), abs=1e-9)


def test_centring():
    c = spectral.coefficients(np.abs, center=True)
    assert c.a0 == 0.0 and c.nu == pytest.approx(1 - 2 / math.pi, rel=1e-10)
    nl = spectral.as_nonlinearity(np.abs, center=True)
    t = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(nl(t), np.abs(t) - math.sqrt(2 / math.pi), rtol=1e-12)


def test_mbit_default_clip_minimises_theta():
    for bits in (2, 3, 4):
        nl = spectral.as_nonlinearity("mbit", bits=bits)
        best = nl.coefficients().theta
        for t_max in (nl.t_max * 0.97, nl.t_max * 1.03):
            assert spectral.coefficients("mbit", bits=bits, t_max=t_max).theta > best
    thetas = [spectral.coefficients("mbit", bits=b).theta for b in range(1, 7)]
    assert thetas[0] == pytest.approx(math.pi / 2, rel=1e-12)  # 1 bit is sign
    assert all(a > b for a, b in zip(thetas, thetas[1:], strict=False))
    for bits in (4, 5, 6):  # high resolution: theta - 1 ~ quantization noise delta^2/12 (plus clipping)
        nl = spectral.as_nonlinearity("mbit", bits=bits)
        noise = (2 * nl.t_max / 2**bits) ** 2 / 12
        assert noise < nl.coefficients().theta - 1 < 1.5 * noise


def test_function_values():
    t = np.array([-3.0, -1.0, -0.1, 0.0, 0.1, 1.0, 3.0])
    np.testing.assert_array_equal(spectral.as_nonlinearity("sign")(t), [-1, -1, -1, 1, 1, 1, 1])
    ter = spectral.as_nonlinearity("ternary", sparsity=0.5)  # t0 = sqrt(2) erfinv(0.5) = 0.6745
    np.testing.assert_array_equal(ter(t), [-1, -1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(ter(np.array([ter.threshold, -ter.threshold])), [0, 0])  # |t| > t0 strictly
    thr = spectral.as_nonlinearity("threshold", sparsity=0.5)
    np.testing.assert_array_equal(thr(t), [-3, -1, 0, 0, 0, 1, 3])
    q = spectral.as_nonlinearity("mbit", bits=2, t_max=2.0)  # levels -1.5, -0.5, 0.5, 1.5; edges -1, 0, 1 round up
    np.testing.assert_array_equal(q(t), [-1.5, -0.5, -0.5, 0.5, 0.5, 1.5, 1.5])
    with pytest.raises(ValueError, match="random mask"):
        spectral.as_nonlinearity("puncture", sparsity=0.5)(t)


@pytest.mark.parametrize(
    "args,kw,exc,match",
    [
        (("ternary",), {"sparsity": 1.0}, ValueError, "sparsity"),
        (("ternary",), {"sparsity": float("nan")}, ValueError, "sparsity"),
        (("linear",), {"sparsity": 0.5}, ValueError, "sparsity"),
        (("mbit",), {"bits": 0}, ValueError, "bits"),
        (("mbit",), {"bits": 2.0}, TypeError, "bits"),
        (("mbit",), {"bits": 2, "t_max": float("inf")}, ValueError, "t_max"),
        (("threshold",), {"t_max": 1.0}, ValueError, "t_max"),
        (("nope",), {}, ValueError, "unknown nonlinearity"),
        ((None,), {}, TypeError, "nonlinearity"),
    ],
)
def test_bad_parameters(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        spectral.as_nonlinearity(*args, **kw)


def test_nonlinearity_object_round_trip():
    nl = spectral.Nonlinearity(spectral.Kind.TERNARY, sparsity=0.9)
    assert spectral.as_nonlinearity(nl) is nl
    assert spectral.as_nonlinearity("TERNARY", sparsity=0.9) == nl and nl.name == "ternary-0.9"
    with pytest.raises(ValueError, match="not both"):
        spectral.as_nonlinearity(nl, sparsity=0.5)
