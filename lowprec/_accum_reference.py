"""Scalar reference of the emulated reductions, in exact rational arithmetic (``fractions.Fraction``).

Written to be read, not to be fast: every product and sum is formed exactly and then rounded as
the model says. The compiled kernels (``csrc/include/lowprec/accumulate.hpp``, ``blockfma.hpp``)
must equal it bit for bit. Special values (inf, NaN) are not modelled here; tests check them
separately.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ._reference import random_words, stream_key
from .accum import AccumModel, BlockFMA, Order
from .formats import FloatFormat, Specials
from .rounding import Rounding

__all__ = ["round_fraction", "round_odd53", "accumulate", "blockfma_dot"]

_TWO64 = 1 << 64


def _floor_log2(a: Fraction) -> int:
    """floor(log2 a) for a > 0."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e if Fraction(2) ** e <= a else e - 1


def round_fraction(
    x: Fraction,
    fmt: FloatFormat,
    mode: Rounding,
    saturate: bool = False,
    word: int = 0,
    sr_bits: int | None = None,
    neg_zero: bool = False,
) -> float:
    """x rounded to fmt (a float64 value; inf/NaN on overflow as the format and mode say).

    ``word`` is the 64-bit random word of the stochastic modes; ``neg_zero`` gives the sign of an
    exact zero.
    """
    if x == 0:
        return -0.0 if neg_zero and fmt.specials is not Specials.FNUZ else 0.0
    neg = x < 0
    a = -x if neg else x
    e = _floor_log2(a)
    below = e < fmt.emin
    unit = fmt.emin - (fmt.man_bits if fmt.subnormals else 0) if below else e - fmt.man_bits
    scaled = a / Fraction(2) ** unit
    q = scaled.numerator // scaled.denominator
    frac = scaled - q
    odd = q % 2 == 1
    if fmt.man_bits == 0 and not below:
        odd = (e + fmt.bias) % 2 == 1
    if mode is Rounding.NEAREST:
        inc = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and odd)
    elif mode is Rounding.NEAREST_AWAY:
        inc = frac >= Fraction(1, 2)
    elif mode is Rounding.TOWARD_ZERO:
        inc = False
    elif mode is Rounding.UP:
        inc = frac > 0 and not neg
    elif mode is Rounding.DOWN:
        inc = frac > 0 and neg
    elif mode is Rounding.ODD:
        inc = frac > 0 and not odd
    elif mode is Rounding.STOCHASTIC_EQUAL:
        inc = frac > 0 and (word >> 63) == 1
    elif sr_bits is None:  # exact: up iff word < frac * 2^64 (a sticky last bit)
        f64 = frac * _TWO64
        fw = f64.numerator // f64.denominator
        if fw != f64:
            fw |= 1
        inc = word < fw
    else:
        t = round(frac * (1 << sr_bits))  # Python rounds a Fraction half to even
        inc = (word >> (64 - sr_bits)) < t
    r = (q + int(inc)) * Fraction(2) ** unit
    if r > Fraction(fmt.max):
        always_sat = saturate or fmt.specials is Specials.NONE
        big = math.inf if fmt.specials is Specials.IEEE else math.nan
        odd_max = fmt.specials is not Specials.FN if fmt.man_bits > 0 else fmt.specials is not Specials.IEEE
        if mode is Rounding.TOWARD_ZERO or (mode is Rounding.ODD and odd_max):
            sat = True
        elif mode is Rounding.UP:
            sat = neg or always_sat
        elif mode is Rounding.DOWN:
            sat = (not neg) or always_sat
        else:
            sat = always_sat
        v = fmt.max if sat else big
    else:
        v = float(r)
    return -v if neg else v


def round_odd53(x: Fraction) -> Fraction:
    """x rounded to odd at 53 bits (a float64 value, the last bit set when inexact)."""
    v = float(x)  # correctly rounded to nearest
    if Fraction(v) == x:
        return x
    m, _ = math.frexp(v)
    last_even = int(abs(m) * 2**53) % 2 == 0
    if last_even:
        v = math.nextafter(v, math.inf if x > Fraction(v) else -math.inf)
    return Fraction(v)


