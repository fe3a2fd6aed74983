// The main job (see heatmap.hpp): open the slide, survey it, plan, run the graph, write.
#include "core/json_text.hpp"
#include "wsi/runtime.hpp"
#include "wsi/heatmap.hpp"

#include <openslide.h>
#include <sys/resource.h>
#include <tiffio.h>
#include <torch/version.h>
#include <vips/vips.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "heatmap/graph.hpp"
#include "heatmap/outputs.hpp"
#include "heatmap/plan.hpp"
#include "slide/slide_handle.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// "LIBTIFF, Version 4.5.0\nCopyright ..." -> "4.5.0".
std::string libtiff_version() {
  std::string v = TIFFGetVersion();
  v = v.substr(0, v.find('\n'));
  const auto at = v.rfind(' ');
  return at == std::string::npos ? v : v.substr(at + 1);
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
  }
  return "fp32";
}


// Seconds of the stages of one slide's run, as the summary's timings_s records them.
struct StageSeconds {
  double survey = 0, warm_up = 0, graph = 0, write = 0, total = 0;
};

// NAME.summary.json: the slide, model, parameters, device, counts, timings and outputs.
json summary_json(const HeatmapSummary& summary, const detail::HeatmapPlan& plan, const json& description,
                  const Model& model, const HeatmapParams& params, int threads, const std::string& vendor,
                  const detail::PatchGraphStats& gs, const StageSeconds& t) {
  json s;
  s["slide"] = {{"path", summary.slide}, {"name", summary.name}, {"width", plan.width}, {"height", plan.height},
                {"mpp", plan.mpp0},      {"vendor", vendor}};
  s["model"] = description["model"];
  s["model"]["gradcam"] = plan.gradcam;
  if (params.gradcam && !plan.gradcam) s["model"]["gradcam_unavailable"] = model.gradcam_unavailable_reason();
  s["parameters"] = description["parameters"];
  s["device"] = {{"device", model.device() == Device::cuda ? "cuda" : "cpu"},
                 {"name", model.device_name()},
                 {"precision", precision_name(model.precision())},
                 {"batch", params.batch},
                 {"threads", threads}};
  s["patches"] = {{"grid", summary.grid_patches}, {"tissue", summary.tissue_patches}, {"processed", summary.processed},
                  {"failed", summary.failed},     {"tumour", summary.tumour_patches}};
  s["slide_score"] = summary.slide_score;
  s["mean_probability"] = summary.mean_probability;
  s["tumour_area_mm2"] = summary.tumour_area_mm2;
  const BatchTimings& ct = gs.classifier;
  s["timings_s"] = {{"survey", t.survey},
                    {"warm_up", t.warm_up},
                    {"graph", t.graph},
                    {"read_total", gs.read_seconds},
                    {"read_cpu", gs.read_cpu_seconds},
                    {"inference_total", gs.infer_seconds},
                    {"results_wait", gs.finish_seconds},
                    {"stitch_total", gs.sink_seconds},
                    {"write", t.write},
                    {"total", t.total}};
  // The classifier's own split (classifier.hpp, BatchTimings): on a GPU the copies and compute
  // are device times between CUDA events.
  s["timings_s"]["model"] = {{"host_staging", ct.staging},
                             {"copy_in", ct.copy_in},
                             {"compute", ct.compute},
                             {"copy_out", ct.copy_out},
                             {"wait", ct.wait}};
  s["patches_per_second"] = t.graph > 0 ? static_cast<double>(summary.tissue_patches) / t.graph : 0.0;
  s["peak_rss_mib"] = peak_rss_mib();
  s["software"] = description["software"];
  json outputs = json::object();
  const HeatmapOutputs& out = plan.outputs;
  for (const auto& [key, path] : {std::pair{"prob", out.prob}, {"prob_f32", out.prob_f32}, {"cam", out.cam},
                                  {"overlay", out.overlay}, {"thumb", out.thumb}, {"patches_csv", out.patches_csv},
                                  {"froc_csv", out.froc_csv}, {"regions", out.regions}})
    if (!path.empty()) outputs[key] = path.filename().string();
  s["outputs"] = outputs;
  if (!summary.note.empty()) s["note"] = summary.note;
  if (summary.failed > 0)
    s["warning"] = std::to_string(summary.failed) + " patch region(s) failed to decode and are missing from the outputs";
  return s;
}

// The model's first batches at this shape, run before the graph's clock starts (once per Model and
// shape: later slides of a batch run skip it).
void warm_up_model(const Model& model, const detail::HeatmapPlan& plan, const HeatmapParams& params,
                   const fs::path& slide_path) {
  if (plan.grid.patches.empty()) return;
  const int64_t warm = std::min<int64_t>(params.batch, static_cast<int64_t>(plan.grid.patches.size()));
  try {
    model.warm_up(warm, plan.read_geometry.patch_size, plan.gradcam);
  } catch (const std::exception& e) {
    throw Error(slide_path.string() + ": the model failed on a warm-up batch of " + std::to_string(warm) +
                " grey patches (the run's batch size; try a smaller --batch): " + e.what());
  }
}

}  // namespace

