// TissueParams' table (tissue.hpp): every tissue-detection flag, its key, default, help and check.
#include "core/params_json.hpp"
#include "tissue/params_json.hpp"
#include "wsi/error.hpp"
#include "wsi/tissue.hpp"

namespace wsi {

const ParamTable<TissueParams>& tissue_param_table() {
  using P = TissueParams;
  static const ParamTable<P> table = grouped<P>(
      {
          param(&P::mask_mpp, "--mask-mpp", "Tissue mask resolution, um per mask pixel (8..32)",
                Range{8, 32, "µm per mask pixel"}),
          param(&P::white_threshold, "--white-threshold", "min(R,G,B) at or above this is glass", Range{0, 255}),
          param(&P::black_threshold, "--black-threshold", "max(R,G,B) at or below this is an artefact",
                Range{0, 255}),
          param(&P::min_saturation, "--min-saturation", "Floor of the Otsu saturation threshold (0..1)",
                Range{0, 1}),
          flag(&P::remove_pen, "--no-pen-removal", "Keep marker-pen ink (default: removed)", true, "remove_pen"),
          param(&P::closing_um, "--closing-um", "Morphological closing radius, um", Range{0, 2000, "µm"}),
          param(&P::opening_um, "--opening-um", "Morphological opening radius, um", Range{0, 2000, "µm"}),
          param(&P::margin_um, "--margin-um", "Grow the mask by this radius, um", Range{0, 2000, "µm"}),
          param(&P::max_hole_um2, "--max-hole-um2", "Fill holes up to this area, um^2 (inf = every hole)",
                Range{0, std::numeric_limits<double>::infinity(), "µm²"}),
          param(&P::min_component_um2, "--min-component-um2", "Drop tissue pieces smaller than this, um^2",
                Range{0, 1e18, "µm²"}),
      },
      "Tissue detection");
  return table;
}

void TissueParams::validate() const {
  if (const std::string m = first_problem(tissue_param_table(), *this); !m.empty()) throw ConfigError(m);
  if (black_threshold >= white_threshold)
    throw ConfigError("--black-threshold must be below --white-threshold (" + std::to_string(white_threshold) +
                      "), not " + std::to_string(black_threshold));
}

nlohmann::json detail::tissue_params_json(const TissueParams& params) {
  return params_json(tissue_param_table(), params);
}

}  // namespace wsi
