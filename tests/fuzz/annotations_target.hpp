// The body of the three annotation targets (asap_xml, camelyon_json, geojson): parse, check the
// set against annotations.hpp, and rasterise it into a few small windows, since the rasteriser
// is where hostile coordinates once crashed. The targets differ in their seeds and in one option
// each, so that the options' paths are fuzzed too.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "wsi/annotations.hpp"

namespace wsi::fuzz {

inline void check_set(const AnnotationSet& set) {
  check(set.format == "asap-xml" || set.format == "camelyon-json" || set.format == "geojson", "unknown format name");
  check(set.ignored >= 0, "negative ignored count");
  for (const Shape& s : set.shapes) {
    check(s.cls == ShapeClass::tumour || s.cls == ShapeClass::exclusion, "a shape of another class was kept");
    check(!s.rings.empty(), "a shape without rings");
    for (const auto& ring : s.rings) {
      check(ring.size() >= 3, "a ring with fewer than 3 vertices was kept");
      for (const Point2& p : ring)
        check(std::isfinite(p.x) && std::isfinite(p.y) && std::abs(p.x) <= kMaxAnnotationCoordinate &&
                  std::abs(p.y) <= kMaxAnnotationCoordinate,
              "a vertex that is not finite or beyond kMaxAnnotationCoordinate");
    }
    Shape box = s;
    compute_bbox(box);
    check(box.min_x == s.min_x && box.min_y == s.min_y && box.max_x == s.max_x && box.max_y == s.max_y,
          "a shape's stored bounding box differs from its vertices'");
  }
  for (const AnnotationGroup& g : set.groups)
    check((g.taken_as == "tumour" || g.taken_as == "exclusion" || g.taken_as == "ignored") && g.annotations > 0,
          "a group with an unknown class or no annotation");
  check(!describe_groups(set).empty(), "describe_groups() is empty");
}

inline void check_raster(const GrayImage& r, int64_t w, int64_t h) {
  check(r.width == w && r.height == h && static_cast<int64_t>(r.pixels.size()) == w * h, "raster of the wrong size");
  for (uint8_t v : r.pixels) check(v <= kClassExcluded, "a raster value that is not a class");
}

inline void rasterize_windows(const AnnotationSet& set) {
  never_throws("rasterize", [&] {
    // Near the origin at half a pixel, where the seeds' small polygons lie.
    check_raster(rasterize(set, -8, -8, 0.5, 40, 40), 40, 40);
    if (set.empty()) return;
    // The whole set, however far apart its shapes are (up to 2e9 wide).
    const double span = std::max(set.max_x() - set.min_x(), set.max_y() - set.min_y());
    const double scale = span > 0 ? span / 48 : 1;
    check_raster(rasterize(set, set.min_x(), set.min_y(), scale, 48, 48), 48, 48);
    // Finely around the first vertex, at a scale that is not a power of two.
    const Point2 v = set.shapes.front().rings.front().front();
    check_raster(rasterize(set, v.x - 7.25, v.y - 3.5, 0.37, 29, 13), 29, 13);
  });
}

inline int fuzz_annotations(const uint8_t* data, size_t size, const char* source, const AnnotationOptions& options) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  AnnotationSet set;
  if (!parses(source, [&] { set = parse_annotations(text, source, options); })) return 0;
  check_set(set);
  rasterize_windows(set);
  return 0;
}

}  // namespace wsi::fuzz
