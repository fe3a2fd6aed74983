// `wsi-heatmap synth --out SLIDE.tif [...]`: a deterministic synthetic H&E lymph-node slide with
// its tumour mask and ASAP XML outlines.
#include <chrono>
#include <iostream>
#include <memory>
#include <regex>

#include "commands.hpp"
#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi::cli {
namespace {

struct SynthCliOptions {
  std::string out, mask, annotations;
  std::string size = "20000x20000";
  SynthParams params;
  int quality = 85;
  int threads = 0;
};

void run_synth(SynthCliOptions opt) {
  static const std::regex size_re(R"((\d+)[xX](\d+))");
  std::smatch m;
  if (!std::regex_match(opt.size, m, size_re))
    throw UsageError("--size must look like WIDTHxHEIGHT, e.g. 20000x20000 (got '" + opt.size + "')");
  opt.params.width = std::stoll(m[1]);
  opt.params.height = std::stoll(m[2]);
  const auto t0 = std::chrono::steady_clock::now();
  const SynthScene scene(opt.params);  // validates
  SynthOutputs outs;
  outs.slide = opt.out;
  if (!opt.mask.empty()) outs.mask = opt.mask;
  if (!opt.annotations.empty()) outs.annotations = opt.annotations;
  outs.jpeg_quality = opt.quality;
  write_synthetic_slide(scene, outs, opt.threads);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "wrote " << opt.out << " (" << opt.params.width << "x" << opt.params.height << " px, mpp "
            << opt.params.mpp << ", " << opt.params.tumours << " tumours, seed " << opt.params.seed << ")";
  if (outs.mask) std::cout << "\nwrote " << outs.mask->string() << " (tumour mask, 0 = normal, 255 = tumour)";
  if (outs.annotations) std::cout << "\nwrote " << outs.annotations->string() << " (ASAP XML tumour outlines)";
  std::cout << "\nin " << secs << " s\n";
}

}  // namespace

void setup_synth(CLI::App& app) {
  auto opt = std::make_shared<SynthCliOptions>();
  CLI::App* sub = app.add_subcommand("synth", "Generate a synthetic H&E lymph-node slide with ground truth (deterministic)");
  sub->add_option("--out,-o", opt->out, "Output slide: pyramidal tiled JPEG BigTIFF")->required();
  sub->add_option("--size", opt->size, "Level-0 size WIDTHxHEIGHT in pixels")->capture_default_str();
  sub->add_option("--seed", opt->params.seed, "Random seed: same seed, same pixels")->capture_default_str();
  sub->add_option("--mpp", opt->params.mpp, "Microns per level-0 pixel")->capture_default_str();
  sub->add_option("--tumours,--tumors", opt->params.tumours, "Number of tumour regions")->capture_default_str();
  sub->add_option("--sections", opt->params.sections, "Tissue sections (0 = from the aspect ratio)")->capture_default_str();
  sub->add_option("--mask", opt->mask, "Also write the tumour mask TIFF (uint8, 0 / 255, pyramidal)");
  sub->add_option("--annotations", opt->annotations, "Also write the tumour outlines as ASAP XML");
  sub->add_option("--stain-variation", opt->params.stain_variation, "0..1: random H&E stain shift")->capture_default_str();
  sub->add_option("--blur", opt->params.blur_sigma, "Gaussian blur sigma in pixels (out-of-focus scan)")->capture_default_str();
  sub->add_flag("--pen-marks", opt->params.pen_marks, "Draw marker-pen strokes beside the tissue");
  sub->add_option("--noise", opt->params.noise, "0..1: sensor noise")->capture_default_str();
  sub->add_option("--quality", opt->quality, "JPEG quality of the slide tiles")->capture_default_str();
  add_threads_option(*sub, opt->threads, "Worker threads (0 = one per core)");
  sub->callback([opt] { run_synth(*opt); });
}

}  // namespace wsi::cli
