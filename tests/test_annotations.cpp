// Annotation parsing (ASAP XML, Camelyon JSON, GeoJSON) and rasterisation at pixel centres.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "wsi/annotations.hpp"
#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

using test::ScratchDir;

// ---- helpers ------------------------------------------------------------------------------------

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string asap(const std::string& annotations) {
  return "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n<Annotations>\n" + annotations +
         "</Annotations>\n<AnnotationGroups />\n</ASAP_Annotations>\n";
}

std::string asap_annotation(const std::string& name, const std::string& type, const std::string& group,
                            const std::vector<std::array<std::string, 3>>& coords) {  // Order, X, Y
  std::string s = "<Annotation Name=\"" + name + "\" Type=\"" + type + "\" PartOfGroup=\"" + group +
                  "\" Color=\"#F4FA58\">\n<Coordinates>\n";
  for (const auto& c : coords) s += "<Coordinate Order=\"" + c[0] + "\" X=\"" + c[1] + "\" Y=\"" + c[2] + "\" />\n";
  return s + "</Coordinates>\n</Annotation>\n";
}

Shape polygon(std::vector<std::vector<Point2>> rings, ShapeClass cls = ShapeClass::tumour) {
  Shape s;
  s.cls = cls;
  s.rings = std::move(rings);
  compute_bbox(s);
  return s;
}

std::vector<Point2> rect(double x0, double y0, double x1, double y1) {
  return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}};
}

AnnotationSet set_of(std::vector<Shape> shapes) {
  AnnotationSet a;
  a.shapes = std::move(shapes);
  return a;
}

int64_t count(const GrayImage& img, uint8_t v) { return std::count(img.pixels.begin(), img.pixels.end(), v); }

// Rows as text, '.' normal, '#' tumour, 'x' excluded: failures show the picture.
std::string picture(const GrayImage& img) {
  std::string s;
  for (int64_t y = 0; y < img.height; ++y) {
    for (int64_t x = 0; x < img.width; ++x) s += ".#x"[img.at(x, y)];
    s += '\n';
  }
  return s;
}

// Reference: the classic per-point crossing test (PNPOLY), even-odd over all rings, with the same
// half-open rule and crossing formula as the scanline code.
bool inside_reference(const Shape& s, double px, double py) {
  bool in = false;
  for (const auto& ring : s.rings)
    for (size_t k = 0; k < ring.size(); ++k) {
      Point2 a = ring[k], b = ring[(k + 1) % ring.size()];
      if (a.y == b.y) continue;
      if (b.y < a.y) std::swap(a, b);
      if (a.y <= py && py < b.y && px < a.x + (py - a.y) * ((b.x - a.x) / (b.y - a.y))) in = !in;
    }
  return in;
}

GrayImage rasterize_reference(const AnnotationSet& set, double x0, double y0, double scale, int64_t w, int64_t h) {
  GrayImage out(w, h);
  for (int64_t j = 0; j < h; ++j)
    for (int64_t i = 0; i < w; ++i) {
      const double px = x0 + (static_cast<double>(i) + 0.5) * scale;
      const double py = y0 + (static_cast<double>(j) + 0.5) * scale;
      for (const Shape& s : set.shapes)
        if (inside_reference(s, px, py))
          out.at(i, j) = std::max(out.at(i, j), s.cls == ShapeClass::exclusion ? kClassExcluded : kClassTumour);
    }
  return out;
}

double ring_area(const std::vector<Point2>& r) {
  double a = 0;
  for (size_t k = 0; k < r.size(); ++k) {
    const Point2& p = r[k];
    const Point2& q = r[(k + 1) % r.size()];
    a += p.x * q.y - q.x * p.y;
  }
  return std::abs(a) / 2;
}

template <typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// ---- ASAP XML -----------------------------------------------------------------------------------

TEST(AsapXml, MapsGroupsToClassesAndIgnoresOtherShapes) {
  const std::string xml = asap(
      asap_annotation("T1", "Polygon", "Tumor", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}) +
      asap_annotation("E", "Rectangle", "_2", {{{"0", "2", "2"}, {"1", "4", "2"}, {"2", "4", "5"}, {"3", "2", "5"}}}) +
      asap_annotation("S", "Spline", "_1", {{{"0", "1", "1"}, {"1", "3", "1"}, {"2", "3", "3"}}}) +
      asap_annotation("M", "Polygon", "METASTASES", {{{"0", "1", "1"}, {"1", "3", "1"}, {"2", "3", "3"}}}) +
      asap_annotation("D", "Dot", "Tumor", {{{"0", "5", "5"}}}) +
      asap_annotation("P", "PointSet", "Tumor", {{{"0", "5", "5"}, {"1", "6", "6"}, {"2", "7", "5"}}}) +
      asap_annotation("O", "Polygon", "Stroma", {{{"0", "0", "0"}, {"1", "1", "0"}, {"2", "1", "1"}}}) +
      asap_annotation("Two", "Polygon", "Tumor", {{{"0", "0", "0"}, {"1", "1", "0"}}}));
  const AnnotationSet a = parse_annotations(xml, "groups.xml");
  EXPECT_EQ(a.format, "asap-xml");
  EXPECT_EQ(a.source, "groups.xml");
  ASSERT_EQ(a.shapes.size(), 4u);
  EXPECT_EQ(a.ignored, 4);  // Dot, PointSet, other group, 2-vertex ring
  EXPECT_EQ(a.shapes[0].name, "T1");
  EXPECT_EQ(a.shapes[0].group, "Tumor");
  EXPECT_EQ(a.shapes[0].cls, ShapeClass::tumour);
  EXPECT_EQ(a.shapes[1].name, "E");
  EXPECT_EQ(a.shapes[1].cls, ShapeClass::exclusion);
  EXPECT_EQ(a.shapes[1].rings.at(0).size(), 4u);
  EXPECT_EQ(a.shapes[1].min_x, 2);
  EXPECT_EQ(a.shapes[1].max_y, 5);
  EXPECT_EQ(a.shapes[2].cls, ShapeClass::tumour);  // "_1", Spline: its vertices
  EXPECT_EQ(a.shapes[3].cls, ShapeClass::tumour);  // group names are case-insensitive
  EXPECT_EQ(a.min_x(), 0);
  EXPECT_EQ(a.min_y(), 0);
  EXPECT_EQ(a.max_x(), 10);
  EXPECT_EQ(a.max_y(), 10);
}

