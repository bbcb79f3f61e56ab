"""Emulated reductions: ``sum``, ``dot`` and ``matmul`` under an accumulation model or profile."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from . import _reference as ref
from ._native import core
from ._quantize import _check_fits, _check_seed, _check_threads, _params
from .accum import AccumModel, BlockFMA, Order
from .formats import FloatFormat
from .mx import MXFormat, mx_quantize
from .rounding import Rounding

__all__ = ["sum", "dot", "matmul", "resolve_model"]

_ORDER_CODES = {Order.SEQUENTIAL: 0, Order.CHUNKED: 1, Order.PAIRWISE: 2}
_STORAGE_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}
_MODEL_KEYS = ("acc", "rounding", "chunk", "order", "a_format", "b_format", "product_format", "out_format")
# random streams of one seed: accumulator, products, output, operand a, operand b
_S_ACC, _S_PROD, _S_OUT, _S_A, _S_B = range(5)


# --- model resolution ------------------------------------------------------------------------------
def resolve_model(model: Any = None, profile: Any = None, **kw: Any) -> AccumModel | BlockFMA:
    """The model a call uses: ``profile`` (name, path or Profile), ``model``, or keyword fields.

    With a profile, ``out_format``, ``a_format`` and ``b_format`` pick among the profile's modes
    and operand choices; other model keywords are rejected. With ``model``, keywords that are not
    None override its fields.
    """
    given = {k: v for k, v in kw.items() if v is not None}
    if profile is not None:
        if model is not None:
            raise ValueError("give either model= or profile=, not both")
        from .profiles import load_profile

        prof = load_profile(profile)
        extra = sorted(set(given) - {"out_format", "a_format", "b_format"})
        if extra:
            raise ValueError(f"profile {prof.name!r} fixes {', '.join(extra)}; edit a copy of the profile instead")
        return prof.model(**given)
    if model is not None:
        if not isinstance(model, (AccumModel, BlockFMA)):
            raise TypeError(f"model must be an AccumModel or BlockFMA, got {type(model).__name__}")
        return model.replace(**given) if given else model
    return AccumModel(**given)


# --- helpers ---------------------------------------------------------------------------------------
def _as_array(x: Any, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    arr = np.asarray(x)
    if arr.dtype not in _STORAGE_BITS:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr


def _key(seed: int, stream: int) -> int:
    return ref.stream_key(seed, stream)


def _rounded(x: np.ndarray, fmt: FloatFormat, mode: Rounding, key: int = 0, saturate: bool = False) -> np.ndarray:
    """A new array: x rounded to fmt with the random stream `key` (lp.quantize takes a seed, this a
    stream key, so that operands, outputs and accumulator draw from distinct streams of one seed)."""
    src = np.ascontiguousarray(x).reshape(-1)
    dst = np.empty_like(src)
    core.quantize(src, dst, _params(fmt, mode, saturate, None, key, False), 1)
    return dst.reshape(x.shape)


def _round_operand(x: np.ndarray, fmt: Any, mode: Rounding, seed: int, stream: int, axis: int) -> np.ndarray:
    """Operand x rounded to fmt (float or MX along axis); x itself when fmt is None."""
    if fmt is None:
        return x
    if isinstance(fmt, MXFormat):
        return mx_quantize(x, fmt, axis=axis, rounding=mode.value, seed=seed + stream)
    _check_fits(fmt, x.dtype)
    return _rounded(x, fmt, mode, _key(seed, stream) if mode.is_stochastic else 0)


def _precision(fmt: Any, dtype: np.dtype) -> int:
    if fmt is None:
        return _STORAGE_BITS[dtype]
    if isinstance(fmt, FloatFormat):
        return fmt.precision
    elem = fmt.element  # MX: element bits + exact power-of-two scale
    return elem.precision if isinstance(elem, FloatFormat) else elem.bits


def _data_precision(x: np.ndarray) -> int:
    """Significant bits the finite values of x actually use (their last set significand bit)."""
    u = np.ascontiguousarray(x).view(np.uint64 if x.dtype == np.float64 else np.uint32)
    M = 52 if x.dtype == np.float64 else 23
    one = u.dtype.type(1)
    sig = (u & u.dtype.type((1 << M) - 1)) | (one << u.dtype.type(M))
    low = sig & (~sig + one)  # lowest set bit
    if low.size == 0:
        return 1
    return M + 1 - int(np.log2(low.min().astype(np.float64)))


def _check_model_dtype(m: AccumModel, dtype: np.dtype, a: np.ndarray | None = None, b: np.ndarray | None = None):
    res = m.out_format or m.acc
    _check_fits(res, dtype)
    if a is None or b is None:
        return
    pa, pb = _precision(m.a_format, dtype), _precision(m.b_format, dtype)
    if pa + pb > 53:  # the data may still be narrow enough (values of a low-precision format)
        pa = pa if m.a_format is not None else _data_precision(a)
        pb = pb if m.b_format is not None else _data_precision(b)
    if pa + pb > 53:
        raise ValueError(
            f"products of {dtype} operands with {pa} and {pb} significant bits are not exact in float64; give "
            "a_format/b_format with at most 53 significant bits together (for example a_format='fp32', "
            "b_format='fp16')"
        )


def _float_range_ok(f: FloatFormat | None) -> bool:
    """f's grid lies inside float32's with two bits to spare below (for rounding to odd)."""
    if f is None:
        return True
    lsb = f.emin - (f.man_bits if f.subnormals else 0)
    return f.emax <= 127 and lsb >= -147 and f.max <= float(np.finfo(np.float32).max)


def _nonzero_range(x: np.ndarray) -> tuple[float, float]:
    a = np.abs(x[np.isfinite(x)])
    a = a[a > 0]
    return (float(a.min()), float(a.max())) if a.size else (1.0, 1.0)


def _narrow(x: np.ndarray, bits: int) -> bool:
    """Whether every value of x has at most ``bits`` significant bits (normal values: no set bit in
    the significand below them; conservative for subnormals). A prefix is tried first, so that
    full-precision data costs no pass over the whole array."""
    M = 52 if x.dtype == np.float64 else 23
    if bits > M:
        return True
    flat = np.ascontiguousarray(x).reshape(-1)
    u = flat.view(np.uint64 if x.dtype == np.float64 else np.uint32)
    low = u.dtype.type((1 << (M + 1 - bits)) - 1)
    return not (np.any(u[:4096] & low) or np.any(u & low))


def _operand_bits(fmt: Any, x: np.ndarray) -> int:
    """Significant bits of x's values: its float format's, or (no format, MX) those the data use."""
    return fmt.precision if isinstance(fmt, FloatFormat) else _data_precision(x)


def _fast_level(m: AccumModel, dtype: np.dtype, a: np.ndarray, b: np.ndarray | None) -> int:
    """Which kernel gives the exact bits fastest for terms a (or products a * b).

    0: double lanes, the general case. 1: float lanes, for a deterministic mode, an accumulator of at
    most 22 significant bits (rounding to odd at 24 bits, then to it, is exact) inside float's range,
    and terms (products) that are exact float32 values. Also for exact stochastic rounding in
    sequential or chunked order without product rounding, an accumulator with emin >= -125 and
    terms of at most 24 - p bits (the kernel rounds sums that are exact in float there and redoes
    any other step on double lanes, so most sums must be exact for this to pay). 2: nearest-even
    float tiles on top of that, for sequential or chunked order without product rounding, an
    accumulator with subnormals and emin >= -126. 3: as 2 with plain float additions, when the
    accumulator has at most 11 significant bits and every term at most as many (double rounding is
    then innocuous; see csrc/include/lowprec/accumulate_lean.hpp).
    """
    sr = m.rounding.is_stochastic
    if (sr and not _stochastic_float_ok(m)) or m.acc.precision > 22 or not _float_range_ok(m.acc):
        return 0
    # stochastic: float lanes pay off when most sums are exact in float, i.e. terms of few bits
    room = 24 - m.acc.precision
    if not _float_range_ok(m.product_format):
        return 0
    if b is None:
        ok = dtype == np.float32 or (
            isinstance(m.a_format, FloatFormat) and _float_range_ok(m.a_format) and m.a_format.precision <= 24
        )
        if not ok:
            return 0
        fa = m.a_format
        if sr and not (fa.precision <= room if isinstance(fa, FloatFormat) else _narrow(a, room)):
            return 0
    else:
        product_bits = _operand_bits(m.a_format, a) + _operand_bits(m.b_format, b)
        if product_bits > (room if sr else 24):
            return 0
        (alo, ahi), (blo, bhi) = _nonzero_range(a), _nonzero_range(b)
        if not (alo * blo >= 2.0**-126 and ahi * bhi < 2.0**127):
            return 0
    lean = (
        m.rounding is Rounding.NEAREST
        and m.order in (Order.SEQUENTIAL, Order.CHUNKED)
        and m.product_format is None
        and m.acc.subnormals
        and m.acc.emin >= -126
    )
    if not lean:
        return 1
    p = m.acc.precision
    if p > 11:
        return 2
    if b is not None:
        narrow = product_bits <= p
    elif isinstance(m.a_format, FloatFormat):
        narrow = m.a_format.precision <= p
    else:
        narrow = _narrow(a, p)
    return 3 if narrow else 2


def _stochastic_float_ok(m: AccumModel) -> bool:
    """Exact stochastic rounding that the float-lane kernel supports (see _fast_level)."""
    return (
        m.rounding is Rounding.STOCHASTIC
        and m.sr_bits is None
        and m.order in (Order.SEQUENTIAL, Order.CHUNKED)
        and m.product_format is None
        and m.acc.emin >= -125
    )


def _float_lanes_c(fast: int, C: np.ndarray | None, m: AccumModel) -> tuple[int, np.ndarray | None]:
    """(fast, C) for the kernel: float lanes hold c exactly, rounded to the accumulator from its own
    bits (deterministic modes), or as given when exact in float32 (stochastic rounding, whose step 0
    draws a word of c's own index in the kernel); otherwise double lanes."""
    if not fast or C is None:
        return fast, C
    if not m.rounding.is_stochastic:
        return fast, _pre_round_c(C, m)
    exact = C.dtype == np.float32 or bool(np.array_equal(C.astype(np.float32).astype(C.dtype), C, equal_nan=True))
    return (fast, C) if exact else (0, C)


def _acc_tuple(m: AccumModel, key: int) -> tuple:
    return _params(m.acc, m.rounding, m.saturate, m.sr_bits, key, False)


def _prod_tuple(m: AccumModel, key: int) -> tuple:
    if m.product_format is None:
        return _acc_tuple(m, key)
    return _params(m.product_format, m.rounding, m.saturate, m.sr_bits, key, False)


def _finish(res: np.ndarray, m: AccumModel, seed: int) -> np.ndarray:
    if m.out_format is None:
        return res
    mode = m.out_rounding
    return _rounded(res, m.out_format, mode, _key(seed, _S_OUT) if mode.is_stochastic else 0)


def _rows(X: np.ndarray, Y: np.ndarray | None, C: np.ndarray | None, m: AccumModel, seed: int, nt: int) -> np.ndarray:
    """out[r] = C[r] (+) sum_k X[r, k] (* Y[r, k]) under m (operands already rounded)."""
    fast, C1 = _float_lanes_c(_fast_level(m, X.dtype, X, Y), C, m)
    R, K = X.shape
    S = m.steps(K)
    key_a = _key(seed, _S_ACC) if m.rounding.is_stochastic else 0
    key_p = _key(seed, _S_PROD) if m.rounding.is_stochastic else 0
    acc, prod = _acc_tuple(m, key_a), _prod_tuple(m, key_p)
    has_prod = int(m.product_format is not None)
    out = np.empty(R, X.dtype)
    X = np.ascontiguousarray(X)
    Y = None if Y is None else np.ascontiguousarray(Y)
    C = None if C is None else np.ascontiguousarray(C)
    C1 = None if C1 is None else np.ascontiguousarray(C1)
    CL = m.chunk
    if m.order is Order.CHUNKED and CL is not None and K >= 4 * CL and R < 16 * builtins.max(nt, 1):
        # Long chunked reductions: the chunks of every row in parallel lanes, then the merges.
        nfull, rem = divmod(K, CL)
        nch = nfull + (rem > 0)
        P = np.empty((R, nch), X.dtype)
        seq = (acc, prod, has_prod, 0, 1, fast)
        # the merged terms are chunk sums, values of the accumulator: plain float sums when p <= 11,
        # float lanes for stochastic rounding when p <= 12 (two such values span 24 bits)
        p = m.acc.precision
        merge = 3 if fast >= 2 and p <= 11 else fast
        if m.rounding.is_stochastic and _stochastic_float_ok(m) and p <= 12 and _float_range_ok(m.acc):
            merge = 1
        merge, Cm = _float_lanes_c(merge, C, m)
        for r in range(R):
            base = r * S + 1
            xs = X[r, : nfull * CL]
            ys = None if Y is None else Y[r, : nfull * CL]
            core.accum_rows(xs, ys, None, P[r, :nfull], nfull, CL, (0, 0, base, CL, r * K, CL), *seq, nt)
            if rem:
                xr = np.ascontiguousarray(X[r, nfull * CL :])
                yr = None if Y is None else np.ascontiguousarray(Y[r, nfull * CL :])
                st = (0, 0, base + nfull * CL, 0, r * K + nfull * CL, 0)
                core.accum_rows(xr, yr, None, P[r, nfull:], 1, rem, st, *seq, 1)
        P = P.reshape(-1)
        core.accum_rows(P, None, Cm, out, R, nch, (0, S, 1 + K, S, 0, 0), acc, prod, 0, 0, 1, merge, nt)
        return out
    st = (0, S, 1, S, 0, K)
    core.accum_rows(
        X.reshape(-1),
        None if Y is None else Y.reshape(-1),
        C1,
        out,
        R,
        K,
        st,
        acc,
        prod,
        has_prod,
        _ORDER_CODES[m.order],
        CL or 0,
        fast,
        nt,
    )
    return out


def _pre_round_c(C: np.ndarray, m: AccumModel) -> np.ndarray:
    """c rounded to the accumulator from its own bits (the float32 kernels then hold it exactly)."""
    return _rounded(C, m.acc, m.rounding, saturate=m.saturate)


def _c_array(c: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    if c is None:
        return None
    carr = _as_array(c, "c")
    try:
        return np.ascontiguousarray(np.broadcast_to(carr, shape), dtype=dtype)
    except ValueError:
        raise ValueError(f"c with shape {carr.shape} does not broadcast to the result shape {shape}") from None


def _axis(axis: Any, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim


def _scalar(res: np.ndarray) -> Any:
    return res[()] if res.ndim == 0 else res


# --- public API ------------------------------------------------------------------------------------
def sum(  # noqa: A001 - the reduction of this module, as numpy.sum
    x: Any,
    axis: int = -1,
    *,
    c: Any = None,
    acc: Any = None,
    rounding: Any = None,
    chunk: int | None = None,
    order: Any = None,
    out_format: Any = None,
    model: Any = None,
    profile: Any = None,
    seed: int | None = None,
    n_threads: int | None = None,
) -> Any:
    """Sum ``x`` along ``axis`` with every addition rounded as an accumulation model says.

    Parameters
    ----------
    x : array_like of float32 or float64
        Terms (never modified). The result has x's dtype; its values are values of the
        accumulator (or ``out_format``), which must fit that dtype.
    axis : int
        Reduction axis (one axis).
    c : array_like, optional
        Addend broadcast to the result shape: the sum starts from ``c`` rounded to the accumulator.
    acc, rounding, chunk, order, out_format
        Fields of an :class:`~lowprec.AccumModel` (default: fp32, nearest, sequential).
    model : AccumModel or BlockFMA, optional
        A model object; keyword fields given alongside override its fields.
    profile : str, path or Profile, optional
        An accelerator profile (see :func:`lowprec.load_profile`); tensor-core profiles sum the
        terms as products ``x * 1``.
    seed : int, optional
        Seed of the stochastic modes (result element o, rounding step q draws the random word of
        index ``o * steps + q``; see docs). None: a fresh seed.
    n_threads : int, optional

    Returns
    -------
    ndarray or scalar
    """
    arr = _as_array(x, "x")
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension")
    ax = _axis(axis, arr.ndim)
    m = resolve_model(model, profile, acc=acc, rounding=rounding, chunk=chunk, order=order, out_format=out_format)
    if isinstance(m, BlockFMA):
        return dot(arr, np.ones_like(arr), axis=ax, c=c, model=m, n_threads=n_threads)
    nt = _check_threads(n_threads)
    sd = _check_seed(seed)
    _check_model_dtype(m, arr.dtype)
    moved = np.moveaxis(arr, ax, -1)
    shape = moved.shape[:-1]
    X = _round_operand(moved, m.a_format, m.operand_rounding, sd, _S_A, -1).reshape(math.prod(shape), moved.shape[-1])
    C = _c_array(c, shape, arr.dtype)
    res = _rows(X, None, None if C is None else C.reshape(-1), m, sd, nt).reshape(shape)
    return _scalar(_finish(res, m, sd))


def dot(
    a: Any,
    b: Any,
    *,
    axis: int = -1,
    c: Any = None,
    acc: Any = None,
    rounding: Any = None,
    chunk: int | None = None,
    order: Any = None,
    a_format: Any = None,
    b_format: Any = None,
    product_format: Any = None,
    out_format: Any = None,
    model: Any = None,
    profile: Any = None,
    seed: int | None = None,
    n_threads: int | None = None,
) -> Any:
    """Dot products ``c + sum_k a[..., k] * b[..., k]`` (a and b broadcast together).

    Parameters are those of :func:`sum`, plus the operand formats ``a_format``/``b_format`` and
    ``product_format`` (None: exact products). With a tensor-core profile, ``out_format="fp16"``
    selects the fp16-output mode and FP8 profiles take ``a_format``/``b_format`` (e4m3fn or e5m2).
    """
    A = _as_array(a, "a")
    B = _as_array(b, "b")
    if A.dtype != B.dtype:
        raise TypeError(f"a and b must have the same dtype, got {A.dtype} and {B.dtype}")
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("a and b must have at least one dimension")
    ax_a, ax_b = _axis(axis, A.ndim), _axis(axis, B.ndim)
    A, B = np.moveaxis(A, ax_a, -1), np.moveaxis(B, ax_b, -1)
    if A.shape[-1] != B.shape[-1]:
        raise ValueError(f"a and b have different lengths along the reduction axis: {A.shape[-1]} and {B.shape[-1]}")
    try:
        lead = np.broadcast_shapes(A.shape[:-1], B.shape[:-1])
    except ValueError:
        raise ValueError(f"a and b shapes {A.shape} and {B.shape} do not broadcast") from None
    K = A.shape[-1]
    A = np.broadcast_to(A, lead + (K,))
    B = np.broadcast_to(B, lead + (K,))
    m = resolve_model(
        model,
        profile,
        acc=acc,
        rounding=rounding,
        chunk=chunk,
        order=order,
        a_format=a_format,
        b_format=b_format,
        product_format=product_format,
        out_format=out_format,
    )
    if isinstance(m, BlockFMA):
        from ._blockfma import blockfma_matmul

        res = blockfma_matmul(
            A.reshape(lead + (1, K)),
            B.reshape(lead + (K, 1)),
            None if c is None else _c_array(c, lead, A.dtype).reshape(lead + (1, 1)),
            m,
            _check_threads(n_threads),
        )
        return _scalar(res.reshape(lead))
    nt = _check_threads(n_threads)
    sd = _check_seed(seed)
    _check_model_dtype(m, A.dtype, A, B)
    R = math.prod(lead)
    Aq = _round_operand(A, m.a_format, m.operand_rounding, sd, _S_A, -1).reshape(R, K)
    Bq = _round_operand(B, m.b_format, m.operand_rounding, sd, _S_B, -1).reshape(R, K)
    C = _c_array(c, lead, A.dtype)
    res = _rows(Aq, Bq, None if C is None else C.reshape(-1), m, sd, nt).reshape(lead)
    return _scalar(_finish(res, m, sd))


def matmul(
    a: Any,
    b: Any,
    *,
    c: Any = None,
    acc: Any = None,
    rounding: Any = None,
    chunk: int | None = None,
    order: Any = None,
    a_format: Any = None,
    b_format: Any = None,
    product_format: Any = None,
    out_format: Any = None,
    model: Any = None,
    profile: Any = None,
    seed: int | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Matrix product ``D = C + A @ B`` with emulated accumulation (``numpy.matmul`` shapes).

    ``a`` is (..., M, K) and ``b`` (..., K, N), leading dimensions broadcast (1-D operands are
    promoted as in NumPy); ``c`` broadcasts to the result. Every output element is one reduction
    over K under the model (see :func:`dot` for the parameters). Operands are rounded to
    ``a_format``/``b_format`` first (MX formats along K).
    """
    A = _as_array(a, "a")
    B = _as_array(b, "b")
    if A.dtype != B.dtype:
        raise TypeError(f"a and b must have the same dtype, got {A.dtype} and {B.dtype}")
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("matmul operands must have at least one dimension")
    squeeze_m, squeeze_n = A.ndim == 1, B.ndim == 1
    A2 = A[None, :] if squeeze_m else A
    B2 = B[:, None] if squeeze_n else B
    M, K = A2.shape[-2:]
    K2, N = B2.shape[-2:]
    if K != K2:
        raise ValueError(f"matmul shapes {A.shape} and {B.shape} do not match: K = {K} vs {K2}")
    try:
        batch = np.broadcast_shapes(A2.shape[:-2], B2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul batch shapes {A.shape[:-2]} and {B.shape[:-2]} do not broadcast") from None
    out_shape = batch + (M, N)
    m = resolve_model(
        model,
        profile,
        acc=acc,
        rounding=rounding,
        chunk=chunk,
        order=order,
        a_format=a_format,
        b_format=b_format,
        product_format=product_format,
        out_format=out_format,
    )
    nt = _check_threads(n_threads)
    C = _c_array(c, out_shape, A.dtype)
    if isinstance(m, BlockFMA):
        from ._blockfma import blockfma_matmul

        res = blockfma_matmul(A2, B2, C, m, nt)
    else:
        sd = _check_seed(seed)
        _check_model_dtype(m, A.dtype, A2, B2)
        Aq = np.ascontiguousarray(_round_operand(A2, m.a_format, m.operand_rounding, sd, _S_A, -1))
        Bq = np.ascontiguousarray(_round_operand(B2, m.b_format, m.operand_rounding, sd, _S_B, -2))
        nb = int(np.prod(batch)) if batch else 1
        sA = 0 if Aq.ndim == 2 else M * K
        sB = 0 if Bq.ndim == 2 else K * N
        if sA and Aq.shape[:-2] != batch:
            Aq = np.ascontiguousarray(np.broadcast_to(Aq, batch + (M, K)))
        if sB and Bq.shape[:-2] != batch:
            Bq = np.ascontiguousarray(np.broadcast_to(Bq, batch + (K, N)))
        res = np.empty(out_shape, A.dtype)
        key_a = _key(sd, _S_ACC) if m.rounding.is_stochastic else 0
        key_p = _key(sd, _S_PROD) if m.rounding.is_stochastic else 0
        fast, C = _float_lanes_c(_fast_level(m, A.dtype, Aq, Bq), C, m)
        core.accum_matmul(
            Aq.reshape(-1),
            Bq.reshape(-1),
            None if C is None else C.reshape(-1),
            res.reshape(-1),
            nb,
            M,
            N,
            K,
            sA,
            sB,
            M * N,
            _acc_tuple(m, key_a),
            _prod_tuple(m, key_p),
            int(m.product_format is not None),
            _ORDER_CODES[m.order],
            m.chunk or 0,
            m.steps(K),
            fast,
            nt,
        )
        res = _finish(res, m, sd)
    if squeeze_m and squeeze_n:
        return _scalar(res[..., 0, 0])
    if squeeze_m:
        return res[..., 0, :]
    if squeeze_n:
        return res[..., :, 0]
    return res
