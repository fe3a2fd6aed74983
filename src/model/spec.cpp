// The model sidecar: strict parsing (unknown keys and wrong types are errors) and validation.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/json_text.hpp"
#include "wsi/error.hpp"
#include "wsi/model.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kFormat = "wsi-heatmap-model/1";


const char* output_name(OutputKind o) {
  switch (o) {
    case OutputKind::logit: return "logit";
    case OutputKind::probability: return "probability";
    case OutputKind::softmax: return "softmax";
  }
  return "logit";
}

// Typed access that names the key and the expected type in its error.
class Reader {
 public:
  Reader(const json& j, const fs::path& src) : j_(j), src_(src) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError("model sidecar " + src_.string() + ": " + what);
  }
  bool has(const char* key) const { return j_.contains(key); }
  std::string str(const char* key) const {
    const json& v = j_.at(key);
    if (!v.is_string()) fail(std::string("\"") + key + "\" must be a string, not " + v.type_name());
    return v.get<std::string>();
  }
  double num(const char* key) const {
    const json& v = j_.at(key);
    if (!v.is_number()) fail(std::string("\"") + key + "\" must be a number, not " + v.type_name());
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(std::string("\"") + key + "\" must be finite");
    return d;
  }
  int integer(const char* key) const {
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(std::string("\"") + key + "\" must be an integer, not " + v.type_name());
    // get<int>() wraps (4294967392 became patch_size 96); saturated instead, every integer here
    // is range-checked by validate(), whose message names the allowed range.
    if (v.is_number_unsigned()) return static_cast<int>(std::min<uint64_t>(v.get<uint64_t>(), INT_MAX));
    return static_cast<int>(std::clamp<int64_t>(v.get<int64_t>(), INT_MIN, INT_MAX));
  }
  std::array<double, 3> triple(const char* key) const {
    const json& v = j_.at(key);
    if (!v.is_array() || v.size() != 3)
      fail(std::string("\"") + key + "\" must be an array of 3 numbers (R, G, B)");
    std::array<double, 3> a{};
    for (size_t i = 0; i < 3; ++i) {
      if (!v[i].is_number()) fail(std::string("\"") + key + "\" must be an array of 3 numbers (R, G, B)");
      a[i] = v[i].get<double>();
    }
    return a;
  }

 private:
  const json& j_;
  const fs::path& src_;
};

}  // namespace

const char* resize_mode_name(ResizeMode r) {
  switch (r) {
    case ResizeMode::none: return "none";
    case ResizeMode::nearest: return "nearest";
    case ResizeMode::bilinear: return "bilinear";
    case ResizeMode::area: return "area";
  }
  return "none";
}

fs::path sidecar_path(const fs::path& model_path) {
  fs::path p = model_path;
  p.replace_extension(".json");
  return p;
}

void ModelSpec::validate() const {
  auto fail = [&](const std::string& what) { throw ConfigError("model '" + name + "': " + what); };
  if (patch_size < 8 || patch_size > 4096) fail("patch_size must be in 8..4096");
  if (input_size < 8 || input_size > 4096) fail("input_size must be in 8..4096");
  if (!(mpp > 0)) fail("mpp must be a positive number of micrometres per pixel");
  if (resize == ResizeMode::none && input_size != patch_size)
    fail("input_size " + std::to_string(input_size) + " differs from patch_size " + std::to_string(patch_size) +
         " but resize is \"none\": set resize to nearest, bilinear or area");
  if (!(scale > 0)) fail("scale must be positive (1/255 maps 0..255 to 0..1)");
  for (double s : std) if (!(s > 0)) fail("every std value must be positive");
  if (output == OutputKind::softmax && (positive_index < 0 || positive_index > 999))
    fail("positive_index must be a class index >= 0");
  if (features_method.empty() != classify_method.empty())
    fail("gradcam needs both \"features\" and \"classify\" method names, or neither");
  if (architecture) {
    if (architecture->name != "cancernet" && architecture->name != "resnet")
      fail("architecture.name must be cancernet or resnet (the built-in networks), not \"" + architecture->name + "\"");
    if (architecture->width < 4 || architecture->width > 512) fail("architecture.width must be in 4..512");
    if (architecture->blocks < 1 || architecture->blocks > 8) fail("architecture.blocks must be in 1..8");
    if (output != OutputKind::logit) fail("built-in architectures output one logit: set \"output\": \"logit\"");
  }
}

