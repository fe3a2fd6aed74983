// wsi/regions.hpp — from a probability grid to tumour regions (QuPath GeoJSON) and Camelyon16
// FROC detections (pure functions).
//
// Frames and units:
//   * A ProbabilityGrid holds one value per patch-grid cell, row-major, `cols` x `rows`. Cell
//     (i, j) covers the LEVEL-0 pixels [x0 + i*step, x0 + (i+1)*step) x [y0 + j*step,
//     y0 + (j+1)*step); `step` (level-0 pixels, may be fractional) is the grid stride and
//     (x0, y0) the level-0 position of the grid's top-left corner. NaN = not computed (no tissue).
//   * Every output coordinate is LEVEL-0 pixels, y pointing down as in the image. Polygon
//     vertices are exact cell corners, always computed as x0 + X*step, y0 + Y*step for integer
//     corner indices X, Y, so neighbouring regions share bit-identical vertices.
//   * Detections are cell CENTRES: x0 + (i + 0.5)*step, y0 + (j + 0.5)*step.
//   * mpp is µm per level-0 pixel; 0 means unknown.
//
// Regions (trace_regions, regions_geojson):
//   * A cell is selected when its value is >= threshold; NaN is never selected.
//   * Selected cells form one region when they are 4-connected (share an edge). Cells touching
//     only at a corner are different regions unless they are joined some other way, so two
//     diagonal cells are two polygons that touch at one point.
//   * Inside one region, a corner where two of its cells touch diagonally (and the other two
//     cells are not selected) is traced as joining those two cells: the boundary turns right
//     there (in the y-up sense below). So no ring ever visits a vertex twice; a hole may touch
//     the outer ring, or another hole, at one corner, which OGC Simple Features (and JTS, i.e.
//     QuPath) accept as a valid polygon. Holes are the bounded 4-connected areas of unselected
//     cells (NaN cells included) enclosed by the region; another region inside a hole is a
//     separate polygon.
//   * Rings run along cell edges, exactly: no smoothing, and vertices between two collinear
//     edges are removed, so every vertex is a corner of the ring.
//   * Orientation (RFC 7946 right-hand rule, taken on the coordinates as numbers, i.e. in a y-up
//     frame): the outer ring is counter-clockwise (positive shoelace sum), holes clockwise.
//     Drawn on the image (y down), the outer ring therefore looks clockwise. QuPath ignores
//     orientation on import; validators of RFC 7946 check it.
//   * Rings in RegionPolygon are open (the first vertex is not repeated) and start at the
//     vertex with the smallest y, then smallest x. The GeoJSON closes them (RFC 7946: the last
//     position repeats the first).
//   * Regions with fewer than min_cells cells are dropped. Regions are ordered by their first
//     cell in raster order (row by row, top to bottom, left to right); "region N" counts from 1
//     in that order after dropping.
//   * GeoJSON: a FeatureCollection, one Feature per region, one Feature per line:
//       {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [outer, holes...]},
//        "properties": {"objectType": "annotation",
//                       "classification": {"name": "Tumor", "color": [200, 0, 0]},
//                       "name": "region N",
//                       "measurements": {"max_probability": .., "mean_probability": ..,
//                                        "area_um2": ..}}}
//     area_um2 = cells * (step * mpp)^2 and is left out when mpp is 0. The file reads back through
//     annotations.hpp (class "Tumor" is a tumour group) and QuPath's File > Import objects.
//
// Local maxima (local_maxima, froc_csv):
//   * A cell is a candidate when its value is >= MaximaParams::threshold and it beats every
//     non-NaN cell of the (2r+1) x (2r+1) window around it (r = radius, clipped at the grid's
//     edges): it beats a neighbour with a smaller value, and one with an equal value that comes
//     later in raster order. So a flat plateau yields its first cell in raster order (a plateau
//     that bends back up, like a U, can yield more than one; suppression below merges those that
//     are close). NaN cells are never candidates and never neighbours.
//   * Non-maximum suppression: candidates are taken by value, highest first (ties in raster
//     order); one is dropped when a kept one lies closer than nms_um / mpp level-0 pixels
//     (Euclidean distance between cell centres, strictly less). nms_um = 0 turns it off.
//   * The default threshold is low (0.1) on purpose: the FROC sweeps its threshold over the
//     detections' probabilities, and adding detections below every threshold already swept only
//     extends the curve towards more false positives; it never lowers the sensitivity reached
//     at a given number of false positives per slide.
//   * The result is ordered by probability, highest first (ties in raster order).
//   * froc_csv writes the NAME.froc.csv of slide_eval.hpp in the form the official Camelyon16
//     Evaluation_FROC.py reads (readCSVContent: every line is float(prob), int(x), int(y), so no
//     header): one `prob,x,y` row per detection, nothing else (no detections: an empty file).
//     prob is the shortest fixed-point form (no exponent) that reads back to the same double; x
//     and y are the integer parts of the level-0 centre (truncated toward zero), which lie in the
//     same lesion-map pixel as the centre at any integer downsample, since
//     trunc(trunc(x) / d) == trunc(x / d).
//
// Errors: ConfigError, with the bad value and what is allowed, for an inconsistent grid (values
// size != cols * rows, non-positive or non-finite step, non-finite origin, an infinite value)
// or bad parameters; froc_csv refuses probabilities outside 0..1 and non-finite coordinates,
// which slide_eval's reader would reject.
//
// Thread-safety: everything here is a pure, re-entrant function of its arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wsi/annotations.hpp"  // Point2 (level-0 pixels)
#include "wsi/metrics.hpp"      // Detection

