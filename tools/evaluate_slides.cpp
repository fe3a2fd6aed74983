// `wsi-heatmap evaluate-slides --results DIR --truth PATH...`: heatmap outputs against slide ground
// truth: patch-level ROC AUC, Dice and confusion matrix per slide and pooled, and the Camelyon16
// lesion-level FROC over all slides (evaluate_slides and the file contract in
// include/wsi/slide_eval.hpp; the FROC definitions, official by default and corrected with
// --froc corrected, in include/wsi/metrics.hpp).
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi::cli {
namespace {

struct EvaluateSlidesCli {
  std::string results, out, rule = "center";
  std::string froc = froc_definition_name(FrocDefinition::official);  // checked by the option
  SlideEvalOptions opt;
};

std::string fmt(const std::optional<double>& v) {
  if (!v) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << *v;
  return s.str();
}

// The patch-level table: one row per slide and the pooled one.
void print_patch_table(const SlideEvaluation& ev, const SlideEvalOptions& opt, std::ostream& text) {
  std::vector<std::pair<std::string, PatchScores>> table;
  for (const SlideEvalEntry& s : ev.slides)
    if (s.patches) table.emplace_back(s.name, *s.patches);
  table.emplace_back("pooled", *ev.pooled);
  size_t nw = 6;
  for (const auto& [n, s] : table) nw = std::max(nw, n.size());
  const auto name = [&](const std::string& n) { text << std::left << std::setw(static_cast<int>(nw)) << n << std::right; };
  text << "patch level (label rule " << opt.rule.to_string() << ", threshold " << opt.threshold << ")\n";
  name("slide");
  text << std::setw(9) << "patches" << std::setw(8) << "tumour" << std::setw(8) << "AUC" << std::setw(8) << "Dice"
       << std::setw(8) << "TP" << std::setw(8) << "FP" << std::setw(8) << "FN" << std::setw(8) << "TN" << "\n";
  for (const auto& [n, s] : table) {
    name(n);
    text << std::setw(9) << s.patches << std::setw(8) << s.tumour << std::setw(8) << fmt(s.auc) << std::setw(8)
         << fmt(s.dice) << std::setw(8) << s.confusion.tp << std::setw(8) << s.confusion.fp << std::setw(8)
         << s.confusion.fn << std::setw(8) << s.confusion.tn << "\n";
  }
}

void print_froc(const SlideEvaluation& ev, std::ostream& text) {
  static const char* at[6] = {"1/4", "1/2", "1", "2", "4", "8"};
  const FrocResult& fr = *ev.froc;
  const int64_t itc = ev.itc_excluded;
  text << "FROC (" << froc_definition_name(fr.definition) << ") over " << ev.slides.size() << " slide(s), "
       << fr.lesions << " lesion(s)" << (itc ? ", " + std::to_string(itc) + " ITC excluded" : std::string()) << "\n"
       << "  FPs per slide ";
  for (const char* a : at) text << std::setw(7) << a;
  text << "\n  sensitivity   " << std::fixed << std::setprecision(3);
  for (int k = 0; k < 6; ++k) text << std::setw(7) << fr.sensitivity_at[k];
  text << "\n  FROC score (mean) " << std::setprecision(4) << fr.score << "\n";
}

void run_evaluate_slides(EvaluateSlidesCli& c) {
  SlideEvalOptions& opt = c.opt;
  opt.results = c.results;
  opt.out = c.out;
  opt.rule = LabelRule::parse(c.rule);
  opt.froc = c.froc == froc_definition_name(FrocDefinition::corrected) ? FrocDefinition::corrected
                                                                        : FrocDefinition::official;
  const SlideEvaluation ev = evaluate_slides(opt, prepare_output_dir);
  std::ostringstream text;
  text << "evaluate-slides: " << ev.slides.size() << " slide(s) from " << c.results << "\n";
  if (ev.pooled) print_patch_table(ev, opt, text);
  if (ev.froc) print_froc(ev, text);
  for (const auto& n : ev.notes) text << "note: " << n << "\n";
  text << "wrote " << (ev.out / ev.written.front()).string();
  for (size_t i = 1; i < ev.written.size(); ++i) text << ", " << ev.written[i];
  std::cout << text.str() << "\n";
}

}  // namespace

void setup_evaluate_slides(CLI::App& app) {
  auto c = std::make_shared<EvaluateSlidesCli>();
  SlideEvalOptions& opt = c->opt;
  CLI::App* sub = app.add_subcommand(
      "evaluate-slides",
      "Evaluate heatmap outputs (NAME.patches.csv, NAME.froc.csv) against slide ground truth: patch AUC and Dice, "
      "Camelyon16 FROC");
  sub->add_option("--results,-r", c->results, "Directory holding NAME.patches.csv and/or NAME.froc.csv per slide")
      ->required();
  sub->add_option("--truth,-t", opt.truth,
                  "Ground truth: masks (.tif, 0 = normal, non-zero = tumour) and annotations (.xml, .json, .geojson), "
                  "files or directories, matched to NAME by file name");
  sub->add_flag("--normal-if-missing", opt.normal_if_missing, "A slide without a ground-truth file is a normal slide");
  sub->add_flag("--allow-no-tumour", opt.allow_no_tumour,
                "Accept annotation files without a tumour shape (their slides are normal); otherwise they are "
                "refused with the groups found");
  sub->add_option("--slides", opt.slides,
                  "The slides (files or directories, matched to NAME): their level-0 size and mpp; needed for masks that "
                  "are a downsample of the slide");
  sub->add_option("--mpp", opt.mpp, "Level-0 um per pixel of every slide, for the FROC (default: from the slide or mask)");
  sub->add_option("--label-rule", c->rule, "center[:N] (of 96 samples per side), any, or fraction:T")
      ->capture_default_str();
  sub->add_option("--threshold", opt.threshold, "Probability at or above which a patch counts as tumour")
      ->capture_default_str();
  sub->add_option("--froc", c->froc,
                  "FROC definition: official (Camelyon16's Evaluation_FROC.py, quirks included) or corrected (every "
                  "probability a threshold, missed lesions never found, no (0, 0) point)")
      ->check(CLI::IsMember({froc_definition_name(FrocDefinition::official),
                             froc_definition_name(FrocDefinition::corrected)}))
      ->capture_default_str();
  sub->add_option("--out,-o", c->out, "Output directory (default: the results directory)");
  sub->callback([c] { run_evaluate_slides(*c); });
}

}  // namespace wsi::cli
