// wsi/slide_eval.hpp — evaluating heatmap outputs on whole slides: the per-slide result files,
// their pairing with ground-truth files, and patch-level scores (AUC, Dice, confusion matrix).
//
// The contract with the heatmap pipeline, per slide NAME in one results directory:
//   NAME.patches.csv  header line naming the columns `x,y,width,height,probability` (any order;
//                     other columns are ignored), then one row per patch: x, y = LEVEL-0 pixels of
//                     the patch's top-left corner, width, height = its extent in LEVEL-0 pixels
//                     (> 0), probability = predicted tumour probability in 0..1.
//   NAME.froc.csv     Camelyon16 detections, one `prob,x,y` row each: x, y = LEVEL-0 pixels of the
//                     detection's centre, prob in 0..1. An empty file is a slide without detections.
//                     The official Evaluation_FROC.py reads exactly that, without a header and with
//                     integer x, y (float(prob), int(x), int(y) per line), which is what the heatmap
//                     writes (regions.hpp, froc_csv). Also read, for files written before (the
//                     heatmap's had a `prob,x,y` header and fractional x, y) and by other tools,
//                     but not by the official script: a header line (a first line without any
//                     number) naming the columns (prob|probability|confidence|score, x, y; any
//                     order; others ignored), and fractional x, y.
// CSV rules for both: comma-separated, spaces, tabs and a trailing CR around fields are ignored,
// blank lines are skipped, numbers must be finite decimal numbers. Every malformed row is a
// ConfigError that names the file and the 1-based line: "a.patches.csv:7: ...".
//
// Ground-truth files are paired with result NAMEs by file name (see truth_key): `NAME.tif`,
// `NAME_mask.tif`, `NAME.xml`, `NAME.json`, `NAME.geojson`, compared case-insensitively, because
// Camelyon16 ships `tumor_001.tif` beside `Tumor_001.xml` and `Tumor_001_Mask.tif`.
//
// Patch scores follow metrics.hpp: a patch is predicted tumour when probability >= threshold;
// Dice = 2TP / (2TP + FP + FN) over patches, undefined (absent) when there is neither a tumour
// patch nor a predicted one; AUC is absent when one class is missing.
//
// Thread-safety: everything here is a pure function of its arguments, except that read_* read
// their file and find_slide_results lists a directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "wsi/metrics.hpp"

namespace wsi {

// One row of NAME.patches.csv.
struct PatchPrediction {
  double x = 0, y = 0;           // level-0 top-left
  double width = 0, height = 0;  // level-0 extent
  double probability = 0;        // 0..1
  int64_t line = 0;              // 1-based line in its file, for messages
};

// `source` names the file in messages. Throws ConfigError "SOURCE:LINE: what".
std::vector<PatchPrediction> parse_patch_csv(const std::string& text, const std::string& source);
std::vector<Detection> parse_detection_csv(const std::string& text, const std::string& source);
// The same from a file; UsageError when it cannot be opened.
std::vector<PatchPrediction> read_patch_csv(const std::filesystem::path& path);
std::vector<Detection> read_detection_csv(const std::filesystem::path& path);

// The result files of one slide.
struct SlideResultFiles {
  std::string name;                                  // NAME as written in the file names
  std::optional<std::filesystem::path> patches;      // NAME.patches.csv
  std::optional<std::filesystem::path> detections;   // NAME.froc.csv
};

// Pairs `NAME.patches.csv` and `NAME.froc.csv` among `files` (other names are ignored), sorted by
// NAME. Throws ConfigError when there is none, or when some slides have a file of a kind that
// others lack (both kinds must be present for all slides or for none), naming those slides.
std::vector<SlideResultFiles> pair_slide_results(const std::vector<std::filesystem::path>& files);
// pair_slide_results over the regular files of `dir` (not recursive). UsageError when `dir` is
// not a directory.
std::vector<SlideResultFiles> find_slide_results(const std::filesystem::path& dir);

enum class TruthKind { mask, annotations };

// TIFF (.tif, .tiff) = mask; .xml, .json, .geojson = annotations; anything else nullopt.
std::optional<TruthKind> truth_kind(const std::filesystem::path& path);
// The file name without its extension, lower-cased, without a trailing "_mask" / "-mask" /
// ".mask": "Tumor_001_Mask.tif" -> "tumor_001".
std::string truth_key(const std::filesystem::path& path);

struct TruthMatch {
  struct Entry {
    std::filesystem::path path;
    TruthKind kind = TruthKind::mask;
  };
  std::vector<std::optional<Entry>> truth;     // per name, in the order given
  std::vector<std::string> unmatched_names;    // names without any truth file
  std::vector<std::filesystem::path> unused;   // candidates that matched no name
  std::vector<std::string> notes;              // e.g. which of two candidates was taken
};

// Pairs each name with one candidate file of the same truth_key (names compared lower-cased).
// Preference when several match: `NAME_mask.tif` (a mask named as one) over annotations over a
// plain `NAME.tif` (which may be the slide itself, so it comes last; the choice is noted).
// Candidates of an unknown kind are ignored. Throws ConfigError when two candidates of the same
// preference match one name (e.g. NAME.xml and NAME.json), naming both.
TruthMatch match_truth(const std::vector<std::string>& names, const std::vector<std::filesystem::path>& candidates);

// Patch-level scores of one slide or of pooled slides.
struct PatchScores {
  int64_t patches = 0, tumour = 0;   // all patches; of them, labelled tumour
  ConfusionMatrix confusion;         // at the threshold
  std::optional<double> auc;         // absent when every patch has the same label
  std::optional<double> dice;        // absent when 2TP + FP + FN == 0
};

// Dice (F1 of the tumour class) = 2TP / (2TP + FP + FN); nullopt when the denominator is 0.
std::optional<double> dice(const ConfusionMatrix& cm);

// `probability` and `label` (0/1) per patch. Throws ConfigError when sizes differ.
PatchScores score_patches(const std::vector<double>& probability, const std::vector<int>& label, double threshold);

}  // namespace wsi
