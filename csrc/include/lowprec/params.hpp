// Flat, Python-free description of one quantize call (lowered once from the format objects).
#pragma once
#include <cstdint>

namespace lowprec {

// Values match lowprec.rounding.Rounding / lowprec.formats.Specials (see lowprec/_lower.py).
enum Mode : int32_t {
  MODE_NEAREST = 0,       // round to nearest, ties to even
  MODE_NEAREST_AWAY = 1,  // round to nearest, ties away from zero
  MODE_TOWARD_ZERO = 2,
  MODE_UP = 3,            // toward +inf
  MODE_DOWN = 4,          // toward -inf
  MODE_ODD = 5,           // round to odd (sticky)
  MODE_STOCHASTIC = 6,    // exact stochastic rounding, every discarded bit counts
  MODE_STOCHASTIC_R = 7,  // stochastic rounding with sr_bits random bits
  MODE_STOCHASTIC_EQUAL = 8,  // inexact values go up or down with probability 1/2
  MODE_QTORCH_NEAREST = 9,    // QPyTorch float_quantize bit-pattern rounding (float32 only)
  MODE_QTORCH_STOCHASTIC = 10,
};

enum Specials : int32_t { SPECIALS_IEEE = 0, SPECIALS_FN = 1, SPECIALS_FNUZ = 2, SPECIALS_NONE = 3 };

struct QuantParams {
  int32_t exp_bits;
  int32_t man_bits;      // stored fraction bits m
  int32_t emin;          // 1 - bias (exponent of the smallest normal)
  int32_t subnormals;    // 0: the grid below 2^emin is {0, 2^emin}
  int32_t specials;      // Specials
  int32_t saturate;      // clamp overflow (and infinities) to +-max
  int32_t mode;          // Mode
  int32_t sr_bits;       // random bits for MODE_STOCHASTIC_R
  uint64_t key;          // stream key of the counter-based generator (see rng.hpp)
  double max_value;      // largest finite value of the format
};

// Per-addition accumulation (accumulate.hpp).
enum Order : int32_t { ORDER_SEQUENTIAL = 0, ORDER_CHUNKED = 1, ORDER_PAIRWISE = 2 };

struct AccumParams {
  QuantParams acc;   // accumulator format, rounding mode, overflow, stream key
  QuantParams prod;  // product format (used when has_prod), rounded with prod.mode / prod.key
  int32_t has_prod;
  int32_t order;     // Order
  int64_t chunk;     // chunk length for ORDER_CHUNKED
};

// Random-stream indices of one panel: lane l rounds c with index c0 + l * cs, and its m-th
// accumulation step (m = 0, 1, ...) with t0 + l * ts + m. Product k of lane l uses
// p0 + l * ps + k in the product stream.
struct AccumSteps {
  uint64_t c0, cs, t0, ts, p0, ps;
};

constexpr int ACC_LANES = 16;

// Running state of one panel of W = ACC_LANES outputs, values of type V; terms are fed in segments (accum_feed) so
// that long reductions need no packed copy of the whole K range.
template <class V> struct AccumStateT {
  static constexpr int W = ACC_LANES;
  alignas(64) V s[W];        // running sum (starts from c rounded to the accumulator)
  alignas(64) V q[W];        // current chunk's partial sum (ORDER_CHUNKED)
  alignas(64) V t[W];        // the current term
  alignas(64) uint64_t ct[W];     // counter of the next accumulation step
  alignas(64) uint64_t cm[W];     // counter of the next chunk merge (t0 + K + j)
  alignas(64) uint64_t cp[W];     // counter of product 0 (product stream)
  alignas(64) V stack[64 * W];  // ORDER_PAIRWISE: partial sums of complete subtrees
  int64_t sizes[64];
  int depth;
  int64_t k;  // terms fed so far
  int64_t K;  // terms in total
};
using AccumState = AccumStateT<double>;  // general path
using AccumStateF = AccumStateT<float>;  // float32 path (deterministic modes, narrow accumulators)

// Nearest-even accumulation on float lanes (accumulate_lean.hpp): tiles of LEAN_VECS vectors of
// ACC_LANES lanes, lowered from AccumParams by the dispatcher.
constexpr int LEAN_VECS = 6;
constexpr int LEAN_LANES = LEAN_VECS * ACC_LANES;

struct LeanParams {
  int32_t emin_pat;   // float pattern of 2^emin, the accumulator's smallest normal
  int32_t kpat;       // pattern of 2^e plus kpat: 1.5 * 2^(e + 23 - m)
  int32_t maxpat;     // pattern of the accumulator's largest finite value
  int32_t order;      // ORDER_SEQUENTIAL or ORDER_CHUNKED
  int64_t chunk;
};

struct LeanState {
  alignas(64) float s[LEAN_LANES];  // running sums (start: c on the accumulator's grid)
  alignas(64) float q[LEAN_LANES];  // chunk partial sums
  int64_t k;                        // terms fed so far
  int64_t K;                        // terms in total
  int32_t bad;                      // nonzero: some lane needs the general kernel
};

// Block-FMA tensor-core model (blockfma.hpp).
struct BfmaParams {
  QuantParams out;        // output format of a block (fp32 with 23 + min(neab, 0) fraction bits, or fp16)
  QuantParams late;       // format/rounding of the separate addition of c (when late_c)
  int32_t block;          // products per instruction along K (F, or the outer block when split)
  int32_t sub_block;      // products per chained block-FMA inside one instruction
  int32_t late_c;         // 1: sub-blocks start from 0 and c is added afterwards in one rounding
  int32_t neab;           // extra alignment bits
  int32_t emin_a, emin_b; // smallest normal exponents of the input formats
  int32_t c_emin;         // exponent floor of c (-126: c is read as an fp32 number)
  int32_t min_exp_limit;  // lower clamp of the alignment exponent (very negative: none)
  int32_t out_subnormals; // 0: |c| < 2^out_emin is flushed to zero before each block
  int32_t out_emin;
  int32_t out_emax;       // |d| >= 2^(out_emax + 1) overflows to inf (the model has no saturation)
  const int32_t* perm;    // order of the products inside one block (block entries; the driver packs by it)
  int32_t finite_ab;      // 1: no operand is inf or NaN (set by the matmul driver; blocks then check c only)
  int32_t lean;           // 1: the model meets the float-lane conditions of blockfma_lean.hpp
};

// Exponent of a zero operand in BfmaPanel: far below any real one, so that no sum with it counts.
constexpr int32_t BFMA_NONE = -(1 << 30);

// Operands of one row of block-FMA instructions, packed by the driver in product order: a (K values)
// and b (K x ACC_LANES), as float32 values, as float64 values and as exponents e(x) (floor(log2|x|)
// clamped below at the format's emin; BFMA_NONE for zeros).
struct BfmaPanel {
  const float* a;
  const float* b;
  const double* ad;
  const double* bd;
  const int32_t* ea;
  const int32_t* eb;
};

// Block-FMA on float lanes (blockfma_lean.hpp): tiles of BFMA_ROWS rows x ACC_LANES columns. Operands
// packed by the driver in product order: row r's k-th value at a[r * lda + k] (exponent e(a) at
// ea[r * lda + k], BFMA_NONE for a zero), b(k, l) at b[k * ACC_LANES + l] (eb likewise).
constexpr int BFMA_ROWS = 4;

struct BfmaTile {
  const float* a;
  const int32_t* ea;
  int64_t lda;
  const float* b;
  const int32_t* eb;
};

}  // namespace lowprec
