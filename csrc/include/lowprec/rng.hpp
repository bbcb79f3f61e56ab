// Counter-based random bits: a pure function of (key, flat element index).
//
// key = mix64(seed + (stream + 1) * GOLDEN); the word for element i is mix64(key + (i + 1) * GOLDEN),
// i.e. SplitMix64 evaluated at position i of the sequence that starts at key. Any split of an array
// into chunks or threads therefore draws the same bits for the same element.
// Loops over consecutive elements step the counter key + (i + 1) * GOLDEN by GOLDEN per element
// (random_counter, then random_word_at) instead of multiplying the index: the same words.
#pragma once
#include <cstdint>

namespace lowprec {

constexpr uint64_t GOLDEN = 0x9E3779B97F4A7C15ull;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// High 32 bits of mix64(z): with w the word before the last xor-shift, (w ^ (w >> 31)) >> 32 is
// hi(w) ^ (hi(w) >> 31), so the narrowing to 32-bit lanes comes before that step.
inline uint32_t mix64_hi(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  const uint32_t h = uint32_t(z >> 32);
  return h ^ (h >> 31);
}

inline uint64_t stream_key(uint64_t seed, uint64_t stream) { return mix64(seed + (stream + 1) * GOLDEN); }

// Counter of element `index` (mod 2^64); element index + 1 has counter + GOLDEN.
inline uint64_t random_counter(uint64_t key, uint64_t index) { return key + (index + 1) * GOLDEN; }

inline uint64_t random_word_at(uint64_t counter) { return mix64(counter); }

inline uint64_t random_word(uint64_t key, uint64_t index) { return random_word_at(random_counter(key, index)); }

}  // namespace lowprec
