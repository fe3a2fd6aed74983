// libFuzzer target: QuPath GeoJSON annotations (seeds in corpus/geojson), with unclassified
// features taken as tumour so that they reach the rasteriser too.
#include "annotations_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wsi::AnnotationOptions options;
  options.unclassified_is_tumour = true;
  return wsi::fuzz::fuzz_annotations(data, size, "fuzz.geojson", options);
}
