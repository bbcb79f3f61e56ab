// Round-to-nearest-even accumulation on float lanes: the fast case of accumulate.hpp, for
// accumulators of at most 22 significant bits (p = m + 1) with subnormals, exact float terms and
// sequential or chunked order. The dispatcher checks those conditions; this file computes the
// same bits as add_round<MODE_NEAREST, float> with fewer instructions and no random counters.
//
// One addition s + t (s on the accumulator's grid):
//   * exact_sum (p <= 11 and every term has at most p significant bits): h = fl32(s + t), whose
//     rounding to the accumulator is the correctly rounded sum. A double rounding RN_p(RN_24(x))
//     differs from RN_p(x) only if RN_24(x) is a midpoint mu of the p-bit grid and x != mu, with
//     |x - mu| <= 2^(e - 24) (e = exponent of mu). The lowest set bit of x - mu is at least the
//     lowest bit of s, t or mu; cases by which is lowest: if it is s's, |s| < 2^(e - 24 + p) and
//     t != mu (mu has p + 1 bits, t at most p), so |x - mu| >= |t - mu| - |s| > 2^(e - 24) when
//     24 > 2p + 1; if it is t's, symmetrically |s - mu| >= 2^(e - p); if both, |x| < 2^e. So
//     p <= 11 makes every case impossible.
//   * otherwise (p <= 22): h and its error from TwoSum, collapsed to h rounded to odd, which any
//     rounding to p <= 22 bits turns into the correct result (as in accumulate.hpp).
// Rounding h to the accumulator's grid at h's binade e, 2^(max(e, emin) - m), is the float addition
// h + C with C = 1.5 * 2^(max(e, emin) + 23 - m) (whose ulp is that grid step), then - C (exact); the
// sign of h is put back so that a zero keeps it. Lanes whose result is past the accumulator's max,
// infinite or NaN (overflow, special inputs, or a C past float's range) are only flagged (through the
// largest |result| pattern): the dispatcher recomputes the whole tile with the general kernel.
//
// Written with GCC vector extensions of the including instruction set's register width.
#pragma once
#include <cstdint>
#include <cstring>

#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"

#if defined(__GNUC__)
#define LP_INLINE_LAMBDA __attribute__((always_inline))
#else
#define LP_INLINE_LAMBDA
#endif

