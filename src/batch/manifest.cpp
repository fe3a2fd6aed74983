// The batch manifest (JSON + CSV) and the checks that decide whether a slide is really done.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "wsi/batch.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

SlideStatus parse_status(const std::string& s, const fs::path& file) {
  if (s == "done") return SlideStatus::done;
  if (s == "failed") return SlideStatus::failed;
  if (s == "skipped") return SlideStatus::skipped;
  throw ConfigError(file.string() + ": unknown slide status \"" + s + "\"");
}

// RFC 4180 quoting for the CSV.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + '"';
}

bool is_temporary(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.' && n.find(".partial-") != std::string::npos;
}

}  // namespace

const char* to_string(SlideStatus s) {
  switch (s) {
    case SlideStatus::done:
      return "done";
    case SlideStatus::failed:
      return "failed";
    case SlideStatus::skipped:
      return "skipped";
  }
  return "failed";
}

const ManifestEntry* Manifest::find(const std::string& name) const {
  for (const ManifestEntry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

ManifestEntry& Manifest::upsert(const ManifestEntry& e) {
  for (ManifestEntry& x : entries)
    if (x.name == e.name) return x = e;
  entries.push_back(e);
  return entries.back();
}

Manifest read_manifest(const fs::path& json_path) {
  Manifest m;
  if (!fs::exists(json_path)) return m;
  std::ifstream in(json_path);
  const auto broken = [&](const std::string& why) {
    return ConfigError(json_path.string() + " is not a wsi-heatmap batch manifest (" + why +
                       "); manifests are only ever replaced whole, so move this file away and rerun");
  };
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number such as 1e999
    throw broken(detail::json_error_text(e));
  }
  if (!j.is_object() || j.value("format", "") != "wsi-heatmap-batch/1" || !j.contains("slides") ||
      !j["slides"].is_array())
    throw broken("no \"format\": \"wsi-heatmap-batch/1\" with a \"slides\" array");
  try {
    for (const json& s : j["slides"]) {
      ManifestEntry e;
      e.name = s.at("name").get<std::string>();
      e.slide = s.at("slide").get<std::string>();
      e.status = parse_status(s.at("status").get<std::string>(), json_path);
      e.reason = s.value("reason", "");
      e.seconds = s.value("seconds", 0.0);
      e.attempts = s.value("attempts", 0);
      e.finished = s.value("finished", "");
      e.settings = s.value("settings", "");
      for (const json& o : s.value("outputs", json::array()))
        e.outputs.push_back({o.at("file").get<std::string>(), o.at("size").get<int64_t>(), o.at("sha1").get<std::string>()});
      m.entries.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    throw broken(detail::json_error_text(e));
  }
  return m;
}

void write_manifest(const Manifest& m, const fs::path& json_path, const fs::path& csv_path) {
  json slides = json::array();
  std::ostringstream csv;
  csv << "name,slide,status,reason,seconds,attempts,finished,outputs\n";
  for (const ManifestEntry& e : m.entries) {
    json outs = json::array();
    std::string files;
    for (const OutputFile& o : e.outputs) {
      outs.push_back({{"file", o.file}, {"size", o.size}, {"sha1", o.sha1}});
      files += (files.empty() ? "" : ";") + o.file;
    }
    slides.push_back({{"name", e.name},
                      {"slide", e.slide},
                      {"status", to_string(e.status)},
                      {"reason", e.reason},
                      {"seconds", e.seconds},
                      {"attempts", e.attempts},
                      {"finished", e.finished},
                      {"settings", e.settings},
                      {"outputs", outs}});
    std::ostringstream secs;
    secs.precision(3);
    secs << std::fixed << e.seconds;
    csv << csv_field(e.name) << ',' << csv_field(e.slide) << ',' << to_string(e.status) << ',' << csv_field(e.reason)
        << ',' << secs.str() << ',' << e.attempts << ',' << e.finished << ',' << csv_field(files) << '\n';
  }
  const json j = {{"format", "wsi-heatmap-batch/1"}, {"slides", slides}};
  detail::write_text_file(json_path, detail::json_text(j, 2) + "\n");
  detail::write_text_file(csv_path, csv.str());
}

std::vector<OutputFile> describe_outputs(const fs::path& dir, const fs::path& base) {
  std::vector<OutputFile> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file() || is_temporary(it->path())) continue;
    OutputFile o;
    o.file = fs::relative(it->path(), base).generic_string();
    o.size = static_cast<int64_t>(it->file_size());
    o.sha1 = sha1_file(it->path());
    out.push_back(std::move(o));
  }
  if (ec) throw Error(dir.string() + ": cannot list the outputs: " + ec.message());
  std::sort(out.begin(), out.end(), [](const OutputFile& a, const OutputFile& b) { return a.file < b.file; });
  return out;
}

bool outputs_intact(const std::vector<OutputFile>& outputs, const fs::path& base, std::string* why) {
  const auto fail = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (outputs.empty()) return fail("no outputs recorded");
  for (const OutputFile& o : outputs) {
    const fs::path p = base / o.file;
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) return fail(o.file + " is missing");
    if (static_cast<int64_t>(size) != o.size) return fail(o.file + " changed size");
    if (sha1_file(p) != o.sha1) return fail(o.file + " changed content");
  }
  return true;
}

}  // namespace wsi