class _Rounder:
    """Rounds exact values to one format with one mode, drawing words of one random stream."""

    def __init__(self, fmt: FloatFormat, m: AccumModel, key: int):
        self.fmt, self.mode, self.sat, self.sr, self.key = fmt, m.rounding, m.saturate, m.sr_bits, key

    def __call__(self, x: Fraction | float, index: int, neg_zero: bool = False) -> Fraction | float:
        if isinstance(x, float) and x == 0:  # a signed zero
            neg_zero, x = neg_zero or _is_neg_zero(x), Fraction(0)
        if isinstance(x, float):  # inf or NaN from an earlier overflow
            if math.isnan(x):
                return x
            sat = self.sat or self.fmt.specials is Specials.NONE
            big = self.fmt.max if sat else (math.inf if self.fmt.specials is Specials.IEEE else math.nan)
            return math.copysign(big, x)
        word = 0
        if self.mode.is_stochastic:
            word = int(random_words(self.key, index, 1)[0])
            x = round_odd53(x)  # the probability comes from the sum rounded to odd at 53 bits
        v = round_fraction(x, self.fmt, self.mode, self.sat, word, self.sr, neg_zero)
        if v == 0:
            return v  # keeps the sign of a zero (-0.0 is the only float value besides inf and NaN)
        return Fraction(v) if math.isfinite(v) else v


def _is_neg_zero(v: Fraction | float) -> bool:
    return isinstance(v, float) and v == 0 and math.copysign(1.0, v) < 0


def _exact(v: float) -> Fraction | float:
    """A finite float as an exact Fraction, -0.0 kept as it is (a Fraction has no signed zero)."""
    return v if _is_neg_zero(v) else Fraction(v)


def _add(rnd: _Rounder, s: Fraction | float, t: Fraction | float, index: int) -> Fraction | float:
    """s + t rounded. An exact zero sum is -0 only when both are -0, as the kernels' float addition
    gives (to nearest) before rounding."""
    special = [v for v in (s, t) if isinstance(v, float) and v != 0]
    if special:
        return rnd(float(s) + float(t), index)
    total = Fraction(s) + Fraction(t)
    return rnd(total, index, neg_zero=total == 0 and _is_neg_zero(s) and _is_neg_zero(t))