TEST(AnnotationGroups, EachGroupIsListedWithWhatItWasTakenAs) {
  const std::string xml = asap(
      asap_annotation("L1", "Polygon", "Lymphocytes", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}) +
      asap_annotation("L2", "Polygon", "Lymphocytes", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}) +
      asap_annotation("T", "Polygon", "Tumour", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}) +
      asap_annotation("E", "Polygon", "_2", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}));
  const AnnotationSet a = parse_annotations(xml, "groups.xml");
  ASSERT_EQ(a.groups.size(), 3u);
  EXPECT_EQ(describe_groups(a), "groups found: 'Lymphocytes': 2 ignored; 'Tumour': 1 tumour; '_2': 1 exclusion");
  EXPECT_EQ(a.tumour_shapes(), 1);
  EXPECT_NO_THROW(require_tumour(a));
  const AnnotationSet g = parse_annotations(
      R"({"type":"FeatureCollection","features":[{"type":"Feature","properties":{"classification":{"name":"Immune cells"}},)"
      R"("geometry":{"type":"Polygon","coordinates":[[[0,0],[9,0],[9,9]]]}},{"type":"Feature","properties":{},)"
      R"("geometry":{"type":"Polygon","coordinates":[[[0,0],[9,0],[9,9]]]}}]})",
      "cells.geojson");
  EXPECT_EQ(describe_groups(g), "groups found: 'Immune cells': 1 ignored; (no group): 1 ignored");
}

// A file whose groups are all unknown once gave an all-normal dataset without a word (issue 20).
TEST(AnnotationGroups, NoTumourShapeIsAnErrorListingTheGroups) {
  const std::string xml =
      asap(asap_annotation("L1", "Polygon", "Lymphocytes", {{{"0", "0", "0"}, {"1", "10", "0"}, {"2", "10", "10"}}}));
  const AnnotationSet a = parse_annotations(xml, "cells.xml");
  EXPECT_EQ(message_of([&] { require_tumour(a); }),
            "cells.xml: no tumour in the annotations (groups found: 'Lymphocytes': 1 ignored); groups named _0, _1, "
            "tumor, tumour, metastases, metastasis, carcinoma (any case) are tumour: rename the group, or pass "
            "--allow-no-tumour for a slide without tumour");
  EXPECT_THROW(require_tumour(a), ConfigError);
  EXPECT_THROW(require_tumour(parse_annotations(R"({"positive":[],"negative":[]})", "empty.json")), ConfigError);
  AnnotationOptions o;
  o.tumour_groups = {"Lymphocytes"};
  EXPECT_NO_THROW(require_tumour(parse_annotations(xml, "cells.xml", o), o));
}

TEST(AsapXml, SortsCoordinatesByOrderAttribute) {
  const std::string xml = asap(asap_annotation(
      "Tumor 0", "Polygon", "_0", {{{"2", "10", "10"}, {"0", "0", "0"}, {"3", "0", "10"}, {"1", "10", "0"}}}));
  const AnnotationSet a = parse_annotations(xml, "order.xml");
  ASSERT_EQ(a.shapes.size(), 1u);
  const auto& r = a.shapes[0].rings.at(0);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].x, 0);
  EXPECT_EQ(r[0].y, 0);
  EXPECT_EQ(r[1].x, 10);
  EXPECT_EQ(r[1].y, 0);
  EXPECT_EQ(r[2].x, 10);
  EXPECT_EQ(r[2].y, 10);
  EXPECT_EQ(r[3].x, 0);
  EXPECT_EQ(r[3].y, 10);
}

TEST(AsapXml, CustomGroupListsAndCoordinateScale) {
  AnnotationOptions o;
  o.tumour_groups = {"Cancer"};
  o.exclusion_groups = {"Fat"};
  o.coordinate_scale = 4;
  const std::string xml =
      asap(asap_annotation("a", "Polygon", "cancer", {{{"0", "0", "0"}, {"1", "40", "0"}, {"2", "40", "20"}}}) +
           asap_annotation("b", "Polygon", "FAT", {{{"0", "4", "4"}, {"1", "8", "4"}, {"2", "8", "8"}}}) +
           asap_annotation("c", "Polygon", "Tumor", {{{"0", "4", "4"}, {"1", "8", "4"}, {"2", "8", "8"}}}));
  const AnnotationSet a = parse_annotations(xml, "custom.xml", o);
  ASSERT_EQ(a.shapes.size(), 2u);
  EXPECT_EQ(a.ignored, 1);
  EXPECT_EQ(a.shapes[0].cls, ShapeClass::tumour);
  EXPECT_EQ(a.shapes[0].max_x, 10);
  EXPECT_EQ(a.shapes[0].max_y, 5);
  EXPECT_EQ(a.shapes[1].cls, ShapeClass::exclusion);
  EXPECT_EQ(a.shapes[1].min_x, 1);
}

TEST(AsapXml, DetectedAfterBomAndWhitespace) {
  const std::string xml =
      "\xEF\xBB\xBF \n\t" +
      asap(asap_annotation("t", "Polygon", "Tumor", {{{"0", "0", "0"}, {"1", "1", "0"}, {"2", "1", "1"}}}));
  EXPECT_EQ(parse_annotations(xml, "bom.xml").shapes.size(), 1u);
}

TEST(AsapXml, AcceptsCommaDecimalSeparator) {
  const std::string xml =
      asap(asap_annotation("t", "Polygon", "Tumor", {{{"0", "0,5", "0"}, {"1", "1", "0"}, {"2", "1", "2,25"}}}));
  const AnnotationSet a = parse_annotations(xml, "comma.xml");
  ASSERT_EQ(a.shapes.size(), 1u);
  EXPECT_EQ(a.shapes[0].min_x, 0.5);
  EXPECT_EQ(a.shapes[0].max_y, 2.25);
}

