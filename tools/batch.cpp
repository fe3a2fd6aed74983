// `wsi-heatmap batch INPUT... -o DIR [--extract]`: every slide of an archive through the heatmap
// (or patch extraction), one child process per slide, resumable from the manifest
// (include/wsi/batch.hpp); with --extract the slides' parts are then merged into one balanced
// dataset with splits by slide (merge_dataset_parts in include/wsi/extract.hpp).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/json_text.hpp"
#include "commands.hpp"
#include "core/text.hpp"
#include "progress.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"
#include "wsi/extract.hpp"
#include "wsi/sampling.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_batch_signal(int) { g_stop = 1; }

// An option of `heatmap` or `extract` that batch passes to every child as given.
struct Forwarded {
  enum Mode { both, heatmap, extract };
  std::string flag;
  Mode mode = both;
  bool is_flag = false;
  std::string value;  // options: as given
  bool given = false;
};

struct BatchCli {
  std::vector<std::string> inputs;
  std::string out, model, preset, device, precision, shard = "1/1";
  int batch = 0, threads = 0;
  double timeout = 0;
  bool no_gradcam = false, retry_failed = false, quiet = false, list = false, html = false;
  // --extract: per-slide parts, then one dataset.
  bool extract = false, merge_only = false, augment = false;
  std::string split = "train=1", balance = "none", ratio = "1:1", format = "pcam", prefix = "patches";
  uint64_t seed = 0;
  std::list<Forwarded> forwarded;  // a list: CLI11 keeps pointers to the members
  std::string mpp_csv;
  std::map<std::string, std::string> mpp_of;  // --mpp-csv: slide path, file name or stem -> um/px
};

// --mpp-csv FILE: columns `slide` (a path as given to the batch, a file name, or a file name
// without extension) and `mpp` (level-0 um per pixel), for archives whose slides lack it.
std::map<std::string, std::string> read_mpp_csv(const fs::path& csv) {
  std::ifstream in(csv);
  if (!in) throw UsageError("--mpp-csv " + csv.string() + ": cannot open the file");
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = detail::parse_csv_row(line);
  size_t slide_col = header.size(), mpp_col = header.size();
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string h = detail::ascii_lower(header[i]);
    if (h == "slide") slide_col = i;
    if (h == "mpp") mpp_col = i;
  }
  if (slide_col == header.size() || mpp_col == header.size())
    throw UsageError("--mpp-csv " + csv.string() + ": the header must name the columns slide and mpp");
  std::map<std::string, std::string> m;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> f = detail::parse_csv_row(line);
    const std::string where = "--mpp-csv " + csv.string() + ":" + std::to_string(number) + ": ";
    if (f.size() != header.size()) throw UsageError(where + "expected " + std::to_string(header.size()) + " columns");
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(f[mpp_col], &used);
      if (used != f[mpp_col].size()) v = 0;
    } catch (const std::logic_error&) {
    }
    if (!(v > 0 && v < 100)) throw UsageError(where + "mpp '" + f[mpp_col] + "' is not a number of um per pixel (0..100)");
    if (!m.emplace(f[slide_col], f[mpp_col]).second) throw UsageError(where + f[slide_col] + " is listed twice");
  }
  return m;
}

// The slide's row of --mpp-csv: by the path as given, else the file name, else the stem.
const std::string* csv_mpp(const BatchCli& c, const fs::path& slide) {
  for (const std::string& key : {slide.string(), slide.filename().string(), slide.stem().string()})
    if (const auto it = c.mpp_of.find(key); it != c.mpp_of.end()) return &it->second;
  return nullptr;
}

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

// A path on one line of --list: backslash, tab, newline and carriage return escaped as \\, \t,
// \n and \r, so that a file name holding them cannot split or forge a line.
std::string escape_for_list(const std::string& path) {
  std::string out;
  for (const char ch : path) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += ch;
    }
  }
  return out;
}

