// A results directory against slide ground truth (evaluate_slides, slide_eval.hpp): truth files
// loaded per slide, patches labelled from them, patch scores, lesion maps and the FROC, and
// evaluation.json with the FROC curve beside it.
#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "core/text.hpp"
#include "wsi/annotations.hpp"
#include "wsi/error.hpp"
#include "wsi/labels.hpp"
#include "wsi/slide.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

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

// Files named in `args`, directories expanded one level; `keep` filters directory entries.
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
  const std::string e = detail::ascii_lower(p.extension().string());
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

double mean_mpp(const Slide& s) { return (s.mpp().x + s.mpp().y) / 2; }

Truth load_truth(const std::optional<TruthMatch::Entry>& entry, const Slide* slide, const SlideEvalOptions& opt) {
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
        const GrayImage cls = truth.source->classes(p.x, p.y, p.width / kSlideEvalLabelSamples, kSlideEvalLabelSamples,
                                                    kSlideEvalLabelSamples);
        labels[i] = label_patch(cls.pixels.data(), kSlideEvalLabelSamples, rule, ExclusionPolicy::normal).label;
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

std::string joined(const std::vector<std::string>& items) {
  std::string list;
  for (size_t i = 0; i < items.size(); ++i) list += (i ? ", " : "") + items[i];
  return list;
}

void check_options(const SlideEvalOptions& opt) {
  if (!(opt.threshold >= 0 && opt.threshold <= 1)) throw UsageError("--threshold must be in 0..1");
  if (opt.mpp < 0 || !std::isfinite(opt.mpp)) {
    std::ostringstream m;
    m << "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not " << opt.mpp;
    throw UsageError(m.str());
  }
  if (opt.truth.empty() && !opt.normal_if_missing)
    throw UsageError("--truth is required: give the ground-truth masks / annotations (files or directories), or "
                     "--normal-if-missing when every slide is normal");
}

// The slides named in --slides by lower-cased stem; two of one name are refused.
std::map<std::string, fs::path> slides_by_name(const std::vector<std::string>& slides) {
  std::map<std::string, fs::path> out;
  for (const fs::path& p : expand(slides, "--slides", is_slide_file)) {
    const auto [it, fresh] = out.emplace(detail::ascii_lower(p.stem().string()), p);
    if (!fresh && it->second != p)
      throw UsageError("two slides named " + p.stem().string() + " among --slides: " + it->second.string() + " and " +
                       p.string() + "; pass only one");
  }
  return out;
}

// The FROC's truth of one slide: its lesion map, read at lesion_map_downsample.
SlideTruth froc_truth_of(const std::string& name, const Truth& truth, Json& fj) {
  SlideTruth st;
  st.name = name;
  if (!truth.source) {
    fj["lesions"] = 0;
    fj["itc_excluded"] = 0;
    return st;
  }
  if (!(truth.mpp > 0))
    throw UsageError(name + ": the FROC needs the microns per pixel of the slide, and " + truth.path.string() +
                     " does not say; pass --mpp (level-0 um per pixel) or --slides");
  const double ds = lesion_map_downsample(truth.mpp);
  const auto w = static_cast<int64_t>(std::ceil(truth.width / ds)), h = static_cast<int64_t>(std::ceil(truth.height / ds));
  if (w > 0 && h > 0) {
    const GrayImage cls = truth.source->classes(0, 0, ds, w, h);
    std::vector<uint8_t> tumour(cls.pixels.size());
    std::transform(cls.pixels.begin(), cls.pixels.end(), tumour.begin(), [](uint8_t c) { return c == kClassTumour; });
    st.lesions = camelyon_lesion_map(tumour, w, h, truth.mpp * ds);
    st.downsample = ds;
  }
  const auto itc = std::count(st.lesions.itc.begin(), st.lesions.itc.end(), true);
  fj["lesions"] = st.lesions.lesions() - itc;
  fj["itc_excluded"] = itc;
  fj["lesion_map"] = {{"width", st.lesions.width}, {"height", st.lesions.height}, {"downsample", ds},
                      {"um_per_pixel", truth.mpp * ds}, {"mpp_from", truth.mpp_from}};
  return st;
}

// Per-slide notes on the patch scores: absent scores, and truth that looks like the wrong file.
std::vector<std::string> patch_notes(const PatchScores& s, const Truth& truth) {
  std::vector<std::string> notes;
  if (const std::string n = missing_note(s); !n.empty()) notes.push_back(n);
  if (truth.source && s.tumour == 0 && s.patches > 0)
    notes.push_back("no patch is labelled tumour by " + truth.describe +
                    "; if the slide has tumour, check that the ground truth belongs to it");
  if (truth.source && s.patches > 1 && s.tumour == s.patches)
    notes.push_back("every patch is labelled tumour by " + truth.describe +
                    "; if that file is the slide itself rather than its mask, pass the mask");
  return notes;
}

// report["froc"] and the curve files.
Json froc_json(const FrocResult& fr, size_t slides, int64_t itc_total, const fs::path& out) {
  Json at = Json::object();
  for (int k = 0; k < 6; ++k) at[kFrocAtText[k]] = fr.sensitivity_at[k];
  Json curve = Json::array();
  std::ostringstream csv;
  csv << "threshold,avg_false_positives_per_slide,sensitivity\n" << std::setprecision(10);
  for (size_t k = 0; k < fr.thresholds.size(); ++k) {
    curve.push_back({fr.thresholds[k], fr.avg_false_positives[k], fr.sensitivity[k]});
    csv << fr.thresholds[k] << "," << fr.avg_false_positives[k] << "," << fr.sensitivity[k] << "\n";
  }
  detail::write_text_file(out / "froc_curve.csv", csv.str());
  detail::write_text_file(out / "froc_curve.svg", froc_svg(fr));
  // The official curve ends at threshold +inf, which JSON writes as null.
  return {{"definition", froc_definition_name(fr.definition)},
          {"slides", slides},
          {"lesions", fr.lesions},
          {"itc_excluded", itc_total},
          {"sensitivity_at_fp_per_slide", at},
          {"score", fr.score},
          {"curve_columns", {"threshold", "avg_false_positives_per_slide", "sensitivity"}},
          {"curve", curve}};
}

}  // namespace

