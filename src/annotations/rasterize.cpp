// rasterize(): scanline fill of annotation shapes at pixel centres.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "wsi/annotations.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {

struct Edge {
  double xa, ya, yb, dxdy;  // ya < yb; x at y is xa + (y - ya) * dxdy
  int64_t first_row;        // first row whose centre line satisfies ya <= yc
};

// Sample positions are always computed by these two expressions, so the exact half-open tests
// below agree with the approximate index guesses after the small adjustment loops.
struct Grid {
  double x0, y0, scale;
  int64_t w, h;
  double xc(int64_t i) const { return x0 + (static_cast<double>(i) + 0.5) * scale; }
  double yc(int64_t j) const { return y0 + (static_cast<double>(j) + 0.5) * scale; }

  // Smallest column i in [0, w] with xc(i) >= x. An edge whose slope overflows gives x = NaN or
  // +-inf here: those clamp to the window instead of converting out of range.
  int64_t first_col_at_or_after(double x) const {
    const double g = std::ceil((x - x0) / scale - 0.5);
    int64_t i = !(g > 0) ? 0 : g >= static_cast<double>(w) ? w : static_cast<int64_t>(g);
    while (i < w && xc(i) < x) ++i;
    while (i > 0 && xc(i - 1) >= x) --i;
    return i;
  }
  // Smallest row j in [0, h] with yc(j) >= y.
  int64_t first_row_at_or_after(double y) const {
    const double g = std::ceil((y - y0) / scale - 0.5);
    int64_t j = !(g > 0) ? 0 : g >= static_cast<double>(h) ? h : static_cast<int64_t>(g);
    while (j < h && yc(j) < y) ++j;
    while (j > 0 && yc(j - 1) >= y) --j;
    return j;
  }
};

// Paints `code` (max with what is there, so exclusion wins) inside one shape, even-odd rule over
// all its rings. `edges` and `xs` are scratch buffers reused across shapes.
void fill_shape(const Shape& s, uint8_t code, const Grid& g, GrayImage& out, std::vector<Edge>& edges,
                std::vector<const Edge*>& active, std::vector<double>& xs) {
  // Rows whose centre line lies in [min_y, max_y]; columns likewise.
  const int64_t j_lo = g.first_row_at_or_after(s.min_y);
  int64_t j_hi = g.first_row_at_or_after(s.max_y);  // exclusive: an edge needs yc < yb <= max_y
  if (j_lo >= j_hi) return;
  if (g.first_col_at_or_after(s.min_x) >= g.first_col_at_or_after(s.max_x)) return;
  const double y_top = g.yc(j_lo), y_bottom = g.yc(j_hi - 1);

  edges.clear();
  for (const auto& ring : s.rings) {
    const size_t n = ring.size();
    for (size_t k = 0; k < n; ++k) {
      const Point2& p = ring[k];
      const Point2& q = ring[k + 1 == n ? 0 : k + 1];
      if (p.y == q.y) continue;  // horizontal edges never cross a centre line under the half-open rule
      const Point2& a = p.y < q.y ? p : q;
      const Point2& b = p.y < q.y ? q : p;
      if (b.y <= y_top || a.y > y_bottom) continue;  // no centre line in [a.y, b.y)
      edges.push_back({a.x, a.y, b.y, (b.x - a.x) / (b.y - a.y), g.first_row_at_or_after(a.y)});
    }
  }
  if (edges.empty()) return;
  std::sort(edges.begin(), edges.end(), [](const Edge& l, const Edge& r) { return l.first_row < r.first_row; });

  active.clear();
  size_t next = 0;
  for (int64_t j = std::max(j_lo, edges.front().first_row); j < j_hi; ++j) {
    const double y = g.yc(j);
    while (next < edges.size() && edges[next].first_row <= j) active.push_back(&edges[next++]);
    // Edge counted when ya <= y < yb: drop the ones that ended.
    std::erase_if(active, [y](const Edge* e) { return !(y < e->yb); });
    if (active.empty()) {
      if (next == edges.size()) break;
      j = std::max(j, edges[next].first_row - 1);  // skip rows with nothing active
      continue;
    }
    xs.clear();
    for (const Edge* e : active) xs.push_back(e->xa + (y - e->ya) * e->dxdy);
    std::sort(xs.begin(), xs.end());
    uint8_t* row = &out.pixels[static_cast<size_t>(j * g.w)];
    // Inside = odd number of crossings right of the sample: spans [xs[2k], xs[2k+1]).
    for (size_t k = 0; k + 1 < xs.size(); k += 2) {
      const int64_t i0 = g.first_col_at_or_after(xs[k]);
      const int64_t i1 = g.first_col_at_or_after(xs[k + 1]);
      for (int64_t i = i0; i < i1; ++i) row[i] = std::max(row[i], code);
    }
  }
}

}  // namespace

GrayImage rasterize(const AnnotationSet& set, double x0, double y0, double scale, int64_t w, int64_t h) {
  if (w < 0 || h < 0 || !std::isfinite(scale) || scale <= 0 || !std::isfinite(x0) || !std::isfinite(y0)) {
    std::ostringstream m;
    m << "rasterize: invalid window (x0 " << x0 << ", y0 " << y0 << ", scale " << scale << ", " << w << "x" << h
      << "): the size must be non-negative and the scale a positive finite number";
    throw ConfigError(m.str());
  }
  GrayImage out(w, h, kClassNormal);
  if (w == 0 || h == 0) return out;
  const Grid g{x0, y0, scale, w, h};
  std::vector<Edge> edges;
  std::vector<const Edge*> active;
  std::vector<double> xs;
  for (const Shape& s : set.shapes) {
    const uint8_t code = s.cls == ShapeClass::exclusion ? kClassExcluded : kClassTumour;
    fill_shape(s, code, g, out, edges, active, xs);
  }
  return out;
}

}  // namespace wsi