// --list: what a run would process, as NAME<TAB>SLIDE lines, SLIDE escaped (escape_for_list; for
// workflow engines: the Snakemake workflow in pipelines/ takes its slide names from here).
int list_slides(const BatchCli& c) {
  const Selection sel = select_slides(c, ShardSpec::parse(c.shard));
  for (const size_t i : sel.mine) std::cout << sel.names[i] << '\t' << escape_for_list(sel.slides[i].string()) << '\n';
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

// The file names of one slide's extraction part (extract --prefix part --split SPLIT=1).
constexpr const char* kPartPrefix = "part";

// The split a slide's patches go to (--extract): from its name alone, so it never changes as
// the archive grows or is sharded.
std::string split_of(const BatchCli& c, const std::string& name) {
  return split_for_name(name, SplitSpec::parse(c.split), c.seed);
}

// The options every child of this run gets, after its slide and output folder: they are also
// the manifest's `settings`, so a rerun with other options redoes the slide.
std::vector<std::string> child_options(const BatchCli& c, const fs::path& slide, const std::string& name) {
  std::vector<std::string> a;
  const auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) a.insert(a.end(), {flag, v});
  };
  if (c.extract) {
    a = {"--prefix", kPartPrefix, "--split", split_of(c, name) + "=1", "--format", "pcam", "--balance", "none",
         "--seed", std::to_string(c.seed), "-q"};
  } else {
    a = {"--name", name, "-q"};
    add("--model", c.model);
    add("--preset", c.preset);
    add("--device", c.device);
    add("--precision", c.precision);
    if (c.batch > 0) add("--batch", std::to_string(c.batch));
    if (c.no_gradcam) a.push_back("--no-gradcam");
  }
  const std::string* mpp = csv_mpp(c, slide);
  if (mpp) add("--mpp", *mpp);
  for (const Forwarded& f : c.forwarded) {
    if (!f.given || (mpp && f.flag == "--mpp")) continue;  // the slide's own row wins
    if (f.is_flag)
      a.push_back(f.flag);
    else
      a.insert(a.end(), {f.flag, f.value});
  }
  return a;
}

// The child's command line: this program's heatmap or extract subcommand on one slide.
std::vector<std::string> child_argv(const BatchCli& c, const fs::path& exe, const fs::path& slide, const fs::path& dir,
                                    const std::string& name) {
  std::vector<std::string> a = {exe.string(), c.extract ? "extract" : "heatmap", slide.string(), "-o", dir.string()};
  const std::vector<std::string> rest = child_options(c, slide, name);
  a.insert(a.end(), rest.begin(), rest.end());
  // Not in child_options: the thread count changes no output (shards on nodes of different
  // sizes, and the merge after them, see the same settings).
  if (c.threads > 0) a.insert(a.end(), {"--threads", std::to_string(c.threads)});
  return a;
}

std::string settings_of(const BatchCli& c, const fs::path& slide, const std::string& name) {
  std::string s = c.extract ? "extract" : "heatmap";
  for (const std::string& a : child_options(c, slide, name)) s += " " + a;
  return s;
}

