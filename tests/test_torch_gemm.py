"""Emulated GEMMs in torch: forward and both gradients equal lowprec.matmul bit for bit, every
emulation mode against its definition, convolution geometry, matmul shapes, and configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lowprec as lp
import lowprec.torch as lpt
from lowprec.torch import EmulationConfig, GemmConfig
from lowprec.torch import functional as LF


def bits(a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint64 if a.dtype == np.float64 else np.uint32)


def randn(*shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


IBM = EmulationConfig.from_profile("ibm-fp8-2018")
SR = lp.AccumModel(acc="e6m9", rounding="stochastic", chunk=16, a_format="e5m2", b_format="e4m3", out_format="bf16")
CONFIGS = {
    "ibm": IBM,
    "mixed": EmulationConfig(
        forward=IBM.forward,
        input_grad=GemmConfig(SR),
        weight_grad=GemmConfig(lp.AccumModel(acc="bf16", rounding="toward_zero", order="pairwise")),
    ),
    "h100-fp8": EmulationConfig.from_profile("nvidia-h100-fp8"),
    "mx": EmulationConfig.uniform(lp.AccumModel(acc="fp16", a_format="mxfp8_e4m3", b_format="mxfp6_e2m3")),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_linear_three_gemms_equal_lp_matmul(name):
    cfg = CONFIGS[name]
    x = randn(5, 7, 96, seed=1).requires_grad_()  # batch dims are flattened into M = 35
    w = randn(24, 96, seed=2).requires_grad_()
    b = randn(24, seed=3).requires_grad_()
    y = LF.linear(x, w, b, cfg, seed=41)
    dy = randn(*y.shape, seed=4)
    y.backward(dy)
    s_fwd, s_ig, s_wg = lpt.grad_seeds(41)
    X, W, DY = x.detach().reshape(35, 96).numpy(), w.detach().numpy(), dy.reshape(35, 24).numpy()
    ref_y = lp.matmul(X, W.T, model=cfg.forward.model, seed=s_fwd) + b.detach().numpy()
    assert np.array_equal(bits(y.reshape(35, 24)), bits(ref_y))
    assert np.array_equal(bits(x.grad.reshape(35, 96)), bits(lp.matmul(DY, W, model=cfg.input_grad.model, seed=s_ig)))
    assert np.array_equal(bits(w.grad), bits(lp.matmul(DY.T, X, model=cfg.weight_grad.model, seed=s_wg)))
    assert torch.equal(b.grad, dy.reshape(35, 24).sum(0))


def test_float32_config_is_plain_torch():
    x = randn(9, 20, seed=1).requires_grad_()
    w = randn(6, 20, seed=2).requires_grad_()
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    for cfg in (None, EmulationConfig(), GemmConfig(None), IBM.with_mode("float32")):
        y = LF.linear(x, w, None, cfg)
        y2 = F.linear(x2, w2)
        dy = randn(9, 6, seed=3)
        y.backward(dy)
        y2.backward(dy)
        assert torch.equal(y, y2) and torch.equal(x.grad, x2.grad) and torch.equal(w.grad, w2.grad)
        for t in (x, w, x2, w2):
            t.grad = None


def test_operands_mode_is_quantize_then_float32_gemm():
    cfg = IBM.with_mode("operands")
    x, w = randn(16, 64, seed=1), randn(8, 64, seed=2)
    y = LF.linear(x, w, None, cfg)
    q = lambda t: torch.from_numpy(lp.quantize(t.numpy(), "e5m2"))  # noqa: E731
    assert torch.equal(y, q(x) @ q(w).T)


def test_chunk_mode_definition():
    m = lp.AccumModel(acc="e6m9", chunk=32, a_format="e5m2", b_format="e5m2")
    x, w = randn(10, 80, seed=1), randn(7, 80, seed=2)
    y = LF.linear(x, w, None, EmulationConfig.uniform(m, mode="chunk"))
    xq = lp.quantize(x.numpy(), "e5m2")
    wq = lp.quantize(w.numpy(), "e5m2")
    xp = np.pad(xq, ((0, 0), (0, 16)))
    wp = np.pad(wq, ((0, 0), (0, 16)))
    s = None
    for c in range(3):  # float32 chunk sums (torch's), rounded to e6m9, then added with rounding
        part = (torch.from_numpy(xp[:, 32 * c : 32 * c + 32]) @ torch.from_numpy(wp[:, 32 * c : 32 * c + 32]).T).numpy()
        part = lp.quantize(part, "e6m9").astype(np.float64)
        s = part if s is None else lp.quantize(s + part, "e6m9")
    assert np.array_equal(bits(y), bits(s.astype(np.float32)))


def test_chunk_mode_needs_a_chunked_model():
    with pytest.raises(ValueError, match="chunk"):
        GemmConfig(lp.AccumModel(acc="e6m9"), mode="chunk")


def test_tensor_scaling_is_exact_power_of_two_scaling():
    m = lp.AccumModel(acc="fp32", a_format="e4m3fn", b_format="e4m3fn")
    x, w = randn(12, 40, seed=1) * 1e-3, randn(5, 40, seed=2) * 300
    y = LF.linear(x, w, None, EmulationConfig.uniform(m, scaling="tensor"))
    ka = int(np.floor(np.log2(448 / x.abs().max().item())))
    kb = int(np.floor(np.log2(448 / w.abs().max().item())))
    ref = lp.matmul(np.ldexp(x.numpy(), ka), np.ldexp(w.numpy(), kb).T, model=m)
    assert np.array_equal(bits(y), bits(np.ldexp(ref, -(ka + kb))))
    assert (x * 2.0**ka).abs().max() <= 448 < (x * 2.0 ** (ka + 1)).abs().max()


@pytest.mark.parametrize(
    ("xs", "ws", "kw"),
    [
        ((2, 3, 9, 9), (4, 3, 3, 3), {}),
        ((2, 3, 9, 9), (4, 3, 3, 3), {"stride": 2, "padding": 1}),
        ((1, 4, 10, 8), (6, 2, 3, 2), {"groups": 2, "dilation": (2, 1), "padding": (1, 0)}),
        ((3, 7, 7), (5, 3, 3, 3), {"padding": "same"}),
        ((2, 3, 6, 6), (2, 3, 2, 2), {"padding": "valid", "stride": (1, 2)}),
    ],
)
def test_conv2d_geometry_matches_torch(xs, ws, kw):
    # float64 tensors holding fp32 values, a 50-bit accumulator: only the indexing is under test here
    cfg = EmulationConfig.uniform(lp.AccumModel(acc=lp.FloatFormat(11, 49), a_format="fp32", b_format="fp32"))
    x = randn(*xs, seed=1).double().requires_grad_()
    w = randn(*ws, seed=2).double().requires_grad_()
    b = randn(ws[0], seed=3, dtype=torch.float64).requires_grad_()
    y = LF.conv2d(x, w, b, config=cfg, **kw)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y2 = F.conv2d(x2, w2, b2, **kw)
    assert y.shape == y2.shape
    torch.testing.assert_close(y, y2, rtol=1e-12, atol=1e-12)
    dy = randn(*y.shape, seed=4).double()  # fp32 values, as the GEMM operands
    y.backward(dy)
    y2.backward(dy)
    for a, b_ in ((x, x2), (w, w2), (b, b2)):
        torch.testing.assert_close(a.grad, b_.grad, rtol=1e-12, atol=1e-12)


def test_conv2d_is_the_im2col_gemm_bit_for_bit():
    x, w = randn(2, 3, 8, 8, seed=1), randn(5, 3, 3, 3, seed=2)
    y = LF.conv2d(x, w, None, padding=1, config=IBM)
    cols = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(2 * 64, 27).numpy()
    ref = lp.matmul(cols, w.reshape(5, 27).numpy().T, model=IBM.forward.model)
    assert np.array_equal(bits(y.permute(0, 2, 3, 1).reshape(128, 5)), bits(ref))


@pytest.mark.parametrize(
    ("sa", "sb"),
    [((6, 40), (40, 5)), ((3, 6, 40), (40, 5)), ((2, 1, 6, 40), (3, 40, 5)), ((40,), (40, 5)), ((6, 40), (40,))],
)
def test_matmul_shapes_and_values(sa, sb):
    a, b = randn(*sa, seed=1), randn(*sb, seed=2)
    y = LF.matmul(a, b, IBM)
    ref = lp.matmul(a.numpy(), b.numpy(), model=IBM.forward.model)
    assert y.shape == torch.matmul(a, b).shape
    assert np.array_equal(bits(y), bits(ref))


def test_matmul_gradients():
    a, b = randn(6, 40, seed=1).requires_grad_(), randn(40, 5, seed=2).requires_grad_()
    cfg = CONFIGS["mixed"]
    y = LF.matmul(a, b, cfg, seed=8)
    dy = randn(6, 5, seed=3)
    y.backward(dy)
    _, s_ig, s_wg = lpt.grad_seeds(8)
    A, B, DY = a.detach().numpy(), b.detach().numpy(), dy.numpy()
    assert np.array_equal(bits(a.grad), bits(lp.matmul(DY, B.T, model=cfg.input_grad.model, seed=s_ig)))
    assert np.array_equal(bits(b.grad), bits(lp.matmul(DY.T, A, model=cfg.weight_grad.model, seed=s_wg).T))


def test_bmm_and_emulated_gemm_opcheck():
    a, b = randn(3, 4, 16, seed=1), randn(3, 16, 2, seed=2)
    assert np.array_equal(bits(LF.bmm(a, b, IBM)), bits(lp.matmul(a.numpy(), b.numpy(), model=IBM.forward.model)))
    from lowprec.torch._gemm import _emulated_gemm_op, _json

    x = randn(6, 16, seed=1).requires_grad_()
    w = randn(3, 16, seed=2).requires_grad_()
    torch.library.opcheck(_emulated_gemm_op, (x, w, _json(IBM), torch.tensor(4)))


# --- configs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", lp.available_profiles())
def test_every_profile_round_trips(name):
    cfg = EmulationConfig.from_profile(name)
    assert cfg.name == name
    assert EmulationConfig.from_dict(cfg.to_dict()) == cfg
    assert EmulationConfig.from_json(cfg.to_json()) == cfg
    json.dumps(cfg.to_dict())  # plain data


def test_config_edits_and_round_trip():
    cfg = CONFIGS["mixed"].with_mode("operands").replace(name="x")
    assert all(g.mode.value == "operands" for g in cfg.gemms.values())
    assert EmulationConfig.from_json(cfg.to_json()) == cfg
    edge = IBM.with_model(a_format="e6m9", b_format="e6m9")
    assert edge.forward.model.a_format == lp.format("e6m9") and edge.forward.model.acc == lp.format("e6m9")
    assert GemmConfig(None).mode.value == "float32" and EmulationConfig().is_float32
    assert IBM.stochastic is False and CONFIGS["mixed"].stochastic is True


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: GemmConfig("e4m3"), TypeError, "model"),
        (lambda: GemmConfig(lp.AccumModel(), mode="fast"), ValueError, "mode"),
        (lambda: GemmConfig(lp.AccumModel(), scaling="row"), ValueError, "scaling"),
        (lambda: EmulationConfig(forward=3), TypeError, "forward"),
        (lambda: EmulationConfig.from_dict({"forward": {}, "backward": {}}), ValueError, "backward"),
        (lambda: EmulationConfig.from_dict({"name": "x"}), ValueError, "forward"),
        (lambda: EmulationConfig.from_dict([1]), TypeError, "mapping"),
        (lambda: GemmConfig.from_dict({"model": {"acc": "e6m9", "chunky": 1}}), ValueError, "chunky"),
        (lambda: EmulationConfig.from_json(b"{}"), TypeError, "str"),
        (lambda: EmulationConfig.from_profile("nvidia-h900"), ValueError, "unknown profile"),
        (lambda: lpt.as_config(3.5), TypeError, "config"),
    ],
)
def test_config_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: LF.linear(np.ones((2, 3)), torch.ones(4, 3), config=IBM), TypeError, "x must be a torch.Tensor"),
        (lambda: LF.linear(torch.ones(2, 3), torch.ones(4, 3, dtype=torch.float64), config=IBM), TypeError, "dtype"),
        (lambda: LF.linear(torch.ones(2, 3), torch.ones(4, 5), config=IBM), ValueError, "in_features"),
        (lambda: LF.linear(torch.ones(2, 3, dtype=torch.int64), torch.ones(4, 3), config=IBM), TypeError, "floating"),
        (lambda: LF.linear(torch.ones(2, 3), torch.ones(4, 3), config="no-such-profile"), ValueError, "profile"),
        (lambda: LF.conv2d(torch.ones(1, 3, 5, 5), torch.ones(2, 4, 3, 3), config=IBM), ValueError, "channels"),
        (
            lambda: LF.conv2d(torch.ones(1, 3, 5, 5), torch.ones(2, 3, 3, 3), padding="full", config=IBM),
            ValueError,
            "padding",
        ),
        (lambda: LF.conv2d(torch.ones(1, 3, 2, 2), torch.ones(2, 3, 3, 3), config=IBM), ValueError, "smaller"),
        (lambda: LF.matmul(torch.ones(2, 3), torch.ones(4, 5), IBM), ValueError, "do not match"),
        (lambda: LF.bmm(torch.ones(2, 3), torch.ones(3, 5), IBM), ValueError, "3-D"),
    ],
)
def test_functional_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_inputs_not_modified():
    x, w = randn(4, 32, seed=1), randn(3, 32, seed=2)
    x0, w0 = x.clone(), w.clone()
    LF.linear(x, w, None, IBM.with_model(operand_rounding="stochastic"), seed=1)
    LF.linear(x, w, None, IBM.with_mode("operands"))
    assert torch.equal(x, x0) and torch.equal(w, w0)


EAGER_CASES = [
    (prof, mode, scaling)
    for prof in ("ibm-fp8-2018", "nvidia-h100-fp8", "ocp-mxfp8-e4m3", "nvidia-a100-bf16")
    for mode in ("operands", "chunk", "exact")
    for scaling in ("none", "tensor")
    if not (mode == "chunk" and prof != "ibm-fp8-2018")  # block-FMA and MX models have no chunk length
]


@pytest.mark.parametrize("prof,mode,scaling", EAGER_CASES)
def test_eager_path_equals_the_custom_op(prof, mode, scaling):
    """Eager calls skip the custom-op dispatch and share deterministic rounded operands between the three
    GEMMs; outputs and both gradients must be the op's bits (2-D and batched operands, two seeds)."""
    from lowprec.torch._gemm import _emulated_gemm_op, _json, emulated_gemm

    cfg = EmulationConfig.from_profile(prof, mode=mode, scaling=scaling)
    for seed, (sx, sw) in [(0, ((32, 64), (48, 64))), (7, ((2, 5, 40), (2, 6, 40)))]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(*sx, generator=gen, requires_grad=True)
        w = torch.randn(*sw, generator=gen, requires_grad=True)
        y1 = emulated_gemm(x, w, cfg, torch.tensor(seed))
        g = torch.randn(y1.shape, generator=gen)
        y1.backward(g)
        g1 = (x.grad.clone(), w.grad.clone())
        x.grad = w.grad = None
        y2 = _emulated_gemm_op(x, w, _json(cfg), torch.tensor(seed))
        y2.backward(g)
        assert torch.isfinite(y1).all()
        assert torch.equal(y1, y2)
        assert torch.equal(g1[0], x.grad) and torch.equal(g1[1], w.grad)


