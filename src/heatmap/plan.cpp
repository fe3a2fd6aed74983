// The heatmap job's plan (see plan.hpp): pure decisions, made before any patch is read.
#include "heatmap/plan.hpp"

#include <cmath>
#include <sstream>

#include "core/text.hpp"
#include "tissue/params_json.hpp"
#include "wsi/error.hpp"

namespace wsi {

void HeatmapParams::validate() const {
  const auto fail = [](const std::string& m) { throw UsageError(m); };
  try {
    grid.validate();
    tissue.validate();
  } catch (const ConfigError& e) {
    fail(e.what());  // set by options of the same names: a usage error, found before any slide is read
  }
  if (batch < 1 || batch > 4096) fail("--batch must be in 1..4096");
  if (cam_per_patch < 1 || cam_per_patch > 64) fail("--cam-resolution must be in 1..64 pixels per patch side");
  if (!(overlay_mpp >= 0.25 && overlay_mpp <= 256)) fail("--overlay-mpp must be in 0.25..256 µm per pixel");
  if (!(overlay_alpha >= 0 && overlay_alpha <= 1)) fail("--overlay-alpha must be in 0..1");
  if (!(threshold > 0 && threshold <= 1)) fail("--threshold must be in (0, 1]");
  if (!(froc_threshold >= 0 && froc_threshold <= 1)) fail("--froc-threshold must be in 0..1");
  if (threads < 0) fail("--threads must be >= 0");
  if (!(max_failed >= 0 && max_failed <= 1)) fail("--max-failed must be in 0..1 (a share of the tissue patches)");
  if (mpp_override && !(*mpp_override > 0 && std::isfinite(*mpp_override))) {
    std::ostringstream m;  // as the slide would say it, but before any slide is read
    m << "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not "
      << *mpp_override;
    fail(m.str());
  }
}


namespace detail {
namespace fs = std::filesystem;
using nlohmann::json;

HeatmapParams resolve_params(const HeatmapParams& in, const ModelSpec& spec) {
  HeatmapParams p = in;
  p.grid.patch_size = spec.patch_size;
  if (!p.grid.level && !p.grid.target_mpp) p.grid.target_mpp = spec.mpp;
  p.validate();
  return p;
}

HeatmapPlan plan_heatmap(const SlideFacts& slide, const ModelFacts& model, const HeatmapParams& params_in,
                         const fs::path& out_dir, const TissueMask* tissue) {
  HeatmapPlan plan;
  plan.params = resolve_params(params_in, model.spec);
  const HeatmapParams& params = plan.params;
  const ModelSpec& spec = model.spec;

  plan.name = params.name.empty() ? fs::path(slide.path).stem().string() : params.name;
  if (plan.name.empty() || plan.name.find('/') != std::string::npos || plan.name == "." || plan.name == "..")
    throw UsageError("output name '" + plan.name + "' must be a file name, not a path");
  plan.gradcam = params.gradcam && model.has_gradcam;
  HeatmapOutputs& out = plan.outputs;
  const std::string base = (out_dir / plan.name).string();
  out.prob = base + ".prob.tif";
  if (params.float32) out.prob_f32 = base + ".prob.f32.tif";
  if (plan.gradcam) out.cam = base + ".cam.tif";
  out.overlay = base + ".overlay.tif";
  out.thumb = base + ".thumb.png";
  out.patches_csv = base + ".patches.csv";
  out.froc_csv = base + ".froc.csv";
  out.regions = base + ".regions.geojson";
  out.summary = base + ".summary.json";

  const double mpp_mean = slide.mpp.known() ? (slide.mpp.x + slide.mpp.y) / 2 : 0.0;
  try {
    plan.geometry = resolve_geometry(slide.levels, mpp_mean, params.grid);
  } catch (const ConfigError& e) {
    throw ConfigError(slide.path + ": " + e.what());  // which slide: the grid alone does not know
  }
  const PatchGeometry& geo = plan.geometry;
  plan.grid = make_grid(slide.bounds, geo, params.grid, tissue);
  if (plan.grid.patches.empty())
    plan.note = "no tissue found: the outputs are valid but empty (check the slide, or lower --min-tissue)";
  plan.width = slide.levels.at(0).width;
  plan.height = slide.levels.at(0).height;
  plan.mpp0 = slide.mpp.known() ? slide.mpp.x : 0.0;

  // What the readers deliver: patches at the network's input size when the model area-resizes
  // down to it anyway (the same pixels up to rounding, read from a coarser level: for the demo
  // model 4x fewer to decode), else at patch_size.
  const int P = geo.patch_size;
  const bool feed_input = spec.resize == ResizeMode::area && spec.input_size < P;
  plan.read_geometry =
      feed_input ? geometry_for_size(slide.levels, geo, spec.input_size, params.grid.mpp_tolerance) : geo;
  if (const std::string hint = mpp_tolerance_hint(slide.levels, plan.read_geometry); !hint.empty())
    append_clause(plan.note, hint);

  // Rasters: an integer d level-0 pixels per pixel with W / width == H / height == d (ASAP's
  // rule, stitch.hpp), at least kMinRasterSide pixels a side (OpenSlide 3.4.1 decodes nothing
  // smaller: heatmap_io.hpp). Probabilities at about kPixelsPerCell pixels per stride cell: d
  // rarely divides a cell (373.248 level-0 px for 96 px at 0.972 µm on a 0.25 µm scan), and at
  // one pixel per cell the cells d leaves over are drawn twice as wide as the others; at 8 they
  // are 8 or 9 pixels wide and their borders within 1/16 cell of the truth.
  constexpr double kPixelsPerCell = 8;
  constexpr int64_t kMinRasterSide = 16;
  plan.prob_raster = raster_for(plan.width, plan.height, geo.stride_level0 / kPixelsPerCell, kMinRasterSide);
  plan.cam_raster = raster_for(plan.width, plan.height, geo.size_level0 / params.cam_per_patch, kMinRasterSide);
  const double pixel = plan.mpp0 > 0 ? params.overlay_mpp / plan.mpp0 : 32.0;
  plan.overlay_raster = raster_for(plan.width, plan.height, std::max(1.0, pixel), kMinRasterSide);
  for (size_t l = 0; l < slide.levels.size(); ++l)
    if (slide.levels[l].downsample <= static_cast<double>(plan.overlay_raster.pixel) * 1.0001)
      plan.overlay_level = static_cast<int>(l);
  plan.overlay_downsample = slide.levels[static_cast<size_t>(plan.overlay_level)].downsample;

  const PatchGeometry& read = plan.read_geometry;
  json& d = plan.description;
  d["slide"] = {{"name", plan.name}, {"width", plan.width}, {"height", plan.height}, {"mpp", plan.mpp0}};
  d["model"] = {{"name", spec.name}, {"path", model.path}, {"sha1", model.sha1}};
  d["parameters"] = {{"patch_size", P},
                     {"target_mpp", geo.target_mpp},
                     {"mpp_tolerance", params.grid.mpp_tolerance},
                     {"level", geo.level},
                     {"read_level", read.level},
                     {"read_size", read.read_size},
                     {"read_side", read.patch_size},
                     {"stride", params.grid.stride},
                     {"stride_level0", geo.stride_level0},
                     {"patch_size_level0", geo.size_level0},
                     {"min_tissue", params.grid.min_tissue},
                     {"edge", params.grid.edge == EdgePolicy::inside ? "inside" : "pad"},
                     {"batch", params.batch},
                     {"gradcam", plan.gradcam},
                     {"cam_per_patch", params.cam_per_patch},
                     {"threshold", params.threshold},
                     {"max_failed", params.max_failed},
                     {"tissue", tissue_params_json(params.tissue)}};
  return plan;
}

}  // namespace detail
}  // namespace wsi