// Before any slide runs: the options must make sense to the subcommand that gets them, or every
// slide would fail the same way. Parses a child's command line with the real subcommand's
// parser, its action switched off.
void check_child_options(const BatchCli& c, const fs::path& some_slide) {
  for (const Forwarded& f : c.forwarded)
    if (f.given && f.mode != Forwarded::both && (f.mode == Forwarded::extract) != c.extract)
      throw UsageError(f.flag + " is an option of " + (c.extract ? "the heatmap" : "--extract") + " runs, not of " +
                       (c.extract ? "--extract" : "heatmap") + " runs");
  if (c.extract) {
    const auto pattern = [&](const char* flag) -> const Forwarded* {
      for (const Forwarded& f : c.forwarded)
        if (f.flag == flag && f.given) return &f;
      return nullptr;
    };
    const Forwarded* truth = pattern("--mask");
    if (!truth) truth = pattern("--annotations");
    if (pattern("--mask") && pattern("--annotations")) throw UsageError("give --mask or --annotations, not both");
    if (truth && truth->value.find("{stem}") == std::string::npos)
      throw UsageError(truth->flag + " " + truth->value + ": in a batch, give a pattern with {stem}, the slide's file "
                       "name without extension (e.g. " + truth->flag + " 'masks/{stem}_mask.tif')");
    if (!truth && !pattern("--unlabelled"))
      throw UsageError("--extract needs ground truth: --mask or --annotations with {stem} (e.g. --mask "
                       "'masks/{stem}_mask.tif'), or --unlabelled");
    SplitSpec::parse(c.split);
    parse_balance_mode(c.balance);
    parse_ratio(c.ratio);
    parse_dataset_format(c.format);
    if (c.prefix.empty() || c.prefix.find('/') != std::string::npos)
      throw UsageError("--prefix '" + c.prefix + "' must be a plain file name part (no '/')");
  }
  CLI::App app;
  if (c.extract)
    setup_extract(app, true);
  else
    setup_heatmap(app, true);
  std::vector<std::string> argv = child_argv(c, "wsi-heatmap", some_slide, "out", "check");
  argv.erase(argv.begin());  // the program name
  std::reverse(argv.begin(), argv.end());  // CLI11 takes the arguments last-first
  try {
    app.parse(argv);
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string("an option for the slides is not accepted: ") + e.what());
  }
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

// Every manifest in DIR: this run's, or with shards all of them (merging after the last shard).
Manifest all_manifests(const fs::path& out) {
  Manifest all;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("manifest", 0) == 0 && entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files)
    for (const ManifestEntry& e : read_manifest(f).entries) all.upsert(e);
  return all;
}

// --extract: the parts of the done slides merged into DIR/dataset, unless that is already the
// merge of exactly these parts with these parameters. Built under a temporary name and swapped
// in whole, so DIR/dataset is always one complete merge (or absent).
int merge_parts(const BatchCli& c, const fs::path& out, const Selection& sel, const Manifest& manifest) {
  std::vector<DatasetPart> parts;
  nlohmann::json inputs = nlohmann::json::array();
  int missing = 0;
  for (size_t i = 0; i < sel.slides.size(); ++i) {
    const std::string& name = sel.names[i];
    const ManifestEntry* e = manifest.find(name);
    if (!e || e->status != SlideStatus::done || e->settings != settings_of(c, sel.slides[i], name) || !outputs_intact(e->outputs, out)) {
      ++missing;
      continue;
    }
    const std::string split = split_of(c, name);
    const std::string stem = std::string(kPartPrefix) + "_" + split;
    parts.push_back({name, split, out / name / (stem + "_x.h5"), out / name / (stem + "_meta.csv")});
    nlohmann::json files = nlohmann::json::array();
    for (const OutputFile& o : e->outputs) files.push_back(o.sha1);
    inputs.push_back({{"name", name}, {"split", split}, {"sha1", files}});
  }
  const nlohmann::json key = {{"parts", inputs}, {"split", c.split}, {"balance", c.balance}, {"ratio", c.ratio},
                              {"seed", c.seed}, {"augment", c.augment}, {"format", c.format}, {"prefix", c.prefix}};
  const fs::path dataset = out / "dataset", key_file = dataset / "merge-inputs.json";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out, ec))  // left by a merge that was killed
    if (entry.path().filename().string().rfind(".dataset.", 0) == 0) fs::remove_all(entry.path(), ec);
  if (fs::exists(key_file) && fs::exists(dataset / (c.prefix + "_summary.json"))) {
    std::ifstream f(key_file);
    nlohmann::json old;
    try {
      f >> old;
    } catch (const nlohmann::json::exception&) {
    }
    if (old == key) {
      std::cout << "  dataset: " << dataset.string() << " is up to date (" << parts.size() << " slides)\n";
      return 0;
    }
  }
  if (parts.empty()) {
    print_error("no slide has finished, so there is no dataset to merge yet");
    return 1;
  }
  MergeParams mp;
  mp.split = SplitSpec::parse(c.split);
  mp.balance.mode = parse_balance_mode(c.balance);
  mp.balance.ratio = parse_ratio(c.ratio);
  mp.balance.seed = c.seed;
  mp.balance.augment = c.augment;
  mp.format = parse_dataset_format(c.format);
  mp.prefix = c.prefix;
  mp.out_dir = out / (".dataset.partial-" + std::to_string(::getpid()));
  const MergeSummary m = merge_dataset_parts(parts, mp);
  {
    std::ofstream f(mp.out_dir / "merge-inputs.json");  // inside the temporary folder: renamed with it
    f << detail::json_text(key, 2) << "\n";
    if (!f.flush()) throw WriteError(mp.out_dir / "merge-inputs.json", "writing failed (is the disk full?)");
  }
  const fs::path old = out / (".dataset.old-" + std::to_string(::getpid()));
  if (fs::exists(dataset)) fs::rename(dataset, old);
  fs::rename(mp.out_dir, dataset);
  fs::remove_all(old, ec);
  std::cout << "  dataset: " << dataset.string() << " from " << parts.size() << " slides";
  if (missing) std::cout << " (" << missing << " without a finished part left out)";
  std::cout << "\n";
  for (const SplitReport& r : m.splits)
    std::cout << "    " << r.name << ": " << r.positives + r.negatives << " patches (" << r.positives << " tumour, "
              << r.negatives << " normal" << (r.copies ? ", " + std::to_string(r.copies) + " oversampled copies" : "")
              << ") from " << r.slides << " slide(s)\n";
  return 0;
}