HeatmapSummary run_heatmap(const fs::path& slide_path, const Model& model, const HeatmapParams& params_in,
                           const fs::path& out_dir, const std::function<void(const HeatmapProgress&)>& progress) {
  const HeatmapParams params = detail::resolve_params(params_in, model.spec());
  if (!fs::is_directory(out_dir)) throw UsageError("output directory " + out_dir.string() + " does not exist");
  const int threads = resolve_threads(params.threads);

  const auto t_start = Clock::now();
  SlideOptions slide_options;
  slide_options.mpp_override = params.mpp_override;
  const detail::SlideHandle handle(slide_path, slide_options);
  const std::shared_ptr<const Slide> slide = handle.get();

  // ---- Survey (tissue mask) and plan ----
  const auto t_survey = Clock::now();
  detail::SlideFacts sf{slide_path.string(), slide->vendor(), slide->levels(), slide->mpp(), slide->bounds()};
  detail::ModelFacts mf{model.spec(), model.path().string(), sha1_file(model.path()), model.has_gradcam(),
                        model.gradcam_unavailable_reason()};
  std::optional<TissueMask> tissue;
  if (params.grid.min_tissue > 0) tissue = compute_tissue_mask(*slide, params.tissue);
  const detail::HeatmapPlan plan = detail::plan_heatmap(sf, mf, params, out_dir, tissue ? &*tissue : nullptr);
  const double survey_seconds = seconds_since(t_survey);
  json description = plan.description;
  description["software"] = {{"wsi_heatmap", WSI_VERSION}, {"libtorch", TORCH_VERSION},
                             {"openslide", openslide_get_version()}, {"libvips", vips_version_string()},
                             {"libtiff", libtiff_version()}};

  // ---- Streaming outputs, opened before the graph ----
  detail::HeatmapStitcher stitcher(plan, description);

  // ---- Warm-up, timed on its own ----
  StageSeconds times;
  const auto t_warm = Clock::now();
  warm_up_model(model, plan, params, slide_path);
  times.warm_up = seconds_since(t_warm);

  // ---- The graph ----
  const auto t_graph = Clock::now();
  detail::PatchGraphParams gp;
  gp.batch = params.batch;
  gp.threads = threads;
  gp.in_flight = params.in_flight;
  gp.gradcam = plan.gradcam;
  gp.subject = slide_path.string();
  gp.cancel = params.cancel;
  const auto total = static_cast<int64_t>(plan.grid.patches.size());
  if (progress) gp.progress = [&](int64_t done, int64_t) { progress({done, total}); };
  detail::PatchGraph graph(handle, plan.grid.patches, plan.read_geometry, model, stitcher, gp);
  const detail::PatchGraphStats gs = graph.run();
  times.survey = survey_seconds;
  times.graph = seconds_since(t_graph);
  if (gs.cancelled || (params.cancel && params.cancel->load()))
    throw Error(slide_path.string() + ": interrupted; no output was renamed into place");
  if (gs.failed > 0 && static_cast<double>(gs.failed) > params.max_failed * static_cast<double>(total)) {
    std::ostringstream m;
    m << slide_path.string() << ": " << gs.failed << " of " << total << " patch regions failed to decode (more than "
      << params.max_failed * 100 << " %, --max-failed); no output was written. The first: " << gs.first_failure;
    throw Error(m.str());
  }

  // ---- Finish the outputs ----
  const auto t_write = Clock::now();
  stitcher.finish();
  const std::vector<float>& prob = stitcher.probabilities();
  const std::vector<float> raster = detail::write_probability_rasters(plan, description, prob);
  detail::write_overlay(plan, description, handle, raster);
  detail::write_regions(plan, prob);
  times.write = seconds_since(t_write);

  HeatmapSummary summary;
  summary.slide = slide_path.string();
  summary.name = plan.name;
  summary.outputs = plan.outputs;
  summary.note = plan.note;
  summary.grid_patches = plan.grid.cols * plan.grid.rows;
  summary.tissue_patches = total;
  const detail::ProbabilityStats ps = detail::probability_stats(plan, prob);
  summary.processed = ps.processed;
  summary.failed = gs.failed;
  summary.tumour_patches = ps.tumour;
  summary.slide_score = ps.slide_score;
  summary.mean_probability = ps.mean;
  summary.tumour_area_mm2 = ps.tumour_area_mm2;

  // ---- Summary (written last: its presence means the slide is complete) ----
  times.total = seconds_since(t_start);
  const json s = summary_json(summary, plan, description, model, params, threads, slide->vendor(), gs, times);
  summary.json = detail::json_text(s, 2) + "\n";
  detail::write_text_file(plan.outputs.summary, summary.json);
  return summary;
}

}  // namespace wsi
