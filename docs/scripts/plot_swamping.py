"""Draw the swamping figure of the documentation.

    python docs/scripts/plot_swamping.py

writes ``docs/img/swamping.png``: the relative error of emulated (1,6,9) = ``e6m9`` sums of
U(0,1) terms (themselves rounded to e6m9) against the number of terms, for plain sequential
round-to-nearest accumulation, chunk-64 accumulation, pairwise accumulation and stochastic
accumulation (mean over five seeds), with the deterministic bounds gamma_k. The terms of a sum of
n are the first n of one fixed draw, and the exact reference is ``math.fsum``. Needs matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lowprec as lp  # noqa: E402

IMG = Path(__file__).resolve().parent.parent / "img"
ACC = "e6m9"
U = 2.0**-10  # unit roundoff of e6m9 (10 significant bits) under round-to-nearest
CHUNK = 64
SEEDS = range(5)
FLOOR = 1e-7  # where an exact result (relative error 0) is drawn on the log axis


def relative_error(s: float, exact: float) -> float:
    return abs(s - exact) / exact


def first_n(x: np.ndarray, stall: float, **kw: object) -> int:
    """Smallest n whose sum x[:n] reaches ``stall`` (prefix sums of non-negative terms under RNE
    never decrease, so a bisection finds it)."""
    lo, hi = 1, len(x)
    while lo < hi:
        mid = (lo + hi) // 2
        if float(lp.sum(x[:mid], acc=ACC, **kw)) >= stall:
            hi = mid
        else:
            lo = mid + 1
    return lo


def gamma(k: np.ndarray) -> np.ndarray:
    """gamma_k = k u / (1 - k u), NaN where k u >= 1 (no bound)."""
    ku = k * U
    return np.where(ku < 1, ku / np.where(ku < 1, 1 - ku, 1), np.nan)


def swamping(path: Path, max_log2: int = 20, points: int = 43) -> None:
    rng = np.random.default_rng(2018)
    x = lp.quantize(rng.random(2**max_log2), ACC)  # float64 values of e6m9
    ns = np.unique(np.rint(np.logspace(6, max_log2, points, base=2.0)).astype(int))
    curves: dict[str, list[float]] = {"plain": [], "chunk": [], "pairwise": [], "stochastic": []}
    for n in ns:
        v = x[:n]
        exact = math.fsum(v)
        curves["plain"].append(relative_error(float(lp.sum(v, acc=ACC)), exact))
        curves["chunk"].append(relative_error(float(lp.sum(v, acc=ACC, chunk=CHUNK)), exact))
        curves["pairwise"].append(relative_error(float(lp.sum(v, acc=ACC, order="pairwise")), exact))
        sr = [float(lp.sum(v, acc=ACC, rounding="stochastic", seed=s)) for s in SEEDS]
        curves["stochastic"].append(float(np.mean([relative_error(s, exact) for s in sr])))
    n_plain = first_n(x, 1024.0)
    n_chunk = first_n(x, 65536.0, chunk=CHUNK)

    fig, ax = plt.subplots(figsize=(8.4, 6.2), constrained_layout=True)
    styles = {
        "plain": ("#1f5fa8", "o", "sequential, RNE: stalls at s = 1024"),
        "chunk": ("#d9822b", "s", f"chunk-{CHUNK}, RNE: stalls at s = 65536"),
        "pairwise": ("#7b3294", "^", "pairwise, RNE"),
        "stochastic": ("#2a9d5c", "D", f"sequential, stochastic (mean of {len(SEEDS)} seeds)"),
    }
    for key, (color, marker, label) in styles.items():
        err = np.asarray(curves[key])
        ax.plot(ns, np.maximum(err, FLOOR), marker=marker, ms=3.5, lw=1.3, color=color, label=label)
    nn = np.logspace(6, max_log2, 400, base=2.0)
    ax.plot(nn, gamma(nn - 1), color="#1f5fa8", lw=0.9, ls=":", label="bound γ_k, k = n − 1")
    k_chunk = CHUNK - 1 + np.ceil(nn / CHUNK)
    ax.plot(nn, gamma(k_chunk), color="#d9822b", lw=0.9, ls=":", label=f"bound γ_k, k = {CHUNK - 1} + ⌈n/{CHUNK}⌉")
    ax.plot(nn, gamma(np.ceil(np.log2(nn))), color="#7b3294", lw=0.9, ls=":", label="bound γ_k, k = ⌈log2 n⌉")
    for n_stall, s_stall, color in ((n_plain, 1024, "#1f5fa8"), (n_chunk, 65536, "#d9822b")):
        ax.axvline(n_stall, color=color, lw=0.8, ls="--", alpha=0.7)
        ax.annotate(
            f"s reaches {s_stall}\nat n = {n_stall:,}",
            xy=(n_stall, 2e-6),
            xytext=(5, 0),
            textcoords="offset points",
            fontsize=8,
            color=color,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(2**6 / 1.2, 2**max_log2 * 1.2)
    ax.set_ylim(FLOOR / 2, 2.0)
    ax.set_xlabel("n (number of U(0,1) terms, rounded to e6m9)")
    ax.set_ylabel("relative error |s − s_exact| / s_exact")
    ax.set_title(f"Swamping: sums accumulated in (1,6,9) = {ACC}, every addition rounded (lp.sum)", fontsize=10)
    ax.grid(which="major", color="0.9")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    swamping(IMG / "swamping.png")
    print(f"wrote {IMG / 'swamping.png'}")


if __name__ == "__main__":
    main()
