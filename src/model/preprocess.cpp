// Patch → network input. Pure and torch-free, so it is tested against hand-computed tensors and
// reused by every backend.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "wsi/model.hpp"

namespace wsi {

namespace {

// Source taps of one output coordinate along one axis: index + weight pairs.
struct Taps {
  std::vector<std::vector<std::pair<int, float>>> of;
};

Taps make_taps(int in, int out, ResizeMode mode) {
  Taps t;
  t.of.resize(static_cast<size_t>(out));
  const double ratio = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    auto& v = t.of[static_cast<size_t>(o)];
    switch (mode) {
      case ResizeMode::none:
        v.push_back({o, 1.0f});
        break;
      case ResizeMode::nearest:
        v.push_back({std::min(in - 1, static_cast<int>(std::floor((o + 0.5) * ratio))), 1.0f});
        break;
      case ResizeMode::bilinear: {
        const double c = std::max(0.0, (o + 0.5) * ratio - 0.5);
        const int i0 = std::min(in - 1, static_cast<int>(std::floor(c)));
        const int i1 = std::min(in - 1, i0 + 1);
        const auto f = static_cast<float>(c - i0);
        v.push_back({i0, 1.0f - f});
        if (i1 != i0) v.push_back({i1, f});
        break;
      }
      case ResizeMode::area: {
        const double a = o * ratio, b = a + ratio;
        double total = 0;
        for (int i = static_cast<int>(std::floor(a)); i < std::min<double>(in, std::ceil(b)); ++i) {
          const double w = std::min<double>(b, i + 1) - std::max<double>(a, i);
          if (w > 0) {
            v.push_back({i, static_cast<float>(w)});
            total += w;
          }
        }
        for (auto& p : v) p.second = static_cast<float>(p.second / total);
        break;
      }
    }
  }
  return t;
}

}  // namespace

std::vector<float> resize_weights(int in, int out, ResizeMode mode) {
  if (in < 1 || out < 1 || (mode == ResizeMode::none && in != out))
    throw std::invalid_argument("resize_weights: cannot resize " + std::to_string(in) + " samples to " +
                                std::to_string(out) + (mode == ResizeMode::none ? " without a resize mode" : ""));
  const Taps taps = make_taps(in, out, mode);
  std::vector<float> w(static_cast<size_t>(in) * static_cast<size_t>(out), 0.0f);
  for (int o = 0; o < out; ++o)
    for (const auto& [i, weight] : taps.of[static_cast<size_t>(o)])
      w[static_cast<size_t>(o) * static_cast<size_t>(in) + static_cast<size_t>(i)] += weight;
  return w;
}

std::vector<std::vector<std::pair<int, float>>> resize_taps(int in, int out, ResizeMode mode) {
  if (in < 1 || out < 1 || (mode == ResizeMode::none && in != out))
    throw std::invalid_argument("resize_taps: cannot resize " + std::to_string(in) + " samples to " +
                                std::to_string(out) + (mode == ResizeMode::none ? " without a resize mode" : ""));
  return make_taps(in, out, mode).of;
}

void preprocess(const uint8_t* patches, int64_t count, const ModelSpec& spec, float* out, int side) {
  const int S = spec.input_size;
  if (side != 0 && side != spec.patch_size && side != S)
    throw std::invalid_argument("preprocess: patches of side " + std::to_string(side) + " fit neither patch_size " +
                                std::to_string(spec.patch_size) + " nor input_size " + std::to_string(S));
  const int P = side == 0 ? spec.patch_size : side;
  const ResizeMode mode = (spec.resize == ResizeMode::none || P == S) ? ResizeMode::none : spec.resize;
  const Taps taps = make_taps(P, S, mode);
  float mul[3], add[3];
  for (int c = 0; c < 3; ++c) {
    mul[c] = static_cast<float>(spec.scale / spec.std[static_cast<size_t>(c)]);
    add[c] = static_cast<float>(-spec.mean[static_cast<size_t>(c)] / spec.std[static_cast<size_t>(c)]);
  }
  const size_t plane = static_cast<size_t>(S) * static_cast<size_t>(S);
  std::vector<float> row(static_cast<size_t>(S) * 3);
  for (int64_t n = 0; n < count; ++n) {
    const uint8_t* src = patches + n * static_cast<int64_t>(P) * P * 3;
    float* dst = out + n * 3 * static_cast<int64_t>(plane);
    for (int y = 0; y < S; ++y) {
      std::fill(row.begin(), row.end(), 0.0f);
      for (const auto& [sy, wy] : taps.of[static_cast<size_t>(y)]) {
        const uint8_t* line = src + static_cast<int64_t>(sy) * P * 3;
        for (int x = 0; x < S; ++x)
          for (const auto& [sx, wx] : taps.of[static_cast<size_t>(x)]) {
            const uint8_t* p = line + sx * 3;
            const float w = wy * wx;
            row[static_cast<size_t>(x) * 3 + 0] += w * p[0];
            row[static_cast<size_t>(x) * 3 + 1] += w * p[1];
            row[static_cast<size_t>(x) * 3 + 2] += w * p[2];
          }
      }
      for (int c = 0; c < 3; ++c) {
        const int from = spec.bgr ? 2 - c : c;  // output channel c takes source channel `from`
        float* plane_c = dst + static_cast<size_t>(c) * plane + static_cast<size_t>(y) * S;
        for (int x = 0; x < S; ++x)
          plane_c[x] = row[static_cast<size_t>(x) * 3 + static_cast<size_t>(from)] * mul[c] + add[c];
      }
    }
  }
}

}  // namespace wsi
