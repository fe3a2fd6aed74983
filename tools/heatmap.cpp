// `wsi-heatmap [heatmap] SLIDE... [-o DIR]`: the main job (heatmap.hpp). The default subcommand:
// main.cpp inserts "heatmap" when the first argument is not a subcommand.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_text.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "tissue/params_json.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap.hpp"
#include "wsi/model.hpp"

namespace wsi::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

struct HeatmapCli {
  std::vector<std::string> slides;
  std::string out = ".", model, device = "cpu", precision = "fp32", preset;
  GridOptions grid;
  HeatmapParams params;
  bool no_gradcam = false, print_config = false, quiet = false, html = false;
};

fs::path exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : exe.parent_path();
}

// First existing of: the installed share dir, the source tree beside the build dir, the source
// tree this binary was built from.
fs::path find_data(const std::string& relative) {
  const fs::path candidates[] = {exe_dir() / ".." / "share" / "wsi-heatmap" / relative, exe_dir() / ".." / relative,
                                 fs::path(WSI_SOURCE_DIR) / relative};
  for (const auto& c : candidates)
    if (fs::exists(c)) return fs::weakly_canonical(c);
  return {};
}

fs::path default_model() {
  if (const char* env = std::getenv("WSI_HEATMAP_MODEL"); env && *env) return env;
  const fs::path p = find_data("models/demo-cnn.pt");
  if (p.empty())
    throw UsageError("the bundled demo model (models/demo-cnn.pt) was not found; pass --model M.pt");
  return p;
}

// A preset is a JSON object of long option names (without "--") and values, e.g.
// {"stride": 96, "min-tissue": 0.5}. Options given on the command line win over the preset.
void apply_preset(CLI::App& sub, const std::string& name_or_file) {
  fs::path file = name_or_file;
  if (!fs::exists(file)) file = find_data("pipelines/presets/" + name_or_file + ".json");
  if (file.empty() || !fs::exists(file))
    throw UsageError("--preset " + name_or_file + ": no such file, and no preset of that name in pipelines/presets/");
  std::ifstream in(file);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number such as 1e999
    throw ConfigError("preset " + file.string() + " is not valid JSON: " + detail::json_error_text(e));
  }
  if (!j.is_object()) throw ConfigError("preset " + file.string() + " must be a JSON object of option names and values");
  for (const auto& [key, value] : j.items()) {
    if (key == "description") continue;
    CLI::Option* opt = nullptr;
    try {
      opt = sub.get_option("--" + key);
    } catch (const CLI::OptionNotFound&) {
      throw ConfigError("preset " + file.string() + ": unknown option \"" + key + "\" (keys are heatmap option names without --)");
    }
    if (key == "preset" || key == "print-config" || key == "out" || key == "model") 
      throw ConfigError("preset " + file.string() + ": \"" + key + "\" cannot be set by a preset");
    if (opt->count() > 0) continue;  // the command line wins
    const std::string text = value.is_string() ? value.get<std::string>() : detail::json_text(value);
    opt->add_result(text);
    opt->run_callback();
  }
}

json effective_config(const HeatmapCli& c, const fs::path& model) {
  const HeatmapParams& p = c.params;
  json j;
  j["model"] = model.string();
  j["device"] = c.device;
  j["precision"] = c.precision;
  j["out"] = c.out;
  j["batch"] = p.batch;
  j["stride"] = p.grid.stride;
  j["target-mpp"] = p.grid.target_mpp ? json(*p.grid.target_mpp) : json("from the model's sidecar");
  if (p.grid.level) j["level"] = *p.grid.level;
  j["mpp-tolerance"] = p.grid.mpp_tolerance;
  j["min-tissue"] = p.grid.min_tissue;
  j["edge"] = c.grid.edge;
  j["gradcam"] = p.gradcam;
  j["cam-resolution"] = p.cam_per_patch;
  j["overlay-mpp"] = p.overlay_mpp;
  j["threshold"] = p.threshold;
  j["froc-threshold"] = p.froc_threshold;
  j["float32"] = p.float32;
  j["max-failed"] = p.max_failed;
  j["threads"] = p.threads;
  j["tissue"] = detail::tissue_params_json(p.tissue);
  if (!c.preset.empty()) j["preset"] = c.preset;
  return j;
}

// The preset and the options that need no slide: grid options, the model path.
fs::path resolve_options(CLI::App& sub, HeatmapCli& c) {
  if (!c.preset.empty()) apply_preset(sub, c.preset);
  c.params.gradcam = !c.no_gradcam;
  apply_grid_options(c.grid, c.params.grid, std::nullopt);  // no --target-mpp: the model's mpp
  return c.model.empty() ? default_model() : fs::path(c.model);
}

// Everything that would fail every slide the same way, checked once before any slide is read
// (and by batch for all its slides): device, precision, the model's sidecar, the parameters.
ModelOptions check_options(const HeatmapCli& c, const fs::path& model_path) {
  ModelOptions mo;
  mo.device = parse_device(c.device);
  mo.precision = parse_precision(c.precision);
  mo.threads = c.params.threads;
  if (mo.precision == Precision::fp16 && mo.device != Device::cuda)
    throw UsageError("--precision fp16 needs --device cuda; on a CPU use bf16");
  if (fs::is_directory(model_path))
    throw UsageError(model_path.string() + ": is a directory, not a model file; pass NAME.pt");
  if (!fs::is_regular_file(model_path)) throw UsageError(model_path.string() + ": no such model file");
  const ModelSpec spec = ModelSpec::load_sidecar(model_path);
  HeatmapParams p = c.params;  // as run_heatmap resolves them against the model
  p.grid.patch_size = spec.patch_size;
  if (!p.grid.level && !p.grid.target_mpp) p.grid.target_mpp = spec.mpp;
  p.validate();
  return mo;
}

