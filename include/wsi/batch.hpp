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
// directory and shard per process.
#pragma once

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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

}  // namespace wsi
