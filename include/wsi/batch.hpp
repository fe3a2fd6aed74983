// wsi/batch.hpp — many slides into one output directory, overnight: which slides, under which
// names, in which shard, what is already done (the manifest), and running one slide in a child
// process with a time limit (library wsi::batch; the CLI's `wsi-heatmap batch` drives it).
//
// Layout of an output directory DIR:
//   DIR/<name>/          one slide's outputs (`wsi-heatmap heatmap SLIDE -o DIR/<name> --name <name>`)
//   DIR/logs/<name>.log  the child's messages of its last attempt
//   DIR/manifest.json    every slide: status, reason, time, outputs with size and SHA-1
//   DIR/manifest.csv     the same, one row per slide (spreadsheet-friendly)
// With --shard I/N the manifest and the lock are per shard (manifest.shard-I-of-N.json, ...), so
// the N shards of one archive can share DIR (their slide sets are disjoint).
//
// A slide is `done` only when its child exited 0, all its outputs were renamed into place and
// their sizes and SHA-1s were recorded (the manifest is itself replaced atomically). A rerun
// trusts a done slide only if every recorded output still has that size and SHA-1; anything else
// is run again from an emptied DIR/<name>/, so no partial file from a killed run survives.
//
// Thread-safety: the functions are pure or touch only the files they name; one BatchLock per
// directory and shard per process; run_batch() from one thread (it starts one child at a time).
#pragma once

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "wsi/extract.hpp"

namespace wsi {

// ---- Inputs ----

// File extensions taken from directories, lower case with the dot (.svs .tif .tiff .ndpi .vms
// .vmu .scn .mrxs .bif .svslide). Matching ignores case.
const std::vector<std::string>& slide_extensions();

// Expands batch inputs into slide paths: a file with a slide extension is a slide; a directory is
// searched recursively for slide extensions (symbolic links to directories are followed, each
// real directory once, so a link loop ends); a file ending in .txt, .list or .lst lists one input
// per line (relative to the list's directory; blank lines and lines starting with # ignored;
// entries may be directories). Anything under `exclude` (the output directory) is skipped. The
// result is sorted and each real file appears once. Throws UsageError naming an input that does
// not exist, or a file that is neither a slide nor a list.
std::vector<std::filesystem::path> collect_slides(const std::vector<std::filesystem::path>& inputs,
                                                  const std::filesystem::path& exclude = {});

// A name per slide that is safe as one path component and unique in the batch: the file stem,
// with every byte other than ASCII letters, digits, '.', '_', '-' and UTF-8 bytes (>= 0x80)
// replaced by '_', a leading '.' replaced by '_' (no "..", no hidden files), an empty result
// "slide", and a repeated name suffixed "-2", "-3", ... in input order. The batch's own folder
// names "logs" and "dataset" count as taken (a slide logs.svs becomes logs-2). Pure.
std::vector<std::string> unique_safe_names(const std::vector<std::filesystem::path>& slides);

// --shard I/N: shard I (1..N) of N. A slide belongs to the shard FNV-1a(name) mod N + 1: the same
// slide always lands in the same shard, whatever else is in the archive.
struct ShardSpec {
  int index = 1, count = 1;
  static ShardSpec parse(const std::string& text);  // "I/N"; throws UsageError
  bool contains(const std::string& name) const;
  bool whole() const { return count == 1; }
  std::string suffix() const;  // "" for 1/1, else ".shard-I-of-N"
};

// ---- Manifest ----

enum class SlideStatus { done, failed, skipped };
const char* to_string(SlideStatus s);

struct OutputFile {
  std::string file;  // relative to the output directory
  int64_t size = 0;
  std::string sha1;
};

struct ManifestEntry {
  std::string name;   // the slide's unique safe name (its folder under DIR)
  std::string slide;  // the slide's path as given
  SlideStatus status = SlideStatus::failed;
  std::string reason;  // failed: why (one line); skipped: why
  double seconds = 0;  // wall time of the last attempt
  int attempts = 0;    // runs of this slide over all batch runs
  std::string finished;  // UTC time of the last attempt, ISO 8601
  // What produced the outputs: the child's options (slide and folder left out). A rerun with
  // other settings (another model, patch size, split, ...) runs the slide again. JSON only.
  std::string settings;
  std::vector<OutputFile> outputs;
};

struct Manifest {
  std::vector<ManifestEntry> entries;
  const ManifestEntry* find(const std::string& name) const;
  ManifestEntry& upsert(const ManifestEntry& e);  // replaces the entry of that name, or appends
};

// Reads DIR/manifest<suffix>.json; an absent file is an empty manifest. A file that is not a
// manifest is a ConfigError saying to move it away (manifests are only ever replaced whole).
Manifest read_manifest(const std::filesystem::path& json_path);
// Writes the JSON and the CSV (name,slide,status,reason,seconds,attempts,finished,outputs), each
// under a temporary name renamed into place. Throws WriteError.
void write_manifest(const Manifest& m, const std::filesystem::path& json_path, const std::filesystem::path& csv_path);

// The files under `dir` (recursively, temporaries `.*.partial-*` excluded), with size and SHA-1,
// relative to `base`, sorted.
std::vector<OutputFile> describe_outputs(const std::filesystem::path& dir, const std::filesystem::path& base);
// Whether every recorded output exists under `base` with its recorded size and SHA-1 (and there
// is at least one). On false, `why` says which file differs.
bool outputs_intact(const std::vector<OutputFile>& outputs, const std::filesystem::path& base, std::string* why = nullptr);

// ---- Running ----

// A lock on a file (flock): held until destruction or process death (so a killed run never
// leaves a stale lock). Exclusive, or shared with other shared holders. A batch run takes the
// output directory's .batch.lock exclusively when it runs every slide, shared when it runs a
// shard (and then its shard's own lock exclusively): shards run side by side, a whole run never
// runs beside any of them. Throws Error naming the directory when another process holds it.
class BatchLock {
 public:
  enum class Mode { exclusive, shared };
  explicit BatchLock(const std::filesystem::path& lock_file, Mode mode = Mode::exclusive);
  ~BatchLock();
  BatchLock(const BatchLock&) = delete;
  BatchLock& operator=(const BatchLock&) = delete;

