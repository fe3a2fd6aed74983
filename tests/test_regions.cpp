// Probability grid -> tumour regions (GeoJSON) and FROC detections, on grids built here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "wsi/annotations.hpp"
#include "wsi/error.hpp"
#include "wsi/regions.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// '#' = 0.9, '.' = 0.1, 'n' = NaN; one string per row.
ProbabilityGrid art(const std::vector<std::string>& rows, double x0 = 0, double y0 = 0, double step = 1) {
  ProbabilityGrid g;
  g.rows = static_cast<int64_t>(rows.size());
  g.cols = rows.empty() ? 0 : static_cast<int64_t>(rows[0].size());
  g.x0 = x0;
  g.y0 = y0;
  g.step = step;
  for (const auto& r : rows)
    for (const char c : r) g.values.push_back(c == '#' ? 0.9f : c == 'n' ? kNaN : 0.1f);
  return g;
}

ProbabilityGrid values(int64_t cols, int64_t rows, std::vector<float> v, double x0 = 0, double y0 = 0,
                       double step = 1) {
  ProbabilityGrid g;
  g.cols = cols;
  g.rows = rows;
  g.x0 = x0;
  g.y0 = y0;
  g.step = step;
  g.values = std::move(v);
  return g;
}

using Corners = std::vector<std::pair<int64_t, int64_t>>;

// Level-0 ring back to corner indices; fails the test when a vertex is not exactly x0 + X*step.
Corners corners(const std::vector<Point2>& ring, const ProbabilityGrid& g) {
  Corners out;
  for (const Point2& p : ring) {
    const auto x = static_cast<int64_t>(std::llround((p.x - g.x0) / g.step));
    const auto y = static_cast<int64_t>(std::llround((p.y - g.y0) / g.step));
    EXPECT_EQ(p.x, g.x0 + static_cast<double>(x) * g.step);
    EXPECT_EQ(p.y, g.y0 + static_cast<double>(y) * g.step);
    out.emplace_back(x, y);
  }
  return out;
}

// Shoelace sum on the numbers as given (y-up sense): > 0 counter-clockwise.
double signed_area(const std::vector<Point2>& ring) {
  double a = 0;
  for (size_t k = 0; k < ring.size(); ++k) {
    const Point2& p = ring[k];
    const Point2& q = ring[(k + 1) % ring.size()];
    a += p.x * q.y - q.x * p.y;
  }
  return a / 2;
}

// Properties every traced ring has: axis-parallel edges, no collinear or repeated vertex, an
// open ring starting at its smallest (y, x) vertex.
void expect_valid_ring(const std::vector<Point2>& ring, const ProbabilityGrid& g) {
  const Corners c = corners(ring, g);
  ASSERT_GE(c.size(), 4u);
  EXPECT_EQ(c.size() % 2, 0u);
  EXPECT_EQ(std::set(c.begin(), c.end()).size(), c.size()) << "a ring visits a vertex twice";
  for (size_t k = 0; k < c.size(); ++k) {
    const auto& p = c[(k + c.size() - 1) % c.size()];
    const auto& q = c[k];
    const auto& r = c[(k + 1) % c.size()];
    EXPECT_TRUE((p.first == q.first) != (p.second == q.second)) << "edge not axis-parallel";
    const bool collinear = (p.first == q.first && q.first == r.first) || (p.second == q.second && q.second == r.second);
    EXPECT_FALSE(collinear) << "collinear vertex " << q.first << "," << q.second;
    EXPECT_LE(std::make_pair(c[0].second, c[0].first), std::make_pair(q.second, q.first));
  }
}

void expect_valid(const std::vector<RegionPolygon>& regions, const ProbabilityGrid& g) {
  for (const RegionPolygon& r : regions) {
    expect_valid_ring(r.outer, g);
    EXPECT_GT(signed_area(r.outer), 0);
    double area = signed_area(r.outer);
    for (const auto& h : r.holes) {
      expect_valid_ring(h, g);
      EXPECT_LT(signed_area(h), 0);
      area += signed_area(h);
    }
    EXPECT_NEAR(area, static_cast<double>(r.cells) * g.step * g.step, 1e-6 * std::abs(area) + 1e-9);
  }
}

