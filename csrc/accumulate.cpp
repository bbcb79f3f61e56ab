// Drivers of the emulated reductions: packing of operands into lane panels, threading, and the
// random-stream index of every rounding step. The arithmetic is in accumulate.hpp / blockfma.hpp.
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernel_table.hpp"
#include "lowprec/api.hpp"

namespace lowprec {
namespace {

constexpr int W = ACC_LANES;
constexpr int64_t KSEG = 1024;  // terms packed at a time for row reductions
constexpr int64_t ROWS_PER_TASK = 48;  // a multiple of LEAN_VECS
constexpr int64_t BFMA_ROWS_PER_TASK = 128;  // a multiple of BFMA_ROWS

int threads_for(int64_t tasks, int64_t work, int n_threads) {
  if (n_threads < 1 || work < (int64_t(1) << 15)) return 1;
  return tasks < n_threads ? int(tasks > 0 ? tasks : 1) : n_threads;
}

template <class F> void parallel_tasks(int64_t tasks, int nt, const F& f) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (int64_t t = 0; t < tasks; ++t) f(t);
  (void)nt;
}

// One task of a batched matrix product: batch b, lanes j0 .. j0 + nl of a panel, rows i0 .. i1.
struct Tile {
  int64_t b, j0, nl, i0, i1;
};

// The tasks of a (batch, M, N) product: panels of W columns times groups of `rows` rows.
struct Tiling {
  int64_t M, N, rows, panels, row_groups, tasks;
  Tiling(int64_t batch, int64_t M_, int64_t N_, int64_t rows_ = ROWS_PER_TASK)
      : M(M_), N(N_), rows(rows_), panels((N_ + W - 1) / W), row_groups((M_ + rows_ - 1) / rows_),
        tasks(batch * panels * row_groups) {}
  Tile operator()(int64_t task) const {
    const int64_t rg = task % row_groups, pj = (task / row_groups) % panels;
    const int64_t j0 = pj * W, i0 = rg * rows;
    return {task / (row_groups * panels), j0, N - j0 < W ? N - j0 : W, i0, i0 + rows < M ? i0 + rows : M};
  }
};

}  // namespace

// LeanParams of an accumulator (accumulate_lean.hpp; the caller checks the conditions there).
static LeanParams lean_params(const AccumParams& p) {
  LeanParams lp;
  lp.emin_pat = int32_t(uint32_t(p.acc.emin + 127) << 23);
  lp.kpat = int32_t((uint32_t(23 - p.acc.man_bits) << 23) | 0x00400000u);
  const float mx = float(p.acc.max_value);
  std::memcpy(&lp.maxpat, &mx, sizeof mx);
  lp.order = p.order;
  lp.chunk = p.chunk > 0 ? p.chunk : 1;
  return lp;
}

// fast = 2, 3: nearest-even float tiles (3: exact float sums, see accumulate_lean.hpp), for float lanes.
template <class V> static bool lean_mode(int fast) { return std::is_same<V, float>::value && fast >= 2; }

// A tile state before its first term: chunk sums zero, no term fed, nothing flagged (s is the caller's).
static void lean_start(LeanState& S, int64_t K) {
  for (float& q : S.q) q = 0.0f;
  S.k = 0;
  S.K = K;
  S.bad = 0;
}

