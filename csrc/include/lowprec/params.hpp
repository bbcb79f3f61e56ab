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

}  // namespace lowprec
