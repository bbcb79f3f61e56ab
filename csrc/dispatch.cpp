// Threading and run-time instruction-set dispatch for the kernels in isa_*.cpp.
#include <cstring>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernel_table.hpp"
#include "lowprec/api.hpp"
#include "lowprec/rng.hpp"

namespace lowprec {
namespace {

constexpr int64_t CHUNK = 1 << 14;           // elements per task; fixed so results never depend on it
constexpr int64_t PARALLEL_MIN = 1 << 16;    // below this, one thread

bool cpu_has(const char* name) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (std::strcmp(name, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  if (std::strcmp(name, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
  return std::strcmp(name, "baseline") == 0;
}

const KernelTable* pick_best() {
  if (kernels_avx512() && cpu_has("avx512")) return kernels_avx512();
  if (kernels_avx2() && cpu_has("avx2")) return kernels_avx2();
  return kernels_baseline();
}

const KernelTable*& active() {
  static const KernelTable* t = pick_best();
  return t;
}

}  // namespace

const KernelTable* active_kernels() { return active(); }

namespace {

int clamp_threads(int n_threads, int64_t n) {
  if (n < PARALLEL_MIN || n_threads < 1) return 1;
  const int64_t chunks = (n + CHUNK - 1) / CHUNK;
  return chunks < n_threads ? static_cast<int>(chunks) : n_threads;
}

// Run f(offset, length) over [0, n) in fixed chunks on up to n_threads threads.
template <class F> void run_chunks(int64_t n, int n_threads, const F& f) {
  const int nt = clamp_threads(n_threads, n);
  const int64_t chunks = (n + CHUNK - 1) / CHUNK;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t off = c * CHUNK;
    const int64_t len = (n - off) < CHUNK ? (n - off) : CHUNK;
    f(off, len);
  }
  (void)nt;
}

}  // namespace

int quantize_f32(const float* x, float* y, int64_t n, const QuantParams& p, int n_threads) {
  const KernelTable* t = active();
  run_chunks(n, n_threads, [&](int64_t off, int64_t len) { t->quantize_f32(x + off, y + off, len, uint64_t(off), p); });
  return 0;
}

int quantize_f64(const double* x, double* y, int64_t n, const QuantParams& p, int n_threads) {
  const KernelTable* t = active();
  run_chunks(n, n_threads, [&](int64_t off, int64_t len) { t->quantize_f64(x + off, y + off, len, uint64_t(off), p); });
  return 0;
}

template <class T>
static int encode_impl(EncodeFn<T> fn, const T* x, void* codes, int code_bytes, int64_t n, const QuantParams& p,
                       int n_threads) {
  if (code_bytes != 1 && code_bytes != 2 && code_bytes != 4) return -1;
  char* base = static_cast<char*>(codes);
  run_chunks(n, n_threads, [&](int64_t off, int64_t len) { fn(x + off, base + off * code_bytes, code_bytes, len, uint64_t(off), p); });
  return 0;
}

int encode_f32(const float* x, void* codes, int code_bytes, int64_t n, const QuantParams& p, int n_threads) {
  return encode_impl<float>(active()->encode_f32, x, codes, code_bytes, n, p, n_threads);
}

int encode_f64(const double* x, void* codes, int code_bytes, int64_t n, const QuantParams& p, int n_threads) {
  return encode_impl<double>(active()->encode_f64, x, codes, code_bytes, n, p, n_threads);
}

void copy_bytes(const void* src, void* dst, int64_t nbytes, int n_threads) {
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  run_chunks(nbytes / 64, n_threads, [&](int64_t off, int64_t len) { std::memcpy(d + off * 64, s + off * 64, size_t(len) * 64); });
  const int64_t done = (nbytes / 64) * 64;
  if (done < nbytes) std::memcpy(d + done, s + done, size_t(nbytes - done));
}

const char* isa_name() { return active()->name; }

const char* isa_available() {
  static char buf[64];
  buf[0] = 0;
  if (kernels_avx512() && cpu_has("avx512")) std::strcat(buf, "avx512,");
  if (kernels_avx2() && cpu_has("avx2")) std::strcat(buf, "avx2,");
  std::strcat(buf, "baseline");
  return buf;
}

int set_isa(const char* name) {
  const KernelTable* t = nullptr;
  if (std::strcmp(name, "best") == 0) t = pick_best();
  else if (std::strcmp(name, "avx512") == 0 && cpu_has("avx512")) t = kernels_avx512();
  else if (std::strcmp(name, "avx2") == 0 && cpu_has("avx2")) t = kernels_avx2();
  else if (std::strcmp(name, "baseline") == 0) t = kernels_baseline();
  if (!t) return -1;
  active() = t;
  return 0;
}

int openmp_enabled() {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

uint64_t make_key(uint64_t seed, uint64_t stream) { return stream_key(seed, stream); }

}  // namespace lowprec
