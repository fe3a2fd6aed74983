// wsi/heatmap.hpp — the main job: one slide through tissue detection, the patch grid, batched
// inference (+ Grad-CAM) and stitching into slide-aligned outputs (library wsi::heatmap).
//
// The work runs in steps (src/heatmap/pipeline.cpp): open the slide and compute its tissue mask;
// a pure plan (plan.hpp: geometries, grid, output names, parameters); one oneTBB flow graph
// (graph.hpp, the only place it is wired) that reads each batch of patches into a reusable slot
// of the model (on a CPU on the model's own threads between batches, on a GPU on the graph's
// threads in contiguous strips while the device computes), restores grid order, starts the
// batch on the model (Model as a Classifier: on a GPU it only queues copies and kernels) and,
// in grid order, waits for its results and stitches them (probability grid, NAME.patches.csv,
// Grad-CAM rows streamed to NAME.cam.tif); then the writers (outputs.hpp).
//
// Memory is bounded by `in_flight` batch slots plus one row of patches in the saliency stitcher, not
// by the slide: the probability grid (one float per patch) is the only per-slide array while the
// graph runs; the writers then hold the probability raster (about 64 pixels per patch, 5 bytes
// each: 19 MB for a 100000 x 80000 scan at 0.25 µm and PCam's 0.972 µm patches). An
// exception in any node cancels the graph; it is rethrown with the slide (and region) named.
// A region that fails to decode is counted, left NaN in the outputs, and the run goes on.
//
// Outputs in `out_dir`, NAME = the slide's file stem, each written under a temporary name and
// renamed when complete (see HeatmapOutputs). Frames: level-0 pixels throughout (grid.hpp,
// stitch.hpp); the rasters cover the slide from its level-0 origin, with resolution tags.
//
// Thread-safety: run_heatmap() uses the model from its serial inference node only; run one per
// Model at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wsi/grid.hpp"
#include "wsi/model.hpp"
#include "wsi/tissue.hpp"

namespace wsi {

struct HeatmapParams {
  HeatmapParams() { grid.target_mpp.reset(); }  // unset: read patches at the model's mpp
  TissueParams tissue;
  GridParams grid;                 // patch_size and target_mpp are taken from the model unless set
  int batch = 64;                  // patches per forward pass
  bool gradcam = true;             // stitch Grad-CAM into NAME.cam.tif (needs the model's split)
  int cam_per_patch = 8;           // saliency raster pixels per patch side
  double overlay_mpp = 8.0;        // µm per pixel of NAME.overlay.tif
  double overlay_alpha = 0.5;      // colour weight over the slide where probability >= overlay_min
  double overlay_min = 0.1;        // probabilities below this leave the slide visible
  double threshold = 0.5;          // tumour regions, areas, patch counts in the summary
  double froc_threshold = 0.1;     // local maxima reported in NAME.froc.csv
  bool float32 = false;            // also NAME.prob.f32.tif (float probabilities, NaN = none)
  // The slide fails (no output) when more than this share of its tissue patches fail to decode:
  // a heatmap of what is left would pass for a whole one.
  double max_failed = 0.5;
  int threads = 0;                 // LibTorch's threads, which read on a CPU; on a GPU the readers
                                   // (0 = one per core; more than the cores: resolve_threads)
  int in_flight = 0;               // batches in the graph (0 = 2 + threads; 4 on a GPU)
  std::optional<double> mpp_override;  // µm per level-0 pixel for slides without metadata
  std::string name;                    // NAME of the outputs (empty: the slide's file stem)
  const std::atomic<bool>* cancel = nullptr;  // set (e.g. by SIGINT): stop, clean up, throw Error

  void validate() const;           // throws UsageError naming the option
};

// The flags, JSON keys, defaults, help and checks of HeatmapParams (params.hpp), the tissue and
// grid tables included: what `heatmap` and `batch` register, --print-config and presets use, and
// the summary's `parameters` record. Not in it: name, threads, in_flight (they change no output), overlay_alpha and
// overlay_min (no flags).
const ParamTable<HeatmapParams>& heatmap_param_table();

// A preset file (pipelines/presets/*.json): an object of heatmap_param_table() keys and values,
// plus an optional "description"; a "run" object (--print-config's model, device, output) is
// passed over, so --print-config's output is a preset. Sets each key into `params` unless keep(flag) (the command line
// gave it). Throws ConfigError naming the file and the key: not JSON, an unknown key (a dashed
// spelling is told its snake_case one), a value of the wrong type. Thread-safe for distinct params.
void apply_heatmap_preset(const std::filesystem::path& file, HeatmapParams& params,
                          const std::function<bool(const std::string& flag)>& keep);

struct HeatmapOutputs {
  std::filesystem::path prob, prob_f32, cam, overlay, thumb, patches_csv, froc_csv, regions, summary;
};

struct HeatmapProgress {
  int64_t done = 0, total = 0;  // patches
};

struct HeatmapSummary {
  std::string slide, name;
  HeatmapOutputs outputs;
  int64_t grid_patches = 0, tissue_patches = 0, processed = 0, failed = 0, tumour_patches = 0;
  double slide_score = 0;       // highest patch probability (0 without tissue)
  double tumour_area_mm2 = 0;   // area of stride cells with probability >= threshold
  double mean_probability = 0;
  std::string note;             // e.g. "no tissue found"
  std::string json;             // the full NAME.summary.json text
};

// Processes one slide. Throws SlideError (cannot open), ConfigError/UsageError (parameters),
// ModelError, WriteError (outputs; nothing partial is left under a final name).
HeatmapSummary run_heatmap(const std::filesystem::path& slide, const Model& model, const HeatmapParams& params,
                           const std::filesystem::path& out_dir,
                           const std::function<void(const HeatmapProgress&)>& progress = {});

}  // namespace wsi