// The cells of `g` selected by `threshold` (NaN never), as tumour codes.
std::vector<uint8_t> thresholded(const ProbabilityGrid& g, double threshold) {
  std::vector<uint8_t> out;
  for (const float v : g.values) out.push_back(v >= threshold ? kClassTumour : kClassNormal);
  return out;
}

// Reads the GeoJSON back through annotations.hpp and rasterises it on the grid's cells.
std::vector<uint8_t> read_back(const std::string& geojson, const ProbabilityGrid& g, size_t expected_shapes) {
  const AnnotationSet set = parse_annotations(geojson, "regions.geojson");
  EXPECT_EQ(set.format, "geojson");
  EXPECT_EQ(set.ignored, 0);
  EXPECT_EQ(set.shapes.size(), expected_shapes);
  for (const Shape& s : set.shapes) EXPECT_EQ(s.cls, ShapeClass::tumour);
  return rasterize(set, g.x0, g.y0, g.step, g.cols, g.rows).pixels;
}

// ---- regions ------------------------------------------------------------------------------------

TEST(Regions, SingleCellIsASquareAtLevel0) {
  ProbabilityGrid g = art({"...", ".#.", "..."}, 1000.25, 50.75, 0.3);
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 1u);
  const RegionPolygon& r = regions[0];
  ASSERT_EQ(r.outer.size(), 4u);
  const double xa = 1000.25 + 1 * 0.3, xb = 1000.25 + 2 * 0.3, ya = 50.75 + 1 * 0.3, yb = 50.75 + 2 * 0.3;
  // Counter-clockwise in the y-up sense: right along the top (image), down, left, up.
  EXPECT_EQ(r.outer[0].x, xa);
  EXPECT_EQ(r.outer[0].y, ya);
  EXPECT_EQ(r.outer[1].x, xb);
  EXPECT_EQ(r.outer[1].y, ya);
  EXPECT_EQ(r.outer[2].x, xb);
  EXPECT_EQ(r.outer[2].y, yb);
  EXPECT_EQ(r.outer[3].x, xa);
  EXPECT_EQ(r.outer[3].y, yb);
  EXPECT_GT(signed_area(r.outer), 0);
  EXPECT_TRUE(r.holes.empty());
  EXPECT_EQ(r.cells, 1);
  expect_valid(regions, g);
}

TEST(Regions, CellOnTheGridEdgeAndWholeGrid) {
  ProbabilityGrid g = art({"##", "##"}, -5, 7, 2.5);
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(corners(regions[0].outer, g), (Corners{{0, 0}, {2, 0}, {2, 2}, {0, 2}}));
  EXPECT_EQ(regions[0].cells, 4);
}

TEST(Regions, LShapeDropsCollinearVertices) {
  ProbabilityGrid g = art({"#..", "#..", "##."}, 3.5, 4.25, 1.5);
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(corners(regions[0].outer, g), (Corners{{0, 0}, {1, 0}, {1, 2}, {2, 2}, {2, 3}, {0, 3}}));
  EXPECT_TRUE(regions[0].holes.empty());
  EXPECT_EQ(regions[0].cells, 4);
  expect_valid(regions, g);
}

TEST(Regions, RingHasOneClockwiseHole) {
  for (const char centre : {'.', 'n'}) {
    ProbabilityGrid g = art({"###", std::string("#") + centre + "#", "###"}, 10, 20, 4);
    const auto regions = trace_regions(g, {});
    ASSERT_EQ(regions.size(), 1u);
    const RegionPolygon& r = regions[0];
    EXPECT_EQ(corners(r.outer, g), (Corners{{0, 0}, {3, 0}, {3, 3}, {0, 3}}));
    ASSERT_EQ(r.holes.size(), 1u);
    EXPECT_EQ(corners(r.holes[0], g), (Corners{{1, 1}, {1, 2}, {2, 2}, {2, 1}}));
    EXPECT_GT(signed_area(r.outer), 0);
    EXPECT_LT(signed_area(r.holes[0]), 0);
    EXPECT_EQ(r.cells, 8);
    expect_valid(regions, g);
  }
}

