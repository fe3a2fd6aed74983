// TissueParams as JSON, for every output that records how its tissue mask was made (the mask
// sidecar, the extract summary). Private to the library; one place, so no output forgets a field.
#pragma once

#include <nlohmann/json.hpp>

#include "wsi/tissue.hpp"

namespace wsi::detail {

nlohmann::json tissue_params_json(const TissueParams& params);

}  // namespace wsi::detail
