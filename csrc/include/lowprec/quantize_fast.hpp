// Shorter forms of quantize_block for the modes used most: nearest (float32 and float64 inputs)
// and stochastic, exact or with r random bits (float32 and float64 inputs). Each gives the bits of
// round_one (quantize.hpp) on every input, in fewer vector instructions:
//   * nearest, region N: the pattern a is rounded by adding 2^(dN-1) - 1 plus its parity bit and
//     clearing the low dN bits (a carry into the exponent is the binade change, as in round_one);
//     region S: (|x| + C) - C in T arithmetic with C = 2^(emin - mS + M), whose ulp is the target's
//     subnormal spacing 2^(emin - mS); both operations are exact but the first, which rounds to
//     nearest-even on that grid (ties to an even multiple, i.e. an even code).
//   * stochastic, float32, region N: the discarded fraction lo / 2^dN (dN <= 23) is compared with the top dN
//     bits of the random word u: up iff (u >> (64 - dN)) < lo, the rule of round_one, from the high
//     32 bits of u alone. Region S: |x| * 2^(31 - emin) is an integer X < 2^31 whenever
//     |x| >= 2^(emin - 8) (24 significant bits, none below 2^(emin - 31)); X / 2^F, F = 31 - mS, is
//     |x| in units of the subnormal spacing, so the same comparison applies with F bits. Smaller
//     nonzero |x| ("tiny": more than 32 discarded bits) are recomputed one by one by round_one;
//     when they are frequent and the target has at most 7 fraction bits, they are decided from
//     floor(fraction * 2^32) instead, unless the high half of u equals it (probability 2^-32).
//   * stochastic, float64: the fraction in 64-bit fixed point, compared with all of u; region S
//     elements are redone one by one, or, when frequent, decided by round_one's shift form (see
//     FastStochastic64).
//   * r random bits: the fraction is first rounded to nearest-even at r bits (when it has more),
//     t in [0, 2^r], and up iff the top r bits of u are below t, as in round_one.
// In place (y == x), each block is rounded from a copy of its inputs (see quantize_run).
// A target whose constants do not fit T (|emin| too large for the scalings above) uses quantize_block.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"
#include "lowprec/rng.hpp"