TEST(Regions, RegionInsideAHoleIsItsOwnPolygon) {
  ProbabilityGrid g = art({"#####", "#...#", "#.#.#", "#...#", "#####"});
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 2u);
  ASSERT_EQ(regions[0].holes.size(), 1u);
  EXPECT_EQ(corners(regions[0].holes[0], g), (Corners{{1, 1}, {1, 4}, {4, 4}, {4, 1}}));
  EXPECT_EQ(corners(regions[1].outer, g), (Corners{{2, 2}, {3, 2}, {3, 3}, {2, 3}}));
  expect_valid(regions, g);
  EXPECT_EQ(read_back(regions_geojson(g, {}), g, 2), thresholded(g, 0.5));
}

TEST(Regions, DiagonalCellsAreTwoRegionsTouchingAtOneCorner) {
  ProbabilityGrid g = art({"#.", ".#"});
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(corners(regions[0].outer, g), (Corners{{0, 0}, {1, 0}, {1, 1}, {0, 1}}));
  EXPECT_EQ(corners(regions[1].outer, g), (Corners{{1, 1}, {2, 1}, {2, 2}, {1, 2}}));
  expect_valid(regions, g);

  ProbabilityGrid anti = art({".#", "#."});
  const auto r2 = trace_regions(anti, {});
  ASSERT_EQ(r2.size(), 2u);
  EXPECT_EQ(corners(r2[0].outer, anti), (Corners{{1, 0}, {2, 0}, {2, 1}, {1, 1}}));
  EXPECT_EQ(corners(r2[1].outer, anti), (Corners{{0, 1}, {1, 1}, {1, 2}, {0, 2}}));
  EXPECT_EQ(read_back(regions_geojson(anti, {}), anti, 2), thresholded(anti, 0.5));
}

TEST(Regions, DiagonalContactInsideOneRegionMakesAHoleTouchingTheOuterRing) {
  // The hole at (1, 1) meets the outside at corner (2, 2) only.
  ProbabilityGrid g = art({"###", "#.#", "##."});
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(corners(regions[0].outer, g), (Corners{{0, 0}, {3, 0}, {3, 2}, {2, 2}, {2, 3}, {0, 3}}));
  ASSERT_EQ(regions[0].holes.size(), 1u);
  EXPECT_EQ(corners(regions[0].holes[0], g), (Corners{{1, 1}, {1, 2}, {2, 2}, {2, 1}}));
  expect_valid(regions, g);
  EXPECT_EQ(read_back(regions_geojson(g, {}), g, 1), thresholded(g, 0.5));

  // The mirrored contact, and two holes touching each other at a corner.
  for (const auto& rows : {std::vector<std::string>{"###", "#.#", ".##"},
                           std::vector<std::string>{"####", "#.##", "##.#", "####"}}) {
    ProbabilityGrid h = art(rows);
    const auto rh = trace_regions(h, {});
    ASSERT_EQ(rh.size(), 1u);
    expect_valid(rh, h);
    EXPECT_EQ(read_back(regions_geojson(h, {}), h, 1), thresholded(h, 0.5));
  }
  const auto two_holes = trace_regions(art({"####", "#.##", "##.#", "####"}), {});
  ASSERT_EQ(two_holes[0].holes.size(), 2u);
  EXPECT_EQ(corners(two_holes[0].holes[0], art({"#"})), (Corners{{1, 1}, {1, 2}, {2, 2}, {2, 1}}));
  EXPECT_EQ(corners(two_holes[0].holes[1], art({"#"})), (Corners{{2, 2}, {2, 3}, {3, 3}, {3, 2}}));
}

TEST(Regions, NaNCellsAreNeverSelected) {
  ProbabilityGrid g = art({"#n#", "nnn"});
  RegionParams p;
  p.threshold = -1e30;  // every computed cell
  const auto regions = trace_regions(g, p);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].cells + regions[1].cells, 2);
  EXPECT_TRUE(trace_regions(art({"nn", "nn"}), p).empty());
  EXPECT_EQ(read_back(regions_geojson(g, p), g, 2), thresholded(g, p.threshold));
}

