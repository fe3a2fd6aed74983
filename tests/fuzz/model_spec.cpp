// libFuzzer target: the model sidecar (ModelSpec::parse; seeds in corpus/model_spec). An accepted
// sidecar must also validate, keep every integer exactly as written (no silent narrowing), and
// round-trip through to_json() as model.hpp promises.
#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "wsi/model.hpp"

namespace {

bool same(const wsi::ModelSpec& a, const wsi::ModelSpec& b) {
  const bool net = a.architecture.has_value() == b.architecture.has_value() &&
                   (!a.architecture || (a.architecture->name == b.architecture->name &&
                                        a.architecture->width == b.architecture->width &&
                                        a.architecture->blocks == b.architecture->blocks));
  return net && a.name == b.name && a.description == b.description && a.patch_size == b.patch_size &&
         a.mpp == b.mpp && a.input_size == b.input_size && a.resize == b.resize && a.scale == b.scale &&
         a.mean == b.mean && a.std == b.std && a.bgr == b.bgr && a.output == b.output &&
         a.positive_index == b.positive_index && a.features_method == b.features_method &&
         a.classify_method == b.classify_method && a.training_json == b.training_json;
}

// The integer as the file wrote it equals what the spec holds (nlohmann compares across its
// signed and unsigned representations by value).
void check_integer(const nlohmann::json& j, const char* key, int value) {
  if (j.is_object() && j.contains(key))
    wsi::fuzz::check(j.at(key) == nlohmann::json(value), "an integer was accepted but changed on the way in");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wsi::fuzz;
  const char* source = "fuzz/model.json";
  const std::string text(reinterpret_cast<const char*>(data), size);
  wsi::ModelSpec spec;
  if (!parses(source, [&] { spec = wsi::ModelSpec::parse(text, source); })) return 0;
  never_throws("validate() of an accepted sidecar", [&] { spec.validate(); });
  never_throws("reading an accepted sidecar again", [&] {
    const auto j = nlohmann::json::parse(text);
    check_integer(j, "patch_size", spec.patch_size);
    check_integer(j, "input_size", spec.input_size);
    check_integer(j, "positive_index", spec.positive_index);
    if (j.contains("architecture")) {
      check_integer(j.at("architecture"), "width", spec.architecture->width);
      check_integer(j.at("architecture"), "blocks", spec.architecture->blocks);
    }
  });
  never_throws("to_json() round trip", [&] {
    check(same(spec, wsi::ModelSpec::parse(spec.to_json(), source)), "to_json() does not round-trip through parse()");
  });
  return 0;
}
