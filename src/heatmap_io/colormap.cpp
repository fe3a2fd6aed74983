// The "inferno" colour map and the overlay blend (contract in wsi/heatmap_io.hpp).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "wsi/heatmap_io.hpp"

namespace wsi {
namespace {

// matplotlib's inferno (CC0, by Nathaniel J. Smith and Stefan van der Walt): entries 0, 5, ..., 255
// of its 256-entry table, times 255, rounded. Control point i sits at value i / 51.
constexpr std::array<std::array<uint8_t, 3>, 52> kInferno{{
    {0, 0, 4},       {2, 2, 12},      {5, 4, 23},      {10, 7, 34},    {16, 9, 45},    {22, 11, 57},   {30, 12, 69},
    {38, 12, 81},    {47, 10, 91},    {56, 9, 98},     {64, 10, 103},  {73, 11, 106},  {81, 14, 108},  {89, 16, 110},
    {97, 19, 110},   {105, 22, 110},  {113, 25, 110},  {120, 28, 109}, {128, 31, 108}, {136, 34, 106}, {144, 37, 104},
    {152, 39, 102},  {160, 42, 99},   {168, 46, 95},   {176, 49, 91},  {183, 53, 87},  {191, 57, 82},  {198, 61, 77},
    {204, 66, 72},   {211, 71, 67},   {217, 77, 61},   {223, 83, 55},  {228, 90, 49},  {233, 97, 43},  {237, 105, 37},
    {241, 113, 31},  {244, 121, 24},  {247, 130, 18},  {249, 139, 11}, {250, 148, 7},  {251, 157, 7},  {252, 166, 12},
    {252, 176, 20},  {251, 186, 31},  {250, 196, 42},  {248, 205, 55}, {246, 215, 70}, {244, 225, 86}, {242, 234, 105},
    {242, 242, 125}, {245, 249, 146}, {252, 255, 164},
}};

// Colour of a valid (non-NaN) value, as unrounded channel values 0..255.
std::array<double, 3> inferno(float value) {
  const double v = std::clamp(static_cast<double>(value), 0.0, 1.0) * static_cast<double>(kInferno.size() - 1);
  const auto i = std::min(static_cast<size_t>(v), kInferno.size() - 2);
  const double f = v - static_cast<double>(i);
  std::array<double, 3> c{};
  for (size_t k = 0; k < 3; ++k) c[k] = kInferno[i][k] + (kInferno[i + 1][k] - kInferno[i][k]) * f;
  return c;
}

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

void apply_colormap(const float* values, int64_t count, uint8_t* rgb) {
  for (int64_t n = 0; n < count; ++n) {
    uint8_t* out = rgb + 3 * n;
    if (std::isnan(values[n])) {
      out[0] = out[1] = out[2] = 255;
      continue;
    }
    const std::array<double, 3> c = inferno(values[n]);
    for (size_t k = 0; k < 3; ++k) out[k] = to_byte(c[k]);
  }
}

void blend_overlay(const uint8_t* slide_rgb, const float* values, int64_t count, double alpha, uint8_t* out_rgb,
                   double min_value) {
  const double a = std::clamp(std::isnan(alpha) ? 0.0 : alpha, 0.0, 1.0);
  for (int64_t n = 0; n < count; ++n) {
    const uint8_t* in = slide_rgb + 3 * n;
    uint8_t* out = out_rgb + 3 * n;
    const float v = values[n];
    if (std::isnan(v) || v < min_value) {
      if (out != in) std::copy_n(in, 3, out);
      continue;
    }
    const std::array<double, 3> c = inferno(v);
    for (size_t k = 0; k < 3; ++k) out[k] = to_byte((1.0 - a) * in[k] + a * c[k]);
  }
}

}  // namespace wsi
