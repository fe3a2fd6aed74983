// Shared helpers for the test suites: fixture paths and scratch directories.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

namespace wsi::test {

inline std::filesystem::path testdata(const std::string& rel) { return std::filesystem::path(WSI_TESTDATA_DIR) / rel; }

// ../shared/testdata-real beside the project; tests that need it skip when it is absent.
inline std::filesystem::path shared_testdata(const std::string& rel) {
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

}  // namespace wsi::test
