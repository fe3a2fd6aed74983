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
// The whole evaluation (evaluate_slides, below, in library wsi::slide_eval, which also reads
// slides, masks and annotations) labels each patch from its ground truth and writes
// evaluation.json (and the FROC curve) into an output directory.
//
// Thread-safety: everything here is a pure function of its arguments, except that read_* read
// their file, find_slide_results lists a directory, and evaluate_slides reads its inputs and
// writes its outputs (run concurrent evaluations into different output directories).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wsi/labels.hpp"
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

// ---- Evaluating a results directory against ground truth (library wsi::slide_eval) ----

// Samples per patch side when labelling a patch from its ground truth: PCam's 96, so the default
// `center` rule looks at the central 32 x 32 of them, as `extract` does.
inline constexpr int kSlideEvalLabelSamples = 96;
// The FROC's lesion maps are read at the coarsest power-of-two downsample of level 0 that stays at
// or under this many µm per pixel (Camelyon16 used level 5 of a 0.243 µm scan: 7.8 µm).
inline constexpr double kLesionMapMaxUm = 10.0;
// That downsample for level-0 `mpp` (µm per pixel): the largest power of two d with
// mpp * d <= kLesionMapMaxUm, at least 1.
double lesion_map_downsample(double mpp);

struct SlideEvalOptions {
  std::filesystem::path results;    // directory of NAME.patches.csv and/or NAME.froc.csv
  // Ground-truth files and directories (their regular, non-hidden files of a known truth_kind,
  // sorted; not recursive), as given: messages name them so. Paired by match_truth.
  std::vector<std::string> truth;
  // Slides (files or directories of slide files, matched to NAME case-insensitively): only their
  // level-0 size (for masks that are a downsample) and mpp are read.
  std::vector<std::string> slides;
  std::filesystem::path out;        // output directory; empty = `results`
  LabelRule rule;                   // on kSlideEvalLabelSamples samples per patch side
  double threshold = 0.5;           // a patch is predicted tumour at probability >= threshold
  double mpp = 0;                   // level-0 µm per pixel of every slide; 0 = from the slide or mask
  bool normal_if_missing = false;   // a NAME without a truth file is a normal slide
  bool allow_no_tumour = false;     // accept annotation files without a tumour shape
  FrocDefinition froc = FrocDefinition::official;
};

// One slide's part of the evaluation.
struct SlideEvalEntry {
  std::string name;                       // NAME of its result files
  std::string truth;                      // its ground truth, described ("none: ..." for a normal slide)
  std::optional<PatchScores> patches;     // with NAME.patches.csv: its patch-level scores
  int64_t lesions = 0, itc_excluded = 0;  // with NAME.froc.csv: lesions counted, ITCs excluded
  std::vector<std::string> notes;         // e.g. why a score is absent
};

struct SlideEvaluation {
  std::vector<SlideEvalEntry> slides;     // sorted by NAME
  std::optional<PatchScores> pooled;      // all slides' patches together (with patch CSVs)
  std::optional<FrocResult> froc;         // over all slides (with FROC CSVs)
  int64_t itc_excluded = 0;               // over all slides
  // Everything the user should read: choices made (which truth file), scores undefined, truth
  // files unused, slides taken as normal; per-slide notes prefixed "NAME: ".
  std::vector<std::string> notes;
  std::filesystem::path out;              // the output directory
  // What was written into `out`: evaluation.json, then froc_curve.csv and froc_curve.svg with
  // FROC CSVs.
  std::vector<std::string> written;
};

// Reads the results in options.results (find_slide_results), pairs them with options.truth
// (match_truth), labels each patch from its truth with options.rule (a patch must be square and
// overlap the truth's extent), scores each slide and all together (score_patches), computes the
// Camelyon16 FROC over the slides' lesion maps (lesion_map_downsample; needs each slide's mpp:
// options.mpp, else a slide's or mask's own), and writes `out`/evaluation.json (the figures,
// per slide and pooled, the FROC curve and the notes) plus froc_curve.csv and froc_curve.svg,
// each under a temporary name and renamed when complete.
// `prepare_out` is called with the output directory once every input is checked and before
// anything is read at length or written (the CLI checks and creates it there); without it the
// directory is created. Throws UsageError (bad options, missing files, no truth for a slide
// without normal_if_missing, unknown mpp for the FROC), ConfigError (bad CSV rows, patches that
// are not square or lie outside their truth, ambiguous truth files), SlideError for unreadable
// masks and slides, WriteError for the outputs.
SlideEvaluation evaluate_slides(const SlideEvalOptions& options,
                                const std::function<void(const std::filesystem::path&)>& prepare_out = {});

}  // namespace wsi
