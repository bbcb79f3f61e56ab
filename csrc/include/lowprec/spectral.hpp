// Compact kernel matrices for spectral clustering (no Python, no threads: single-row kernels).
//
// Entry (i, j) of the kernel is f(t)/sqrt(p) with t = g / sqrt(p), g = x_i . x_j an entry of a Gram
// block computed by the caller (BLAS). Three entry maps:
//   codes      code = #{k : t >= edges[k]} (edges ascending); CSR keeps the int8 value of the code
//              when it is non-zero, packed storage keeps the code itself (bits per code: 1, 2, 4, 8);
//   threshold  t / sqrt(p) where |t| > t0, else 0 (float values);
//   puncture   t / sqrt(p) where u(i, j) < keep, else 0, u uniform in [0, 1) from the counter-based
//              generator at index min(i,j) * n + max(i,j), so the mask is symmetric.
// The CSR form holds the strict upper triangle (j > i); the packed form holds full rows.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lowprec/rng.hpp"

namespace lowprec {

enum SpectralMap : int32_t { MAP_CODES = 0, MAP_THRESHOLD = 1, MAP_PUNCTURE = 2 };

struct EntryMap {
  int32_t mode;         // SpectralMap
  double sqrt_p;        // sqrt(p), computed by the caller
  const double* edges;  // MAP_CODES: ascending thresholds on t
  int32_t n_edges;
  const int8_t* values;  // MAP_CODES: int8 value of each code (n_edges + 1 entries); 0 = no entry
  double t0;             // MAP_THRESHOLD
  uint64_t key;          // MAP_PUNCTURE: stream key
  double keep;           // MAP_PUNCTURE: probability of keeping an entry
  int64_t n;             // matrix order (for the puncture index)
};

inline int32_t code_of(double t, const double* edges, int32_t n_edges) {
  int32_t lo = 0, hi = n_edges;  // number of edges <= t, by bisection
  while (lo < hi) {
    const int32_t mid = (lo + hi) >> 1;
    if (t >= edges[mid])
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

inline double uniform_at(uint64_t key, int64_t i, int64_t j, int64_t n) {
  const uint64_t idx = i < j ? uint64_t(i) * uint64_t(n) + uint64_t(j) : uint64_t(j) * uint64_t(n) + uint64_t(i);
  return double(random_word(key, idx) >> 11) * 0x1.0p-53;
}

// Float value of entry (i, j) for MAP_THRESHOLD / MAP_PUNCTURE (0 = no entry).
inline double float_entry(double g, int64_t i, int64_t j, const EntryMap& m) {
  const double t = g / m.sqrt_p;
  if (m.mode == MAP_THRESHOLD) return std::fabs(t) > m.t0 ? t / m.sqrt_p : 0.0;
  return uniform_at(m.key, i, j, m.n) < m.keep ? t / m.sqrt_p : 0.0;
}

// Number of stored upper-triangle entries of row i = r0 + r: g[0 .. cols) holds columns c0 .. c0 + cols.
inline int64_t csr_row_count(const double* g, int64_t cols, int64_t i, int64_t c0, const EntryMap& m) {
  int64_t count = 0;
  const int64_t first = i + 1 > c0 ? i + 1 - c0 : 0;
  for (int64_t c = first; c < cols; ++c) {
    if (m.mode == MAP_CODES)
      count += m.values[code_of(g[c] / m.sqrt_p, m.edges, m.n_edges)] != 0;
    else
      count += float_entry(g[c], i, c0 + c, m) != 0.0;
  }
  return count;
}

// Write the stored entries of row i (column indices and values), in column order.
template <class V>
inline void csr_row_fill(const double* g, int64_t cols, int64_t i, int64_t c0, const EntryMap& m, int32_t* idx,
                         V* val) {
  int64_t k = 0;
  const int64_t first = i + 1 > c0 ? i + 1 - c0 : 0;
  for (int64_t c = first; c < cols; ++c) {
    double v;
    if (m.mode == MAP_CODES)
      v = m.values[code_of(g[c] / m.sqrt_p, m.edges, m.n_edges)];
    else
      v = float_entry(g[c], i, c0 + c, m);
    if (v != 0.0) {
      idx[k] = int32_t(c0 + c);
      val[k] = V(v);
      ++k;
    }
  }
}

// Pack the codes of one full row (n columns) into bytes, bits per code, low bits first.
inline void pack_row(const double* g, int64_t n, const EntryMap& m, int bits, uint8_t* out, int64_t row_bytes) {
  std::memset(out, 0, size_t(row_bytes));
  const int per_byte = 8 / bits;
  for (int64_t c = 0; c < n; ++c) {
    const uint32_t code = uint32_t(code_of(g[c] / m.sqrt_p, m.edges, m.n_edges));
    out[c / per_byte] |= uint8_t(code << ((c % per_byte) * bits));
  }
}

inline uint32_t packed_code(const uint8_t* row, int64_t c, int bits) {
  const int per_byte = 8 / bits;
  return (row[c / per_byte] >> ((c % per_byte) * bits)) & ((1u << bits) - 1u);
}

// Table of byte sums for columns g * per_byte ..: table[b] = sum_c levels[code_c(b)] * x[col_c].
inline void byte_table(const double* levels, int bits, const double* x, int64_t col0, int64_t n, double* table) {
  const int per_byte = 8 / bits;
  const uint32_t mask = (1u << bits) - 1u;
  for (uint32_t b = 0; b < 256; ++b) {
    double s = 0.0;
    for (int c = 0; c < per_byte; ++c) {
      const int64_t col = col0 + c;
      if (col < n) s += levels[(b >> (c * bits)) & mask] * x[col];
    }
    table[b] = s;
  }
}

}  // namespace lowprec
