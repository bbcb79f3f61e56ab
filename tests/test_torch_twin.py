"""The torch twin of the rounding kernel equals ``lowprec.quantize`` bit for bit, on every device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lowprec as lp
from lowprec import _reference as ref
from lowprec.rounding import Rounding
from lowprec.torch._twin import quantize_twin, random_words_twin

SEED = 20260611
TORCH_THREADS = torch.get_num_threads()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's NaN casts inside lp.quantize
MODES = [(m, None) for m in Rounding] + [(Rounding.STOCHASTIC, r) for r in (1, 3, 13)]
MODE_IDS = [m.value + (f"-r{r}" if r else "") for m, r in MODES]
DTYPES = [np.float32, np.float64]

CAT = lp.catalogue()
FLOAT_FORMATS = {
    **{n: CAT[n] for n in ["e4m3fn", "e4m3fnuz", "e5m2", "e5m2fnuz", "e3m2fn", "e2m3fn", "e2m1fn"]},
    **{n: CAT[n] for n in ["bf16", "fp16", "tf32", "fp32", "fp64"]},
    "e6m9": lp.FloatFormat(6, 9),
    "e5m2-nosub": lp.FloatFormat(5, 2, subnormals=False),
    "e4m3fn-nosub": lp.FloatFormat(4, 3, subnormals=False, specials="fn"),
    "e5m2-none": lp.FloatFormat(5, 2, specials="none"),
    "e3m0-none": lp.FloatFormat(3, 0, specials="none"),
    "e5m0-fnuz": lp.FloatFormat(5, 0, specials="fnuz"),
    "e11m20": lp.FloatFormat(11, 20),
}
FIXED_FORMATS = {
    "int8": CAT["int8"],
    "uint4": CAT["uint4"],
    "q8.4": lp.FixedFormat(8, 4),
    "uq8.3": lp.FixedFormat(8, 3, signed=False),
    "q16.8-sym": lp.FixedFormat(16, 8, symmetric=True),
    "q12.-3-wrap": lp.FixedFormat(12, -3, overflow="wrap"),
    "q24.30-none": lp.FixedFormat(24, 30, overflow="none"),
    "q64.10": lp.FixedFormat(64, 10),
    "uq64-wrap": lp.FixedFormat(64, 0, signed=False, overflow="wrap"),
    "q16.1100": lp.FixedFormat(16, 1100),  # scaling overflows float64 for large inputs
}


def _fits(fmt: lp.FloatFormat, dtype) -> bool:
    lo, hi, man = (-126, 127, 23) if dtype == np.float32 else (-1022, 1023, 52)
    return fmt.man_bits <= man and lo <= fmt.emin and fmt.emax <= hi


FLOAT_CASES = [
    pytest.param(name, dt, id=f"{name}-{np.dtype(dt).name}")
    for name, f in FLOAT_FORMATS.items()
    for dt in DTYPES
    if _fits(f, dt)
]


# --- inputs ----------------------------------------------------------------------------------------------
def _ties(fmt: lp.FloatFormat, rng: np.random.Generator, n: int = 1000) -> np.ndarray:
    """Exact midpoints between neighbours of fmt (normal and subnormal), up to and past max."""
    m = fmt.man_bits
    e = rng.integers(fmt.emin, fmt.emax + 1, n)
    s = rng.integers(2**m, 2 ** (m + 1), n).astype(np.float64)
    sub = np.ldexp(rng.integers(0, 2**m, n) + 0.5, fmt.emin - m) if m else np.array([])
    with np.errstate(over="ignore"):
        normal = np.ldexp(s + 0.5, e - m)
        top = [fmt.max + np.ldexp(0.5, fmt.emax - m), fmt.max * 2, fmt.min_normal / 2, fmt.min_normal * 0.75]
    return np.concatenate([normal, sub, top, 1.0 + np.arange(8) * fmt.eps / 2])


def _with_neighbours(v: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(over="ignore"):
        v = v.astype(dtype)
    near = np.concatenate([v, np.nextafter(v, dtype(np.inf)), np.nextafter(v, dtype(-np.inf))])
    return np.concatenate([near, -near])


def _subnormals(dtype, rng: np.random.Generator, n: int = 2000) -> np.ndarray:
    bits, itype = (23, np.uint32) if dtype == np.float32 else (52, np.uint64)
    pats = np.concatenate([rng.integers(1, 2**bits, n, dtype=np.uint64), [1, 2, 3, 2**bits - 1]]).astype(itype)
    sub = pats.view(dtype)
    return np.concatenate([sub, -sub])


def _inputs(dtype, fmt=None, seed: int = 0, every_half: bool = True) -> np.ndarray:
    """Random normals at many scales, every float16 value, subnormals, specials, and fmt's ties."""
    rng = np.random.default_rng(seed)
    n = 10_000
    normals = rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)
    wide = rng.standard_normal(n // 4) * 2.0 ** rng.integers(-150, 150, n // 4)
    half = np.arange(2**16, dtype=np.uint16).view(np.float16)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.5, 1.5, 2.5])
    with np.errstate(over="ignore"):  # float32: the widest scales overflow to inf
        wide = wide.astype(dtype)
    parts = [normals.astype(dtype), wide, _subnormals(dtype, rng), special.astype(dtype)]
    if every_half:
        parts.append(half.astype(dtype))
    if isinstance(fmt, lp.FloatFormat):
        parts.append(_with_neighbours(_ties(fmt, rng), dtype))
    elif isinstance(fmt, lp.FixedFormat):
        k = rng.integers(-(2**12), 2**12, 2000) + 0.5  # ties, and values up to and past the range
        parts.append(_with_neighbours(np.ldexp(k, -fmt.frac_bits), dtype))
        parts.append(_with_neighbours(np.array([fmt.max, fmt.min, fmt.max + fmt.scale / 2]), dtype))
    return rng.permutation(np.concatenate(parts))