namespace lowprec {

// An infinite input needs no case of its own when it rounds to a pattern above maxpat (the pattern of
// inf rounds to inf or above in both forms) and the result of an overflow is that of an infinity:
// true for nearest and stochastic rounding (no directed saturation) whenever max < inf in T.
template <class T> inline bool inf_as_overflow(const Lowered<T>& L) {
  return L.maxpat < Lowered<T>::INF && L.ovf_pos == L.inf_val;
}

// The last steps of every short form: overflow (an infinite input lands there too, see
// inf_as_overflow), NaN, the sign of a zero result; returns the value of sign | mag.
template <class T>
LP_INLINE T finish_fast(typename FloatTraits<T>::U a, typename FloatTraits<T>::U sign, typename FloatTraits<T>::U mag,
                        const Lowered<T>& L) {
  using U = typename FloatTraits<T>::U;
  using S = typename FloatTraits<T>::S;
  mag = S(mag) > S(L.maxpat) ? L.ovf_pos : mag;
  mag = S(a) > S(Lowered<T>::INF) ? Lowered<T>::QNAN : mag;
  const U s = mag == 0 ? (sign & L.zero_sign) : sign;
  return bit_cast<T>(s | mag);
}

template <class T> struct FastNearest {
  using U = typename FloatTraits<T>::U;
  static constexpr int M = FloatTraits<T>::M;
  U half_m1;  // 2^(dN-1) - 1 (0 when dN = 0)
  U odd_bit;  // 1, or 0 when dN = 0 (nothing is discarded)
  U keep;     // clears the dN discarded bits
  T snap;     // C = 2^(emin - mS + M) when region S is reachable
  bool ok;

  FastNearest(const QuantParams& p, const Lowered<T>& L) {
    const int dN = M - p.man_bits;
    half_m1 = dN > 0 ? (U(1) << (dN - 1)) - 1 : U(0);
    odd_bit = dN > 0 ? U(1) : U(0);
    keep = ~((U(1) << dN) - 1);
    const int mS = p.subnormals ? p.man_bits : 0;
    const int c_exp = p.emin - mS + M;
    ok = (L.norm_pat == 0 || c_exp <= FloatTraits<T>::B) && inf_as_overflow(L);
    snap = L.norm_pat != 0 && ok ? static_cast<T>(std::ldexp(1.0, c_exp)) : T(1);
  }
};

template <class T>
LP_INLINE T round_nearest_fast(T x, const Lowered<T>& L, const FastNearest<T>& F) {
  using U = typename FloatTraits<T>::U;
  using S = typename FloatTraits<T>::S;
  using Lw = Lowered<T>;
  const U bits = bit_cast<U>(x);
  const U sign = bits & Lw::SIGN;
  const U a = bits ^ sign;
  const U odd = ((a >> L.dN) ^ L.parity_flip) & F.odd_bit;
  const U magN = (a + F.half_m1 + odd) & F.keep;
  const U magS = bit_cast<U>(T(bit_cast<T>(a) + F.snap) - F.snap);
  U mag = S(a) < S(L.norm_pat) ? magS : magN;
  return finish_fast<T>(a, sign, mag, L);
}

// Per-call constants of the float32 stochastic form. The discarded fraction of either region is
// put in 32-bit fixed point, g = lo << (32 - d) (d = dN, or F in region S; exact as lo < 2^d, d <= 31).
// Exact rounding: up iff u_hi < g, i.e. (u >> (64 - d)) < lo. With r bits (k = 32 - r > 0): up iff
// T < RNE(g / 2^k), T = u_hi >> k the top r bits of u; written as g + (T & 1) > T * 2^k + 2^(k-1).
struct FastStochastic {
  uint32_t maskN, unitN, keepN, shN;  // region N: fraction mask, one unit, kept bits, 32 - dN
  uint32_t maskS, F, shS;             // region S: fraction mask of X, F = 31 - mS, 32 - F
  uint32_t keepR, halfR, kR;          // r bits: clears the low k bits of u_hi; 2^(k-1); k
  uint32_t tiny_pat;  // pattern of 2^(emin - 8): below it X is not exact (the "tiny" lanes)
  bool wide_ok;       // mS <= 7: tiny lanes can be decided from G = floor(|x| / s * 2^32) (see below)
  float scaleS;       // 2^(31 - emin)
  float scaleT;       // 2^(1 + mS): from X's scale to G's
  float limS;         // largest float below 2^31 (keeps the conversion of other lanes in range)
  bool ok;

