// Per-addition emulated accumulation: every addition of a dot product is rounded to the
// accumulator format, in sequential, chunked or pairwise order.
//
// Values are held in V = double (general path) or float (deterministic modes with accumulators of
// at most 22 significant bits inside float's range). Products must be exact in V (the Python layer
// checks this). One addition s + t is evaluated exactly as the pair (hi, err) of TwoSum and
// collapsed to hi rounded to odd in V's precision P (hi itself when exact, else the neighbour of hi
// toward err when hi's last bit is even); rounding that value to an accumulator with at most P - 2
// significant bits gives the correctly rounded sum in every deterministic mode. Stochastic modes
// draw their probability from the sum rounded to odd at 53 bits: on double lanes directly; on float
// lanes (exact stochastic rounding only, sequential or chunked order, no product rounding) by a
// short form for sums that are exact in float, and the double form for any other step.
//
// Work is done on panels of W lanes (W output elements computed side by side, one per lane) whose
// operands the dispatcher has packed into contiguous K x W double buffers, so that the lane loops
// vectorise. The random word of a rounding step is a pure function of (key, index): the dispatcher
// assigns indices per output element (see AccumSteps).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"
#include "lowprec/rng.hpp"

namespace lowprec {

// The exact sum s + t = hi + err (TwoSum) rounded to odd in V's precision: hi when exact, else the
// neighbour of hi toward err when hi's last bit is even. A sum of finite s and t that overflows V
// becomes the largest finite value (odd, inexact), which every mode then rounds as an overflow.
template <class V> LP_INLINE V round_odd(V s, V t, V hi, V err) {
  using U = typename FloatTraits<V>::U;
  constexpr U ONES = ~U(0);
  constexpr int SB = 8 * sizeof(U) - 1;
  const U hb = bit_cast<U>(hi);
  const U inexact = (err != V(0)) & (hi - hi == V(0)) ? ONES : U(0);
  const U even = (hb & 1) == 0 ? ONES : U(0);
  // exact magnitude above |hi| when err has the sign of hi
  const U up = ((bit_cast<U>(err) ^ hb) >> SB) == 0 ? U(1) : ONES;
  const U ro = hb + (up & inexact & even);
  const U big = (hb & (U(1) << SB)) | (Lowered<V>::INF - 1);
  const bool ovf = (hi - hi != V(0)) & (s - s == V(0)) & (t - t == V(0));
  return bit_cast<V>(ovf ? big : ro);
}

// s + t rounded to the format of L (exactly, see above); ctr is the step's random counter.
template <int MODE, class V> LP_INLINE V add_round(V s, V t, uint64_t ctr, const Lowered<V>& L) {
  const V hi = s + t;
  const V z = hi - s;
  const V err = (s - (hi - z)) + (t - z);
  const Rounded<V> r = round_one<V, MODE>(round_odd(s, t, hi, err), ctr, L);
  return bit_cast<V>(r.sign | r.mag);
}

template <int MODE, class V> LP_INLINE V round_to(V x, uint64_t ctr, const Lowered<V>& L) {
  const Rounded<V> r = round_one<V, MODE>(x, ctr, L);
  return bit_cast<V>(r.sign | r.mag);
}

// Start a panel: c[l] (nullptr: no addend) is rounded to the accumulator with index c0 + l * cs.
template <int MODE, class V>
inline void accum_init(AccumStateT<V>& S, const V* c, int64_t K, const AccumSteps& st, const AccumParams& p,
                       const Lowered<V>& L) {
  constexpr int W = ACC_LANES;
  for (int l = 0; l < W; ++l) {
    const uint64_t cc = random_counter(p.acc.key, st.c0 + uint64_t(l) * st.cs);
    S.s[l] = c ? round_to<MODE>(c[l], cc, L) : V(0);
    S.q[l] = V(0);
    S.ct[l] = random_counter(p.acc.key, st.t0 + uint64_t(l) * st.ts);
    S.cm[l] = S.ct[l] + uint64_t(K) * GOLDEN;
    S.cp[l] = random_counter(p.prod.key, st.p0 + uint64_t(l) * st.ps);
  }
  S.depth = 0;
  S.k = 0;
  S.K = K;
}

// The short form of exact stochastic rounding, for the common case: the sum s + t, rounded to odd
// at 53 bits, is zero or a finite normal value of the accumulator that does not overflow it.
// round_one then rounds the pattern a of |sum| at d = dN bits: with lo = a mod 2^dN, up iff the top
// dN bits of the random word are below lo, and the result is a - lo (+ 2^dN).
//   * double lanes: the sum is rounded to odd (as round_odd) in the lane itself;
//   * float lanes: only sums that are exact in float (TwoSum's error zero) are taken; the others are
//     flagged. The double pattern of such a sum is its float pattern followed by 29 zero bits, so
//     comparing the top 52 - m bits of the word with its low 52 - m bits is comparing the top
//     dN = 23 - m bits with the low dN bits of the float pattern. Those top bits (dN <= 23) are not
//     changed by mix64's last xor-shift, which moves bits down by 31 places.
template <class V> struct SrShort {
  using U = typename FloatTraits<V>::U;
  U dN, low, ulp, norm, maxpat, zero_sign;
  explicit SrShort(const Lowered<V>& L)
      : dN(U(L.dN)), low((U(1) << L.dN) - 1), ulp(U(1) << L.dN), norm(L.norm_pat > 0 ? L.norm_pat : 1),
        maxpat(L.maxpat), zero_sign(L.zero_sign) {}
};

// The word of counter z before mix64's last xor-shift: the same top 33 bits as random_word_at(z).
LP_INLINE uint64_t random_word_top(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  return (z ^ (z >> 27)) * 0x94D049BB133111EBull;
}

// One step on ACC_LANES lanes: x[l] = x[l] + y[l] by the short form, ctr[l] stepped; flag[l] gets a
// nonzero bit where the lane is outside the short form's case (its x[l] must then be redone).
template <class V>
LP_INLINE void sr_short_step(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr,
                             typename FloatTraits<V>::U* __restrict flag, const SrShort<V>& C) {
  using U = typename FloatTraits<V>::U;
  using S = typename FloatTraits<V>::S;
  constexpr bool DOUBLE = std::is_same<V, double>::value;
  constexpr U SIGN = Lowered<V>::SIGN, INF = Lowered<V>::INF;
  const int shift = 64 - int(C.dN);
#pragma omp simd
  for (int l = 0; l < ACC_LANES; ++l) {
    const V s = x[l], t = y[l];
    const V h = s + t;
    const V z = h - s;
    const V err = (s - (h - z)) + (t - z);
    U hb = bit_cast<U>(h);
    const U inexact = err != V(0) ? ~U(0) : 0;
    if constexpr (DOUBLE) {
      // rounded to odd: an inexact sum gets an odd last bit, h's pattern or the one below it when
      // err points toward zero
      const U toward_zero = S(bit_cast<U>(err) ^ hb) < 0 ? ~U(0) : 0;
      hb = (hb + (toward_zero & inexact)) | (inexact & 1);
    }
    const U sign = hb & SIGN, a = hb ^ sign;
    const U lo = a & C.low;
    const U r = DOUBLE ? U(random_word_at(ctr[l]) >> shift) : U(random_word_top(ctr[l]) >> shift);
    const U mag = (a - lo) + (r < lo ? C.ulp : 0);
    flag[l] |= (DOUBLE ? U(0) : inexact) | (a - 1 < C.norm - 1) | (a >= INF) | (mag > C.maxpat) ? 1 : 0;
    // a zero sum (a = 0, so lo = 0 and mag = 0) keeps its sign where the format has -0
    x[l] = bit_cast<V>(mag | (a != 0 ? sign : sign & C.zero_sign));
    ctr[l] += GOLDEN;
  }
}

template <class U> LP_INLINE bool any_lane(const U* flag) {
  U any = 0;
  for (int l = 0; l < ACC_LANES; ++l) any |= flag[l];
  return any != 0;
}

// lanes_add by the short form; returns false, changing nothing, when a lane is outside its case.
template <class V>
LP_INLINE bool lanes_add_sr(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr, const Lowered<V>& L) {
  constexpr int W = ACC_LANES;
  alignas(64) V xs[W];
  alignas(64) uint64_t cs[W];
  alignas(64) typename FloatTraits<V>::U flag[W] = {};
  std::memcpy(xs, x, sizeof xs);
  std::memcpy(cs, ctr, sizeof cs);
  sr_short_step(xs, y, cs, flag, SrShort<V>(L));
  if (any_lane(flag)) return false;
  std::memcpy(x, xs, sizeof xs);
  std::memcpy(ctr, cs, sizeof cs);
  return true;
}

// x[l] = x[l] + y[l] rounded, stepping the counters ctr[l] (the general form).
template <int MODE, class V>
LP_INLINE void lanes_add_general(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr,
                                 const Lowered<V>& L) {
  const Lowered<V> Lc = L;  // a private copy: no store in the loop can alias its fields
#pragma omp simd
  for (int l = 0; l < ACC_LANES; ++l) {
    x[l] = add_round<MODE>(x[l], y[l], ctr[l], Lc);
    ctr[l] += GOLDEN;
  }
}

// lanes_add_general for exact stochastic rounding on double lanes (float lanes go through double:
// their values and terms are exact there, and so are the results, values of the accumulator).
template <class V>
LP_INLINE void lanes_add_sr_general(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr,
                                    const Lowered<double>& L64) {
  if constexpr (std::is_same<V, double>::value) {
    lanes_add_general<MODE_STOCHASTIC>(x, y, ctr, L64);
  } else {
    constexpr int W = ACC_LANES;
    alignas(64) double xd[W], yd[W];
    for (int l = 0; l < W; ++l) xd[l] = double(x[l]), yd[l] = double(y[l]);
    lanes_add_general<MODE_STOCHASTIC>(xd, yd, ctr, L64);
    for (int l = 0; l < W; ++l) x[l] = V(xd[l]);
  }
}

// x[l] = x[l] + y[l] rounded stochastically (exact rule): the short form, else the general one.
template <class V>
LP_INLINE void lanes_add_stochastic(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr,
                                    const Lowered<V>& L, const Lowered<double>& L64) {
  if (!lanes_add_sr(x, y, ctr, L)) lanes_add_sr_general(x, y, ctr, L64);
}

// x[l] = x[l] + y[l] rounded, stepping the counters ctr[l].
template <int MODE, class V>
LP_INLINE void lanes_add(V* __restrict x, const V* __restrict y, uint64_t* __restrict ctr, const Lowered<V>& L) {
  if constexpr (MODE == MODE_STOCHASTIC && std::is_same<V, double>::value) {
    lanes_add_stochastic(x, y, ctr, L, L);
  } else {
    lanes_add_general<MODE>(x, y, ctr, L);
  }
}

// The term of step i in lane l (see accum_feed).
template <bool BCAST, class V>
LP_INLINE void lanes_term(V* __restrict t, const V* __restrict a, const V* __restrict b, int64_t i) {
  constexpr int W = ACC_LANES;
  if (BCAST) {
    const V ai = a[i];
    for (int l = 0; l < W; ++l) t[l] = ai * b[i * W + l];
  } else if (b != nullptr) {
    for (int l = 0; l < W; ++l) t[l] = a[i * W + l] * b[i * W + l];
  } else {
    for (int l = 0; l < W; ++l) t[l] = a[i * W + l];
  }
}

// accum_feed for exact stochastic rounding, sequential or chunked order, exact products: runs of up
// to 8 steps (inside one chunk) by the short form, the lanes' flags tested once per run; a run with
// a flagged lane is redone from its start by the general form on double lanes (L64).
template <class V, bool BCAST>
inline void accum_feed_sr(AccumStateT<V>& S, const V* __restrict a, const V* __restrict b, int64_t n,
                          const AccumParams& p, const Lowered<V>& L, const Lowered<double>& L64) {
  constexpr int W = ACC_LANES;
  constexpr int64_t RUN = 8;
  const SrShort<V> C(L);
  const bool chunked = p.order == ORDER_CHUNKED;
  V* x = chunked ? S.q : S.s;
  alignas(64) V x0[W], t[W];
  alignas(64) uint64_t c0[W];
  alignas(64) typename FloatTraits<V>::U flag[W];
  for (int64_t i = 0; i < n;) {
    int64_t run = n - i < RUN ? n - i : RUN;
    if (chunked) {
      const int64_t left = p.chunk - S.k % p.chunk;
      run = run < left ? run : left;
    }
    std::memcpy(x0, x, sizeof x0);
    std::memcpy(c0, S.ct, sizeof c0);
    for (int l = 0; l < W; ++l) flag[l] = 0;
    for (int64_t j = i; j < i + run; ++j) {
      lanes_term<BCAST>(t, a, b, j);
      sr_short_step(x, t, S.ct, flag, C);
    }
    if (any_lane(flag)) {
      std::memcpy(x, x0, sizeof x0);
      std::memcpy(S.ct, c0, sizeof c0);
      for (int64_t j = i; j < i + run; ++j) {
        lanes_term<BCAST>(t, a, b, j);
        lanes_add_sr_general(x, t, S.ct, L64);
      }
    }
    i += run;
    S.k += run;
    // chunk j's merge uses index t0 + K + j (runs end at chunk ends and the last of the S.K terms)
    if (chunked && (S.k % p.chunk == 0 || S.k == S.K)) {
      lanes_add_stochastic(S.s, S.q, S.cm, L, L64);
      for (int l = 0; l < W; ++l) S.q[l] = V(0);
    }
  }
}

// Feed the next n terms: term i of lane l is a(i, l) * b[i * W + l] with a(i, l) = a[i] (BCAST)
// or a[i * W + l]; b == nullptr: the term is a(i, l) alone.
template <int MODE, bool BCAST, class V>
inline void accum_feed(AccumStateT<V>& S, const V* __restrict a, const V* __restrict b, int64_t n,
                       const AccumParams& p, const Lowered<V>& L, const Lowered<V>& LP) {
  constexpr int W = ACC_LANES;
  if constexpr (MODE == MODE_STOCHASTIC) {
    if (p.order != ORDER_PAIRWISE && !p.has_prod) {  // on float lanes, the only stochastic case
      if constexpr (std::is_same<V, double>::value) accum_feed_sr<V, BCAST>(S, a, b, n, p, L, L);
      else accum_feed_sr<V, BCAST>(S, a, b, n, p, L, Lowered<double>(p.acc));
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    V* __restrict t = p.order == ORDER_PAIRWISE ? S.stack + int64_t(S.depth) * W : S.t;
    lanes_term<BCAST>(t, a, b, i);
    if (p.has_prod) {
      const uint64_t off = uint64_t(S.k) * GOLDEN;
      const Lowered<V> LPc = LP;
#pragma omp simd
      for (int l = 0; l < W; ++l) t[l] = round_to<MODE>(t[l], S.cp[l] + off, LPc);
    }
    ++S.k;
    if (p.order == ORDER_SEQUENTIAL) {
      lanes_add<MODE>(S.s, t, S.ct, L);
    } else if (p.order == ORDER_CHUNKED) {
      // intra-chunk steps use indices t0 + k, the merge of chunk j uses t0 + K + j
      lanes_add<MODE>(S.q, t, S.ct, L);
      if (S.k % p.chunk == 0 || S.k == S.K) {
        lanes_add<MODE>(S.s, S.q, S.cm, L);
        for (int l = 0; l < W; ++l) S.q[l] = V(0);
      }
    } else {  // pairwise, bottom-up: equal-size subtrees merge as soon as they exist
      S.sizes[S.depth++] = 1;
      while (S.depth >= 2 && S.sizes[S.depth - 1] == S.sizes[S.depth - 2]) {
        lanes_add<MODE>(S.stack + int64_t(S.depth - 2) * W, S.stack + int64_t(S.depth - 1) * W, S.ct, L);
        S.sizes[S.depth - 2] *= 2;
        --S.depth;
      }
    }
  }
}

// Finish a panel into out[0..W): pairwise merges the unequal subtrees left (smallest first, so an
// odd subtree passes up unchanged until it has a partner) and adds the tree to s with index t0 + K - 1.
template <int MODE, class V>
inline void accum_finish(AccumStateT<V>& S, V* __restrict out, const Lowered<V>& L) {
  constexpr int W = ACC_LANES;
  if (S.K > 0 && S.depth > 0) {  // pairwise
    while (S.depth >= 2) {
      lanes_add<MODE>(S.stack + int64_t(S.depth - 2) * W, S.stack + int64_t(S.depth - 1) * W, S.ct, L);
      S.sizes[S.depth - 2] += S.sizes[S.depth - 1];
      --S.depth;
    }
    lanes_add<MODE>(S.s, S.stack, S.ct, L);
    S.depth = 0;
  }
  for (int l = 0; l < W; ++l) out[l] = S.s[l];
}

}  // namespace lowprec