TEST(AsapXml, ParseErrorsPrintNothing) {
  testing::internal::CaptureStderr();
  EXPECT_THROW(parse_annotations("<ASAP_Annotations><Annotations>", "broken.xml"), ConfigError);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(AsapXml, RealCamelyon17FileHasThreeTumourPolygons) {
  const auto path = test::shared_testdata("annotations/camelyon17/patient_004_node_4.xml");
  if (!std::filesystem::exists(path)) WSI_SKIP_MISSING() << "shared test data absent: " << path;
  const AnnotationSet a = load_annotations(path);
  EXPECT_EQ(a.format, "asap-xml");
  ASSERT_EQ(a.shapes.size(), 3u);
  EXPECT_EQ(a.ignored, 0);
  const size_t sizes[] = {8, 15, 12};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a.shapes[i].cls, ShapeClass::tumour);
    EXPECT_EQ(a.shapes[i].name, "Annotation " + std::to_string(i));
    EXPECT_EQ(a.shapes[i].rings.at(0).size(), sizes[i]);
  }
  EXPECT_DOUBLE_EQ(a.shapes[0].min_x, 12597.7002);
  EXPECT_DOUBLE_EQ(a.shapes[0].max_x, 12938.4004);
  EXPECT_DOUBLE_EQ(a.shapes[0].min_y, 88778.1016);
  EXPECT_DOUBLE_EQ(a.shapes[0].max_y, 89160.6016);
  EXPECT_EQ(a.shapes[0].rings[0][0].x, 12711.2998);  // Order 0 first

  // The official Camelyon17 group name.
  const std::string renamed = replace_all(read_text(path), "PartOfGroup=\"Tumor\"", "PartOfGroup=\"metastases\"");
  ASSERT_NE(renamed.find("metastases"), std::string::npos);
  const AnnotationSet b = parse_annotations(renamed, path);
  ASSERT_EQ(b.shapes.size(), 3u);
  for (const Shape& s : b.shapes) EXPECT_EQ(s.cls, ShapeClass::tumour);
}

TEST(AsapXml, RoundTripsSynthWriterOutput) {
  std::vector<std::vector<PointD>> outlines(2);
  for (int k = 0; k < 500; ++k) {
    const double t = 2 * std::numbers::pi * k / 500;
    outlines[0].push_back({1234.5678 + 300.25 * std::cos(t), 9876.54321 + 200.125 * std::sin(t)});
  }
  outlines[1] = {{10.1, 20.2}, {50.3, 20.2}, {30.7, 60.9}};
  const AnnotationSet a = parse_annotations(asap_xml(outlines), "synth.xml");
  ASSERT_EQ(a.shapes.size(), outlines.size());
  for (size_t i = 0; i < outlines.size(); ++i) {
    const auto& ring = a.shapes[i].rings.at(0);
    ASSERT_EQ(ring.size(), outlines[i].size());
    double lo_x = 1e300, hi_x = -1e300, lo_y = 1e300, hi_y = -1e300;
    for (size_t k = 0; k < ring.size(); ++k) {
      EXPECT_NEAR(ring[k].x, outlines[i][k].x, 1e-5);
      EXPECT_NEAR(ring[k].y, outlines[i][k].y, 1e-5);
      lo_x = std::min(lo_x, outlines[i][k].x);
      hi_x = std::max(hi_x, outlines[i][k].x);
      lo_y = std::min(lo_y, outlines[i][k].y);
      hi_y = std::max(hi_y, outlines[i][k].y);
    }
    EXPECT_NEAR(a.shapes[i].min_x, lo_x, 1e-5);
    EXPECT_NEAR(a.shapes[i].max_x, hi_x, 1e-5);
    EXPECT_NEAR(a.shapes[i].min_y, lo_y, 1e-5);
    EXPECT_NEAR(a.shapes[i].max_y, hi_y, 1e-5);
    EXPECT_EQ(a.shapes[i].cls, ShapeClass::tumour);
  }
}

TEST(AsapXml, SynthSceneOutlinesRasteriseLikeItsMask) {
  SynthParams p;
  p.width = 3000;
  p.height = 2000;
  p.seed = 7;
  p.mpp = 0.5;
  p.tumours = 3;
  const SynthScene scene(p);
  const auto outlines = scene.tumour_outlines();
  ASSERT_FALSE(outlines.empty());
  const AnnotationSet a = parse_annotations(asap_xml(outlines), "scene.xml");
  ASSERT_EQ(a.shapes.size(), outlines.size());
  const double scale = 8;
  const GrayImage img = rasterize(a, 0, 0, scale, 3000 / 8, 2000 / 8);
  int64_t tumour = 0, differ = 0;
  for (int64_t j = 0; j < img.height; ++j)
    for (int64_t i = 0; i < img.width; ++i) {
      const bool truth =
          scene.is_tumour((static_cast<double>(i) + 0.5) * scale, (static_cast<double>(j) + 0.5) * scale);
      tumour += truth;
      differ += truth != (img.at(i, j) == kClassTumour);
    }
  ASSERT_GT(tumour, 100);
  EXPECT_LE(differ, tumour / 100) << "tumour px " << tumour;
}

// Each bad input and the exact message it must produce.
struct BadInput {
  const char* what;
  std::string text;
  std::string message;
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.what; }

class BadAnnotation : public testing::TestWithParam<BadInput> {};

TEST_P(BadAnnotation, ThrowsConfigErrorWithMessage) {
  const BadInput& b = GetParam();
  EXPECT_EQ(message_of([&] { parse_annotations(b.text, "bad.file"); }), b.message);
  EXPECT_THROW(parse_annotations(b.text, "bad.file"), ConfigError);
}

const std::string kTri3 = "<Coordinate Order=\"0\" X=\"0\" Y=\"0\" /><Coordinate Order=\"1\" X=\"1\" Y=\"0\" />";

