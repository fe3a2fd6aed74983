// `wsi-heatmap extract SLIDE... (--mask M | --annotations A)... -o DIR`: balanced, labelled patch
// datasets in PatchCamelyon HDF5 or Kaggle layout (see include/wsi/extract.hpp).
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/extract.hpp"

namespace wsi::cli {
namespace {

constexpr double kPcamMpp = 0.972;  // PatchCamelyon's um per pixel (Camelyon16 level 2)

struct ExtractCliOptions {
  std::vector<std::string> slides, masks, annotations;
  ExtractParams params;
  std::string format = "pcam", rule = "center", mask_values, exclusion = "normal", balance = "none",
              ratio = "1:1", split = "train=1";
  GridOptions grid;
  std::optional<double> mpp;
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
  p.format = parse_dataset_format(opt.format);
  p.rule = LabelRule::parse(opt.rule);
  if (!opt.mask_values.empty()) p.mask_values = MaskValueMap::parse(opt.mask_values);
  p.exclusion = parse_exclusion_policy(opt.exclusion);
  p.balance.mode = parse_balance_mode(opt.balance);
  p.balance.ratio = parse_ratio(opt.ratio);
  p.split = SplitSpec::parse(opt.split);
  apply_grid_options(opt.grid, p.grid, kPcamMpp);
  if (opt.mpp && !(*opt.mpp > 0 && std::isfinite(*opt.mpp))) {
    std::ostringstream m;
    m << "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not " << *opt.mpp;
    throw UsageError(m.str());
  }
  p.mpp_override = opt.mpp;
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
  sub->add_option("--mask", opt->masks,
                  "Ground-truth mask TIFF: one per slide in order, or one pattern with {stem}");
  sub->add_option("--annotations", opt->annotations,
                  "ASAP XML / Camelyon JSON / GeoJSON: one per slide in order, or one pattern with {stem}");
  sub->add_option("--annotation-scale", opt->params.annotation_options.coordinate_scale,
                  "Divide annotation coordinates by this (32 for level-0 Camelyon annotations on a level-5 export)")
      ->capture_default_str();
  sub->add_option("--mask-values", opt->mask_values,
                  "Mask value map, e.g. 0=normal,1=tumour,255=tumour,2=exclude (default: non-zero = tumour)");
  sub->add_option("--exclusion", opt->exclusion, "Excluded areas: normal (not tumour) or skip (drop the patch)")
      ->capture_default_str();
  sub->add_flag("--unlabelled", opt->params.allow_unlabelled, "Allow slides without ground truth (label 0)");
  sub->add_flag("--allow-no-tumour", opt->params.allow_no_tumour,
                "Accept annotations without a tumour shape (the slide is then all normal); otherwise such a slide "
                "fails with the groups found");
  sub->add_option("--format", opt->format, "pcam (HDF5 x/y + meta CSV) or kaggle (train/<sha1>.tif + labels CSV)")
      ->capture_default_str();
  sub->add_option("--prefix", opt->params.prefix, "File prefix of the pcam files")->capture_default_str();
  sub->add_option("--patch-size", opt->params.grid.patch_size, "Patch side in target pixels")->capture_default_str();
  add_grid_options(*sub, opt->params.grid, opt->grid, "Target resolution, um per patch pixel (default: 0.972, PCam's)");
  sub->add_option("--label-rule", opt->rule, "center[:N] (PCam), any, or fraction:T")->capture_default_str();
  sub->add_option("--balance", opt->balance, "none, undersample or oversample")->capture_default_str();
  sub->add_option("--ratio", opt->ratio, "positives:negatives after balancing")->capture_default_str();
  sub->add_option("--max-per-slide", opt->params.balance.max_per_slide, "Cap patches per slide (0 = none)")
      ->capture_default_str();
  sub->add_option("--seed", opt->params.balance.seed, "Seed of every random choice")->capture_default_str();
  sub->add_flag("--augment", opt->params.balance.augment, "Give oversampled copies a random flip / 90-degree rotation");
  sub->add_option("--split", opt->split, "Split by slide, e.g. train=0.8,valid=0.1,test=0.1")->capture_default_str();
  sub->add_option("--mpp", opt->mpp, "Level-0 um per pixel of every slide, overriding their metadata (needed where it is missing)");
  add_threads_option(*sub, opt->params.threads, "Worker threads (0 = one per core)");
  sub->add_flag("--json", opt->json, "Print the JSON summary instead of text");
  sub->add_flag("--quiet,-q", opt->quiet, "No progress bar");
  add_tissue_options(*sub, opt->params.tissue);
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
