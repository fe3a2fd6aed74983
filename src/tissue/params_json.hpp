// TissueParams as JSON, for every output that records how its tissue mask was made (the mask
// sidecar, the extract summary). Private to the library; one place, so no output forgets a field.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "wsi/tissue.hpp"

namespace wsi::detail {

nlohmann::json tissue_params_json(const TissueParams& params);

// The mask's sidecar OUT.json (frame, params, stats), as write_tissue_mask writes it and
// `mask --json` prints it.
nlohmann::json tissue_mask_json(const TissueMask& mask, const TissueParams& params, const std::filesystem::path& out,
                                const std::string& slide_path);

}  // namespace wsi::detail
