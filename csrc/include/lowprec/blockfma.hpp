// Block-FMA tensor-core model (specs/accelerator-models.md section 2): d = c + sum of F exact
// products, aligned to the largest exponent, each term truncated to 23 + neab fraction bits below
// it, summed exactly, normalised and rounded once.
//
// With e(x) = max(floor(log2|x|), emin_in), the product a*b equals sig(a) sig(b) 2^(e(a) + e(b)),
// so the truncated term is floor(|a*b| * 2^(23 + neab - E)): only the alignment exponent E needs
// the unnormalised exponents. Inputs are float32 values of formats with at most 11 significant
// bits (exact products in double), terms are below 2^(27 + 1) and a block of up to 64 terms sums
// exactly in double. Lanes are W independent output elements, as in accumulate.hpp.
#pragma once
#include <cmath>
#include <cstdint>

#include "lowprec/accumulate.hpp"
#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"

namespace lowprec {

// floor(log2|x|) of a nonzero finite float, clamped below at emin (exact for subnormals too,
// which all fall under every emin used here).
inline int32_t exp_floor(float x, int32_t emin) {
  const int32_t e = int32_t((bit_cast<uint32_t>(x) >> 23) & 0xFF) - 127;
  return e > emin ? e : emin;
}

inline double pow2(int32_t e) { return bit_cast<double>(uint64_t(int64_t(e) + 1023) << 52); }

// bfma_block (below) one lane at a time, with the specials: blocks with an infinite or NaN input.
template <int MODE>
inline void bfma_block_scalar(const float* __restrict a, const float* __restrict b, int n, const double* c_in,
                              double* d, const BfmaParams& p, const Lowered<double>& LO) {
  constexpr int W = ACC_LANES;
  const double c_floor = pow2(p.out_emin);
  for (int l = 0; l < W; ++l) {
    double c = c_in[l];
    if (!p.out_subnormals && std::fabs(c) < c_floor) c = 0.0 * c;
    // specials of the whole block
    bool nan = c != c, pinf = c == INFINITY, ninf = c == -INFINITY;
    int32_t E = c != 0.0 && !(nan | pinf | ninf) ? exp_floor(float(c), p.c_emin) : INT32_MIN;
    bool any = c != 0.0;
    for (int k = 0; k < n; ++k) {
      const float x = a[k], y = b[k * W + l];
      const double t = double(x) * double(y);
      nan |= t != t;
      pinf |= t == INFINITY;
      ninf |= t == -INFINITY;
      if (t != 0.0 && t - t == 0.0) {
        const int32_t e = exp_floor(x, p.emin_a) + exp_floor(y, p.emin_b);
        E = e > E ? e : E;
        any = true;
      }
    }
    if (nan || (pinf && ninf)) {
      d[l] = NAN;
      continue;
    }
    if (pinf || ninf) {
      d[l] = pinf ? INFINITY : -INFINITY;
      continue;
    }
    if (!any) {
      d[l] = 0.0;
      continue;
    }
    E = E > p.min_exp_limit ? E : p.min_exp_limit;
    const int32_t sh = 23 + p.neab - E;
    const double up = pow2(sh);
    double S = std::copysign(std::trunc(std::fabs(c) * up), c);
    for (int k = 0; k < n; ++k) {
      const double t = double(a[k]) * double(b[k * W + l]);
      S += std::copysign(std::trunc(std::fabs(t) * up), t);
    }
    const double v = S * pow2(-sh);  // exact: S is an integer below 2^40
    // exponent overflow of the normalised sum gives inf (the model does not saturate, even toward zero)
    d[l] = std::fabs(v) >= pow2(p.out_emax + 1) ? std::copysign(INFINITY, v) : round_to<MODE>(v, 0, LO);
  }
}

// One block-FMA on W lanes: d[l] = BFMA(products k = 0..n-1 of lane l, c[l]), with a(k) broadcast
// and b(k, l) per lane (P: values and exponents, see BfmaPanel). c_in may equal d. Blocks without
// infinite or NaN inputs (all but rare ones, which take bfma_block_scalar) run as loops over the
// lanes (vectorised): the alignment exponent E as the largest e(a) + e(b) of the nonzero products
// (a zero's exponent BFMA_NONE keeps its sums out), then the truncated sum.
template <int MODE>
inline void bfma_block(const BfmaPanel& P, int n, const double* c_in, double* d, const BfmaParams& p,
                       const Lowered<double>& LO) {
  constexpr int W = ACC_LANES;
  constexpr uint32_t EXP = 0x7F800000u;
  const float* __restrict a = P.a;
  const float* __restrict b = P.b;
  uint32_t special = 0;
  for (int l = 0; l < W; ++l) special |= std::fabs(c_in[l]) <= 1.7976931348623157e308 ? 0u : 1u;  // inf or NaN
  if (!p.finite_ab) {
    for (int k = 0; k < n; ++k) special |= (bit_cast<uint32_t>(a[k]) & EXP) == EXP ? 1u : 0u;
    for (int k = 0; k < n * W; ++k) special |= (bit_cast<uint32_t>(b[k]) & EXP) == EXP ? 1u : 0u;
  }
  if (special) {
    bfma_block_scalar<MODE>(a, b, n, c_in, d, p, LO);
    return;
  }
  const double c_floor = pow2(p.out_emin);
  const bool flush = !p.out_subnormals;
  alignas(64) double c[W], S[W], up[W], down[W];
  alignas(64) int32_t E[W];
  for (int l = 0; l < W; ++l) {
    const double cl = flush && std::fabs(c_in[l]) < c_floor ? 0.0 * c_in[l] : c_in[l];
    c[l] = cl;
  }
  for (int l = 0; l < W; ++l) {
    const float cf = float(c[l]);  // c is a value of the output format: exact in float32
    E[l] = cf != 0.0f ? exp_floor(cf, p.c_emin) : BFMA_NONE;
  }
  const int32_t* __restrict ea = P.ea;
  for (int k = 0; k < n; ++k) {
    const int32_t ex = ea[k];
    const int32_t* __restrict ek = P.eb + int64_t(k) * W;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const int32_t e = ex + ek[l];  // >= 2 * BFMA_NONE = INT32_MIN: no overflow
      E[l] = e > E[l] ? e : E[l];
    }
  }
  // Lanes with nothing to sum (E below BFMA_NONE / 2) are replaced: the clamp keeps their scale finite.
  const int32_t lo_e = p.min_exp_limit > -700 ? p.min_exp_limit : -700;
  for (int l = 0; l < W; ++l) {
    const int32_t El = E[l] > lo_e ? E[l] : lo_e;
    const int32_t sh = 23 + p.neab - El;
    up[l] = pow2(sh);
    down[l] = pow2(-sh);
    S[l] = std::trunc(c[l] * up[l]);  // truncation toward zero is odd: copysign(trunc(|c| up), c)
  }
  const double* __restrict ad = P.ad;
  for (int k = 0; k < n; ++k) {
    const double xd = ad[k];
    const double* __restrict bk = P.bd + int64_t(k) * W;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const double t = xd * bk[l];
      S[l] += std::trunc(t * up[l]);  // t * up is exact (a power-of-two scaling, far from under/overflow)
    }
  }
  const double big = pow2(p.out_emax + 1);
  const Lowered<double> Lc = LO;
  alignas(64) double live[W];
  for (int l = 0; l < W; ++l) live[l] = E[l] > BFMA_NONE / 2 ? 1.0 : 0.0;
