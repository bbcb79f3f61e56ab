// Table of kernel entry points compiled for one instruction set (see isa_*.cpp).
#pragma once
#include <cstdint>

#include "lowprec/params.hpp"

namespace lowprec {

template <class T> using QuantizeFn = void (*)(const T*, T*, int64_t, uint64_t, const QuantParams&);
template <class T> using EncodeFn = void (*)(const T*, void*, int, int64_t, uint64_t, const QuantParams&);
// Accumulation of one panel of ACC_LANES outputs (accumulate.hpp): init, feed terms, finish.
using AccInitFn = void (*)(AccumState&, const double*, int64_t, const AccumSteps&, const AccumParams&);
using AccFeedFn = void (*)(AccumState&, const double*, const double*, int64_t, const AccumParams&, bool);
using AccFinishFn = void (*)(AccumState&, double*, const AccumParams&);
// One block-FMA instruction on ACC_LANES outputs (blockfma.hpp); mode: the block's final rounding.
using BfmaFn = void (*)(const float*, const float*, const double*, double*, const BfmaParams&, int, float*, float*);

struct KernelTable {
  const char* name;
  QuantizeFn<float> quantize_f32;
  QuantizeFn<double> quantize_f64;
  EncodeFn<float> encode_f32;
  EncodeFn<double> encode_f64;
  AccInitFn acc_init;
  AccFeedFn acc_feed;
  AccFinishFn acc_finish;
  BfmaFn bfma;
};

const KernelTable* active_kernels();

const KernelTable* kernels_baseline();
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();

}  // namespace lowprec