double lesion_map_downsample(double mpp) {
  double d = 1;
  while (mpp * d * 2 <= kLesionMapMaxUm + 1e-9) d *= 2;
  return d;
}

namespace {

// What every slide adds to the pooled scores and the FROC.
struct Pooled {
  std::vector<double> prob;
  std::vector<int> label;
  std::vector<SlideTruth> froc_truth;
  std::vector<std::vector<Detection>> froc_detections;
};

// One slide's result against its truth: its entry, its part of evaluation.json, and what it adds
// to `pooled`. `slide_files`: the --slides by lower-case name (for a downsampled mask's frame).
SlideEvalEntry evaluate_one(const SlideResultFiles& res, const std::optional<TruthMatch::Entry>& truth_file,
                            const std::map<std::string, fs::path>& slide_files, const SlideEvalOptions& opt,
                            Pooled& pooled, Json& sj) {
  std::optional<Slide> slide;
  if (!slide_files.empty() && truth_file) {
    const auto it = slide_files.find(detail::ascii_lower(res.name));
    if (it == slide_files.end())
      throw UsageError("no slide named " + res.name + " among --slides (needed for its ground truth " +
                       truth_file->path.string() + ")");
    slide.emplace(it->second);
  }
  const Truth truth = load_truth(truth_file, slide ? &*slide : nullptr, opt);
  SlideEvalEntry entry{res.name, truth.describe, std::nullopt, 0, 0, {}};
  sj = Json{{"name", res.name}, {"truth", truth.describe}};
  if (slide) sj["slide"] = slide->path().string();
  if (res.patches) {
    const auto patches = read_patch_csv(*res.patches);
    const auto labels = label_patches(patches, truth, opt.rule, *res.patches);
    std::vector<double> prob;
    prob.reserve(patches.size());
    for (const auto& p : patches) prob.push_back(p.probability);
    entry.patches = score_patches(prob, labels, opt.threshold);
    pooled.prob.insert(pooled.prob.end(), prob.begin(), prob.end());
    pooled.label.insert(pooled.label.end(), labels.begin(), labels.end());
    sj["patches_csv"] = res.patches->string();
    sj["patch_level"] = scores_json(*entry.patches);
    entry.notes = patch_notes(*entry.patches, truth);
  }
  if (res.detections) {
    auto det = read_detection_csv(*res.detections);
    Json fj{{"froc_csv", res.detections->string()}, {"detections", det.size()}};
    pooled.froc_truth.push_back(froc_truth_of(res.name, truth, fj));
    pooled.froc_detections.push_back(std::move(det));
    entry.lesions = fj["lesions"].get<int64_t>();
    entry.itc_excluded = fj["itc_excluded"].get<int64_t>();
    sj["froc"] = fj;
  }
  sj["notes"] = entry.notes;
  return entry;
}

}  // namespace

