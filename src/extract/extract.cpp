// The extraction run: survey every slide (tissue → grid → labels), choose patches per split,
// then stream the chosen patches through one oneTBB pipeline per slide into the dataset writers.
#include "core/json_text.hpp"
#include "wsi/runtime.hpp"
#include "wsi/extract.hpp"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/pending_file.hpp"
#include "core/text.hpp"
#include "extract/summary_json.hpp"
#include "slide/slide_handle.hpp"
#include "core/params_json.hpp"
#include "wsi/error.hpp"
#include "wsi/random.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct CandidatePatch {
  GridPatch patch;
  float tumour_fraction = 0;
  uint8_t label = 0;
  bool any_tumour = false;
  bool center_tumour = false;
};

struct SlideSurvey {
  SlideReport report;
  PatchGeometry geometry;
  std::vector<CandidatePatch> candidates;
};

SlideOptions slide_options(const ExtractParams& p) {
  SlideOptions o;
  o.mpp_override = p.mpp_override;
  return o;
}

// Pass 1 for one slide. Throws on anything that makes the slide unusable.
void survey_slide(const ExtractSource& src, const ExtractParams& params, SlideSurvey& out) {
  const auto t0 = Clock::now();
  const Slide slide(src.slide, slide_options(params));
  SlideReport& rep = out.report;
  out.geometry = resolve_geometry(slide, params.grid);
  rep.level = out.geometry.level;
  rep.target_mpp = out.geometry.target_mpp;

  std::optional<TissueMask> tissue;
  if (params.grid.min_tissue > 0) {
    tissue = compute_tissue_mask(slide, params.tissue);
    rep.tissue_fraction = tissue->stats.tissue_fraction;
  }
  const PatchGrid grid = make_grid(slide.bounds(), out.geometry, params.grid, tissue ? &*tissue : nullptr);
  rep.grid_patches = grid.cols * grid.rows;
  rep.tissue_patches = static_cast<int64_t>(grid.patches.size());
  if (grid.patches.empty()) rep.note = "no tissue patches (empty slide, or --min-tissue too high)";
  if (const std::string hint = mpp_tolerance_hint(slide.levels(), out.geometry); !hint.empty())
    detail::append_clause(rep.note, hint);

  std::unique_ptr<GroundTruth> truth;
  if (src.mask)
    truth = make_mask_truth(*src.mask, slide, params.mask_values);
  else if (src.annotations) {
    AnnotationSet set = load_annotations(*src.annotations, params.annotation_options);
    rep.annotation_groups = describe_groups(set);
    if (!params.allow_no_tumour) require_tumour(set, params.annotation_options);
    truth = make_annotation_truth(std::move(set), slide);
  }

  const int P = out.geometry.patch_size;
  const double scale = out.geometry.size_level0 / P;
  std::vector<PatchLabel> labels(grid.patches.size());
  if (truth) {
    tbb::parallel_for(size_t{0}, grid.patches.size(), [&](size_t i) {
      const GridPatch& g = grid.patches[i];
      const GrayImage cls = truth->classes(static_cast<double>(g.x), static_cast<double>(g.y), scale, P, P);
      labels[i] = label_patch(cls.pixels.data(), P, params.rule, params.exclusion);
    });
  }
  out.candidates.reserve(grid.patches.size());
  for (size_t i = 0; i < grid.patches.size(); ++i) {
    const PatchLabel& l = labels[i];
    if (l.dropped) {
      ++rep.dropped;
      continue;
    }
    out.candidates.push_back({grid.patches[i], static_cast<float>(l.tumour_fraction), l.label, l.any_tumour,
                              l.center_tumour});
    ++(l.label ? rep.positives : rep.negatives);
  }
  rep.survey_seconds = seconds_since(t0);
}

using detail::SlideHandle;

struct Chunk {
  std::vector<size_t> picks;    // indices into the split's pick list
  std::vector<uint8_t> pixels;  // picks.size() patches of P*P*3
  std::vector<uint8_t> ok;
};

