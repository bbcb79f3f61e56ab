// Generic rounding of float32/float64 values to any FloatFormat, every rounding mode.
//
// One scalar, branch-free routine per element (so that the compiler vectorises the loops), written
// on the bit pattern of the input type T (W = 32 or 64 bits):
//   * region N (|x| >= 2^emin of the target): the pattern of |x| is rounded to a multiple of
//     2^dN pattern units (dN = M - m); a carry into the exponent field is the correct binade change;
//   * region S (|x| < 2^emin): the significand (hidden bit included) is rounded to a multiple of
//     2^dS, dS > dN, i.e. to the target's subnormal spacing 2^(emin - mS), and the result rebuilt
//     as Q * 2^(emin - mS), exactly.
// Both regions round an integer v at a shift d (v = pattern of |x| and d = dN, or v = significand
// and d = dS): q = v >> d, and the mode decides from the discarded integer lo = v mod 2^d, i.e.
// the fraction lo / 2^d of one unit, whether to step to q + 1. Deterministic modes only compare the
// fraction with 0 and 1/2 (from one W-bit word holding its leading bits); the stochastic modes
// compare it with a 64-bit random word u, exactly as u < f with f the fraction * 2^64 and a sticky
// last bit, but written as a comparison of the top bits of u with lo (or its rounding to r bits).
// Overflow is decided after rounding; NaN and infinity inputs are handled on their own.
//
// Written for GCC's loop vectoriser (AVX2 / AVX-512 builds, see csrc/isa_*.cpp):
//   * per-lane values are W bits wide (float lanes stay 32 bits; only the random words are 64);
//     a per-lane shift count has the width of the value it shifts, and is in range on every lane
//     (lanes of the other region compute too, so no shift relies on a ternary to skip it);
//   * per-lane conditions only select values (c ? a : b with unsigned a, b): no arithmetic on
//     bool, no && or ||; comparisons of values below 2^(W-1) are written signed (AVX2 has no
//     unsigned vector comparison);
//   * no conversion between integers and floating point (AVX2 has none for 64-bit lanes);
//   * per-call constants are computed once, in Lowered; the random counter is a loop induction.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "lowprec/params.hpp"
#include "lowprec/rng.hpp"

#if defined(__GNUC__)
#define LP_INLINE inline __attribute__((always_inline))
#else
#define LP_INLINE inline
#endif

namespace lowprec {

template <class T> struct FloatTraits;
template <> struct FloatTraits<float> {
  using U = uint32_t;
  using S = int32_t;
  static constexpr int M = 23, B = 127;
};
template <> struct FloatTraits<double> {
  using U = uint64_t;
  using S = int64_t;
  static constexpr int M = 52, B = 1023;
};

template <class To, class From> inline To bit_cast(From f) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast sizes");
  To t;
  std::memcpy(&t, &f, sizeof(To));
  return t;
}

inline constexpr bool is_stochastic(int mode) {
  return mode == MODE_STOCHASTIC || mode == MODE_STOCHASTIC_R || mode == MODE_STOCHASTIC_EQUAL;
}

