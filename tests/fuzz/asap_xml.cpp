// libFuzzer target: ASAP XML annotations (seeds in corpus/asap_xml), default options.
#include "annotations_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return wsi::fuzz::fuzz_annotations(data, size, "fuzz.xml", wsi::AnnotationOptions{});
}
