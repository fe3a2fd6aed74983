// Annotation parsers: ASAP XML (libxml2), Camelyon JSON and GeoJSON (nlohmann_json).
#include "core/json_text.hpp"
#include "wsi/annotations.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "wsi/error.hpp"

namespace wsi {

void compute_bbox(Shape& shape) {
  double lo_x = std::numeric_limits<double>::infinity(), lo_y = lo_x;
  double hi_x = -lo_x, hi_y = -lo_x;
  for (const auto& ring : shape.rings)
    for (const Point2& p : ring) {
      lo_x = std::min(lo_x, p.x);
      lo_y = std::min(lo_y, p.y);
      hi_x = std::max(hi_x, p.x);
      hi_y = std::max(hi_y, p.y);
    }
  if (lo_x > hi_x) lo_x = lo_y = hi_x = hi_y = 0;
  shape.min_x = lo_x;
  shape.min_y = lo_y;
  shape.max_x = hi_x;
  shape.max_y = hi_y;
}

namespace {
template <typename F>
double set_bound(const AnnotationSet& set, F pick, bool low) {
  if (set.shapes.empty()) return 0;
  double v = pick(set.shapes.front());
  for (const Shape& s : set.shapes) v = low ? std::min(v, pick(s)) : std::max(v, pick(s));
  return v;
}
}  // namespace

double AnnotationSet::min_x() const {
  return set_bound(
      *this, [](const Shape& s) { return s.min_x; }, true);
}
double AnnotationSet::min_y() const {
  return set_bound(
      *this, [](const Shape& s) { return s.min_y; }, true);
}
double AnnotationSet::max_x() const {
  return set_bound(
      *this, [](const Shape& s) { return s.max_x; }, false);
}
double AnnotationSet::max_y() const {
  return set_bound(
      *this, [](const Shape& s) { return s.max_y; }, false);
}

namespace {

using nlohmann::json;

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

std::string trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return std::string(s);
}

bool in_list(const std::string& name, const std::vector<std::string>& list) {
  const std::string l = lower(trim(name));
  return std::any_of(list.begin(), list.end(), [&](const std::string& g) { return lower(trim(g)) == l; });
}

// nullopt = neither tumour nor exclusion (the shape is ignored).
std::optional<ShapeClass> classify(const std::optional<std::string>& group, const AnnotationOptions& options) {
  if (!group || trim(*group).empty())
    return options.unclassified_is_tumour ? std::optional(ShapeClass::tumour) : std::nullopt;
  if (in_list(*group, options.exclusion_groups)) return ShapeClass::exclusion;
  if (in_list(*group, options.tumour_groups)) return ShapeClass::tumour;
  return std::nullopt;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Shared by all formats: scale, finite check, degenerate-ring filter, bbox.
class Builder {
 public:
  Builder(const std::filesystem::path& source, const AnnotationOptions& options, std::string format)
      : options_(options), file_(source.string()) {
    set_.source = source;
    set_.format = std::move(format);
    if (!std::isfinite(options.coordinate_scale) || options.coordinate_scale <= 0) {
      std::ostringstream m;
      m << source.string() << ": coordinate scale must be a positive finite number (got " << options.coordinate_scale
        << ")";
      throw ConfigError(m.str());
    }
  }

  const AnnotationOptions& options() const { return options_; }
  const std::string& file() const { return file_; }
  void ignore(int64_t n = 1) { set_.ignored += n; }
  // Counts one annotation of `group` taken as `cls` (nullopt: ignored).
  void note_group(const std::optional<std::string>& group, std::optional<ShapeClass> cls) {
    const std::string name = group.value_or("");
    const char* taken = !cls ? "ignored" : *cls == ShapeClass::tumour ? "tumour" : "exclusion";
    auto it = std::find_if(set_.groups.begin(), set_.groups.end(),
                           [&](const AnnotationGroup& g) { return g.name == name && g.taken_as == taken; });
    if (it == set_.groups.end()) it = set_.groups.insert(set_.groups.end(), AnnotationGroup{name, taken, 0});
    ++it->annotations;
  }

  // `where` locates the value for messages, e.g. "Annotation 'Tumor 3' coordinate 12".
  double coordinate(double v, const std::string& where, const char* axis) const {
    if (!std::isfinite(v)) throw ConfigError(file() + ": " + where + ": " + axis + " is not a finite number");
    const double scaled = v / options_.coordinate_scale;
    if (std::abs(scaled) > kMaxAnnotationCoordinate) {
      std::ostringstream m;
      m << file() << ": " << where << ": " << axis << " = " << v << " lies outside any slide (level-0 coordinates "
        << "must be within +-1e9 pixels after --annotation-scale); check the file's coordinate unit";
      throw ConfigError(m.str());
    }
    return scaled;
  }

  // Adds the shape unless its outer ring (the first) has fewer than 3 vertices: holes without
  // their outline mean nothing. Degenerate holes are dropped; each drop counts as ignored.
  void add(Shape shape) {
    if (shape.rings.empty() || shape.rings.front().size() < 3) {
      ++set_.ignored;
      return;
    }
    std::erase_if(shape.rings, [this](const std::vector<Point2>& ring) {
      if (ring.size() >= 3) return false;
      ++set_.ignored;
      return true;
    });
    compute_bbox(shape);
    set_.shapes.push_back(std::move(shape));
  }

  AnnotationSet take() { return std::move(set_); }

 private:
  const AnnotationOptions& options_;
  std::string file_;
  AnnotationSet set_;
};

// ---------------------------------------------------------------------------------------------
// ASAP XML

// The first error is the one that explains the file; later ones are consequences.
struct FirstXmlError {
  std::string message;
  int line = 0;
};

void record_xml_error(void* user, xmlErrorPtr e) {
  auto* ctxt = static_cast<xmlParserCtxt*>(user);
  auto* first = static_cast<FirstXmlError*>(ctxt->_private);
  if (first && first->message.empty() && e && e->level >= XML_ERR_ERROR) {
    first->message = e->message ? trim(e->message) : "unknown error";
    first->line = e->line;
  }
}

struct XmlDocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct XmlCtxtFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

bool is_element(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

std::optional<std::string> attribute(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return std::nullopt;
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

// ASAP writes numbers with the C locale, but copies saved under a comma-decimal locale exist
// ("12711,2998"); a lone comma is read as the decimal point.
std::optional<double> parse_double(const std::string& text) {
  std::string s = trim(text);
  if (s.find('.') == std::string::npos && std::count(s.begin(), s.end(), ',') == 1)
    std::replace(s.begin(), s.end(), ',', '.');
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  double v = 0;
  auto [ptr, ec] = std::from_chars(b, e, v);
  if (b == e || ec != std::errc() || ptr != e) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_int(const std::string& text) {
  const std::string s = trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

enum class AsapType { area, point, unknown };

AsapType asap_type(const std::optional<std::string>& type) {
  const std::string t = lower(trim(type.value_or("polygon")));
  if (t == "polygon" || t == "spline" || t == "rectangle") return AsapType::area;
  if (t == "dot" || t == "pointset") return AsapType::point;
  return AsapType::unknown;
}

// Parses `text` as XML whose root is <ASAP_Annotations>; ConfigError (naming b.file()) otherwise.
std::unique_ptr<xmlDoc, XmlDocFree> read_asap_document(std::string_view text, const std::filesystem::path& source,
                                                       const Builder& b) {
  static std::once_flag init;
  std::call_once(init, [] { xmlInitParser(); });
  if (text.size() > static_cast<size_t>(INT_MAX)) throw ConfigError(b.file() + ": XML file too large (over 2 GiB)");
  std::unique_ptr<xmlParserCtxt, XmlCtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) throw Error(b.file() + ": out of memory creating the XML parser");
  // Errors go to this context's handler only: the library never prints.
  FirstXmlError first;
  ctxt->_private = &first;
  ctxt->userData = ctxt.get();
  ctxt->sax->serror = record_xml_error;
  const std::string url = source.string();
  std::unique_ptr<xmlDoc, XmlDocFree> doc(xmlCtxtReadMemory(ctxt.get(), text.data(), static_cast<int>(text.size()),
                                                            url.c_str(), nullptr,
                                                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc || !ctxt->wellFormed) {
    if (first.message.empty()) {
      const xmlError* e = xmlCtxtGetLastError(ctxt.get());
      first.message = e && e->message ? trim(e->message) : "unknown error";
      first.line = e ? e->line : 0;
    }
    throw ConfigError(b.file() + ": invalid XML" + (first.line > 0 ? " at line " + std::to_string(first.line) : "") +
                      ": " + first.message);
  }
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root || !is_element(root, "ASAP_Annotations"))
    throw ConfigError(b.file() + ": not ASAP XML: the root element is <" +
                      (root ? std::string(reinterpret_cast<const char*>(root->name)) : std::string()) +
                      ">, expected <ASAP_Annotations>");
  return doc;
}

// The ring of an <Annotation>: its <Coordinate>s in Order (stable: document order among equals).
std::vector<Point2> asap_ring(xmlNode* an, const std::string& where, const Builder& b) {
  struct Vertex {
    int64_t order;
    Point2 p;
  };
  std::vector<Vertex> vertices;
  for (xmlNode* coords = an->children; coords; coords = coords->next) {
    if (!is_element(coords, "Coordinates")) continue;
    for (xmlNode* c = coords->children; c; c = c->next) {
      if (!is_element(c, "Coordinate")) continue;
      const int64_t k = static_cast<int64_t>(vertices.size());
      const std::string cw = where + " coordinate " + std::to_string(k);
      Vertex v{k, {}};
      if (const auto order = attribute(c, "Order")) {
        const auto o = parse_int(*order);
        if (!o) throw ConfigError(b.file() + ": " + cw + ": Order is not an integer ('" + *order + "')");
        v.order = *o;
      }
      for (const char* axis : {"X", "Y"}) {
        const auto s = attribute(c, axis);
        if (!s) throw ConfigError(b.file() + ": " + cw + ": " + axis + " is missing");
        const auto d = parse_double(*s);
        if (!d) throw ConfigError(b.file() + ": " + cw + ": " + axis + " is not a number ('" + *s + "')");
        (axis[0] == 'X' ? v.p.x : v.p.y) = b.coordinate(*d, cw, axis);
      }
      vertices.push_back(v);
    }
  }
  std::stable_sort(vertices.begin(), vertices.end(), [](const Vertex& l, const Vertex& r) { return l.order < r.order; });
  std::vector<Point2> ring;
  ring.reserve(vertices.size());
  for (const Vertex& v : vertices) ring.push_back(v.p);
  return ring;
}

AnnotationSet parse_asap(std::string_view text, const std::filesystem::path& source, const AnnotationOptions& options) {
  Builder b(source, options, "asap-xml");
  const std::unique_ptr<xmlDoc, XmlDocFree> doc = read_asap_document(text, source, b);
  int64_t index = 0;  // annotation index in the document, for unnamed annotations
  for (xmlNode* list = xmlDocGetRootElement(doc.get())->children; list; list = list->next) {
    if (!is_element(list, "Annotations")) continue;
    for (xmlNode* an = list->children; an; an = an->next) {
      if (!is_element(an, "Annotation")) continue;
      const int64_t ai = index++;
      const auto name = attribute(an, "Name");
      const auto group = attribute(an, "PartOfGroup");
      const std::string where = "Annotation " + (name ? quoted(*name) : "#" + std::to_string(ai));
      const auto cls = classify(group, options);
      b.note_group(group, cls);
      if (!cls || asap_type(attribute(an, "Type")) != AsapType::area) {
        b.ignore();
        continue;
      }
      Shape shape;
      shape.cls = *cls;
      shape.name = name.value_or("Annotation " + std::to_string(ai));
      shape.group = group.value_or("");
      shape.rings.push_back(asap_ring(an, where, b));
      b.add(std::move(shape));
    }
  }
  return b.take();
}

// ---------------------------------------------------------------------------------------------
// JSON formats

// Reads [x, y(, z)] into a level-0 point.
Point2 json_point(const Builder& b, const json& pos, const std::string& where) {
  if (!pos.is_array() || pos.size() < 2)
    throw ConfigError(b.file() + ": " + where + ": expected an [x, y] array, got " + detail::json_text(pos).substr(0, 60));
  Point2 p;
  const char* axes[2] = {"x", "y"};
  for (size_t a = 0; a < 2; ++a) {
    if (!pos[a].is_number()) throw ConfigError(b.file() + ": " + where + ": " + axes[a] + " is not a number");
    (a == 0 ? p.x : p.y) = b.coordinate(pos[a].get<double>(), where, axes[a]);
  }
  return p;
}

std::vector<Point2> json_ring(const Builder& b, const json& ring, const std::string& where, bool drop_closing) {
  if (!ring.is_array()) throw ConfigError(b.file() + ": " + where + ": expected an array of [x, y] positions");
  std::vector<Point2> out;
  out.reserve(ring.size());
  for (size_t k = 0; k < ring.size(); ++k)
    out.push_back(json_point(b, ring[k], where + " vertex " + std::to_string(k)));
  // GeoJSON repeats the first position at the end; the rings here are implicitly closed.
  if (drop_closing && out.size() >= 2 && out.front().x == out.back().x && out.front().y == out.back().y) out.pop_back();
  return out;
}

std::optional<std::string> string_member(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

AnnotationSet parse_camelyon(const json& doc, const std::filesystem::path& source, const AnnotationOptions& options) {
  Builder b(source, options, "camelyon-json");
  for (const auto& [key, cls] :
       {std::pair{"positive", ShapeClass::tumour}, std::pair{"negative", ShapeClass::exclusion}}) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) continue;
    if (!it->is_array()) throw ConfigError(b.file() + ": \"" + key + "\" must be an array of annotations");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& an = (*it)[i];
      const auto name = string_member(an, "name");
      const std::string where = std::string(key) + "[" + std::to_string(i) + "]" + (name ? " " + quoted(*name) : "");
      if (!an.is_object()) throw ConfigError(b.file() + ": " + where + ": expected an object");
      auto v = an.find("vertices");
      if (v == an.end()) throw ConfigError(b.file() + ": " + where + ": \"vertices\" is missing");
      b.note_group(std::string(key), cls);
      Shape shape;
      shape.cls = cls;
      shape.name = name.value_or(where);
      shape.group = key;
      shape.rings.push_back(json_ring(b, *v, where, false));
      b.add(std::move(shape));
    }
  }
  return b.take();
}

// Appends the polygons of one GeoJSON geometry (one Shape per polygon).
void geojson_geometry(Builder& b, const json& geom, const Shape& proto, const std::string& where) {
  if (geom.is_null()) {
    b.ignore();
    return;
  }
  const auto type = string_member(geom, "type");
  if (!type) throw ConfigError(b.file() + ": " + where + ": geometry has no \"type\"");
  auto polygon = [&](const json& rings, const std::string& pw) {
    if (!rings.is_array()) throw ConfigError(b.file() + ": " + pw + ": expected an array of rings");
    Shape s = proto;
    for (size_t r = 0; r < rings.size(); ++r)
      s.rings.push_back(json_ring(b, rings[r], pw + " ring " + std::to_string(r), true));
    b.add(std::move(s));
  };
  if (*type == "Polygon" || *type == "MultiPolygon") {
    auto c = geom.find("coordinates");
    if (c == geom.end() || !c->is_array())
      throw ConfigError(b.file() + ": " + where + ": " + *type + " has no \"coordinates\" array");
    if (*type == "Polygon") {
      polygon(*c, where);
    } else {
      for (size_t p = 0; p < c->size(); ++p) polygon((*c)[p], where + " polygon " + std::to_string(p));
    }
  } else if (*type == "GeometryCollection") {
    auto g = geom.find("geometries");
    if (g == geom.end() || !g->is_array())
      throw ConfigError(b.file() + ": " + where + ": GeometryCollection has no \"geometries\" array");
    for (size_t k = 0; k < g->size(); ++k)
      geojson_geometry(b, (*g)[k], proto, where + " geometry " + std::to_string(k));
  } else {
    b.ignore();  // Point, LineString and friends have no area
  }
}

void geojson_feature(Builder& b, const json& f, const std::string& where) {
  if (!f.is_object() || string_member(f, "type") != "Feature")
    throw ConfigError(b.file() + ": " + where + ": expected a GeoJSON Feature object");
  const json props = f.contains("properties") ? f["properties"] : json();
  std::optional<std::string> cls_name;
  if (props.is_object() && props.contains("classification")) {
    const json& c = props["classification"];
    cls_name = c.is_string() ? std::optional(c.get<std::string>()) : string_member(c, "name");
  }
  const auto name = string_member(props, "name");
  const auto group = cls_name ? cls_name : name;
  const auto cls = classify(group, b.options());
  b.note_group(group, cls);
  if (!cls) {
    b.ignore();
    return;
  }
  Shape proto;
  proto.cls = *cls;
  proto.group = group.value_or("");
  proto.name = name ? *name : where;
  auto g = f.find("geometry");
  if (g == f.end()) throw ConfigError(b.file() + ": " + where + ": \"geometry\" is missing");
  geojson_geometry(b, *g, proto, where + (name ? " " + quoted(*name) : ""));
}

AnnotationSet parse_geojson(const json& doc, const std::filesystem::path& source, const AnnotationOptions& options) {
  Builder b(source, options, "geojson");
  const json* features = &doc;
  if (doc.is_object()) {
    if (string_member(doc, "type") == "Feature") {
      geojson_feature(b, doc, "feature 0");
      return b.take();
    }
    auto it = doc.find("features");
    if (it == doc.end() || !it->is_array())
      throw ConfigError(b.file() + ": GeoJSON FeatureCollection has no \"features\" array");
    features = &*it;
  }
  for (size_t i = 0; i < features->size(); ++i) geojson_feature(b, (*features)[i], "feature " + std::to_string(i));
  return b.take();
}

const char* kSupported =
    "supported formats: ASAP XML (<ASAP_Annotations>), Camelyon JSON ({\"positive\": [...], \"negative\": [...]}) "
    "and GeoJSON (a FeatureCollection, a Feature or an array of Features)";

}  // namespace

AnnotationSet parse_annotations(const std::string& text, const std::filesystem::path& source,
                                const AnnotationOptions& options) {
  std::string_view body(text);
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) throw ConfigError(source.string() + ": the file is empty; " + kSupported);
  body.remove_prefix(first);
  if (body.front() == '<') return parse_asap(body, source, options);
  if (body.front() != '{' && body.front() != '[')
    throw ConfigError(source.string() + ": not an annotation file; " + kSupported);

  if (detail::json_depth(body) > detail::kMaxJsonDepth)
    throw ConfigError(source.string() + ": JSON nested more than " + std::to_string(detail::kMaxJsonDepth) +
                      " levels deep (arrays and objects); annotation files nest a handful");
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw ConfigError(source.string() + ": invalid JSON: " + detail::json_error_text(e));
  }
  try {
    if (doc.is_object() && (doc.contains("positive") || doc.contains("negative")))
      return parse_camelyon(doc, source, options);
    const auto type = string_member(doc, "type");
    if (type == "FeatureCollection" || type == "Feature") return parse_geojson(doc, source, options);
    if (doc.is_array() && std::all_of(doc.begin(), doc.end(), [](const json& f) {
          return f.is_object() && string_member(f, "type") == "Feature";
        }))
      return parse_geojson(doc, source, options);
  } catch (const json::exception& e) {  // e.g. type_error 316: a name that is not UTF-8, quoted in a message
    throw ConfigError(source.string() + ": unreadable annotation: " + detail::json_error_text(e) +
                      " (save the file as UTF-8 JSON)");
  }
  throw ConfigError(source.string() + ": JSON is not a known annotation format; " + kSupported);
}

