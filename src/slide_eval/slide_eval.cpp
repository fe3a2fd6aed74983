// Result CSVs of the heatmap pipeline, their pairing with ground truth, and patch-level scores
// (see slide_eval.hpp for the file contract).
#include "wsi/slide_eval.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "core/text.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

// Non-blank lines with their 1-based numbers; a UTF-8 byte-order mark is dropped.
std::vector<std::pair<int64_t, std::string>> lines_of(const std::string& text) {
  std::vector<std::pair<int64_t, std::string>> out;
  size_t start = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  int64_t number = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    ++number;
    if (!trim(line).empty()) out.emplace_back(number, std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

[[noreturn]] void bad_row(const std::string& source, int64_t line, const std::string& what) {
  throw ConfigError(source + ":" + std::to_string(line) + ": " + what);
}

// Maps header names to column indices for the wanted columns; `aliases[k]` lists the accepted
// names of wanted column k.
std::vector<size_t> map_header(const std::vector<std::string>& fields, const std::vector<std::vector<std::string>>& aliases,
                               const std::string& expected, const std::string& source, int64_t line) {
  std::vector<size_t> index(aliases.size(), std::string::npos);
  for (size_t f = 0; f < fields.size(); ++f) {
    const std::string name = detail::ascii_lower(fields[f]);
    for (size_t k = 0; k < aliases.size(); ++k)
      if (std::find(aliases[k].begin(), aliases[k].end(), name) != aliases[k].end()) {
        if (index[k] != std::string::npos)
          bad_row(source, line, "column '" + aliases[k][0] + "' appears twice in the header (expected " + expected + ")");
        index[k] = f;
      }
  }
  for (size_t k = 0; k < aliases.size(); ++k)
    if (index[k] == std::string::npos)
      bad_row(source, line, "the header has no column '" + aliases[k][0] + "' (expected " + expected + ")");
  return index;
}

double field_number(const std::vector<std::string>& fields, size_t index, const std::string& column,
                    const std::string& source, int64_t line) {
  double v = 0;
  if (!parse_number(fields[index], v))
    bad_row(source, line,
            fields[index].empty() ? "the " + column + " field is empty"
                                  : "'" + fields[index] + "' in column " + column + " is not a finite number");
  return v;
}

void check_probability(double p, const std::string& source, int64_t line) {
  if (!(p >= 0 && p <= 1)) {
    std::ostringstream s;
    s << "probability " << p << " is outside 0..1";
    bad_row(source, line, s.str());
  }
}

std::string read_file(const fs::path& path) {
  if (!fs::exists(path)) throw UsageError(path.string() + ": no such file");
  if (fs::is_directory(path)) throw UsageError(path.string() + ": is a directory, not a CSV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path.string() + ": cannot be opened for reading (check its permissions)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<PatchPrediction> parse_patch_csv(const std::string& text, const std::string& source) {
  const std::string expected = "x,y,width,height,probability";
  const auto lines = lines_of(text);
  if (lines.empty()) throw ConfigError(source + ": empty file; the first line must be the header " + expected);
  const auto header = split_fields(lines[0].second);
  double dummy = 0;
  if (parse_number(header[0], dummy))
    bad_row(source, lines[0].first, "no header line; the first line must name the columns " + expected);
  const auto col = map_header(header, {{"x"}, {"y"}, {"width"}, {"height"}, {"probability", "prob"}}, expected, source,
                              lines[0].first);
  const char* names[] = {"x", "y", "width", "height", "probability"};
  std::vector<PatchPrediction> out;
  out.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto& [line, row] = lines[i];
    const auto fields = split_fields(row);
    if (fields.size() != header.size())
      bad_row(source, line,
              "expected " + std::to_string(header.size()) + " fields as in the header, found " + std::to_string(fields.size()));
    double v[5];
    for (size_t k = 0; k < 5; ++k) v[k] = field_number(fields, col[k], names[k], source, line);
    if (!(v[2] > 0) || !(v[3] > 0)) {
      std::ostringstream s;
      s << "the patch extent must be positive (width " << v[2] << ", height " << v[3] << ")";
      bad_row(source, line, s.str());
    }
    check_probability(v[4], source, line);
    out.push_back({v[0], v[1], v[2], v[3], v[4], line});
  }
  return out;
}

std::vector<Detection> parse_detection_csv(const std::string& text, const std::string& source) {
  const std::string expected = "prob,x,y";
  const auto lines = lines_of(text);
  std::vector<Detection> out;
  if (lines.empty()) return out;
  std::vector<size_t> col = {0, 1, 2};
  size_t fields_per_row = 3, first = 0;
  const auto head = split_fields(lines[0].second);
  double dummy = 0;
  // A header has no number in it; a first row with a bad number is a data row and says so.
  if (std::none_of(head.begin(), head.end(), [&](const std::string& f) { return parse_number(f, dummy); })) {
    col = map_header(head, {{"prob", "probability", "confidence", "score"}, {"x"}, {"y"}}, expected, source,
                     lines[0].first);
    fields_per_row = head.size();
    first = 1;
  }
  const char* names[] = {"prob", "x", "y"};
  out.reserve(lines.size() - first);
  for (size_t i = first; i < lines.size(); ++i) {
    const auto& [line, row] = lines[i];
    const auto fields = split_fields(row);
    if (fields.size() != fields_per_row)
      bad_row(source, line,
              "expected " + std::to_string(fields_per_row) + " fields (" +
                  (first ? std::string("as in the header") : expected) + "), found " + std::to_string(fields.size()));
    double v[3];
    for (size_t k = 0; k < 3; ++k) v[k] = field_number(fields, col[k], names[k], source, line);
    check_probability(v[0], source, line);
    out.push_back({v[0], v[1], v[2]});
  }
  return out;
}

std::vector<PatchPrediction> read_patch_csv(const fs::path& path) {
  return parse_patch_csv(read_file(path), path.string());
}

std::vector<Detection> read_detection_csv(const fs::path& path) {
  return parse_detection_csv(read_file(path), path.string());
}

std::vector<SlideResultFiles> pair_slide_results(const std::vector<fs::path>& files) {
  std::map<std::string, SlideResultFiles> by_name;
  for (const fs::path& f : files) {
    const std::string n = f.filename().string();
    if (n.empty() || n[0] == '.') continue;  // hidden, including our own .partial- files
    for (const char* suffix : {".patches.csv", ".froc.csv"}) {
      if (!ends_with(n, suffix) || n.size() == std::char_traits<char>::length(suffix)) continue;
      const std::string name = n.substr(0, n.size() - std::char_traits<char>::length(suffix));
      SlideResultFiles& r = by_name[name];
      r.name = name;
      (suffix[1] == 'p' ? r.patches : r.detections) = f;
    }
  }
  std::vector<SlideResultFiles> out;
  for (auto& [name, r] : by_name) out.push_back(std::move(r));
  const auto with_patches = std::count_if(out.begin(), out.end(), [](const auto& r) { return r.patches.has_value(); });
  const auto with_froc = std::count_if(out.begin(), out.end(), [](const auto& r) { return r.detections.has_value(); });
  for (const bool patches_missing : {true, false}) {
    const auto have = patches_missing ? with_patches : with_froc;
    if (have == 0 || have == static_cast<std::ptrdiff_t>(out.size())) continue;
    std::vector<std::string> lacking;
    for (const auto& r : out)
      if (!(patches_missing ? r.patches : r.detections))
        lacking.push_back((patches_missing ? *r.detections : *r.patches).string());
    std::ostringstream m;
    m << "results incomplete: " << lacking.size() << " slide(s) have no " << (patches_missing ? "NAME.patches.csv" : "NAME.froc.csv")
      << " beside their " << (patches_missing ? "NAME.froc.csv" : "NAME.patches.csv") << " (";
    for (size_t i = 0; i < lacking.size() && i < 5; ++i) m << (i ? ", " : "") << lacking[i];
    if (lacking.size() > 5) m << ", ...";
    m << ") while " << have << " other(s) have one; every slide needs the same result files (re-run those slides, "
      << "or move the incomplete ones out of the directory)";
    throw ConfigError(m.str());
  }
  return out;
}

std::vector<SlideResultFiles> find_slide_results(const fs::path& dir) {
  if (!fs::exists(dir)) throw UsageError(dir.string() + ": no such directory");
  if (!fs::is_directory(dir))
    throw UsageError(dir.string() + ": is not a directory; --results takes the directory holding NAME.patches.csv and NAME.froc.csv");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  auto out = pair_slide_results(files);
  if (out.empty())
    throw ConfigError(dir.string() + ": no NAME.patches.csv or NAME.froc.csv files here; point --results at the "
                      "heatmap pipeline's output directory");
  return out;
}

std::optional<TruthKind> truth_kind(const fs::path& path) {
  const std::string ext = detail::ascii_lower(path.extension().string());
  if (ext == ".tif" || ext == ".tiff") return TruthKind::mask;
  if (ext == ".xml" || ext == ".json" || ext == ".geojson") return TruthKind::annotations;
  return std::nullopt;
}

std::string truth_key(const fs::path& path) {
  std::string s = detail::ascii_lower(path.stem().string());
  for (const char* suffix : {"_mask", "-mask", ".mask"})
    if (ends_with(s, suffix) && s.size() > 5) return s.substr(0, s.size() - 5);
  return s;
}

TruthMatch match_truth(const std::vector<std::string>& names, const std::vector<fs::path>& candidates) {
  // Preference: 0 = a mask named as one, 1 = annotations, 2 = a plain TIFF (maybe the slide).
  struct Cand {
    fs::path path;
    TruthKind kind;
    int preference;
    bool used = false;
  };
  std::vector<Cand> cands;
  for (const fs::path& p : candidates) {
    const auto kind = truth_kind(p);
    if (!kind) continue;
    const fs::path norm = p.lexically_normal();
    if (std::any_of(cands.begin(), cands.end(), [&](const Cand& c) { return c.path == norm; })) continue;
    const bool named_mask = detail::ascii_lower(p.stem().string()) != truth_key(p);
    cands.push_back({norm, *kind, *kind == TruthKind::annotations ? 1 : named_mask ? 0 : 2});
  }
  TruthMatch m;
  m.truth.resize(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string key = detail::ascii_lower(names[i]);
    std::vector<Cand*> hits;
    for (Cand& c : cands)
      if (truth_key(c.path) == key) hits.push_back(&c);
    if (hits.empty()) {
      m.unmatched_names.push_back(names[i]);
      continue;
    }
    std::stable_sort(hits.begin(), hits.end(), [](const Cand* a, const Cand* b) { return a->preference < b->preference; });
    if (hits.size() > 1 && hits[0]->preference == hits[1]->preference)
      throw ConfigError("two ground-truth files match the slide " + names[i] + ": " + hits[0]->path.string() + " and " +
                        hits[1]->path.string() + "; pass only one of them with --truth");
    for (Cand* h : hits) h->used = true;
    m.truth[i] = TruthMatch::Entry{hits[0]->path, hits[0]->kind};
    if (hits.size() > 1) {
      std::string others;
      for (size_t k = 1; k < hits.size(); ++k) others += (k > 1 ? ", " : "") + hits[k]->path.string();
      m.notes.push_back(names[i] + ": ground truth from " + hits[0]->path.string() + " (also matched, not used: " +
                        others + ")");
    }
  }
  for (const Cand& c : cands)
    if (!c.used) m.unused.push_back(c.path);
  return m;
}

std::optional<double> dice(const ConfusionMatrix& cm) {
  const int64_t denominator = 2 * cm.tp + cm.fp + cm.fn;
  if (denominator == 0) return std::nullopt;
  return 2.0 * static_cast<double>(cm.tp) / static_cast<double>(denominator);
}

PatchScores score_patches(const std::vector<double>& probability, const std::vector<int>& label, double threshold) {
  if (probability.size() != label.size())
    throw ConfigError("score_patches: " + std::to_string(probability.size()) + " probabilities but " +
                      std::to_string(label.size()) + " labels");
  PatchScores s;
  s.patches = static_cast<int64_t>(label.size());
  s.tumour = std::count(label.begin(), label.end(), 1);
  s.confusion = confusion_matrix(probability, label, threshold);
  if (s.tumour > 0 && s.tumour < s.patches) s.auc = roc_auc(probability, label);
  s.dice = dice(s.confusion);
  return s;
}

}  // namespace wsi
