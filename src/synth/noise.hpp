// Private: counter-based hashing and value noise for the synthetic slide generator.
// Pure functions of (seed, position): the basis of tiling-independent, deterministic rendering.
#pragma once

#include <cmath>
#include <cstdint>

namespace wsi::synth {

// SplitMix64 finaliser: a strong 64-bit mixer.
inline uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint64_t hash(uint64_t seed, uint64_t a) { return mix(seed ^ mix(a)); }
inline uint64_t hash(uint64_t seed, int64_t a, int64_t b, uint64_t salt = 0) {
  return mix(seed ^ mix(static_cast<uint64_t>(a) ^ mix(static_cast<uint64_t>(b) ^ mix(salt))));
}

// Uniform in [0, 1).
inline double u01(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Smooth value noise in [0, 1): random values on the integer lattice, smoothstep-interpolated.
inline double value_noise(uint64_t seed, double x, double y) {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy);
  double tx = x - fx, ty = y - fy;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  const double a = u01(hash(seed, ix, iy)), b = u01(hash(seed, ix + 1, iy));
  const double c = u01(hash(seed, ix, iy + 1)), d = u01(hash(seed, ix + 1, iy + 1));
  return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

}  // namespace wsi::synth
