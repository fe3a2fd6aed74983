// The heatmap job's plan: everything decided before a patch is read, as a pure function of the
// slide's geometry, the model's contract, the parameters and the tissue mask (no I/O; tested in
// tests/test_heatmap_graph.cpp). The pipeline (pipeline.cpp) opens the slide, computes the
// mask, makes the plan, runs the graph (graph.hpp) and hands the results to the writers
// (outputs.hpp).
//
// Frames and units: level-0 pixels throughout (grid.hpp, stitch.hpp); mpp0 is µm per level-0
// pixel (0 when unknown).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wsi/grid.hpp"
#include "wsi/heatmap.hpp"
#include "wsi/model.hpp"
#include "wsi/slide.hpp"
#include "wsi/stitch.hpp"
#include "wsi/tissue.hpp"

namespace wsi::detail {

// What the plan needs to know of the slide.
struct SlideFacts {
  std::string path, vendor;
  std::vector<LevelInfo> levels;
  Mpp mpp;
  Bounds bounds;
};

// What the plan (and the outputs' descriptions) need to know of the model.
struct ModelFacts {
  ModelSpec spec;
  std::string path, sha1;
  bool has_gradcam = false;
  std::string gradcam_unavailable;  // why not, when !has_gradcam
};

struct HeatmapPlan {
  HeatmapParams params;  // resolved: patch_size and target_mpp from the model (resolve_params)
  std::string name;      // NAME of the outputs
  HeatmapOutputs outputs;
  bool gradcam = false;  // asked for and available
  PatchGeometry geometry;       // the grid's: patch_size px at target_mpp
  PatchGeometry read_geometry;  // what the readers deliver; its patch_size is the side fed to the model
  PatchGrid grid;
  int64_t width = 0, height = 0;  // level 0
  double mpp0 = 0;
  RasterGeometry prob_raster;     // NAME.prob.tif (and .prob.f32.tif)
  RasterGeometry cam_raster;      // NAME.cam.tif
  RasterGeometry overlay_raster;  // NAME.overlay.tif
  int overlay_level = 0;          // the slide level the overlay is made from
  double overlay_downsample = 1;
  std::string note;               // said in the summary (no tissue, a tolerance hint)
  // "slide", "model" and "parameters", carried by the summary and every TIFF's description.
  nlohmann::json description;
};

// The parameters with the model's patch_size, and its mpp unless a level or mpp was given;
// validated (UsageError naming the option).
HeatmapParams resolve_params(const HeatmapParams& params, const ModelSpec& spec);

// Throws UsageError (parameters, output name), ConfigError (geometry: unknown mpp, level).
// `tissue` is null when params.grid.min_tissue is 0 (every cell kept).
HeatmapPlan plan_heatmap(const SlideFacts& slide, const ModelFacts& model, const HeatmapParams& params,
                         const std::filesystem::path& out_dir, const TissueMask* tissue);

}  // namespace wsi::detail
