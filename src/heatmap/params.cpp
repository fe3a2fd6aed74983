// HeatmapParams' table (heatmap.hpp): the main job's flags, with the tissue and grid tables inside.
#include <cmath>
#include <fstream>

#include "core/json_text.hpp"
#include "core/params_json.hpp"

#include "wsi/error.hpp"
#include "wsi/heatmap.hpp"

namespace wsi {

namespace {

// The heatmap's own parameters, before the grid and tissue tables are nested in.
const ParamTable<HeatmapParams>& own_params() {
  using P = HeatmapParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t = {
        param(&P::batch, "--batch", "Patches per forward pass", Range{1, 4096}),
        flag(&P::gradcam, "--no-gradcam", "Skip Grad-CAM (no NAME.cam.tif; faster)", true, "gradcam"),
        param(&P::cam_per_patch, "--cam-resolution",
              "Grad-CAM raster pixels per patch side (at least: a raster pixel is a whole number of slide pixels)",
              Range{1, 64, "pixels per patch side"}),
        param(&P::overlay_mpp, "--overlay-mpp",
              "um per pixel of NAME.overlay.tif (at most: a whole number of slide pixels)",
              Range{0.25, 256, "µm per pixel"}),
        param(&P::threshold, "--threshold", "Probability at or above which a patch counts as tumour"),
        param(&P::froc_threshold, "--froc-threshold", "Lowest local maximum written to NAME.froc.csv", Range{0, 1}),
        flag(&P::float32, "--float32", "Also write NAME.prob.f32.tif (float probabilities, NaN = none)"),
        param(&P::max_failed, "--max-failed",
              "The slide fails when more than this share of its tissue patches fail to decode",
              Range{0, 1, "(a share of the tissue patches)"}),
        param(&P::mpp_override, "--mpp", "Level-0 um per pixel, overriding the slide's metadata"),
    };
    t[4].check = [](const P& p) -> std::string {
      if (p.threshold > 0 && p.threshold <= 1) return {};
      return "--threshold must be in (0, 1], not " + number_text(p.threshold);
    };
    t[8].check = [](const P& p) -> std::string {
      if (!p.mpp_override || (*p.mpp_override > 0 && std::isfinite(*p.mpp_override))) return {};
      return "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not " +
             number_text(*p.mpp_override);
    };
    return t;
  }();
  return table;
}

}  // namespace

const ParamTable<HeatmapParams>& heatmap_param_table() {
  static const ParamTable<HeatmapParams> table = [] {
    ParamTable<HeatmapParams> t = own_params();
    append(t, nested(&HeatmapParams::grid, grid_param_table()));
    append(t, nested(&HeatmapParams::tissue, tissue_param_table()));
    return t;
  }();
  return table;
}

void HeatmapParams::validate() const {
  // Every value is set by a flag of the name the message says: a usage error, found before any slide is read.
  try {
    grid.validate();
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  }
  if (const std::string m = first_problem(own_params(), *this); !m.empty()) throw UsageError(m);
  try {
    tissue.validate();
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  }
  if (!(overlay_alpha >= 0 && overlay_alpha <= 1)) throw UsageError("overlay_alpha must be in 0..1");
  if (threads < 0) throw UsageError("--threads must be >= 0");
}

void apply_heatmap_preset(const std::filesystem::path& file, HeatmapParams& params,
                          const std::function<bool(const std::string&)>& keep) {
  const std::string where = "preset " + file.string();
  std::ifstream in(file);
  if (!in) throw ConfigError(where + ": cannot open the file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number such as 1e999
    throw ConfigError(where + " is not valid JSON: " + detail::json_error_text(e));
  }
  if (!j.is_object()) throw ConfigError(where + " must be a JSON object of parameter keys and values");
  const ParamTable<HeatmapParams>& table = heatmap_param_table();
  for (const auto& [key, value] : j.items()) {
    if (key == "description" || key == "run") continue;  // a note, and --print-config's run settings
    const Param<HeatmapParams>* p = detail::find_param(table, key);
    const std::string snake = key_of_flag(key);  // how a dashed or --flag spelling is keyed
    if (!p && snake != key && detail::find_param(table, snake))
      throw ConfigError(where + ": unknown key \"" + key + "\"; write it \"" + snake + "\"");
    if (!p)
      throw ConfigError(where + ": unknown key \"" + key + "\" (keys are those wsi-heatmap heatmap --print-config " +
                        "prints, e.g. \"min_tissue\"; the model, device and output are not preset)");
    if (keep && keep(p->flag)) continue;  // given on the command line, which wins
    detail::set_param_from_json(*p, params, value, where);
  }
}

}  // namespace wsi
