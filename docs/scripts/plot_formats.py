"""Draw the figures of the documentation.

    python docs/scripts/plot_formats.py

writes ``docs/img/formats_grid.png`` (the positive values of the FP4/FP6/FP8 formats on a log2
axis, and the gap to the next value) and ``docs/img/stochastic_rounding.png`` (measured probability
of rounding up under stochastic rounding against the ideal line). Needs matplotlib.
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
FORMATS = ["e2m1fn", "e3m2fn", "e2m3fn", "e4m3fn", "e5m2"]


def positive_values(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positive finite values of a format and a mask of the subnormal ones."""
    f = lp.format(name)
    v = f.values()
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    return v, v < f.min_normal


def formats_grid(path: Path) -> None:
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 6.6), gridspec_kw={"height_ratios": [1.15, 1]}, constrained_layout=True
    )
    normal_c, sub_c = "#1f5fa8", "#d9822b"
    lo, hi = -17, 19
    for row, name in enumerate(FORMATS):
        f = lp.format(name)
        v, sub = positive_values(name)
        y = len(FORMATS) - 1 - row
        ax.hlines(y, math.log2(v[0]), math.log2(v[-1]), color="0.8", lw=1, zorder=1)
        ax.scatter(np.log2(v[~sub]), np.full((~sub).sum(), y), s=14, color=normal_c, zorder=3, lw=0)
        ax.scatter(np.log2(v[sub]), np.full(sub.sum(), y), s=18, facecolor="white", edgecolor=sub_c, lw=1.1, zorder=3)
        ax.text(math.log2(v[-1]) + 0.35, y, f"max {f.max:g}", va="center", fontsize=8, color="0.25")
        # gap from each value to the next one: constant among subnormals, doubling per binade
        gaps = np.diff(np.concatenate([[0.0], v]))
        ax2.step(np.log2(v), np.log2(gaps), where="post", lw=1.4, label=name)
    ax.set_yticks(range(len(FORMATS)), FORMATS[::-1])
    ax.set_ylim(-0.6, len(FORMATS) - 0.4)
    for a in (ax, ax2):
        a.set_xlim(lo, hi)
        a.set_xticks(range(lo + 1, hi, 2))
        a.set_xticks(range(lo, hi + 1), minor=True)
        a.grid(axis="x", which="both", color="0.9", lw=0.8)
        a.set_axisbelow(True)
    ax.set_xticklabels([])
    ax.scatter([], [], s=14, color=normal_c, label="normal")
    ax.scatter([], [], s=18, facecolor="white", edgecolor=sub_c, label="subnormal")
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
    ax.set_title("Positive values (one dot per code); vertical lines at powers of two", fontsize=10)
    ax2.set_xlabel("log2(value)")
    ax2.set_ylabel("log2(gap below value)")
    ax2.set_title("Spacing: flat through the subnormals, doubling at every binade", fontsize=10)
    ax2.legend(fontsize=8, frameon=False, ncol=5, loc="upper left")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def stochastic_rounding(path: Path, n: int = 200_000, points: int = 97) -> None:
    f = "e4m3fn"
    a, b = 1.0, 1.125  # neighbours in e4m3fn
    xs = np.linspace(a, b, points)
    p_exact, p_r2 = [], []
    for i, x in enumerate(xs):
        v = np.full(n, x)
        p_exact.append(float(np.mean(lp.quantize(v, f, "stochastic", seed=1000 + i) == b)))
        p_r2.append(float(np.mean(lp.quantize(v, f, "stochastic", sr_bits=2, seed=5000 + i) == b)))
    d = (xs - a) / (b - a)
    fine = np.linspace(a, b, 4001)
    stair = np.rint((fine - a) / (b - a) * 4) / 4  # numpy rint rounds half to even, as sr_bits does

    fig, ax = plt.subplots(figsize=(7.5, 4.6), constrained_layout=True)
    ax.plot(xs, d, color="0.2", lw=1, label="ideal (x - a) / (b - a)")
    ax.plot(fine, stair, color="#d9822b", lw=1, ls="--", label="sr_bits=2 ideal: RNE(4δ) / 4")
    ax.plot(xs, p_exact, "o", ms=3, color="#1f5fa8", label="measured, exact stochastic")
    ax.plot(xs, p_r2, "s", ms=3, mfc="none", color="#d9822b", label="measured, sr_bits=2")
    ax.set_xlabel(f"x  (e4m3fn neighbours a = {a:g}, b = {b:g})")
    ax.set_ylabel("P(x rounds to b)")
    ax.set_title(f"lp.quantize(x, 'e4m3fn', 'stochastic', seed=...) over {n:,} elements per x", fontsize=10)
    ax.set_xlim(a, b)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(color="0.92")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    formats_grid(IMG / "formats_grid.png")
    stochastic_rounding(IMG / "stochastic_rounding.png")
    print(f"wrote {IMG / 'formats_grid.png'} and {IMG / 'stochastic_rounding.png'}")


if __name__ == "__main__":
    main()