// Pass 2 for the picks of one slide, [first, last) of `picks`.
void extract_slide(const ExtractSource& src, const ExtractParams& params, SlideSurvey& sv,
                   const std::vector<Candidate>& cands, const std::vector<Pick>& picks, size_t first, size_t last,
                   DatasetWriter& writer, int64_t& done, int64_t total, const ExtractProgress& progress,
                   SplitReport& split, int tokens) {
  SlideHandle handle(src.slide, slide_options(params));
  const PatchGeometry& g = sv.geometry;
  const int P = g.patch_size;
  const size_t patch_bytes = static_cast<size_t>(P) * static_cast<size_t>(P) * 3;
  const size_t chunk = static_cast<size_t>(std::max(1, params.chunk));
  size_t next = first;

  tbb::parallel_pipeline(
      static_cast<size_t>(tokens),
      tbb::make_filter<void, std::shared_ptr<Chunk>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Chunk> {
            if (next >= last) {
              fc.stop();
              return nullptr;
            }
            auto c = std::make_shared<Chunk>();
            const size_t end = std::min(last, next + chunk);
            for (; next < end; ++next) c->picks.push_back(next);
            return c;
          }) &
          tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Chunk> c) {
                c->pixels.resize(c->picks.size() * patch_bytes);
                c->ok.assign(c->picks.size(), 0);
                thread_local std::vector<uint8_t> scratch, unaugmented;
                for (size_t k = 0; k < c->picks.size(); ++k) {
                  const Pick& pk = picks[c->picks[k]];
                  const CandidatePatch& cp = sv.candidates[static_cast<size_t>(cands[pk.candidate].index)];
                  uint8_t* dst = c->pixels.data() + k * patch_bytes;
                  if (pk.augment) unaugmented.resize(patch_bytes);
                  try {
                    read_patch(handle, cp.patch, g, pk.augment ? unaugmented.data() : dst, scratch);
                  } catch (const RegionReadError&) {
                    continue;  // counted by the writer stage (ok stays 0); the handle reopened
                  }
                  if (pk.augment) apply_d4(pk.augment, unaugmented.data(), dst, P);
                  c->ok[k] = 1;
                }
                return c;
              }) &
          tbb::make_filter<std::shared_ptr<Chunk>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Chunk> c) {
                for (size_t k = 0; k < c->picks.size(); ++k) {
                  const Pick& pk = picks[c->picks[k]];
                  if (!c->ok[k]) {
                    ++sv.report.read_failures;
                    continue;
                  }
                  const CandidatePatch& cp = sv.candidates[static_cast<size_t>(cands[pk.candidate].index)];
                  PatchRecord r;
                  r.rgb = c->pixels.data() + k * patch_bytes;
                  r.x = cp.patch.x;
                  r.y = cp.patch.y;
                  r.size_level0 = std::llround(g.size_level0);
                  r.level = g.level;
                  r.label = cp.label;
                  r.tumor_patch = cp.any_tumour;
                  r.center_tumor_patch = cp.center_tumour;
                  r.tumour_fraction = cp.tumour_fraction;
                  r.copy = pk.copy;
                  r.augment = d4_name(pk.augment);
                  r.wsi = sv.report.name;
                  const int64_t before = writer.stats().written;
                  writer.add(r);
                  if (writer.stats().written > before) {
                    ++sv.report.written;
                    ++(r.label ? split.positives : split.negatives);
                    if (r.copy) ++split.copies;
                  }
                  ++done;
                }
                if (progress) progress(done, total);
              }));
}

// Every parameter under its flag's key (extract_slide_param_table and dataset_param_table).
nlohmann::json params_json(const ExtractParams& p) {
  nlohmann::json j = detail::params_json(extract_slide_param_table(), p);
  j.update(detail::params_json(dataset_param_table(), p));
  return j;
}

}  // namespace

int64_t ExtractSummary::failed_slides() const {
  return std::count_if(slides.begin(), slides.end(), [](const SlideReport& r) { return !r.error.empty(); });
}

