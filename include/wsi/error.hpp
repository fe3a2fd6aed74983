// wsi/error.hpp — the one exception family of wsi-heatmap.
//
// Whoever detects an error builds the message once, with the file and (where there is one) the
// region, plus what the user can do about it. Callers that only propagate add nothing. The CLI
// prints `what()` on one line and maps the type to an exit code:
//   UsageError  -> 2  (the command line names something that cannot be used: no such path, a
//                      directory where a file is wanted, a bad option value)
//   Error (rest)-> 1  (the input is bad or a read/write failed)
//
// Coordinates in RegionReadError are those of wsi::Region (see region.hpp): x, y in level-0
// pixels, w, h in pixels of `level`.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "wsi/region.hpp"

namespace wsi {

// Base of everything wsi-heatmap throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The command line or a configuration value is unusable. Exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A parameter set or config file is invalid (bad value, unknown key, missing mpp, ...).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A slide could not be opened or is not a slide. Names the file.
class SlideError : public Error {
 public:
  SlideError(std::filesystem::path path, const std::string& what);
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// Reading pixels of an opened slide failed. Names the file and the region.
class RegionReadError : public SlideError {
 public:
  RegionReadError(std::filesystem::path path, const Region& region, const std::string& what);
  const Region& region() const noexcept { return region_; }

 private:
  Region region_;
};

// Writing an output failed (disk full, permission, ...). Names the file.
class WriteError : public Error {
 public:
  WriteError(std::filesystem::path path, const std::string& what);
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// A model cannot be loaded or run (bad TorchScript, output shape contradicting its sidecar, a
// forward pass that fails). Names the model file.
class ModelError : public Error {
 public:
  ModelError(std::filesystem::path path, const std::string& what);
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace wsi