#pragma omp simd
  for (int l = 0; l < W; ++l) {
    const double v = S[l] * down[l];  // exact: S is an integer below 2^40
    // exponent overflow of the normalised sum gives inf (the model does not saturate, even toward zero)
    const double rounded = round_to<MODE>(v, 0, Lc);
    const double r = std::fabs(v) >= big ? std::copysign(INFINITY, v) : rounded;
    d[l] = live[l] != 0.0 ? r : 0.0;
  }
}

// One instruction: `block` products (a, b already in the order of p.perm) on top of c. Sub-blocks of
// p.sub_block products are chained; with late_c they start from zero and c is added at the end with
// one rounding to p.late. c may equal d.
template <int MODE>
inline void bfma_instruction(const BfmaPanel& P, const double* c, double* d, const BfmaParams& p,
                             const Lowered<double>& LO, const Lowered<double>& LL) {
  constexpr int W = ACC_LANES;
  alignas(64) double acc[W];
  for (int l = 0; l < W; ++l) acc[l] = p.late_c ? 0.0 : c[l];
  for (int k0 = 0; k0 < p.block; k0 += p.sub_block) {
    const int n = p.block - k0 < p.sub_block ? p.block - k0 : p.sub_block;
    const int64_t kw = int64_t(k0) * W;
    const BfmaPanel Pk = {P.a + k0, P.b + kw, P.ad + k0, P.bd + kw, P.ea + k0, P.eb + kw};
    bfma_block<MODE>(Pk, n, acc, acc, p, LO);
  }
  if (p.late_c) {
    for (int l = 0; l < W; ++l) d[l] = add_round<MODE_NEAREST>(acc[l], c[l], 0, LL);
  } else {
    for (int l = 0; l < W; ++l) d[l] = acc[l];
  }
}

}  // namespace lowprec
