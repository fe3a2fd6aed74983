// libFuzzer target: NAME.patches.csv (parse_patch_csv; seeds in corpus/patch_csv). Accepted rows
// must hold what slide_eval.hpp promises: finite numbers, a positive extent, a probability in
// 0..1, and their own increasing 1-based line numbers after the header's.
#include <cmath>

#include "fuzz_support.hpp"
#include "wsi/slide_eval.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wsi::fuzz;
  const char* source = "fuzz.patches.csv";
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<wsi::PatchPrediction> rows;
  if (!parses(source, [&] { rows = wsi::parse_patch_csv(text, source); })) return 0;
  int64_t previous = 1;  // the header is on line 1 or later
  for (const auto& r : rows) {
    check(std::isfinite(r.x) && std::isfinite(r.y), "a patch position that is not finite");
    check(std::isfinite(r.width) && std::isfinite(r.height) && r.width > 0 && r.height > 0,
          "a patch extent that is not positive and finite");
    check(r.probability >= 0 && r.probability <= 1, "a probability outside 0..1");
    check(r.line > previous, "line numbers that do not increase past the header");
    previous = r.line;
  }
  return 0;
}
