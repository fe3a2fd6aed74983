// Pieces of the dataset summaries that `extract` (extract.cpp) and the batch merge (merge.cpp)
// both write, so the two files read alike. Private to src/extract/.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "wsi/extract.hpp"

namespace wsi::detail {

inline constexpr const char* kDatasetCoordinates =
    "coord_x/coord_y are level-0 pixels of each patch's top-left corner; patch_size_level0 is its level-0 extent";

// {"<split>": {slides, positives, negatives, oversampled_copies, duplicates_skipped, files}, ...}
inline nlohmann::json splits_json(const std::vector<SplitReport>& splits) {
  nlohmann::json out = nlohmann::json::object();
  for (const SplitReport& s : splits) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : s.outputs) files.push_back(f.filename().string());
    out[s.name] = {{"slides", s.slides},       {"positives", s.positives},
                   {"negatives", s.negatives}, {"oversampled_copies", s.copies},
                   {"duplicates_skipped", s.duplicates_skipped}, {"files", files}};
  }
  return out;
}

}  // namespace wsi::detail