# --- comparison ---------------------------------------------------------------------------------------------
def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _assert_same(got: torch.Tensor, want: np.ndarray, x: np.ndarray) -> None:
    """Bit-for-bit equality (any NaN matches any NaN)."""
    g = got.cpu().numpy()
    assert g.dtype == want.dtype and g.shape == want.shape
    same = (_bits(g) == _bits(want)) | (np.isnan(g) & np.isnan(want))
    if not same.all():
        i = np.flatnonzero(~same.ravel())[:5]
        raise AssertionError(
            f"{(~same).sum()} of {same.size} differ: inputs {x.ravel()[i].tolist()} "
            f"got {g.ravel()[i].tolist()} expected {want.ravel()[i].tolist()}"
        )


def _check(x: np.ndarray, fmt, mode: Rounding, sr_bits, saturate, device: str = "cpu") -> None:
    """quantize_twin on ``device`` against the compiled kernel on the CPU."""
    want = lp.quantize(x, fmt, mode, saturate=saturate, sr_bits=sr_bits, seed=SEED, n_threads=1)
    key = ref.stream_key(SEED) if mode.is_stochastic else 0
    got = quantize_twin(torch.from_numpy(x).to(device), fmt, mode, saturate, sr_bits, key)
    _assert_same(got, want, x)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The tensors here are small: spare them torch's thread wake-ups (the ops are elementwise, so the
    thread count cannot change a result; ``test_default_threads`` keeps torch's own setting)."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(TORCH_THREADS)


# --- the random words -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, ref.stream_key(SEED), ref.stream_key(0)])
@pytest.mark.parametrize("first", [0, 1, 1000, 2**32 + 7, 2**63 + 5])
def test_random_words(key, first):
    got = random_words_twin(key, first, 3000, "cpu")
    assert got.dtype == torch.int64 and got.shape == (3000,)
    assert (got.numpy().view(np.uint64) == ref.random_words(key, first, 3000)).all()


def test_random_words_chunks():
    """Words of a range are the same whether drawn at once or in pieces."""
    key = ref.stream_key(SEED)
    whole = random_words_twin(key, 0, 1000, "cpu")
    parts = torch.cat([random_words_twin(key, a, 250, "cpu") for a in range(0, 1000, 250)])
    assert torch.equal(whole, parts)
    assert random_words_twin(key, 5, 0, "cpu").shape == (0,)


# --- every mode, format and input type against the kernel ----------------------------------------------------
@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize(("name", "dtype"), FLOAT_CASES)
def test_float_formats(name, dtype, mode, sr_bits):
    fmt = FLOAT_FORMATS[name]
    x = _inputs(dtype, fmt)
    for saturate in (False, True):
        _check(x, fmt, mode, sr_bits, saturate)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e2m1fn", "e5m2-none"])
def test_float_saturate_none_is_false(name):
    fmt = FLOAT_FORMATS[name]
    x = _inputs(np.float32, fmt, every_half=False)
    for mode in (Rounding.NEAREST, Rounding.UP, Rounding.ODD):
        want = quantize_twin(torch.from_numpy(x), fmt, mode, False)
        _assert_same(quantize_twin(torch.from_numpy(x), fmt, mode, None), want.numpy(), x)
        _check(x, fmt, mode, None, None)


