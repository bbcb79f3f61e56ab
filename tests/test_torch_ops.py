"""lowprec.torch.quantize: the custom op, its autograd (straight-through, backward format), both
backends against lowprec.quantize bit for bit, torch.compile, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lowprec as lp
import lowprec.torch as lpt
from lowprec.torch._ops import _quantize_op, fmt_from_key, fmt_key


def bits(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().numpy()
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


def sample(n: int = 4000, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)
    return torch.tensor(x, dtype=dtype)


MODES = ["nearest", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic", "stochastic_equal"]
FORMATS = ["e4m3fn", "e5m2", "e4m3fnuz", "bf16", "fp16", "e6m9", lp.FloatFormat(3, 2, subnormals=False), "int8"]


@pytest.mark.parametrize("backend", ["kernel", "torch"])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_matches_numpy_quantize(fmt, mode, backend):
    x = sample()
    y = lpt.quantize(x, fmt, mode, seed=123, backend=backend)
    ref = lp.quantize(x.numpy(), fmt, mode, seed=123)
    assert np.array_equal(bits(y), ref.view(np.uint32))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_round_through_float32(dtype):
    x = sample(dtype=dtype)
    for fmt in ("e4m3fn", "e5m2", "e3m2"):
        y = lpt.quantize(x, fmt)
        assert y.dtype == dtype
        ref = lp.quantize(x.float().numpy(), fmt)
        got = y.float().numpy()
        nan = np.isnan(ref)
        assert np.array_equal(np.isnan(got), nan)  # NaN payloads aside
        assert np.array_equal(got[~nan].view(np.uint32), ref[~nan].view(np.uint32))


def test_sr_bits_and_saturate():
    x = sample() * 1e3
    for sat in (True, False):
        y = lpt.quantize(x, "e4m3", "stochastic", sr_bits=5, saturate=sat, seed=9)
        ref = lp.quantize(x.numpy(), "e4m3", "stochastic", sr_bits=5, saturate=sat, seed=9)
        assert np.array_equal(bits(y), ref.view(np.uint32))


def test_fresh_memory_and_input_untouched():
    x = torch.tensor([1.0, 2.0, 3.0])
    before = x.clone()
    y = lpt.quantize(x, "fp32")
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)
    y.add_(1)
    assert torch.equal(x, before)


def test_non_contiguous_input():
    x = sample(4096).reshape(64, 64).t()
    y = lpt.quantize(x, "e5m2", "stochastic", seed=3)
    ref = lp.quantize(np.ascontiguousarray(x.numpy()), "e5m2", "stochastic", seed=3)
    assert y.shape == x.shape
    assert np.array_equal(bits(y.contiguous()).ravel(), ref.view(np.uint32).ravel())


def test_seed_none_follows_torch_generator():
    x = sample()
    torch.manual_seed(5)
    a = lpt.quantize(x, "e4m3fn", "stochastic")
    b = lpt.quantize(x, "e4m3fn", "stochastic")
    torch.manual_seed(5)
    a2 = lpt.quantize(x, "e4m3fn", "stochastic")
    assert np.array_equal(bits(a), bits(a2))
    assert not np.array_equal(bits(a), bits(b))  # 4000 elements, most inexact: equal draws are impossible in practice


def test_straight_through_gradient():
    x = sample(100).requires_grad_()
    y = lpt.quantize(x, "e4m3fn")
    g = torch.linspace(-3, 3, 100)
    y.backward(g)
    assert torch.equal(x.grad, g)


def test_backward_format_rounds_the_gradient():
    x = sample(500).requires_grad_()
    g = sample(500, seed=1)
    lpt.quantize(x, "e4m3fn", backward="e5m2", backward_rounding="stochastic", backward_seed=77).backward(g)
    ref = lp.quantize(g.numpy(), "e5m2", "stochastic", seed=77)
    assert np.array_equal(bits(x.grad), ref.view(np.uint32))


def test_double_backward_passes_through():
    x = sample(10).requires_grad_()
    y = lpt.quantize(x, "e4m3fn", backward="e5m2")
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert torch.equal(gx, torch.ones(10))


def test_format_keys_round_trip():
    for f in [lp.format(n) for n in ("e4m3fn", "bf16", "int8", "e8m0fnu")] + [
        lp.FloatFormat(6, 9, subnormals=False),
        lp.FloatFormat(4, 3, bias=11, specials="fn"),
        lp.FixedFormat(12, 6, signed=False),
    ]:
        assert fmt_from_key(fmt_key(f)) == f


def test_opcheck():
    x = (sample(64) / 2**22).reshape(8, 8).requires_grad_()  # no overflow: NaN never equals NaN in assert_close
    seed = torch.tensor(3)
    for bwd in ("", "e5m2"):
        args = (x, "e4m3fn", "stochastic", -1, 0, seed, bwd, "nearest", 0, seed, "auto")
        torch.library.opcheck(_quantize_op, args)


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))

    def f(x):
        h = lpt.quantize(x, "e4m3fn", backward="e5m2")
        h = model[1](model[0](h))
        h = lpt.quantize(h, "e5m2", "stochastic", seed=11)
        return model[2](h)

    x = (sample(8 * 16) / 2**22).reshape(8, 16)
    eager = f(x)
    eager.sum().backward()
    g_eager = model[0].weight.grad.clone()
    model.zero_grad()
    compiled = torch.compile(f, backend="inductor", fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.equal(out, eager)
    assert torch.equal(model[0].weight.grad, g_eager)


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"x": [1.0]}, TypeError, "x must be a torch.Tensor"),
        ({"x": torch.tensor([1, 2])}, TypeError, "float32, float64"),
        ({"fmt": "nosuch"}, ValueError, "fmt"),
        ({"fmt": "e9m9"}, ValueError, "float32"),
        ({"fmt": 3}, TypeError, "fmt"),
        ({"rounding": "sideways"}, ValueError, "rounding"),
        ({"backend": "gpu"}, ValueError, "backend"),
        ({"sr_bits": 4}, ValueError, "sr_bits"),
        ({"saturate": 1}, TypeError, "saturate"),
        ({"backward": "nope"}, ValueError, "backward"),
        ({"seed": -1, "rounding": "stochastic"}, ValueError, "seed"),
        ({"seed": 1.5, "rounding": "stochastic"}, TypeError, "seed"),
        ({"x": torch.ones(3, dtype=torch.bfloat16), "fmt": "fp16"}, ValueError, "does not fit"),
        ({"x": torch.ones(3, dtype=torch.float16), "fmt": "bf16"}, ValueError, "does not fit"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"x": torch.ones(3), "fmt": "e4m3fn"} | kwargs
    x = args.pop("x")
    fmt = args.pop("fmt")
    with pytest.raises(exc, match=match):
        lpt.quantize(x, fmt, **args)
