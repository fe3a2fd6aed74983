// libFuzzer target: Camelyon (NCRF) JSON annotations (seeds in corpus/camelyon_json), read with
// a coordinate scale of 32 as for a level-5 export of the slide.
#include "annotations_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wsi::AnnotationOptions options;
  options.coordinate_scale = 32;
  return wsi::fuzz::fuzz_annotations(data, size, "fuzz.json", options);
}