INSTANTIATE_TEST_SUITE_P(
    Messages, BadAnnotation,
    testing::Values(
        BadInput{"xml_x_not_number",
                 asap(asap_annotation("Tumor 3", "Polygon", "Tumor",
                                      {{{"0", "0", "0"}, {"1", "1", "0"}, {"2", "abc", "1"}}})),
                 "bad.file: Annotation 'Tumor 3' coordinate 2: X is not a number ('abc')"},
        BadInput{"xml_y_nan",
                 asap(asap_annotation("Tumor 3", "Polygon", "Tumor", {{{"0", "0", "nan"}, {"1", "1", "0"}}})),
                 "bad.file: Annotation 'Tumor 3' coordinate 0: Y is not a finite number"},
        BadInput{"xml_x_inf", asap(asap_annotation("t", "Polygon", "_0", {{{"0", "0", "0"}, {"1", "inf", "0"}}})),
                 "bad.file: Annotation 't' coordinate 1: X is not a finite number"},
        BadInput{"xml_order_not_integer",
                 asap(asap_annotation("t", "Polygon", "_0", {{{"0", "0", "0"}, {"one", "1", "0"}}})),
                 "bad.file: Annotation 't' coordinate 1: Order is not an integer ('one')"},
        BadInput{"xml_y_missing",
                 asap("<Annotation Type=\"Polygon\" PartOfGroup=\"Tumor\"><Coordinates>" + kTri3 +
                      "<Coordinate Order=\"2\" X=\"1\" /></Coordinates></Annotation>"),
                 "bad.file: Annotation #0 coordinate 2: Y is missing"},
        BadInput{"xml_wrong_root", "<?xml version=\"1.0\"?><svg></svg>",
                 "bad.file: not ASAP XML: the root element is <svg>, expected <ASAP_Annotations>"},
        BadInput{"camelyon_y_string", R"({"positive":[{"name":"_0","vertices":[[0,0],[1,"2"]]}],"negative":[]})",
                 "bad.file: positive[0] '_0' vertex 1: y is not a number"},
        BadInput{"camelyon_vertex_short", R"({"positive":[],"negative":[{"vertices":[[0,0],[1]]}]})",
                 "bad.file: negative[0] vertex 1: expected an [x, y] array, got [1]"},
        BadInput{"camelyon_not_array", R"({"positive":{"name":"_0"}})",
                 "bad.file: \"positive\" must be an array of annotations"},
        BadInput{"camelyon_no_vertices", R"({"positive":[{"name":"_0"}]})",
                 "bad.file: positive[0] '_0': \"vertices\" is missing"},
        BadInput{
            "geojson_bad_ring",
            R"({"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"A",)"
            R"("classification":{"name":"Tumor"}},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,true]]]}}]})",
            "bad.file: feature 0 'A' ring 0 vertex 2: y is not a number"},
        BadInput{"geojson_no_features", R"({"type":"FeatureCollection"})",
                 "bad.file: GeoJSON FeatureCollection has no \"features\" array"},
        BadInput{"unknown_json", R"({"shapes":[]})",
                 "bad.file: JSON is not a known annotation format; supported formats: ASAP XML (<ASAP_Annotations>), "
                 "Camelyon JSON ({\"positive\": [...], \"negative\": [...]}) and GeoJSON (a FeatureCollection, a "
                 "Feature or an array of Features)"},
        BadInput{"not_annotations", "x,y\n1,2\n",
                 "bad.file: not an annotation file; supported formats: ASAP XML (<ASAP_Annotations>), Camelyon JSON "
                 "({\"positive\": [...], \"negative\": [...]}) and GeoJSON (a FeatureCollection, a Feature or an "
                 "array of Features)"},
        // Finite vertices whose differences overflow once crashed the rasteriser (issue 20).
        BadInput{"camelyon_vertex_beyond_any_slide",
                 R"({"positive":[{"name":"_0","vertices":[[-1e308,-1e308],[1e308,1e308],[0,100]]}],"negative":[]})",
                 "bad.file: positive[0] '_0' vertex 0: x = -1e+308 lies outside any slide (level-0 coordinates "
                 "must be within +-1e9 pixels after --annotation-scale); check the file's coordinate unit"},
        BadInput{"xml_vertex_beyond_any_slide",
                 asap(asap_annotation("t", "Polygon", "_0", {{{"0", "0", "1e23"}, {"1", "1", "0"}, {"2", "0", "1"}}})),
                 "bad.file: Annotation 't' coordinate 0: Y = 1e+23 lies outside any slide (level-0 coordinates "
                 "must be within +-1e9 pixels after --annotation-scale); check the file's coordinate unit"},
        BadInput{"geojson_vertex_beyond_any_slide",
                 R"({"type":"Feature","properties":{"name":"A","classification":{"name":"Tumor"}},)"
                 R"("geometry":{"type":"Polygon","coordinates":[[[0,0],[1e300,0],[1,1]]]}})",
                 "bad.file: feature 0 'A' ring 0 vertex 1: x = 1e+300 lies outside any slide (level-0 coordinates "
                 "must be within +-1e9 pixels after --annotation-scale); check the file's coordinate unit"},
        BadInput{"empty", " \n",
                 "bad.file: the file is empty; supported formats: ASAP XML (<ASAP_Annotations>), Camelyon JSON "
                 "({\"positive\": [...], \"negative\": [...]}) and GeoJSON (a FeatureCollection, a Feature or an "
                 "array of Features)"}),
    [](const testing::TestParamInfo<BadInput>& i) { return std::string(i.param.what); });

TEST(AnnotationErrors, MalformedXmlNamesFileAndLine) {
  const std::string msg = message_of([] {
    parse_annotations("<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n<Annotations>\n</ASAP_Annotations>\n", "x.xml");
  });
  // The first error (the mismatched tag), not the last.
  EXPECT_EQ(msg.rfind("x.xml: invalid XML at line 4: Opening and ending tag mismatch", 0), 0u) << msg;
}

TEST(AnnotationErrors, MalformedJsonNamesFile) {
  const std::string msg = message_of([] { parse_annotations("{\"positive\": [", "x.json"); });
  EXPECT_EQ(msg.rfind("x.json: invalid JSON: ", 0), 0u) << msg;
  EXPECT_THROW(parse_annotations("{\"positive\": [", "x.json"), ConfigError);
}

TEST(AnnotationErrors, NumberOverflowInJsonIsConfigError) {
  EXPECT_THROW(parse_annotations(R"({"positive":[{"vertices":[[0,0],[1e999,0],[1,1]]}]})", "x.json"), ConfigError);
}