// Per-call constants for input type T, derived once from QuantParams.
template <class T> struct Lowered {
  using U = typename FloatTraits<T>::U;
  using S = typename FloatTraits<T>::S;
  static constexpr int M = FloatTraits<T>::M;
  static constexpr int B = FloatTraits<T>::B;
  static constexpr U SIGN = U(1) << (8 * sizeof(T) - 1);
  static constexpr U INF = (~U(0) >> 1) ^ ((U(1) << M) - 1);  // exponent field all ones
  static constexpr U QNAN = INF | (U(1) << (M - 1));
  static constexpr U FMASK = (U(1) << M) - 1;
  static constexpr U HIDDEN = U(1) << M;

  int code_m;    // m: fraction bits of the target code
  int sr_bits;   // r (stochastic rounding with r random bits)
  S dN;          // region N shift, M - m
  S dS0;         // region S shift: dS = dS0 - max(E, 1), E the biased exponent field of x
  U norm_pat;    // pattern of 2^emin when region S is reachable, else 0
  U maxpat;      // pattern of the target's max (clamped to the input type's inf)
  U ovf_pos, ovf_neg;  // result of an overflow, by sign: maxpat, INF or QNAN
  U inf_val;     // result for an infinite input
  U parity_flip; // 1 when m = 0 and the target bias and the input bias differ in parity
  U zero_sign;   // sign mask kept on a zero result (0 for fnuz: no negative zero)
  U ebias_shift; // target biased exponent = input biased exponent + this (mod 2^W)
  U code_shiftS; // region S code = Q << (m - mS)
  T subscale;    // 2^(emin - mS)

  explicit Lowered(const QuantParams& p) {
    const int m = p.man_bits;
    const int mS = p.subnormals ? p.man_bits : 0;
    code_m = m;
    sr_bits = p.sr_bits;
    dN = M - m;
    dS0 = S(M - mS) + S(p.emin) + S(B);
    // Region S: the target's subnormal range below 2^emin, or, for a target without subnormals
    // whose emin is the input type's own, the input's subnormals (flushed to 0 or 2^emin).
    const bool reach_S = p.emin > 1 - B || !p.subnormals;
    norm_pat = reach_S ? U(p.emin + B) << M : U(0);
    ebias_shift = U(S(1 - p.emin - B));
    code_shiftS = U(m - mS);
    T mx = static_cast<T>(p.max_value);
    U mp = bit_cast<U>(mx);
    maxpat = mp > INF ? INF : mp;
    const bool sat = p.saturate || p.specials == SPECIALS_NONE;
    const U big = p.specials == SPECIALS_IEEE ? INF : QNAN;
    inf_val = sat ? maxpat : big;
    // IEEE directed rounding: toward zero never overflows; up (down) keeps negative (positive)
    // overflow at -max (+max).
    // Round-to-odd truncates and sets the last bit, so it never passes an odd max (ieee, fnuz,
    // none); past an even max (fn) the odd neighbour is out of range and overflows.
    const bool odd_max = p.man_bits > 0 ? p.specials != SPECIALS_FN : p.specials != SPECIALS_IEEE;
    const bool sat_dir = p.mode == MODE_TOWARD_ZERO || (p.mode == MODE_ODD && odd_max);
    const bool sat_pos = sat || sat_dir || p.mode == MODE_DOWN;
    const bool sat_neg = sat || sat_dir || p.mode == MODE_UP;
    ovf_pos = sat_pos ? maxpat : big;
    ovf_neg = sat_neg ? maxpat : big;
    zero_sign = p.specials == SPECIALS_FNUZ ? U(0) : ~U(0);
    parity_flip = m == 0 ? U((1 - p.emin - B) & 1) : U(0);
    // 2^(emin - mS) is only used when region S is reachable.
    subscale = reach_S ? static_cast<T>(std::ldexp(1.0, p.emin - mS)) : T(0);
  }
};

// Outcome for one element: magnitude pattern of the rounded value (in T's layout), its sign and the
// target code magnitude (valid for finite results; computed modulo 2^W, which holds every code
// width the encoder writes).
template <class T> struct Rounded {
  typename FloatTraits<T>::U mag;  // |result| pattern; INF or QNAN for specials
  typename FloatTraits<T>::U sign;
  typename FloatTraits<T>::U code;  // code of |result| in the target (without sign), finite results only
};

// The low k bits of v moved to the top of the word (the others dropped), for 0 <= k < bits of U:
// the binary fraction (v mod 2^k) / 2^k. Two shifts, so that k = 0 needs no special case.
template <class U, class S> inline U low_bits_on_top(U v, S k) {
  constexpr S WB = 8 * sizeof(U);
  return U(U(v << (WB - 1 - k)) << 1);
}

// min(max(x, lo), hi), in a form the vectoriser turns into two instructions.
template <class S> inline S clamp(S x, S lo, S hi) {
  const S y = x > lo ? x : lo;
  return y < hi ? y : hi;
}

