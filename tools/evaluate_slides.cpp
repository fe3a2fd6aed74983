// `wsi-heatmap evaluate-slides --results DIR --truth PATH...`: heatmap outputs against slide ground
// truth: patch-level ROC AUC, Dice and confusion matrix per slide and pooled, and the Camelyon16
// lesion-level FROC over all slides (the file contract is in include/wsi/slide_eval.hpp; the FROC
// definitions, official by default and corrected with --froc corrected, in include/wsi/metrics.hpp).
#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/json_text.hpp"
#include "commands.hpp"
#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "wsi/annotations.hpp"
#include "wsi/error.hpp"
#include "wsi/labels.hpp"
#include "wsi/metrics.hpp"
#include "wsi/slide.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// Samples per patch side when labelling a patch from its ground truth (PCam's 96, so the default
// `center` rule looks at the central 32 x 32 of them, as in `extract`).
constexpr int kLabelSamples = 96;
// Camelyon16 evaluates lesions on level 5 of a 0.243 µm scan (7.8 µm per pixel); we take the
// coarsest power-of-two downsample that stays at or under this many µm per lesion-map pixel.
constexpr double kLesionMapMaxUm = 10.0;

struct EvaluateSlidesOptions {
  std::string results, out, rule = "center";
  std::vector<std::string> truth, slides;
  double threshold = 0.5, mpp = 0;
  bool normal_if_missing = false;
  bool allow_no_tumour = false;
  std::string froc = froc_definition_name(FrocDefinition::official);  // checked by the option
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Polygon truth when no slide was given to check it against: the rasteriser alone.
class PolygonTruth final : public GroundTruth {
 public:
  explicit PolygonTruth(AnnotationSet set) : set_(std::move(set)) {}
  GrayImage classes(double x0, double y0, double scale, int64_t w, int64_t h) const override {
    return rasterize(set_, x0, y0, scale, w, h);
  }
  std::string describe() const override {
    return set_.format + " " + set_.source.string() + " (" + std::to_string(set_.shapes.size()) + " shapes)";
  }