TEST(AnnotationErrors, NameThatIsNotUtf8NamesTheFile) {
  const std::string text = "{\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Tumor\xff\"}},"
                           "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[9,0],[9,9]]]}}";
  const std::string msg = message_of([&] { parse_annotations(text, "x.geojson"); });
  EXPECT_EQ(msg.rfind("x.geojson: invalid JSON: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("ill-formed UTF-8 byte"), std::string::npos) << msg;
  EXPECT_THROW(parse_annotations(text, "x.geojson"), ConfigError);
}

// Copying and dumping a JSON value recurse: a few hundred thousand '[' (in a vertex, which the
// error message quotes, or in properties, which are copied) overflowed the stack. Found while
// writing the fuzz targets (issue 20), on inputs larger than their 8 KB.
TEST(AnnotationErrors, JsonNestedTooDeepIsConfigErrorNotAStackOverflow) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::string refused =
      "x.json: JSON nested more than 512 levels deep (arrays and objects); annotation files nest a handful";
  EXPECT_EQ(message_of([&] { parse_annotations(R"({"positive":[{"vertices":[)" + deep + "]}]}", "x.json"); }), refused);
  EXPECT_EQ(message_of([&] {
              parse_annotations(R"({"type":"Feature","properties":)" + deep + R"(,"geometry":null})", "x.json");
            }),
            refused);
  // 512 levels are parsed; brackets inside strings do not count.
  const std::string vertex = std::string(508, '[') + std::string(508, ']');
  EXPECT_EQ(message_of([&] {
              parse_annotations(R"({"positive":[{"name":"[[[[","vertices":[)" + vertex + "]}]}", "x.json");
            }).rfind("x.json: positive[0] '[[[[' vertex 0: expected an [x, y] array", 0),
            0u);
  EXPECT_EQ(message_of([&] { parse_annotations(R"({"positive":[{"vertices":[[)" + vertex + "]]}]}", "x.json"); }),
            refused);
}

TEST(AnnotationErrors, CoordinatesAtTheLimitAreAccepted) {
  const auto set = parse_annotations(R"({"positive":[{"vertices":[[-1e9,-1e9],[1e9,0],[0,1e9]]}]})", "x.json");
  ASSERT_EQ(set.shapes.size(), 1u);
  EXPECT_EQ(set.max_x(), 1e9);
}

TEST(AnnotationErrors, BadCoordinateScaleIsConfigError) {
  AnnotationOptions o;
  o.coordinate_scale = 0;
  EXPECT_THROW(parse_annotations(R"({"positive":[]})", "x.json", o), ConfigError);
}

TEST(AnnotationErrors, MissingFileIsUsageError) {
  const ScratchDir dir;
  const auto path = dir / "nope.xml";
  EXPECT_THROW(load_annotations(path), UsageError);
  EXPECT_EQ(message_of([&] { load_annotations(path); }), path.string() + ": no such annotation file");
  EXPECT_THROW(load_annotations(dir.path()), UsageError);
}

TEST(AnnotationErrors, LoadedFileErrorNamesThePath) {
  const ScratchDir dir;
  const auto path = dir / "annotations.xml";
  write_text(path, asap(asap_annotation("Tumor 3", "Polygon", "Tumor", {{{"0", "0", "0"}, {"1", "1", "x"}}})));
  EXPECT_EQ(message_of([&] { load_annotations(path); }),
            path.string() + ": Annotation 'Tumor 3' coordinate 1: Y is not a number ('x')");
}

// ---- Camelyon JSON ------------------------------------------------------------------------------

TEST(CamelyonJson, PositiveIsTumourNegativeIsExclusion) {
  const std::string doc = R"({
    "positive": [{"name": "_0", "vertices": [[0, 0], [10, 0], [10, 10], [0, 10]]},
                 {"name": "_1", "vertices": [[20.5, 30], [40, 30], [30, 50.25]]},
                 {"name": "_x", "vertices": [[1, 1], [2, 2]]}],
    "negative": [{"name": "_2", "vertices": [[2, 2], [4, 2], [4, 4]]}]})";
  const AnnotationSet a = parse_annotations(doc, "c.json");
  EXPECT_EQ(a.format, "camelyon-json");
  ASSERT_EQ(a.shapes.size(), 3u);
  EXPECT_EQ(a.ignored, 1);  // the 2-vertex ring
  EXPECT_EQ(a.shapes[0].name, "_0");
  EXPECT_EQ(a.shapes[0].cls, ShapeClass::tumour);
  EXPECT_EQ(a.shapes[0].rings.at(0).size(), 4u);
  EXPECT_EQ(a.shapes[1].min_x, 20.5);
  EXPECT_EQ(a.shapes[1].max_y, 50.25);
  EXPECT_EQ(a.shapes[2].name, "_2");
  EXPECT_EQ(a.shapes[2].cls, ShapeClass::exclusion);
  EXPECT_EQ(a.max_x(), 40);

  AnnotationOptions o;
  o.coordinate_scale = 2;
  const AnnotationSet h = parse_annotations(doc, "c.json", o);
  EXPECT_EQ(h.shapes[1].min_x, 10.25);
  EXPECT_EQ(h.shapes[1].max_y, 25.125);
  EXPECT_EQ(h.max_x(), 20);
}

TEST(CamelyonJson, EmptyListsGiveEmptySet) {
  const AnnotationSet a = parse_annotations(R"({"positive": [], "negative": []})", "e.json");
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.min_x(), 0);
  EXPECT_EQ(a.max_y(), 0);
}

TEST(CamelyonJson, RealTumor001HasTwoLesions) {
  const auto path = test::shared_testdata("annotations/camelyon16/Tumor_001.json");
  if (!std::filesystem::exists(path)) WSI_SKIP_MISSING() << "shared test data absent: " << path;
  const AnnotationSet a = load_annotations(path);
  EXPECT_EQ(a.format, "camelyon-json");
  ASSERT_EQ(a.shapes.size(), 2u);
  EXPECT_EQ(a.ignored, 0);
  EXPECT_EQ(a.shapes[0].name, "_0");
  EXPECT_EQ(a.shapes[1].name, "_1");
  EXPECT_EQ(a.shapes[0].rings.at(0).size(), 855u);
  EXPECT_EQ(a.shapes[1].rings.at(0).size(), 1657u);
  for (const Shape& s : a.shapes) EXPECT_EQ(s.cls, ShapeClass::tumour);
  EXPECT_EQ(a.shapes[0].min_x, 69914);
  EXPECT_EQ(a.shapes[0].max_x, 72272);
  EXPECT_EQ(a.shapes[0].min_y, 131750);
  EXPECT_EQ(a.shapes[0].max_y, 134592);
  EXPECT_EQ(a.shapes[1].min_x, 69986);
  EXPECT_EQ(a.shapes[1].max_x, 73235);
  EXPECT_EQ(a.shapes[1].min_y, 122608);
  EXPECT_EQ(a.shapes[1].max_y, 127842);

  AnnotationOptions o;
  o.coordinate_scale = 32;
  const AnnotationSet s = load_annotations(path, o);
  ASSERT_EQ(s.shapes.size(), 2u);
  EXPECT_DOUBLE_EQ(s.shapes[0].min_x, 69914.0 / 32);
  EXPECT_DOUBLE_EQ(s.shapes[0].max_y, 134592.0 / 32);
  EXPECT_DOUBLE_EQ(s.shapes[1].min_y, 122608.0 / 32);
  EXPECT_DOUBLE_EQ(s.shapes[1].max_x, 73235.0 / 32);

  // Whole level-5 slide (3072x7168): the tumour pixels match the polygons' area.
  const GrayImage img = rasterize(s, 0, 0, 1, 3072, 7168);
  const double area = ring_area(s.shapes[0].rings[0]) + ring_area(s.shapes[1].rings[0]);
  EXPECT_NEAR(static_cast<double>(count(img, kClassTumour)), area, area * 0.02);
  // Around the lesions, pixel for pixel against the per-point reference.
  const GrayImage near = rasterize(s, 2176, 3824, 1, 120, 390);
  EXPECT_GT(count(near, kClassTumour), 1000);
  EXPECT_EQ(near.pixels, rasterize_reference(s, 2176, 3824, 1, 120, 390).pixels);
}

// ---- GeoJSON ------------------------------------------------------------------------------------

const std::string kGeoJson = R"({
  "type": "FeatureCollection",
  "features": [
    {"type": "Feature", "id": "a",
     "geometry": {"type": "Polygon", "coordinates": [[[0,0],[10,0],[10,10],[0,10],[0,0]],
                                                     [[3,3],[7,3],[7,7],[3,7],[3,3]]]},
     "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}},
    {"type": "Feature",
     "geometry": {"type": "MultiPolygon", "coordinates": [[[[20,20],[22,20],[22,22],[20,22],[20,20]]],
                                                          [[[30,30],[33,30],[33,33],[30,33],[30,30]]]]},
     "properties": {"name": "Tumour"}},
    {"type": "Feature",
     "geometry": {"type": "Polygon", "coordinates": [[[50,50],[60,50],[60,60],[50,50]]]},
     "properties": {"objectType": "annotation"}},
    {"type": "Feature",
     "geometry": {"type": "LineString", "coordinates": [[0,0],[5,5]]},
     "properties": {"classification": {"name": "Tumor"}}},
    {"type": "Feature",
     "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]},
     "properties": {"classification": {"name": "Stroma"}}},
    {"type": "Feature",
     "geometry": {"type": "Polygon", "coordinates": [[[4,4],[6,4],[6,6],[4,6],[4,4]]]},
     "properties": {"name": "ignored name", "classification": {"name": "Exclusion"}}}
  ]})";

TEST(GeoJson, PolygonWithHoleMultiPolygonAndClasses) {
  const AnnotationSet a = parse_annotations(kGeoJson, "q.geojson");
  EXPECT_EQ(a.format, "geojson");
  ASSERT_EQ(a.shapes.size(), 4u);
  EXPECT_EQ(a.ignored, 3);  // unclassified, LineString, Stroma
  const Shape& holed = a.shapes[0];
  EXPECT_EQ(holed.cls, ShapeClass::tumour);
  EXPECT_EQ(holed.group, "Tumor");
  ASSERT_EQ(holed.rings.size(), 2u);
  EXPECT_EQ(holed.rings[0].size(), 4u);  // closing position dropped
  EXPECT_EQ(holed.rings[1].size(), 4u);
  EXPECT_EQ(holed.max_x, 10);
  // MultiPolygon: one Shape per polygon, class from properties.name.
  EXPECT_EQ(a.shapes[1].group, "Tumour");
  EXPECT_EQ(a.shapes[1].max_x, 22);
  EXPECT_EQ(a.shapes[2].min_x, 30);
  EXPECT_EQ(a.shapes[2].max_y, 33);
  // classification wins over name.
  EXPECT_EQ(a.shapes[3].cls, ShapeClass::exclusion);
  EXPECT_EQ(a.shapes[3].name, "ignored name");

  const GrayImage img = rasterize(a, 0, 0, 1, 10, 10);
  EXPECT_EQ(count(img, kClassTumour), 100 - 16);
  EXPECT_EQ(count(img, kClassExcluded), 4);  // the exclusion square lies in the hole: still excluded
  EXPECT_EQ(img.at(5, 5), kClassExcluded);
  EXPECT_EQ(img.at(3, 3), kClassNormal);
  EXPECT_EQ(img.at(2, 2), kClassTumour);
}

TEST(GeoJson, UnclassifiedIsTumourWhenAsked) {
  AnnotationOptions o;
  o.unclassified_is_tumour = true;
  const AnnotationSet a = parse_annotations(kGeoJson, "q.geojson", o);
  ASSERT_EQ(a.shapes.size(), 5u);
  EXPECT_EQ(a.ignored, 2);
  EXPECT_EQ(a.shapes[3].min_x, 50);
  EXPECT_EQ(a.shapes[3].rings.at(0).size(), 3u);
  EXPECT_EQ(a.shapes[3].cls, ShapeClass::tumour);
}

TEST(GeoJson, SingleFeatureAndBareArray) {
  const std::string f = R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,0]]]},)"
                        R"("properties":{"classification":{"name":"tumor"}}})";
  const AnnotationSet one = parse_annotations(f, "f.geojson");
  EXPECT_EQ(one.format, "geojson");
  EXPECT_EQ(one.shapes.size(), 1u);
  const AnnotationSet arr = parse_annotations("[" + f + "," + f + "]", "a.geojson");
  EXPECT_EQ(arr.format, "geojson");
  EXPECT_EQ(arr.shapes.size(), 2u);
}