// T value of the integer Q <= 2^M, exactly, without an integer-to-float conversion: the pattern of
// 2^M plus Q is the pattern of 2^M + Q.
template <class T> inline T small_int_value(typename FloatTraits<T>::U Q) {
  using U = typename FloatTraits<T>::U;
  constexpr int M = FloatTraits<T>::M, B = FloatTraits<T>::B;
  constexpr U TWO_M = U(B + M) << M;
  return bit_cast<T>(U(TWO_M + Q)) - bit_cast<T>(TWO_M);
}

// `counter` is the element's random stream counter (random_counter(key, index), see rng.hpp); only
// the stochastic modes read it.
template <class T, int MODE>
LP_INLINE Rounded<T> round_one(T x, uint64_t counter, const Lowered<T>& L) {
  using Tr = FloatTraits<T>;
  using U = typename Tr::U;
  using S = typename Tr::S;
  using Lw = Lowered<T>;
  constexpr int M = Tr::M;
  constexpr int W = 8 * sizeof(U);
  constexpr U INF = Lw::INF;

  const U bits = bit_cast<U>(x);
  const U sign = bits & Lw::SIGN;
  const U a = bits ^ sign;
  const bool regS = S(a) < S(L.norm_pat);  // |x| < 2^emin (e_eff < emin)

  // What is rounded, and where: region N rounds the pattern a at dN; region S the significand at
  // dS = dSN + emin - e_eff > dN, with e_eff = max(E, 1) - B (E = 0: subnormal input).
  const U E = a >> M;
  const U sig = (a & Lw::FMASK) | (E != 0 ? Lw::HIDDEN : U(0));
  const S dS = L.dS0 - (S(E) > 1 ? S(E) : S(1));
  // Region S lanes as a mask: selecting v, d (and the parity below) with it rather than with
  // ?: on regS keeps GCC from duplicating the whole rounding once per region.
  const U inS = regS ? ~U(0) : U(0);
  const U v = (sig & inS) | (a & ~inS);
  const S d = S((U(dS) & inS) | (U(L.dN) & ~inS));
  // Region S has v < 2^(M+1): from d = M + 2 on, q is 0 and the fraction stays below 1/2 and is
  // nonzero iff v is, so a shift clamped there changes neither q nor any deterministic decision.
  const S dq = d < M + 2 ? d : S(M + 2);
  const U q = v >> dq;
  const U lo = v - (q << dq);  // discarded integer, v mod 2^d (exact: lo = v once d >= M + 2)
  const U inexact = lo != 0 ? U(1) : U(0);
  // Discarded fraction for the nearest modes, * 2^W (exact for d <= M + 2).
  const U f = low_bits_on_top(v, dq);
  constexpr U HALF = U(1) << (W - 1);

  U inc;
  if constexpr (MODE == MODE_NEAREST || MODE == MODE_ODD) {
    // Parity of q's code: its last fraction bit; with no fraction bits (region N, m = 0) q ends in
    // the exponent field, whose parity differs from the target code's when the biases differ in parity.
    const U odd = (q ^ (L.parity_flip & ~inS)) & U(1);
    if constexpr (MODE == MODE_NEAREST) {
      inc = f > HALF - odd ? U(1) : U(0);  // above half, or exactly half with q odd
    } else {
      inc = inexact & (odd ^ U(1));
    }
  } else if constexpr (MODE == MODE_NEAREST_AWAY) {
    inc = f >= HALF ? U(1) : U(0);
  } else if constexpr (MODE == MODE_TOWARD_ZERO) {
    inc = 0;
  } else if constexpr (MODE == MODE_UP) {
    inc = inexact & ((sign >> (W - 1)) ^ U(1));  // inexact and x positive
  } else if constexpr (MODE == MODE_DOWN) {
    inc = inexact & (sign >> (W - 1));  // inexact and x negative
  } else if constexpr (MODE == MODE_STOCHASTIC_EQUAL) {
    inc = inexact & U(random_word_at(counter) >> 63);
  } else {  // MODE_STOCHASTIC, MODE_STOCHASTIC_R: both compare top bits of u with some y < 2^(M+1)
    // Exact: up iff u < f, f = lo / 2^d * 2^64 with a sticky last bit. While d <= 64, f is exactly
    // lo * 2^(64 - d): up iff the top d bits of u are below lo. Beyond, y = f = (lo >> (d - 64)) |
    // sticky (the bits of lo below 2^-64 ORed into the last bit), compared with all of u.
    // r bits: t = RNE(lo / 2^d * 2^r) in [0, 2^r]; up iff the top r bits of u are below t. While
    // d <= r, t = lo * 2^(r - d) exactly: up iff the top d bits of u are below lo, as above. Beyond,
    // y = t = lo rounded to nearest-even at k = d - r (clamped at M + 2: lo < 2^(M+1) gives t = 0
    // from there).
    const S R = MODE == MODE_STOCHASTIC ? S(64) : S(L.sr_bits);
    const S c = S(64) - clamp(d, S(1), R);  // u >> c: its top min(d, R) bits (d = 0: lo = 0, never up)
    U y;
    if constexpr (MODE == MODE_STOCHASTIC) {
      const S s = clamp(S(d - 64), S(0), S(W - 1));
      y = (lo >> s) | (low_bits_on_top(lo, s) != 0 ? U(1) : U(0));  // = lo while d <= 64
    } else {
      const S k = clamp(S(d - R), S(1), S(M + 2));
      const U tq = lo >> k;
      const U t = tq + (low_bits_on_top(lo, k) > HALF - (tq & U(1)) ? U(1) : U(0));
      y = d > R ? t : lo;
    }
    // As y < 2^(M+1), the top bits of u can be compared in U, saturated to its range (float lanes
    // stay 32 bits wide).
    const uint64_t ut = random_word_at(counter) >> c;
    inc = (ut < uint64_t(U(~U(0))) ? U(ut) : U(~U(0))) < y ? U(1) : U(0);
  }

  const U Q = q + inc;
  const U magN = Q << L.dN;
  const U magS = bit_cast<U>(small_int_value<T>(Q) * L.subscale);
  U mag = regS ? magS : magN;

  // Overflow after rounding (to max or to inf/NaN; per sign for up and down, the other modes have
  // ovf_neg = ovf_pos), then the special inputs. mag < 2^(W-1) for every finite x (NaN lanes are
  // replaced anyway).
  U ovf = L.ovf_pos;
  if constexpr (MODE == MODE_UP || MODE == MODE_DOWN) ovf = sign != 0 ? L.ovf_neg : L.ovf_pos;
  mag = S(mag) > S(L.maxpat) ? ovf : mag;
  mag = a == INF ? L.inf_val : mag;
  mag = S(a) > S(INF) ? Lw::QNAN : mag;

  Rounded<T> out;
  out.mag = mag;
  out.sign = mag == 0 ? (sign & L.zero_sign) : sign;
  // Target code of a finite magnitude (the caller replaces inf/NaN).
  const U codeS = Q << L.code_shiftS;
  const U codeN = (((mag >> M) + L.ebias_shift) << L.code_m) | ((mag & Lw::FMASK) >> L.dN);
  out.code = mag == 0 ? U(0) : (regS ? codeS : codeN);
  return out;
}

