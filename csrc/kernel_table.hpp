// Table of kernel entry points compiled for one instruction set (see isa_*.cpp).
#pragma once
#include <cstdint>

#include "lowprec/params.hpp"

namespace lowprec {

template <class T> using QuantizeFn = void (*)(const T*, T*, int64_t, uint64_t, const QuantParams&);
template <class T> using EncodeFn = void (*)(const T*, void*, int, int64_t, uint64_t, const QuantParams&);
// Accumulation of one panel of ACC_LANES outputs (accumulate.hpp): init, feed terms, finish.
template <class V>
using AccInitFn = void (*)(AccumStateT<V>&, const V*, int64_t, const AccumSteps&, const AccumParams&);
template <class V> using AccFeedFn = void (*)(AccumStateT<V>&, const V*, const V*, int64_t, const AccumParams&, bool);
template <class V> using AccFinishFn = void (*)(AccumStateT<V>&, V*, const AccumParams&);
// One block-FMA instruction on ACC_LANES outputs (blockfma.hpp); mode: the block's final rounding.
// Block-FMA instructions along one row (nblocks * block products per output, see BfmaPanel); d holds c on
// entry and the result on exit.
using BfmaFn = void (*)(const BfmaPanel&, int64_t, double*, const BfmaParams&, int);
// Block-FMA instructions along one tile on float lanes (blockfma_lean.hpp); d holds c on entry and the
// result on exit; returns nonzero when the tile must be recomputed with BfmaFn.
using BfmaLeanFn = int (*)(const BfmaTile&, int64_t, float*, const BfmaParams&, int);
// Nearest-even float tiles (accumulate_lean.hpp); exact_sum: terms of at most p <= 11 bits.
using LeanOuterFn = void (*)(LeanState&, const float*, int64_t, const float*, int64_t, const LeanParams&, int);
// narrow: only the first ACC_LANES lanes (lane stride ACC_LANES instead of LEAN_LANES).
using LeanLanesFn = void (*)(LeanState&, const float*, const float*, int64_t, const LeanParams&, int, int);
// dst[k * stride + l] = src[l * ld + k] for l < nl, k < n (packing rows into lanes).
using LeanPackFn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, float*);

struct KernelTable {
  const char* name;
  QuantizeFn<float> quantize_f32;
  QuantizeFn<double> quantize_f64;
  EncodeFn<float> encode_f32;
  EncodeFn<double> encode_f64;
  AccInitFn<double> acc_init;
  AccFeedFn<double> acc_feed;
  AccFinishFn<double> acc_finish;
  AccInitFn<float> acc_init_f;
  AccFeedFn<float> acc_feed_f;
  AccFinishFn<float> acc_finish_f;
  BfmaFn bfma;
  BfmaLeanFn bfma_lean;
  LeanOuterFn lean_outer;
  LeanLanesFn lean_lanes;
  LeanPackFn lean_pack;
};

const KernelTable* active_kernels();

const KernelTable* kernels_baseline();
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();

}  // namespace lowprec

namespace lowprec {
// The accumulation entry points of a table for value type V.
template <class V> struct AccFns;
template <> struct AccFns<double> {
  static AccInitFn<double> init(const KernelTable* t) { return t->acc_init; }
  static AccFeedFn<double> feed(const KernelTable* t) { return t->acc_feed; }
  static AccFinishFn<double> finish(const KernelTable* t) { return t->acc_finish; }
};
template <> struct AccFns<float> {
  static AccInitFn<float> init(const KernelTable* t) { return t->acc_init_f; }
  static AccFeedFn<float> feed(const KernelTable* t) { return t->acc_feed_f; }
  static AccFinishFn<float> finish(const KernelTable* t) { return t->acc_finish_f; }
};
}  // namespace lowprec