TEST(GeoJson, DegenerateRingsAreDroppedAndCounted) {
  const std::string doc = R"({"type":"FeatureCollection","features":[
    {"type":"Feature","properties":{"name":"tumor"},"geometry":{"type":"Polygon","coordinates":
      [[[0,0],[9,0],[0,0]], [[1,1],[2,1],[2,2],[1,1]]]}},
    {"type":"Feature","properties":{"name":"tumor"},"geometry":{"type":"Polygon","coordinates":
      [[[0,0],[9,0],[9,9],[0,0]], [[1,1],[2,1],[1,1]], [[3,1],[4,1],[4,2],[3,1]]]}},
    {"type":"Feature","properties":{"name":"tumor"},"geometry":{"type":"Polygon","coordinates":[]}},
    {"type":"Feature","properties":{"name":"tumor"},"geometry":null}]})";
  const AnnotationSet a = parse_annotations(doc, "d.geojson");
  ASSERT_EQ(a.shapes.size(), 1u);  // the second feature, less its 2-vertex hole
  EXPECT_EQ(a.shapes[0].rings.size(), 2u);
  EXPECT_EQ(a.ignored, 4);  // outline-less polygon (with its hole), the hole, no rings, null geometry
}

TEST(GeoJson, LoadsFromFile) {
  const ScratchDir dir;
  write_text(dir / "qupath.geojson", kGeoJson);
  AnnotationOptions o;
  o.coordinate_scale = 2;
  const AnnotationSet a = load_annotations(dir / "qupath.geojson", o);
  EXPECT_EQ(a.source, dir / "qupath.geojson");
  ASSERT_EQ(a.shapes.size(), 4u);
  EXPECT_EQ(a.shapes[0].max_x, 5);
}