// QPyTorch float_quantize on float32 (bit-pattern rounding, ties away; see specs/formats.md §5).
template <int MODE>
inline float round_qtorch(float x, uint64_t index, const QuantParams& p) {
  const int m = p.man_bits;
  const int e = p.exp_bits;
  const uint32_t mask = (uint32_t(1) << (23 - m)) - 1;
  uint32_t add;
  if constexpr (MODE == MODE_QTORCH_STOCHASTIC) {
    add = uint32_t(random_word(p.key, index) >> 32) & mask;
  } else {
    add = uint32_t(1) << (22 - m);
  }
  const uint32_t target = bit_cast<uint32_t>(x);
  const int target_exp = int((target << 1) >> 24) - 127;
  const int min_exp = -((1 << (e - 1)) - 2);
  // Subnormal path: shift by +-2^min_exp in float32 arithmetic, round, shift back.
  const uint32_t shift_bits = (uint32_t(127 + min_exp) << 23) | ((target >> 31) << 31);
  const float shift = bit_cast<float>(shift_bits);
  const float val = x + shift;
  const uint32_t qs = (bit_cast<uint32_t>(val) + add) & ~mask;
  const float sub_result = bit_cast<float>(qs) - shift;
  // Normal path with exponent clipping to the finite top binade.
  uint32_t qn = (target + add) & ~mask;
  const int max_exp_store = (1 << (e - 1)) + 127;
  const int qexp = int((qn << 1) >> 24);
  const uint32_t max_man = ((~uint32_t(0) << 9) >> 9 >> (23 - m)) << (23 - m);
  const uint32_t max_num = (uint32_t(max_exp_store) << 23) | max_man;
  qn = (qn != 0 && qexp > max_exp_store) ? (((target >> 31) << 31) | max_num) : qn;
  return target_exp < min_exp ? sub_result : bit_cast<float>(qn);
}

