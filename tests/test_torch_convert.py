"""Model conversion (emulate_/restore_), per-layer configs, and the scoped emulation() context."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lowprec as lp
import lowprec.torch as lpt
from lowprec.torch import EmulatedConv2d, EmulatedLinear, EmulationConfig
from lowprec.torch import functional as LF

IBM = EmulationConfig.from_profile("ibm-fp8-2018")
ACC8 = IBM.with_model(acc="e5m2").replace(name="acc8")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        h = self.bn(self.conv(x)).amax(1).flatten(1)
        return self.head(torch.relu(self.body(h)))


def make() -> Net:
    torch.manual_seed(0)
    return Net()


def x_in() -> torch.Tensor:
    return torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_emulate_converts_in_place_and_restores():
    net = make()
    ref = net(x_in())
    params = {n: p for n, p in net.named_parameters()}
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    layers = {n: m for n, m in net.named_modules()}
    assert lpt.emulate_(net, "ibm-fp8-2018") is net
    assert type(net.conv) is EmulatedConv2d and type(net.head) is EmulatedLinear
    assert type(net.bn) is nn.BatchNorm2d
    assert all(m is layers[n] for n, m in net.named_modules())  # same objects
    assert all(p is params[n] for n, p in net.named_parameters())
    assert net.state_dict().keys() == sd.keys()
    assert set(lpt.emulated_layers(net)) == {"conv", "body.0", "body.2", "head"}
    emu = net(x_in())
    assert not torch.equal(emu, ref)
    lpt.emulate_(net, "ibm-fp8-2018")  # idempotent
    assert torch.equal(net(x_in()), emu)
    lpt.restore_(net)
    assert type(net.conv) is nn.Conv2d and type(net.head) is nn.Linear
    assert not hasattr(net.head, "emulation")
    assert torch.equal(net(x_in()), ref)


def test_emulated_forward_equals_functional():
    net = make()
    lpt.emulate_(net, IBM)
    x = torch.randn(3, 64)
    assert torch.equal(net.body[0](x), LF.linear(x, net.body[0].weight, net.body[0].bias, IBM))


def test_per_layer_precedence():
    net = make()
    cfg = {"head": ACC8, "re:body\\..*": None, "re:.*": IBM, "_default": ACC8}
    lpt.emulate_(net, cfg)
    got = lpt.emulated_layers(net)
    assert got["head"] == ACC8  # exact name beats the regexes
    assert "body.0" not in got and "body.2" not in got  # first matching regex: None keeps float32
    assert got["conv"] == IBM  # a regex beats _default


def test_default_only_and_none_restores():
    net = make()
    lpt.emulate_(net, {"_default": IBM})
    assert len(lpt.emulated_layers(net)) == 4
    lpt.emulate_(net, {"head": None})
    assert "head" not in lpt.emulated_layers(net) and type(net.head) is nn.Linear
    assert len(lpt.emulated_layers(net)) == 3


def test_filter_fn():
    net = make()
    lpt.emulate_(net, IBM, filter_fn=lambda m, name: isinstance(m, nn.Linear) and name != "head")
    assert set(lpt.emulated_layers(net)) == {"body.0", "body.2"}


def test_unknown_layer_name_is_an_error():
    with pytest.raises(ValueError, match="not modules of the model"):
        lpt.emulate_(make(), {"bodyy.0": IBM})


def test_unsupported_layer_warns_and_is_skipped():
    net = make()
    with pytest.warns(UserWarning, match="BatchNorm2d.*skipped"):
        lpt.emulate_(net, {"bn": IBM})
    assert lpt.emulated_layers(net) == {}


def test_regex_matching_nothing_warns():
    with pytest.warns(UserWarning, match="matches no"):
        lpt.emulate_(make(), {"re:decoder.*": IBM})


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        lpt.emulate_(object(), IBM)
    with pytest.raises(ValueError, match="unknown profile"):
        lpt.emulate_(make(), "no-such-accelerator")
    with pytest.raises(TypeError, match="config keys"):
        lpt.emulate_(make(), {3: IBM})
    with pytest.raises(ValueError, match="regular expression"):
        lpt.emulate_(make(), {"re:(": IBM})
    with pytest.raises(TypeError, match="filter_fn"):
        lpt.emulate_(make(), IBM, filter_fn=3)
    with pytest.raises(TypeError, match="model"):
        lpt.restore_("net")


def test_state_dict_to_copy_and_hooks():
    net = make()
    calls = []
    net.head.register_forward_hook(lambda m, i, o: calls.append(1))
    lpt.emulate_(net, IBM)
    net(x_in())
    assert calls == [1]
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    fresh = make()
    lpt.emulate_(fresh, IBM)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf))
    assert torch.equal(fresh(x_in()), net(x_in()))
    twin = copy.deepcopy(net)
    assert type(twin.head) is EmulatedLinear and torch.equal(twin(x_in()), net(x_in()))
    net64 = copy.deepcopy(net).to(torch.float64)
    assert net64(x_in().double()).dtype == torch.float64
    assert net.to("cpu") is net


def test_emulated_layers_constructible_directly():
    lin = EmulatedLinear(8, 3, config="ibm-fp8-2018")
    conv = EmulatedConv2d(2, 3, 3, padding=1, padding_mode="reflect", config=IBM)
    assert lin(torch.randn(4, 8)).shape == (4, 3)
    assert conv(torch.randn(1, 2, 5, 5)).shape == (1, 3, 5, 5)
    assert "emulation=ibm-fp8-2018" in repr(lin)
    with pytest.raises(ValueError, match="config"):
        EmulatedLinear(8, 3, config=None)


def test_emulation_context():
    x, w = torch.randn(6, 64), torch.randn(10, 64)
    with lpt.emulation(IBM):
        a = F.linear(x, w)
        b = x @ w.T
        c = torch.matmul(x, w.T)
        d = torch.mm(x, w.T)
        e = torch.bmm(x[None], w.T[None])[0]
        cv = F.conv2d(torch.ones(1, 1, 4, 4), torch.ones(2, 1, 3, 3))
        i = torch.ones(2, 2, dtype=torch.int64) @ torch.ones(2, 2, dtype=torch.int64)  # not floating: plain
    ref = lp.matmul(x.numpy(), w.T.numpy(), model=IBM.forward.model)
    for t in (a, b, c, d, e):
        assert np.array_equal(t.numpy().view(np.uint32), ref.view(np.uint32))
    assert cv.shape == (1, 2, 2, 2) and torch.equal(i, torch.full((2, 2), 2))
    assert torch.equal(F.linear(x, w), x @ w.T)  # outside: plain torch again
    assert not np.array_equal((x @ w.T).numpy(), ref)


def test_emulation_context_gradients_and_seed():
    cfg = IBM.with_model(rounding="stochastic")
    x = torch.randn(6, 64, requires_grad=True)
    w = torch.randn(10, 64)
    with lpt.emulation(cfg, seed=100):
        y1 = F.linear(x, w)
        y2 = F.linear(x, w)
    assert torch.equal(y1, LF.linear(x, w, None, cfg, seed=100))
    assert torch.equal(y2, LF.linear(x, w, None, cfg, seed=103))
    (y1.sum() + y2.sum()).backward()
    assert x.grad is not None and x.grad.shape == x.shape
    with pytest.raises(TypeError, match="mapping"):
        lpt.emulation({"_default": IBM})
    with pytest.raises(ValueError, match="seed"):
        lpt.emulation(IBM, seed=-1)


def test_no_warning_for_normal_conversion():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lpt.emulate_(make(), {"re:body.*": IBM, "_default": ACC8})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = make()
    lpt.emulate_(net, IBM.with_mode("operands"))
    x = x_in()
    cpu = net(x)
    gpu = net.to("cuda")(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu)  # float32 GEMMs on different BLAS: close, not bit-equal
    t = torch.randn(1000)
    for mode in ("nearest", "stochastic"):
        a = lpt.quantize(t, "e4m3fn", mode, seed=4)
        b = lpt.quantize(t.cuda(), "e4m3fn", mode, seed=4).cpu()
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))


@pytest.mark.parametrize(
    ("profile", "mode"), [("nvidia-h100-fp8", "exact"), ("ibm-fp8-2018", "chunk"), ("ibm-fp8-2018", "operands")]
)
def test_compiled_converted_model_equals_eager(profile, mode):
    """torch.compile(fullgraph=True) of a converted model: the same outputs and gradients, bit for bit."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    lpt.emulate_(model, EmulationConfig.from_profile(profile, mode=mode))
    twin = copy.deepcopy(model)
    x = torch.randn(2, 3, 6, 6)
    torch.manual_seed(1)
    y = model(x)
    y.sum().backward()
    compiled = torch.compile(twin, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    yc = compiled(x)
    yc.sum().backward()
    assert torch.equal(yc, y)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(q.grad, p.grad)
    torch.compiler.reset()