 private:
  int fd_ = -1;
};

struct ChildResult {
  int exit_code = -1;   // when it exited
  int signal = 0;       // when a signal ended it
  bool timed_out = false;
  double seconds = 0;
  std::string last_error;  // the last line of its stderr that looks like an error, or its last line
};

// Runs argv[0] with argv (no shell), stdout and stderr to `log` (truncated), stdin from
// /dev/null. The child dies with this process (PR_SET_PDEATHSIG), so a killed batch never leaves
// a slide running behind it. After `timeout_s` seconds (0 = none) it gets SIGTERM, and SIGKILL
// 10 s later. `cancel`, polled, stops it the same way. Throws Error when it cannot be started.
ChildResult run_child(const std::vector<std::string>& argv, const std::filesystem::path& log, double timeout_s,
                      const volatile std::sig_atomic_t* cancel = nullptr);

// ---- A batch run (`wsi-heatmap batch`) ----

// --mpp-csv FILE: a header naming the columns `slide` and `mpp` (any order and case, other columns
// ignored), then one row per slide: `slide` is the slide's path as given, its file name, or its
// file name without extension; `mpp` its level-0 um per pixel (0 < mpp < 100), kept as written so
// the child gets the same text. Blank lines are skipped. Throws UsageError "--mpp-csv FILE: ..."
// (with ":LINE" for a row) for a missing file, a header without both columns, a row with another
// number of columns, a value that is not such a number, and a slide listed twice.
std::map<std::string, std::string> read_mpp_csv(const std::filesystem::path& csv);
// The slide's row of read_mpp_csv()'s map: by the path as given, else the file name, else the
// stem; nullptr when it has none. Pure.
const std::string* mpp_for_slide(const std::map<std::string, std::string>& mpp_of, const std::filesystem::path& slide);

// A path on one line of --list: backslash, tab, newline and carriage return written as \\, \t,
// \n and \r, so that a file name holding them can neither split nor forge a line. Pure.
std::string escape_for_list(const std::string& path);

// The slides of a batch's inputs (the output directory excluded: collect_slides), their
// unique_safe_names, and which of them belong to `shard` (indices into slides/names, in order).
struct BatchSelection {
  std::vector<std::filesystem::path> slides;
  std::vector<std::string> names;
  std::vector<size_t> mine;
};
BatchSelection select_slides(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out,
                             const ShardSpec& shard);

// --extract: how the per-slide parts become one dataset in DIR/dataset: the dataset parameters
// of ExtractParams (dataset_param_table(): format, prefix, split, balance, ratio, seed, augment),
// typed and checked as `extract` takes them; the rest of `params` is not used.
struct BatchDataset {
  ExtractParams params;
  // Throws UsageError naming the flag (a --prefix with '/').
  void validate() const;
  // The split a slide's patches go to: from its name and the seed alone (split_for_name), so it
  // never changes as the archive grows or is sharded.
  std::string split_of(const std::string& name) const;
};

// The options of a heatmap batch's own that each child gets (empty: not passed); the heatmap's
// parameters come through the ForwardedOptions hook.
struct BatchHeatmapOptions {
  std::string model, preset, device, precision;
};

// The hook that gives one slide's child the user's pass-through options (heatmap's or extract's
// own flags, as the CLI took them); they follow the library's own options (child_options).
// `mpp_from_csv`: the slide has a row in --mpp-csv, already passed as --mpp, so the hook leaves
// any --mpp of its own out. An empty hook passes nothing. Must be pure: its result is part of
// the manifest's settings, so a change reruns the slide.
using ForwardedOptions =
    std::function<std::vector<std::string>(const std::filesystem::path& slide, const std::string& name, bool mpp_from_csv)>;

// Everything a batch run needs, as plain values.
struct BatchJob {
  std::vector<std::filesystem::path> inputs;  // slides, directories, list files (collect_slides)
  std::filesystem::path out;                  // DIR; must exist (the CLI's prepare_output_dir)
  ShardSpec shard;
  std::filesystem::path exe;  // the wsi-heatmap whose `heatmap` / `extract` runs each slide
  int threads = 0;            // --threads of each child (0: not passed; changes no output)
  double timeout = 0;         // seconds per slide, 0 = no limit (run_child)
  bool retry_failed = false;  // run slides again that failed in an earlier run
  bool merge_only = false;    // run no slide: one manifest of every shard, and the dataset
  bool extract = false;       // children run `extract` into parts, then one dataset is merged
  BatchHeatmapOptions heatmap;  // without extract
  BatchDataset dataset;         // with extract
  std::map<std::string, std::string> mpp_of;  // read_mpp_csv()
};

// The part files of one slide's extraction (`extract --prefix part --split S=1`).
inline constexpr const char* kBatchPartPrefix = "part";

// The options of a slide's child after `SLIDE -o DIR` (--threads left out): the library's own
// (extract: --prefix part --split S=1 --format pcam --balance none --seed N -q; heatmap: --name
// NAME -q and BatchHeatmapOptions), the --mpp-csv row as --mpp, then the hook's.
std::vector<std::string> child_options(const BatchJob& job, const ForwardedOptions& forwarded,
                                       const std::filesystem::path& slide, const std::string& name);
// The child's whole command line: exe, `heatmap` or `extract`, SLIDE, -o DIR, child_options,
// then --threads N when given.
std::vector<std::string> child_argv(const BatchJob& job, const ForwardedOptions& forwarded,
                                    const std::filesystem::path& slide, const std::filesystem::path& dir,
                                    const std::string& name);
// The manifest's `settings` of a slide: the subcommand and child_options, space-separated.
std::string child_settings(const BatchJob& job, const ForwardedOptions& forwarded, const std::filesystem::path& slide,
                           const std::string& name);

// A failed child in one line: "timed out after T s (--timeout) and was stopped", "crashed (signal
// N: NAME)" or "exit status N", then ": " and its last error line when it has one. Pure.
std::string failure_reason(const ChildResult& r, double timeout_s);

// This program's own path (/proc/self/exe), for BatchJob::exe. Throws Error.
std::filesystem::path current_executable();

// Every manifest*.json in DIR merged (sorted by file name, later entries replacing earlier ones
// of the same slide): after shards, the entries of all of them.
Manifest all_manifests(const std::filesystem::path& out);

// The --extract merge of a batch into DIR/dataset.
struct BatchMergeReport {
  enum class Outcome {
    merged,            // DIR/dataset was (re)built from `slides` parts
    up_to_date,        // DIR/dataset already is the merge of exactly these parts and settings
    nothing_finished,  // no slide has a finished part: nothing written
  };
  Outcome outcome = Outcome::nothing_finished;
  std::filesystem::path dir;  // DIR/dataset
  size_t slides = 0;          // parts in the dataset
  size_t left_out = 0;        // slides of the selection without a done, intact part (merged only)
  std::vector<SplitReport> splits;  // merged only
};

// The done slides' parts (manifest entry done, same settings, outputs intact) merged into
// DIR/dataset with job.dataset, unless DIR/dataset/merge-inputs.json says it already is the merge
// of exactly these parts (their SHA-1s) with these settings. Built under a temporary name and
// swapped in whole, so DIR/dataset is always one complete merge, or absent; temporaries of a
// killed merge are removed first. Throws ConfigError for a part that does not read back,
// WriteError.
BatchMergeReport merge_batch_dataset(const BatchJob& job, const ForwardedOptions& forwarded, const BatchSelection& sel,
                                     const Manifest& manifest);

struct SlideFailure {
  std::string name;
  std::string reason;  // one line
};

struct BatchReport {
  std::filesystem::path manifest_json;  // this run's manifest (merge_only: DIR/manifest.json)
  size_t found = 0;     // slides in the inputs
  size_t selected = 0;  // of them this run's (its shard; merge_only: all)
  // A run of slides:
  int ran_ok = 0, ran_failed = 0;  // children that ran now
  int already = 0;                 // done earlier, outputs intact: not run
  int kept_failed = 0;             // failed earlier, kept (no retry_failed): in `failures`
  int skipped = 0;                 // unreadable or empty slide files: in `failures`
  double wall_seconds = 0;         // of the slides' loop
  std::vector<SlideFailure> failures;  // in the order met
  bool interrupted = false;            // the stop flag ended the run; no merge then
  // merge_only: entries of every shard's manifests for the selection, and how many are done.
  size_t in_manifests = 0;
  int manifests_done = 0;
  std::optional<BatchMergeReport> dataset;  // with extract, when merged (a whole run or merge_only)
};

// The lines a run ends with, each ending in '\n' (src/batch/report.cpp; pure): the counts, the
// rate, each failure ("  FAILED NAME: reason") and the manifest; `shard` is "I/N" for a shard
// run, empty for a whole one. With merge_only: the manifests' counts. With extract in a shard:
// that the dataset waits for --merge-only.
std::string batch_report_text(const BatchReport& report, const std::string& out, const std::string& shard,
                              bool merge_only, bool extract);
// The dataset's lines: up to date, or merged from N slides with each split's counts.
std::string batch_merge_text(const BatchMergeReport& merge);
// --list: NAME<TAB>SLIDE per slide of this shard, SLIDE escaped (escape_for_list).
std::string batch_list_text(const BatchSelection& selection);
// The run's exit status: 0 when every slide of the run is done (merge_only: every slide of the
// archive) and a wanted dataset merged; else 1.
int batch_exit_status(const BatchReport& report, const BatchJob& job);
// --extract's ground truth: --mask or --annotations as a pattern with {stem}, or --unlabelled.
// Throws UsageError saying which and how.
void check_batch_truth(const std::string& mask, const std::string& annotations, bool unlabelled);

struct BatchCallbacks {
  // Before each slide (handled < total) and once when the loop ends (handled == total): for a
  // progress bar; done and failed so far (failed includes kept failures and skipped slides).
  std::function<void(size_t handled, size_t total, int done, int failed)> progress;
  // When the slides are over (also with merge_only, and when interrupted), before any dataset
  // merge: the report so far, so it can be shown before a long merge.
  std::function<void(const BatchReport&)> slides_finished;
};

// A batch run. Refuses (UsageError) inputs without slides and merge_only with a shard. Creates
// DIR/logs (refusing a symbolic link there), takes the locks (BatchLock), reads this shard's
// manifest, and per slide of the shard, in name order: skips it when done with the same slide
// and settings and intact outputs, keeps an earlier failure with the same slide and settings
// unless retry_failed, records an unreadable or empty file as skipped, else runs its child in an
// emptied DIR/NAME (log in DIR/logs/NAME.log) and records done (with its outputs) or failed;
// the manifest is rewritten after every slide. `stop` (a signal handler's flag) ends the run
// between or during slides, the slide it stopped left unrecorded. With merge_only, instead: one
// DIR/manifest.json of every shard's entries (all_manifests). With extract, a whole run or
// merge_only then merges the dataset (merge_batch_dataset). Throws the wsi::Error family.
BatchReport run_batch(const BatchJob& job, const ForwardedOptions& forwarded, const BatchCallbacks& callbacks = {},
                      const volatile std::sig_atomic_t* stop = nullptr);

}  // namespace wsi
