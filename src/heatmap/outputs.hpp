// The heatmap job's writers (see plan.hpp for the order of things): the streaming outputs fed
// while the graph runs (HeatmapStitcher: NAME.patches.csv and NAME.cam.tif), then, from the
// probability grid, the probability rasters, the overlay and thumbnail, the regions and FROC
// detections, and last the summary.
//
// Every file is written under a temporary name and renamed when complete (PendingFile,
// PyramidTiffWriter); a failure throws WriteError naming the file, and nothing partial is left
// under a final name.
//
// Thread-safety: one thread at a time per object; the free functions are independent.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/pending_file.hpp"
#include "heatmap/graph.hpp"
#include "heatmap/plan.hpp"
#include "wsi/heatmap_io.hpp"
#include "wsi/patch_source.hpp"
#include "wsi/stitch.hpp"

namespace wsi::detail {

// A TIFF ImageDescription for `d`: its JSON text, which json.loads (or any JSON parser) reads as
// it is, except that "xml", "XML" and "DICOM" inside strings have their first letter written as
// a \u escape (the same string once parsed): ASAP's TIFF reader refuses a file whose description
// contains one of them, and a slide's name or a model's path may.
std::string tiff_description(const nlohmann::json& d);

// The TIFF options of one heatmap raster: size, resolution from the plan's mpp (unknown: level-0
// pixels as "µm"), and as description the JSON `description` (the plan's, plus "software") with
// "image" (WHAT: probability, gradcam, overlay) and "level0_pixels_per_pixel" (the raster's d).
PyramidTiffOptions heatmap_tiff_options(const HeatmapPlan& plan, const nlohmann::json& description,
                                        const RasterGeometry& raster, int channels, bool float32,
                                        const std::string& what, bool jpeg);

// The graph's sink: keeps each patch's probability (NaN until computed or when its region
// failed), streams NAME.patches.csv, and stitches Grad-CAM into NAME.cam.tif row by row.
class HeatmapStitcher final : public BatchSink {
 public:
  // Creates the temporaries. Throws WriteError.
  HeatmapStitcher(const HeatmapPlan& plan, const nlohmann::json& description);
  ~HeatmapStitcher() override;
  void add(size_t first, size_t count, const uint8_t* ok, const float* probabilities, const float* cams) override;
  // Flushes and renames NAME.cam.tif and NAME.patches.csv into place. Throws WriteError.
  void finish();
  // One value per plan.grid.patches entry.
  const std::vector<float>& probabilities() const { return prob_; }

 private:
  const HeatmapPlan& plan_;
  std::vector<float> prob_;
  PendingFile patches_file_;
  std::ofstream patches_csv_;
  std::unique_ptr<PyramidTiffWriter> cam_writer_;
  std::unique_ptr<CamStitcher> cam_stitcher_;
  std::vector<uint8_t> cam_row_;
  size_t cam_values_ = 0;  // per patch
  int64_t size0_ = 0;      // a patch's level-0 side, rounded (the CSV's width and height)
};

// NAME.prob.tif (uint8) and, when asked, NAME.prob.f32.tif; returns the float raster
// (plan.prob_raster, NaN where no patch was computed), which the overlay is coloured from.
std::vector<float> write_probability_rasters(const HeatmapPlan& plan, const nlohmann::json& description,
                                             const std::vector<float>& probabilities);

// NAME.overlay.tif (the slide at overlay_mpp with the probability colour map blended in,
// streamed in strips from `slide`: render_overlay, overlay.hpp) and NAME.thumb.png from the same
// strips. A strip that fails
// to decode stays white; the heatmap itself is unaffected.
void write_overlay(const HeatmapPlan& plan, const nlohmann::json& description, const PatchSource& slide,
                   const std::vector<float>& prob_raster);

// NAME.regions.geojson and NAME.froc.csv from the probability grid (one value per grid cell).
void write_regions(const HeatmapPlan& plan, const std::vector<float>& probabilities);

// The summary's statistics of the probability grid.
struct ProbabilityStats {
  int64_t processed = 0, tumour = 0;
  double slide_score = 0, mean = 0, tumour_area_mm2 = 0;
};
ProbabilityStats probability_stats(const HeatmapPlan& plan, const std::vector<float>& probabilities);

}  // namespace wsi::detail
