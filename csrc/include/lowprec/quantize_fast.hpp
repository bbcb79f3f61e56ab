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
//     nonzero |x| (more than 32 discarded bits) are rare: a block holding one is recomputed by
//     quantize_block.
//   * r random bits: the fraction is first rounded to nearest-even at r bits (when it has more),
//     t in [0, 2^r], and up iff the top r bits of u are below t, as in round_one.
// A target whose constants do not fit T (|emin| too large for the scalings above) uses quantize_block.
#pragma once
#include <cmath>
#include <cstdint>

#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"
#include "lowprec/rng.hpp"

namespace lowprec {

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
    ok = L.norm_pat == 0 || c_exp <= FloatTraits<T>::B;
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
  mag = S(mag) > S(L.maxpat) ? L.ovf_pos : mag;
  mag = a == Lw::INF ? L.inf_val : mag;
  mag = S(a) > S(Lw::INF) ? Lw::QNAN : mag;
  const U s = mag == 0 ? (sign & L.zero_sign) : sign;
  return bit_cast<T>(s | mag);
}

// Per-call constants of the float32 stochastic form. Region N (R = r, or 64 for exact rounding):
// lo = a & maskN is the fraction lo / 2^dN; with kN = max(dN - R, 0) discarded by nearest-even,
// t = RNE(lo / 2^kN) and up iff (u_hi >> shN) < t, shN = 32 - min(dN, R). Region S likewise with
// X, F, kS and shS.
struct FastStochastic {
  uint32_t maskN, unitN, keepN;  // fraction mask, one unit and the kept bits of region N
  uint32_t kN, halfN, shN;
  uint32_t maskS, F, kS, halfS, shS;
  uint32_t tiny_pat;  // pattern of 2^(emin - 8); nonzero |x| below it take quantize_block
  float scaleS;       // 2^(31 - emin)
  float limS;         // largest float below 2^31 (keeps the conversion of other lanes in range)
  bool ok;

  FastStochastic(const QuantParams& p, const Lowered<float>& L) {
    const int R = p.mode == MODE_STOCHASTIC_R ? p.sr_bits : 64;
    const int dN = 23 - p.man_bits;
    const int mS = p.subnormals ? p.man_bits : 0;
    const int f = 31 - mS;
    auto half = [](int k) { return k > 0 ? uint32_t(1) << (k - 1) : uint32_t(1); };
    maskN = (uint32_t(1) << dN) - 1;
    unitN = uint32_t(1) << dN;
    keepN = ~maskN;
    kN = uint32_t(dN > R ? dN - R : 0);
    halfN = half(int(kN));
    const int eN = dN < R ? dN : R;
    shN = uint32_t(32 - (eN > 0 ? eN : 1));  // dN = 0: lo = 0, never up
    F = uint32_t(f);
    maskS = uint32_t((uint64_t(1) << f) - 1);
    kS = uint32_t(f > R ? f - R : 0);
    halfS = half(int(kS));
    shS = uint32_t(32 - (f < R ? f : R));
    const bool reach_S = L.norm_pat != 0;
    // 2^(31 - emin) must be a float32. With r >= 31 no fraction has more bits than r (dN <= 23,
    // F <= 31), so the constants are those of exact rounding and t = lo < 2^31.
    ok = !reach_S || p.emin >= -96;
    tiny_pat = reach_S && ok ? bit_cast<uint32_t>(std::ldexp(1.0f, p.emin - 8)) : 0u;
    scaleS = reach_S && ok ? std::ldexp(1.0f, 31 - p.emin) : 1.0f;
    limS = 2147483520.0f;
  }
};

// Nearest-even rounding of lo / 2^k to an integer (k may be 0; half = 1 then, so no step).
LP_INLINE uint32_t rne_shift(uint32_t lo, uint32_t k, uint32_t half) {
  const uint32_t tq = lo >> k;
  const uint32_t rem = lo - (tq << k);
  return tq + (rem + (tq & 1u) > half ? 1u : 0u);
}

template <int MODE>
LP_INLINE float round_stochastic_fast(float x, uint64_t counter, const Lowered<float>& L, const FastStochastic& F,
                                      uint32_t& tiny) {
  using U = uint32_t;
  using S = int32_t;
  using Lw = Lowered<float>;
  const U bits = bit_cast<U>(x);
  const U sign = bits & Lw::SIGN;
  const U a = bits ^ sign;
  const bool regS = S(a) < S(L.norm_pat);
  tiny |= (S(a) < S(F.tiny_pat) ? U(1) : U(0)) & (a != 0 ? U(1) : U(0));
  // Region S as the fixed-point integer X = |x| * 2^(31 - emin), clamped so that every lane converts.
  const float xs = bit_cast<float>(a) * F.scaleS;
  const U X = U(S(xs < F.limS ? xs : F.limS));
  const U uh = U(random_word_at(counter) >> 32);
  U loN = a & F.maskN;
  U loS = X & F.maskS;
  if constexpr (MODE == MODE_STOCHASTIC_R) {
    loN = rne_shift(loN, F.kN, F.halfN);
    loS = rne_shift(loS, F.kS, F.halfS);
  }
  const U lo = regS ? loS : loN;
  const U sh = regS ? F.shS : F.shN;
  const bool up = (uh >> sh) < lo;
  const U magN = (a & F.keepN) + (up ? F.unitN : U(0));
  const U Q = (X >> F.F) + (up ? U(1) : U(0));
  const U magS = bit_cast<U>(float(S(Q)) * L.subscale);
  U mag = regS ? magS : magN;
  mag = S(mag) > S(L.maxpat) ? L.ovf_pos : mag;
  mag = a == Lw::INF ? L.inf_val : mag;
  mag = S(a) > S(Lw::INF) ? Lw::QNAN : mag;
  const U s = mag == 0 ? (sign & L.zero_sign) : sign;
  return bit_cast<float>(s | mag);
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
      constexpr int64_t BLOCK = 128;
      for (int64_t b = 0; b < n; b += BLOCK) {
        const int64_t len = n - b < BLOCK ? n - b : BLOCK;
        uint64_t ctr = random_counter(p.key, first + uint64_t(b));
        uint32_t tiny = 0;
#pragma omp simd linear(ctr : GOLDEN) reduction(| : tiny)
        for (int64_t i = 0; i < len; ++i) {
          y[b + i] = round_stochastic_fast<MODE>(x[b + i], ctr, L, F, tiny);
          ctr += GOLDEN;
        }
        if (tiny) quantize_block<T, MODE>(x + b, y + b, len, first + uint64_t(b), p);
      }
      return;
    }
  }
  quantize_block<T, MODE>(x, y, n, first, p);
}

}  // namespace lowprec