int run_batch(BatchCli& c) {
  if (c.list) return list_slides(c);
  if (!c.mpp_csv.empty()) c.mpp_of = read_mpp_csv(c.mpp_csv);
  if (c.out.empty()) throw UsageError("batch needs an output directory: -o DIR");
  if (c.html && c.extract) throw UsageError("--html shows heatmaps; it does not go with --extract");
  std::signal(SIGINT, on_batch_signal);
  std::signal(SIGTERM, on_batch_signal);
  const ShardSpec shard = ShardSpec::parse(c.shard);
  const fs::path out = c.out;
  // The inputs and the options before anything is created: a command line that cannot work
  // leaves no folder behind.
  const Selection sel = select_slides(c, shard);
  const std::vector<fs::path>& slides = sel.slides;
  const std::vector<std::string>& names = sel.names;
  const std::vector<size_t>& mine = sel.mine;
  if (slides.empty()) throw UsageError("no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)");
  check_child_options(c, slides.front());
  if (c.merge_only && !shard.whole()) throw UsageError("--merge-only merges every shard: give it without --shard");
  std::error_code ec;
  prepare_output_dir(out);
  // The batch's own folder, never followed elsewhere: logs written through a planted link would
  // land wherever it points.
  if (fs::is_symlink(out / "logs"))
    throw UsageError((out / "logs").string() + " is a symbolic link; batch keeps its logs in a folder of its own " +
                     "there: remove the link");
  fs::create_directories(out / "logs", ec);
  if (ec) throw UsageError("cannot create " + (out / "logs").string() + ": " + ec.message());
  // Shards run side by side; a run of every slide (or --merge-only) never runs beside any of them.
  const BatchLock dir_lock(out / ".batch.lock",
                           shard.whole() ? BatchLock::Mode::exclusive : BatchLock::Mode::shared);
  std::optional<BatchLock> shard_lock;
  if (!shard.whole()) shard_lock.emplace(out / (".batch" + shard.suffix() + ".lock"));

  const fs::path manifest_json = out / ("manifest" + shard.suffix() + ".json");
  const fs::path manifest_csv = out / ("manifest" + shard.suffix() + ".csv");
  Manifest manifest = read_manifest(manifest_json);
  const fs::path exe = self_exe();
  if (c.merge_only) {
    // After the shards: one manifest of every slide (a later whole run trusts it as its own), and
    // with --extract one dataset from the parts of all shards.
    const Selection all = select_slides(c, ShardSpec{});
    const Manifest found = all_manifests(out);
    Manifest merged;
    int n_done = 0;
    for (const std::string& name : all.names)
      if (const ManifestEntry* e = found.find(name)) {
        merged.upsert(*e);
        n_done += e->status == SlideStatus::done;
      }
    write_manifest(merged, manifest_json, manifest_csv);
    std::cout << "batch " << out.string() << ": " << all.slides.size() << " slides, " << merged.entries.size()
              << " in the shards' manifests (" << n_done << " done)\n  manifest: " << manifest_json.string() << "\n";
    const int rc = c.extract ? merge_parts(c, out, all, merged) : 0;
    return rc != 0 || n_done < static_cast<int>(all.slides.size()) ? 1 : 0;
  }

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
    e.settings = settings_of(c, slide, name);
    e.attempts = old ? old->attempts : 0;
    if (old && old->slide == e.slide && old->settings == e.settings) {
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
  // On stderr too: scripts that keep only the error stream still learn which slides failed.
  for (const auto& [name, reason] : failures) {
    std::cout << "  FAILED " << name << ": " << reason << "\n";
    std::cerr << "wsi-heatmap: batch: slide " << name << " failed: " << reason << "\n";
  }
  std::cout << "  manifest: " << manifest_json.string() << "\n";
  if (g_stop) {
    print_error("interrupted; finished slides are recorded, a rerun goes on from there");
    return 130;
  }
  // The viewers and index.html: failed slides listed with their reasons.
  const int html_rc = c.html ? write_batch_index_after_run(out, c.quiet) : 0;
  int merged = 0;
  if (c.extract && shard.whole()) {
    merged = merge_parts(c, out, sel, manifest);
  } else if (c.extract) {
    std::cout << "  dataset: not merged in a shard; when every shard has finished, run the same command with "
                 "--merge-only instead of --shard\n";
  }
  return failures.empty() && merged == 0 && html_rc == 0 ? 0 : 1;
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
  sub->add_option("--batch", c->batch, "Patches per forward pass (default: heatmap's)")->check(CLI::Range(1, 4096));
  add_threads_option(*sub, c->threads, "Threads per slide (0 = one per core)");
  sub->add_flag("--no-gradcam", c->no_gradcam, "Skip Grad-CAM");
  sub->add_option("--timeout", c->timeout, "Stop a slide after this many seconds and record it as failed (0 = no limit)")
      ->check(number_at_least_zero("--timeout", "no limit"));
  sub->add_option("--mpp-csv", c->mpp_csv,
                  "CSV with columns slide,mpp: level-0 um per pixel for slides whose files lack it (slide: the path "
                  "as given, the file name, or the name without extension); overrides --mpp for those slides")
      ->check(existing_file("--mpp-csv", "give the CSV file"));
  sub->add_flag("--retry-failed", c->retry_failed, "Run slides that failed in an earlier run again");
  sub->add_option("--shard", c->shard, "Only shard I of N (I/N, 1 <= I <= N; e.g. a Slurm array task)")
      ->capture_default_str();
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->add_flag("--html", c->html, "After the run, an offline HTML viewer per done slide (DIR/NAME/NAME.viewer) and "
                "DIR/index.html listing every slide by score, failed ones with their reasons (see wsi-heatmap view)");
  sub->add_flag("--list", c->list, "Print NAME<TAB>SLIDE for each slide a run would process (this shard) and exit; in SLIDE a backslash, "
                "tab, newline or carriage return is written \\\\, \\t, \\n or \\r");

  const char* ex = "Datasets (--extract)";
  sub->add_flag("--extract", c->extract,
                "Extract labelled patches from every slide (DIR/NAME/part_*), then merge them into one balanced "
                "dataset in DIR/dataset with splits by slide")
      ->group(ex);
  sub->add_flag("--merge-only", c->merge_only,
                "Run no slide: after the shards, write DIR/manifest.json of every shard's slides and, with --extract, "
                "merge the finished parts of every shard into DIR/dataset");
  sub->add_option("--split", c->split, "Splits by slide, e.g. train=0.8,valid=0.1,test=0.2 (each slide's split comes "
                                       "from its name and --seed, so it never moves as the archive grows)")
      ->capture_default_str()->group(ex);
  sub->add_option("--balance", c->balance, "none, undersample or oversample, over all slides of a split")
      ->capture_default_str()->group(ex);
  sub->add_option("--ratio", c->ratio, "positives:negatives after balancing")->capture_default_str()->group(ex);
  sub->add_option("--seed", c->seed, "Seed of every random choice (splits, caps, balancing)")->capture_default_str()->group(ex);
  sub->add_flag("--augment", c->augment, "Give oversampled copies a random flip / 90-degree rotation")->group(ex);
  sub->add_option("--format", c->format, "pcam (HDF5 x/y + meta CSV) or kaggle (train/<sha1>.tif + labels CSV)")
      ->capture_default_str()->group(ex);
  sub->add_option("--prefix", c->prefix, "File prefix of the pcam files")->capture_default_str()->group(ex);

  // Passed to every child as given: see `wsi-heatmap extract --help` / `wsi-heatmap heatmap --help`.
  struct Spec {
    const char* flag;
    Forwarded::Mode mode;
    bool is_flag;
  };
  const Spec specs[] = {
      {"--mpp", Forwarded::both, false},           {"--target-mpp", Forwarded::both, false},
      {"--level", Forwarded::both, false},         {"--mpp-tolerance", Forwarded::both, false},
      {"--stride", Forwarded::both, false},
      {"--min-tissue", Forwarded::both, false},    {"--edge", Forwarded::both, false},
      {"--mask-mpp", Forwarded::both, false},      {"--white-threshold", Forwarded::both, false},
      {"--black-threshold", Forwarded::both, false}, {"--min-saturation", Forwarded::both, false},
      {"--no-pen-removal", Forwarded::both, true}, {"--closing-um", Forwarded::both, false},
      {"--opening-um", Forwarded::both, false},    {"--margin-um", Forwarded::both, false},
      {"--max-hole-um2", Forwarded::both, false},  {"--min-component-um2", Forwarded::both, false},
      {"--cam-resolution", Forwarded::heatmap, false}, {"--overlay-mpp", Forwarded::heatmap, false},
      {"--threshold", Forwarded::heatmap, false},  {"--froc-threshold", Forwarded::heatmap, false},
      {"--float32", Forwarded::heatmap, true},     {"--max-failed", Forwarded::heatmap, false},     {"--mask", Forwarded::extract, false},
      {"--annotations", Forwarded::extract, false}, {"--annotation-scale", Forwarded::extract, false},
      {"--mask-values", Forwarded::extract, false}, {"--exclusion", Forwarded::extract, false},
      {"--unlabelled", Forwarded::extract, true},  {"--patch-size", Forwarded::extract, false},
      {"--label-rule", Forwarded::extract, false}, {"--max-per-slide", Forwarded::extract, false},
      {"--allow-no-tumour", Forwarded::extract, true},
  };
  for (const Spec& sp : specs) {
    Forwarded& f = c->forwarded.emplace_back();
    f.flag = sp.flag;
    f.mode = sp.mode;
    f.is_flag = sp.is_flag;
    const std::string help = sp.mode == Forwarded::both      ? "as in heatmap / extract"
                             : sp.mode == Forwarded::heatmap ? "as in heatmap"
                                                             : "as in extract (--mask/--annotations: a pattern with {stem})";
    const char* group = sp.mode == Forwarded::extract ? ex : "Passed to each slide's run";
    CLI::Option* o = sp.is_flag ? sub->add_flag(sp.flag, f.given, help) : sub->add_option(sp.flag, f.value, help);
    o->group(group);
    if (!sp.is_flag) o->each([&f](const std::string&) { f.given = true; });
  }
  sub->callback([c] {
    const int rc = run_batch(*c);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace wsi::cli
