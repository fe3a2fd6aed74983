// wsi/random.hpp — the project's one pseudo-random generator, so that sampling, splits and
// training augmentation are identical on every platform and standard library (std::uniform_*
// distributions are not: their algorithms are implementation-defined).
// Thread-safety: a SplitMix64 is a plain value; give each thread (or each patch) its own.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace wsi {

// SplitMix64: tiny, well-mixed, identical everywhere.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0; rejection sampling, so no modulo bias.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v = 0;
    do v = next();
    while (v >= limit);
    return v % n;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
};

// FNV-1a (64 bit) of a string: a stable hash of a name (slide names, split names), the same on
// every platform and standard library (std::hash is neither).
inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

// A seed derived from two values (e.g. the run's seed and a patch index).
inline uint64_t mix_seed(uint64_t a, uint64_t b) { return SplitMix64(a ^ (b * 0x9e3779b97f4a7c15ULL)).next(); }

// Fisher–Yates with SplitMix64.
template <typename T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng.below(i))]);
}

}  // namespace wsi
