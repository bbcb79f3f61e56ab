// Table of kernel entry points compiled for one instruction set (see isa_*.cpp).
#pragma once
#include <cstdint>

#include "lowprec/params.hpp"

namespace lowprec {

template <class T> using QuantizeFn = void (*)(const T*, T*, int64_t, uint64_t, const QuantParams&);
template <class T> using EncodeFn = void (*)(const T*, void*, int, int64_t, uint64_t, const QuantParams&);

struct KernelTable {
  const char* name;
  QuantizeFn<float> quantize_f32;
  QuantizeFn<double> quantize_f64;
  EncodeFn<float> encode_f32;
  EncodeFn<double> encode_f64;
};

const KernelTable* kernels_baseline();
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();

}  // namespace lowprec
