// `wsi-heatmap batch INPUT... -o DIR [--extract]`: every slide of an archive through the heatmap
// (or patch extraction), one child process per slide, resumable from the manifest
// (wsi::run_batch in include/wsi/batch.hpp: this file checks the options, prints its report and
// builds each child's pass-through options); with --extract the slides' parts are then merged
// into one balanced dataset with splits by slide.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "param_options.hpp"
#include "progress.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"
#include "wsi/extract.hpp"
#include "wsi/heatmap.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_batch_signal(int) { g_stop = 1; }

struct BatchCli {
  BatchJob job;  // the options bound where the library takes them
  std::string out, shard = "1/1", mpp_csv, mask, annotations;
  bool quiet = false, list = false, html = false;
  // Typed as heatmap and extract take them, so a bad value fails here before any slide runs;
  // passed on to each child as written.
  HeatmapParams heatmap;
  ExtractParams& slide = job.dataset.params;  // extract's own (labels, --patch-size, ...), and the dataset's
  std::vector<BoundParam<HeatmapParams>> heatmap_bound;
  std::vector<BoundParam<ExtractParams>> extract_bound;
};

// The pass-through options of one slide's child, after the library's own (wsi::child_options):
// the ones of heatmap_param_table() given (with --extract: those extract has too), then extract's.
std::vector<std::string> forwarded_options(const BatchCli& c, bool mpp_from_csv) {
  std::vector<std::string> a = given_arguments(c.heatmap_bound, mpp_from_csv ? "--mpp" : "");
  if (!c.job.extract) return a;
  if (!c.mask.empty()) a.insert(a.end(), {"--mask", c.mask});
  if (!c.annotations.empty()) a.insert(a.end(), {"--annotations", c.annotations});
  const std::vector<std::string> more = given_arguments(c.extract_bound);
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// Before any slide runs: the options must make sense to the subcommand that gets them, or every
// slide would fail the same way. Parses a child's command line with the real subcommand's
// parser, its action switched off.
void check_child_options(const BatchCli& c, const BatchJob& job, const ForwardedOptions& forwarded,
                         const fs::path& some_slide) {
  if (c.job.extract)
    refuse_given(c.heatmap_bound, [](const auto& p) { return !has_flag(extract_slide_param_table(), p.flag); },
                 " is an option of the heatmap runs, not of --extract runs");
  else
    refuse_given(c.extract_bound, [](const auto&) { return true; }, " is an option of --extract runs, not of heatmap runs");
  if (c.job.extract) {
    check_batch_truth(c.mask, c.annotations, c.slide.allow_unlabelled);
    job.dataset.validate();
  } else if (!c.mask.empty() || !c.annotations.empty()) {
    throw UsageError(std::string(c.mask.empty() ? "--annotations" : "--mask") + " is an option of --extract runs, not of heatmap runs");
  }
  BatchJob check = job;
  check.exe = "wsi-heatmap";
  check_child_command_line(child_argv(check, forwarded, some_slide, "out", "check"));
}

int run_batch_command(BatchCli& c) {
  const ForwardedOptions forwarded = [&c](const fs::path&, const std::string&, bool mpp_from_csv) {
    return forwarded_options(c, mpp_from_csv);
  };
  if (c.list) {  // for workflow engines (the Snakemake workflow in pipelines/)
    std::cout << batch_list_text(select_slides(c.job.inputs, c.out, ShardSpec::parse(c.shard)));
    return 0;
  }
  BatchJob& job = c.job;
  if (!c.mpp_csv.empty()) job.mpp_of = read_mpp_csv(c.mpp_csv);
  if (c.out.empty()) throw UsageError("batch needs an output directory: -o DIR");
  if (c.html && c.job.extract) throw UsageError("--html shows heatmaps; it does not go with --extract");
  std::signal(SIGINT, on_batch_signal);
  std::signal(SIGTERM, on_batch_signal);
  job.out = c.out;
  job.shard = ShardSpec::parse(c.shard);
  // The inputs and the options before anything is created: a command line that cannot work
  // leaves no folder behind.
  const BatchSelection sel = select_slides(job.inputs, job.out, job.shard);
  if (sel.slides.empty()) throw UsageError("no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)");
  check_child_options(c, job, forwarded, sel.slides.front());
  if (c.job.merge_only && !job.shard.whole()) throw UsageError("--merge-only merges every shard: give it without --shard");
  prepare_output_dir(job.out);
  job.exe = current_executable();

  ProgressBar bar("batch", !c.quiet && !c.job.merge_only && ::isatty(STDERR_FILENO) != 0);
  BatchCallbacks cb;
  cb.progress = [&bar](size_t k, size_t n, int done, int failed) {
    bar.update(static_cast<int64_t>(k), static_cast<int64_t>(n),
               k < n ? std::to_string(done) + " done, " + std::to_string(failed) + " failed" : "");
  };
  cb.slides_finished = [&](const BatchReport& r) {
    bar.finish();
    std::cout << batch_report_text(r, c.out, job.shard.whole() ? "" : c.shard, job.merge_only, job.extract);
    // On stderr too: scripts that keep only the error stream still learn which slides failed.
    if (!c.job.merge_only)
      for (const SlideFailure& f : r.failures)
        std::cerr << "wsi-heatmap: batch: slide " << f.name << " failed: " << f.reason << "\n";
  };
  const BatchReport r = run_batch(job, forwarded, cb, &g_stop);
  if (r.interrupted) {
    print_error("interrupted; finished slides are recorded, a rerun goes on from there");
    return 130;
  }
  if (r.dataset) {
    if (r.dataset->outcome == BatchMergeReport::Outcome::nothing_finished)
      print_error("no slide has finished, so there is no dataset to merge yet");
    else
      std::cout << batch_merge_text(*r.dataset);
  }
  // The viewers and index.html: failed slides listed with their reasons.
  const int html_rc = c.html && !job.merge_only ? write_batch_index_after_run(job.out, c.quiet) : 0;
  return std::max(batch_exit_status(r, job), html_rc);
}

}  // namespace