namespace {

// Every slide surveyed (tissue, grid, labels); a slide that fails is reported and contributes
// nothing, but when none is usable that is one error (no dataset of nothing).
std::vector<SlideSurvey> survey_slides(const std::vector<ExtractSource>& sources, const ExtractParams& params) {
  std::vector<SlideSurvey> surveys(sources.size());
  std::exception_ptr first_failure;
  for (size_t i = 0; i < sources.size(); ++i) {
    SlideReport& rep = surveys[i].report;
    rep.slide = sources[i].slide;
    rep.name = sources[i].slide.stem().string();
    try {
      survey_slide(sources[i], params, surveys[i]);
    } catch (const UsageError&) {
      throw;  // a missing file on the command line is the user's to fix before anything runs
    } catch (const Error& e) {
      rep.error = e.what();
      surveys[i].candidates.clear();
      if (!first_failure) first_failure = std::current_exception();
    }
  }
  if (std::all_of(surveys.begin(), surveys.end(), [](const SlideSurvey& s) { return !s.report.error.empty(); })) {
    if (surveys.size() == 1) std::rethrow_exception(first_failure);
    throw Error("none of the " + std::to_string(surveys.size()) + " slides could be used; the first: " +
                surveys.front().report.error);
  }
  return surveys;
}

struct SplitPlan {
  std::vector<Candidate> candidates;
  std::vector<Pick> picks;
};

// Splits by slide (every slide gets one; failed ones contribute nothing), then the balanced picks
// of each split. Sets each report's split and selected count.
std::map<std::string, SplitPlan> plan_splits(std::vector<SlideSurvey>& surveys, const ExtractParams& params) {
  std::vector<std::string> names;
  for (const SlideSurvey& sv : surveys) names.push_back(sv.report.name);
  const auto split_of = assign_splits(names, params.split, params.balance.seed);
  for (size_t i = 0; i < surveys.size(); ++i) surveys[i].report.split = split_of[i];
  std::map<std::string, SplitPlan> plans;
  for (const auto& part : params.split.parts) {
    SplitPlan& plan = plans[part.first];
    for (size_t i = 0; i < surveys.size(); ++i) {
      if (surveys[i].report.split != part.first) continue;
      for (size_t k = 0; k < surveys[i].candidates.size(); ++k)
        plan.candidates.push_back({static_cast<int32_t>(i), static_cast<int64_t>(k), surveys[i].candidates[k].label});
    }
    plan.picks = select_patches(plan.candidates, params.balance, fnv1a(part.first));
    for (const Pick& p : plan.picks) ++surveys[static_cast<size_t>(plan.candidates[p.candidate].slide)].report.selected;
  }
  return plans;
}

// One split's picks written, slide by slide (a slide that fails to read is reported and skipped;
// a write error stops everything).
SplitReport write_split(const std::string& name, SplitPlan& plan, const std::vector<ExtractSource>& sources,
                        const ExtractParams& params, std::vector<SlideSurvey>& surveys, int threads, int64_t& done,
                        int64_t total, const ExtractProgress& progress, int64_t& written) {
  SplitReport rep;
  rep.name = name;
  const int P = params.grid.patch_size;
  std::unique_ptr<DatasetWriter> writer = params.format == DatasetFormat::pcam
                                              ? make_pcam_writer(params.out_dir, params.prefix, name, P, threads)
                                              : make_kaggle_writer(params.out_dir, name, P);
  size_t first = 0;
  while (first < plan.picks.size()) {
    const int32_t s = plan.candidates[plan.picks[first].candidate].slide;
    size_t last = first;
    while (last < plan.picks.size() && plan.candidates[plan.picks[last].candidate].slide == s) ++last;
    SlideSurvey& sv = surveys[static_cast<size_t>(s)];
    try {
      extract_slide(sources[static_cast<size_t>(s)], params, sv, plan.candidates, plan.picks, first, last, *writer,
                    done, total, progress, rep, 2 * threads);
    } catch (const WriteError&) {
      throw;  // the disk, not the slide: stop; the writer removes its temporaries
    } catch (const Error& e) {
      sv.report.error = e.what();
      done += static_cast<int64_t>(last - first) - sv.report.written;
    }
    first = last;
  }
  for (const auto& sv : surveys)
    if (sv.report.split == name && sv.report.error.empty()) ++rep.slides;
  writer->commit();
  rep.duplicates_skipped = writer->stats().duplicates_skipped;
  rep.outputs = writer->outputs();
  written += writer->stats().written;
  return rep;
}

// PREFIX_summary.json, the last file written: its presence means the dataset is complete.
void write_extract_summary(ExtractSummary& summary, const std::vector<ExtractSource>& sources,
                           const ExtractParams& params) {
  nlohmann::json j;
  j["tool"] = std::string("wsi-heatmap extract ") + WSI_VERSION;
  j["coordinates"] = detail::kDatasetCoordinates;
  j["parameters"] = params_json(params);
  nlohmann::json slides = nlohmann::json::array();
  for (size_t i = 0; i < summary.slides.size(); ++i) {
    const SlideReport& r = summary.slides[i];
    nlohmann::json s = {{"slide", r.slide.string()}, {"name", r.name}, {"split", r.split},
                        {"grid_patches", r.grid_patches}, {"tissue_patches", r.tissue_patches},
                        {"positives", r.positives}, {"negatives", r.negatives}, {"dropped_exclusion", r.dropped},
                        {"selected", r.selected}, {"written", r.written}, {"read_failures", r.read_failures},
                        {"level", r.level}, {"target_mpp", r.target_mpp}, {"tissue_fraction", r.tissue_fraction},
                        {"survey_seconds", r.survey_seconds}};
    if (sources[i].mask) s["mask"] = sources[i].mask->string();
    if (sources[i].annotations) s["annotations"] = sources[i].annotations->string();
    if (!r.annotation_groups.empty()) s["annotation_groups"] = r.annotation_groups;
    if (!r.error.empty()) s["error"] = r.error;
    if (!r.note.empty()) s["note"] = r.note;
    slides.push_back(s);
  }
  j["slides"] = slides;
  j["splits"] = detail::splits_json(summary.splits);
  j["timing_seconds"] = {{"survey", summary.survey_seconds}, {"extract", summary.extract_seconds}};
  j["patches_written"] = summary.patches_written;
  j["failed_slides"] = summary.failed_slides();
  summary.summary_json = params.out_dir / (params.prefix + "_summary.json");
  detail::write_text_file(summary.summary_json, detail::json_text(j, 2) + "\n");
}

}  // namespace