@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", FIXED_FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fixed_formats(name, dtype, mode, sr_bits):
    fmt = FIXED_FORMATS[name]
    x = _inputs(dtype, fmt, seed=1, every_half=name in ("int8", "q8.4"))
    for saturate in (None, False, True):
        _check(x, fmt, mode, sr_bits, saturate)


@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_e8m0_scales(dtype, mode, sr_bits):
    fmt = CAT["e8m0fnu"]
    x = np.concatenate([_inputs(dtype, seed=2), np.ldexp(1.5, np.arange(-140, 140)).astype(dtype)])
    _check(x, fmt, mode, sr_bits, None)
    if dtype == np.float64:  # a scale format whose range reaches past float64's
        _check(x, lp.ScaleFormat(10, 900), mode, sr_bits, None)


@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
def test_no_subnormals_at_the_input_types_emin(mode, sr_bits):
    """Formats without subnormals whose emin is the input type's own flush the input's subnormals to the
    grid {0, 2**emin}, as the reference and the spec say; so do the compiled kernel and the twin."""
    cases = [
        (lp.FloatFormat(8, 7, subnormals=False), np.float32),
        (lp.FloatFormat(11, 40, subnormals=False), np.float64),
    ]
    for fmt, dtype in cases:
        x = _inputs(dtype, fmt, seed=3)
        key = ref.stream_key(SEED) if mode.is_stochastic else 0
        for saturate in (False, True):
            want = ref.quantize(x, fmt, mode, saturate, sr_bits, key)
            _assert_same(quantize_twin(torch.from_numpy(x), fmt, mode, saturate, sr_bits, key), want, x)
            kernel = lp.quantize(x, fmt, mode.value, saturate=saturate, sr_bits=sr_bits, seed=SEED)
            _assert_same(torch.from_numpy(kernel), want, x)


# --- tensor handling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("mode", "sr_bits"), [(Rounding.NEAREST, None), (Rounding.STOCHASTIC, None)])
def test_strided_input(dtype, mode, sr_bits):
    """A transposed, sliced view rounds as its C-order contiguous copy (random words included)."""
    base = torch.from_numpy(_inputs(np.float64, seed=4)[: 240 * 97].reshape(240, 97)).to(dtype)
    view = base.t()[::2, 1::3]
    assert not view.is_contiguous()
    fmt = CAT["e4m3fn"]
    key = ref.stream_key(SEED) if mode.is_stochastic else 0
    got = quantize_twin(view, fmt, mode, None, sr_bits, key)
    assert got.is_contiguous() and got.shape == view.shape
    _assert_same(got, quantize_twin(view.contiguous(), fmt, mode, None, sr_bits, key).numpy(), view.numpy())
    _assert_same(got, lp.quantize(view.numpy(), fmt, mode, sr_bits=sr_bits, seed=SEED), view.numpy())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", [CAT["bf16"], CAT["int8"], CAT["e8m0fnu"]], ids=str)
def test_output_and_input_untouched(dtype, fmt):
    x = torch.from_numpy(_inputs(np.float64, seed=5)[:6000].reshape(20, 30, 10)).to(dtype)
    before = x.clone()
    y = quantize_twin(x, fmt, Rounding.NEAREST)
    assert y.dtype == x.dtype and y.shape == x.shape and y.device == x.device and y.is_contiguous()
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(x.view(torch.int8), before.view(torch.int8))  # unchanged, NaN payloads included
    y.fill_(0.0)  # the output shares no storage with the input
    assert torch.equal(x.view(torch.int8), before.view(torch.int8))


def test_scalar_empty_and_grad():
    fmt = CAT["e5m2"]
    s = quantize_twin(torch.tensor(1.2, dtype=torch.float64), fmt, Rounding.NEAREST)
    assert s.shape == () and s.item() == 1.25
    e = quantize_twin(torch.empty(0, 3), fmt, Rounding.STOCHASTIC, key=7)
    assert e.shape == (0, 3) and e.dtype == torch.float32
    g = quantize_twin(torch.ones(4, requires_grad=True), fmt, Rounding.NEAREST)
    assert not g.requires_grad and g.tolist() == [1.0] * 4