void setup_batch(CLI::App& app) {
  auto c = std::make_shared<BatchCli>();
  CLI::App* sub = app.add_subcommand(
      "batch", "Heatmaps of every slide in files, directories or list files; resumable (manifest in DIR)");
  BatchJob& job = c->job;
  sub->add_option("inputs", job.inputs, "Slides, directories (searched recursively) or list files (.txt: one per line)")
      ->required();
  sub->add_option("--out,-o", c->out, "Output directory: DIR/NAME/ per slide, DIR/manifest.json");
  add_model_options(*sub, job.heatmap.model, job.heatmap.device, job.heatmap.precision, job.heatmap.preset);
  add_threads_option(*sub, job.threads, "Threads per slide (0 = one per core)");
  sub->add_option("--timeout", job.timeout, "Stop a slide after this many seconds and record it as failed (0 = no limit)")
      ->check(number_at_least_zero("--timeout", "no limit"));
  sub->add_option("--mpp-csv", c->mpp_csv,
                  "CSV with columns slide,mpp: level-0 um per pixel for slides whose files lack it (slide: the path "
                  "as given, the file name, or the name without extension); overrides --mpp for those slides")
      ->check(existing_file("--mpp-csv", "give the CSV file"));
  sub->add_flag("--retry-failed", job.retry_failed, "Run slides that failed in an earlier run again");
  sub->add_option("--shard", c->shard, "Only shard I of N (I/N, 1 <= I <= N; e.g. a Slurm array task)")
      ->capture_default_str();
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->add_flag("--html", c->html, "After the run, an offline HTML viewer per done slide (DIR/NAME/NAME.viewer) and "
                "DIR/index.html listing every slide by score, failed ones with their reasons (see wsi-heatmap view)");
  sub->add_flag("--list", c->list, "Print NAME<TAB>SLIDE for each slide a run would process (this shard) and exit; in SLIDE a backslash, "
                "tab, newline or carriage return is written \\\\, \\t, \\n or \\r");
  sub->add_flag("--merge-only", job.merge_only,
                "Run no slide: after the shards, write DIR/manifest.json of every shard's slides and, with --extract, "
                "merge the finished parts of every shard into DIR/dataset");
  // Each slide's own parameters, from the tables heatmap and extract register (see their --help).
  c->heatmap_bound = add_param_options(*sub, heatmap_param_table(), c->heatmap, "Heatmap (each slide)");
  const char* ex = "Datasets (--extract)";
  sub->add_flag("--extract", job.extract,
                "Extract labelled patches from every slide (DIR/NAME/part_*), then merge them into one balanced "
                "dataset in DIR/dataset with splits by slide")
      ->group(ex);
  sub->add_option("--mask", c->mask, "Ground-truth mask of each slide: a pattern with {stem}, e.g. 'masks/{stem}_mask.tif'")
      ->group(ex);
  sub->add_option("--annotations", c->annotations, "Annotations of each slide: a pattern with {stem}, e.g. 'xml/{stem}.xml'")
      ->group(ex);
  c->extract_bound = add_param_options(*sub, extract_slide_param_table(), c->slide, ex);
  add_param_options(*sub, dataset_param_table(), c->slide, ex);
  sub->callback([c] {
    const int rc = run_batch_command(*c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
