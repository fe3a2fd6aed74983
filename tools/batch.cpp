// `wsi-heatmap batch INPUT... -o DIR`: every slide of an archive through the heatmap, one child
// process per slide, resumable from the manifest (include/wsi/batch.hpp).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_batch_signal(int) { g_stop = 1; }

struct BatchCli {
  std::vector<std::string> inputs;
  std::string out, model, preset, device, precision, shard = "1/1";
  int batch = 0, threads = 0;
  double timeout = 0;
  bool no_gradcam = false, retry_failed = false, quiet = false, list = false;
};

// The slides of the inputs (the output directory excluded), their names, and which of them
// belong to this shard.
struct Selection {
  std::vector<fs::path> slides;
  std::vector<std::string> names;
  std::vector<size_t> mine;  // indices into slides/names
};

Selection select_slides(const BatchCli& c, const ShardSpec& shard) {
  Selection s;
  const std::vector<fs::path> inputs(c.inputs.begin(), c.inputs.end());
  s.slides = collect_slides(inputs, c.out.empty() ? fs::path() : fs::path(c.out));
  s.names = unique_safe_names(s.slides);
  for (size_t i = 0; i < s.slides.size(); ++i)
    if (shard.contains(s.names[i])) s.mine.push_back(i);
  return s;
}

// --list: what a run would process, as NAME<TAB>SLIDE lines (for workflow engines: the
// Snakemake workflow in pipelines/ takes its slide names from here).
int list_slides(const BatchCli& c) {
  const Selection sel = select_slides(c, ShardSpec::parse(c.shard));
  for (const size_t i : sel.mine) std::cout << sel.names[i] << '\t' << sel.slides[i].string() << '\n';
  return 0;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

fs::path self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this program's own path (/proc/self/exe): " + ec.message());
  return p;
}

// The child's command line: this program's heatmap subcommand on one slide.
std::vector<std::string> child_argv(const BatchCli& c, const fs::path& exe, const fs::path& slide, const fs::path& dir,
                                    const std::string& name) {
  std::vector<std::string> a = {exe.string(), "heatmap", slide.string(), "-o", dir.string(), "--name", name, "-q"};
  const auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) a.insert(a.end(), {flag, v});
  };
  add("--model", c.model);
  add("--preset", c.preset);
  add("--device", c.device);
  add("--precision", c.precision);
  if (c.batch > 0) add("--batch", std::to_string(c.batch));
  if (c.threads > 0) add("--threads", std::to_string(c.threads));
  if (c.no_gradcam) a.push_back("--no-gradcam");
  return a;
}

std::string failure_reason(const ChildResult& r, double timeout) {
  std::ostringstream m;
  if (r.timed_out) {
    m << "timed out after " << timeout << " s (--timeout) and was stopped";
  } else if (r.signal) {
    m << "crashed (signal " << r.signal << ": " << strsignal(r.signal) << ")";
  } else {
    m << "exit status " << r.exit_code;
  }
  if (!r.last_error.empty()) m << ": " << r.last_error;
  return m.str();
}