// out[b, i, j] = C[b, i, j] (+) sum_k A[b, i, k] * B[b, k, j]; batch strides in elements (0: shared).
// The lean path runs LEAN_VECS rows at a time and redoes a tile with the general kernel when it
// flags a lane.
template <class T, class V>
static int accum_matmul_impl(const T* A, const T* B, const T* C, T* out, int64_t batch, int64_t M, int64_t N,
                             int64_t K, int64_t sA, int64_t sB, int64_t sC, const AccumParams& p, uint64_t steps,
                             int fast, int n_threads) {
  const KernelTable* kt = active_kernels();
  const Tiling tiling(batch, M, N);
  const int nt = threads_for(tiling.tasks, batch * M * N * (K + 1), n_threads);
  const LeanParams lp = lean_params(p);
  constexpr int RV = LEAN_VECS;
  parallel_tasks(tiling.tasks, nt, [&](int64_t task) {
    const auto [b, j0, nl, i_0, i_1] = tiling(task);
    std::vector<V> bp(size_t(K * W), V(0));
    std::vector<V> arow(static_cast<size_t>(K));
    auto state = std::make_unique<AccumStateT<V>>();
    const T* Bb = B + b * sB;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < nl; ++l) bp[size_t(k * W + l)] = V(Bb[k * N + j0 + l]);
    alignas(64) V cbuf[W], obuf[W];
    // the general kernel for row i into out
    auto general_row = [&](int64_t i) {
      const T* Ai = A + b * sA + i * K;
      for (int64_t k = 0; k < K; ++k) arow[size_t(k)] = V(Ai[k]);
      const V* cp = nullptr;
      if (C) {
        const T* Ci = C + b * sC + i * N + j0;
        for (int l = 0; l < W; ++l) cbuf[l] = l < nl ? V(Ci[l]) : V(0);
        cp = cbuf;
      }
      const uint64_t o = uint64_t((b * M + i) * N + j0);
      const AccumSteps st{o * steps, steps, o * steps + 1, steps, o * uint64_t(K), uint64_t(K)};
      AccFns<V>::init(kt)(*state, cp, K, st, p);
      AccFns<V>::feed(kt)(*state, arow.data(), bp.data(), K, p, true);
      AccFns<V>::finish(kt)(*state, obuf, p);
      T* oi = out + (b * M + i) * N + j0;
      for (int64_t l = 0; l < nl; ++l) oi[l] = T(obuf[l]);
    };
    if constexpr (std::is_same<V, float>::value) {
      if (lean_mode<V>(fast)) {
        std::vector<float> ap(size_t(RV * K));
        auto ls = std::make_unique<LeanState>();
        for (int64_t i = i_0; i < i_1; i += RV) {
          const int64_t nr = i_1 - i < RV ? i_1 - i : RV;
          for (int v = 0; v < RV; ++v) {  // rows past the end repeat the last one
            const int64_t row = i + (v < nr ? v : nr - 1);
            const T* Ai = A + b * sA + row * K;
            for (int64_t k = 0; k < K; ++k) ap[size_t(v * K + k)] = float(Ai[k]);
            const T* Ci = C ? C + b * sC + row * N + j0 : nullptr;
            for (int l = 0; l < W; ++l) ls->s[v * W + l] = Ci && l < nl ? float(Ci[l]) : 0.0f;
          }
          lean_start(*ls, K);
          kt->lean_outer(*ls, ap.data(), K, bp.data(), K, lp, fast == 3);
          if (ls->bad) {
            for (int64_t v = 0; v < nr; ++v) general_row(i + v);
            continue;
          }
          for (int64_t v = 0; v < nr; ++v) {
            T* oi = out + (b * M + i + v) * N + j0;
            for (int64_t l = 0; l < nl; ++l) oi[l] = T(ls->s[v * W + l]);
          }
        }
        return;
      }
    }
    for (int64_t i = i_0; i < i_1; ++i) general_row(i);
  });
  return 0;
}

// Lane-major copy of rows r0 .. r0 + nl (row length K), terms k0 .. k0 + n: dst[k * stride + l].
template <class T, class V>
static void pack_rows(const T* X, int64_t r0, int64_t nl, int64_t K, int64_t k0, int64_t n, int64_t stride, V* dst) {
  for (int64_t l = 0; l < nl; ++l) {
    const T* xr = X + (r0 + l) * K + k0;
    for (int64_t k = 0; k < n; ++k) dst[k * stride + l] = V(xr[k]);
  }
}

