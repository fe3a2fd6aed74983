// Shared helpers for the test suites: fixture paths and scratch directories.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

// Like GTEST_SKIP() (stream the reason into it) for a missing prerequisite (a Debian package, the
// shared real test data): a skip on a developer's machine, a failure under CI=true.
#define WSI_SKIP_MISSING()                                                                              \
  return ::testing::internal::AssertHelper(                                                            \
             ::wsi::test::in_ci() ? ::testing::TestPartResult::kFatalFailure                            \
                                  : ::testing::TestPartResult::kSkip,                                   \
             __FILE__, __LINE__, ::wsi::test::in_ci() ? "CI=true: a prerequisite is missing" : "Skipped") = \
             ::testing::Message()

namespace wsi::test {

// True under CI=true (.ci/run sets it): every prerequisite of the suite is installed there, so a
// test that would skip for a missing one fails instead.
inline bool in_ci() {
  const char* v = std::getenv("CI");
  return v && std::string(v) == "true";
}


inline std::filesystem::path testdata(const std::string& rel) { return std::filesystem::path(WSI_TESTDATA_DIR) / rel; }

// A file of ../shared/testdata-real (same relative path). The small permissively licensed ones
// are copied into testdata/third_party/ and slides into testdata/slides/, and those copies win,
// so most real-data tests run without ../shared; the others skip when it is absent.
inline std::filesystem::path shared_testdata(const std::string& rel) {
  const std::filesystem::path copy = testdata("third_party/" + rel);
  if (std::filesystem::exists(copy)) return copy;
  const std::filesystem::path r(rel);
  if (r.begin() != r.end() && *r.begin() == "slides") {
    const std::filesystem::path slide = testdata("slides/" + r.filename().string());
    if (std::filesystem::exists(slide)) return slide;
  }
  return std::filesystem::path(WSI_SHARED_TESTDATA_DIR) / rel;
}

// A fresh directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("wsi-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Zeroes the compressed bytes of `count` level-0 tiles of a tiled TIFF, in a row starting with
// the tile that holds level-0 pixel (x, y): their JPEG data no longer starts with a JPEG marker,
// so decoding them fails while the rest of the file stays valid (a region that fails mid-slide).
inline void corrupt_tiles(const std::filesystem::path& tif, uint32_t x, uint32_t y, uint32_t count) {
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  {
    TIFF* t = TIFFOpen(tif.c_str(), "r");
    if (!t) throw std::runtime_error("corrupt_tiles: cannot open " + tif.string());
    const uint64_t* offsets = nullptr;
    const uint64_t* sizes = nullptr;
    uint32_t width = 0, tw = 0, tl = 0;
    const bool ok = TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets) && TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &sizes) &&
                    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) && TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw) &&
                    TIFFGetField(t, TIFFTAG_TILELENGTH, &tl);
    if (!ok) {
      TIFFClose(t);
      throw std::runtime_error("corrupt_tiles: " + tif.string() + " is not a tiled TIFF");
    }
    const uint32_t across = (width + tw - 1) / tw;
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t tile = (y / tl) * across + x / tw + k;
      spans.push_back({offsets[tile], sizes[tile]});
    }
    TIFFClose(t);
  }
  std::fstream f(tif, std::ios::in | std::ios::out | std::ios::binary);
  for (const auto& [off, n] : spans) {
    f.seekp(static_cast<std::streamoff>(off));
    const std::string zeros(static_cast<size_t>(n), '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  if (!f) throw std::runtime_error("corrupt_tiles: cannot write " + tif.string());
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CliResult {
  int code = -1;
  bool signalled = false;
  std::string out, err;
};

// Runs the wsi-heatmap executable with `args` (each shell-quoted); `prefix` is prepended to the
// command line verbatim (e.g. "ulimit -f 64; trap '' XFSZ; exec").
inline CliResult run_wsi(const std::vector<std::string>& args, const std::string& prefix = "") {
  ScratchDir dir;
  std::string cmd = prefix;
  if (!cmd.empty()) cmd.append(" ");
  cmd.append(shell_quote(WSI_CLI_PATH));
  // Appended piecewise: GCC 12's -Wrestrict misfires on `" " + std::string&&` (GCC PR105329).
  for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
  cmd.append(" >").append(shell_quote((dir / "out").string())).append(" 2>").append(shell_quote((dir / "err").string()));
  cmd.append(" </dev/null");
  std::string full = "bash -c ";
  full.append(shell_quote(cmd));
  const int status = std::system(full.c_str());
  CliResult r;
  r.signalled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  return r;
}

// Generated fixtures shared by the tests of one build (deterministic, so concurrent test
// processes that both generate one write identical bytes; writers rename atomically).
inline std::filesystem::path fixture_dir() {
  std::filesystem::path p(WSI_FIXTURE_DIR);
  std::filesystem::create_directories(p);
  return p;
}

// Temporary files (.<name>.partial-*) left anywhere under `dir`.
inline std::vector<std::filesystem::path> partial_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> v;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".partial-") != std::string::npos) v.push_back(e.path());
  return v;
}

// TorchScript test models made by tests/make_test_models.py with Debian's python3-torch, once
// per build (deterministic output; concurrent test processes race harmlessly on the rename).
// Null when /usr/bin/python3 with torch and numpy is missing.
inline const std::filesystem::path* models_dir() {
  static const std::filesystem::path* dir = []() -> const std::filesystem::path* {
    if (std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) return nullptr;
    static std::filesystem::path d = fixture_dir() / "models";
    // Remade whenever make_test_models.py changes (a stamp of its text), not only when missing.
    const std::string script = std::string(WSI_SOURCE_DIR) + "/tests/make_test_models.py";
    const std::string stamp = std::to_string(std::hash<std::string>{}(slurp(script)));
    if (!std::filesystem::exists(d / "darkness.pt") || slurp(d / "script.stamp") != stamp) {
      const std::filesystem::path tmp = fixture_dir() / ("models.tmp-" + std::to_string(::getpid()));
      std::filesystem::create_directories(tmp);
      std::string cmd = "/usr/bin/python3 ";
      cmd.append(shell_quote(std::string(WSI_SOURCE_DIR) + "/tests/make_test_models.py"))
          .append(" ")
          .append(shell_quote(tmp.string()));
      if (std::system(cmd.c_str()) != 0) return nullptr;
      std::ofstream(tmp / "script.stamp") << stamp;
      std::error_code ec;
      std::filesystem::remove_all(d, ec);  // an older set (from before a model was added)
      std::filesystem::rename(tmp, d, ec);
      std::filesystem::remove_all(tmp, ec);
    }
    return &d;
  }();
  return dir;
}

}  // namespace wsi::test

// Skips (fails in CI) a test that needs the Python-made test models when they cannot be made.
#define REQUIRE_MODELS()                                                                                      \
  if (!::wsi::test::models_dir())                                                                             \
    WSI_SKIP_MISSING() << "/usr/bin/python3 with torch and numpy is needed to make the test models (Debian: " \
                          "python3-torch)";
