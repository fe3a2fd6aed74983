// libFuzzer target: NAME.froc.csv (parse_detection_csv; seeds in corpus/detection_csv), with and
// without a header. Accepted rows must be finite with a probability in 0..1.
#include <cmath>

#include "fuzz_support.hpp"
#include "wsi/slide_eval.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wsi::fuzz;
  const char* source = "fuzz.froc.csv";
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<wsi::Detection> rows;
  if (!parses(source, [&] { rows = wsi::parse_detection_csv(text, source); })) return 0;
  for (const auto& d : rows) {
    check(std::isfinite(d.x) && std::isfinite(d.y), "a detection position that is not finite");
    check(d.probability >= 0 && d.probability <= 1, "a probability outside 0..1");
  }
  return 0;
}