// ---- rasterize ----------------------------------------------------------------------------------

TEST(Rasterize, RectangleCountsPixelCentresInside) {
  // [2, 6) x [1, 4): centres 2.5..5.5 by 1.5..3.5 -> 4 x 3.
  const GrayImage a = rasterize(set_of({polygon({rect(2, 1, 6, 4)})}), 0, 0, 1, 10, 8);
  EXPECT_EQ(a.width, 10);
  EXPECT_EQ(a.height, 8);
  EXPECT_EQ(count(a, kClassTumour), 12);
  EXPECT_EQ(a.at(2, 1), kClassTumour);
  EXPECT_EQ(a.at(5, 3), kClassTumour);
  EXPECT_EQ(a.at(6, 3), kClassNormal);
  EXPECT_EQ(a.at(1, 1), kClassNormal);
  EXPECT_EQ(a.at(5, 4), kClassNormal);
}

TEST(Rasterize, EdgesThroughCentresAreLeftTopInclusiveRightBottomExclusive) {
  // [2.5, 6.5] x [1.5, 3.5]: centres on the left/top edge count, on the right/bottom edge do not.
  const GrayImage a = rasterize(set_of({polygon({rect(2.5, 1.5, 6.5, 3.5)})}), 0, 0, 1, 10, 8);
  EXPECT_EQ(picture(a),
            "..........\n"
            "..####....\n"
            "..####....\n"
            "..........\n"
            "..........\n"
            "..........\n"
            "..........\n"
            "..........\n");
}

TEST(Rasterize, DiamondWithVerticesOnScanlines) {
  // Vertices on pixel centres: rows through a vertex must not open stray spans.
  const AnnotationSet s = set_of({polygon({{{5.5, 1.5}, {9.5, 5.5}, {5.5, 9.5}, {1.5, 5.5}}})});
  const GrayImage a = rasterize(s, 0, 0, 1, 11, 11);
  EXPECT_EQ(picture(a),
            "...........\n"
            "...........\n"
            "....##.....\n"
            "...####....\n"
            "..######...\n"
            ".########..\n"
            "..######...\n"
            "...####....\n"
            "....##.....\n"
            "...........\n"
            "...........\n");
  EXPECT_EQ(count(a, kClassTumour), 32);
}

TEST(Rasterize, ConcaveLShapeExact) {
  const AnnotationSet s = set_of({polygon({{{0, 0}, {6, 0}, {6, 2}, {2, 2}, {2, 6}, {0, 6}}})});
  const GrayImage a = rasterize(s, 0, 0, 1, 8, 8);
  EXPECT_EQ(picture(a),
            "######..\n"
            "######..\n"
            "##......\n"
            "##......\n"
            "##......\n"
            "##......\n"
            "........\n"
            "........\n");
  // Clockwise or counter-clockwise makes no difference.
  const AnnotationSet r = set_of({polygon({{{0, 6}, {2, 6}, {2, 2}, {6, 2}, {6, 0}, {0, 0}}})});
  EXPECT_EQ(rasterize(r, 0, 0, 1, 8, 8).pixels, a.pixels);
}

TEST(Rasterize, TriangleAreaOnFineGrid) {
  const std::vector<Point2> tri{{10.3, 20.7}, {900.1, 100.2}, {400.6, 950.9}};
  const AnnotationSet s = set_of({polygon({tri})});
  const GrayImage a = rasterize(s, 0, 0, 1, 1000, 1000);
  const double area = ring_area(tri);  // 373 817.3...
  double perimeter = 0;
  for (size_t k = 0; k < 3; ++k) perimeter += std::hypot(tri[(k + 1) % 3].x - tri[k].x, tri[(k + 1) % 3].y - tri[k].y);
  EXPECT_NEAR(static_cast<double>(count(a, kClassTumour)), area, perimeter / 4);
  EXPECT_EQ(a.pixels, rasterize_reference(s, 0, 0, 1, 1000, 1000).pixels);
}

TEST(Rasterize, PolygonWithHole) {
  const AnnotationSet s = set_of({polygon({rect(0, 0, 10, 10), rect(3, 3, 7, 7)})});
  const GrayImage a = rasterize(s, 0, 0, 1, 10, 10);
  EXPECT_EQ(count(a, kClassTumour), 84);
  EXPECT_EQ(a.at(3, 3), kClassNormal);
  EXPECT_EQ(a.at(6, 6), kClassNormal);
  EXPECT_EQ(a.at(7, 7), kClassTumour);
  EXPECT_EQ(a.at(2, 5), kClassTumour);
}

TEST(Rasterize, ExclusionWinsOverTumourInAnyOrder) {
  const Shape tumour = polygon({rect(0, 0, 10, 10)});
  const Shape excl = polygon({rect(5, 0, 10, 10)}, ShapeClass::exclusion);
  for (const auto& shapes : {std::vector<Shape>{tumour, excl}, std::vector<Shape>{excl, tumour}}) {
    const GrayImage a = rasterize(set_of(shapes), 0, 0, 1, 10, 10);
    EXPECT_EQ(count(a, kClassTumour), 50);
    EXPECT_EQ(count(a, kClassExcluded), 50);
    EXPECT_EQ(a.at(4, 9), kClassTumour);
    EXPECT_EQ(a.at(5, 0), kClassExcluded);
  }
}