SlideEvaluation evaluate_slides(const SlideEvalOptions& opt, const std::function<void(const fs::path&)>& prepare_out) {
  check_options(opt);
  const auto results = find_slide_results(opt.results);
  std::vector<std::string> names;
  for (const auto& r : results) names.push_back(r.name);

  const auto truth_files = expand(opt.truth, "--truth", [](const fs::path& p) { return truth_kind(p).has_value(); });
  for (const fs::path& p : truth_files)
    if (!truth_kind(p))
      throw UsageError(p.string() + ": not a ground-truth file; --truth takes masks (.tif, .tiff) and annotations "
                       "(.xml, .json, .geojson), or directories of them");
  const TruthMatch match = match_truth(names, truth_files);
  if (!match.unmatched_names.empty() && !opt.normal_if_missing)
    throw UsageError("no ground truth for " + std::to_string(match.unmatched_names.size()) + " of " +
                     std::to_string(names.size()) + " slides: " + joined(match.unmatched_names) +
                     " (looked for NAME.tif, NAME_mask.tif, NAME.xml, NAME.json, NAME.geojson among --truth); pass "
                     "their masks or annotations, or --normal-if-missing if they are normal slides");
  // Slides, only to know the level-0 size (for downsampled masks) and the mpp.
  const std::map<std::string, fs::path> slide_files = slides_by_name(opt.slides);

  SlideEvaluation ev;
  ev.out = opt.out.empty() ? opt.results : opt.out;
  if (prepare_out) {
    prepare_out(ev.out);
  } else if (std::error_code ec; !fs::create_directories(ev.out, ec) && ec) {
    throw WriteError(ev.out, "cannot create the output directory: " + ec.message());
  }

  Json slides_json = Json::array();
  ev.notes = match.notes;
  Pooled pooled;
  for (size_t i = 0; i < results.size(); ++i) {
    Json sj;
    SlideEvalEntry entry = evaluate_one(results[i], match.truth[i], slide_files, opt, pooled, sj);
    ev.itc_excluded += entry.itc_excluded;
    for (const auto& n : entry.notes) ev.notes.push_back(results[i].name + ": " + n);
    slides_json.push_back(std::move(sj));
    ev.slides.push_back(std::move(entry));
  }

  if (!match.unmatched_names.empty())
    ev.notes.push_back("no ground truth for " + joined(match.unmatched_names) + ": taken as normal (--normal-if-missing)");
  if (!match.unused.empty()) {
    std::vector<std::string> unused;
    for (const fs::path& p : match.unused) unused.push_back(p.string());
    ev.notes.push_back(std::to_string(match.unused.size()) + " ground-truth file(s) match no result and were not used: " +
                       joined(unused));
  }

  Json report{{"results", opt.results.string()},
              {"threshold", opt.threshold},
              {"label_rule", opt.rule.to_string()},
              {"label_samples_per_side", kSlideEvalLabelSamples},
              {"slides", slides_json}};
  if (results.front().patches) {
    ev.pooled = score_patches(pooled.prob, pooled.label, opt.threshold);
    report["pooled"] = scores_json(*ev.pooled);
    if (const std::string n = missing_note(*ev.pooled); !n.empty()) ev.notes.push_back("pooled: " + n);
  }
  std::vector<std::string> curve_files;
  if (results.front().detections) {
    ev.froc = camelyon_froc(pooled.froc_truth, pooled.froc_detections, opt.froc);
    report["froc"] = froc_json(*ev.froc, pooled.froc_truth.size(), ev.itc_excluded, ev.out);
    curve_files = {"froc_curve.csv", "froc_curve.svg"};
    if (ev.froc->lesions == 0)
      ev.notes.push_back(std::string("FROC: no lesions (after ITC exclusion) in any slide, so every sensitivity is 0") +
                         (ev.froc->definition == FrocDefinition::official ? " (the official script's 0 / 0: NaN)" : ""));
  } else {
    report["froc"] = nullptr;
    ev.notes.push_back("no NAME.froc.csv files, so no FROC");
  }
  report["notes"] = ev.notes;
  detail::write_text_file(ev.out / "evaluation.json", detail::json_text(report, 2) + "\n");
  ev.written = {"evaluation.json"};
  ev.written.insert(ev.written.end(), curve_files.begin(), curve_files.end());
  return ev;
}

}  // namespace wsi
