// Kernels for x86-64 CPUs with AVX-512 F/DQ/BW/VL (selected at run time).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2,popcnt")
#include <immintrin.h>
#define LP_ISA isa_avx512
#define LP_VEC_BYTES 64
#define LP_ISA_NAME "avx512"
#define LP_TABLE_FN kernels_avx512
#include "isa_kernels.inc"
#else
#include "kernel_table.hpp"
const ::lowprec::KernelTable* ::lowprec::kernels_avx512() { return nullptr; }
#endif