 private:
  AnnotationSet set_;
};

// The ground truth of one slide, in the slide's level-0 frame.
struct Truth {
  std::unique_ptr<GroundTruth> source;  // null: a normal slide without a truth file
  std::string describe;
  fs::path path;                        // the truth file ("" for none)
  double width = 0, height = 0;         // level-0 extent the truth covers
  bool extent_known = false;            // from a mask or a slide (not guessed from polygons)
  double mpp = 0;                       // level-0 µm per pixel, 0 = unknown
  std::string mpp_from;
};

// Files named on the command line, directories expanded one level; `keep` filters directory entries.
template <typename Keep>
std::vector<fs::path> expand(const std::vector<std::string>& args, const std::string& flag, Keep keep) {
  std::vector<fs::path> out;
  for (const std::string& a : args) {
    const fs::path p(a);
    if (!fs::exists(p)) throw UsageError(a + ": no such file or directory (" + flag + ")");
    if (fs::is_directory(p)) {
      std::vector<fs::path> here;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.' && keep(e.path())) here.push_back(e.path());
      std::sort(here.begin(), here.end());
      out.insert(out.end(), here.begin(), here.end());
    } else {
      out.push_back(p);
    }
  }
  return out;
}

bool is_slide_file(const fs::path& p) {
  static const char* exts[] = {".tif", ".tiff", ".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"};
  const std::string e = lower(p.extension().string());
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

double mean_mpp(const Slide& s) { return (s.mpp().x + s.mpp().y) / 2; }

Truth load_truth(const std::optional<TruthMatch::Entry>& entry, const Slide* slide,
                 const EvaluateSlidesOptions& opt) {
  Truth t;
  if (opt.mpp > 0) t.mpp = opt.mpp, t.mpp_from = "--mpp";
  auto slide_mpp = [&](const Slide& s) {
    if (t.mpp > 0 || !s.mpp().known()) return;
    t.mpp = mean_mpp(s);
    t.mpp_from = s.path().string() + (s.mpp().is_guess() ? " (a guess from the objective power)" : "");
  };
  if (slide) {
    t.width = static_cast<double>(slide->width());
    t.height = static_cast<double>(slide->height());
    t.extent_known = true;
    slide_mpp(*slide);
  }
  if (!entry) {
    t.describe = "none: a normal slide (--normal-if-missing)";
    return t;
  }
  t.path = entry->path;
  if (entry->kind == TruthKind::mask) {
    const Slide mask(entry->path);
    t.source = make_mask_truth(entry->path, slide ? *slide : mask, MaskValueMap{});
    if (!slide) {
      t.width = static_cast<double>(mask.width());
      t.height = static_cast<double>(mask.height());
      t.extent_known = true;
      slide_mpp(mask);  // a mask without a slide is taken at the slide's level-0 size
    }
  } else {
    AnnotationSet set = load_annotations(entry->path);
    if (!opt.allow_no_tumour) require_tumour(set);
    if (slide) {
      t.source = make_annotation_truth(std::move(set), *slide);
    } else {
      t.width = std::max(0.0, std::ceil(set.max_x()));
      t.height = std::max(0.0, std::ceil(set.max_y()));
      t.source = std::make_unique<PolygonTruth>(std::move(set));
    }
  }
  t.describe = t.source->describe();
  return t;
}

// Labels every patch from `truth`, in contiguous blocks over the available cores (the truth
// sources are thread-safe; a mask is read through its tile cache).
std::vector<int> label_patches(const std::vector<PatchPrediction>& patches, const Truth& truth, const LabelRule& rule,
                               const fs::path& csv) {
  std::vector<int> labels(patches.size(), 0);
  if (!truth.source) return labels;
  for (const PatchPrediction& p : patches) {
    if (std::abs(p.width - p.height) > 1) {
      std::ostringstream m;
      m << csv.string() << ":" << p.line << ": the patch is " << p.width << " x " << p.height
        << " level-0 pixels; evaluate-slides labels square patches only";
      throw ConfigError(m.str());
    }
    if (truth.extent_known && (p.x >= truth.width || p.y >= truth.height || p.x + p.width <= 0 || p.y + p.height <= 0)) {
      std::ostringstream m;
      m << csv.string() << ":" << p.line << ": the patch at x=" << p.x << " y=" << p.y << " lies outside the "
        << truth.width << " x " << truth.height << " level-0 pixels of " << truth.describe
        << "; if the mask is a downsample of the slide, pass --slides so the factor is known, otherwise check that "
           "the ground truth belongs to this slide";
      throw ConfigError(m.str());
    }
  }
  const size_t n = patches.size();
  const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::max<size_t>(1, n / 64));
  std::vector<std::exception_ptr> errors(threads);
  auto work = [&](size_t t) {
    try {
      for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
        const PatchPrediction& p = patches[i];
        const GrayImage cls = truth.source->classes(p.x, p.y, p.width / kLabelSamples, kLabelSamples, kLabelSamples);
        labels[i] = label_patch(cls.pixels.data(), kLabelSamples, rule, ExclusionPolicy::normal).label;
      }
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return labels;
}

// Largest power of two d with mpp * d <= kLesionMapMaxUm (at least 1).
double lesion_downsample(double mpp) {
  double d = 1;
  while (mpp * d * 2 <= kLesionMapMaxUm + 1e-9) d *= 2;
  return d;
}

Json optional_number(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

Json scores_json(const PatchScores& s) {
  return Json{{"patches", s.patches},
              {"tumour_patches", s.tumour},
              {"auc", optional_number(s.auc)},
              {"dice", optional_number(s.dice)},
              {"confusion", {{"tn", s.confusion.tn}, {"fp", s.confusion.fp}, {"fn", s.confusion.fn}, {"tp", s.confusion.tp}}}};
}

// Why a score is absent, for the notes.
std::string missing_note(const PatchScores& s) {
  std::string n;
  if (!s.auc)
    n += s.patches == 0 ? "no patches, so no AUC" : std::string("AUC undefined: every patch is ") + (s.tumour ? "tumour" : "normal");
  if (!s.dice && s.patches > 0) n += std::string(n.empty() ? "" : "; ") + "Dice undefined: no tumour patch and none predicted";
  return n;
}

const double kFrocAt[6] = {0.25, 0.5, 1, 2, 4, 8};
const char* kFrocAtText[6] = {"1/4", "1/2", "1", "2", "4", "8"};

// FROC curve on a log2 axis of average false positives per slide (1/8 .. 8; the curve is clipped
// there, 0 lies left of the axis), with the six operating points marked.
std::string froc_svg(const FrocResult& r) {
  detail::PlotSpec p;
  p.x_label = "average false positives per slide";
  p.y_label = "lesion sensitivity";
  p.x_log2 = true;
  p.x_min = 0.125;
  p.x_max = 8;
  detail::PlotSeries curve{"", "#c0392b", {}, {}, false, false};
  for (size_t i = r.thresholds.size(); i-- > 0;) {
    curve.x.push_back(std::max(r.avg_false_positives[i], 1.0 / 64));
    curve.y.push_back(r.sensitivity[i]);
  }
  detail::PlotSeries points{"", "#2c3e50", {}, {}, false, true};
  for (int k = 0; k < 6; ++k) points.x.push_back(kFrocAt[k]), points.y.push_back(r.sensitivity_at[k]);
  p.series = {curve, points};
  std::ostringstream score;
  score << "FROC score " << std::fixed << std::setprecision(4) << r.score;
  p.notes = {score.str()};
  return detail::line_plot_svg(p);
}

std::string fmt(const std::optional<double>& v) {
  if (!v) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << *v;
  return s.str();
}

void run_evaluate_slides(const EvaluateSlidesOptions& opt) {
  if (!(opt.threshold >= 0 && opt.threshold <= 1)) throw UsageError("--threshold must be in 0..1");
  if (opt.mpp < 0 || !std::isfinite(opt.mpp)) {
    std::ostringstream m;
    m << "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not " << opt.mpp;
    throw UsageError(m.str());
  }
  const LabelRule rule = LabelRule::parse(opt.rule);
  if (opt.truth.empty() && !opt.normal_if_missing)
    throw UsageError("--truth is required: give the ground-truth masks / annotations (files or directories), or "
                     "--normal-if-missing when every slide is normal");

  const auto results = find_slide_results(opt.results);
  std::vector<std::string> names;
  for (const auto& r : results) names.push_back(r.name);
  const bool have_patches = results.front().patches.has_value(), have_froc = results.front().detections.has_value();

  const auto truth_files = expand(opt.truth, "--truth", [](const fs::path& p) { return truth_kind(p).has_value(); });
  for (const fs::path& p : truth_files)
    if (!truth_kind(p))
      throw UsageError(p.string() + ": not a ground-truth file; --truth takes masks (.tif, .tiff) and annotations "
                       "(.xml, .json, .geojson), or directories of them");
  const TruthMatch match = match_truth(names, truth_files);
  if (!match.unmatched_names.empty() && !opt.normal_if_missing) {
    std::string list;
    for (size_t i = 0; i < match.unmatched_names.size(); ++i) list += (i ? ", " : "") + match.unmatched_names[i];
    throw UsageError("no ground truth for " + std::to_string(match.unmatched_names.size()) + " of " +
                     std::to_string(names.size()) + " slides: " + list +
                     " (looked for NAME.tif, NAME_mask.tif, NAME.xml, NAME.json, NAME.geojson among --truth); pass "
                     "their masks or annotations, or --normal-if-missing if they are normal slides");
  }

  // Slides, only to know the level-0 size (for downsampled masks) and the mpp.
  std::map<std::string, fs::path> slide_files;
  for (const fs::path& p : expand(opt.slides, "--slides", is_slide_file)) {
    const std::string key = lower(p.stem().string());
    const auto [it, fresh] = slide_files.emplace(key, p);
    if (!fresh && it->second != p)
      throw UsageError("two slides named " + p.stem().string() + " among --slides: " + it->second.string() + " and " +
                       p.string() + "; pass only one");
  }

  const fs::path out = opt.out.empty() ? fs::path(opt.results) : fs::path(opt.out);
  prepare_output_dir(out);

  Json slides_json = Json::array();
  std::vector<std::string> notes = match.notes;
  std::vector<double> all_prob;
  std::vector<int> all_label;
  std::vector<SlideTruth> froc_truth;
  std::vector<std::vector<Detection>> froc_detections;
  std::vector<std::pair<std::string, PatchScores>> table;
  int64_t itc_total = 0;

  for (size_t i = 0; i < results.size(); ++i) {
    const SlideResultFiles& res = results[i];
    std::optional<Slide> slide;
    if (!slide_files.empty() && match.truth[i]) {
      const auto it = slide_files.find(lower(res.name));
      if (it == slide_files.end())
        throw UsageError("no slide named " + res.name + " among --slides (needed for its ground truth " +
                         match.truth[i]->path.string() + ")");
      slide.emplace(it->second);
    }
    const Truth truth = load_truth(match.truth[i], slide ? &*slide : nullptr, opt);
    Json sj{{"name", res.name}, {"truth", truth.describe}};
    if (slide) sj["slide"] = slide->path().string();
    Json slide_notes = Json::array();

    if (res.patches) {
      const auto patches = read_patch_csv(*res.patches);
      const auto labels = label_patches(patches, truth, rule, *res.patches);
      std::vector<double> prob;
      prob.reserve(patches.size());
      for (const auto& p : patches) prob.push_back(p.probability);
      const PatchScores s = score_patches(prob, labels, opt.threshold);
      all_prob.insert(all_prob.end(), prob.begin(), prob.end());
      all_label.insert(all_label.end(), labels.begin(), labels.end());
      sj["patches_csv"] = res.patches->string();
      sj["patch_level"] = scores_json(s);
      if (const std::string n = missing_note(s); !n.empty()) slide_notes.push_back(n);
      if (truth.source && s.tumour == 0 && s.patches > 0)
        slide_notes.push_back("no patch is labelled tumour by " + truth.describe +
                              "; if the slide has tumour, check that the ground truth belongs to it");
      if (truth.source && s.patches > 1 && s.tumour == s.patches)
        slide_notes.push_back("every patch is labelled tumour by " + truth.describe +
                              "; if that file is the slide itself rather than its mask, pass the mask");
      table.emplace_back(res.name, s);
    }

    if (res.detections) {
      const auto det = read_detection_csv(*res.detections);
      SlideTruth st;
      st.name = res.name;
      Json fj{{"froc_csv", res.detections->string()}, {"detections", det.size()}};
      if (truth.source) {
        if (!(truth.mpp > 0))
          throw UsageError(res.name + ": the FROC needs the microns per pixel of the slide, and " + truth.path.string() +
                           " does not say; pass --mpp (level-0 um per pixel) or --slides");
        const double ds = lesion_downsample(truth.mpp);
        const auto w = static_cast<int64_t>(std::ceil(truth.width / ds)), h = static_cast<int64_t>(std::ceil(truth.height / ds));
        if (w > 0 && h > 0) {
          const GrayImage cls = truth.source->classes(0, 0, ds, w, h);
          std::vector<uint8_t> tumour(cls.pixels.size());
          std::transform(cls.pixels.begin(), cls.pixels.end(), tumour.begin(), [](uint8_t c) { return c == kClassTumour; });
          st.lesions = camelyon_lesion_map(tumour, w, h, truth.mpp * ds);
          st.downsample = ds;
        }
        const auto itc = std::count(st.lesions.itc.begin(), st.lesions.itc.end(), true);
        itc_total += itc;
        fj["lesions"] = st.lesions.lesions() - itc;
        fj["itc_excluded"] = itc;
        fj["lesion_map"] = {{"width", st.lesions.width}, {"height", st.lesions.height}, {"downsample", ds},
                            {"um_per_pixel", truth.mpp * ds}, {"mpp_from", truth.mpp_from}};
      } else {
        fj["lesions"] = 0;
        fj["itc_excluded"] = 0;
      }
      sj["froc"] = fj;
      froc_truth.push_back(std::move(st));
      froc_detections.push_back(det);
    }
    sj["notes"] = slide_notes;
    for (const auto& n : slide_notes) notes.push_back(res.name + ": " + n.get<std::string>());
    slides_json.push_back(std::move(sj));
  }

  if (!match.unmatched_names.empty()) {
    std::string list;
    for (size_t i = 0; i < match.unmatched_names.size(); ++i) list += (i ? ", " : "") + match.unmatched_names[i];
    notes.push_back("no ground truth for " + list + ": taken as normal (--normal-if-missing)");
  }
  if (!match.unused.empty()) {
    std::string list;
    for (size_t i = 0; i < match.unused.size(); ++i) list += (i ? ", " : "") + match.unused[i].string();
    notes.push_back(std::to_string(match.unused.size()) + " ground-truth file(s) match no result and were not used: " + list);
  }

  Json report{{"results", opt.results},
              {"threshold", opt.threshold},
              {"label_rule", rule.to_string()},
              {"label_samples_per_side", kLabelSamples},
              {"slides", slides_json}};
  std::ostringstream text;
  text << "evaluate-slides: " << results.size() << " slide(s) from " << opt.results << "\n";
  std::optional<PatchScores> pooled;
  if (have_patches) {
    pooled = score_patches(all_prob, all_label, opt.threshold);
    report["pooled"] = scores_json(*pooled);
    if (const std::string n = missing_note(*pooled); !n.empty()) notes.push_back("pooled: " + n);
    size_t nw = 6;
    for (const auto& [n, s] : table) nw = std::max(nw, n.size());
    text << "patch level (label rule " << rule.to_string() << ", threshold " << opt.threshold << ")\n"
         << std::left << std::setw(static_cast<int>(nw)) << "slide" << std::right << std::setw(9) << "patches"
         << std::setw(8) << "tumour" << std::setw(8) << "AUC" << std::setw(8) << "Dice" << std::setw(8) << "TP"
         << std::setw(8) << "FP" << std::setw(8) << "FN" << std::setw(8) << "TN" << "\n";
    table.emplace_back("pooled", *pooled);
    for (const auto& [n, s] : table)
      text << std::left << std::setw(static_cast<int>(nw)) << n << std::right << std::setw(9) << s.patches << std::setw(8)
           << s.tumour << std::setw(8) << fmt(s.auc) << std::setw(8) << fmt(s.dice) << std::setw(8) << s.confusion.tp
           << std::setw(8) << s.confusion.fp << std::setw(8) << s.confusion.fn << std::setw(8) << s.confusion.tn << "\n";
  }
  std::vector<std::string> written;
  if (have_froc) {
    const FrocResult fr =
        camelyon_froc(froc_truth, froc_detections,
                      opt.froc == froc_definition_name(FrocDefinition::corrected) ? FrocDefinition::corrected
                                                                                   : FrocDefinition::official);
    Json at = Json::object();
    for (int k = 0; k < 6; ++k) at[kFrocAtText[k]] = fr.sensitivity_at[k];
    Json curve = Json::array();
    std::ostringstream csv;
    csv << "threshold,avg_false_positives_per_slide,sensitivity\n" << std::setprecision(10);
    for (size_t k = 0; k < fr.thresholds.size(); ++k) {
      curve.push_back({fr.thresholds[k], fr.avg_false_positives[k], fr.sensitivity[k]});
      csv << fr.thresholds[k] << "," << fr.avg_false_positives[k] << "," << fr.sensitivity[k] << "\n";
    }
    // The official curve ends at threshold +inf, which JSON writes as null.
    report["froc"] = {{"definition", froc_definition_name(fr.definition)},
                      {"slides", froc_truth.size()},
                      {"lesions", fr.lesions},
                      {"itc_excluded", itc_total},
                      {"sensitivity_at_fp_per_slide", at},
                      {"score", fr.score},
                      {"curve_columns", {"threshold", "avg_false_positives_per_slide", "sensitivity"}},
                      {"curve", curve}};
    if (fr.lesions == 0)
      notes.push_back(std::string("FROC: no lesions (after ITC exclusion) in any slide, so every sensitivity is 0") +
                      (fr.definition == FrocDefinition::official ? " (the official script's 0 / 0: NaN)" : ""));
    detail::write_text_file(out / "froc_curve.csv", csv.str());
    detail::write_text_file(out / "froc_curve.svg", froc_svg(fr));
    written = {"froc_curve.csv", "froc_curve.svg"};
    text << "FROC (" << froc_definition_name(fr.definition) << ") over " << froc_truth.size() << " slide(s), "
         << fr.lesions << " lesion(s)"
         << (itc_total ? ", " + std::to_string(itc_total) + " ITC excluded" : std::string()) << "\n"
         << "  FPs per slide ";
    for (int k = 0; k < 6; ++k) text << std::setw(7) << kFrocAtText[k];
    text << "\n  sensitivity   " << std::fixed << std::setprecision(3);
    for (int k = 0; k < 6; ++k) text << std::setw(7) << fr.sensitivity_at[k];
    text << "\n  FROC score (mean) " << std::setprecision(4) << fr.score << "\n";
  } else {
    report["froc"] = nullptr;
    notes.push_back("no NAME.froc.csv files, so no FROC");
  }
  report["notes"] = notes;
  detail::write_text_file(out / "evaluation.json", detail::json_text(report, 2) + "\n");
  for (const auto& n : notes) text << "note: " << n << "\n";
  text << "wrote " << (out / "evaluation.json").string();
  for (const auto& w : written) text << ", " << w;
  std::cout << text.str() << "\n";
}

}  // namespace

void setup_evaluate_slides(CLI::App& app) {
  auto opt = std::make_shared<EvaluateSlidesOptions>();
  CLI::App* sub = app.add_subcommand(
      "evaluate-slides",
      "Evaluate heatmap outputs (NAME.patches.csv, NAME.froc.csv) against slide ground truth: patch AUC and Dice, "
      "Camelyon16 FROC");
  sub->add_option("--results,-r", opt->results, "Directory holding NAME.patches.csv and/or NAME.froc.csv per slide")
      ->required();
  sub->add_option("--truth,-t", opt->truth,
                  "Ground truth: masks (.tif, 0 = normal, non-zero = tumour) and annotations (.xml, .json, .geojson), "
                  "files or directories, matched to NAME by file name");
  sub->add_flag("--normal-if-missing", opt->normal_if_missing, "A slide without a ground-truth file is a normal slide");
  sub->add_flag("--allow-no-tumour", opt->allow_no_tumour,
                "Accept annotation files without a tumour shape (their slides are normal); otherwise they are "
                "refused with the groups found");
  sub->add_option("--slides", opt->slides,
                  "The slides (files or directories, matched to NAME): their level-0 size and mpp; needed for masks that "
                  "are a downsample of the slide");
  sub->add_option("--mpp", opt->mpp, "Level-0 um per pixel of every slide, for the FROC (default: from the slide or mask)");
  sub->add_option("--label-rule", opt->rule, "center[:N] (of 96 samples per side), any, or fraction:T")
      ->capture_default_str();
  sub->add_option("--threshold", opt->threshold, "Probability at or above which a patch counts as tumour")
      ->capture_default_str();
  sub->add_option("--froc", opt->froc,
                  "FROC definition: official (Camelyon16's Evaluation_FROC.py, quirks included) or corrected (every "
                  "probability a threshold, missed lesions never found, no (0, 0) point)")
      ->check(CLI::IsMember({froc_definition_name(FrocDefinition::official),
                             froc_definition_name(FrocDefinition::corrected)}))
      ->capture_default_str();
  sub->add_option("--out,-o", opt->out, "Output directory (default: the results directory)");
  sub->callback([opt] { run_evaluate_slides(*opt); });
}

}  // namespace wsi::cli