TEST(Regions, ThresholdIsInclusive) {
  const float below = std::nextafter(0.5f, 0.0f);
  ProbabilityGrid g = values(3, 1, {0.5f, below, 0.5f});
  const auto regions = trace_regions(g, {});
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(corners(regions[0].outer, g), (Corners{{0, 0}, {1, 0}, {1, 1}, {0, 1}}));
  EXPECT_EQ(corners(regions[1].outer, g), (Corners{{2, 0}, {3, 0}, {3, 1}, {2, 1}}));
  RegionParams p;
  p.threshold = static_cast<double>(below);
  EXPECT_EQ(trace_regions(g, p).size(), 1u);
  p.threshold = 0.50001;
  EXPECT_TRUE(trace_regions(g, p).empty());
}

TEST(Regions, MinCellsDropsSmallRegionsAndRenumbers) {
  ProbabilityGrid g = art({"#.##", "...#"});
  RegionParams p;
  EXPECT_EQ(trace_regions(g, p).size(), 2u);
  p.min_cells = 2;
  const auto kept = trace_regions(g, p);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].cells, 3);
  const auto doc = nlohmann::json::parse(regions_geojson(g, p));
  ASSERT_EQ(doc["features"].size(), 1u);
  EXPECT_EQ(doc["features"][0]["properties"]["name"], "region 1");
  std::vector<uint8_t> want = thresholded(g, 0.5);
  want[0] = kClassNormal;
  EXPECT_EQ(read_back(regions_geojson(g, p), g, 1), want);
  p.min_cells = 3;
  EXPECT_EQ(trace_regions(g, p).size(), 1u);
  p.min_cells = 4;
  EXPECT_TRUE(trace_regions(g, p).empty());
}

TEST(Regions, StatsMaxMeanAndArea) {
  ProbabilityGrid g = values(4, 1, {0.6f, 0.8f, 1.0f, 0.2f}, 0, 0, 256);
  RegionParams p;
  auto regions = trace_regions(g, p);
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0].cells, 3);
  EXPECT_EQ(regions[0].max_probability, 1.0);
  EXPECT_DOUBLE_EQ(regions[0].mean_probability,
                   (static_cast<double>(0.6f) + static_cast<double>(0.8f) + 1.0) / 3);
  EXPECT_FALSE(regions[0].area_um2.has_value());
  auto doc = nlohmann::json::parse(regions_geojson(g, p));
  EXPECT_FALSE(doc["features"][0]["properties"]["measurements"].contains("area_um2"));

  p.mpp = 0.25;  // a cell is 64 µm wide
  regions = trace_regions(g, p);
  ASSERT_TRUE(regions[0].area_um2.has_value());
  EXPECT_DOUBLE_EQ(*regions[0].area_um2, 3 * 64.0 * 64.0);
  doc = nlohmann::json::parse(regions_geojson(g, p));
  const auto& m = doc["features"][0]["properties"]["measurements"];
  EXPECT_EQ(m["area_um2"].get<double>(), 3 * 64.0 * 64.0);
  EXPECT_EQ(m["max_probability"].get<double>(), 1.0);
  EXPECT_EQ(m["mean_probability"].get<double>(), regions[0].mean_probability);
}

TEST(Regions, GeoJsonIsAQuPathFeatureCollection) {
  ProbabilityGrid g = art({"###.", "#.#.", "###.", "...#"}, 100.5, 200.25, 0.75);
  RegionParams p;
  p.mpp = 0.5;
  const auto regions = trace_regions(g, p);
  const std::string text = regions_geojson(g, p);
  EXPECT_EQ(text, regions_geojson(regions));
  const auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["type"], "FeatureCollection");
  ASSERT_EQ(doc["features"].size(), regions.size());
  ASSERT_EQ(regions.size(), 2u);
  for (size_t r = 0; r < regions.size(); ++r) {
    const auto& f = doc["features"][r];
    EXPECT_EQ(f["type"], "Feature");
    EXPECT_EQ(f["geometry"]["type"], "Polygon");
    const auto& props = f["properties"];
    EXPECT_EQ(props["objectType"], "annotation");
    EXPECT_EQ(props["classification"]["name"], "Tumor");
    EXPECT_EQ(props["classification"]["color"], nlohmann::json::array({200, 0, 0}));
    EXPECT_EQ(props["name"], "region " + std::to_string(r + 1));
    const auto& coords = f["geometry"]["coordinates"];
    ASSERT_EQ(coords.size(), 1 + regions[r].holes.size());
    for (size_t k = 0; k < coords.size(); ++k) {
      const auto& ring = k == 0 ? regions[r].outer : regions[r].holes[k - 1];
      const auto& json_ring = coords[k];
      ASSERT_EQ(json_ring.size(), ring.size() + 1);
      EXPECT_EQ(json_ring.front(), json_ring.back()) << "RFC 7946: closed ring";
      for (size_t v = 0; v < ring.size(); ++v) {
        EXPECT_EQ(json_ring[v][0].get<double>(), ring[v].x);
        EXPECT_EQ(json_ring[v][1].get<double>(), ring[v].y);
      }
    }
  }
  EXPECT_EQ(read_back(text, g, 2), thresholded(g, 0.5));
}

