// A batch run: each slide of the shard in a child process, resumable from the manifest; after
// shards one manifest of all; with --extract the merge of the parts.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <sstream>
#include <system_error>

#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool stopped(const volatile std::sig_atomic_t* stop) { return stop && *stop; }

// --merge-only: one manifest of every slide from the shards' manifests (a later whole run
// trusts it as its own).
void merge_manifests(const BatchJob& job, const BatchSelection& all, BatchReport& report, Manifest& merged) {
  const Manifest found = all_manifests(job.out);
  for (const std::string& name : all.names)
    if (const ManifestEntry* e = found.find(name)) {
      merged.upsert(*e);
      report.manifests_done += e->status == SlideStatus::done;
    }
  report.in_manifests = merged.entries.size();
  write_manifest(merged, report.manifest_json, job.out / "manifest.csv");
}

}  // namespace

std::vector<std::string> child_options(const BatchJob& job, const ForwardedOptions& forwarded, const fs::path& slide,
                                       const std::string& name) {
  std::vector<std::string> a;
  const auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) a.insert(a.end(), {flag, v});
  };
  if (job.extract) {
    a = {"--prefix",  kBatchPartPrefix, "--split", job.dataset.split_of(name) + "=1", "--format", "pcam",
         "--balance", "none",           "--seed",  std::to_string(job.dataset.params.balance.seed),  "-q"};
  } else {
    const BatchHeatmapOptions& h = job.heatmap;
    a = {"--name", name, "-q"};
    add("--model", h.model);
    add("--preset", h.preset);
    add("--device", h.device);
    add("--precision", h.precision);
  }
  const std::string* mpp = mpp_for_slide(job.mpp_of, slide);
  if (mpp) add("--mpp", *mpp);
  if (forwarded) {
    const std::vector<std::string> rest = forwarded(slide, name, mpp != nullptr);
    a.insert(a.end(), rest.begin(), rest.end());
  }
  return a;
}

std::vector<std::string> child_argv(const BatchJob& job, const ForwardedOptions& forwarded, const fs::path& slide,
                                    const fs::path& dir, const std::string& name) {
  std::vector<std::string> a = {job.exe.string(), job.extract ? "extract" : "heatmap", slide.string(), "-o",
                                dir.string()};
  const std::vector<std::string> rest = child_options(job, forwarded, slide, name);
  a.insert(a.end(), rest.begin(), rest.end());
  // Not in child_options: the thread count changes no output (shards on nodes of different
  // sizes, and the merge after them, see the same settings).
  if (job.threads > 0) a.insert(a.end(), {"--threads", std::to_string(job.threads)});
  return a;
}

std::string child_settings(const BatchJob& job, const ForwardedOptions& forwarded, const fs::path& slide,
                           const std::string& name) {
  std::string s = job.extract ? "extract" : "heatmap";
  for (const std::string& a : child_options(job, forwarded, slide, name)) s += " " + a;
  return s;
}

std::string failure_reason(const ChildResult& r, double timeout_s) {
  std::ostringstream m;
  if (r.timed_out) {
    m << "timed out after " << timeout_s << " s (--timeout) and was stopped";
  } else if (r.signal) {
    m << "crashed (signal " << r.signal << ": " << strsignal(r.signal) << ")";
  } else {
    m << "exit status " << r.exit_code;
  }
  if (!r.last_error.empty()) m << ": " << r.last_error;
  return m.str();
}

fs::path current_executable() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this program's own path (/proc/self/exe): " + ec.message());
  return p;
}

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