// out[r] = C[r] (+) sum_k X[r, k] * Y[r, k] (Y, C nullable); row r uses the steps of `st` shifted
// by r (lane stride = row stride). The lean path runs LEAN_LANES rows per task and redoes them with
// the general kernel when it flags a lane.
template <class T, class V>
static int accum_rows_impl(const T* X, const T* Y, const T* C, T* out, int64_t R, int64_t K, const AccumSteps& st,
                           const AccumParams& p, int fast, int n_threads) {
  const KernelTable* kt = active_kernels();
  const bool lean = lean_mode<V>(fast);
  const LeanParams lp = lean_params(p);
  const bool narrow = R <= W;  // one group of lanes (e.g. the chain of chunk merges of one long sum)
  const int64_t TW = lean && !narrow ? LEAN_LANES : W;  // rows per task
  const int64_t tasks = (R + TW - 1) / TW;
  const int nt = threads_for(tasks, R * (K + 1), n_threads);
  const int64_t seg = K < KSEG ? (K > 0 ? K : 1) : KSEG;
  // rows r0 .. r0 + nl (nl <= W) with the general kernel
  auto general_panel = [&](int64_t r0, int64_t nl) {
    std::vector<V> xp(size_t(seg * W), V(0)), yp(Y ? size_t(seg * W) : 0, V(0));
    auto state = std::make_unique<AccumStateT<V>>();
    alignas(64) V cbuf[W], obuf[W];
    const V* cp = nullptr;
    if (C) {
      for (int l = 0; l < W; ++l) cbuf[l] = l < nl ? V(C[r0 + l]) : V(0);
      cp = cbuf;
    }
    const AccumSteps sp{st.c0 + uint64_t(r0) * st.cs, st.cs, st.t0 + uint64_t(r0) * st.ts, st.ts,
                        st.p0 + uint64_t(r0) * st.ps, st.ps};
    AccFns<V>::init(kt)(*state, cp, K, sp, p);
    for (int64_t k0 = 0; k0 < K; k0 += seg) {
      const int64_t n = K - k0 < seg ? K - k0 : seg;
      pack_rows(X, r0, nl, K, k0, n, W, xp.data());
      if (Y) pack_rows(Y, r0, nl, K, k0, n, W, yp.data());
      AccFns<V>::feed(kt)(*state, xp.data(), Y ? yp.data() : nullptr, n, p, false);
    }
    AccFns<V>::finish(kt)(*state, obuf, p);
    for (int64_t l = 0; l < nl; ++l) out[r0 + l] = T(obuf[l]);
  };
  // rows r0 .. r0 + nl of Z, terms k0 .. k0 + n, packed into lanes of stride L (float lanes)
  auto pack = [&](const T* Z, int64_t r0, int64_t nl, int64_t k0, int64_t n, int64_t L, float* dst) {
    if constexpr (std::is_same<T, float>::value) kt->lean_pack(Z + r0 * K + k0, K, nl, n, L, dst);
    else pack_rows(Z, r0, nl, K, k0, n, L, dst);
  };
  // rows r0 .. r0 + nl (nl <= TW) with the float kernel
  auto lean_panel = [&](int64_t r0, int64_t nl) {
    const int64_t L = narrow ? W : LEAN_LANES;
    std::vector<float> xp(size_t(seg * L), 0.0f), yp(Y ? size_t(seg * L) : 0, 0.0f);
    auto ls = std::make_unique<LeanState>();
    for (int64_t l = 0; l < L; ++l) ls->s[l] = C && l < nl ? float(C[r0 + l]) : 0.0f;
    lean_start(*ls, K);
    for (int64_t k0 = 0; k0 < K && !ls->bad; k0 += seg) {
      const int64_t n = K - k0 < seg ? K - k0 : seg;
      pack(X, r0, nl, k0, n, L, xp.data());
      if (Y) pack(Y, r0, nl, k0, n, L, yp.data());
      kt->lean_lanes(*ls, xp.data(), Y ? yp.data() : nullptr, n, lp, fast == 3, narrow);
    }
    if (ls->bad) {
      for (int64_t r = r0; r < r0 + nl; r += W) general_panel(r, r0 + nl - r < W ? r0 + nl - r : W);
      return;
    }
    for (int64_t l = 0; l < nl; ++l) out[r0 + l] = T(ls->s[l]);
  };
  parallel_tasks(tasks, nt, [&](int64_t t) {
    const int64_t r0 = t * TW;
    const int64_t nl = R - r0 < TW ? R - r0 : TW;
    if (lean) lean_panel(r0, nl);
    else general_panel(r0, nl);
  });
  return 0;
}

// Whether x[0..n) holds an infinity or a NaN (exponent field all ones).
static bool any_nonfinite(const float* x, int64_t n) {
  uint32_t found = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    found |= (u & 0x7F800000u) == 0x7F800000u ? 1u : 0u;
  }
  return found != 0;
}

