// Per-addition emulated accumulation: every addition of a dot product is rounded to the
// accumulator format, in sequential, chunked or pairwise order.
//
// Values are held in double. Products of operands with at most 53 significant bits in total are
// exact in double (the Python layer checks this). One addition s + t is evaluated exactly as the
// pair (hi, err) of TwoSum and collapsed to hi rounded to odd at 53 bits (hi itself when exact,
// else the neighbour of hi toward err when hi's last bit is even); rounding that value to an
// accumulator with at most 51 significant bits gives the correctly rounded sum in every
// deterministic mode. Stochastic modes draw their probability from the same 53-bit value.
//
// Work is done on panels of W lanes (W output elements computed side by side, one per lane) whose
// operands the dispatcher has packed into contiguous K x W double buffers, so that the lane loops
// vectorise. The random word of a rounding step is a pure function of (key, index): the dispatcher
// assigns indices per output element (see AccumSteps).
#pragma once
#include <cstdint>

#include "lowprec/params.hpp"
#include "lowprec/quantize.hpp"
#include "lowprec/rng.hpp"

namespace lowprec {

// hi rounded to odd at 53 bits, given the TwoSum error err of the exact sum hi + err.
inline double round_odd53(double hi, double err) {
  const uint64_t hb = bit_cast<uint64_t>(hi);
  const uint64_t inexact = (err != 0.0) & (hi - hi == 0.0) ? ~uint64_t(0) : uint64_t(0);
  const uint64_t even = (hb & 1) == 0 ? ~uint64_t(0) : uint64_t(0);
  // exact magnitude above |hi| when err has the sign of hi
  const uint64_t up = ((bit_cast<uint64_t>(err) ^ hb) >> 63) == 0 ? uint64_t(1) : ~uint64_t(0);
  return bit_cast<double>(hb + (up & inexact & even));
}

// s + t rounded to the format of L (exactly, see above); ctr is the step's random counter.
template <int MODE> inline double add_round(double s, double t, uint64_t ctr, const Lowered<double>& L) {
  const double hi = s + t;
  const double z = hi - s;
  const double err = (s - (hi - z)) + (t - z);
  const Rounded<double> r = round_one<double, MODE>(round_odd53(hi, err), ctr, L);
  return bit_cast<double>(r.sign | r.mag);
}

template <int MODE> inline double round_to(double x, uint64_t ctr, const Lowered<double>& L) {
  const Rounded<double> r = round_one<double, MODE>(x, ctr, L);
  return bit_cast<double>(r.sign | r.mag);
}

// Start a panel: c[l] (nullptr: no addend) is rounded to the accumulator with index c0 + l * cs.
template <int MODE>
inline void accum_init(AccumState& S, const double* c, int64_t K, const AccumSteps& st, const AccumParams& p,
                       const Lowered<double>& L) {
  constexpr int W = ACC_LANES;
  for (int l = 0; l < W; ++l) {
    const uint64_t cc = random_counter(p.acc.key, st.c0 + uint64_t(l) * st.cs);
    S.s[l] = c ? round_to<MODE>(c[l], cc, L) : 0.0;
    S.q[l] = 0.0;
    S.ct[l] = random_counter(p.acc.key, st.t0 + uint64_t(l) * st.ts);
    S.cm[l] = S.ct[l] + uint64_t(K) * GOLDEN;
    S.cp[l] = random_counter(p.prod.key, st.p0 + uint64_t(l) * st.ps);
  }
  S.depth = 0;
  S.k = 0;
  S.K = K;
}

// x[l] = x[l] + y[l] rounded, stepping the counters ctr[l].
template <int MODE>
inline void lanes_add(double* __restrict x, const double* __restrict y, uint64_t* __restrict ctr,
                      const Lowered<double>& L) {
#pragma omp simd
  for (int l = 0; l < ACC_LANES; ++l) {
    x[l] = add_round<MODE>(x[l], y[l], ctr[l], L);
    ctr[l] += GOLDEN;
  }
}

// Feed the next n terms: term i of lane l is a(i, l) * b[i * W + l] with a(i, l) = a[i] (BCAST)
// or a[i * W + l]; b == nullptr: the term is a(i, l) alone.
template <int MODE, bool BCAST>
inline void accum_feed(AccumState& S, const double* __restrict a, const double* __restrict b, int64_t n,
                       const AccumParams& p, const Lowered<double>& L, const Lowered<double>& LP) {
  constexpr int W = ACC_LANES;
  for (int64_t i = 0; i < n; ++i) {
    double* __restrict t = p.order == ORDER_PAIRWISE ? S.stack + int64_t(S.depth) * W : S.t;
    if (BCAST) {
      const double ai = a[i];
      for (int l = 0; l < W; ++l) t[l] = ai * b[i * W + l];
    } else if (b != nullptr) {
      for (int l = 0; l < W; ++l) t[l] = a[i * W + l] * b[i * W + l];
    } else {
      for (int l = 0; l < W; ++l) t[l] = a[i * W + l];
    }
    if (p.has_prod) {
      const uint64_t off = uint64_t(S.k) * GOLDEN;
#pragma omp simd
      for (int l = 0; l < W; ++l) t[l] = round_to<MODE>(t[l], S.cp[l] + off, LP);
    }
    ++S.k;
    if (p.order == ORDER_SEQUENTIAL) {
      lanes_add<MODE>(S.s, t, S.ct, L);
    } else if (p.order == ORDER_CHUNKED) {
      // intra-chunk steps use indices t0 + k, the merge of chunk j uses t0 + K + j
      lanes_add<MODE>(S.q, t, S.ct, L);
      if (S.k % p.chunk == 0 || S.k == S.K) {
        lanes_add<MODE>(S.s, S.q, S.cm, L);
        for (int l = 0; l < W; ++l) S.q[l] = 0.0;
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
template <int MODE>
inline void accum_finish(AccumState& S, double* __restrict out, const Lowered<double>& L) {
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
