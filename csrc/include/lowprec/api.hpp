// C++ entry points of the compiled core (no Python here): threading, ISA dispatch, argument-free
// loops over contiguous buffers. Argument checking happens in the Cython layer.
#pragma once
#include <cstdint>

#include "lowprec/params.hpp"

namespace lowprec {

// Round n values (y may alias x). Returns 0.
int quantize_f32(const float* x, float* y, int64_t n, const QuantParams& p, int n_threads);
int quantize_f64(const double* x, double* y, int64_t n, const QuantParams& p, int n_threads);
// Codes of width code_bytes (1, 2 or 4). Returns 0, or -1 for an unsupported width.
int encode_f32(const float* x, void* codes, int code_bytes, int64_t n, const QuantParams& p, int n_threads);
int encode_f64(const double* x, void* codes, int code_bytes, int64_t n, const QuantParams& p, int n_threads);
// Parallel memory copy with the same threading as the kernels (the benchmark's physical limit).
void copy_bytes(const void* src, void* dst, int64_t nbytes, int n_threads);

// Configuration.
const char* isa_name();            // kernel set in use: "avx512", "avx2" or "baseline"
const char* isa_available();       // comma-separated kernel sets this CPU can run
int set_isa(const char* name);     // select a kernel set (for testing); 0 on success, -1 if unusable
int openmp_enabled();
int default_threads();             // omp_get_max_threads(), respects OMP_NUM_THREADS
uint64_t make_key(uint64_t seed, uint64_t stream);

}  // namespace lowprec
