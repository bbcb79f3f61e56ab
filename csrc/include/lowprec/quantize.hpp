// Generic rounding of float32/float64 values to any FloatFormat, every rounding mode.
//
// One scalar, branch-free routine per element (so that the compiler vectorises the loops), written
// on the bit pattern of the input type T:
//   * region N (|x| >= 2^emin of the target): the pattern of |x| is rounded to a multiple of
//     2^(M - m) pattern units; a carry into the exponent field is the correct binade change;
//   * region S (|x| < 2^emin): the significand is rounded to a multiple of the target's subnormal
//     spacing 2^(emin - m) and the result rebuilt as Q * 2^(emin - m), exactly.
// The discarded part is kept as a binary fraction of the rounding unit with a sticky last bit
// (FW bits, exact for every deterministic decision), which every mode reads the same way.
// Overflow is decided after rounding; NaN and infinity inputs are handled on their own.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "lowprec/params.hpp"
#include "lowprec/rng.hpp"

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
  static constexpr U SIGN = U(1) << (8 * sizeof(T) - 1);
  static constexpr U INF = (~U(0) >> 1) ^ ((U(1) << M) - 1);  // exponent field all ones
  static constexpr U QNAN = INF | (U(1) << (M - 1));
  static constexpr U FMASK = (U(1) << M) - 1;

  int m, mS, dN, dSN, emin, specials, saturate, sr_bits, code_m, ebias_shift;
  U maxpat;      // pattern of the target's max (clamped to the input type's inf)
  U ovf_pos, ovf_neg;  // result of an overflow, by sign: maxpat, INF or QNAN
  U inf_val;     // result for an infinite input
  U parity_flip; // 1 when m = 0 and the target bias and the input bias differ in parity
  U zero_sign;   // sign mask kept on a zero result (0 for fnuz: no negative zero)
  T subscale;    // 2^(emin - mS)
  uint64_t key;

  explicit Lowered(const QuantParams& p) {
    m = p.man_bits;
    mS = p.subnormals ? p.man_bits : 0;
    dN = M - m;
    dSN = M - mS;
    emin = p.emin;
    specials = p.specials;
    saturate = p.saturate;
    sr_bits = p.sr_bits;
    key = p.key;
    code_m = p.man_bits;
    ebias_shift = 1 - p.emin - FloatTraits<T>::B;  // target biased exponent = input biased + this
    T mx = static_cast<T>(p.max_value);
    U mp = bit_cast<U>(mx);
    maxpat = mp > INF ? INF : mp;
    const bool sat = p.saturate || p.specials == SPECIALS_NONE;
    const U big = p.specials == SPECIALS_IEEE ? INF : QNAN;
    inf_val = sat ? maxpat : big;
    // IEEE directed rounding: toward zero never overflows; up (down) keeps negative (positive)
    // overflow at -max (+max).
    const bool sat_pos = sat || p.mode == MODE_TOWARD_ZERO || p.mode == MODE_DOWN;
    const bool sat_neg = sat || p.mode == MODE_TOWARD_ZERO || p.mode == MODE_UP;
    ovf_pos = sat_pos ? maxpat : big;
    ovf_neg = sat_neg ? maxpat : big;
    zero_sign = p.specials == SPECIALS_FNUZ ? U(0) : ~U(0);
    parity_flip = p.man_bits == 0 ? U((1 - p.emin - FloatTraits<T>::B) & 1) : U(0);
    // 2^(emin - mS) is only used when region S is reachable, i.e. emin > 1 - B.
    subscale = p.emin > 1 - FloatTraits<T>::B ? static_cast<T>(std::ldexp(1.0, p.emin - mS)) : T(0);
  }
};

// Outcome for one element: magnitude pattern of the rounded value (in T's layout), its sign and the
// target code magnitude (valid for finite results).
template <class T> struct Rounded {
  typename FloatTraits<T>::U mag;  // |result| pattern; INF or QNAN for specials
  typename FloatTraits<T>::U sign;
  uint64_t code;  // code of |result| in the target (without sign), finite results only
};

// Fraction word type: 32 bits suffice for float32 deterministic modes, stochastic uses 64.
template <class T, int MODE> struct FracWord {
  using type = uint64_t;
};
template <int MODE> struct FracWord<float, MODE> {
  using type = typename std::conditional<is_stochastic(MODE), uint64_t, uint32_t>::type;
};

