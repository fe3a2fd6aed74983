// The heatmap job's plan (see plan.hpp): pure decisions, made before any patch is read.
#include "heatmap/plan.hpp"

#include <cmath>
#include <sstream>

#include "core/text.hpp"
#include "core/params_json.hpp"
#include "wsi/error.hpp"

namespace wsi {

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
  // The table's values as run, with what the slide and the model resolved them to.
  json& pj = d["parameters"] = params_json(heatmap_param_table(), params);
  pj.update({{"patch_size", P},
             {"target_mpp", geo.target_mpp},
             {"level", geo.level},
             {"read_level", read.level},
             {"read_size", read.read_size},
             {"read_side", read.patch_size},
             {"stride_level0", geo.stride_level0},
             {"patch_size_level0", geo.size_level0},
             {"gradcam", plan.gradcam}});
  return plan;
}

}  // namespace detail
}  // namespace wsi