namespace {

// "resize", "scale", "mean", "std", "channel_order".
void read_preprocessing(Reader& r, ModelSpec& s) {
  if (r.has("resize")) {
    const std::string v = r.str("resize");
    if (v == "none") s.resize = ResizeMode::none;
    else if (v == "nearest") s.resize = ResizeMode::nearest;
    else if (v == "bilinear") s.resize = ResizeMode::bilinear;
    else if (v == "area") s.resize = ResizeMode::area;
    else r.fail("\"resize\" must be none, nearest, bilinear or area, not \"" + v + "\"");
    // A resize without the size it resizes to would silently feed patch_size pixels.
    if (s.resize != ResizeMode::none && !r.has("input_size"))
      r.fail("\"resize\": \"" + v + "\" needs \"input_size\", the network's input side in pixels");
  }
  if (r.has("scale")) s.scale = r.num("scale");
  if (r.has("mean")) s.mean = r.triple("mean");
  if (r.has("std")) s.std = r.triple("std");
  if (r.has("channel_order")) {
    const std::string v = r.str("channel_order");
    if (v != "RGB" && v != "BGR") r.fail("\"channel_order\" must be RGB or BGR, not \"" + v + "\"");
    s.bgr = v == "BGR";
  }
}

// "output" and "positive_index".
void read_output(Reader& r, ModelSpec& s) {
  const std::string out = r.str("output");
  if (out == "logit") s.output = OutputKind::logit;
  else if (out == "probability") s.output = OutputKind::probability;
  else if (out == "softmax") s.output = OutputKind::softmax;
  else r.fail("\"output\" must be logit (one value, sigmoid), probability (one value) or softmax (2+ logits), not \"" + out + "\"");
  if (r.has("positive_index")) {
    if (s.output != OutputKind::softmax) r.fail("\"positive_index\" only applies to \"output\": \"softmax\"");
    s.positive_index = r.integer("positive_index");
  }
}

// The objects "gradcam" {features, classify} and "architecture" {name, width, blocks}.
void read_gradcam_and_architecture(const json& j, Reader& r, ModelSpec& s, const fs::path& source) {
  s.features_method.clear();
  s.classify_method.clear();
  if (r.has("gradcam")) {
    const json& g = j.at("gradcam");
    if (!g.is_object()) r.fail("\"gradcam\" must be an object {\"features\": NAME, \"classify\": NAME}");
    Reader gr(g, source);
    for (const auto& [key, value] : g.items()) {
      (void)value;
      if (key != "features" && key != "classify") r.fail("unknown key \"gradcam." + key + "\" (known: features, classify)");
    }
    if (gr.has("features")) s.features_method = gr.str("features");
    if (gr.has("classify")) s.classify_method = gr.str("classify");
  }
  if (r.has("architecture")) {
    const json& a = j.at("architecture");
    if (!a.is_object() || !a.contains("name"))
      r.fail("\"architecture\" must be an object {\"name\": \"cancernet\"|\"resnet\", \"width\": N, \"blocks\": N}");
    Reader ar(a, source);
    for (const auto& [key, value] : a.items()) {
      (void)value;
      if (key != "name" && key != "width" && key != "blocks")
        r.fail("unknown key \"architecture." + key + "\" (known: name, width, blocks)");
    }
    ModelSpec::BuiltinNet net;
    net.name = ar.str("name");
    if (ar.has("width")) net.width = ar.integer("width");
    if (ar.has("blocks")) net.blocks = ar.integer("blocks");
    s.architecture = net;
  }
}

}  // namespace

ModelSpec ModelSpec::parse(const std::string& text, const fs::path& source) {
  if (detail::json_depth(text) > detail::kMaxJsonDepth)
    throw ConfigError("model sidecar " + source.string() + ": JSON nested more than " +
                      std::to_string(detail::kMaxJsonDepth) + " levels deep (arrays and objects)");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number such as 1e999
    throw ConfigError("model sidecar " + source.string() + " is not valid JSON: " + detail::json_error_text(e));
  }
  Reader r(j, source);
  if (!j.is_object()) r.fail("must be a JSON object");
  static const std::set<std::string> known{"format", "name", "description", "patch_size", "mpp", "input_size",
                                           "resize", "scale", "mean", "std", "channel_order", "output",
                                           "positive_index", "gradcam", "architecture", "training"};
  for (const auto& [key, value] : j.items()) {
    (void)value;
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      r.fail("unknown key \"" + key + "\" (known keys: " + list + ")");
    }
  }
  if (!r.has("format") || r.str("format") != kFormat)
    r.fail(std::string("\"format\" must be \"") + kFormat + "\" (the sidecar format this wsi-heatmap reads)");
  for (const char* required : {"patch_size", "mpp", "output"})
    if (!r.has(required)) r.fail(std::string("missing required key \"") + required + "\"");

  ModelSpec s;
  if (r.has("name")) s.name = r.str("name");
  if (r.has("description")) s.description = r.str("description");
  s.patch_size = r.integer("patch_size");
  s.mpp = r.num("mpp");
  s.input_size = r.has("input_size") ? r.integer("input_size") : s.patch_size;
  read_preprocessing(r, s);
  read_output(r, s);
  read_gradcam_and_architecture(j, r, s, source);
  if (r.has("training")) {
    if (!j.at("training").is_object()) r.fail("\"training\" must be an object");
    s.training_json = j.at("training").dump();
  }
  try {
    s.validate();
  } catch (const ConfigError& e) {
    // validate() names the model; here the sidecar file is named instead.
    std::string what = e.what();
    if (const std::string by_name = "model '" + s.name + "': "; what.rfind(by_name, 0) == 0) what.erase(0, by_name.size());
    r.fail(what);
  }
  return s;
}

ModelSpec ModelSpec::load_sidecar(const fs::path& model_path) {
  const fs::path side = sidecar_path(model_path);
  std::ifstream in(side, std::ios::binary);
  if (!in)
    throw UsageError("model " + model_path.string() + " has no sidecar " + side.string() +
                     ": write one that describes its input and output (see docs/model-contract.md)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), side);
}

std::string ModelSpec::to_json() const {
  json j;
  j["format"] = kFormat;
  j["name"] = name;
  if (!description.empty()) j["description"] = description;
  j["patch_size"] = patch_size;
  j["mpp"] = mpp;
  j["input_size"] = input_size;
  j["resize"] = resize_mode_name(resize);
  j["scale"] = scale;
  j["mean"] = mean;
  j["std"] = std;
  j["channel_order"] = bgr ? "BGR" : "RGB";
  j["output"] = output_name(output);
  if (output == OutputKind::softmax) j["positive_index"] = positive_index;
  if (!features_method.empty()) j["gradcam"] = {{"features", features_method}, {"classify", classify_method}};
  if (architecture)
    j["architecture"] = {{"name", architecture->name}, {"width", architecture->width}, {"blocks", architecture->blocks}};
  if (!training_json.empty()) j["training"] = json::parse(training_json);
  return j.dump(2) + "\n";
}

}  // namespace wsi