int run_batch(const BatchCli& c) {
  if (c.list) return list_slides(c);
  if (c.out.empty()) throw UsageError("batch needs an output directory: -o DIR");
  std::signal(SIGINT, on_batch_signal);
  std::signal(SIGTERM, on_batch_signal);
  const ShardSpec shard = ShardSpec::parse(c.shard);
  const fs::path out = c.out;
  std::error_code ec;
  fs::create_directories(out / "logs", ec);
  if (ec) throw UsageError("cannot create the output directory " + out.string() + ": " + ec.message());
  if (::access(out.c_str(), W_OK) != 0) throw UsageError("output directory " + out.string() + " is not writable");
  const BatchLock lock(out / (".batch" + shard.suffix() + ".lock"));

  const Selection sel = select_slides(c, shard);
  const std::vector<fs::path>& slides = sel.slides;
  const std::vector<std::string>& names = sel.names;
  const std::vector<size_t>& mine = sel.mine;
  if (slides.empty()) throw UsageError("no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)");

  const fs::path manifest_json = out / ("manifest" + shard.suffix() + ".json");
  const fs::path manifest_csv = out / ("manifest" + shard.suffix() + ".csv");
  Manifest manifest = read_manifest(manifest_json);
  const fs::path exe = self_exe();

  int ran_ok = 0, ran_failed = 0, already = 0, kept_failed = 0, skipped = 0;
  double run_seconds = 0;
  std::vector<std::pair<std::string, std::string>> failures;  // name, reason
  ProgressBar bar("batch", !c.quiet && ::isatty(STDERR_FILENO) != 0);
  const auto t_start = std::chrono::steady_clock::now();
  for (size_t k = 0; k < mine.size() && !g_stop; ++k) {
    const size_t i = mine[k];
    const std::string& name = names[i];
    const fs::path slide = slides[i];
    bar.update(static_cast<int64_t>(k), static_cast<int64_t>(mine.size()),
               std::to_string(ran_ok + already) + " done, " + std::to_string(ran_failed + kept_failed + skipped) + " failed");
    const ManifestEntry* old = manifest.find(name);
    ManifestEntry e;
    e.name = name;
    e.slide = slide.string();
    e.attempts = old ? old->attempts : 0;
    if (old && old->slide == e.slide) {
      std::string why;
      if (old->status == SlideStatus::done && outputs_intact(old->outputs, out, &why)) {
        ++already;
        continue;
      }
      if (old->status == SlideStatus::failed && !c.retry_failed) {
        ++kept_failed;
        failures.emplace_back(name, old->reason + " (earlier run; --retry-failed runs it again)");
        continue;
      }
    }
    const bool readable = ::access(slide.c_str(), R_OK) == 0;
    if (!readable || fs::file_size(slide, ec) == 0) {
      e.status = SlideStatus::skipped;
      e.reason = readable ? "empty file" : "cannot be read (permission denied?)";
      e.finished = utc_now();
      manifest.upsert(e);
      write_manifest(manifest, manifest_json, manifest_csv);
      ++skipped;
      failures.emplace_back(name, "skipped: " + e.reason);
      continue;
    }
    // A fresh folder: whatever an interrupted attempt left there (temporaries, older outputs) goes.
    const fs::path dir = out / name;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) throw WriteError(dir, "cannot create the slide's output folder: " + ec.message());
    const ChildResult r = run_child(child_argv(c, exe, slide, dir, name), out / "logs" / (name + ".log"), c.timeout, &g_stop);
    if (g_stop && r.exit_code != 0) break;  // interrupted: not recorded, rerun redoes it
    e.attempts += 1;
    e.seconds = r.seconds;
    e.finished = utc_now();
    run_seconds += r.seconds;
    if (r.exit_code == 0) {
      e.status = SlideStatus::done;
      e.outputs = describe_outputs(dir, out);
      ++ran_ok;
    } else {
      e.status = SlideStatus::failed;
      e.reason = failure_reason(r, c.timeout);
      if (fs::is_empty(dir, ec)) fs::remove(dir, ec);  // nothing to look at; the log says why
      ++ran_failed;
      failures.emplace_back(name, e.reason);
    }
    manifest.upsert(e);
    write_manifest(manifest, manifest_json, manifest_csv);
  }
  bar.update(static_cast<int64_t>(mine.size()), static_cast<int64_t>(mine.size()));
  bar.finish();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  std::cout << "batch " << out.string() << (shard.whole() ? "" : " shard " + c.shard) << ": " << mine.size()
            << " slides (" << slides.size() << " found): " << ran_ok << " done now, " << already << " already done, "
            << ran_failed + kept_failed << " failed, " << skipped << " skipped\n";
  if (ran_ok + ran_failed > 0)
    std::cout << std::fixed << std::setprecision(1) << "  " << (ran_ok + ran_failed) * 3600.0 / std::max(wall, 1e-9)
              << " slides/hour (" << wall << " s for " << ran_ok + ran_failed << " slides)\n"
              << std::defaultfloat;
  for (const auto& [name, reason] : failures) std::cout << "  FAILED " << name << ": " << reason << "\n";
  std::cout << "  manifest: " << manifest_json.string() << "\n";
  if (g_stop) {
    print_error("interrupted; finished slides are recorded, a rerun goes on from there");
    return 130;
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

void setup_batch(CLI::App& app) {
  auto c = std::make_shared<BatchCli>();
  CLI::App* sub = app.add_subcommand(
      "batch", "Heatmaps of every slide in files, directories or list files; resumable (manifest in DIR)");
  sub->add_option("inputs", c->inputs, "Slides, directories (searched recursively) or list files (.txt: one per line)")
      ->required();
  sub->add_option("--out,-o", c->out, "Output directory: DIR/NAME/ per slide, DIR/manifest.json");
  sub->add_option("--model,-m", c->model, "Model NAME.pt (default: the bundled demo model)");
  sub->add_option("--preset", c->preset, "Heatmap parameter preset (a name in pipelines/presets/ or a JSON file)");
  sub->add_option("--device", c->device, "cpu or cuda");
  sub->add_option("--precision", c->precision, "fp32, bf16 or fp16");
  sub->add_option("--batch", c->batch, "Patches per forward pass");
  sub->add_option("--threads", c->threads, "Threads per slide (0 = one per core)");
  sub->add_flag("--no-gradcam", c->no_gradcam, "Skip Grad-CAM");
  sub->add_option("--timeout", c->timeout, "Stop a slide after this many seconds and record it as failed (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--retry-failed", c->retry_failed, "Run slides that failed in an earlier run again");
  sub->add_option("--shard", c->shard, "Only shard I of N (I/N, 1 <= I <= N; e.g. a Slurm array task)")
      ->capture_default_str();
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->add_flag("--list", c->list, "Print NAME<TAB>SLIDE for each slide a run would process (this shard) and exit");
  sub->callback([c] {
    const int rc = run_batch(*c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