// The exponents of BfmaPanel / BfmaTile for x[0..n): e(x) clamped at emin; BFMA_NONE for zeros.
static void bfma_exponents(const float* x, int32_t* e, int64_t n, int32_t emin) {
  for (int64_t k = 0; k < n; ++k) {
    uint32_t u;
    std::memcpy(&u, x + k, 4);
    const int32_t ek = int32_t((u >> 23) & 0xFF) - 127;
    e[k] = (u & 0x7FFFFFFFu) == 0 ? BFMA_NONE : (ek > emin ? ek : emin);
  }
}

// Block-FMA matrix product (float32 operands already in the input formats): out = C + A B with
// K padded to a multiple of p.block; double results (values of the output format). The rows of A
// are packed once, in the order of the products inside each block (p.perm), with their exponents;
// each task packs its panel of B. Models that meet the conditions of blockfma_lean.hpp (p.lean) run
// BFMA_ROWS rows at a time on float lanes; a tile the float kernel flags is recomputed row by row
// with the float64 kernel.
int bfma_matmul(const float* A, const float* B, const double* C, double* out, int64_t batch, int64_t M, int64_t N,
                int64_t K, int64_t sA, int64_t sB, int64_t sC, const BfmaParams& p, int mode, int n_threads) {
  const KernelTable* kt = active_kernels();
  const int64_t F = p.block;
  const int64_t Kp = (K + F - 1) / F * F;
  const Tiling tiling(batch, M, N, BFMA_ROWS_PER_TASK);
  const int nt = threads_for(tiling.tasks, batch * M * N * (K + 1), n_threads);
  const int64_t arows = (sA ? batch : 1) * M;
  BfmaParams q = p;
  q.finite_ab = !any_nonfinite(A, arows * K) && !any_nonfinite(B, (sB ? batch : 1) * K * N);
  const bool lean = p.lean && q.finite_ab;
  std::vector<int64_t> src(static_cast<size_t>(Kp));
  for (int64_t k = 0; k < Kp; ++k) src[size_t(k)] = k / F * F + p.perm[k % F];
  std::vector<float> Ap(size_t(arows * Kp));
  std::vector<int32_t> Ea(size_t(arows * Kp));
  parallel_tasks(arows, threads_for(arows, arows * Kp, n_threads), [&](int64_t i) {
    float* a = Ap.data() + i * Kp;
    const float* Ai = A + i / M * sA + i % M * K;
    for (int64_t k = 0; k < Kp; ++k) {
      const int64_t ks = src[size_t(k)];
      a[k] = ks < K ? Ai[ks] : 0.0f;
    }
    bfma_exponents(a, Ea.data() + i * Kp, Kp, p.emin_a);
  });
  const int64_t row_stride = sA ? M : 0;  // rows of Ap per batch entry
  parallel_tasks(tiling.tasks, nt, [&](int64_t task) {
    const auto [b, j0, nl, i_0, i_1] = tiling(task);
    std::vector<float> bp(size_t(Kp * W), 0.0f);
    std::vector<double> bd, ad;  // the float64 kernel's operands, made on its first use
    std::vector<int32_t> eb(static_cast<size_t>(Kp * W));
    const float* Bb = B + b * sB;
    for (int64_t k = 0; k < Kp; ++k) {
      const int64_t ks = src[size_t(k)];
      if (ks < K)
        for (int64_t l = 0; l < nl; ++l) bp[size_t(k * W + l)] = Bb[ks * N + j0 + l];
    }
    bfma_exponents(bp.data(), eb.data(), Kp * W, p.emin_b);
    const int64_t abase = b * row_stride;
    alignas(64) double d[W];
    auto general_row = [&](int64_t i) {
      if (bd.empty()) {
        bd.assign(bp.begin(), bp.end());
        ad.resize(size_t(Kp));
      }
      const int64_t ia = (abase + i) * Kp;
      for (int64_t k = 0; k < Kp; ++k) ad[size_t(k)] = double(Ap[size_t(ia + k)]);
      const BfmaPanel panel = {Ap.data() + ia, bp.data(), ad.data(), bd.data(), Ea.data() + ia, eb.data()};
      const double* Ci = C ? C + b * sC + i * N + j0 : nullptr;
      for (int l = 0; l < W; ++l) d[l] = (Ci && l < nl) ? Ci[l] : 0.0;
      kt->bfma(panel, Kp / F, d, q, mode);
      double* oi = out + (b * M + i) * N + j0;
      for (int64_t l = 0; l < nl; ++l) oi[l] = d[l];
    };
    if (!lean) {
      for (int64_t i = i_0; i < i_1; ++i) general_row(i);
      return;
    }
    constexpr int R = BFMA_ROWS;
    std::vector<float> at;  // a last tile with fewer than R rows, the last one repeated
    std::vector<int32_t> eat;
    alignas(64) float dt[R * W];
    for (int64_t i = i_0; i < i_1; i += R) {
      const int64_t nr = i_1 - i < R ? i_1 - i : R;
      BfmaTile tile = {Ap.data() + (abase + i) * Kp, Ea.data() + (abase + i) * Kp, Kp, bp.data(), eb.data()};
      if (nr < R) {
        at.resize(size_t(R * Kp));
        eat.resize(size_t(R * Kp));
        for (int r = 0; r < R; ++r) {
          const int64_t ia = (abase + i + (r < nr ? r : nr - 1)) * Kp;
          std::memcpy(at.data() + r * Kp, Ap.data() + ia, size_t(Kp) * sizeof(float));
          std::memcpy(eat.data() + r * Kp, Ea.data() + ia, size_t(Kp) * sizeof(int32_t));
        }
        tile.a = at.data();
        tile.ea = eat.data();
      }
      for (int r = 0; r < R; ++r) {
        const int64_t row = i + (r < nr ? r : nr - 1);
        const double* Ci = C ? C + b * sC + row * N + j0 : nullptr;
        for (int l = 0; l < W; ++l) dt[r * W + l] = (Ci && l < nl) ? float(Ci[l]) : 0.0f;  // exact: a value of the output format
      }
      if (kt->bfma_lean(tile, Kp / F, dt, q, mode)) {
        for (int64_t r = 0; r < nr; ++r) general_row(i + r);
        continue;
      }
      for (int64_t r = 0; r < nr; ++r) {
        double* oi = out + (b * M + i + r) * N + j0;
        for (int64_t l = 0; l < nl; ++l) oi[l] = double(dt[r * W + l]);
      }
    }
  });
  return 0;
}