TEST(Rasterize, OverlappingTumourShapesUnite) {
  const GrayImage a = rasterize(set_of({polygon({rect(0, 0, 6, 4)}), polygon({rect(3, 0, 9, 4)})}), 0, 0, 1, 10, 4);
  EXPECT_EQ(count(a, kClassTumour), 36);
}

TEST(Rasterize, ScaleAndOffsetOrigin) {
  // Level-0 rectangle [1000, 1400) x [2000, 2200); window at (900, 1950), 50 level-0 px per pixel.
  // Centres x = 925 + 50 i -> i = 2..9; y = 1975 + 50 j -> j = 1..4.
  const GrayImage a = rasterize(set_of({polygon({rect(1000, 2000, 1400, 2200)})}), 900, 1950, 50, 12, 8);
  EXPECT_EQ(count(a, kClassTumour), 32);
  for (int64_t j = 0; j < 8; ++j)
    for (int64_t i = 0; i < 12; ++i)
      EXPECT_EQ(a.at(i, j), (i >= 2 && i <= 9 && j >= 1 && j <= 4) ? kClassTumour : kClassNormal) << i << "," << j;
}

TEST(Rasterize, WindowOutsideShapesIsAllNormal) {
  const AnnotationSet s =
      set_of({polygon({rect(0, 0, 100, 100)}), polygon({rect(10, 10, 20, 20)}, ShapeClass::exclusion)});
  for (const auto& [x0, y0] :
       {std::pair{200.0, 0.0}, std::pair{-500.0, 0.0}, std::pair{0.0, 100.0}, std::pair{0.0, -64.0}}) {
    const GrayImage a = rasterize(s, x0, y0, 1, 64, 64);
    EXPECT_EQ(count(a, kClassNormal), 64 * 64) << x0 << "," << y0;
  }
  EXPECT_EQ(count(rasterize(AnnotationSet{}, 0, 0, 1, 5, 5), kClassNormal), 25);
}

TEST(Rasterize, WindowPartlyInsideIsClipped) {
  const GrayImage a = rasterize(set_of({polygon({rect(-100, -100, 3, 2)})}), 0, 0, 1, 6, 6);
  EXPECT_EQ(count(a, kClassTumour), 6);
  const GrayImage b = rasterize(set_of({polygon({rect(-100, -100, 300, 200)})}), 0, 0, 1, 6, 6);
  EXPECT_EQ(count(b, kClassTumour), 36);
}

TEST(Rasterize, EmptyAndInvalidWindows) {
  const AnnotationSet s = set_of({polygon({rect(0, 0, 10, 10)})});
  EXPECT_TRUE(rasterize(s, 0, 0, 1, 0, 0).pixels.empty());
  EXPECT_THROW(rasterize(s, 0, 0, 0, 4, 4), ConfigError);
  EXPECT_THROW(rasterize(s, 0, 0, 1, -1, 4), ConfigError);
  EXPECT_THROW(rasterize(s, 0, 0, std::nan(""), 4, 4), ConfigError);
}

TEST(Rasterize, MatchesPointInPolygonReferenceOnRandomPolygons) {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> u(-20.0, 120.0);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<Shape> shapes;
    for (int k = 0; k < 3; ++k) {
      std::vector<Point2> ring(5 + static_cast<size_t>(trial % 9));
      for (auto& p : ring) p = {u(rng), u(rng)};  // self-intersecting: the even-odd rule decides
      shapes.push_back(polygon({ring}, k == 2 ? ShapeClass::exclusion : ShapeClass::tumour));
    }
    const AnnotationSet s = set_of(shapes);
    const double scale = 0.75 + 0.1 * trial;
    EXPECT_EQ(picture(rasterize(s, 3.3, -1.7, scale, 90, 70)),
              picture(rasterize_reference(s, 3.3, -1.7, scale, 90, 70)))
        << "trial " << trial;
  }
}

// A shape built by hand (no parser bounds) whose edge slope overflows: rows are still filled or
// skipped, never indexed out of range.
TEST(Rasterize, EdgeWhoseSlopeOverflowsNeitherCrashesNorPaintsOutside) {
  AnnotationSet set;
  Shape s;
  s.rings.push_back({{0, 0}, {1e300, 1e-300}, {0, 8}});
  s.rings.push_back({{-1e308, -1e308}, {1e308, 1e308}, {0, 100}});
  compute_bbox(s);
  set.shapes.push_back(s);
  const GrayImage img = rasterize(set, 0, 0, 1, 16, 16);
  EXPECT_EQ(img.pixels.size(), 256u);
}

TEST(Rasterize, LargePolygonOverPatchRowIsFast) {
  // 10 000-vertex wobbly outline ~60 000 px across, like a big Camelyon lesion at level 0.
  std::vector<Point2> ring(10000);
  for (size_t k = 0; k < ring.size(); ++k) {
    const double t = 2 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(ring.size());
    const double r = 30000 + 800 * std::sin(37 * t);
    ring[k] = {50000 + r * std::cos(t), 50000 + r * std::sin(t)};
  }
  const AnnotationSet s = set_of({polygon({ring})});
  GrayImage a;
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kRuns = 20;
  for (int k = 0; k < kRuns; ++k) a = rasterize(s, 18000, 49952, 1, 4096, 96);  // crosses the left edge
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / kRuns;
  RecordProperty("rasterize_4096x96_10k_vertices_ms", std::to_string(ms));
  EXPECT_LT(ms, 50.0);                      // ~0.1 ms in Release; generous for sanitizer builds
  EXPECT_EQ(a.at(0, 48), kClassNormal);     // x = 18000.5, outside the outline (r >= 29200)
  EXPECT_EQ(a.at(4095, 48), kClassTumour);  // x = 22095.5, inside
  const GrayImage ref = rasterize_reference(s, 18000, 49952 + 47, 1, 4096, 2);  // rows 47 and 48
  EXPECT_TRUE(std::equal(ref.pixels.begin(), ref.pixels.end(), a.pixels.begin() + 47 * 4096));
}

}  // namespace
}  // namespace wsi
