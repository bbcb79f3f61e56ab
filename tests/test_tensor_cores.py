"""Tensor-core profiles against real-GPU outputs (bit for bit), the exact reference, the directed
probes of Fasi et al., specials, promotion and the summation trees the profiles claim."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

import lowprec as lp
from lowprec import _accum_reference as R
from lowprec.order import SumTree

GPU = {"v100": "v100", "a100": "a100", "a2": "a2", "ada_l40s": "ada", "h100": "h100", "h200": "h200", "b200": "b200"}
FP8 = {"e4m3": "e4m3fn", "e5m2": "e5m2"}


def data_dir() -> Path:
    """The real-GPU validation vectors (shared/data/tensor-cores next to the checkout)."""
    here = Path(__file__).resolve().parents[1]
    cands = [
        os.environ.get("LOWPREC_TENSOR_CORE_DATA"),
        here.parent / "shared" / "data" / "tensor-cores",
        Path("/work/shared/data/tensor-cores"),
    ]
    for c in cands:
        if c and (Path(c) / "README.md").is_file():
            return Path(c)
    raise FileNotFoundError("tensor-core validation data not found; set LOWPREC_TENSOR_CORE_DATA")


def folders() -> list[str]:
    d = data_dir()
    return sorted(f"{g}/{f}" for g in GPU for f in os.listdir(d / g))


def load(folder: str):
    d = data_dir() / folder

    def hexf(name):
        rows = [line.split() for line in open(d / name)]
        return np.array([[int(t, 16) for t in r] for r in rows], dtype=np.uint32).view(np.float32)

    def binf(name):
        p = d / name
        return np.array([int(line, 2) for line in open(p)], dtype=np.uint32) if p.exists() else None

    return hexf("a.txt"), hexf("b.txt"), binf("c.txt").view(np.float32), binf("d.txt"), binf("d_fp16.txt")


def case(folder: str):
    """(profile for d.txt, profile for d_fp16.txt, operand kwargs, c is zero for d.txt)."""
    gpu, fmt = folder.split("/")
    fam = "fp8" if fmt in FP8 else fmt
    prof = f"nvidia-{GPU[gpu]}-{fam}"
    hopper_fp8 = gpu in ("h100", "h200") and fam == "fp8"
    kw = {"a_format": FP8[fmt], "b_format": FP8[fmt]} if fmt in FP8 else {}
    return prof, prof + ("-mma" if hopper_fp8 else ""), kw, hopper_fp8


@pytest.mark.parametrize("folder", folders())
def test_profiles_reproduce_every_gpu_sample(folder):
    a, b, c, d, d16 = load(folder)
    prof, prof16, kw, zero_c = case(folder)
    # the inputs are exactly representable in the input format (asserted, as the data README asks)
    fmt = lp.load_profile(prof).model(**kw).a_format
    assert np.array_equal(lp.quantize(a, fmt), a) and np.array_equal(lp.quantize(b, fmt), b)
    got = lp.dot(a, b, c=np.zeros_like(c) if zero_c else c, profile=prof, **kw)
    assert np.count_nonzero(got.view(np.uint32) != d) == 0, f"{prof} fp32: {np.sum(got.view(np.uint32) == d)}/{len(d)}"
    if d16 is not None:
        got16 = lp.dot(a, b, c=c, profile=prof16, out_format="fp16", **kw)
        assert np.count_nonzero(got16.view(np.uint32) != d16) == 0, f"{prof16} fp16"


@pytest.mark.parametrize("folder", folders())
def test_reference_reproduces_gpu_samples(folder):
    # the exact-arithmetic reference, independent of the kernel, on the first 40 samples
    a, b, c, d, d16 = load(folder)
    prof, prof16, kw, zero_c = case(folder)
    m = lp.load_profile(prof).model(**kw)
    for i in range(40):
        ci = 0.0 if zero_c else float(c[i])
        assert np.float32(R.blockfma_dot(list(map(float, a[i])), list(map(float, b[i])), ci, m)).view(np.uint32) == d[i]
        if d16 is not None:
            m16 = lp.load_profile(prof16).model(out_format="fp16", **kw)
            c16 = float(lp.quantize(np.float32(c[i]), "fp16"))
            r = R.blockfma_dot(list(map(float, a[i])), list(map(float, b[i])), c16, m16)
            assert np.float32(r).view(np.uint32) == d16[i]


def test_published_fp8_model_does_not_fit_mma_sync_data():
    # the WGMMA model of nvidia-h100-fp8 misses part of the mma.sync fp16 outputs; -mma fits them all
    a, b, c, _, d16 = load("h100/e4m3")
    got = lp.dot(a, b, c=c, profile="nvidia-h100-fp8", out_format="fp16")
    frac = np.mean(got.view(np.uint32) == d16)
    assert 0.5 < frac < 0.8


# Directed probes (specs/accelerator-models.md section 4): fp16 inputs, fp32 output.
P = 2.0**-24
PROBES = [
    ([1.0], [1.0], -(1 - P), (2.0**-23, 2.0**-24, 2.0**-24)),
    ([P] * 4, [1.0] * 4, 1 - P, (1 + 2.0**-23,) * 3),
    ([1.0, 1.0], [1.0, -P], -1 + P, (2.0**-23, 0.0, 0.0)),
    ([1.0, 1.0, 1.0, 2.0**-23], [1.0] * 4, 1 + 2.0**-22 + 2.0**-23, (4 + 2.0**-21,) * 3),
    ([1.0] * 4, [1.0] * 4, 1 + 2.0**-22 + 2.0**-23, (5.0,) * 3),
    ([1.0, 1.0], [2.0, 3 * P], 0.0, (2.0,) * 3),
    ([1.0, 1.0], [-2.0, -3 * P], 0.0, (-2.0,) * 3),
    ([1 - 2.0**-11], [1 - 2.0**-11], 0.0, (1 - 2.0**-10 + 2.0**-22,) * 3),
    ([0.5] * 4, [P] * 4, 1.0, (1.0, 1.0, 1 + 2.0**-23)),
    ([0.5] * 4, [P] * 3 + [3 * P], 1 - P, (1.0, 1 + 2.0**-23, 1 + 2.0**-23)),
    ([0.5] * 4, [P] * 3 + [3 * P], 1.0, (1.0, 1.0, 1 + 2.0**-23)),
]


@pytest.mark.parametrize("a,b,c,expected", PROBES)
def test_directed_probes(a, b, c, expected):
    for prof, exp in zip(("nvidia-v100-fp16", "nvidia-a100-fp16", "nvidia-h100-fp16"), expected, strict=True):
        got = lp.dot(np.array(a), np.array(b), c=c, profile=prof)
        assert got == exp, f"{prof}: {got!r} != {exp!r}"
        m = lp.load_profile(prof).model()
        assert R.blockfma_dot(a, b, c, m) == exp


def test_specials():
    inf, nan = math.inf, math.nan
    dot = lambda a, b, c=0.0: lp.dot(np.array(a), np.array(b), c=c, profile="nvidia-a100-fp16")  # noqa: E731
    assert dot([inf, 1.0], [1.0, 1.0]) == inf
    assert dot([inf, 1.0], [-1.0, 1.0]) == -inf
    assert math.isnan(dot([inf, inf], [1.0, -1.0]))
    assert math.isnan(dot([inf, 1.0], [0.0, 1.0]))  # inf * 0
    assert math.isnan(dot([1.0], [1.0], c=nan))
    assert dot([1.0], [1.0], c=-inf) == -inf
    zero = dot([0.0, -0.0], [1.0, 1.0], c=-0.0)
    assert zero == 0 and not math.copysign(1, zero) < 0  # nothing left: +0
    # exponent overflow of the block sum is inf even with truncation
    t = 2.0**64
    assert lp.dot(np.array([t] * 4), np.array([t] * 4), profile="nvidia-a100-tf32") == inf


def test_promotion_matches_independent_computation():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 256)).astype(np.float32) * 5
    B = rng.standard_normal((256, 4)).astype(np.float32)
    got = lp.matmul(A, B, profile="nvidia-h100-fp8-promote128")
    exp = np.zeros((3, 4), np.float32)
    for k0 in (0, 128):
        As, Bs = A[:, k0 : k0 + 128], B[k0 : k0 + 128]
        sa = (np.abs(As).max(axis=1) / np.float32(448)).astype(np.float32)
        sb = np.float32(np.abs(Bs).max() / np.float32(448))
        Aq = lp.quantize(As / sa[:, None], "e4m3fn", saturate=True)
        Bq = lp.quantize(Bs / sb, "e4m3fn", saturate=True)
        part = lp.matmul(Aq, Bq, profile="nvidia-h100-fp8")  # tensor core from zero, 14-bit partial
        scale = (sa[:, None] * sb).astype(np.float32)
        exp = (exp + (scale.astype(np.float64) * part).astype(np.float32)).astype(np.float32)
    assert np.array_equal(got.view(np.uint32), exp.view(np.uint32))
    rel = np.abs(got - A.astype(np.float64) @ B) / np.abs(A.astype(np.float64) @ B).max()
    assert rel.max() < 0.05


def probe_fn(profile, big_half, fmt=None, out=None):
    """A summation function over products v = a * b for reveal_order (b = big_half at the probes)."""
    kw = {} if fmt is None else {"a_format": fmt, "b_format": fmt}
    if out:
        kw["out_format"] = out

    def fn(v):
        b = np.where(np.abs(v) > 1, big_half, 1.0)
        return lp.dot(v / b, b, profile=profile, **kw)

    return fn


@pytest.mark.parametrize(
    "profile,F,n",
    [
        ("nvidia-v100-fp16", 4, 12),
        ("nvidia-a100-fp16", 8, 20),
        ("nvidia-h100-fp16", 16, 32),
        ("nvidia-ada-tf32", 4, 10),
    ],
)
def test_reveal_order_block_fma(profile, F, n):
    # n is small enough that every partial sum of ones stays below the alignment window of 2^30
    tree = lp.reveal_order(probe_fn(profile, 2.0**15), n, big=2.0**30)
    assert tree == SumTree.blocked(n, F)


def test_reveal_order_fp8_wgmma_and_mma_sync():
    t = lp.reveal_order(probe_fn("nvidia-h100-fp8", 2.0**15, "e5m2"), 40, big=2.0**30)
    assert t == SumTree.blocked(40, 32)
    # mma.sync: per 32 products, k mod 4 in {0,1} then {2,3} as chained 16-blocks, then c (the
    # previous instruction's result) in a separate addition
    t = lp.reveal_order(probe_fn("nvidia-b200-fp8", 2.0**15, "e5m2"), 64, big=2.0**30)

    def instr(k0):
        g0 = tuple(k for k in range(k0, k0 + 32) if k % 4 in (0, 1))
        g1 = tuple(k for k in range(k0, k0 + 32) if k % 4 in (2, 3))
        return (g0,) + g1

    assert t == SumTree.from_nested((instr(0), instr(32)))


@pytest.mark.parametrize(
    "kw,expected",
    [
        ({"acc": "e6m9"}, SumTree.sequential(20)),
        ({"acc": "e6m9", "chunk": 4}, SumTree.chunked(20, 4)),
        ({"acc": "fp32", "chunk": 6}, SumTree.chunked(20, 6)),
        ({"acc": "bf16", "order": "pairwise"}, SumTree.pairwise(20)),
        ({"acc": "bf16", "order": "pairwise"}, None),
    ],
)
def test_reveal_order_per_add(kw, expected):
    n = 20 if expected is not None else 13
    tree = lp.reveal_order(lambda v: lp.sum(v, **kw), n, dtype=np.float64)
    assert tree == (expected if expected is not None else SumTree.pairwise(13))


@pytest.mark.parametrize(
    "profile", ["nvidia-h100-fp8", "nvidia-a100-fp16", "nvidia-v100-fp16", "nvidia-a100-tf32", "nvidia-h100-bf16"]
)
def test_kernel_equals_reference_on_every_isa(use_isa, profile):
    """Block-FMA matmul (lanes of 16 outputs, partial panels, K not a multiple of the block) against
    the exact reference, bit for bit: wide magnitudes, zeros, the input formats' subnormals, and c."""
    rng = np.random.default_rng(17)
    m = lp.load_profile(profile).model()
    M, K, N = 3, 45, 21
    A = rng.standard_normal((M, K)) * np.exp2(rng.integers(-12, 8, (M, K)))
    B = rng.standard_normal((K, N)) * np.exp2(rng.integers(-12, 8, (K, N)))
    A[0, :7] = 0.0
    B[:, 3] = float(m.a_format.min_subnormal) * 3
    A, B = lp.quantize(A, m.a_format), lp.quantize(B, m.b_format)
    C = lp.quantize(rng.standard_normal((M, N)) * 4, m.out_format)
    got = lp.matmul(A, B, c=C, profile=profile)
    for i in range(M):
        for j in range(N):
            want = R.blockfma_dot(list(map(float, A[i])), list(map(float, B[:, j])), float(C[i, j]), m)
            assert got[i, j] == want or (math.isnan(want) and math.isnan(got[i, j])), (i, j, got[i, j], want)
            assert math.copysign(1.0, got[i, j]) == math.copysign(1.0, want)