int accum_matmul_f32(const float* A, const float* B, const float* C, float* out, int64_t batch, int64_t M, int64_t N,
                     int64_t K, int64_t sA, int64_t sB, int64_t sC, const AccumParams& p, uint64_t steps, int fast,
                     int n_threads) {
  if (fast) return accum_matmul_impl<float, float>(A, B, C, out, batch, M, N, K, sA, sB, sC, p, steps, fast, n_threads);
  return accum_matmul_impl<float, double>(A, B, C, out, batch, M, N, K, sA, sB, sC, p, steps, 0, n_threads);
}
int accum_matmul_f64(const double* A, const double* B, const double* C, double* out, int64_t batch, int64_t M,
                     int64_t N, int64_t K, int64_t sA, int64_t sB, int64_t sC, const AccumParams& p, uint64_t steps,
                     int fast, int n_threads) {
  if (fast) return accum_matmul_impl<double, float>(A, B, C, out, batch, M, N, K, sA, sB, sC, p, steps, fast, n_threads);
  return accum_matmul_impl<double, double>(A, B, C, out, batch, M, N, K, sA, sB, sC, p, steps, 0, n_threads);
}
int accum_rows_f32(const float* X, const float* Y, const float* C, float* out, int64_t R, int64_t K,
                   const AccumSteps& st, const AccumParams& p, int fast, int n_threads) {
  if (fast) return accum_rows_impl<float, float>(X, Y, C, out, R, K, st, p, fast, n_threads);
  return accum_rows_impl<float, double>(X, Y, C, out, R, K, st, p, 0, n_threads);
}
int accum_rows_f64(const double* X, const double* Y, const double* C, double* out, int64_t R, int64_t K,
                   const AccumSteps& st, const AccumParams& p, int fast, int n_threads) {
  if (fast) return accum_rows_impl<double, float>(X, Y, C, out, R, K, st, p, fast, n_threads);
  return accum_rows_impl<double, double>(X, Y, C, out, R, K, st, p, 0, n_threads);
}

}  // namespace lowprec