TEST(Regions, EmptyGridGivesAnEmptyCollection) {
  ProbabilityGrid g = art({"...", "..."}, 0, 0, 3);
  const auto doc = nlohmann::json::parse(regions_geojson(g, {}));
  EXPECT_EQ(doc["type"], "FeatureCollection");
  EXPECT_TRUE(doc["features"].empty());
  ProbabilityGrid none = values(0, 0, {}, 0, 0, 1);
  EXPECT_TRUE(trace_regions(none, {}).empty());
}

// Reference check on random grids: valid polygons whose read-back raster is exactly the
// thresholded cells, at fractional origins and steps.
TEST(Regions, RandomGridsReadBackToTheThresholdedCells) {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> u(0, 1);
  size_t holes = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t cols = 1 + static_cast<int64_t>(rng() % 23), rows = 1 + static_cast<int64_t>(rng() % 17);
    ProbabilityGrid g;
    g.cols = cols;
    g.rows = rows;
    g.x0 = 12345.678 * u(rng);
    g.y0 = 9876.5 * u(rng);
    g.step = trial % 3 == 0 ? 256 : 0.1 + 300 * static_cast<double>(u(rng));
    const float nan_share = trial % 2 ? 0.1f : 0.f;
    for (int64_t k = 0; k < cols * rows; ++k) g.values.push_back(u(rng) < nan_share ? kNaN : u(rng));
    RegionParams p;
    p.threshold = 0.2 + 0.6 * static_cast<double>(u(rng));
    const auto regions = trace_regions(g, p);
    expect_valid(regions, g);
    int64_t cells = 0;
    for (const auto& r : regions) {
      cells += r.cells;
      holes += r.holes.size();
    }
    const auto want = thresholded(g, p.threshold);
    EXPECT_EQ(cells, std::count(want.begin(), want.end(), kClassTumour));
    EXPECT_EQ(read_back(regions_geojson(regions), g, regions.size()), want) << "trial " << trial;
  }
  EXPECT_GT(holes, 20u) << "the random grids should exercise holes";
}

// ---- local maxima -------------------------------------------------------------------------------

MaximaParams no_nms(double threshold = 0.5, int64_t radius = 1) {
  MaximaParams p;
  p.threshold = threshold;
  p.radius = radius;
  p.nms_um = 0;
  return p;
}

void expect_detection(const Detection& d, double prob, double x, double y) {
  EXPECT_EQ(d.probability, prob);
  EXPECT_EQ(d.x, x);
  EXPECT_EQ(d.y, y);
}