  FastStochastic(const QuantParams& p, const Lowered<float>& L) {
    const int dN = 23 - p.man_bits;
    const int mS = p.subnormals ? p.man_bits : 0;
    maskN = (uint32_t(1) << dN) - 1;
    unitN = uint32_t(1) << dN;
    keepN = ~maskN;
    shN = dN > 0 ? uint32_t(32 - dN) : 0u;  // dN = 0: nothing is discarded, g = 0, never up
    F = uint32_t(31 - mS);
    maskS = (uint32_t(1) << F) - 1;
    shS = 32 - F;
    // With r >= 31 no fraction has more than r bits (dN <= 23, F <= 31): the exact rule applies.
    const int k = p.mode == MODE_STOCHASTIC_R && p.sr_bits < 31 ? 32 - p.sr_bits : 0;
    kR = uint32_t(k);
    keepR = k > 0 ? ~((uint32_t(1) << k) - 1) : ~uint32_t(0);
    halfR = k > 0 ? uint32_t(1) << (k - 1) : 0u;
    const bool reach_S = L.norm_pat != 0;
    ok = (!reach_S || p.emin >= -96) && inf_as_overflow(L);  // 2^(31 - emin) must be a float32
    tiny_pat = reach_S && ok ? bit_cast<uint32_t>(std::ldexp(1.0f, p.emin - 8)) : 0u;
    scaleS = reach_S && ok ? std::ldexp(1.0f, 31 - p.emin) : 1.0f;
    scaleT = std::ldexp(1.0f, 1 + mS);
    wide_ok = reach_S && mS <= 7;
    limS = 2147483520.0f;
  }
  uint32_t redo_pat(bool) const { return tiny_pat; }  // both forms flag tiny lanes only
};

// ROUNDR: r-bit rounding with r < 31 (kR > 0); otherwise the exact rule.
// Tiny lanes (|x| < 2^(emin - 8), more than 32 discarded bits) set `redo`, and are recomputed by
// round_one; with TINY (mS <= 7, so q = 0 there) they are decided here from G = floor(f * 2^32), f
// the fraction |x| / s < 1/2, since u_hi < G means up and u_hi > G down (r bits: G against the
// threshold T * 2^k + 2^(k-1) likewise); only equality, at probability 2^-32, sets `redo`.
template <bool ROUNDR, bool TINY>
LP_INLINE float round_stochastic_fast(float x, uint64_t counter, const Lowered<float>& L, const FastStochastic& F,
                                      uint32_t& redo) {
  using U = uint32_t;
  using S = int32_t;
  using Lw = Lowered<float>;
  const U bits = bit_cast<U>(x);
  const U sign = bits & Lw::SIGN;
  const U a = bits ^ sign;
  const bool regS = S(a) < S(L.norm_pat);
  const U tiny = (S(a) < S(F.tiny_pat) ? U(1) : U(0)) & (a != 0 ? U(1) : U(0));
  // Region S as the fixed-point integer X = |x| * 2^(31 - emin), clamped so that every lane converts.
  const float xs = bit_cast<float>(a) * F.scaleS;
  const U X = U(S(xs < F.limS ? xs : F.limS));
  const U uh = mix64_hi(counter);  // the high half of the element's random word
  U g = regS ? (X & F.maskS) << F.shS : (a & F.maskN) << F.shN;
  const U thr = (uh & F.keepR) | F.halfR;  // r bits only
  if constexpr (TINY) {
    const float xt = xs * F.scaleT;
    const U G = U(S(xt < F.limS ? xt : F.limS));
    g = tiny != 0 ? G : g;
    U tie;
    if constexpr (ROUNDR) tie = g == thr ? U(1) : U(0);
    else tie = g == uh ? U(1) : U(0);
    redo |= tiny & tie;
  } else {
    redo |= tiny;
  }
  bool up;
  if constexpr (ROUNDR) {
    up = g + ((uh >> F.kR) & U(1)) > thr;
  } else {
    up = uh < g;
  }
  const U magN = (a & F.keepN) + (up ? F.unitN : U(0));
  const U Q = (X >> F.F) + (up ? U(1) : U(0));
  const U magS = bit_cast<U>(float(S(Q)) * L.subscale);
  U mag = regS ? magS : magN;
  return finish_fast<float>(a, sign, mag, L);
}

// Per-call constants of the float64 stochastic forms. The discarded fraction is put in 64-bit fixed
// point, g = lo * 2^(64 - d), all its bits in one word: exact rounding goes up iff u < g; with r
// bits (k = 64 - r) iff g + (T & 1) > T * 2^k + 2^(k-1), T = u >> k, as in the float32 form.
//   * narrow form (WIDE = false): region N only, lo the low dN bits of the pattern a, shifts by
//     per-call constants; lanes of region S are recomputed by round_one;
//   * wide form: both regions in one shift form, as in round_one (v the pattern a in region N, the
//     significand in region S; d = dN or dS) for lanes with d <= 63; lanes with d > 63 ("tiny":
//     |x| < 2^(emin - 11 - mS)) are recomputed by round_one.
struct FastStochastic64 {
  uint64_t maskN, unitN, keepN, shN;  // region N: fraction mask, one unit, kept bits, 64 - dN
  uint64_t keepR, halfR, kR;          // r bits: clears the low k bits of u; 2^(k-1); k (0: exact rule)
  uint64_t tiny_pat;                  // wide form: lanes below this pattern (and nonzero) have d > 63
  uint64_t norm_pat;                  // narrow form: lanes below this pattern (and nonzero) are redone
  bool wide_ok;                       // region S is reachable: the wide form decides more lanes
  bool ok;

