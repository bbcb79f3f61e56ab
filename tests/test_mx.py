"""OCP MX block formats and E8M0 scale conversion (specs/formats.md §1 E8M0 and §8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lowprec as lp

P = 2.0


def e8m0(x, rounding):
    return lp.quantize(np.array(x, np.float64), "e8m0fnu", rounding).tolist()


def test_e8m0_rules():
    assert e8m0([1.5, 3, 0.75], "nearest_away") == [2, 4, 1]  # half_up (ml_dtypes, torch casts)
    assert e8m0([3, 0.75, 1.5], "nearest") == [2, 0.5, 2]  # ties to the even code (gfloat)
    assert e8m0([3, 0.75, 1.9], "down") == [2, 0.5, 1]
    assert e8m0([3, 0.75, 1.01], "up") == [4, 1, 2]
    assert e8m0([1.45 * P**-127, P**-130], "nearest_away") == [P**-127, P**-127]  # below range -> 0x00
    out = e8m0([1.5 * P**127, P**127, 0.0, -3.0, np.inf, np.nan], "nearest_away")
    assert np.isnan(out[0]) and out[1] == P**127 and np.isnan(out[2:]).all()
    assert lp.encode(np.array([P**-127, 1.0, P**127, 0.0]), "e8m0fnu").tolist() == [0, 127, 254, 255]


def test_e8m0_matches_torch_cast_for_positive_inputs():
    rng = np.random.default_rng(0)
    x = np.ldexp(rng.uniform(1, 2, 100_000), rng.integers(-126, 127, 100_000)).astype(np.float32)
    theirs = torch.from_numpy(x).to(torch.float8_e8m0fnu).view(torch.uint8).numpy()
    assert (lp.encode(x, "e8m0fnu", "nearest_away") == theirs).all()


def block(values, n=32):
    v = np.zeros(n)
    v[: len(values)] = values
    return v


def test_floor_rule_clips_the_top_element():
    x = block([957.0, 1.0])
    enc = lp.mx_encode(x, "mxfp8_e4m3")
    assert enc.scales.tolist() == [127 + 9 - 8]  # floor(log2 957) = 9, emax_elem 8
    assert lp.mx_quantize(x, "mxfp8_e4m3")[:2].tolist() == [896.0, 1.0]
    x4 = block([7.0, 0.3])  # amax mantissa 1.75 > 1.5: clips to 6 * X
    assert lp.mx_quantize(x4, "mxfp4_e2m1")[:2].tolist() == [6.0, 0.5]


def test_edge_blocks():
    z = lp.mx_encode(np.zeros(32), "mxfp8_e4m3")
    assert z.scales.tolist() == [0] and (z.codes == 0).all()
    bad = block([1.0, np.nan])
    enc = lp.mx_encode(bad, "mxfp8_e5m2")
    assert enc.scales.tolist() == [255]
    assert np.isnan(lp.mx_decode(enc)).all() and np.isnan(lp.mx_quantize(block([np.inf]), "mxfp6_e3m2")).all()
    tiny = lp.mx_encode(block([P**-140]), "mxfp8_e4m3")  # exponent clamps at -127
    assert tiny.scales.tolist() == [0]
    huge = lp.mx_encode(block([P**200]), "mxfp8_e4m3")
    assert huge.scales.tolist() == [254]


@pytest.mark.parametrize(
    ("rule", "amax", "scale_exp"),
    [
        ("floor", 5.0, 2 - 8),
        ("ceil", 5.0, 3 - 8),
        ("rceil", 448.0, 0),  # amax / 448 = 1 exactly: no round-up
        ("rceil", 449.0, 1),
        ("even", 479.0, 0),  # 479 rounds to 480 at 3 mantissa bits... floor(log2 480) = 8 -> 0
        ("even", 510.0, 1),  # 510 rounds to 512 -> 9 - 8
    ],
)
def test_scale_rules(rule, amax, scale_exp):
    enc = lp.mx_encode(block([amax]), "mxfp8_e4m3", scale_rule=rule)
    assert enc.scales.tolist() == [127 + scale_exp]


def test_mxint8():
    x = block([1.0, -1.0, 0.5, 0.0078125, 1.99, 0.015625])
    got = lp.mx_quantize(x, "mxint8")
    # amax 1.99: floor(log2) = 0, X = 1; elements k/64 clamped to +-127/64
    assert got[:6].tolist() == [1.0, -1.0, 0.5, 0.0, 127 / 64, 1 / 64]  # 2^-7 is a tie at k = 0.5 -> 0


def test_matches_a_direct_construction_on_random_data():
    """Independent restatement of the OCP floor rule, element by element."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 96)) * np.exp2(rng.integers(-20, 20, (6, 1)))
    for name, elem in [("mxfp8_e4m3", "e4m3fn"), ("mxfp6_e2m3", "e2m3fn"), ("mxfp4_e2m1", "e2m1fn")]:
        got = lp.mx_quantize(x, name, axis=1)
        emax = lp.format(elem).emax
        want = np.empty_like(x)
        for i in range(6):
            for b in range(3):
                blk = x[i, 32 * b : 32 * b + 32]
                e = int(np.floor(np.log2(np.abs(blk).max()))) - emax
                want[i, 32 * b : 32 * b + 32] = lp.quantize(blk / P**e, elem, saturate=True) * P**e
        assert np.array_equal(got, want)
        enc = lp.mx_encode(x, name, axis=1)
        assert enc.codes.shape == x.shape and enc.scales.shape == (6, 3)
        assert np.array_equal(lp.mx_decode(enc, np.float64), got)


def test_axis_and_partial_blocks():
    x = np.random.default_rng(1).standard_normal((40, 5)).astype(np.float32)
    a0 = lp.mx_quantize(x, "mxfp8_e5m2", axis=0)
    assert a0.dtype == np.float32 and a0.shape == x.shape
    assert np.array_equal(a0, lp.mx_quantize(x.T, "mxfp8_e5m2", axis=1).T)
    enc = lp.mx_encode(x, "mxfp8_e5m2", axis=0)
    assert enc.scales.shape == (2, 5)  # 32 + a partial block of 8
    assert np.array_equal(lp.mx_decode(enc), a0)


def test_stochastic_elements_are_reproducible():
    x = np.random.default_rng(2).standard_normal(4096)
    a = lp.mx_quantize(x, "mxfp4_e2m1", rounding="stochastic", seed=3)
    b = lp.mx_quantize(x, "mxfp4_e2m1", rounding="stochastic", seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, lp.mx_quantize(x, "mxfp4_e2m1"))
