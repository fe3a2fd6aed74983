// `wsi-heatmap extract SLIDE... (--mask M | --annotations A)... -o DIR`: balanced, labelled patch
// datasets in PatchCamelyon HDF5 or Kaggle layout (see include/wsi/extract.hpp).
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "param_options.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/extract.hpp"

namespace wsi::cli {
namespace {

struct ExtractCliOptions {
  std::vector<std::string> slides, masks, annotations;
  ExtractParams params;  // defaults: 96 px at 0.972 um/px, PCam's
  std::vector<BoundParam<ExtractParams>> bound;
  bool json = false, quiet = false;
};

// --mask/--annotations: one per slide in order, or one value with "{stem}" for every slide.
std::vector<std::optional<std::filesystem::path>> pair_with(const std::vector<std::string>& values,
                                                            const std::vector<std::string>& slides,
                                                            const std::string& flag) {
  std::vector<std::optional<std::filesystem::path>> out(slides.size());
  if (values.empty()) return out;
  if (values.size() == 1 && values[0].find("{stem}") != std::string::npos) {
    for (size_t i = 0; i < slides.size(); ++i) {
      std::string v = values[0];
      const std::string stem = std::filesystem::path(slides[i]).stem().string();
      for (size_t p; (p = v.find("{stem}")) != std::string::npos;) v.replace(p, 6, stem);
      out[i] = v;
    }
    return out;
  }
  if (values.size() != slides.size())
    throw UsageError(flag + " was given " + std::to_string(values.size()) + " times for " +
                     std::to_string(slides.size()) + " slides: give one per slide, in the same order, or one pattern "
                     "with {stem} (e.g. " + flag + " 'masks/{stem}_mask.tif')");
  for (size_t i = 0; i < slides.size(); ++i) out[i] = values[i];
  return out;
}

// The parameters and sources the options give, checked before any slide is read (and by batch for
// all its slides): every value comes from a flag, so every problem is a usage error.
std::vector<ExtractSource> resolve_options(ExtractCliOptions& opt) {
  ExtractParams& p = opt.params;
  check_exclusive(opt.bound);
  try {
    p.validate();
  } catch (const ConfigError& e) {
    throw UsageError(e.what());  // the values came from the flags the messages name
  }
  const auto masks = pair_with(opt.masks, opt.slides, "--mask");
  const auto annots = pair_with(opt.annotations, opt.slides, "--annotations");
  std::vector<ExtractSource> sources;
  for (size_t i = 0; i < opt.slides.size(); ++i) {
    if (masks[i] && annots[i])
      throw UsageError("give either --mask or --annotations for " + opt.slides[i] + ", not both");
    sources.push_back({opt.slides[i], masks[i], annots[i]});
  }
  return sources;
}

int run_extract_cli(ExtractCliOptions opt) {
  const std::vector<ExtractSource> sources = resolve_options(opt);
  const ExtractParams& p = opt.params;
  prepare_output_dir(p.out_dir);

  ProgressBar bar("extract", !opt.quiet && ::isatty(STDERR_FILENO));
  const ExtractSummary s = run_extract(sources, p, [&](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();

  if (opt.json) {
    std::ifstream f(s.summary_json);
    std::cout << f.rdbuf();
  } else {
    for (const auto& sp : s.splits) {
      std::cout << sp.name << ": " << sp.positives + sp.negatives << " patches (" << sp.positives << " tumour, "
                << sp.negatives << " normal";
      if (sp.copies) std::cout << ", " << sp.copies << " oversampled copies";
      if (sp.duplicates_skipped) std::cout << ", " << sp.duplicates_skipped << " duplicate pixels skipped";
      std::cout << ") from " << sp.slides << " slide(s)\n";
    }
    for (const auto& r : s.slides) {
      if (!r.note.empty()) std::cout << r.slide.string() << ": " << r.note << "\n";
      if (r.read_failures)
        std::cout << r.slide.string() << ": " << r.read_failures << " regions failed to decode and were skipped\n";
    }
    std::cout << "wrote " << s.summary_json.string() << " (" << s.patches_written << " patches, survey "
              << s.survey_seconds << " s, extract " << s.extract_seconds << " s)\n";
  }
  for (const auto& r : s.slides)
    if (!r.error.empty()) print_error(r.error + " (slide skipped)");
  return s.failed_slides() > 0 ? 1 : 0;
}

}  // namespace

void setup_extract(CLI::App& app, bool parse_only) {
  auto opt = std::make_shared<ExtractCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "extract", "Extract balanced, labelled patches (PatchCamelyon HDF5 or Kaggle layout) from slides + ground truth");
  sub->add_option("slides", opt->slides, "Slides to extract from")
      ->required()
      ->check(existing_file("", "pass slide files (wsi-heatmap batch DIR --extract takes a directory of slides)"));
  sub->add_option("--out,-o", opt->params.out_dir, "Output directory (created if missing)")->required();
  sub->add_option("--mask", opt->masks, "Ground-truth mask TIFF: one per slide in order, or one pattern with {stem}");
  sub->add_option("--annotations", opt->annotations,
                  "ASAP XML / Camelyon JSON / GeoJSON: one per slide in order, or one pattern with {stem}");
  opt->bound = add_param_options(*sub, extract_slide_param_table(), opt->params);
  const auto dataset = add_param_options(*sub, dataset_param_table(), opt->params);
  opt->bound.insert(opt->bound.end(), dataset.begin(), dataset.end());
  add_threads_option(*sub, opt->params.threads, "Worker threads (0 = one per core)");
  sub->add_flag("--json", opt->json, "Print the JSON summary instead of text");
  sub->add_flag("--quiet,-q", opt->quiet, "No progress bar");
  sub->callback([opt, parse_only] {
    if (parse_only) {
      ExtractCliOptions copy = *opt;
      resolve_options(copy);
      return;
    }
    const int rc = run_extract_cli(*opt);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