ExtractSummary run_extract(const std::vector<ExtractSource>& sources, const ExtractParams& params,
                           const ExtractProgress& progress) {
  params.validate();
  if (sources.empty()) throw UsageError("no slides given");
  for (const auto& s : sources)
    if (!s.mask && !s.annotations && !params.allow_unlabelled)
      throw UsageError("no ground truth for " + s.slide.string() +
                       ": give --mask or --annotations, or --unlabelled to label every patch 0");
  std::error_code ec;
  fs::create_directories(params.out_dir, ec);
  if (!fs::is_directory(params.out_dir))
    throw WriteError(params.out_dir, "cannot create the output directory" + (ec ? ": " + ec.message() : std::string()));
  const int threads = resolve_threads(params.threads);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));

  ExtractSummary summary;
  const auto t_survey = Clock::now();
  std::vector<SlideSurvey> surveys = survey_slides(sources, params);
  summary.survey_seconds = seconds_since(t_survey);
  std::map<std::string, SplitPlan> plans = plan_splits(surveys, params);
  int64_t total = 0;
  for (const auto& [name, plan] : plans) total += static_cast<int64_t>(plan.picks.size());

  const auto t_extract = Clock::now();
  int64_t done = 0;
  for (const auto& part : params.split.parts)  // in the order given
    summary.splits.push_back(write_split(part.first, plans[part.first], sources, params, surveys, threads, done, total,
                                         progress, summary.patches_written));
  summary.extract_seconds = seconds_since(t_extract);
  for (auto& sv : surveys) summary.slides.push_back(sv.report);
  write_extract_summary(summary, sources, params);
  return summary;
}

}  // namespace wsi
