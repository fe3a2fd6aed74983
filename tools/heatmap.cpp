// `wsi-heatmap [heatmap] SLIDE... [-o DIR]`: the main job (heatmap.hpp). The default subcommand:
// main.cpp inserts "heatmap" when the first argument is not a subcommand.
#include <unistd.h>

#include <csignal>
#include <iomanip>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "core/json_text.hpp"
#include "core/params_json.hpp"
#include "heatmap/plan.hpp"
#include "param_options.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap.hpp"
#include "wsi/model.hpp"

namespace wsi::cli {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

struct HeatmapCli {
  std::vector<std::string> slides;
  std::string out = ".", model, device = "cpu", precision = "fp32", preset;
  HeatmapParams params;
  std::vector<BoundParam<HeatmapParams>> bound;
  bool print_config = false, quiet = false, html = false;
};

fs::path default_model() {
  if (const char* env = std::getenv("WSI_HEATMAP_MODEL"); env && *env) return env;
  const fs::path p = find_data_file("models/demo-cnn.pt");
  if (p.empty()) throw UsageError("the bundled demo model (models/demo-cnn.pt) was not found; pass --model M.pt");
  return p;
}

// The preset under the command line (options given there win), then the model path.
fs::path resolve_options(HeatmapCli& c) {
  check_exclusive(c.bound);
  if (!c.preset.empty()) {
    fs::path file = c.preset;
    if (!fs::exists(file)) file = find_data_file("pipelines/presets/" + c.preset + ".json");
    if (file.empty() || !fs::exists(file))
      throw UsageError("--preset " + c.preset + ": no such file, and no preset of that name in pipelines/presets/");
    apply_heatmap_preset(file, c.params, [&](const std::string& flag) { return given_or_excluded(c.bound, flag); });
  }
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
  if (fs::is_directory(model_path)) throw UsageError(model_path.string() + ": is a directory, not a model file; pass NAME.pt");
  if (!fs::is_regular_file(model_path)) throw UsageError(model_path.string() + ": no such model file");
  detail::resolve_params(c.params, ModelSpec::load_sidecar(model_path));  // validated as run_heatmap resolves them
  return mo;
}

int run_heatmap_cli(HeatmapCli& c) {
  // Ctrl-C / SIGTERM: finish the batch in flight, remove temporaries, exit 130 (no partial file
  // ever has a final name).
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  const fs::path model_path = resolve_options(c);
  if (c.print_config) {
    // A preset as it stands (--preset takes this output back), with the run's own settings under "run".
    nlohmann::json j = detail::params_json(heatmap_param_table(), c.params);
    j["run"] = {{"model", model_path.string()}, {"device", c.device}, {"precision", c.precision},
                {"out", c.out}, {"threads", c.params.threads}, {"preset", c.preset}};
    std::cout << detail::json_text(j, 2) << "\n";
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
  add_model_options(*sub, c->model, c->device, c->precision, c->preset);
  c->bound = add_param_options(*sub, heatmap_param_table(), c->params);
  sub->add_option("--name", c->params.name, "NAME of the outputs NAME.prob.tif, ... (default: the slide's file name without extension; one slide)");
  add_threads_option(*sub, c->params.threads, "Threads (0 = one per core)");
  sub->add_flag("--print-config", c->print_config, "Print the effective parameters (after --preset) and exit");
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->add_flag("--html", c->html, "Also write an offline HTML viewer of each slide: DIR/NAME.viewer/index.html (see wsi-heatmap view)");
  sub->callback([c, parse_only] {
    if (parse_only) {
      check_options(*c, resolve_options(*c));
      return;
    }
    const int rc = run_heatmap_cli(*c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