namespace lowprec {

// Vector width: the including file may set LP_VEC_BYTES to its registers' (64 for AVX-512, 32 for
// AVX2); a lane group of ACC_LANES floats is then LEAN_H vectors.
#ifndef LP_VEC_BYTES
#define LP_VEC_BYTES 16
#endif
typedef float lean_f32v __attribute__((vector_size(LP_VEC_BYTES)));
typedef int32_t lean_i32v __attribute__((vector_size(LP_VEC_BYTES)));
constexpr int LEAN_VL = LP_VEC_BYTES / 4;       // floats per vector
constexpr int LEAN_H = ACC_LANES / LEAN_VL;     // vectors per group of ACC_LANES lanes
constexpr int LEAN_NV = LEAN_VECS * LEAN_H;     // vectors per tile

LP_INLINE lean_f32v lean_load(const float* p) {
  lean_f32v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

LP_INLINE void lean_store(float* p, lean_f32v v) { std::memcpy(p, &v, sizeof v); }

// s + t rounded to the accumulator (nearest-even). hi collects |result| patterns (their maximum
// past P.maxpat means a lane the general kernel must redo).
template <bool EXACT_SUM>
LP_INLINE lean_f32v lean_add(lean_f32v s, lean_f32v t, const LeanParams& P, lean_i32v& hi) {
  constexpr int32_t SIGN = INT32_MIN, ABS = INT32_MAX, EXP = 0x7F800000;
  const lean_f32v h = s + t;
  lean_i32v hb = (lean_i32v)h;
  if constexpr (!EXACT_SUM) {
    const lean_f32v z = h - s;
    const lean_f32v err = (s - (h - z)) + (t - z);
    const lean_i32v ha = hb & ABS;
    hi = hi > ha ? hi : ha;  // h itself infinite or NaN (an overflow of float, or a special input)
    // rounded to odd: inexact sums get an odd last bit, h's pattern or the one below it when err
    // points toward zero (h - 1 ulp in magnitude if h's is even; h if odd)
    const lean_i32v inexact = err != 0.0f;
    const lean_i32v toward_zero = (((lean_i32v)err) ^ hb) >> 31;
    hb = (hb + (toward_zero & inexact)) | (inexact & 1);
  }
  lean_i32v e = hb & EXP;
  const lean_i32v emin = lean_i32v{} + P.emin_pat;
  e = e > emin ? e : emin;
  const lean_f32v C = (lean_f32v)(e + P.kpat);
  const lean_f32v r = (((lean_f32v)hb) + C) - C;
  const lean_i32v ra = ((lean_i32v)r) & ABS;
  hi = hi > ra ? hi : ra;
  return (lean_f32v)(ra | (hb & SIGN));
}

// Run n steps of a tile (its first NV vectors): terms(i, t) writes the NV term vectors of step i (vector v * LEAN_H +
// h holds lanes v * ACC_LANES + h * LEAN_VL ..). Chunked order adds the terms to q and q to s at
// each chunk end (and after the last of S.K terms), as accum_feed does.
template <bool EXACT_SUM, bool CHUNKED, int NV = LEAN_NV, class Terms>
LP_INLINE void lean_run(LeanState& S, int64_t n, const LeanParams& P, const Terms& terms) {
  constexpr int VL = LEAN_VL;
  lean_f32v s[NV], q[NV], t[NV];
  lean_i32v hi = {};
  for (int v = 0; v < NV; ++v) {
    s[v] = lean_load(S.s + v * VL);
    q[v] = lean_load(S.q + v * VL);
  }
  int64_t i = 0;
  while (i < n) {
    int64_t run = n - i;
    if (CHUNKED) {
      const int64_t left = P.chunk - S.k % P.chunk;
      run = run < left ? run : left;
    }
    for (const int64_t end = i + run; i < end; ++i) {
      terms(i, t);
      for (int v = 0; v < NV; ++v) {
        if (CHUNKED) q[v] = lean_add<EXACT_SUM>(q[v], t[v], P, hi);
        else s[v] = lean_add<EXACT_SUM>(s[v], t[v], P, hi);
      }
    }
    S.k += run;
    if (CHUNKED && (S.k % P.chunk == 0 || S.k == S.K)) {
      for (int v = 0; v < NV; ++v) {
        s[v] = lean_add<EXACT_SUM>(s[v], q[v], P, hi);
        q[v] = lean_f32v{};
      }
    }
  }
  for (int v = 0; v < NV; ++v) {
    lean_store(S.s + v * VL, s[v]);
    lean_store(S.q + v * VL, q[v]);
  }
  int32_t any = 0;
  for (int l = 0; l < VL; ++l) any |= hi[l] > P.maxpat ? 1 : 0;
  S.bad |= any;
}

// Matrix-product tile: lane group v holds row v's outputs for ACC_LANES columns; the term of step i
// is a[v * lda + i] * b[i * ACC_LANES + l].
template <bool EXACT_SUM, bool CHUNKED>
inline void lean_feed_outer(LeanState& S, const float* __restrict a, int64_t lda, const float* __restrict b, int64_t n,
                            const LeanParams& P) {
  constexpr int V = LEAN_VECS, H = LEAN_H, W = ACC_LANES, VL = LEAN_VL;
  lean_run<EXACT_SUM, CHUNKED>(S, n, P, [&](int64_t i, lean_f32v* t) LP_INLINE_LAMBDA {
    lean_f32v bi[H];
    for (int h = 0; h < H; ++h) bi[h] = lean_load(b + i * W + h * VL);
    for (int v = 0; v < V; ++v)
      for (int h = 0; h < H; ++h) t[v * H + h] = a[v * lda + i] * bi[h];
  });
}

// Independent lanes (row reductions) of the first NV vectors of a tile, L = NV * LEAN_VL lanes: the
// term of step i in lane l is x[i * L + l], times y[i * L + l] when y is given.
template <bool EXACT_SUM, bool CHUNKED, int NV>
inline void lean_feed_lanes(LeanState& S, const float* __restrict x, const float* __restrict y, int64_t n,
                            const LeanParams& P) {
  constexpr int VL = LEAN_VL, L = NV * VL;
  if (y) {
    lean_run<EXACT_SUM, CHUNKED, NV>(S, n, P, [&](int64_t i, lean_f32v* t) LP_INLINE_LAMBDA {
      for (int v = 0; v < NV; ++v) t[v] = lean_load(x + i * L + v * VL) * lean_load(y + i * L + v * VL);
    });
  } else {
    lean_run<EXACT_SUM, CHUNKED, NV>(S, n, P, [&](int64_t i, lean_f32v* t) LP_INLINE_LAMBDA {
      for (int v = 0; v < NV; ++v) t[v] = lean_load(x + i * L + v * VL);
    });
  }
}

// dst[k * stride + l] = src[l * ld + k] for l < nl, k < n: LEAN_VL x LEAN_VL blocks transposed in
// registers (log2(LEAN_VL) stages of interleaving pairs of rows), the edges one value at a time.
inline void lean_transpose(const float* __restrict src, int64_t ld, int64_t nl, int64_t n, int64_t stride,
                           float* __restrict dst) {
  constexpr int VL = LEAN_VL;
#if LP_VEC_BYTES == 64
  const lean_i32v lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const lean_i32v hi = lo + 8;
#elif LP_VEC_BYTES == 32
  const lean_i32v lo = {0, 8, 1, 9, 2, 10, 3, 11};
  const lean_i32v hi = lo + 4;
#else
  const lean_i32v lo = {0, 4, 1, 5};
  const lean_i32v hi = lo + 2;
#endif
  const int64_t nlb = nl / VL * VL, nb = n / VL * VL;
  for (int64_t l0 = 0; l0 < nlb; l0 += VL) {
    for (int64_t k0 = 0; k0 < nb; k0 += VL) {
      lean_f32v v[VL], w[VL];
      for (int i = 0; i < VL; ++i) v[i] = lean_load(src + (l0 + i) * ld + k0);
      for (int stage = 1; stage < VL; stage *= 2) {  // row i of the block ends up as column i
        for (int i = 0; i < VL / 2; ++i) {
          w[2 * i] = __builtin_shuffle(v[i], v[i + VL / 2], lo);
          w[2 * i + 1] = __builtin_shuffle(v[i], v[i + VL / 2], hi);
        }
        for (int i = 0; i < VL; ++i) v[i] = w[i];
      }
      for (int i = 0; i < VL; ++i) lean_store(dst + (k0 + i) * stride + l0, v[i]);
    }
    for (int64_t k = nb; k < n; ++k)
      for (int64_t l = l0; l < l0 + VL; ++l) dst[k * stride + l] = src[l * ld + k];
  }
  for (int64_t l = nlb; l < nl; ++l)
    for (int64_t k = 0; k < n; ++k) dst[k * stride + l] = src[l * ld + k];
}

}  // namespace lowprec
