// Outputs are written under a temporary name beside the final one and renamed into place only
// when complete, so a crash, a full disk or Ctrl-C never leaves a partial file under a final name.
// Temporary names look like `.<name>.partial-<pid>-<n>` (ignored by .gitignore and by readers).
#pragma once

#include <filesystem>
#include <string>

namespace wsi::detail {

// A unique temporary name beside `final_path` (same directory, so rename is atomic).
std::filesystem::path temporary_name(const std::filesystem::path& final_path);

// Owns a temporary file: removed on destruction unless commit() renamed it into place.
// Throws WriteError (naming the final path) when the directory is missing or rename fails.
class PendingFile {
 public:
  explicit PendingFile(std::filesystem::path final_path);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  const std::filesystem::path& tmp() const { return tmp_; }
  const std::filesystem::path& final_path() const { return final_; }
  bool committed() const { return committed_; }
  void commit();

 private:
  std::filesystem::path final_, tmp_;
  bool committed_ = false;
};

// Writes `text` to `path` through a PendingFile. Throws WriteError.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace wsi::detail