  FastStochastic64(const QuantParams& p, const Lowered<double>& L) {
    const int dN = 52 - p.man_bits;
    maskN = (uint64_t(1) << dN) - 1;
    unitN = uint64_t(1) << dN;
    keepN = ~maskN;
    shN = dN > 0 ? uint64_t(64 - dN) : 0u;  // dN = 0: nothing is discarded, g = 0, never up
    const int k = p.mode == MODE_STOCHASTIC_R ? 64 - p.sr_bits : 0;  // sr_bits <= 52
    kR = uint64_t(k);
    keepR = k > 0 ? ~((uint64_t(1) << k) - 1) : ~uint64_t(0);
    halfR = k > 0 ? uint64_t(1) << (k - 1) : 0u;
    // d = dS0 - max(E, 1) > 63 iff E < dS0 - 63 (a subnormal input, E = 0, counts as E = 1).
    const int64_t t = int64_t(L.dS0) - 63;
    tiny_pat = L.norm_pat != 0 && t > 0 ? uint64_t(t) << 52 : 0u;
    norm_pat = L.norm_pat;
    wide_ok = L.norm_pat != 0;
    ok = inf_as_overflow(L);
  }
  uint64_t redo_pat(bool wide) const { return wide ? tiny_pat : norm_pat; }
};

template <bool ROUNDR, bool WIDE>
LP_INLINE double round_stochastic_fast(double x, uint64_t counter, const Lowered<double>& L,
                                       const FastStochastic64& F, uint64_t& redo) {
  using U = uint64_t;
  using S = int64_t;
  using Lw = Lowered<double>;
  const U bits = bit_cast<U>(x);
  const U sign = bits & Lw::SIGN;
  const U a = bits ^ sign;
  const U nonzero = a != 0 ? U(1) : U(0);
  U g, Q, mag;
  const U u = random_word_at(counter);
  if constexpr (WIDE) {
    const U inS = S(a) < S(L.norm_pat) ? ~U(0) : U(0);
    const U E = a >> 52;
    const U sig = (a & Lw::FMASK) | (E != 0 ? Lw::HIDDEN : U(0));
    const S dS = L.dS0 - (S(E) > 1 ? S(E) : S(1));
    const U v = (sig & inS) | (a & ~inS);
    S d = S((U(dS) & inS) | (U(L.dN) & ~inS));
    redo |= (S(a) < S(F.tiny_pat) ? U(1) : U(0)) & nonzero;
    d = d < 63 ? d : S(63);  // tiny lanes (redone) keep their shifts in range
    Q = v >> d;
    g = low_bits_on_top(v, d);
    mag = inS;  // the region, until Q is final
  } else {
    redo |= (S(a) < S(L.norm_pat) ? U(1) : U(0)) & nonzero;  // region S lanes
    g = (a & F.maskN) << F.shN;
  }
  constexpr U FLIP = U(1) << 63;  // unsigned order as signed order of the sign-flipped words
  U up;
  if constexpr (ROUNDR) {
    const U thr = (u & F.keepR) | F.halfR;
    up = S((g + ((u >> F.kR) & U(1))) ^ FLIP) > S(thr ^ FLIP) ? U(1) : U(0);
  } else {
    up = S(u ^ FLIP) < S(g ^ FLIP) ? U(1) : U(0);
  }
  if constexpr (WIDE) {
    Q += up;
    const U magS = bit_cast<U>(small_int_value<double>(Q) * L.subscale);
    mag = mag != 0 ? magS : (Q << L.dN);
  } else {
    mag = (a & F.keepN) + (up != 0 ? F.unitN : U(0));
  }
  return finish_fast<double>(a, sign, mag, L);
}

template <class T> struct FastStochasticOf;
template <> struct FastStochasticOf<float> { using type = FastStochastic; };
template <> struct FastStochasticOf<double> { using type = FastStochastic64; };

constexpr int64_t SR_BLOCK = 256;

// One block of at most SR_BLOCK elements; returns how many tiny elements were redone by round_one.
template <class T, int MODE, bool ROUNDR, bool WIDE>
inline int64_t stochastic_block(const T* __restrict x, T* __restrict y, int64_t len, uint64_t first,
                                const QuantParams& p, const Lowered<T>& L,
                                const typename FastStochasticOf<T>::type& F) {
  using U = typename FloatTraits<T>::U;
  using S = typename FloatTraits<T>::S;
  uint64_t ctr = random_counter(p.key, first);
  U any = 0;
#pragma omp simd linear(ctr : GOLDEN) reduction(| : any)
  for (int64_t i = 0; i < len; ++i) {
    y[i] = round_stochastic_fast<ROUNDR, WIDE>(x[i], ctr, L, F, any);
    ctr += GOLDEN;
  }
  if (!any) return 0;
  // The elements a block's form leaves (a superset of those it flagged): found with a vector pass,
  // redone one by one.
  alignas(64) uint8_t tiny[SR_BLOCK];
  const U pat = F.redo_pat(WIDE);
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const U a = bit_cast<U>(x[i]) & ~Lowered<T>::SIGN;
    tiny[i] = uint8_t((S(a) < S(pat) ? 1u : 0u) & (a != 0 ? 1u : 0u));
  }
  int64_t redone = 0;
  for (int64_t i = 0; i < len; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, tiny + i, size_t(len - i < 8 ? len - i : 8));
    for (; word != 0; word &= word - 1, ++redone) {
      const int64_t j = i + __builtin_ctzll(word) / 8;
      const Rounded<T> r = round_one<T, MODE>(x[j], random_counter(p.key, first + uint64_t(j)), L);
      y[j] = bit_cast<T>(r.sign | r.mag);
    }
  }
  return redone;
}