TEST(LocalMaxima, PeaksPlateausEdgesAndNaN) {
  // clang-format off
  ProbabilityGrid g = values(5, 4, {
      0.2f, 0.2f, 0.3f, 0.1f, 0.1f,
      0.2f, 0.9f, 0.3f, 0.1f, 0.7f,   // 0.7 on the right edge, NaN below-left of it
      0.2f, 0.2f, 0.3f, kNaN, 0.1f,
      0.6f, 0.6f, 0.1f, 0.1f, 0.1f},  // a plateau on the bottom edge: its first cell wins
      1000.5, 2000.25, 10.5);
  // clang-format on
  const auto d = local_maxima(g, no_nms());
  ASSERT_EQ(d.size(), 3u);
  expect_detection(d[0], static_cast<double>(0.9f), 1000.5 + 1.5 * 10.5, 2000.25 + 1.5 * 10.5);
  expect_detection(d[1], static_cast<double>(0.7f), 1000.5 + 4.5 * 10.5, 2000.25 + 1.5 * 10.5);
  expect_detection(d[2], static_cast<double>(0.6f), 1000.5 + 0.5 * 10.5, 2000.25 + 3.5 * 10.5);

  // A wider window: the plateau now sees the 0.9 peak.
  const auto d2 = local_maxima(g, no_nms(0.5, 2));
  ASSERT_EQ(d2.size(), 2u);
  EXPECT_EQ(d2[1].probability, static_cast<double>(0.7f));

  // Radius 0: every cell at or above the threshold.
  EXPECT_EQ(local_maxima(g, no_nms(0.6, 0)).size(), 4u);
}

TEST(LocalMaxima, ThresholdIsInclusiveAndNaNIsNeverAMaximum) {
  ProbabilityGrid g = values(3, 1, {0.25f, kNaN, 0.1f});
  const auto d = local_maxima(g, no_nms(0.25));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].probability, 0.25);
  EXPECT_TRUE(local_maxima(g, no_nms(0.2500001)).empty());
  // Both sides of the NaN are maxima: NaN is not a neighbour.
  EXPECT_EQ(local_maxima(g, no_nms(0.05)).size(), 2u);
  EXPECT_TRUE(local_maxima(values(2, 2, {kNaN, kNaN, kNaN, kNaN}), no_nms(-1)).empty());
}

TEST(LocalMaxima, TiesGoToTheFirstCellInRasterOrder) {
  // An equal pair on different rows, diagonal: the upper one wins.
  ProbabilityGrid g = values(3, 3, {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.8f, 0.1f, 0.8f, 0.1f});
  const auto d = local_maxima(g, no_nms());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].x, 2.5);
  EXPECT_EQ(d[0].y, 1.5);
  // Equal separate peaks are both kept and listed in raster order.
  ProbabilityGrid two = values(5, 1, {0.1f, 0.8f, 0.1f, 0.8f, 0.1f}, 0, 0, 2);
  const auto t = local_maxima(two, no_nms());
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].x, 3);
  EXPECT_EQ(t[1].x, 7);
  // A flat grid yields its first cell only.
  const auto flat = local_maxima(values(3, 2, std::vector<float>(6, 0.7f)), no_nms());
  ASSERT_EQ(flat.size(), 1u);
  EXPECT_EQ(flat[0].x, 0.5);
  EXPECT_EQ(flat[0].y, 0.5);
}

TEST(LocalMaxima, SuppressionDistanceInMicrons) {
  // Peaks 0.9 at cell 0 and 0.8 at cell 3: centres 30 level-0 pixels apart.
  ProbabilityGrid g = values(4, 1, {0.9f, 0.1f, 0.1f, 0.8f}, 0, 0, 10);
  MaximaParams p = no_nms();
  p.mpp = 0.5;
  p.nms_um = 15;  // 30 px: the distance must be strictly less
  EXPECT_EQ(local_maxima(g, p).size(), 2u);
  p.nms_um = 15.001;
  const auto d = local_maxima(g, p);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].probability, static_cast<double>(0.9f));

  // A suppressed candidate suppresses nothing itself.
  ProbabilityGrid chain = values(5, 1, {0.9f, 0.1f, 0.8f, 0.1f, 0.7f}, 0, 0, 10);
  MaximaParams c = no_nms();
  c.mpp = 1;
  c.nms_um = 25;
  const auto k = local_maxima(chain, c);
  ASSERT_EQ(k.size(), 2u);
  EXPECT_EQ(k[0].x, 5);
  EXPECT_EQ(k[1].x, 45);

  // Equal values: the first in raster order survives.
  ProbabilityGrid eq = values(3, 1, {0.8f, 0.1f, 0.8f}, 0, 0, 10);
  const auto e = local_maxima(eq, c);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].x, 5);
}