namespace {

// DIR/logs, the batch's own folder, never followed elsewhere: logs written through a planted link
// would land wherever it points.
void prepare_logs(const fs::path& out) {
  if (fs::is_symlink(out / "logs"))
    throw UsageError((out / "logs").string() + " is a symbolic link; batch keeps its logs in a folder of its own " +
                     "there: remove the link");
  std::error_code ec;
  fs::create_directories(out / "logs", ec);
  if (ec) throw UsageError("cannot create " + (out / "logs").string() + ": " + ec.message());
}

// Whether a slide runs: only the same slide with the same settings is trusted (done with intact
// outputs: counted as already done; failed: kept unless retry_failed); anything else runs again.
bool needs_run(const ManifestEntry* old, const ManifestEntry& e, const BatchJob& job, BatchReport& report) {
  if (!old || old->slide != e.slide || old->settings != e.settings) return true;
  if (old->status == SlideStatus::done && outputs_intact(old->outputs, job.out)) {
    ++report.already;
    return false;
  }
  if (old->status == SlideStatus::failed && !job.retry_failed) {
    ++report.kept_failed;
    report.failures.push_back({e.name, old->reason + " (earlier run; --retry-failed runs it again)"});
    return false;
  }
  return true;
}

// One slide in its own child process, into a fresh DIR/NAME (whatever an interrupted attempt left
// there goes); an empty or unreadable file is skipped without a child. Fills `e` and counts into
// `report`; false when the stop flag ended the child (nothing to record: a rerun redoes it).
bool run_one(const BatchJob& job, const ForwardedOptions& forwarded, const fs::path& slide, ManifestEntry& e,
             BatchReport& report, const volatile std::sig_atomic_t* stop) {
  std::error_code ec;
  const bool readable = ::access(slide.c_str(), R_OK) == 0;
  if (!readable || fs::file_size(slide, ec) == 0) {
    e.status = SlideStatus::skipped;
    e.reason = readable ? "empty file" : "cannot be read (permission denied?)";
    e.finished = utc_now();
    ++report.skipped;
    report.failures.push_back({e.name, "skipped: " + e.reason});
    return true;
  }
  const fs::path dir = job.out / e.name;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw WriteError(dir, "cannot create the slide's output folder: " + ec.message());
  const ChildResult r =
      run_child(child_argv(job, forwarded, slide, dir, e.name), job.out / "logs" / (e.name + ".log"), job.timeout, stop);
  if (stopped(stop) && r.exit_code != 0) return false;
  e.attempts += 1;
  e.seconds = r.seconds;
  e.finished = utc_now();
  if (r.exit_code == 0) {
    e.status = SlideStatus::done;
    e.outputs = describe_outputs(dir, job.out);
    ++report.ran_ok;
  } else {
    e.status = SlideStatus::failed;
    e.reason = failure_reason(r, job.timeout);
    if (fs::is_empty(dir, ec)) fs::remove(dir, ec);  // nothing to look at; the log says why
    ++report.ran_failed;
    report.failures.push_back({e.name, e.reason});
  }
  return true;
}

}  // namespace

BatchReport run_batch(const BatchJob& job, const ForwardedOptions& forwarded, const BatchCallbacks& callbacks,
                      const volatile std::sig_atomic_t* stop) {
  const fs::path& out = job.out;
  const ShardSpec& shard = job.shard;
  if (job.merge_only && !shard.whole()) throw UsageError("--merge-only merges every shard: give it without --shard");
  const BatchSelection sel = select_slides(job.inputs, out, job.merge_only ? ShardSpec{} : shard);
  if (sel.slides.empty())
    throw UsageError("no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)");
  prepare_logs(out);
  // Shards run side by side; a run of every slide (or --merge-only) never runs beside any of them.
  const BatchLock dir_lock(out / ".batch.lock", shard.whole() ? BatchLock::Mode::exclusive : BatchLock::Mode::shared);
  std::optional<BatchLock> shard_lock;
  if (!shard.whole()) shard_lock.emplace(out / (".batch" + shard.suffix() + ".lock"));

  BatchReport report;
  report.manifest_json = out / ("manifest" + shard.suffix() + ".json");
  const fs::path manifest_csv = out / ("manifest" + shard.suffix() + ".csv");
  report.found = sel.slides.size();
  report.selected = sel.mine.size();
  Manifest manifest = read_manifest(report.manifest_json);
  const auto finish = [&]() -> BatchReport {
    if (callbacks.slides_finished) callbacks.slides_finished(report);
    report.interrupted = stopped(stop);
    if (job.extract && shard.whole() && !report.interrupted)
      report.dataset = merge_batch_dataset(job, forwarded, sel, manifest);
    return report;
  };
  if (job.merge_only) {
    Manifest merged;
    merge_manifests(job, sel, report, merged);
    manifest = std::move(merged);
    return finish();
  }

  const auto t_start = std::chrono::steady_clock::now();
  const auto progress = [&](size_t k) {
    if (callbacks.progress)
      callbacks.progress(k, sel.mine.size(), report.ran_ok + report.already,
                         report.ran_failed + report.kept_failed + report.skipped);
  };
  for (size_t k = 0; k < sel.mine.size() && !stopped(stop); ++k) {
    const size_t i = sel.mine[k];
    const std::string& name = sel.names[i];
    const fs::path& slide = sel.slides[i];
    progress(k);
    const ManifestEntry* old = manifest.find(name);
    ManifestEntry e;
    e.name = name;
    e.slide = slide.string();
    e.settings = child_settings(job, forwarded, slide, name);
    e.attempts = old ? old->attempts : 0;
    if (!needs_run(old, e, job, report)) continue;
    if (!run_one(job, forwarded, slide, e, report, stop)) break;  // interrupted: not recorded
    manifest.upsert(e);
    write_manifest(manifest, report.manifest_json, manifest_csv);
  }
  progress(sel.mine.size());
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return finish();
}

}  // namespace wsi
