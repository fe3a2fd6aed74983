// `wsi-heatmap synth --out SLIDE.tif [...]`: a deterministic synthetic H&E lymph-node slide with
// its tumour mask and ASAP XML outlines.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <vector>

#include "commands.hpp"
#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

struct SynthCliOptions {
  std::string out, mask, annotations;
  std::string size = "20000x20000";
  SynthParams params;
  int quality = 85;
  int threads = 0;
};

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

// An output the command line names: a file name with the extension of what is written there.
void check_output(const std::string& option, const std::string& path, const std::string& kind,
                  const std::vector<std::string>& extensions) {
  const fs::path p(path);
  if (path.empty() || !p.has_filename()) throw UsageError(option + " '" + path + "': give a file name for the " + kind);
  if (fs::is_directory(p)) throw UsageError(option + " " + path + ": is a directory; give a file name for the " + kind);
  const std::string ext = lower_extension(p);
  if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) {
    std::string list;
    for (size_t i = 0; i < extensions.size(); ++i) list += (i ? " or " : "") + extensions[i];
    throw UsageError(option + " " + path + ": synth writes the " + kind + " as " +
                     (extensions.front() == ".xml" ? "ASAP XML" : "a pyramidal TIFF") + "; name it " + list);
  }
}

void run_synth(SynthCliOptions opt) {
  static const std::regex size_re(R"((\d+)[xX](\d+))");
  std::smatch m;
  if (!std::regex_match(opt.size, m, size_re))
    throw UsageError("--size must look like WIDTHxHEIGHT, e.g. 20000x20000 (got '" + opt.size + "')");
  if (m[1].length() > 9 || m[2].length() > 9)  // beyond what stoll reads; the scene checks the real limit
    throw UsageError("synth: --size is limited to 1000000x1000000 pixels");
  opt.params.width = std::stoll(m[1]);
  opt.params.height = std::stoll(m[2]);
  check_output("--out", opt.out, "slide", {".tif", ".tiff"});
  if (!opt.mask.empty()) check_output("--mask", opt.mask, "tumour mask", {".tif", ".tiff"});
  if (!opt.annotations.empty()) check_output("--annotations", opt.annotations, "tumour outlines", {".xml"});
  if (!opt.mask.empty() && fs::weakly_canonical(opt.mask) == fs::weakly_canonical(opt.out))
    throw UsageError("--mask " + opt.mask + ": the same file as --out; give the mask its own name (e.g. NAME_mask.tif)");
  if (opt.quality < 1 || opt.quality > 100)
    throw UsageError("--quality must be in 1..100 (JPEG quality), not " + std::to_string(opt.quality));
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<SynthScene> built;
  try {
    built.emplace(opt.params);  // validates
  } catch (const ConfigError& e) {
    throw UsageError(e.what());  // every parameter came from the flag its message names
  }
  const SynthScene& scene = *built;
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
