// Probability grid -> tumour regions (GeoJSON) and FROC detections (see regions.hpp).
#include "wsi/regions.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "wsi/error.hpp"

namespace wsi {
namespace {

using Json = nlohmann::ordered_json;

void check_grid(const ProbabilityGrid& g, const char* who) {
  const std::string w = std::string(who) + ": probability grid: ";
  if (g.cols < 0 || g.rows < 0) {
    std::ostringstream m;
    m << w << "the size must not be negative (got " << g.cols << " x " << g.rows << " cells)";
    throw ConfigError(m.str());
  }
  if (g.rows > 0 && g.cols > std::numeric_limits<int64_t>::max() / g.rows)
    throw ConfigError(w + std::to_string(g.cols) + " x " + std::to_string(g.rows) + " cells is too many");
  if (static_cast<int64_t>(g.values.size()) != g.cols * g.rows) {
    std::ostringstream m;
    m << w << g.cols << " x " << g.rows << " cells need " << g.cols * g.rows << " values, got " << g.values.size();
    throw ConfigError(m.str());
  }
  if (!std::isfinite(g.step) || g.step <= 0) {
    std::ostringstream m;
    m << w << "step must be a positive finite number of level-0 pixels (got " << g.step << ")";
    throw ConfigError(m.str());
  }
  if (!std::isfinite(g.x0) || !std::isfinite(g.y0)) {
    std::ostringstream m;
    m << w << "the origin must be finite (got x0 " << g.x0 << ", y0 " << g.y0 << ")";
    throw ConfigError(m.str());
  }
  for (size_t k = 0; k < g.values.size(); ++k)
    if (std::isinf(g.values[k])) {
      const int64_t idx = static_cast<int64_t>(k);
      std::ostringstream m;
      m << w << "cell (" << idx % g.cols << ", " << idx / g.cols << ") is " << g.values[k]
        << "; values must be finite, or NaN for cells not computed";
      throw ConfigError(m.str());
    }
}

// Directions of boundary edges, in corner-index space (X right, Y = image down). In the y-up
// sense of regions.hpp, 0 -> 1 -> 2 -> 3 turns left (counter-clockwise); d + 3 turns right.
constexpr std::array<int64_t, 4> kDx{1, 0, -1, 0};
constexpr std::array<int64_t, 4> kDy{0, 1, 0, -1};

struct Edge {
  int64_t from;  // corner index Y * (cols + 1) + X
  int dir;
  friend bool operator<(const Edge& a, const Edge& b) { return a.from != b.from ? a.from < b.from : a.dir < b.dir; }
};

struct Corner {
  int64_t x, y;
};

// Traces the rings of one 4-connected component (`cells`, indices into the grid; `selected`
// marks every selected cell of the grid). Returns rings of corners, collinear corners removed.
std::vector<std::vector<Corner>> trace_component(const std::vector<int64_t>& cells, const std::vector<uint8_t>& selected,
                                                 int64_t cols, int64_t rows) {
  const int64_t stride = cols + 1;
  auto sel = [&](int64_t i, int64_t j) {
    return i >= 0 && j >= 0 && i < cols && j < rows && selected[static_cast<size_t>(j * cols + i)];
  };
  // Each cell contributes its edges that face an unselected cell, directed so that the cell
  // lies on the left (y-up sense). A selected neighbour across an edge is 4-adjacent, hence in
  // the same component.
  std::vector<Edge> edges;
  for (const int64_t c : cells) {
    const int64_t i = c % cols, j = c / cols;
    if (!sel(i, j - 1)) edges.push_back({j * stride + i, 0});
    if (!sel(i + 1, j)) edges.push_back({j * stride + i + 1, 1});
    if (!sel(i, j + 1)) edges.push_back({(j + 1) * stride + i + 1, 2});
    if (!sel(i - 1, j)) edges.push_back({(j + 1) * stride + i, 3});
  }
  std::sort(edges.begin(), edges.end());
  std::vector<uint8_t> used(edges.size(), 0);

  // At a corner with two outgoing edges (two cells of the component touching diagonally), the
  // right turn is taken: it joins the two cells, so each ring passes such a corner once.
  auto next_edge = [&](size_t e) {
    const Edge& cur = edges[e];
    const int64_t to = cur.from + kDy[static_cast<size_t>(cur.dir)] * stride + kDx[static_cast<size_t>(cur.dir)];
    auto lo = std::lower_bound(edges.begin(), edges.end(), Edge{to, 0});
    auto hi = std::lower_bound(lo, edges.end(), Edge{to + 1, 0});
    if (hi - lo == 1) return static_cast<size_t>(lo - edges.begin());
    const int right = (cur.dir + 3) % 4;
    for (auto it = lo; it != hi; ++it)
      if (it->dir == right) return static_cast<size_t>(it - edges.begin());
    throw Error("trace_regions: internal error: inconsistent boundary at a corner");  // cannot happen
  };

  std::vector<std::vector<Corner>> rings;
  std::vector<size_t> path;
  for (size_t s = 0; s < edges.size(); ++s) {
    if (used[s]) continue;
    path.clear();
    size_t e = s;
    do {
      used[e] = 1;
      path.push_back(e);
      e = next_edge(e);
    } while (e != s);
    // The first edge of a ring in sorted order starts at its smallest (y, x) corner, which is
    // a real corner (the left end of its topmost run), so the ring starts there.
    auto& ring = rings.emplace_back();
    for (size_t k = 0; k < path.size(); ++k) {
      const Edge& cur = edges[path[k]];
      const Edge& prev = edges[path[k == 0 ? path.size() - 1 : k - 1]];
      if (cur.dir != prev.dir) ring.push_back({cur.from % stride, cur.from / stride});
    }
  }
  return rings;
}

// Twice the signed area (shoelace), in corner units.
int64_t twice_area(const std::vector<Corner>& ring) {
  int64_t a = 0;
  for (size_t k = 0; k < ring.size(); ++k) {
    const Corner& p = ring[k];
    const Corner& q = ring[k + 1 == ring.size() ? 0 : k + 1];
    a += p.x * q.y - q.x * p.y;
  }
  return a;
}

std::vector<Point2> to_level0(const std::vector<Corner>& ring, const ProbabilityGrid& g) {
  std::vector<Point2> out;
  out.reserve(ring.size());
  for (const Corner& c : ring)
    out.push_back({g.x0 + static_cast<double>(c.x) * g.step, g.y0 + static_cast<double>(c.y) * g.step});
  return out;
}

Json ring_json(const std::vector<Point2>& ring) {
  Json r = Json::array();
  for (const Point2& p : ring) r.push_back(Json::array({p.x, p.y}));
  if (!ring.empty()) r.push_back(Json::array({ring.front().x, ring.front().y}));  // RFC 7946 closure
  return r;
}

// Shortest fixed-point form that reads back to the same double: coordinates stay readable
// ("100000", not "1e+05"). 400 characters hold any finite double in fixed notation.
void append_double(std::string& out, double v) {
  char buf[400];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  out.append(buf, res.ptr);
}

}  // namespace

std::vector<RegionPolygon> trace_regions(const ProbabilityGrid& grid, const RegionParams& params) {
  check_grid(grid, "trace_regions");
  if (!std::isfinite(params.threshold)) {
    std::ostringstream m;
    m << "trace_regions: threshold must be a finite number (got " << params.threshold << ")";
    throw ConfigError(m.str());
  }
  if (params.min_cells < 1)
    throw ConfigError("trace_regions: min_cells must be at least 1 (got " + std::to_string(params.min_cells) + ")");
  if (!std::isfinite(params.mpp) || params.mpp < 0) {
    std::ostringstream m;
    m << "trace_regions: mpp must be a positive number of µm per level-0 pixel, or 0 when unknown (got "
      << params.mpp << ")";
    throw ConfigError(m.str());
  }

  const int64_t cols = grid.cols, rows = grid.rows, n = cols * rows;
  std::vector<uint8_t> selected(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    selected[static_cast<size_t>(k)] = grid.values[static_cast<size_t>(k)] >= params.threshold;  // NaN: false

  std::vector<RegionPolygon> out;
  std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
  std::vector<int64_t> cells;
  for (int64_t start = 0; start < n; ++start) {
    if (!selected[static_cast<size_t>(start)] || seen[static_cast<size_t>(start)]) continue;
    // Flood fill (4-connected); `cells` doubles as the queue.
    cells.clear();
    cells.push_back(start);
    seen[static_cast<size_t>(start)] = 1;
    for (size_t q = 0; q < cells.size(); ++q) {
      const int64_t i = cells[q] % cols, j = cells[q] / cols;
      const int64_t nb[4][2] = {{i + 1, j}, {i - 1, j}, {i, j + 1}, {i, j - 1}};
      for (const auto& [a, b] : nb) {
        if (a < 0 || b < 0 || a >= cols || b >= rows) continue;
        const auto k = static_cast<size_t>(b * cols + a);
        if (selected[k] && !seen[k]) {
          seen[k] = 1;
          cells.push_back(b * cols + a);
        }
      }
    }
    if (static_cast<int64_t>(cells.size()) < params.min_cells) continue;

    RegionPolygon region;
    region.cells = static_cast<int64_t>(cells.size());
    double sum = 0, max = -std::numeric_limits<double>::infinity();
    for (const int64_t c : cells) {
      const double v = grid.values[static_cast<size_t>(c)];
      sum += v;
      max = std::max(max, v);
    }
    region.max_probability = max;
    region.mean_probability = sum / static_cast<double>(cells.size());
    if (params.mpp > 0) {
      const double side_um = grid.step * params.mpp;
      region.area_um2 = static_cast<double>(cells.size()) * side_um * side_um;
    }

    auto rings = trace_component(cells, selected, cols, rows);
    for (const auto& ring : rings) {
      if (twice_area(ring) > 0)
        region.outer = to_level0(ring, grid);  // exactly one: the boundary with the unbounded outside
      else
        region.holes.push_back(to_level0(ring, grid));
    }
    out.push_back(std::move(region));
  }
  return out;
}

std::string regions_geojson(const std::vector<RegionPolygon>& regions) {
  std::string out = "{\"type\": \"FeatureCollection\", \"features\": [";
  for (size_t r = 0; r < regions.size(); ++r) {
    const RegionPolygon& region = regions[r];
    Json coords = Json::array();
    coords.push_back(ring_json(region.outer));
    for (const auto& hole : region.holes) coords.push_back(ring_json(hole));
    Json measurements = Json::object();
    measurements["max_probability"] = region.max_probability;
    measurements["mean_probability"] = region.mean_probability;
    if (region.area_um2) measurements["area_um2"] = *region.area_um2;
    Json feature = {
        {"type", "Feature"},
        {"geometry", {{"type", "Polygon"}, {"coordinates", std::move(coords)}}},
        {"properties",
         {{"objectType", "annotation"},
          {"classification", {{"name", "Tumor"}, {"color", {200, 0, 0}}}},
          {"name", "region " + std::to_string(r + 1)},
          {"measurements", std::move(measurements)}}},
    };
    out += r == 0 ? "\n" : ",\n";
    out += feature.dump();
  }
  out += "\n]}\n";
  return out;
}

std::string regions_geojson(const ProbabilityGrid& grid, const RegionParams& params) {
  return regions_geojson(trace_regions(grid, params));
}

namespace {

void check_maxima_params(const MaximaParams& params) {
  if (!std::isfinite(params.threshold)) {
    std::ostringstream m;
    m << "local_maxima: threshold must be a finite number (got " << params.threshold << ")";
    throw ConfigError(m.str());
  }
  if (params.radius < 0)
    throw ConfigError("local_maxima: radius must be 0 or more cells (got " + std::to_string(params.radius) + ")");
  if (!std::isfinite(params.nms_um) || params.nms_um < 0) {
    std::ostringstream m;
    m << "local_maxima: nms_um must be 0 (off) or a positive distance in µm (got " << params.nms_um << ")";
    throw ConfigError(m.str());
  }
  if (!std::isfinite(params.mpp) || params.mpp < 0) {
    std::ostringstream m;
    m << "local_maxima: mpp must be a positive number of µm per level-0 pixel (got " << params.mpp << ")";
    throw ConfigError(m.str());
  }
  if (params.nms_um > 0 && params.mpp == 0) {
    std::ostringstream m;
    m << "local_maxima: suppression within " << params.nms_um
      << " µm needs the slide's µm per level-0 pixel: pass mpp, or set nms_um to 0 to turn suppression off";
    throw ConfigError(m.str());
  }
}

struct Candidate {
  float value;
  int64_t index;  // raster order
};

// Cells >= threshold that beat every cell of their (2r+1)² window (ties: the earlier cell in
// raster order wins), highest value first (stable: raster order among equals).
std::vector<Candidate> window_maxima(const ProbabilityGrid& grid, const MaximaParams& params) {
  const int64_t cols = grid.cols, rows = grid.rows;
  const int64_t r = std::min(params.radius, std::max(cols, rows));  // a larger window changes nothing
  std::vector<Candidate> cand;
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t i = 0; i < cols; ++i) {
      const float v = grid.at(i, j);
      if (!(v >= params.threshold)) continue;  // NaN too
      const int64_t self = j * cols + i;
      bool beats_all = true;
      for (int64_t b = std::max<int64_t>(0, j - r); b <= std::min(rows - 1, j + r) && beats_all; ++b)
        for (int64_t a = std::max<int64_t>(0, i - r); a <= std::min(cols - 1, i + r); ++a) {
          const float w = grid.at(a, b);
          const int64_t other = b * cols + a;
          // NaN neighbours compare false both ways and are skipped.
          if (other != self && (w > v || (w == v && other < self))) {
            beats_all = false;
            break;
          }
        }
      if (beats_all) cand.push_back({v, self});
    }
  std::stable_sort(cand.begin(), cand.end(), [](const Candidate& a, const Candidate& b) { return a.value > b.value; });
  return cand;
}

// Greedy suppression, highest first: a candidate closer than `d_cells` (in cells) to one already
// kept is dropped. Kept maxima are bucketed by squares of d_cells so each test looks at 3 x 3
// buckets.
std::vector<Candidate> suppress_near(const std::vector<Candidate>& cand, int64_t cols, double d_cells) {
  std::vector<Candidate> kept;
  const double d2 = d_cells * d_cells;
  const int64_t nbx = static_cast<int64_t>(static_cast<double>(cols) / d_cells) + 3;
  auto bucket = [&](double c) { return static_cast<int64_t>(c / d_cells) + 1; };  // >= 1: neighbours >= 0
  std::unordered_map<int64_t, std::vector<size_t>> buckets;
  for (const Candidate& c : cand) {
    const double ci = static_cast<double>(c.index % cols) + 0.5, cj = static_cast<double>(c.index / cols) + 0.5;
    const int64_t bx = bucket(ci), by = bucket(cj);
    bool suppressed = false;
    for (int64_t y = by - 1; y <= by + 1 && !suppressed; ++y)
      for (int64_t x = bx - 1; x <= bx + 1 && !suppressed; ++x) {
        auto it = buckets.find(y * nbx + x);
        if (it == buckets.end()) continue;
        for (const size_t k : it->second) {
          const double di = static_cast<double>(kept[k].index % cols) + 0.5 - ci;
          const double dj = static_cast<double>(kept[k].index / cols) + 0.5 - cj;
          if (di * di + dj * dj < d2) {
            suppressed = true;
            break;
          }
        }
      }
    if (suppressed) continue;
    buckets[by * nbx + bx].push_back(kept.size());
    kept.push_back(c);
  }
  return kept;
}

}  // namespace

std::vector<Detection> local_maxima(const ProbabilityGrid& grid, const MaximaParams& params) {
  check_grid(grid, "local_maxima");
  check_maxima_params(params);
  std::vector<Candidate> kept = window_maxima(grid, params);
  const double d_px = params.nms_um > 0 ? params.nms_um / params.mpp : 0;
  // Distinct centres are at least one step apart, so a distance of one step or less suppresses
  // nothing.
  if (d_px > grid.step) kept = suppress_near(kept, grid.cols, d_px / grid.step);
  std::vector<Detection> out;
  out.reserve(kept.size());
  for (const Candidate& c : kept) {
    const double i = static_cast<double>(c.index % grid.cols), j = static_cast<double>(c.index / grid.cols);
    out.push_back({static_cast<double>(c.value), grid.x0 + (i + 0.5) * grid.step, grid.y0 + (j + 0.5) * grid.step});
  }
  return out;
}

std::string froc_csv(const std::vector<Detection>& detections) {
  std::string out;
  for (size_t k = 0; k < detections.size(); ++k) {
    const Detection& d = detections[k];
    if (!(d.probability >= 0 && d.probability <= 1) || !std::isfinite(d.x) || !std::isfinite(d.y)) {
      std::ostringstream m;
      m << "froc_csv: detection " << k << " (prob " << d.probability << ", x " << d.x << ", y " << d.y
        << ") cannot be written: the probability must be in 0..1 and x, y finite level-0 pixels";
      throw ConfigError(m.str());
    }
    // Integers, which the official reader's int() needs; truncating keeps the mask pixel its
    // int(x / 2^level) finds. "+ 0.0" turns -0 into 0.
    append_double(out, d.probability);
    out += ',';
    append_double(out, std::trunc(d.x) + 0.0);
    out += ',';
    append_double(out, std::trunc(d.y) + 0.0);
    out += '\n';
  }
  return out;
}

}  // namespace wsi
