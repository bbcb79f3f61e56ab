// Block-FMA model on float lanes: the fast case of blockfma.hpp for models whose block sums are
// exact in float32, computing the same bits as bfma_block with float arithmetic on tiles of
// BFMA_ROWS rows x ACC_LANES columns (each b value loaded once per tile, not once per row).
//
// Conditions (checked by the Python layer, BfmaParams::lean; the kernel flags the rest):
//   * products of the input formats are normal floats, so a * b is exact in float32;
//   * no late c, and 2^neab (2F + 1) <= 1 for F products per block: with E the alignment exponent,
//     a truncated term floor(|t| 2^(23 + neab - E)) is below 2^(25 + neab) and c's below
//     2^(24 + neab), so every partial sum of a block is an integer below 2^24 (exact in float32);
//   * the output format fits float32 (BlockFMA checks this), so the block's result v = S 2^(E - 23
//     - neab) is exact in float32 and its rounding is round_one on float.
// Flagged (the driver recomputes the tile with bfma_block): a c that is infinite or NaN at the start
// of a block (an input c, or an overflow of the previous block), and a live lane whose alignment
// exponent puts 2^(23 + neab - E) or its inverse outside float32's normal range.
//
// Written with GCC vector extensions of the including instruction set's register width
// (accumulate_lean.hpp); the truncation uses the instruction set's rounding instruction (the x86
// including files include <immintrin.h> first, at global scope).
#pragma once
#include <cstdint>

#include "lowprec/accumulate_lean.hpp"
#include "lowprec/blockfma.hpp"
#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"

namespace lowprec {

// trunc(x) per lane (sign of zero kept).
LP_INLINE lean_f32v lean_trunc(lean_f32v x) {
#if defined(__x86_64__) && LP_VEC_BYTES == 64
  return (lean_f32v)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#elif defined(__x86_64__) && LP_VEC_BYTES == 32
  return (lean_f32v)_mm256_round_ps((__m256)x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#else
  // |x| < 2^31 here: the integer conversion truncates; the sign bit restores -0 for x in (-1, -0]
  const lean_f32v t = __builtin_convertvector(__builtin_convertvector(x, lean_i32v), lean_f32v);
  return (lean_f32v)((lean_i32v)t | ((lean_i32v)x & INT32_MIN));
#endif
}

// n products (one block) on top of d; returns nonzero when the tile must be redone by bfma_block.
template <int MODE>
inline int bfma_lean_block(const BfmaTile& T, int n, float* d, const BfmaParams& p, const Lowered<float>& LO) {
  constexpr int R = BFMA_ROWS, H = LEAN_H, VL = LEAN_VL, W = ACC_LANES, NV = R * H;
  constexpr int32_t ABS = INT32_MAX, EXPF = 0x7F800000;
  // E range with 2^(23 + neab - E) and 2^(E - 23 - neab) normal floats
  const int32_t e_lo = p.neab - 103, e_hi = p.neab + 149;
  const int32_t lo_e = p.min_exp_limit > e_lo ? p.min_exp_limit : e_lo;
  const int32_t floor_pat = (p.out_emin + 127) << 23;  // 2^out_emin
  lean_i32v E[NV], bad = {};
  lean_f32v c[NV], S[NV], up[NV];
  for (int v = 0; v < NV; ++v) {
    lean_f32v cv = lean_load(d + v * VL);
    const lean_i32v cb = (lean_i32v)cv, ca = cb & ABS;
    bad |= ca >= EXPF;  // inf or NaN
    if (!p.out_subnormals) cv = (lean_f32v)(ca < floor_pat ? cb & INT32_MIN : cb);
    c[v] = cv;
    lean_i32v e = (((lean_i32v)cv & EXPF) >> 23) - 127;
    e = e > p.c_emin ? e : p.c_emin;
    E[v] = ((lean_i32v)cv & ABS) != 0 ? e : lean_i32v{} + BFMA_NONE;
  }
  for (int k = 0; k < n; ++k) {
    lean_i32v ebk[H];
    for (int h = 0; h < H; ++h) std::memcpy(&ebk[h], T.eb + int64_t(k) * W + h * VL, sizeof ebk[h]);
    for (int r = 0; r < R; ++r) {
      const int32_t ex = T.ea[r * T.lda + k];
      for (int h = 0; h < H; ++h) {
        const lean_i32v e = ebk[h] + ex;  // >= 2 * BFMA_NONE = INT32_MIN: no overflow
        E[r * H + h] = e > E[r * H + h] ? e : E[r * H + h];
      }
    }
  }
  lean_i32v live[NV];
  for (int v = 0; v < NV; ++v) {
    live[v] = E[v] > BFMA_NONE / 2;
    lean_i32v El = E[v] > p.min_exp_limit ? E[v] : p.min_exp_limit;
    bad |= live[v] & ((El < e_lo) | (El > e_hi));
    El = E[v] > lo_e ? E[v] : lo_e;  // dead lanes: any scale in range
    El = El < e_hi ? El : e_hi;
    E[v] = El;
    up[v] = (lean_f32v)((150 + p.neab - El) << 23);  // 2^(23 + neab - E)
    S[v] = lean_trunc(c[v] * up[v]);
  }
  for (int k = 0; k < n; ++k) {
    lean_f32v bk[H];
    for (int h = 0; h < H; ++h) bk[h] = lean_load(T.b + int64_t(k) * W + h * VL);
    for (int r = 0; r < R; ++r) {
      const float ar = T.a[r * T.lda + k];
      for (int h = 0; h < H; ++h) S[r * H + h] += lean_trunc((ar * bk[h]) * up[r * H + h]);
    }
  }
  alignas(64) float vs[NV * VL];
  for (int v = 0; v < NV; ++v) {
    const lean_f32v down = (lean_f32v)((104 - p.neab + E[v]) << 23);
    lean_store(vs + v * VL, S[v] * down);  // exact; past float's range: inf, an overflow in every out format
  }
  const Lowered<float> Lc = LO;
  const float big = p.out_emax < 127 ? bit_cast<float>(uint32_t(p.out_emax + 128) << 23) : INFINITY;
#pragma omp simd
  for (int i = 0; i < NV * VL; ++i) {
    const float v = vs[i];
    const float rounded = round_to<MODE>(v, 0, Lc);
    vs[i] = std::fabs(v) >= big ? std::copysign(INFINITY, v) : rounded;
  }
  for (int v = 0; v < NV; ++v) lean_store(d + v * VL, (lean_f32v)((lean_i32v)lean_load(vs + v * VL) & live[v]));
  int32_t flag = 0;
  for (int l = 0; l < VL; ++l) flag |= bad[l];
  return flag;
}

// nblocks block-FMA instructions of p.block products (in sub-blocks of p.sub_block) along the tile.
template <int MODE>
inline int bfma_lean_run(const BfmaTile& T, int64_t nblocks, float* d, const BfmaParams& p) {
  const Lowered<float> LO(p.out);
  const int64_t F = p.block;
  for (int64_t j = 0; j < nblocks; ++j) {
    for (int k0 = 0; k0 < p.block; k0 += p.sub_block) {
      const int64_t k = j * F + k0;
      const int n = p.block - k0 < p.sub_block ? p.block - k0 : p.sub_block;
      const BfmaTile Tk = {T.a + k, T.ea + k, T.lda, T.b + k * ACC_LANES, T.eb + k * ACC_LANES};
      if (bfma_lean_block<MODE>(Tk, n, d, p, LO)) return 1;
    }
  }
  return 0;
}

}  // namespace lowprec