int run_heatmap_cli(CLI::App& sub, HeatmapCli& c) {
  // Ctrl-C / SIGTERM: finish the batch in flight, remove temporaries, exit 130 (no partial file
  // ever has a final name).
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  const fs::path model_path = resolve_options(sub, c);
  if (c.print_config) {
    std::cout << detail::json_text(effective_config(c, model_path), 2) << "\n";
    return 0;
  }
  if (c.slides.empty()) throw UsageError("no slide given (usage: wsi-heatmap SLIDE... [-o DIR])");
  if (!c.params.name.empty() && c.slides.size() > 1) throw UsageError("--name names the outputs of one slide; give one slide");
  const ModelOptions mo = check_options(c, model_path);
  prepare_output_dir(c.out);
  const Model model(model_path, mo);
  if (c.params.gradcam && !model.has_gradcam())
    std::cerr << "wsi-heatmap: note: no Grad-CAM map: " << model.gradcam_unavailable_reason() << "\n";

  c.params.cancel = &g_interrupted;
  int failures = 0;
  for (const auto& slide : c.slides) {
    if (g_interrupted.load()) {
      print_error("interrupted");
      return 130;
    }
    try {
      ProgressBar bar(fs::path(slide).filename().string(), !c.quiet && ::isatty(STDERR_FILENO) != 0);
      const HeatmapSummary s = run_heatmap(slide, model, c.params, c.out, [&](const HeatmapProgress& p) {
        bar.update(p.done, p.total);
      });
      bar.finish();
      std::cout << s.name << ": " << s.processed << " patches";
      if (s.failed) std::cout << " (" << s.failed << " failed to decode)";
      std::cout << std::fixed << std::setprecision(3) << ", slide score " << s.slide_score << ", tumour area "
                << s.tumour_area_mm2 << " mm2" << std::defaultfloat << "\n";
      if (!s.note.empty()) std::cout << "  note: " << s.note << "\n";
      std::cout << "  wrote " << s.outputs.summary.string() << " and the heatmaps beside it\n";
      if (c.html) write_viewer_after_run(c.out, s.name, slide, c.quiet);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      print_error(e.what());
      ++failures;
      if (g_interrupted.load()) return 130;
    }
  }
  return failures ? 1 : 0;
}

}  // namespace

void setup_heatmap(CLI::App& app, bool parse_only) {
  auto c = std::make_shared<HeatmapCli>();
  CLI::App* sub = app.add_subcommand(
      "heatmap", "Tumour-probability and Grad-CAM heatmaps of slides (the default: wsi-heatmap SLIDE -o DIR)");
  sub->add_option("slides", c->slides, "Slides (any format OpenSlide reads)")
      ->check(existing_file("", "pass slide files (wsi-heatmap batch DIR runs every slide of a directory; "
                                "wsi-heatmap predict DIR predicts a folder of patches or images)"));
  sub->add_option("--out,-o", c->out, "Output directory (created if missing)")->capture_default_str();
  sub->add_option("--model,-m", c->model, "Model NAME.pt with its NAME.json sidecar (default: the bundled demo model)");
  sub->add_option("--device", c->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--precision", c->precision, "fp32, bf16 (about 2x faster on CPUs with AVX512-BF16) or fp16 (CUDA)")
      ->capture_default_str();
  sub->add_option("--batch", c->params.batch, "Patches per forward pass")->capture_default_str();
  add_grid_options(*sub, c->params.grid, c->grid, "Read patches at this um per pixel (default: the model's mpp)");
  sub->add_flag("--no-gradcam", c->no_gradcam, "Skip Grad-CAM (no NAME.cam.tif; faster)");
  sub->add_option("--cam-resolution", c->params.cam_per_patch, "Grad-CAM raster pixels per patch side (at least: a raster pixel is a whole number of slide pixels)")
      ->capture_default_str();
  sub->add_option("--overlay-mpp", c->params.overlay_mpp, "um per pixel of NAME.overlay.tif (at most: a whole number of slide pixels)")->capture_default_str();
  sub->add_option("--threshold", c->params.threshold, "Probability at or above which a patch counts as tumour")
      ->capture_default_str();
  sub->add_option("--froc-threshold", c->params.froc_threshold, "Lowest local maximum written to NAME.froc.csv")
      ->capture_default_str();
  sub->add_flag("--float32", c->params.float32, "Also write NAME.prob.f32.tif (float probabilities, NaN = none)");
  sub->add_option("--max-failed", c->params.max_failed,
                  "The slide fails when more than this share of its tissue patches fail to decode")
      ->capture_default_str();
  sub->add_option("--mpp", c->params.mpp_override, "Level-0 um per pixel, overriding the slide's metadata");
  sub->add_option("--name", c->params.name, "NAME of the outputs NAME.prob.tif, ... (default: the slide's file name without extension; one slide)");
  add_threads_option(*sub, c->params.threads, "Threads (0 = one per core)");
  sub->add_option("--preset", c->preset, "Parameter preset: a name in pipelines/presets/ (e.g. camelyon16) or a JSON file");
  sub->add_flag("--print-config", c->print_config, "Print the effective parameters (after --preset) and exit");
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->add_flag("--html", c->html, "Also write an offline HTML viewer of each slide: DIR/NAME.viewer/index.html (see wsi-heatmap view)");
  add_tissue_options(*sub, c->params.tissue);
  sub->callback([c, sub, parse_only] {
    if (parse_only) {
      check_options(*c, resolve_options(*sub, *c));
      return;
    }
    const int rc = run_heatmap_cli(*sub, *c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