namespace wsi {

struct ProbabilityGrid {
  int64_t cols = 0, rows = 0;
  double x0 = 0, y0 = 0;      // level-0 pixels of the top-left corner of cell (0, 0)
  double step = 0;            // level-0 pixels per cell (> 0)
  std::vector<float> values;  // row-major, cols * rows; NaN = not computed

  // Value of cell (i, j): column i in [0, cols), row j in [0, rows); not checked.
  float at(int64_t i, int64_t j) const { return values[static_cast<size_t>(j * cols + i)]; }
};

struct RegionParams {
  double threshold = 0.5;  // a cell is selected when value >= threshold (finite)
  int64_t min_cells = 1;   // regions with fewer cells are dropped (>= 1)
  double mpp = 0;          // µm per level-0 pixel, for area_um2; 0 = unknown (no area)
};

struct RegionPolygon {
  std::vector<Point2> outer;               // level-0, counter-clockwise (y-up sense), open
  std::vector<std::vector<Point2>> holes;  // level-0, clockwise (y-up sense), open; top-left first
  int64_t cells = 0;                       // selected cells in the region
  double max_probability = 0;              // over its cells
  double mean_probability = 0;             // over its cells
  std::optional<double> area_um2;          // cells * (step * mpp)^2; absent when mpp == 0
};

// The regions of `grid` (see above). Throws ConfigError for a bad grid or parameters.
std::vector<RegionPolygon> trace_regions(const ProbabilityGrid& grid, const RegionParams& params);

// QuPath GeoJSON of trace_regions(grid, params).
std::string regions_geojson(const ProbabilityGrid& grid, const RegionParams& params);
// QuPath GeoJSON of already traced regions, named "region 1".. in the order given.
std::string regions_geojson(const std::vector<RegionPolygon>& regions);

struct MaximaParams {
  double threshold = 0.1;  // a candidate needs value >= threshold (finite)
  int64_t radius = 1;      // cells: the window is (2r+1) x (2r+1); 0 = every selected cell (>= 0)
  double nms_um = 75;      // suppression distance in µm; 0 = no suppression
  double mpp = 0;          // µm per level-0 pixel; required (> 0) when nms_um > 0
};

// Local maxima of `grid` as detections at level-0 cell centres (see above). Throws ConfigError
// for a bad grid or parameters, e.g. nms_um > 0 without mpp.
std::vector<Detection> local_maxima(const ProbabilityGrid& grid, const MaximaParams& params);

// NAME.froc.csv text: one "prob,x,y\n" row per detection (x, y truncated to integers), in the
// order given; no header.
std::string froc_csv(const std::vector<Detection>& detections);

}  // namespace wsi
