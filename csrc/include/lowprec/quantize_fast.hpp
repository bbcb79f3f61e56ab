// Shorter forms of quantize_block for the modes used most: nearest (float32 and float64 inputs)
// and stochastic, exact or with r random bits (float32 inputs). Each gives the bits of round_one
// (quantize.hpp) on every input, in fewer vector instructions:
//   * nearest, region N: the pattern a is rounded by adding 2^(dN-1) - 1 plus its parity bit and
//     clearing the low dN bits (a carry into the exponent is the binade change, as in round_one);
//     region S: (|x| + C) - C in T arithmetic with C = 2^(emin - mS + M), whose ulp is the target's
//     subnormal spacing 2^(emin - mS); both operations are exact but the first, which rounds to
//     nearest-even on that grid (ties to an even multiple, i.e. an even code).
//   * stochastic, region N: the discarded fraction lo / 2^dN (dN <= 23) is compared with the top dN
//     bits of the random word u: up iff (u >> (64 - dN)) < lo, the rule of round_one, from the high
//     32 bits of u alone. Region S: |x| * 2^(31 - emin) is an integer X < 2^31 whenever
//     |x| >= 2^(emin - 8) (24 significant bits, none below 2^(emin - 31)); X / 2^F, F = 31 - mS, is
//     |x| in units of the subnormal spacing, so the same comparison applies with F bits. Smaller
//     nonzero |x| ("tiny": more than 32 discarded bits) are recomputed one by one by round_one;
//     when they are frequent and the target has at most 7 fraction bits, they are decided from
//     floor(fraction * 2^32) instead, unless the high half of u equals it (probability 2^-32).
//   * r random bits: the fraction is first rounded to nearest-even at r bits (when it has more),
//     t in [0, 2^r], and up iff the top r bits of u are below t, as in round_one.
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
  mag = S(mag) > S(L.maxpat) ? L.ovf_pos : mag;  // an infinite input lands here too (see `ok`)
  mag = S(a) > S(Lw::INF) ? Lw::QNAN : mag;
  const U s = mag == 0 ? (sign & L.zero_sign) : sign;
  return bit_cast<T>(s | mag);
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
  bool tiny_direct;   // mS <= 7: tiny lanes can be decided from G = floor(|x| / s * 2^32) (see below)
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
    tiny_direct = reach_S && mS <= 7;
    limS = 2147483520.0f;
  }
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
  mag = S(mag) > S(L.maxpat) ? L.ovf_pos : mag;  // an infinite input lands here too (see `ok`)
  mag = S(a) > S(Lw::INF) ? Lw::QNAN : mag;
  const U s = mag == 0 ? (sign & L.zero_sign) : sign;
  return bit_cast<float>(s | mag);
}

constexpr int64_t SR_BLOCK = 256;

// One block of at most SR_BLOCK elements; returns how many tiny elements were redone by round_one.
template <int MODE, bool ROUNDR, bool TINY>
inline int64_t stochastic_block(const float* __restrict x, float* __restrict y, int64_t len, uint64_t first,
                                const QuantParams& p, const Lowered<float>& L, const FastStochastic& F) {
  uint64_t ctr = random_counter(p.key, first);
  uint32_t any = 0;
#pragma omp simd linear(ctr : GOLDEN) reduction(| : any)
  for (int64_t i = 0; i < len; ++i) {
    y[i] = round_stochastic_fast<ROUNDR, TINY>(x[i], ctr, L, F, any);
    ctr += GOLDEN;
  }
  if (!any) return 0;
  // The tiny elements of a block that needs it: found with a vector pass, redone one by one.
  alignas(64) uint8_t tiny[SR_BLOCK];
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const uint32_t a = bit_cast<uint32_t>(x[i]) & 0x7FFFFFFFu;
    tiny[i] = uint8_t((int32_t(a) < int32_t(F.tiny_pat) ? 1u : 0u) & (a != 0 ? 1u : 0u));
  }
  int64_t redone = 0;
  for (int64_t i = 0; i < len; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, tiny + i, size_t(len - i < 8 ? len - i : 8));
    for (; word != 0; word &= word - 1, ++redone) {
      const int64_t j = i + __builtin_ctzll(word) / 8;
      const Rounded<float> r = round_one<float, MODE>(x[j], random_counter(p.key, first + uint64_t(j)), L);
      y[j] = bit_cast<float>(r.sign | r.mag);
    }
  }
  return redone;
}

// Blocks start in the form that redoes tiny elements one by one; when the target allows the form
// that decides them in vector code (F.tiny_direct) and they pass 1/512 of the elements seen, the
// remaining blocks switch to it. Both forms give the same bits, so the switch changes only speed.
template <int MODE, bool ROUNDR>
inline void quantize_stochastic_fast(const float* __restrict x, float* __restrict y, int64_t n, uint64_t first,
                                     const QuantParams& p, const Lowered<float>& L, const FastStochastic& F) {
  int64_t seen = 0, redone = 0;
  bool direct = false;
  for (int64_t b = 0; b < n; b += SR_BLOCK) {
    const int64_t len = n - b < SR_BLOCK ? n - b : SR_BLOCK;
    const uint64_t f = first + uint64_t(b);
    if (direct) {
      stochastic_block<MODE, ROUNDR, true>(x + b, y + b, len, f, p, L, F);
      continue;
    }
    redone += stochastic_block<MODE, ROUNDR, false>(x + b, y + b, len, f, p, L, F);
    seen += len;
    direct = F.tiny_direct && redone * 512 > seen;
  }
}

// quantize_block, through the shorter forms where they apply.
template <class T, int MODE>
inline void quantize_run(const T* __restrict x, T* __restrict y, int64_t n, uint64_t first, const QuantParams& p) {
  if constexpr (MODE == MODE_NEAREST) {
    const Lowered<T> L(p);
    const FastNearest<T> F(p, L);
    if (F.ok) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = round_nearest_fast<T>(x[i], L, F);
      return;
    }
  } else if constexpr ((MODE == MODE_STOCHASTIC || MODE == MODE_STOCHASTIC_R) && sizeof(T) == 4) {
    const Lowered<float> L(p);
    const FastStochastic F(p, L);
    if (F.ok) {
      if (F.kR > 0) quantize_stochastic_fast<MODE, true>(x, y, n, first, p, L, F);
      else quantize_stochastic_fast<MODE, false>(x, y, n, first, p, L, F);
      return;
    }
  }
  quantize_block<T, MODE>(x, y, n, first, p);
}

}  // namespace lowprec
