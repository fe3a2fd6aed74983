// --mpp-csv: level-0 resolutions for slides whose files lack them.
#include <fstream>

#include "core/text.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

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
    if (!(v > 0 && v < 100))
      throw UsageError(where + "mpp '" + f[mpp_col] + "' is not a number of um per pixel (0..100)");
    if (!m.emplace(f[slide_col], f[mpp_col]).second) throw UsageError(where + f[slide_col] + " is listed twice");
  }
  return m;
}

const std::string* mpp_for_slide(const std::map<std::string, std::string>& mpp_of, const fs::path& slide) {
  for (const std::string& key : {slide.string(), slide.filename().string(), slide.stem().string()})
    if (const auto it = mpp_of.find(key); it != mpp_of.end()) return &it->second;
  return nullptr;
}

}  // namespace wsi
