"""LowPrecisionOptimizer: stored tensors in their formats, stochastic-rounding updates (the weight
update swamping example of specs/fp8-training.md section 4), loss scaling, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lowprec as lp
from lowprec.rounding import Rounding
from lowprec.torch import LossScaler, LowPrecisionOptimizer


def in_format(t: torch.Tensor, fmt: str) -> bool:
    a = t.detach().numpy()
    return np.array_equal(lp.quantize(a, fmt), a)


def small_update_run(rounding: str, n: int = 256, steps: int = 2000) -> torch.Tensor:
    """w = 1.0 in (1,6,9), SGD lr 1, every step w <- w + 1e-4 (far below half an ulp, 2**-10)."""
    p = torch.nn.Parameter(torch.ones(n))
    opt = LowPrecisionOptimizer(torch.optim.SGD([p], lr=1.0), weight="e6m9", rounding=rounding, seed=5)
    g = torch.full((n,), -1e-4)
    for _ in range(steps):
        p.grad = g.clone()
        opt.step()
    return p.detach()


def test_nearest_swamps_small_updates():
    assert torch.equal(small_update_run("nearest", n=16, steps=200), torch.ones(16))


def test_stochastic_rounding_keeps_small_updates():
    w = small_update_run("stochastic")
    expected = 1.0 + 2000 * float(np.float32(1e-4))  # 1.2
    # Each element: 2000 steps, P(up) = 1e-4 / 2**-9 = 0.0512, ulp 2**-9 -> sd 0.0193;
    # the mean of 256 elements has sd 0.0012. |mean - 1.2| < 0.012 (10 sd) fails with p < 1e-20.
    assert abs(w.mean().item() - expected) < 0.012
    assert in_format(w, "e6m9")


def test_weights_and_state_stay_in_their_formats():
    torch.manual_seed(0)
    model = torch.nn.Linear(20, 5)
    opt = LowPrecisionOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), weight="e5m2", momentum="e6m9", grad="e4m3fn"
    )
    assert in_format(model.weight, "e5m2")  # rounded at construction
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 20)).pow(2).mean().backward()
        opt.step()
    for p in model.parameters():
        assert in_format(p, "e5m2")
        assert in_format(opt.state[p]["momentum_buffer"], "e6m9")
        assert p.dtype == torch.float32 and opt.state[p]["momentum_buffer"].dtype == torch.float32


def test_adam_state_rounded():
    p = torch.nn.Parameter(torch.randn(50))
    opt = LowPrecisionOptimizer(torch.optim.Adam([p], lr=1e-2), weight="bf16", state="bf16")
    for _ in range(3):
        p.grad = torch.randn(50)
        opt.step()
    assert in_format(p, "bf16")
    assert in_format(opt.state[p]["exp_avg"], "bf16") and in_format(opt.state[p]["exp_avg_sq"], "bf16")


def test_master_copy_accumulates_what_the_weights_cannot_hold():
    p = torch.nn.Parameter(torch.ones(4))
    opt = LowPrecisionOptimizer(
        torch.optim.SGD([p], lr=1.0), weight="e5m2", master="fp32", rounding="nearest", master_rounding="nearest"
    )
    for _ in range(100):  # +0.01 per step: below e5m2's half ulp at 1 (0.125), kept by the fp32 master
        p.grad = torch.full((4,), -0.01)
        opt.step()
    master = opt.master[p]
    assert abs(master[0].item() - 2.0) < 1e-4
    assert torch.equal(p.detach(), torch.full((4,), 2.0))  # e5m2 rounding of ~2.0


def test_update_equals_plain_sgd_without_formats():
    torch.manual_seed(1)
    a, b = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    b.load_state_dict(a.state_dict())
    lp_opt = LowPrecisionOptimizer(torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), loss_scale=1024)
    ref = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(4):
        x = torch.randn(5, 6)
        lp_opt.zero_grad()
        ref.zero_grad()
        lp_opt.backward(a(x).square().mean())
        b(x).square().mean().backward()
        lp_opt.step()
        ref.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)  # float64 update vs float32 update


def test_overflow_skips_the_step_and_backs_off():
    p = torch.nn.Parameter(torch.ones(3))
    opt = LowPrecisionOptimizer(torch.optim.SGD([p], lr=0.1), loss_scale="dynamic")
    s0 = opt.loss_scale
    p.grad = torch.tensor([1.0, float("inf"), 0.0])
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))
    assert opt.skipped_steps == 1 and opt.steps == 0 and opt.loss_scale == s0 / 2
    static = LowPrecisionOptimizer(torch.optim.SGD([p], lr=0.1), loss_scale=1000)
    p.grad = torch.tensor([float("nan"), 0.0, 0.0])
    static.step()
    assert static.skipped_steps == 1 and static.loss_scale == 1000
    assert torch.equal(p.detach(), torch.ones(3))


def test_dynamic_scale_grows_after_clean_steps():
    p = torch.nn.Parameter(torch.ones(3))
    opt = LowPrecisionOptimizer(torch.optim.SGD([p], lr=0.1), loss_scale=LossScaler(8.0, interval=3))
    for _ in range(3):
        p.grad = torch.ones(3)
        opt.step()
    assert opt.loss_scale == 16.0
    assert opt.scale_loss(torch.tensor(2.0)).item() == 32.0


def test_state_dict_round_trip_and_reproducibility():
    def run(resume: bool) -> torch.Tensor:
        torch.manual_seed(3)
        model = torch.nn.Linear(10, 4)
        kw = {"weight": "e6m9", "state": "e6m9", "master": "bf16"}
        opt = LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), seed=9, **kw)
        xs = [torch.randn(6, 10, generator=torch.Generator().manual_seed(i)) for i in range(4)]
        for i, x in enumerate(xs):
            if resume and i == 2:
                sd, msd = opt.state_dict(), model.state_dict()
                model = torch.nn.Linear(10, 4)
                model.load_state_dict(msd)
                opt = LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), **kw)
                opt.load_state_dict(sd)
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        return model.weight.detach()

    assert torch.equal(run(False), run(True))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"optimizer": "sgd"}, TypeError, "optimizer"),
        ({"weight": "e99"}, ValueError, "weight"),
        ({"grad": 1.5}, TypeError, "grad"),
        ({"rounding": "sideways"}, ValueError, "rounding"),
        ({"loss_scale": "auto"}, TypeError, "loss_scale"),
        ({"loss_scale": -1.0}, ValueError, "scale"),
        ({"state": "e6m9", "momentum": "e6m9"}, ValueError, "momentum"),
        ({"seed": -3}, ValueError, "seed"),
    ],
)
def test_bad_input(kwargs, exc, match):
    p = torch.nn.Parameter(torch.ones(2))
    opt = kwargs.pop("optimizer", torch.optim.SGD([p], lr=0.1))
    with pytest.raises(exc, match=match):
        LowPrecisionOptimizer(opt, **kwargs)


def test_loss_scaler_bad_input():
    with pytest.raises(ValueError, match="backoff"):
        LossScaler(backoff=2.0)
    with pytest.raises(ValueError, match="interval"):
        LossScaler(interval=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_rounding_equals_one_call_per_tensor(dtype):
    """The step rounds all tensors of a role in one kernel call; each must get the bits of its own
    call (its own seed, element indices from 0), including when dtypes are mixed (no batching)."""
    model = torch.nn.Sequential(torch.nn.Linear(7, 33), torch.nn.Linear(33, 3))
    opt = LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), weight="e5m2", seed=11)
    opt.steps = 3
    gen = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=gen, dtype=dtype) for s in [(33, 7), (33,), (3, 33), (3,)]]
    for role in ("weight", "grad"):
        opt.formats[role] = lp.format("e4m3fn")
        opt.roundings[role] = Rounding.STOCHASTIC
        many = opt._round_many(ts, role, [0, 1, 2, 3])
        for t, i, got in zip(ts, [0, 1, 2, 3], many, strict=True):
            assert torch.equal(got, opt._round(t, role, i))
        mixed = [ts[0], ts[1].to(torch.float64 if dtype == torch.float32 else torch.float32)]
        for t, i, got in zip(mixed, [0, 1], opt._round_many(mixed, role, [0, 1]), strict=True):
            assert torch.equal(got, opt._round(t, role, i))


class ShadowReference:
    """The step of LowPrecisionOptimizer written out plainly: a float64 copy of every stored tensor,
    the same update rule on float64 shadow parameters, and lp.quantize (NumPy API) for every
    rounding, with the documented streams (tensor i of step t, role r: seed + ((t * n + i) * 4 + r + 1)
    * golden). Stored values then go back to the parameters' dtype."""

    GOLDEN = 0x9E3779B97F4A7C15
    ROLES = {"grad": 0, "weight": 1, "master": 2, "state": 3}

    def __init__(self, make_opt, params, formats, roundings, scale, seed):
        self.params = list(params)
        self.shadow = [torch.nn.Parameter(p.detach().double().clone()) for p in self.params]
        self.opt = make_opt(self.shadow)
        self.formats, self.roundings, self.scale, self.seed = formats, roundings, scale, seed
        self.steps = 0
        n = len(self.params)
        self.master = None
        if formats.get("master"):
            self.master = [self.round(s.detach(), "master", i, 0, n) for i, s in enumerate(self.shadow)]
        for i, p in enumerate(self.params):
            src = self.master[i] if self.master else self.shadow[i].detach()
            w = self.round(src, "weight", i, 0, n)
            with torch.no_grad():
                p.copy_(w)

    def round(self, t, role, i, step, n):
        fmt = self.formats.get(role)
        if fmt is None:
            return t.clone()
        s = (self.seed + ((step * n + i) * 4 + self.ROLES[role] + 1) * self.GOLDEN) % 2**64
        out = lp.quantize(t.detach().numpy().astype(np.float64), fmt, self.roundings[role], seed=s)
        return torch.from_numpy(np.asarray(out))

    @torch.no_grad()
    def step(self):
        n = len(self.params)
        grads = [p.grad.detach().double() * (1.0 / self.scale) for p in self.params]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            return
        for i, (p, s) in enumerate(zip(self.params, self.shadow, strict=True)):
            s.copy_(self.master[i] if self.master else p.detach().double())
            s.grad = self.round(grads[i], "grad", i, self.steps, n)
            for v in self.opt.state[s].values():  # stored state, in the parameter's dtype
                if torch.is_tensor(v) and v.shape == s.shape:
                    v.copy_(v.to(p.dtype).double())
        self.opt.step()
        for i, (p, s) in enumerate(zip(self.params, self.shadow, strict=True)):
            new = s.detach()
            if self.master:
                self.master[i] = self.round(new, "master", i, self.steps, n).to(p.dtype).double()
                new = self.master[i]
            p.copy_(self.round(new, "weight", i, self.steps, n).to(p.dtype))
            for v in self.opt.state[s].values():
                if torch.is_tensor(v) and v.shape == s.shape:
                    v.copy_(self.round(v, "state", i, self.steps, n).to(p.dtype).double())
        self.steps += 1