def _operand_configs():
    """Operand-only configs: a profile's, and one whose gradient GEMMs round differently (nothing shared)."""
    ibm = EmulationConfig.from_profile("ibm-fp8-2018", mode="operands")
    fwd = lp.AccumModel(a_format="e4m3fn", b_format="e4m3fn", acc="fp32")
    ig = lp.AccumModel(a_format="e5m2", b_format="bf16", acc="fp32", operand_rounding="nearest_away")
    wg = lp.AccumModel(a_format="e3m4", b_format=None, acc="fp32", operand_rounding="toward_zero")
    mixed = EmulationConfig(GemmConfig(fwd, "operands"), GemmConfig(ig, "operands"), GemmConfig(wg, "operands"))
    return [ibm, mixed]


@pytest.mark.parametrize("cfg", _operand_configs(), ids=["ibm-fp8-2018", "mixed"])
@pytest.mark.parametrize("bias", [True, False])
def test_operand_linear_equals_the_custom_op(cfg, bias):
    """The eager path of operand-only layers (plain mm on rounded operands, roundings shared) gives the
    custom op's output and gradients (x, weight, bias) bit for bit, through the layer and LF.linear."""
    from lowprec.torch._gemm import _emulated_gemm_op, _json

    assert cfg._operand_plan is not None
    gen = torch.Generator().manual_seed(3)
    layer = torch.nn.Linear(40, 24, bias=bias)
    lpt.emulate_(layer, cfg)
    for shape in [(16, 40), (2, 5, 40)]:
        x = torch.randn(*shape, generator=gen, requires_grad=True)
        g = torch.randn(*shape[:-1], 24, generator=gen)
        y1 = layer(x) if len(shape) == 2 else LF.linear(x, layer.weight, layer.bias, cfg)
        y1.backward(g)
        got = [x.grad.clone(), layer.weight.grad.clone()] + ([layer.bias.grad.clone()] if bias else [])
        x.grad = None
        layer.zero_grad()
        y2 = _emulated_gemm_op(x.reshape(-1, 40), layer.weight, _json(cfg), torch.tensor(0)).reshape(y1.shape)
        if bias:
            y2 = y2 + layer.bias
        y2.backward(g)
        want = [x.grad, layer.weight.grad] + ([layer.bias.grad] if bias else [])
        assert torch.equal(y1, y2)
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b)
        x.grad = None
        layer.zero_grad()


