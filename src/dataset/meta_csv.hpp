// The per-patch metadata CSV shared by the pcam and kaggle writers (columns in wsi/dataset.hpp).
// Private to src/dataset/.
#pragma once

#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/pending_file.hpp"
#include "core/text.hpp"  // parse_csv_row
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {

inline constexpr std::string_view kMetaColumns =
    "coord_y,coord_x,tumor_patch,center_tumor_patch,wsi,label,tumour_fraction,copy,augment,level,"
    "patch_size_level0";

// RFC 4180: quote a field that holds a comma, a quote or a line break; double inner quotes.
inline std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// Python/pandas spelling, so `pd.read_csv` gives a bool column like PCam's own meta files.
inline const char* csv_bool(bool b) { return b ? "True" : "False"; }

// Six significant digits, like "%g": enough for a pixel fraction, short and locale-independent.
inline std::string csv_double(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  return ec == std::errc() ? std::string(buf, end) : std::string("nan");
}

// The meta columns of one patch, without a line end.
inline std::string meta_row(const PatchRecord& p) {
  std::string s;
  s += std::to_string(p.y) + ',' + std::to_string(p.x) + ',' + csv_bool(p.tumor_patch) + ',' +
       csv_bool(p.center_tumor_patch) + ',' + csv_field(p.wsi) + ',' + std::to_string(int{p.label}) + ',' +
       csv_double(p.tumour_fraction) + ',' + std::to_string(p.copy) + ',' + csv_field(p.augment) + ',' +
       std::to_string(p.level) + ',' + std::to_string(p.size_level0);
  return s;
}

// A CSV streamed to a temporary file and renamed into place by commit(); the temporary goes away
// when the object dies uncommitted. Rows are checked as they go so a full disk shows up early.
class PendingCsv {
 public:
  explicit PendingCsv(std::filesystem::path final_path) : file_(std::move(final_path)) {
    out_.open(file_.tmp(), std::ios::binary | std::ios::trunc);
    if (!out_) throw WriteError(file_.final_path(), "cannot create the file (is the directory writable?)");
  }
  void write_line(const std::string& line) {
    out_ << line << '\n';
    if (!out_) throw WriteError(file_.final_path(), "writing failed (is the disk full?)");
  }
  // Flushes and closes; the rename happens in commit() so callers can rename several files last.
  void close() {
    out_.flush();
    if (!out_) throw WriteError(file_.final_path(), "writing failed (is the disk full?)");
    out_.close();
    if (out_.fail()) throw WriteError(file_.final_path(), "closing failed (is the disk full?)");
  }
  void commit() { file_.commit(); }
  const std::filesystem::path& final_path() const { return file_.final_path(); }

 private:
  PendingFile file_;
  std::ofstream out_;
};

}  // namespace wsi::detail

namespace wsi::detail {

// `split` and `prefix` become parts of file names: keep them to one path component.
inline void check_name_part(const std::string& what, const std::string& value, bool allow_empty) {
  if ((!allow_empty && value.empty()) || value.find('/') != std::string::npos || value == "." || value == "..")
    throw UsageError("dataset " + what + " '" + value +
                     "' cannot be part of a file name: use letters, digits, '-' or '_'");
}

}  // namespace wsi::detail
