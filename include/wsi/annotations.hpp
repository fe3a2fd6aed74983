// wsi/annotations.hpp — polygon ground truth: ASAP XML, Camelyon JSON and QuPath GeoJSON.
//
// Frames and units: vertices are LEVEL-0 pixels of the slide (double), after dividing the file's
// coordinates by AnnotationOptions::coordinate_scale (e.g. 32 when level-0 Camelyon annotations
// are used with a level-5 export of the slide).
//
// Classes: every shape is tumour, exclusion or ignored, decided by its group / class name
// (case-insensitive, see AnnotationOptions). Camelyon16 convention: exclusion shapes (`_2`) are
// non-tumour areas carved out of the tumour shapes, so they win over tumour where both overlap.
//
// Formats understood (detected from the content, not the extension):
//   * ASAP XML: <ASAP_Annotations><Annotations><Annotation PartOfGroup=".." Type="Polygon|Spline|
//     Rectangle"><Coordinates><Coordinate Order X Y/>...; Type="Dot"/"PointSet" are ignored.
//   * Camelyon JSON (NCRF style): {"positive":[{"name":..,"vertices":[[x,y],..]}],"negative":[..]};
//     positive = tumour, negative = exclusion.
//   * GeoJSON as QuPath exports it: a FeatureCollection, a single Feature or a bare array of
//     Features with Polygon / MultiPolygon geometry (rings: outer then holes); the class is
//     properties.classification.name, else properties.name. Features without a class count as
//     tumour only when AnnotationOptions::unclassified_is_tumour is set.
//
// Parsing details: ASAP coordinates are sorted by their Order attribute (a lone comma is read as
// the decimal point); each GeoJSON polygon (also each part of a MultiPolygon) becomes one Shape,
// and the repeated closing position of its rings is dropped. A ring with fewer than 3 vertices
// is dropped and counted in AnnotationSet::ignored; when it is the outer ring, the whole polygon
// (holes included) is dropped and counted once.
//
// Thread-safety: an AnnotationSet is an immutable value; rasterize() is re-entrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "wsi/region.hpp"

namespace wsi {

enum class ShapeClass : uint8_t { tumour = 1, exclusion = 2 };

struct Point2 {
  double x = 0, y = 0;  // level-0 pixels
};

// One polygon with optional holes. Inside = even-odd rule over all rings, so holes work for
// GeoJSON and self-touching ASAP outlines behave like ASAP draws them.
struct Shape {
  ShapeClass cls = ShapeClass::tumour;
  std::string name;                                   // annotation name, for messages
  std::string group;                                  // group / class name as written in the file
  std::vector<std::vector<Point2>> rings;             // each ring implicitly closed
  double min_x = 0, min_y = 0, max_x = 0, max_y = 0;  // bounding box of all rings (level-0)
};

// Recomputes shape.min_x..max_y from its rings (all zero when it has no vertex). The parsers do
// this; call it after building or editing a Shape by hand, because rasterize() culls on the
// stored box.
void compute_bbox(Shape& shape);

// Largest |coordinate| a parser accepts, in level-0 pixels after the coordinate scale: no slide
// is near 1e9 pixels wide, and the rasteriser's arithmetic stays exact far beyond it.
inline constexpr double kMaxAnnotationCoordinate = 1e9;

struct AnnotationOptions {
  double coordinate_scale = 1.0;  // file coordinates are divided by this
  std::vector<std::string> tumour_groups{"_0", "_1", "tumor", "tumour", "metastases", "metastasis", "carcinoma"};
  std::vector<std::string> exclusion_groups{"_2", "exclusion", "exclude", "excluded"};
  bool unclassified_is_tumour = false;
};

// A group of annotations as the file names it (ASAP's PartOfGroup, GeoJSON's classification or
// name, Camelyon's "positive"/"negative"; empty for annotations without one) and what its
// annotations were taken as: "tumour", "exclusion" or "ignored".
struct AnnotationGroup {
  std::string name;
  std::string taken_as;
  int64_t annotations = 0;  // annotations / features of this group, before geometry checks
};

struct AnnotationSet {
  std::filesystem::path source;
  std::string format;         // "asap-xml", "camelyon-json", "geojson"
  std::vector<Shape> shapes;  // tumour and exclusion shapes only
  int64_t ignored = 0;        // shapes skipped (other classes, points, degenerate rings)
  std::vector<AnnotationGroup> groups;  // in the order first seen

  int64_t tumour_shapes() const;

  bool empty() const { return shapes.empty(); }
  // Bounding box of all shapes (level-0); all zero when empty.
  double min_x() const;
  double min_y() const;
  double max_x() const;
  double max_y() const;
};

// Loads an annotation file. Throws UsageError when it does not exist, ConfigError naming the
// file and the element when it cannot be parsed or a coordinate is not a finite number.
AnnotationSet load_annotations(const std::filesystem::path& path, const AnnotationOptions& options = {});

// The groups in one line, for messages and summaries: "groups found: 'Tumor': 3 tumour;
// 'Lymphocytes': 2 ignored" (annotation counts); "no annotations" when there are none.
std::string describe_groups(const AnnotationSet& set);

// Throws ConfigError when `set` holds no tumour shape (a file whose groups are all unknown would
// otherwise label a whole slide normal): names the file, the groups found and what each was taken
// as, and the names that mean tumour. Callers skip it for slides declared free of tumour
// (--allow-no-tumour).
void require_tumour(const AnnotationSet& set, const AnnotationOptions& options = {});

// Parses from memory (format detected from the content); `source` is used in messages only.
AnnotationSet parse_annotations(const std::string& text, const std::filesystem::path& source,
                                const AnnotationOptions& options = {});

// Class codes written by rasterize().
inline constexpr uint8_t kClassNormal = 0;
inline constexpr uint8_t kClassTumour = 1;
inline constexpr uint8_t kClassExcluded = 2;

// Rasterises into a w x h grid whose pixel (i, j) is sampled at its CENTRE, level-0 point
// (x0 + (i + 0.5) * scale, y0 + (j + 0.5) * scale). Values: kClassExcluded where inside an
// exclusion shape, else kClassTumour inside a tumour shape, else kClassNormal. Shapes whose
// bounding box misses the window cost nothing (scanline fill per shape, culled by bbox).
GrayImage rasterize(const AnnotationSet& set, double x0, double y0, double scale, int64_t w, int64_t h);

}  // namespace wsi
