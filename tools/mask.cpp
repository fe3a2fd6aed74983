// `wsi-heatmap mask SLIDE -o OUT [--overlay PNG] [--mpp M] [tissue options] [--json]`: the tissue
// mask of a slide (PNG or TIFF by extension), its JSON sidecar and an overlay to look at.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/json_text.hpp"
#include "tissue/params_json.hpp"
#include "commands.hpp"
#include "param_options.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"
#include "wsi/tissue.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

struct MaskOptions {
  std::string slide, out, overlay;
  std::optional<double> mpp;
  TissueParams params;
  bool json = false;
};

// OUT with its stem + ".overlay.png": mask.png -> mask.overlay.png.
fs::path default_overlay(const fs::path& out) {
  fs::path p = out;
  p.replace_filename(out.stem().string() + ".overlay.png");
  return p;
}

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

void run_mask(const MaskOptions& opt) {
  // Everything the command line can get wrong is checked before the slide is read.
  const fs::path out = opt.out;
  check_tissue_mask_path(out);
  const fs::path overlay = opt.overlay.empty() ? default_overlay(out) : fs::path(opt.overlay);
  if (lower_extension(overlay) != ".png")
    throw UsageError("--overlay " + overlay.string() + ": the overlay is a PNG; name it .png");
  const auto same = [](const fs::path& a, const fs::path& b) {
    std::error_code ea, eb;
    return fs::weakly_canonical(a, ea) == fs::weakly_canonical(b, eb) && !ea && !eb;
  };
  if (same(out, opt.slide))
    throw UsageError("--out " + out.string() + ": that is the slide itself; give the mask its own name (e.g. NAME_tissue.png)");
  if (same(overlay, opt.slide) || same(overlay, out))
    throw UsageError("--overlay " + overlay.string() + ": the same file as " + (same(overlay, out) ? "--out" : "the slide") +
                     "; give the overlay its own name");
  try {
    opt.params.validate();
  } catch (const ConfigError& e) {
    throw UsageError(e.what());  // the values came from flags of the same names
  }

  const auto t0 = std::chrono::steady_clock::now();
  SlideOptions so;
  so.mpp_override = opt.mpp;
  const Slide slide(opt.slide, so);
  RgbImage view;  // the slide at mask scale, so the overlay does not read it again
  const TissueMask m = compute_tissue_mask(slide, opt.params, &view);
  write_tissue_mask(m, opt.params, out, slide.path().string());
  write_tissue_overlay(view, m, overlay);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fs::path sidecar = out;
  sidecar += ".json";
  const TissueStats& st = m.stats;
  if (opt.json) {
    nlohmann::json j = detail::tissue_mask_json(m, opt.params, out, slide.path().string());
    j.update({{"mask", out.string()}, {"sidecar", sidecar.string()}, {"overlay", overlay.string()}, {"seconds", secs}});
    std::cout << detail::json_text(j, 2) << "\n";
    return;
  }
  std::ostringstream o;
  o << std::fixed << "wrote " << out.string() << ": " << m.mask.width << "x" << m.mask.height << " px at "
    << std::setprecision(3) << m.mpp << " um/px (from level " << m.source_level << "), tissue " << std::setprecision(1)
    << 100.0 * st.tissue_fraction << " %, saturation threshold " << std::setprecision(3) << st.used_threshold
    << " (Otsu " << st.otsu_threshold << "); sidecar " << sidecar.string() << ", overlay " << overlay.string() << "; "
    << std::setprecision(2) << secs << " s\n";
  std::cout << o.str();
}

}  // namespace

void setup_mask(CLI::App& app) {
  auto opt = std::make_shared<MaskOptions>();
  CLI::App* sub = app.add_subcommand("mask", "Detect tissue: write a mask (PNG/TIFF), its JSON sidecar and an overlay");
  sub->add_option("slide", opt->slide, "Slide file (any format OpenSlide reads)")->required();
  sub->add_option("--out,-o", opt->out, "Mask file: .png, or .tif/.tiff (tiled); OUT.json describes its frame")
      ->required();
  sub->add_option("--overlay", opt->overlay, "Overlay PNG (default: OUT's stem + .overlay.png)");
  sub->add_option("--mpp", opt->mpp, "Override microns per level-0 pixel (when the metadata has none or is wrong)");
  sub->add_flag("--json", opt->json, "Print a JSON summary instead of one line");
  add_param_options(*sub, tissue_param_table(), opt->params);
  sub->callback([opt] { run_mask(*opt); });
}

}  // namespace wsi::cli