def test_operand_plan_only_for_deterministic_operand_only_configs():
    base = EmulationConfig.from_profile("ibm-fp8-2018", mode="operands")
    assert base._operand_plan is not None
    plan = base._operand_plan
    assert plan.reuse_w and plan.reuse_x and plan.share_dy  # the profile rounds every operand alike
    m = base.forward.model
    assert EmulationConfig.from_profile("ibm-fp8-2018", mode="chunk")._operand_plan is None
    assert EmulationConfig.from_profile("ibm-fp8-2018", mode="exact")._operand_plan is None
    assert EmulationConfig.from_profile("ibm-fp8-2018", mode="operands", scaling="tensor")._operand_plan is None
    assert EmulationConfig.from_profile("ocp-mxfp8-e4m3", mode="operands")._operand_plan is None  # MX operands
    sr = m.replace(operand_rounding="stochastic")
    assert EmulationConfig(GemmConfig(sr, "operands"))._operand_plan is None
    out = m.replace(out_format="bf16")
    assert EmulationConfig(GemmConfig(out, "operands"))._operand_plan is None
    assert EmulationConfig(GemmConfig(m, "operands"), weight_grad=GemmConfig(m, "chunk"))._operand_plan is None


@pytest.mark.parametrize("cfg", _operand_configs(), ids=["ibm-fp8-2018", "mixed"])
def test_operand_conv_equals_the_general_path(cfg):
    """Convolutions (groups 1 and 2) on the operand-only eager path equal the general eager path
    (itself equal to the custom op): outputs and gradients of x, weight and bias, bit for bit."""
    import copy

    general = copy.copy(cfg)
    object.__setattr__(general, "_operand_plan", None)
    gen = torch.Generator().manual_seed(5)
    for groups in (1, 2):
        x = torch.randn(2, 4, 7, 6, generator=gen, requires_grad=True)
        w = torch.randn(6, 4 // groups, 3, 3, generator=gen, requires_grad=True)
        b = torch.randn(6, generator=gen, requires_grad=True)
        results = []
        for c in (cfg, general):
            y = LF.conv2d(x, w, b, padding=1, groups=groups, config=c)
            y.backward(torch.ones_like(y))
            results.append([y.detach()] + [t.grad.clone() for t in (x, w, b)])
            for t in (x, w, b):
                t.grad = None
        for a, g in zip(*results, strict=True):
            assert torch.equal(a, g)
