"""Draw the figures of the spectral-clustering page and print a theory-versus-simulation table.

    python docs/scripts/spectral_experiments.py

The data are two-class Gaussian mixtures (``lowprec.spectral.gaussian_mixture``) with n = 2000 samples
in dimension p = 1000 (c = p/n = 0.5); every simulated point is the mean over data seeds (three; ten
for the small M-bit differences; error bars: standard deviation) of
``lowprec.spectral.SpectralClustering``, every kernel running on the same data sets, and every line is
the large-n prediction of ``lowprec.spectral.theory``. Writes into ``docs/img``:

* ``spectral-sparsity.png``: accuracy and eigenvector alignment against the sparsity eps of the kernel
  (fraction of zero entries) for hard thresholding, ternary (sparse sign) and uniform random puncturing,
  at signal strength rho = 2;
* ``spectral-bits.png``: accuracy, alignment lost against the unquantized (linear) kernel on the same
  data, and noise inflation theta against the number of bits M of the uniform quantizer ('mbit', M = 1
  is the sign), at rho = 2;
* ``spectral-phase.png``: accuracy against rho for five kernels with their phase transitions
  Gamma(c, theta), and Gamma(c, theta) against theta for c = 0.5 and 1;
* ``spectral-spectrum.png``: eigenvalue histograms of one ternary and one punctured kernel (both 90 %
  zeros, rho = 2) against the limiting density, with the predicted isolated eigenvalue.

All seeds are fixed, so reruns give the same figures and table. Takes about two minutes on two cores.
Needs matplotlib.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from lowprec import spectral  # noqa: E402

IMG = Path(__file__).resolve().parent.parent / "img"
N, P = 2000, 1000
C = P / N
RHO = 2.0  # signal strength of the sparsity, bits and spectrum figures
SEEDS = (0, 1, 2)  # data seeds of every simulated point
BIT_SEEDS = tuple(range(10))  # the M-bit differences are small: more seeds there (the first three are SEEDS)
SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
BITS = (1, 2, 3, 4, 5, 6)
RHOS = (0.5, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0)
EPS_MAX = 0.99

COLORS = {
    "linear": "0.25",
    "sign": "#7b3294",
    "threshold": "#1f5fa8",
    "ternary": "#2a9d5c",
    "puncture": "#d9822b",
    "mbit": "#c2185b",
}


# -- simulation ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def data(rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return spectral.gaussian_mixture(n=N, p=P, rho=rho, seed=seed)


def canonical(kind: str, sparsity: float = 0.0, bits: int | None = None) -> tuple[str, float, int | None]:
    """Merge the kernels that coincide: thresholding or puncturing nothing is linear, ternary at 0 is sign."""
    if sparsity == 0.0 and kind in ("threshold", "puncture"):
        return "linear", 0.0, None
    if sparsity == 0.0 and kind == "ternary":
        return "sign", 0.0, None
    return kind, float(sparsity), bits


_RUNS: dict[tuple[str, float, int | None, float, int], tuple[float, float]] = {}


def simulate(
    kind: str, rho: float, sparsity: float = 0.0, bits: int | None = None, seeds: tuple[int, ...] = SEEDS
) -> np.ndarray:
    """(accuracy, alignment) of SpectralClustering on each data seed: an array of shape (len(seeds), 2).

    The estimator's random_state is the data seed; results are cached per (kernel, rho, seed).
    """
    kind, sparsity, bits = canonical(kind, sparsity, bits)
    for seed in seeds:
        key = (kind, sparsity, bits, rho, seed)
        if key not in _RUNS:
            X, y = data(rho, seed)
            model = spectral.SpectralClustering(nonlinearity=kind, sparsity=sparsity, bits=bits, random_state=seed)
            labels = model.fit_predict(X)
            acc = float(np.mean(labels == y))
            _RUNS[key] = (max(acc, 1.0 - acc), model.score_alignment(y))
    return np.array([_RUNS[(kind, sparsity, bits, rho, seed)] for seed in seeds])


def prefetch(configs: list[tuple[str, float, int | None]], rho: float, seeds: tuple[int, ...]) -> None:
    """Simulate every (kind, sparsity, bits) config with the data seeds outermost: each data set is drawn once."""
    for seed in seeds:
        for kind, sparsity, bits in configs:
            simulate(kind, rho, sparsity, bits, seeds=(seed,))


def theory(kind: str, rho: float, sparsity: float = 0.0, bits: int | None = None) -> spectral.Prediction:
    kind, sparsity, bits = canonical(kind, sparsity, bits)
    return spectral.theory(kind, c=C, rho=rho, sparsity=sparsity, bits=bits)


def theta(kind: str, sparsity: float = 0.0, bits: int | None = None) -> float:
    kind, sparsity, bits = canonical(kind, sparsity, bits)
    return spectral.coefficients(kind, sparsity=sparsity, bits=bits).theta


def critical_sparsity(kind: str, rho: float) -> float | None:
    """Sparsity eps at which Gamma(c, theta(eps)) = rho, or None if it lies beyond EPS_MAX."""

    def gap(eps: float) -> float:
        return spectral.phase_transition(C, theta(kind, eps)) - rho

    if gap(EPS_MAX) < 0:
        return None
    return brentq(gap, 0.0, EPS_MAX, xtol=1e-10)


def errorbar(ax, x, runs: np.ndarray, column: int, color: str, marker: str = "o", label: str | None = None) -> None:
    """Mean and standard deviation over seeds of runs[:, :, column] (runs: points x seeds x 2) at x."""
    ax.errorbar(
        x,
        runs[:, :, column].mean(axis=1),
        yerr=runs[:, :, column].std(axis=1),
        fmt=marker,
        ms=4.5,
        color=color,
        mfc="white",
        mew=1.3,
        capsize=2.5,
        lw=1.1,
        label=label,
        zorder=3,
    )


# -- figures -------------------------------------------------------------------------------------------------------
def _eps_to_x(eps: np.ndarray) -> np.ndarray:
    return -np.log10(1.0 - np.minimum(eps, 1.0 - 1e-12))


def _x_to_eps(x: np.ndarray) -> np.ndarray:
    return 1.0 - 10.0 ** (-np.asarray(x, dtype=np.float64))


def legend_proxies(ax, n_seeds: int = len(SEEDS)) -> None:
    """Grey legend entries explaining the line and marker styles."""
    ax.plot([], [], color="0.35", lw=1.6, label="theory (n, p → ∞)")
    ax.errorbar(
        [],
        [],
        yerr=[],
        fmt="o",
        ms=4.5,
        color="0.35",
        mfc="white",
        mew=1.3,
        capsize=2.5,
        lw=1.1,
        label=f"simulation: mean ± std, {n_seeds} seeds",
    )


def sparsity_figure(path: Path) -> None:
    kinds = {"threshold": "hard thresholding", "ternary": "ternary (sparse sign)", "puncture": "random puncturing"}
    grid = 1.0 - np.geomspace(1.0, 1.0 - EPS_MAX, 300)  # dense near eps = 1
    prefetch([(kind, e, None) for kind in kinds for e in SPARSITIES], RHO, SEEDS)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8), constrained_layout=True)
    for kind, label in kinds.items():
        color = COLORS[kind]
        preds = [theory(kind, RHO, e) for e in grid]
        runs = np.stack([simulate(kind, RHO, e) for e in SPARSITIES])
        for ax, column, field in ((axes[0], 0, "accuracy"), (axes[1], 1, "alignment")):
            ax.plot(grid, [getattr(p, field) for p in preds], color=color, lw=1.6, label=label)
            errorbar(ax, np.array(SPARSITIES), runs, column, color)
        eps_c = critical_sparsity(kind, RHO)
        if eps_c is not None:
            for ax in axes:
                ax.axvline(eps_c, color=color, lw=0.9, ls="--", alpha=0.8)
            axes[0].annotate(
                f"Γ(c, θ) = ρ at\nε = {eps_c:.3f}",
                xy=(eps_c, 0.565),
                xytext=(5, 0),
                textcoords="offset points",
                ha="left",
                fontsize=8,
                color=color,
            )
    legend_proxies(axes[0])
    ticks = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99]
    for ax in axes:
        ax.set_xscale("function", functions=(_eps_to_x, _x_to_eps))
        ax.set_xlim(0.0, EPS_MAX + 0.0005)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("sparsity ε: fraction of zero kernel entries (axis ∝ −log(1 − ε))")
        ax.grid(color="0.92")
    axes[0].set_ylim(0.48, 0.92)
    axes[0].set_ylabel("clustering accuracy")
    axes[0].axhline(0.5, color="0.6", lw=0.8, ls=":")
    axes[1].set_ylim(-0.02, 0.65)
    axes[1].set_ylabel("alignment |v̂ᵀv|²/n of the top eigenvector")
    axes[0].legend(fontsize=8, frameon=False, loc="lower left")
    fig.suptitle(
        f"Sparsified kernels at equal sparsity: n = {N}, p = {P} (c = {C:g}), ρ = ‖μ‖² = {RHO:g}; "
        "dashed: where puncturing crosses its phase transition",
        fontsize=10.5,
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)


def bits_figure(path: Path) -> None:
    bits = np.array(BITS)
    prefetch([("linear", 0.0, None)] + [("mbit", 0.0, int(m)) for m in bits], RHO, BIT_SEEDS)
    preds = [theory("mbit", RHO, bits=int(m)) for m in bits]
    runs = np.stack([simulate("mbit", RHO, bits=int(m), seeds=BIT_SEEDS) for m in bits])  # bits x seeds x 2
    lin = theory("linear", RHO)
    lin_runs = simulate("linear", RHO, seeds=BIT_SEEDS)  # seeds x 2, on the same data sets
    color = COLORS["mbit"]
    labels = [f"{m}\n(sign)" if m == 1 else str(m) for m in bits]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)

    ax = axes[0]
    ax.plot(bits, [p.accuracy for p in preds], color=color, lw=1.6, label="M-bit uniform quantizer")
    errorbar(ax, bits, runs, 0, color)
    ax.axhline(lin.accuracy, color=COLORS["linear"], lw=1.2, ls="--", label="unquantized (linear)")
    m, s = lin_runs[:, 0].mean(), lin_runs[:, 0].std()
    ax.axhspan(m - s, m + s, color=COLORS["linear"], alpha=0.12, lw=0, label="unquantized, simulation: mean ± std")
    legend_proxies(ax, len(BIT_SEEDS))
    ax.set_ylim(0.85, 0.905)
    ax.set_ylabel("clustering accuracy")
    ax.set_title("Accuracy", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")

    ax = axes[1]
    loss = lin_runs[None, :, 1] - runs[:, :, 1]  # paired: the same data set for both kernels
    ax.plot(bits, [lin.alignment - p.alignment for p in preds], color=color, lw=1.6)
    errorbar(ax, bits, loss[:, :, None], 0, color)
    ax.axhline(0.0, color=COLORS["linear"], lw=1.2, ls="--")
    ax.set_ylabel("alignment of the unquantized kernel − alignment")
    ax.set_title("Alignment lost to quantization (paired: same data sets)", fontsize=10)

    ax = axes[2]
    th = np.array([p.theta for p in preds])
    ax.semilogy(bits, th - 1.0, color=color, lw=1.6, marker="o", label="M-bit uniform, t_max minimising θ")
    for m_, t_ in zip(bits, th, strict=True):
        ax.annotate(f"θ = {t_:.4f}", xy=(m_, t_ - 1.0), xytext=(6, 4), textcoords="offset points", fontsize=8)
    for kind, eps, ls in (("threshold", 0.9, ":"), ("ternary", 0.9, "-.")):
        t = theta(kind, eps)
        ax.axhline(t - 1.0, color=COLORS[kind], lw=1.0, ls=ls, label=f"{kind}, 90 % zeros (θ = {t:.3f})")
    ax.set_ylim(5e-4, 4.0)
    ax.set_xlim(0.6, 7.3)
    ax.set_ylabel("θ − 1 = ν/a₁² − 1 (0: unquantized)")
    ax.set_title("Noise inflation θ", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    for ax in axes:
        ax.set_xticks(bits, labels)
        ax.set_xlabel("bits M of the quantizer")
        ax.grid(color="0.92")
    fig.suptitle(f"Uniformly quantized kernels: n = {N}, p = {P} (c = {C:g}), ρ = {RHO:g}", fontsize=11)
    fig.savefig(path, dpi=130)
    plt.close(fig)


PHASE_KERNELS = (
    ("linear", 0.0, "linear (θ = 1)"),
    ("sign", 0.0, "sign"),
    ("threshold", 0.9, "threshold, 90 % zeros"),
    ("ternary", 0.9, "ternary, 90 % zeros"),
    ("puncture", 0.9, "puncture, 90 % zeros"),
)


def phase_figure(path: Path) -> None:
    grid = np.linspace(0.3, 3.2, 400)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8), constrained_layout=True)
    ax = axes[0]
    for rho in RHOS:
        prefetch([(kind, eps, None) for kind, eps, _ in PHASE_KERNELS], rho, SEEDS)
    markers = {"linear": "o", "sign": "D", "threshold": "s", "ternary": "^", "puncture": "v"}
    for kind, eps, label in PHASE_KERNELS:
        color = COLORS[kind]
        t = theta(kind, eps)
        gamma = spectral.phase_transition(C, t)
        ax.plot(
            grid, [spectral.accuracy(r, C, t) for r in grid], color=color, lw=1.5, label=f"{label}: Γ = {gamma:.3f}"
        )
        ax.axvline(gamma, color=color, lw=0.9, ls="--", alpha=0.8)
        runs = np.stack([simulate(kind, r, eps) for r in RHOS])
        errorbar(ax, np.array(RHOS), runs, 0, color, marker=markers[kind])
    ax.plot([], [], "o", color="0.3", mfc="white", label=f"markers: simulation, mean ± std over {len(SEEDS)} seeds")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0.47, 1.0)
    ax.set_xlabel("signal strength ρ = ‖μ‖²")
    ax.set_ylabel("clustering accuracy")
    ax.set_title(f"Accuracy against ρ, c = {C:g} (dashed: phase transitions Γ(c, θ))", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.grid(color="0.92")

    ax = axes[1]
    thetas = np.geomspace(1.0, 150.0, 300)
    for c, ls in ((0.5, "-"), (1.0, "--")):
        ax.plot(
            thetas, [spectral.phase_transition(c, t) for t in thetas], color="0.2", lw=1.4, ls=ls, label=f"c = {c:g}"
        )
    named = (
        ("sign", "sign", 0.0),
        ("threshold 90 %", "threshold", 0.9),
        ("ternary 90 %", "ternary", 0.9),
        ("puncture 90 %", "puncture", 0.9),
        ("threshold 99 %", "threshold", 0.99),
        ("ternary 99 %", "ternary", 0.99),
        ("puncture 99 %", "puncture", 0.99),
    )
    for label, kind, eps in named:
        t = theta(kind, eps)
        g = spectral.phase_transition(0.5, t)
        ax.plot(
            t,
            g,
            "o" if eps < 0.95 else "s",
            color=COLORS[kind],
            ms=5.5,
            zorder=3,
            ls="none",
            label=f"{label}: θ = {t:.3g}, Γ(0.5, θ) = {g:.3f}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    yticks = [0.7, 1, 1.5, 2, 3, 5, 7, 10]
    ax.set_yticks(yticks, [f"{t:g}" for t in yticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks([1, 2, 5, 10, 20, 50, 100], ["1", "2", "5", "10", "20", "50", "100"])
    ax.set_xlabel("noise inflation θ = ν/a₁²")
    ax.set_ylabel("phase transition Γ(c, θ)")
    ax.set_title("Γ(c, θ): largest root of x⁴ + 2x³ + (1 − cθ)x² − 2cx − c", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.grid(which="both", color="0.92")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def spectrum_figure(path: Path) -> dict[str, tuple[float, float, float]]:
    """Returns, per kernel, (measured top eigenvalue, predicted spike, predicted bulk edge), all divided by a1."""
    X, _ = data(RHO, SEEDS[0])
    out = {}
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), constrained_layout=True)
    for ax, (kind, eps) in zip(axes, (("ternary", 0.9), ("puncture", 0.9)), strict=True):
        K = spectral.kernel(X, kind, sparsity=eps, seed=0)
        coef = spectral.coefficients(kind, sparsity=eps)
        eig = np.linalg.eigvalsh(K.toarray()) / coef.a1  # in units of a1, where the linear kernel has a1 = 1
        pred = theory(kind, RHO, eps)
        spike, edge = pred.eigenvalue / coef.a1, pred.bulk_edge / coef.a1
        out[f"{kind}-{eps:g}"] = (float(eig[-1]), spike, edge)
        color = COLORS[kind]
        lo, hi = eig[0] - 0.5, max(eig[-1], spike) + 0.8
        ax.hist(
            eig,
            bins=90,
            range=(lo, eig[-2] + 0.05),
            density=True,
            color=color,
            alpha=0.35,
            label=f"eigenvalues of K/a₁ (n = {N})",
        )
        x = np.linspace(lo, hi, 1500)
        dens = coef.a1 * spectral.spectral_density(coef.a1 * x, C, coef.a1, coef.nu)
        ax.plot(x, dens, color=color, lw=1.6, label="limiting density")
        ymax = 1.55 * dens.max()
        ax.axvline(edge, color="0.4", lw=0.9, ls=":", label=f"predicted bulk edge {edge:.2f}")
        ax.axvline(spike, color=color, lw=1.1, ls="--", label=f"predicted isolated eigenvalue {spike:.2f}")
        ax.plot(eig[-1], 0.0, "v", color="k", ms=7, clip_on=False, zorder=4, label=f"largest eigenvalue {eig[-1]:.2f}")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, ymax)
        ax.set_xlabel("eigenvalue / a₁")
        ax.set_ylabel("density")
        ax.set_title(f"{kind}, {eps:.0%} zeros: θ = {coef.theta:.3f}, a₁ = {coef.a1:.4f}", fontsize=10)
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.suptitle(
        f"Spectrum of one kernel: n = {N}, p = {P} (c = {C:g}), ρ = {RHO:g}, data seed {SEEDS[0]}", fontsize=11
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return out


# -- summary -------------------------------------------------------------------------------------------------------
SUMMARY = (
    ("linear", 0.0, None),
    ("sign", 0.0, None),
    ("mbit", 0.0, 2),
    ("mbit", 0.0, 3),
    ("threshold", 0.9, None),
    ("ternary", 0.9, None),
    ("puncture", 0.9, None),
    ("threshold", 0.99, None),
    ("ternary", 0.99, None),
    ("puncture", 0.99, None),
)


def summary(spectra: dict[str, tuple[float, float, float]]) -> None:
    print(f"\nn = {N}, p = {P}, c = {C:g}, rho = {RHO:g}; simulation: mean ± std over seeds {list(SEEDS)}")
    head = (
        f"{'kernel':<16}{'theta':>9}{'Gamma':>8}{'acc theory':>12}{'acc simulated':>17}"
        f"{'align theory':>14}{'align simulated':>18}"
    )
    print(head)
    print("-" * len(head))
    for kind, eps, bits in SUMMARY:
        pred = theory(kind, RHO, eps, bits)
        runs = simulate(kind, RHO, eps, bits)
        name = spectral.as_nonlinearity(kind, sparsity=eps, bits=bits).name
        acc, al = runs.mean(axis=0), runs.std(axis=0)
        print(
            f"{name:<16}{pred.theta:>9.4f}{pred.phase_transition:>8.3f}{pred.accuracy:>12.3f}"
            f"{acc[0]:>10.3f} ± {al[0]:.3f}{pred.alignment:>14.3f}{acc[1]:>11.3f} ± {al[1]:.3f}"
        )
    print("\nisolated eigenvalue / a1 (seed 0): kernel, measured largest, predicted spike, predicted bulk edge")
    for name, (top, spike, edge) in spectra.items():
        print(f"{name:<16}{top:>9.3f}{spike:>9.3f}{edge:>9.3f}")


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    steps = (
        ("spectral-sparsity.png", sparsity_figure),
        ("spectral-bits.png", bits_figure),
        ("spectral-phase.png", phase_figure),
        ("spectral-spectrum.png", spectrum_figure),
    )
    spectra: dict[str, tuple[float, float, float]] = {}
    for name, draw in steps:
        t0 = time.perf_counter()
        result = draw(IMG / name)
        if isinstance(result, dict):
            spectra = result
        print(f"wrote {IMG / name} ({time.perf_counter() - t0:.1f} s)")
    summary(spectra)
    print(f"\n{len(_RUNS)} clusterings, {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