def test_bad_arguments():
    with pytest.raises(TypeError, match="float32 or float64"):
        quantize_twin(torch.ones(3, dtype=torch.float16), CAT["e5m2"], Rounding.NEAREST)
    with pytest.raises(TypeError, match="fmt"):
        quantize_twin(torch.ones(3), "e5m2", Rounding.NEAREST)
    with pytest.raises(ValueError, match="man_bits"):
        quantize_twin(torch.ones(3), CAT["fp64"], Rounding.NEAREST)


def test_default_threads():
    """With torch's own thread count (tensors above its grain size are split between threads)."""
    x = _inputs(np.float64, CAT["e5m2"], seed=8)
    x = np.concatenate([x, x * 3.0])
    torch.set_num_threads(TORCH_THREADS)
    try:
        for mode, sr_bits in [(Rounding.NEAREST, None), (Rounding.STOCHASTIC, None), (Rounding.STOCHASTIC, 3)]:
            _check(x, CAT["e5m2"], mode, sr_bits, False)
            _check(x, CAT["int8"], mode, sr_bits, None)
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("fmt", [lp.FixedFormat(8, 0), CAT["fp16"]], ids=str)
def test_stochastic_sticky_bit(fmt):
    """Exact stochastic rounding compares u with floor(frac * 2**64) | sticky: a fraction just above
    u / 2**64 rounds up, one equal to it does not (met only where a word is small and even)."""
    key = ref.stream_key(SEED)
    u = ref.random_words(key, 0, 2**16)
    idx = np.flatnonzero((u < 2**52) & (u % 2 == 0))[:4]
    assert idx.size, "no small even word in range"
    unit = 1.0 if isinstance(fmt, lp.FixedFormat) else fmt.min_subnormal
    x = np.full(2**16, 0.25 * unit)
    for i, delta in zip(idx, [0.5, 0.0, 0.5, 1.0], strict=False):
        x[i] = (float(u[i]) + delta) * 2.0**-64 * unit  # exact: at most 53 significant bits
    got = quantize_twin(torch.from_numpy(x), fmt, Rounding.STOCHASTIC, key=key)
    _assert_same(got, lp.quantize(x, fmt, "stochastic", seed=SEED), x)
    assert got[idx[0]] == unit


def test_same_key_same_result():
    """Stochastic rounding is a function of the key: equal keys agree, different keys differ."""
    x = torch.from_numpy(np.random.default_rng(6).standard_normal(5000))
    fmt = CAT["e2m1fn"]
    a = quantize_twin(x, fmt, Rounding.STOCHASTIC, key=ref.stream_key(1))
    assert torch.equal(a, quantize_twin(x, fmt, Rounding.STOCHASTIC, key=ref.stream_key(1)))
    assert not torch.equal(a, quantize_twin(x, fmt, Rounding.STOCHASTIC, key=ref.stream_key(2)))


# --- CUDA --------------------------------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_random_words_cuda():
    for key in (0, 2**63, ref.stream_key(SEED)):
        got = random_words_twin(key, 3, 100_000, "cuda")
        assert got.device.type == "cuda"
        assert (got.cpu().numpy().view(np.uint64) == ref.random_words(key, 3, 100_000)).all()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(("mode", "sr_bits"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_kernel(dtype, mode, sr_bits):
    names = ["e4m3fn", "e4m3fnuz", "e5m2", "e2m1fn", "bf16", "fp16", "tf32", "e6m9", "e5m2-nosub", "e3m0-none"]
    if dtype == np.float64:
        names += ["fp64", "e11m20"]
    for name in names:
        fmt = FLOAT_FORMATS[name]
        x = _inputs(dtype, fmt)
        for saturate in (False, True):
            _check(x, fmt, mode, sr_bits, saturate, device="cuda")
    for fmt in (FIXED_FORMATS["q8.4"], FIXED_FORMATS["uq64-wrap"], FIXED_FORMATS["q16.1100"], CAT["e8m0fnu"]):
        _check(_inputs(dtype, fmt, seed=1), fmt, mode, sr_bits, None, device="cuda")


@pytest.mark.gpu
@needs_cuda
def test_cuda_strided_and_device():
    x = torch.from_numpy(_inputs(np.float32, seed=7)[: 300 * 200].reshape(300, 200)).cuda().t()[:, ::3]
    key = ref.stream_key(SEED)
    y = quantize_twin(x, CAT["e5m2"], Rounding.STOCHASTIC, None, 3, key)
    assert y.device == x.device and y.is_contiguous() and y.dtype == x.dtype
    _assert_same(y, lp.quantize(x.cpu().numpy(), "e5m2", "stochastic", sr_bits=3, seed=SEED), x.cpu().numpy())