// The bucketed suppression against the plain greedy one on random grids.
TEST(LocalMaxima, SuppressionMatchesBruteForce) {
  std::mt19937 rng(777);
  std::uniform_real_distribution<float> u(0, 1);
  int suppressing = 0;
  for (int trial = 0; trial < 30; ++trial) {
    ProbabilityGrid g = values(40, 30, {}, 100 * u(rng), 50 * u(rng), 5 + 60 * static_cast<double>(u(rng)));
    for (int k = 0; k < 40 * 30; ++k) g.values.push_back(u(rng) < 0.05f ? kNaN : u(rng));
    MaximaParams p = no_nms(0.1, trial % 3);
    const auto all = local_maxima(g, p);
    p.mpp = 0.243;
    p.nms_um = 10 + 400 * static_cast<double>(u(rng));
    const double d = p.nms_um / p.mpp;
    std::vector<Detection> want;
    for (const Detection& c : all) {
      const bool near = std::any_of(want.begin(), want.end(), [&](const Detection& k) {
        const double di = (k.x - c.x) / g.step, dj = (k.y - c.y) / g.step, dc = d / g.step;
        return di * di + dj * dj < dc * dc;
      });
      if (!near) want.push_back(c);
    }
    const auto got = local_maxima(g, p);
    suppressing += want.size() < all.size();
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    for (size_t k = 0; k < got.size(); ++k) expect_detection(got[k], want[k].probability, want[k].x, want[k].y);
  }
  EXPECT_GT(suppressing, 15) << "most random cases should suppress something";
}

TEST(LocalMaxima, DefaultsNeedMpp) {
  ProbabilityGrid g = values(1, 1, {0.9f});
  try {
    local_maxima(g, {});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "local_maxima: suppression within 75 µm needs the slide's µm per level-0 pixel: pass mpp, or set "
                 "nms_um to 0 to turn suppression off");
  }
  MaximaParams p;
  p.mpp = 0.25;
  EXPECT_EQ(local_maxima(g, p).size(), 1u);
}

// ---- FROC CSV -----------------------------------------------------------------------------------

TEST(FrocCsv, IsTheOfficialFormNoHeaderIntegerCoordinatesAndReadsBackThroughSlideEval) {
  ProbabilityGrid g = values(6, 3,
                             {0.1f, 0.95f, 0.1f, 0.1f, 0.1f, 0.3f,  //
                              0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f,   //
                              0.1f, 0.1f, 0.1f, 0.7f, 0.1f, 0.1f},
                             12345.678, 0.3, 256.1);
  MaximaParams p = no_nms(0.2);
  const auto dets = local_maxima(g, p);
  ASSERT_EQ(dets.size(), 3u);
  const std::string csv = froc_csv(dets);
  EXPECT_EQ(csv.find("prob"), std::string::npos);  // Evaluation_FROC.py parses every line as a row
  const auto back = parse_detection_csv(csv, "slide.froc.csv");
  ASSERT_EQ(back.size(), dets.size());
  for (size_t k = 0; k < dets.size(); ++k)
    expect_detection(back[k], dets[k].probability, std::trunc(dets[k].x), std::trunc(dets[k].y));

  // Probabilities exactly, in fixed point; x, y truncated toward zero (int() in the script).
  const std::vector<Detection> exact = {{0, 0, 0}, {1, 1e9, 0.5}, {1e-7, 1234.5678, 98765.4321}, {0.5, -0.5, -31.9}};
  EXPECT_EQ(froc_csv(exact), "0,0,0\n1,1000000000,0\n0.0000001,1234,98765\n0.5,0,-31\n");
  const auto eb = parse_detection_csv(froc_csv(exact), "e.froc.csv");
  ASSERT_EQ(eb.size(), 4u);
  for (size_t k = 0; k < exact.size(); ++k)
    expect_detection(eb[k], exact[k].probability, std::trunc(exact[k].x) + 0.0, std::trunc(exact[k].y));

  EXPECT_EQ(froc_csv({}), "");
  EXPECT_TRUE(parse_detection_csv(froc_csv({}), "empty.froc.csv").empty());
}