template <class T, int MODE>
inline Rounded<T> round_one(T x, uint64_t index, const Lowered<T>& L) {
  using Tr = FloatTraits<T>;
  using U = typename Tr::U;
  using S = typename Tr::S;
  using FW = typename FracWord<T, MODE>::type;
  constexpr int M = Tr::M;
  constexpr int FB = 8 * sizeof(FW);
  constexpr U INF = Lowered<T>::INF;

  const U bits = bit_cast<U>(x);
  const U sign = bits & Lowered<T>::SIGN;
  const U a = bits ^ sign;
  const S E = static_cast<S>(a >> M);
  const S e_eff = (E > 0 ? E : S(1)) - Tr::B;
  const bool regS = e_eff < L.emin;

  // Region N: round the pattern itself.
  const int dN = L.dN;
  const U qN = a >> dN;
  const U loN = a & ((U(1) << dN) - 1);
  const FW fN = dN == 0 ? FW(0) : FW(FW(loN) << (FB - dN));

  // Region S: round the significand to the subnormal spacing.
  const U sig = (a & Lowered<T>::FMASK) | (E > 0 ? (U(1) << M) : U(0));
  const S dS = static_cast<S>(L.dSN) + (static_cast<S>(L.emin) - e_eff);  // > dN, may exceed FB
  const S dSq = dS < M + 2 ? dS : S(M + 2);
  const U qS = sig >> dSq;
  const S sl = dS < FB ? static_cast<S>(FB) - dS : S(0);
  const S sr = dS > FB ? (dS - FB < FB ? dS - FB : S(FB - 1)) : S(0);
  const FW sigw = FW(sig);
  const FW loS = dS >= FB ? sigw : (sigw & ((FW(1) << dS) - 1));
  const FW fS = dS <= FB ? FW(loS << sl) : FW((sigw >> sr) | FW((sigw & ((FW(1) << sr) - 1)) != 0));

  const U q = regS ? qS : qN;
  const FW f = regS ? fS : fN;  // discarded fraction of one unit, * 2^FB, sticky last bit
  const bool neg = sign != 0;
  constexpr FW HALF = FW(1) << (FB - 1);

  // Parity of q's code: its last fraction bit; with no fraction bits (region N, m = 0) q ends in
  // the exponent field, whose parity differs from the target code's when the biases differ in parity.
  const U odd = (q ^ (regS ? U(0) : L.parity_flip)) & U(1);
  const U inexact = f != 0 ? U(1) : U(0);
  U inc;
  if constexpr (MODE == MODE_NEAREST) {
    inc = f > HALF ? U(1) : (f == HALF ? odd : U(0));
  } else if constexpr (MODE == MODE_NEAREST_AWAY) {
    inc = f >= HALF ? U(1) : U(0);
  } else if constexpr (MODE == MODE_TOWARD_ZERO) {
    inc = 0;
  } else if constexpr (MODE == MODE_UP) {
    inc = neg ? U(0) : inexact;
  } else if constexpr (MODE == MODE_DOWN) {
    inc = neg ? inexact : U(0);
  } else if constexpr (MODE == MODE_ODD) {
    inc = inexact & (odd ^ U(1));
  } else if constexpr (MODE == MODE_STOCHASTIC) {
    inc = random_word(L.key, index) < f ? U(1) : U(0);
  } else if constexpr (MODE == MODE_STOCHASTIC_R) {
    // t = RNE(delta * 2^r) in [0, 2^r]; up iff (top r random bits) < t.
    const int r = L.sr_bits;
    const uint64_t tq = f >> (64 - r);
    const uint64_t trem = f << r;  // remaining fraction, * 2^64
    const uint64_t H64 = uint64_t(1) << 63;
    const uint64_t t = tq + (trem > H64 ? uint64_t(1) : (trem == H64 ? (tq & 1) : uint64_t(0)));
    inc = (random_word(L.key, index) >> (64 - r)) < t ? U(1) : U(0);
  } else {  // MODE_STOCHASTIC_EQUAL
    inc = inexact & U(random_word(L.key, index) >> 63);
  }

  const U Q = q + inc;
  const U magN = Q << dN;
  const U magS = bit_cast<U>(static_cast<T>(Q) * L.subscale);
  U mag = regS ? magS : magN;

  // Overflow after rounding (to max or to inf/NaN, per sign for the directed modes), then the
  // special inputs.
  mag = mag > L.maxpat ? (neg ? L.ovf_neg : L.ovf_pos) : mag;
  mag = a == INF ? L.inf_val : mag;
  mag = a > INF ? Lowered<T>::QNAN : mag;

  Rounded<T> out;
  out.mag = mag;
  out.sign = mag == 0 ? (sign & L.zero_sign) : sign;
  // Target code of a finite magnitude (the caller replaces inf/NaN).
  const uint64_t codeS = uint64_t(Q) << (L.code_m - L.mS);
  const uint64_t codeN =
      (uint64_t((mag >> M) + U(L.ebias_shift)) << L.code_m) | uint64_t((mag & Lowered<T>::FMASK) >> dN);
  out.code = mag == 0 ? uint64_t(0) : (regS ? codeS : codeN);
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
    using U = typename FloatTraits<T>::U;
    const Lowered<T> L(p);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const Rounded<T> r = round_one<T, MODE>(x[i], first + uint64_t(i), L);
      y[i] = bit_cast<T>(r.sign | r.mag);
    }
  }
}

// Encode n contiguous elements into codes of type C (sign | exponent | fraction, torch layout).
template <class T, class C, int MODE>
inline void encode_block(const T* __restrict x, C* __restrict y, int64_t n, uint64_t first, const QuantParams& p) {
  const Lowered<T> L(p);
  const int sbit = p.exp_bits + p.man_bits;
  const uint64_t emask = (uint64_t(1) << p.exp_bits) - 1;
  const uint64_t inf_code = emask << p.man_bits;
  uint64_t nan_code;
  if (p.specials == SPECIALS_IEEE) nan_code = inf_code | (uint64_t(1) << (p.man_bits > 0 ? p.man_bits - 1 : 0));
  else if (p.specials == SPECIALS_FN) nan_code = inf_code | ((uint64_t(1) << p.man_bits) - 1);
  else nan_code = uint64_t(1) << sbit;  // fnuz: the sign bit alone; none: rejected before the call
  const uint64_t sbitv = uint64_t(1) << sbit;
  using U = typename FloatTraits<T>::U;
  constexpr U INF = Lowered<T>::INF;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const Rounded<T> r = round_one<T, MODE>(x[i], first + uint64_t(i), L);
    const uint64_t s = r.sign != 0 ? sbitv : uint64_t(0);
    uint64_t c = r.mag == INF ? inf_code : r.code;
    c = r.mag == Lowered<T>::QNAN ? nan_code : c;
    y[i] = static_cast<C>(c | s);
  }
}

}  // namespace lowprec