@pytest.mark.parametrize(
    ("rule", "kw"),
    [
        ("sgd", {"weight": "e6m9", "state": "e6m9", "grad": "e5m2"}),
        ("sgd", {"weight": "e5m2", "master": "bf16", "state": "fp16", "grad": "e4m3fn"}),
        ("sgd", {"weight": "bf16"}),
        ("adam", {"weight": "e6m9", "state": "bf16", "grad": "e5m2", "rounding": "nearest"}),
        ("adam", {"weight": "fp16", "master": "fp32", "state": "e6m9"}),
    ],
)
def test_step_equals_shadow_reference(rule, kw):
    """Several steps of a small model, bit for bit against the plain float64-shadow formulation."""
    kw = dict(kw)
    rounding = kw.pop("rounding", "stochastic")

    def make_opt(params):
        if rule == "sgd":
            return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)
        return torch.optim.Adam(params, lr=1e-2)

    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(9, 17), torch.nn.ReLU(), torch.nn.Linear(17, 3))
    twin = [p.detach().clone() for p in model.parameters()]
    opt = LowPrecisionOptimizer(make_opt(model.parameters()), loss_scale=256, seed=21, rounding=rounding, **kw)
    fmts = {r: kw.get(r) for r in ("weight", "grad", "state", "master")}
    rnds = {r: rounding for r in ("weight", "state", "master")} | {"grad": "nearest"}
    ref_params = [torch.nn.Parameter(t) for t in twin]
    ref = ShadowReference(make_opt, ref_params, fmts, rnds, 256.0, 21)
    for p, q in zip(model.parameters(), ref_params, strict=True):
        assert torch.equal(p.detach(), q.detach())
    gen = torch.Generator().manual_seed(0)
    for step in range(5):
        x = torch.randn(11, 9, generator=gen)
        opt.zero_grad()
        opt.backward(model(x).square().mean())
        grads = [p.grad.clone() for p in model.parameters()]
        if step == 2:  # a skipped step: neither side moves
            grads[1][0] = float("inf")
            model[0].bias.grad[0] = float("inf")
        for q, g in zip(ref_params, grads, strict=True):
            q.grad = g
        opt.step()
        ref.step()
        for p, q in zip(model.parameters(), ref_params, strict=True):
            assert p.dtype == torch.float32
            assert torch.equal(p.detach().view(torch.int32), q.detach().view(torch.int32))
        for p, s in zip(model.parameters(), ref.shadow, strict=True):
            for k, v in opt.state[p].items():
                if torch.is_tensor(v) and v.shape == p.shape:
                    assert v.dtype == torch.float32
                    assert torch.equal(v, ref.opt.state[s][k].float()), k
        if ref.master:
            for p, m in zip(model.parameters(), ref.master, strict=True):
                assert torch.equal(opt.master[p], m.float())
    assert opt.skipped_steps == 1 and opt.steps == 4
