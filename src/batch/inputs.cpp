// Batch inputs: slides from files, directories and list files; safe unique names; shards; --list.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <string>
#include <system_error>

#include "core/text.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"
#include "wsi/random.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

bool has_extension(const fs::path& p, const std::vector<std::string>& exts) {
  const std::string e = detail::ascii_lower(p.extension().string());
  return std::find(exts.begin(), exts.end(), e) != exts.end();
}

const std::vector<std::string> kListExtensions = {".txt", ".list", ".lst"};

// Whether `p` is `dir` or inside it (both canonical, or `dir` empty = nothing excluded).
bool under(const fs::path& p, const fs::path& dir) {
  if (dir.empty()) return false;
  auto a = p.begin();
  for (auto b = dir.begin(); b != dir.end(); ++b, ++a)
    if (a == p.end() || *a != *b) return false;
  return true;
}

struct Collector {
  fs::path exclude;
  std::set<fs::path> slides;        // canonical
  std::set<fs::path> seen_dirs;     // canonical: each real directory walked once (link loops end)
  std::set<fs::path> seen_lists;    // a list that names itself (or a cycle of lists) is read once

  void add(const fs::path& input, int depth) {
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st))
      throw UsageError(input.string() + ": no such slide, directory or list file");
    const fs::path real = fs::weakly_canonical(input, ec);
    if (under(real, exclude)) return;
    if (fs::is_directory(st)) {
      walk(real);
    } else if (has_extension(input, slide_extensions())) {
      slides.insert(real);
    } else if (has_extension(input, kListExtensions)) {
      read_list(input, real, depth);
    } else {
      throw UsageError(input.string() + ": not a slide (" + input.extension().string() +
                       " is not a known slide extension), a directory, or a list file (.txt/.list/.lst)");
    }
  }

  void walk(const fs::path& dir) {
    if (!seen_dirs.insert(dir).second) return;
    std::error_code ec;
    auto it = fs::recursive_directory_iterator(
        dir, fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied, ec);
    if (ec) throw UsageError(dir.string() + ": cannot list the directory: " + ec.message());
    for (auto end = fs::recursive_directory_iterator(); it != end; it.increment(ec)) {
      if (ec) {  // an unreadable entry: skip it, keep walking
        ec.clear();
        continue;
      }
      const fs::path p = it->path();
      std::error_code e2;
      if (it->is_directory(e2)) {
        const fs::path real = fs::canonical(p, e2);
        // A directory seen before (a link loop, or two links to one place), or the output
        // directory: do not descend.
        if (e2 || under(real, exclude) || !seen_dirs.insert(real).second) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file(e2) || !has_extension(p, slide_extensions())) continue;
      const fs::path real = fs::canonical(p, e2);
      if (!e2 && !under(real, exclude)) slides.insert(real);
    }
  }

  void read_list(const fs::path& list, const fs::path& real, int depth) {
    if (depth > 16 || !seen_lists.insert(real).second) return;
    std::ifstream in(list);
    if (!in) throw UsageError(list.string() + ": cannot read the list file");
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') continue;
      const auto last = line.find_last_not_of(" \t");
      fs::path entry = line.substr(first, last - first + 1);
      if (entry.is_relative()) entry = list.parent_path() / entry;
      try {
        add(entry, depth + 1);
      } catch (const UsageError& e) {
        throw UsageError(list.string() + ":" + std::to_string(number) + ": " + e.what());
      }
    }
  }
};

}  // namespace

const std::vector<std::string>& slide_extensions() {
  static const std::vector<std::string> v = {".svs", ".tif", ".tiff", ".ndpi", ".vms",
                                             ".vmu", ".scn", ".mrxs", ".bif", ".svslide"};
  return v;
}

std::vector<fs::path> collect_slides(const std::vector<fs::path>& inputs, const fs::path& exclude) {
  Collector c;
  std::error_code ec;
  if (!exclude.empty()) c.exclude = fs::weakly_canonical(exclude, ec);
  for (const fs::path& in : inputs) c.add(in, 0);
  return {c.slides.begin(), c.slides.end()};
}

std::vector<std::string> unique_safe_names(const std::vector<fs::path>& slides) {
  std::vector<std::string> names;
  std::set<std::string> taken = {"logs", "dataset"};  // DIR/logs/ and DIR/dataset/ are the batch's own
  for (const fs::path& p : slides) {
    std::string n = p.stem().string();
    for (char& c : n) {
      const auto u = static_cast<unsigned char>(c);
      const bool ok = std::isalnum(u) || c == '.' || c == '_' || c == '-' || u >= 0x80;
      if (!ok) c = '_';
    }
    if (!n.empty() && n[0] == '.') n[0] = '_';
    if (n.empty()) n = "slide";
    std::string unique = n;
    for (int k = 2; taken.count(detail::ascii_lower(unique)); ++k) unique = n + "-" + std::to_string(k);
    taken.insert(detail::ascii_lower(unique));  // case-insensitive: names must not collide on such file systems
    names.push_back(unique);
  }
  return names;
}

ShardSpec ShardSpec::parse(const std::string& text) {
  ShardSpec s;
  const auto slash = text.find('/');
  const auto bad = [&]() {
    return UsageError("--shard " + text + ": give I/N with 1 <= I <= N (e.g. 3/8 for the third of eight shards)");
  };
  if (slash == std::string::npos) throw bad();
  try {
    size_t a = 0, b = 0;
    s.index = std::stoi(text.substr(0, slash), &a);
    s.count = std::stoi(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (s.count < 1 || s.index < 1 || s.index > s.count) throw bad();
  return s;
}

bool ShardSpec::contains(const std::string& name) const {
  return count <= 1 || static_cast<int>(fnv1a(name) % static_cast<uint64_t>(count)) + 1 == index;
}

std::string ShardSpec::suffix() const {
  return whole() ? "" : ".shard-" + std::to_string(index) + "-of-" + std::to_string(count);
}

BatchSelection select_slides(const std::vector<fs::path>& inputs, const fs::path& out, const ShardSpec& shard) {
  BatchSelection s;
  s.slides = collect_slides(inputs, out);
  s.names = unique_safe_names(s.slides);
  for (size_t i = 0; i < s.slides.size(); ++i)
    if (shard.contains(s.names[i])) s.mine.push_back(i);
  return s;
}

std::string escape_for_list(const std::string& path) {
  std::string out;
  for (const char ch : path) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace wsi
