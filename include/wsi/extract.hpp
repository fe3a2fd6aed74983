// wsi/extract.hpp — balanced, labelled patch datasets from slides plus ground truth.
//
// Two passes, both streaming:
//   1. survey (per slide, no slide pixels at patch resolution): tissue mask → grid → labels from
//      the ground truth, queried patch by patch (oneTBB parallel_for). Keeps one small record per
//      tissue patch (tens of bytes), so memory follows the patch count, not the pixel count.
//   2. extract (per split): the picks of select_patches() flow through a oneTBB parallel_pipeline
//      — serial reader of pick chunks (contiguous runs of the grid, as the Foundation benchmark
//      showed libvips wants) → parallel read + resample + augment → serial writer — with a bounded
//      number of chunks in flight (2 per thread), so peak memory does not grow with the slide.
//
// Failure policy: a slide that cannot be opened, has no mpp, or whose ground truth does not fit
// is reported in its SlideReport and skipped; the run goes on. A region that fails to decode is
// skipped and counted (the slide handle is reopened, since OpenSlide's error state is sticky).
// A write failure (full disk) aborts the run with WriteError; the writers remove their
// temporaries, so no partial dataset is left under a final name.
//
// Frames: see grid.hpp (level-0 int64 positions, target-resolution patch pixels).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wsi/annotations.hpp"
#include "wsi/dataset.hpp"
#include "wsi/grid.hpp"
#include "wsi/labels.hpp"
#include "wsi/sampling.hpp"
#include "wsi/tissue.hpp"

namespace wsi {

struct ExtractSource {
  std::filesystem::path slide;
  std::optional<std::filesystem::path> mask;         // ground-truth mask TIFF
  std::optional<std::filesystem::path> annotations;  // ASAP XML / Camelyon JSON / GeoJSON
};

struct ExtractParams {
  TissueParams tissue;
  GridParams grid;
  LabelRule rule;
  MaskValueMap mask_values;
  AnnotationOptions annotation_options;
  ExclusionPolicy exclusion = ExclusionPolicy::normal;
  BalanceParams balance;
  SplitSpec split;
  DatasetFormat format = DatasetFormat::pcam;
  std::string prefix = "patches";   // pcam file prefix
  std::filesystem::path out_dir;
  std::optional<double> mpp_override;  // µm per level-0 pixel, for slides without metadata
  int threads = 0;                  // 0 = all cores; more than the cores: resolve_threads (runtime.hpp)
  int chunk = 32;                   // patches per pipeline token
  // Without ground truth every patch is labelled 0 (unlabelled tissue sets, e.g. for inference).
  bool allow_unlabelled = false;
  // Annotations that hold no tumour shape (every group unknown, or only exclusions) fail their
  // slide unless this is set: the slide is then taken as free of tumour.
  bool allow_no_tumour = false;

  void validate() const;  // throws ConfigError / UsageError
};

// The flags, JSON keys, defaults, help and checks of ExtractParams (params.hpp), in two tables:
// what each slide's patches are (grid with --patch-size, tissue, labels, --mpp, --max-per-slide:
// what batch passes to each slide's extract) and how the dataset is made of them (format, prefix,
// split, balance, ratio, seed, augment: batch applies these when it merges the slides' parts).
const ParamTable<ExtractParams>& extract_slide_param_table();
const ParamTable<ExtractParams>& dataset_param_table();

struct SlideReport {
  std::filesystem::path slide;
  std::string name;            // file stem, the "wsi" column
  std::string split;
  std::string error;           // non-empty: the slide was skipped, and why
  std::string note;            // something worth saying that is not an error (e.g. no tissue)
  std::string annotation_groups;  // describe_groups() of the slide's annotations (empty without)
  int64_t grid_patches = 0;    // full grid
  int64_t tissue_patches = 0;  // after the tissue filter
  int64_t positives = 0;       // candidates labelled 1
  int64_t negatives = 0;
  int64_t dropped = 0;         // touching exclusions with --exclusion skip
  int64_t selected = 0;        // picks (including copies)
  int64_t written = 0;
  int64_t read_failures = 0;   // regions that failed to decode (skipped)
  int level = 0;
  double target_mpp = 0.0;
  double tissue_fraction = 0.0;
  double survey_seconds = 0.0;
};

struct SplitReport {
  std::string name;
  int64_t slides = 0;
  int64_t positives = 0;   // written
  int64_t negatives = 0;
  int64_t copies = 0;      // oversampled duplicates written
  int64_t duplicates_skipped = 0;
  std::vector<std::filesystem::path> outputs;
};

struct ExtractSummary {
  std::vector<SlideReport> slides;
  std::vector<SplitReport> splits;
  std::filesystem::path summary_json;
  double survey_seconds = 0.0;
  double extract_seconds = 0.0;
  int64_t patches_written = 0;
  int64_t failed_slides() const;
};

// Progress: called from the serial output stage (never concurrently) with patches written so far
// and the total to write.
using ExtractProgress = std::function<void(int64_t done, int64_t total)>;

// Runs both passes and writes the dataset plus `<out_dir>/<prefix>_summary.json` (counts per label
// and split, parameters, source files, timings). Throws WriteError / ConfigError for run-level
// failures; per-slide failures are in the summary. When no slide can be used, nothing is written:
// one slide's own error is rethrown, several give an Error naming the first.
ExtractSummary run_extract(const std::vector<ExtractSource>& sources, const ExtractParams& params,
                           const ExtractProgress& progress = {});

// ---- One dataset from per-slide parts (`wsi-heatmap batch --extract`) ----
//
// A batch extracts each slide on its own (`extract SLIDE --split S=1 --prefix part`, any
// --max-per-slide cap applied there, no balancing), so a slide that fails or hangs costs only
// itself and a rerun redoes only unfinished slides. The merge then balances each split across
// all its slides by the rules run_extract() uses (select_patches with the seed and the split's
// salt; copies and D4 augmentation included) and writes the final dataset.

struct DatasetPart {
  std::string name;                 // the slide's name in the batch
  std::string split;                // the split its slide belongs to
  std::filesystem::path x_h5;       // the part's pcam patches (<dir>/part_<split>_x.h5; y beside it)
  std::filesystem::path meta_csv;   // its meta CSV (<dir>/part_<split>_meta.csv)
};

struct MergeParams {
  SplitSpec split;          // the splits, in this order; parts of other splits are ignored
  BalanceParams balance;    // max_per_slide is ignored (applied per part)
  DatasetFormat format = DatasetFormat::pcam;
  std::string prefix = "patches";
  std::filesystem::path out_dir;  // created if missing; the caller renames it into place
  int patch_size = 96;      // used only when every part is empty
};

struct MergeSummary {
  std::vector<SplitReport> splits;
  std::filesystem::path summary_json;  // <out_dir>/<prefix>_summary.json, written last
  int64_t patches_written = 0;
};

// Writes the dataset of `parts` into params.out_dir: every split's files (even an empty split's)
// and the summary. Throws ConfigError naming a part that does not read back (damaged, or patch
// sizes that differ), WriteError for the output.
MergeSummary merge_dataset_parts(const std::vector<DatasetPart>& parts, const MergeParams& params);

}  // namespace wsi
