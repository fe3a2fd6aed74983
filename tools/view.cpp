// `wsi-heatmap view OUT_DIR [--slide SLIDE] [-o HTML_DIR]`: an offline HTML viewer of one slide's
// results, or, for a batch folder, the viewers of its slides and index.html (include/wsi/view.hpp).
// Also what `heatmap --html` and `batch --html` call after their runs.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/view.hpp"

namespace wsi::cli {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_view_interrupted{false};
extern "C" void on_view_signal(int) { g_view_interrupted.store(true); }

struct ViewCli {
  std::string results, out;
  ViewParams p;  // the options bound where the library takes them
  bool quiet = false;
};

// A progress bar per stage (slide, probability, Grad-CAM; slides in a batch), on a terminal only.
ViewProgressFn bar_progress(ProgressBar& bar, const std::string& prefix) {
  return [&bar, prefix](const ViewProgress& p) {
    bar.set_label(prefix + p.stage + (p.slides ? "" : " (Mpx)"));
    if (p.slides)
      bar.update(p.done, p.total);
    else
      bar.update(p.done / 1000000, (p.total + 999999) / 1000000);
  };
}

void print_view(const ViewResult& r) {
  std::cout << r.name << ": wrote the viewer " << r.page.string() << " (" << r.tiles << " tiles, "
            << (r.base == "slide" ? "slide" : "overlay") << " at " << r.tile_mpp << " µm/px); open it in a browser\n";
}

int print_batch(const BatchViewResult& r, bool list_failed) {
  std::cout << "wrote " << r.index.string() << ": " << r.slides << " slides (" << r.done << " done, " << r.failed
            << " failed or skipped), " << r.viewers_written << " viewers written, " << r.viewers_kept
            << " up to date\n";
  if (list_failed)  // batch --html has just listed them
    for (const auto& [name, reason] : r.failed_slides) std::cout << "  " << name << " " << reason << "\n";
  for (const auto& [name, reason] : r.viewer_failures)
    print_error("view: no viewer for " + name + ": " + reason);
  return r.viewer_failures.empty() ? 0 : 1;
}

int run_view(ViewCli& c) {
  ViewParams& p = c.p;
  p.cancel = &g_view_interrupted;
  std::signal(SIGINT, on_view_signal);
  std::signal(SIGTERM, on_view_signal);
  if (!p.slide.empty() && p.no_slide) throw UsageError("--slide and --no-slide contradict each other; give one");
  ProgressBar bar("view", !c.quiet && ::isatty(STDERR_FILENO) != 0);
  if (fs::is_directory(c.results) && is_batch_dir(c.results) && result_names(c.results).empty()) {
    if (!p.slide.empty() || !p.name.empty())
      throw UsageError(c.results + " is a batch folder: its slides come from its manifest; leave out --slide and --name");
    const BatchViewResult r = write_batch_view(c.results, c.out, p, bar_progress(bar, "view "));
    bar.finish();
    if (g_view_interrupted.load()) return 130;
    return print_batch(r, true);
  }
  const ViewResult r = write_view(c.results, c.out, p, bar_progress(bar, "view "));
  bar.finish();
  print_view(r);
  return 0;
}

}  // namespace

void write_viewer_after_run(const fs::path& results, const std::string& name, const fs::path& slide, bool quiet) {
  ViewParams p;
  p.name = name;
  p.slide = slide;
  p.mpp_from_results = true;  // the run that made the results read this very slide
  ProgressBar bar("view", !quiet && ::isatty(STDERR_FILENO) != 0);
  const ViewResult r = write_view(results, {}, p, bar_progress(bar, "view "));
  bar.finish();
  std::cout << "  ";
  print_view(r);
}

int write_batch_index_after_run(const fs::path& dir, bool quiet) {
  ProgressBar bar("view", !quiet && ::isatty(STDERR_FILENO) != 0);
  const BatchViewResult r = write_batch_view(dir, {}, ViewParams{}, bar_progress(bar, "view "));
  bar.finish();
  std::cout << "  ";
  return print_batch(r, false);
}

void setup_view(CLI::App& app) {
  auto c = std::make_shared<ViewCli>();
  CLI::App* sub = app.add_subcommand(
      "view", "An offline HTML viewer (slide, probability, Grad-CAM, regions) of a results folder; for a batch "
              "folder, its slides' viewers and index.html");
  sub->add_option("results", c->results, "The heatmap job's output folder (-o DIR), or a batch's")->required();
  sub->add_option("--out,-o", c->out,
                  "Viewer folder (default: OUT_DIR/NAME.viewer); for a batch, the folder of index.html and one "
                  "viewer per slide (default: the batch folder, viewers in DIR/NAME/NAME.viewer)");
  sub->add_option("--slide", c->p.slide, "The slide the results were made from (default: the path in NAME.summary.json)")
      ->check(existing_file("--slide", "give the slide file"));
  sub->add_flag("--no-slide", c->p.no_slide, "Show NAME.overlay.tif as the base layer (no slide at hand)");
  sub->add_option("--name", c->p.name, "NAME of the results, when OUT_DIR holds several slides'");
  sub->add_option("--tile-mpp", c->p.tile_mpp, "µm per pixel of the slide's tiles (default: the overlay's, e.g. 8)");
  sub->add_option("--mpp", c->p.mpp_override, "Level-0 µm per pixel of the slide, as given to the heatmap job's --mpp");
  sub->add_option("--evaluation", c->p.evaluation,
                  "evaluate-slides output folder: its ROC/FROC curves and the slide's AUC and Dice in the page "
                  "(default: the results folder's, when evaluate-slides wrote there)");
  sub->add_option("--quality", c->p.jpeg_quality, "JPEG quality of the slide's tiles (1..100)")->capture_default_str();
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->callback([c] {
    const int rc = run_view(*c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
