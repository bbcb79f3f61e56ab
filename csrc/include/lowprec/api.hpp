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

// Emulated accumulation (accumulate.cpp). Matrix products: out[b, i, j] = C[b, i, j] (+) sum_k
// A[b, i, k] * B[b, k, j] (row-major, batch strides in elements, 0 = shared; C nullable). Output o
// (flat index) rounds c with random index o * steps, its m-th addition with o * steps + 1 + m, and
// its product k with o * K + k (product stream). fast = 1: values held in float (the caller checks
// that the accumulator has at most 22 significant bits inside float's range, the mode is
// deterministic and the terms are exact in float).
int accum_matmul_f32(const float* A, const float* B, const float* C, float* out, int64_t batch, int64_t M, int64_t N,
                     int64_t K, int64_t sA, int64_t sB, int64_t sC, const AccumParams& p, uint64_t steps, int fast, int n_threads);
int accum_matmul_f64(const double* A, const double* B, const double* C, double* out, int64_t batch, int64_t M,
                     int64_t N, int64_t K, int64_t sA, int64_t sB, int64_t sC, const AccumParams& p, uint64_t steps,
                     int fast, int n_threads);
// Row reductions: out[r] = C[r] (+) sum_k X[r, k] * Y[r, k] (Y, C nullable); row r uses the random
// indices of `st` with lane = r (AccumSteps).
int accum_rows_f32(const float* X, const float* Y, const float* C, float* out, int64_t R, int64_t K,
                   const AccumSteps& st, const AccumParams& p, int fast, int n_threads);
int accum_rows_f64(const double* X, const double* Y, const double* C, double* out, int64_t R, int64_t K,
                   const AccumSteps& st, const AccumParams& p, int fast, int n_threads);
// Block-FMA products on float32 operands (values of the input formats); C and out in double.
// mode: final rounding of a block (MODE_TOWARD_ZERO or MODE_NEAREST).
int bfma_matmul(const float* A, const float* B, const double* C, double* out, int64_t batch, int64_t M, int64_t N,
                int64_t K, int64_t sA, int64_t sB, int64_t sC, const BfmaParams& p, int mode, int n_threads);

// Compact spectral-clustering kernels (spectral.cpp, entry maps in spectral.hpp). A Gram block G
// (rows x cols, row-major) holds rows r0 .. and columns c0 ..; CSR keeps entries with j > i.
struct EntryMap;
int spectral_csr_count(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                       int64_t* counts, int n_threads);
int spectral_csr_fill_i8(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                         const int64_t* starts, int32_t* idx, int8_t* val, int n_threads);
int spectral_csr_fill_f64(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                          const int64_t* starts, int32_t* idx, double* val, int n_threads);
// Codes of full rows (G is rows x n), bits per code in {1, 2, 4, 8}; -1 for another width.
int spectral_pack(const double* G, int64_t rows, int64_t n, const EntryMap& m, int bits, uint8_t* out,
                  int64_t row_bytes, int n_threads);
// y = scale * (U + U^T) x for the strict upper triangle U in CSR; work holds slices * n doubles.
int spectral_csr_matvec_i8(int64_t n, const int64_t* indptr, const int32_t* idx, const int8_t* val, double scale,
                           const double* x, double* y, double* work, int64_t slices, int n_threads);
int spectral_csr_matvec_f64(int64_t n, const int64_t* indptr, const int32_t* idx, const double* val, double scale,
                            const double* x, double* y, double* work, int64_t slices, int n_threads);
// y = scale * (L - diag(L)) x, L_ij = levels[code_ij] of a packed n x n code matrix; tables holds
// ceil(n / (8 / bits)) * 256 doubles.
int spectral_packed_matvec(int64_t n, const uint8_t* codes, int64_t row_bytes, int bits, const double* levels,
                           double scale, const double* x, double* y, double* tables, int n_threads);

// Configuration.
const char* isa_name();            // kernel set in use: "avx512", "avx2" or "baseline"
const char* isa_available();       // comma-separated kernel sets this CPU can run
int set_isa(const char* name);     // select a kernel set (for testing); 0 on success, -1 if unusable
int openmp_enabled();
int default_threads();             // omp_get_max_threads(), respects OMP_NUM_THREADS
uint64_t make_key(uint64_t seed, uint64_t stream);

}  // namespace lowprec