// Blocks start in the narrow form, which redoes its uncommon elements one by one (float32: tiny
// values; float64: region S); when the target allows the wide form, which decides them in vector
// code (F.wide_ok), and they pass 1/512 of the elements seen, the remaining blocks switch to it.
// Both forms give the same bits, so the switch changes only speed.
template <class T, int MODE, bool ROUNDR>
inline void quantize_stochastic_fast(const T* __restrict x, T* __restrict y, int64_t n, uint64_t first,
                                     const QuantParams& p, const Lowered<T>& L,
                                     const typename FastStochasticOf<T>::type& F) {
  int64_t seen = 0, redone = 0;
  bool wide = false;
  for (int64_t b = 0; b < n; b += SR_BLOCK) {
    const int64_t len = n - b < SR_BLOCK ? n - b : SR_BLOCK;
    const uint64_t f = first + uint64_t(b);
    if (wide) {
      stochastic_block<T, MODE, ROUNDR, true>(x + b, y + b, len, f, p, L, F);
      continue;
    }
    redone += stochastic_block<T, MODE, ROUNDR, false>(x + b, y + b, len, f, p, L, F);
    seen += len;
    wide = F.wide_ok && redone * 512 > seen;
  }
}

// quantize_block, through the shorter forms where they apply; x and y do not overlap.
template <class T, int MODE>
inline void quantize_distinct(const T* __restrict x, T* __restrict y, int64_t n, uint64_t first,
                              const QuantParams& p) {
  if constexpr (MODE == MODE_NEAREST) {
    const Lowered<T> L(p);
    const FastNearest<T> F(p, L);
    if (F.ok) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = round_nearest_fast<T>(x[i], L, F);
      return;
    }
  } else if constexpr (MODE == MODE_STOCHASTIC || MODE == MODE_STOCHASTIC_R) {
    const Lowered<T> L(p);
    const typename FastStochasticOf<T>::type F(p, L);
    if (F.ok) {
      if (F.kR > 0) quantize_stochastic_fast<T, MODE, true>(x, y, n, first, p, L, F);
      else quantize_stochastic_fast<T, MODE, false>(x, y, n, first, p, L, F);
      return;
    }
  }
  quantize_block<T, MODE>(x, y, n, first, p);
}

// quantize_distinct, also in place (y == x): then each block is rounded from a copy of its inputs,
// since the forms that redo some elements read them again after the vector pass.
template <class T, int MODE>
inline void quantize_run(const T* x, T* y, int64_t n, uint64_t first, const QuantParams& p) {
  if (x != y) {
    quantize_distinct<T, MODE>(x, y, n, first, p);
    return;
  }
  constexpr int64_t BLOCK = 2048;
  alignas(64) T buf[BLOCK];
  for (int64_t b = 0; b < n; b += BLOCK) {
    const int64_t len = n - b < BLOCK ? n - b : BLOCK;
    std::memcpy(buf, x + b, size_t(len) * sizeof(T));
    quantize_distinct<T, MODE>(buf, y + b, len, first + uint64_t(b), p);
  }
}

}  // namespace lowprec
