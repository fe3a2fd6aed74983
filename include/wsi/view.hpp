// wsi/view.hpp — offline HTML viewers of heatmap results (library wsi::view; the CLI's
// `wsi-heatmap view`, `heatmap --html` and `batch --html` drive it).
//
// A viewer is one self-contained folder that works from file:// with no server and no network:
//   index.html, data.js          the page and its data (summary, regions, histogram, layers)
//   assets/                      viewer.js, viewer.css, OpenSeadragon and its LICENSE.txt
//   tiles/slide_files/ ...       Deep Zoom tiles (libvips dzsave) of the slide (JPEG), of
//   tiles/prob_files/ ...        NAME.prob.tif (PNG, the raw probability as grey 0..255, coloured
//   tiles/cam_files/ ...         by the page so its threshold works live) and NAME.cam.tif (PNG)
//   thumb.png, plots/*.svg       the thumbnail and evaluate-slides' curves, when present
// Tile sources are defined in data.js (not fetched .dzi files: browsers refuse XHR from file://).
//
// Frames and units: the page's world coordinates are LEVEL-0 pixels of the slide. Each layer
// spans its raster's own extent: the slide tiles (dzi pixels x tile_mpp / slide mpp), the
// probability and Grad-CAM rasters (pixels x their `level0_pixels_per_pixel`), so every layer
// covers the slide's physical size to within one of its own pixels; regions are the GeoJSON's
// level-0 pixel coordinates. mpp values are µm per pixel.
//
// Memory: the slide tiles stream (libvips reads the slide region by region through wsi::Slide
// and dzsave writes tiles as it goes); the rasters are the results' own small pyramids.
//
// Outputs are built in a temporary folder beside the final one and renamed into place when
// complete, so a crash, a full disk or Ctrl-C never leaves a half-written viewer under its name;
// an existing viewer is replaced whole (a folder that is not a viewer is never replaced).
//
// Thread-safety: the functions touch only the folders they name; run one per folder at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wsi {

struct ViewParams {
  std::filesystem::path slide;          // empty: the slide the summary names
  bool no_slide = false;                // base layer from NAME.overlay.tif (no slide at hand)
  std::optional<double> tile_mpp;       // µm per pixel of the slide tiles (default: the overlay's)
  std::optional<double> mpp_override;   // level-0 µm per pixel of the slide (as heatmap --mpp)
  // The slide's mpp is the one the results were made with (batch: the run passed --mpp or
  // --mpp-csv itself); otherwise a slide whose own mpp differs from the summary's is refused.
  bool mpp_from_results = false;
  std::filesystem::path evaluation;     // evaluate-slides output (default: the results folder's)
  std::string name;                     // NAME, when the results folder holds several slides
  int jpeg_quality = 85;                // slide tiles
  const std::atomic<bool>* cancel = nullptr;  // set (e.g. by SIGINT): stop, clean up, throw Error
};

struct ViewProgress {
  std::string stage;  // "slide", "probability", "Grad-CAM", or a slide's NAME in a batch
  int64_t done = 0, total = 0;  // pixels, or slides in a batch
  bool slides = false;          // done and total count slides (a batch), not pixels
};
using ViewProgressFn = std::function<void(const ViewProgress&)>;

struct ViewResult {
  std::string name;
  std::filesystem::path dir, page;  // the viewer folder and its index.html
  int64_t tiles = 0;                // tile files written
  double tile_mpp = 0;              // µm per pixel of the slide tiles
  std::string base;                 // "slide" or "overlay" (--no-slide)
};

// NAMEs of the NAME.summary.json files in `results_dir`, sorted. Throws UsageError when it is not
// a directory.
std::vector<std::string> result_names(const std::filesystem::path& results_dir);

// Whether `dir` holds a batch manifest (manifest.json or manifest.shard-*.json).
bool is_batch_dir(const std::filesystem::path& dir);

// The default viewer folder of NAME's results: RESULTS/NAME.viewer.
std::filesystem::path default_view_dir(const std::filesystem::path& results_dir, const std::string& name);

// Writes the viewer of one slide's results (RESULTS/NAME.summary.json and the files beside it)
// into `view_dir` (empty: default_view_dir). `index_link` (optional) is the URL of a batch index
// relative to the viewer, shown as a link back. Throws UsageError (no summary, several without
// params.name, a slide that does not match the results, an unusable option or output folder),
// SlideError, ConfigError (a results file that is malformed), WriteError.
ViewResult write_view(const std::filesystem::path& results_dir, const std::filesystem::path& view_dir,
                      const ViewParams& params, const ViewProgressFn& progress = {},
                      const std::string& index_link = {});

struct BatchViewResult {
  std::filesystem::path index;  // index.html
  int slides = 0, done = 0, failed = 0;   // manifest entries; failed includes skipped
  int viewers_written = 0, viewers_kept = 0;
  std::vector<std::pair<std::string, std::string>> failed_slides;    // NAME, the manifest's reason
  std::vector<std::pair<std::string, std::string>> viewer_failures;  // NAME, reason
};

// The viewers of a batch's done slides (BATCH/NAME/ results) and `index.html`: every slide of the
// manifests with its thumbnail, score, tumour area, status (failed and skipped with their
// reasons) and a link to its viewer, sorted by score. With `out_dir` empty, viewers go to
// BATCH/NAME/NAME.viewer and the index to BATCH/index.html; otherwise to OUT/NAME/ and
// OUT/index.html. A viewer newer than its summary is kept. A slide whose viewer cannot be made is
// listed with the reason (and in viewer_failures); the index is still written. Throws UsageError
// (not a batch folder), ConfigError (a manifest that is not one), WriteError.
BatchViewResult write_batch_view(const std::filesystem::path& batch_dir, const std::filesystem::path& out_dir,
                                 const ViewParams& params, const ViewProgressFn& progress = {});

}  // namespace wsi
