// Drivers of the compact spectral-clustering kernels: rows of a Gram block in parallel, and the
// matrix-vector products the eigensolver calls. Results do not depend on the thread count: every
// row is reduced in a fixed order, and the transposed half of the symmetric CSR product is summed
// over a fixed partition of the rows.
#include <cstdint>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lowprec/api.hpp"
#include "lowprec/spectral.hpp"

namespace lowprec {
namespace {

constexpr int64_t ROW_TASK = 16;     // rows per task when emitting a Gram block
constexpr int64_t TABLE_TILE = 64;   // byte groups per table tile (64 * 256 doubles = 128 KiB)
constexpr int64_t PACKED_ROWS = 64;  // rows per task of the packed product

constexpr int64_t PARALLEL_WORK = int64_t(1) << 18;  // below this many inner steps one thread is faster

int threads(int64_t tasks, int n_threads, int64_t work) {
  if (n_threads < 1 || tasks < 2 || work < PARALLEL_WORK) return 1;
  return tasks < n_threads ? int(tasks) : n_threads;
}

// f(t) for t in [0, tasks); work (total inner steps) decides whether threads pay off.
template <class F> void parallel_for(int64_t tasks, int n_threads, int64_t work, const F& f) {
  const int nt = threads(tasks, n_threads, work);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (int64_t t = 0; t < tasks; ++t) f(t);
  (void)nt;
}

template <class F> void row_tasks(int64_t rows, int64_t cols, int n_threads, const F& f) {
  parallel_for((rows + ROW_TASK - 1) / ROW_TASK, n_threads, rows * cols, [&](int64_t t) {
    const int64_t r1 = (t + 1) * ROW_TASK < rows ? (t + 1) * ROW_TASK : rows;
    for (int64_t r = t * ROW_TASK; r < r1; ++r) f(r);
  });
}

template <class V>
void csr_sym_matvec(int64_t n, const int64_t* indptr, const int32_t* idx, const V* val, double scale, const double* x,
                    double* y, double* work, int64_t slices, int n_threads) {
  // Slice s covers the rows whose first entry lies in the s-th nnz quantile.
  const int64_t nnz = indptr[n];
  std::memset(y, 0, sizeof(double) * size_t(n));
  std::memset(work, 0, sizeof(double) * size_t(n) * size_t(slices));
  auto slice_start = [&](int64_t s) {
    const int64_t target = nnz / slices * s + (nnz % slices) * s / slices;
    int64_t lo = 0, hi = n;  // first row with indptr[row] >= target
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (indptr[mid] < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    return s == 0 ? int64_t(0) : lo;
  };
  parallel_for(slices, n_threads, nnz, [&](int64_t s) {
    const int64_t i0 = slice_start(s), i1 = s + 1 == slices ? n : slice_start(s + 1);
    double* z = work + s * n;
    for (int64_t i = i0; i < i1; ++i) {
      double acc = 0.0;
      const double xi = x[i];
      for (int64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
        const double v = double(val[e]);
        acc += v * x[idx[e]];
        z[idx[e]] += v * xi;
      }
      y[i] = acc;
    }
  });
  const int64_t chunks = (n + 4095) / 4096;
  parallel_for(chunks, n_threads, n * slices, [&](int64_t c) {
    const int64_t j1 = (c + 1) * 4096 < n ? (c + 1) * 4096 : n;
    for (int64_t j = c * 4096; j < j1; ++j) {
      double s = y[j];
      for (int64_t q = 0; q < slices; ++q) s += work[q * n + j];
      y[j] = s * scale;
    }
  });
}

}  // namespace

int spectral_csr_count(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                       int64_t* counts, int n_threads) {
  row_tasks(rows, cols, n_threads, [&](int64_t r) { counts[r] = csr_row_count(G + r * cols, cols, r0 + r, c0, m); });
  return 0;
}

int spectral_csr_fill_i8(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                         const int64_t* starts, int32_t* idx, int8_t* val, int n_threads) {
  row_tasks(rows, cols, n_threads,
            [&](int64_t r) { csr_row_fill(G + r * cols, cols, r0 + r, c0, m, idx + starts[r], val + starts[r]); });
  return 0;
}

int spectral_csr_fill_f64(const double* G, int64_t rows, int64_t cols, int64_t r0, int64_t c0, const EntryMap& m,
                          const int64_t* starts, int32_t* idx, double* val, int n_threads) {
  row_tasks(rows, cols, n_threads,
            [&](int64_t r) { csr_row_fill(G + r * cols, cols, r0 + r, c0, m, idx + starts[r], val + starts[r]); });
  return 0;
}

int spectral_pack(const double* G, int64_t rows, int64_t n, const EntryMap& m, int bits, uint8_t* out,
                  int64_t row_bytes, int n_threads) {
  if (bits != 1 && bits != 2 && bits != 4 && bits != 8) return -1;
  row_tasks(rows, n, n_threads, [&](int64_t r) { pack_row(G + r * n, n, m, bits, out + r * row_bytes, row_bytes); });
  return 0;
}

int spectral_csr_matvec_i8(int64_t n, const int64_t* indptr, const int32_t* idx, const int8_t* val, double scale,
                           const double* x, double* y, double* work, int64_t slices, int n_threads) {
  csr_sym_matvec(n, indptr, idx, val, scale, x, y, work, slices, n_threads);
  return 0;
}

int spectral_csr_matvec_f64(int64_t n, const int64_t* indptr, const int32_t* idx, const double* val, double scale,
                            const double* x, double* y, double* work, int64_t slices, int n_threads) {
  csr_sym_matvec(n, indptr, idx, val, scale, x, y, work, slices, n_threads);
  return 0;
}

int spectral_packed_matvec(int64_t n, const uint8_t* codes, int64_t row_bytes, int bits, const double* levels,
                           double scale, const double* x, double* y, double* tables, int n_threads) {
  if (bits != 1 && bits != 2 && bits != 4 && bits != 8) return -1;
  const int per_byte = 8 / bits;
  const int64_t groups = (n + per_byte - 1) / per_byte;
  const int64_t table_tasks = (groups + 255) / 256;
  parallel_for(table_tasks, n_threads, groups * 256, [&](int64_t t) {
    const int64_t g1 = (t + 1) * 256 < groups ? (t + 1) * 256 : groups;
    for (int64_t g = t * 256; g < g1; ++g) byte_table(levels, bits, x, g * per_byte, n, tables + g * 256);
  });
  parallel_for((n + PACKED_ROWS - 1) / PACKED_ROWS, n_threads, n * groups, [&](int64_t t) {
    const int64_t i0 = t * PACKED_ROWS, i1 = i0 + PACKED_ROWS < n ? i0 + PACKED_ROWS : n;
    double acc[PACKED_ROWS] = {0.0};
    for (int64_t g0 = 0; g0 < groups; g0 += TABLE_TILE) {
      const int64_t g1 = g0 + TABLE_TILE < groups ? g0 + TABLE_TILE : groups;
      for (int64_t i = i0; i < i1; ++i) {
        const uint8_t* row = codes + i * row_bytes;
        double s = 0.0;
        for (int64_t g = g0; g < g1; ++g) s += tables[g * 256 + row[g]];
        acc[i - i0] += s;
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      const double diag = levels[packed_code(codes + i * row_bytes, i, bits)] * x[i];
      y[i] = (acc[i - i0] - diag) * scale;
    }
  });
  return 0;
}

}  // namespace lowprec
