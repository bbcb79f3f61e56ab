"""Spectral clustering against the large-n theory, scikit-learn conventions and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lowprec import spectral

N, P, RHO = 2000, 1000, 4.0
SEEDS = range(4)
KINDS = [("linear", {}), ("sign", {}), ("threshold", {"sparsity": 0.9}), ("ternary", {"sparsity": 0.9})]


def _accuracy(labels: np.ndarray, y: np.ndarray) -> float:
    a = float(np.mean(labels == y))
    return max(a, 1 - a)


@pytest.fixture(scope="module")
def mixtures():
    return [spectral.gaussian_mixture(N, P, RHO, seed=100 + s) for s in SEEDS]


@pytest.mark.parametrize("name,kw", KINDS, ids=[k[0] for k in KINDS])
def test_accuracy_and_alignment_match_theory(mixtures, name, kw):
    """Mean over 4 seeds at n = 2000, p = 1000, rho = 4 against the n -> inf predictions.

    Over 20 seeds the per-run standard deviations were 0.003 (accuracy) and 0.007 (alignment) for
    all four kinds, and the 20-seed means sat within 0.001 (accuracy) and 0.010 (alignment) of the
    theory: the finite-size bias. The 4-seed mean has sd 0.0015 / 0.0036, so the tolerances 0.01 and
    0.035 are bias plus more than 6 sd: a correct implementation fails with probability < 1e-8.
    """
    th = spectral.theory(name, c=P / N, rho=RHO, **kw)
    acc, ali = [], []
    for X, y in mixtures:
        model = spectral.SpectralClustering(nonlinearity=name, random_state=0, **kw).fit(X)
        acc.append(_accuracy(model.labels_, y))
        ali.append(model.score_alignment(y))
    assert np.mean(acc) == pytest.approx(th.accuracy, abs=0.01)
    assert np.mean(ali) == pytest.approx(th.alignment, abs=0.035)


def test_isolated_eigenvalue_matches_theory(mixtures):
    """The top eigenvalue fluctuates with sd ~0.2 per run at rho = 4 (measured over 4 seeds at n = 1000,
    2000, 4000 for linear f); 4-seed mean within 0.4 of the theory is > 4 sd."""
    for name, kw in KINDS:
        th = spectral.theory(name, c=P / N, rho=RHO, **kw)
        top = [
            spectral.SpectralClustering(nonlinearity=name, random_state=0, **kw).fit(X).eigenvalues_[0]
            for X, _ in mixtures
        ]
        assert np.mean(top) == pytest.approx(th.eigenvalue, rel=0.04), name
        assert th.eigenvalue > th.bulk_edge


def test_chance_below_and_success_above_the_transition():
    """Ternary at 90 % zeros, c = 0.5: Gamma = 0.7953. At rho = 0.4 the labels are chance: for an
    uninformative vector max(acc, 1 - acc) - 1/2 is |N(0, 1/(4n))|, sd 0.011 at n = 2000, so 0.06 is
    > 5 sd (false failure < 1e-6 per seed). At rho = 2 the theory predicts 0.857; the per-seed sd of
    the accuracy is below 0.008 (binomial sd 0.008 plus eigenvector noise), so theory - 0.04 is 5 sd."""
    th_low = spectral.theory("ternary", sparsity=0.9, c=0.5, rho=0.4)
    th_high = spectral.theory("ternary", sparsity=0.9, c=0.5, rho=2.0)
    assert th_low.phase_transition == pytest.approx(0.7953, abs=1e-4)
    assert th_low.accuracy == 0.5 and th_high.accuracy > 0.85
    for seed in range(3):
        X, y = spectral.gaussian_mixture(N, P, 0.4, seed=seed)
        low = spectral.SpectralClustering(nonlinearity="ternary", sparsity=0.9, random_state=seed).fit_predict(X)
        assert _accuracy(low, y) < 0.56
        X, y = spectral.gaussian_mixture(N, P, 2.0, seed=seed)
        high = spectral.SpectralClustering(nonlinearity="ternary", sparsity=0.9, random_state=seed).fit_predict(X)
        assert _accuracy(high, y) > th_high.accuracy - 0.04


def test_eigen_solvers_agree():
    X, y = spectral.gaussian_mixture(600, 300, 3.0, seed=1)
    fits = {
        s: spectral.SpectralClustering(nonlinearity="sign", eigen_solver=s, random_state=0, tol=1e-10).fit(X)
        for s in ("arpack", "lobpcg", "dense")
    }
    ref = fits["dense"]
    for s, m in fits.items():
        assert m.eigenvalues_[0] == pytest.approx(ref.eigenvalues_[0], rel=1e-8), s
        np.testing.assert_array_equal(m.labels_, ref.labels_)
        np.testing.assert_allclose(m.embedding_, ref.embedding_, atol=1e-6)


def test_k_classes():
    X, y = spectral.gaussian_mixture(1500, 500, 6.0, seed=2, n_classes=3)
    labels = spectral.SpectralClustering(3, nonlinearity="ternary", sparsity=0.8, random_state=0).fit_predict(X)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert adjusted_rand_score(y, labels) > 0.8


def test_reproducible_and_deterministic_orientation():
    X, _ = spectral.gaussian_mixture(500, 250, 3.0, seed=3)
    a = spectral.SpectralClustering(nonlinearity="ternary", sparsity=0.7, random_state=5).fit(X)
    b = spectral.SpectralClustering(nonlinearity="ternary", sparsity=0.7, random_state=5).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    v = a.embedding_[:, 0]
    assert v[np.abs(v).argmax()] > 0 and a.labels_[np.abs(v).argmax()] == 0


def test_sklearn_conventions():
    X, y = spectral.gaussian_mixture(400, 200, 4.0, seed=4)
    model = spectral.SpectralClustering(nonlinearity="mbit", bits=2, random_state=0)
    params = model.get_params()
    assert params["nonlinearity"] == "mbit" and params["bits"] == 2
    c = clone(model).set_params(bits=3)
    assert c.bits == 3 and model.bits == 2
    pipe = make_pipeline(StandardScaler(), model)
    labels = pipe.fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.8
    fitted = pipe[-1]
    assert fitted.n_features_in_ == 200 and fitted.affinity_matrix_ is fitted.kernel_
    assert fitted.coefficients_.theta == pytest.approx(spectral.coefficients("mbit", bits=2).theta)
    assert "SpectralClustering(" in repr(model)


def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(spectral.SpectralClustering(random_state=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 30 and failed == []


def test_small_inputs_use_a_dense_solver():
    X = np.random.default_rng(0).standard_normal((10, 3))
    labels = spectral.SpectralClustering(random_state=0).fit_predict(X)
    assert labels.shape == (10,) and set(labels) <= {0, 1}


@pytest.mark.parametrize(
    "params,X,exc,match",
    [
        ({"n_clusters": 0}, None, ValueError, "n_clusters"),
        ({"n_clusters": 2.5}, None, TypeError, "n_clusters"),
        ({"eigen_solver": "amg"}, None, ValueError, "eigen_solver"),
        ({"storage": "coo"}, None, ValueError, "storage"),
        ({"n_components": 0}, None, ValueError, "n_components"),
        ({"n_init": 0}, None, ValueError, "n_init"),
        ({"tol": -1.0}, None, ValueError, "tol"),
        ({"sparsity": 1.5, "nonlinearity": "ternary"}, None, ValueError, "sparsity"),
        ({"nonlinearity": "rbf"}, None, ValueError, "unknown nonlinearity"),
        ({}, np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]]), ValueError, "NaN"),
        ({}, np.ones((2, 3)), ValueError, "samples"),
        ({}, np.ones(5), ValueError, "2D"),
    ],
)
def test_bad_input(params, X, exc, match):
    X = np.random.default_rng(0).standard_normal((20, 4)) if X is None else X
    before = X.copy()
    with pytest.raises(exc, match=match):
        spectral.SpectralClustering(**params).fit(X)
    np.testing.assert_array_equal(X, before)


def test_score_alignment_checks():
    X, y = spectral.gaussian_mixture(100, 50, 3.0, seed=0)
    m = spectral.SpectralClustering(random_state=0)
    with pytest.raises(Exception, match="not fitted"):
        m.score_alignment(y)
    m.fit(X)
    with pytest.raises(ValueError, match="shape"):
        m.score_alignment(y[:-1])
    with pytest.raises(ValueError, match="two classes"):
        m.score_alignment(np.arange(100) % 3)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"n": 1, "p": 5, "rho": 1.0}, ValueError, "n must be at least 2"),
        ({"n": 10, "p": 1, "rho": 1.0}, ValueError, "p must be at least 2"),
        ({"n": 10, "p": 5, "rho": -1.0}, ValueError, "rho"),
        ({"n": 10, "p": 5, "rho": float("nan")}, ValueError, "rho"),
        ({"n": 10, "p": 5, "rho": "1"}, TypeError, "rho"),
        ({"n": 10.0, "p": 5, "rho": 1.0}, TypeError, "n must be an integer"),
        ({"n": 10, "p": 5, "rho": 1.0, "n_classes": 1}, ValueError, "n_classes"),
    ],
)
def test_gaussian_mixture_bad_input(kw, exc, match):
    with pytest.raises(exc, match=match):
        spectral.gaussian_mixture(**kw)


def test_gaussian_mixture_model():
    X, y = spectral.gaussian_mixture(200000, 20, 3.0, seed=7)
    assert X.shape == (200000, 20) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100000, 100000]
    m0, m1 = X[y == 0].mean(0), X[y == 1].mean(0)
    # class means +-mu with ||mu||^2 = 3. d = (m0 - m1)/2 = mu + eta, eta ~ N(0, I/200000):
    # ||d||^2 = 3 + 2 mu.eta + ||eta||^2 with sd(2 mu.eta) = 2 sqrt(3/200000) = 0.008; 0.05 is > 6 sd
    d = (m0 - m1) / 2
    assert d @ d == pytest.approx(3.0, abs=0.05)
    assert np.linalg.norm(m0 + m1) < 0.05  # centred simplex: m0 + m1 ~ N(0, 2 I/100000), norm ~0.02
    resid = X - np.where(y[:, None] == 0, m0, m1)
    assert resid.var() == pytest.approx(1.0, abs=0.01)
    X3, y3 = spectral.gaussian_mixture(3001, 10, 2.0, seed=1, n_classes=3)
    assert sorted(np.bincount(y3).tolist()) == [1000, 1000, 1001]


def test_module_examples_run():
    import doctest

    from lowprec.spectral import asymptotics

    for module in (spectral, asymptotics):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
