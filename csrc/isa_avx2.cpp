// Kernels for x86-64 CPUs with AVX2 (selected at run time).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx2,fma,bmi,bmi2,popcnt")
#include <immintrin.h>
#define LP_ISA isa_avx2
#define LP_VEC_BYTES 32
#define LP_ISA_NAME "avx2"
#define LP_TABLE_FN kernels_avx2
#include "isa_kernels.inc"
#else
#include "kernel_table.hpp"
const ::lowprec::KernelTable* ::lowprec::kernels_avx2() { return nullptr; }
#endif