TEST(FrocCsv, OlderFilesWithTheHeaderAndFractionalCoordinatesStillRead) {
  const auto old = parse_detection_csv("prob,x,y\n0.95,12473.728,128.35\n", "old.froc.csv");
  ASSERT_EQ(old.size(), 1u);
  expect_detection(old[0], 0.95, 12473.728, 128.35);
}

// ---- bad input: the exact message for each ------------------------------------------------------

TEST(RegionsErrors, MessagesNameTheValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    ProbabilityGrid grid;
    RegionParams params;
    std::string message;
  };
  RegionParams def;
  RegionParams bad_threshold;
  bad_threshold.threshold = nan;
  RegionParams bad_min;
  bad_min.min_cells = 0;
  RegionParams bad_mpp;
  bad_mpp.mpp = -1;
  const std::vector<Case> cases = {
      {values(2, 2, {0.1f, 0.2f, 0.3f}), def, "trace_regions: probability grid: 2 x 2 cells need 4 values, got 3"},
      {values(-1, 2, {}), def, "trace_regions: probability grid: the size must not be negative (got -1 x 2 cells)"},
      {values(1, 1, {0.1f}, 0, 0, 0), def,
       "trace_regions: probability grid: step must be a positive finite number of level-0 pixels (got 0)"},
      {values(1, 1, {0.1f}, nan, 0, 1), def,
       "trace_regions: probability grid: the origin must be finite (got x0 nan, y0 0)"},
      {values(2, 2, {0.1f, 0.2f, std::numeric_limits<float>::infinity(), 0.3f}), def,
       "trace_regions: probability grid: cell (0, 1) is inf; values must be finite, or NaN for cells not computed"},
      {values(1, 1, {0.1f}), bad_threshold, "trace_regions: threshold must be a finite number (got nan)"},
      {values(1, 1, {0.1f}), bad_min, "trace_regions: min_cells must be at least 1 (got 0)"},
      {values(1, 1, {0.1f}), bad_mpp,
       "trace_regions: mpp must be a positive number of µm per level-0 pixel, or 0 when unknown (got -1)"},
  };
  for (const Case& c : cases) {
    try {
      trace_regions(c.grid, c.params);
      ADD_FAILURE() << "expected ConfigError: " << c.message;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), c.message);
    }
  }
}

TEST(RegionsErrors, MaximaAndCsvMessages) {
  const ProbabilityGrid g = values(1, 1, {0.5f});
  struct Case {
    MaximaParams params;
    std::string message;
  };
  std::vector<Case> cases;
  MaximaParams p = no_nms();
  p.radius = -1;
  cases.push_back({p, "local_maxima: radius must be 0 or more cells (got -1)"});
  p = no_nms();
  p.nms_um = -3;
  cases.push_back({p, "local_maxima: nms_um must be 0 (off) or a positive distance in µm (got -3)"});
  p = no_nms();
  p.mpp = std::numeric_limits<double>::infinity();
  cases.push_back({p, "local_maxima: mpp must be a positive number of µm per level-0 pixel (got inf)"});
  p = no_nms();
  p.threshold = std::numeric_limits<double>::quiet_NaN();
  cases.push_back({p, "local_maxima: threshold must be a finite number (got nan)"});
  for (const Case& c : cases) {
    try {
      local_maxima(g, c.params);
      ADD_FAILURE() << "expected ConfigError: " << c.message;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), c.message);
    }
  }
  try {
    froc_csv({{0.5, 1, 2}, {1.5, 3, 4}});
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "froc_csv: detection 1 (prob 1.5, x 3, y 4) cannot be written: the probability must be in 0..1 and "
              "x, y finite level-0 pixels");
  }
  EXPECT_THROW(froc_csv({{0.5, std::numeric_limits<double>::quiet_NaN(), 2}}), ConfigError);
}

TEST(ProbabilityGridTest, AtIsRowMajor) {
  const ProbabilityGrid g = values(3, 2, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(g.at(0, 0), 0.f);
  EXPECT_EQ(g.at(2, 0), 2.f);
  EXPECT_EQ(g.at(0, 1), 3.f);
  EXPECT_EQ(g.at(2, 1), 5.f);
}

}  // namespace
}  // namespace wsi