def accumulate(
    terms: list[float], c: float | None, m: AccumModel, seed: int = 0, o: int = 0, b_terms: list[float] | None = None
) -> float:
    """One output element of ``lp.sum``/``lp.dot`` (operands already rounded): c (+) sum of the
    terms (products ``terms[k] * b_terms[k]`` when b_terms is given), output element index o."""
    K = len(terms)
    S = m.steps(K)
    acc = _Rounder(m.acc, m, stream_key(seed, 0))
    prod = _Rounder(m.product_format, m, stream_key(seed, 1)) if m.product_format is not None else None
    t = []
    for k in range(K):
        x = float(terms[k]) * (float(b_terms[k]) if b_terms is not None else 1.0)  # only its zero sign is used
        v = Fraction(float(terms[k])) * (Fraction(float(b_terms[k])) if b_terms is not None else 1)
        neg_zero = v == 0 and math.copysign(1.0, x) < 0
        if prod is not None:
            v = prod(v, o * K + k, neg_zero)
        elif neg_zero:
            v = -0.0
        t.append(v)
    base = o * S
    s = acc(_exact(float(c)), base) if c is not None else Fraction(0)
    if m.order is Order.SEQUENTIAL:
        for k in range(K):
            s = _add(acc, s, t[k], base + 1 + k)
    elif m.order is Order.CHUNKED:
        for j, k0 in enumerate(range(0, K, m.chunk)):
            q = Fraction(0)
            for k in range(k0, min(K, k0 + m.chunk)):
                q = _add(acc, q, t[k], base + 1 + k)
            s = _add(acc, s, q, base + 1 + K + j)
    else:  # pairwise: bottom-up levels, an odd last element passes up unchanged
        level: list[object] = list(t)
        while len(level) > 1:
            nxt: list[object] = [("pair", level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        tree = level[0] if level else None
        if tree is not None:
            value, _ = _eval_pairwise(tree, acc, base + 1, 0)
            s = _add(acc, s, value, base + 1 + K - 1)
    return float(s)


def _eval_pairwise(node: object, acc: _Rounder, first: int, step: int) -> tuple[Fraction, int]:
    """Evaluate a pairwise tree; internal nodes are numbered in post-order (left subtree, right
    subtree, then the node), which is the order in which the kernel's binary counter completes them."""
    if not (isinstance(node, tuple) and node and node[0] == "pair"):
        return node, step  # a leaf (exact term)
    left, step = _eval_pairwise(node[1], acc, first, step)
    right, step = _eval_pairwise(node[2], acc, first, step)
    return _add(acc, left, right, first + step), step + 1


# --- block FMA ---------------------------------------------------------------------------------------
def _e(x: Fraction, emin: int) -> int:
    return max(_floor_log2(abs(x)), emin)


def _bfma(prods: list[tuple[Fraction, Fraction]], c: Fraction, m: BlockFMA, rounding: Rounding) -> Fraction | float:
    """One block-FMA (spec section 2, steps 2-7) on finite inputs; c is an exact value."""
    neab = m.extra_align_bits
    terms = []  # (exponent, significand as a signed Fraction)
    for a, b in prods:
        if a == 0 or b == 0:
            continue
        ea, eb = _e(a, m.a_format.emin), _e(b, m.b_format.emin)
        terms.append((ea + eb, (a / Fraction(2) ** ea) * (b / Fraction(2) ** eb)))
    if c != 0:
        ec = max(_floor_log2(abs(c)), -126)
        terms.append((ec, c / Fraction(2) ** ec))
    if not terms:
        return Fraction(0)
    E = max(e for e, _ in terms)
    if m.min_exp_limit is not None:
        E = max(E, m.min_exp_limit)
    S = 0
    for e, sig in terms:
        mag = abs(sig) * Fraction(2) ** (23 + neab + e - E)
        T = mag.numerator // mag.denominator  # truncation of the magnitude
        S += -T if sig < 0 else T
    v = S * Fraction(2) ** (E - 23 - neab)
    fmt = m.block_out_format
    if abs(v) >= Fraction(2) ** (fmt.emax + 1):
        return math.copysign(math.inf, v)
    return Fraction(round_fraction(v, fmt, rounding))


def blockfma_dot(a: list[float], b: list[float], c: float, m: BlockFMA) -> float:
    """d = c + sum a[k] b[k] under the block-FMA model (operands already in the input formats,
    c already in the output format; finite values)."""
    F = m.block
    K = len(a)
    Kp = -(-K // F) * F if K else 0
    A = [Fraction(x) for x in a] + [Fraction(0)] * (Kp - K)
    B = [Fraction(x) for x in b] + [Fraction(0)] * (Kp - K)
    if not m.in_subnormals:
        A = [x if abs(x) >= Fraction(m.a_format.min_normal) else Fraction(0) for x in A]
        B = [x if abs(x) >= Fraction(m.b_format.min_normal) else Fraction(0) for x in B]
    sub = m.sub_block or F
    d: Fraction | float = Fraction(c)
    for k0 in range(0, Kp, F):
        order = [k0 + p for p in m.perm]
        acc: Fraction | float = Fraction(0) if m.late_c else d
        for s0 in range(0, F, sub):
            idx = order[s0 : s0 + sub]
            if not m.out_subnormals and abs(acc) < Fraction(m.out_format.min_normal):
                acc = Fraction(0)
            acc = _bfma([(A[k], B[k]) for k in idx], acc, m, m.rounding)
        if m.late_c:
            acc = Fraction(round_fraction(acc + d, m.out_format, Rounding.NEAREST))
        d = acc
    return float(d)