// Round n contiguous elements; `first` is the flat index of x[0] (for the random stream).
template <class T, int MODE>
inline void quantize_block(const T* __restrict x, T* __restrict y, int64_t n, uint64_t first, const QuantParams& p) {
  if constexpr (MODE == MODE_QTORCH_NEAREST || MODE == MODE_QTORCH_STOCHASTIC) {
    if constexpr (sizeof(T) == 4) {
      for (int64_t i = 0; i < n; ++i) y[i] = round_qtorch<MODE>(x[i], first + uint64_t(i), p);
    }
  } else {
    const Lowered<T> L(p);
    uint64_t ctr = random_counter(p.key, first);  // steps by GOLDEN per element (a vector induction)
#pragma omp simd linear(ctr : GOLDEN)
    for (int64_t i = 0; i < n; ++i) {
      const Rounded<T> r = round_one<T, MODE>(x[i], ctr, L);
      y[i] = bit_cast<T>(r.sign | r.mag);
      ctr += GOLDEN;
    }
  }
}

// Encode n contiguous elements into codes of type C (sign | exponent | fraction, torch layout).
// Codes are built in U (32 bits for float), which holds every code width C.
template <class T, class C, int MODE>
inline void encode_block(const T* __restrict x, C* __restrict y, int64_t n, uint64_t first, const QuantParams& p) {
  using U = typename FloatTraits<T>::U;
  static_assert(sizeof(C) <= sizeof(U), "code wider than the input pattern");
  const Lowered<T> L(p);
  const int sbit = p.exp_bits + p.man_bits;
  const uint64_t emask = (uint64_t(1) << p.exp_bits) - 1;
  const uint64_t inf_code = emask << p.man_bits;
  uint64_t nan_code;
  if (p.specials == SPECIALS_IEEE) nan_code = inf_code | (uint64_t(1) << (p.man_bits > 0 ? p.man_bits - 1 : 0));
  else if (p.specials == SPECIALS_FN) nan_code = inf_code | ((uint64_t(1) << p.man_bits) - 1);
  else nan_code = uint64_t(1) << sbit;  // fnuz: the sign bit alone; none: rejected before the call
  const U sbitv = U(uint64_t(1) << sbit);
  const U inf_c = U(inf_code), nan_c = U(nan_code);
  constexpr U INF = Lowered<T>::INF;
  uint64_t ctr = random_counter(p.key, first);  // steps by GOLDEN per element (a vector induction)
#pragma omp simd linear(ctr : GOLDEN)
  for (int64_t i = 0; i < n; ++i) {
    const Rounded<T> r = round_one<T, MODE>(x[i], ctr, L);
    const U s = r.sign != 0 ? sbitv : U(0);
    U c = r.mag == INF ? inf_c : r.code;
    c = r.mag == Lowered<T>::QNAN ? nan_c : c;
    y[i] = static_cast<C>(c | s);
    ctr += GOLDEN;
  }
}

}  // namespace lowprec