int64_t AnnotationSet::tumour_shapes() const {
  return std::count_if(shapes.begin(), shapes.end(), [](const Shape& s) { return s.cls == ShapeClass::tumour; });
}

std::string describe_groups(const AnnotationSet& set) {
  if (set.groups.empty()) return "no annotations";
  std::string out = "groups found: ";
  for (const AnnotationGroup& g : set.groups) {
    if (&g != &set.groups.front()) out += "; ";
    out += (g.name.empty() ? std::string("(no group)") : quoted(g.name)) + ": " + std::to_string(g.annotations) + " " +
           g.taken_as;
  }
  return out;
}

void require_tumour(const AnnotationSet& set, const AnnotationOptions& options) {
  if (set.tumour_shapes() > 0) return;
  std::string names;
  for (const std::string& g : options.tumour_groups) names += (names.empty() ? "" : ", ") + g;
  throw ConfigError(set.source.string() + ": no tumour in the annotations (" + describe_groups(set) +
                    "); groups named " + names + " (any case) are tumour: rename the group, or pass " +
                    "--allow-no-tumour for a slide without tumour");
}

AnnotationSet load_annotations(const std::filesystem::path& path, const AnnotationOptions& options) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) throw UsageError(path.string() + ": no such annotation file");
  if (std::filesystem::is_directory(st))
    throw UsageError(path.string() + ": is a directory, expected an annotation file (.xml, .json or .geojson)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path.string() + ": cannot open the annotation file for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read error");
  return parse_annotations(ss.str(), path, options);
}

}  // namespace wsi
