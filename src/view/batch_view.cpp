// The viewers of a batch and its index.html (contract in wsi/view.hpp).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "view/assets.hpp"
#include "view/view_internal.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"
#include "wsi/view.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Every slide of the batch: manifest.json, else the shards' manifests together.
Manifest batch_manifest(const fs::path& dir) {
  if (fs::is_regular_file(dir / "manifest.json")) return read_manifest(dir / "manifest.json");
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("manifest.shard-", 0) == 0 && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  Manifest all;
  for (const fs::path& f : files)
    for (const ManifestEntry& e : read_manifest(f).entries) all.upsert(e);
  return all;
}

// Whether evaluate-slides wrote into `dir` (its evaluation.json or a curve).
bool has_evaluation(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "evaluation.json", ec)) return true;
  for (const auto& f : fs::directory_iterator(dir, ec))
    if (f.path().extension() == ".svg" && f.path().filename().string().find("roc") != std::string::npos) return true;
  return false;
}

// A viewer is up to date when it was written after the summary it shows.
bool viewer_current(const fs::path& viewer, const fs::path& summary) {
  std::error_code ec;
  const auto v = fs::last_write_time(viewer / "data.js", ec);
  if (ec) return false;
  const auto s = fs::last_write_time(summary, ec);
  return !ec && v >= s;
}

// The inline data of index.html: '<' escaped, so no text in it can close the <script>.
std::string script_json(const json& j) {
  std::string out;
  for (const char c : detail::json_text(j)) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

void replace_once(std::string& text, const std::string& marker, const std::string& with) {
  const size_t at = text.find(marker);
  if (at == std::string::npos) throw Error("the index template lacks " + marker);
  text.replace(at, marker.size(), with);
}

}  // namespace

BatchViewResult write_batch_view(const fs::path& batch_dir, const fs::path& out_dir, const ViewParams& params,
                                 const ViewProgressFn& progress) {
  std::error_code ec;
  if (!fs::is_directory(batch_dir, ec))
    throw UsageError(batch_dir.string() + ": no such directory; give the folder wsi-heatmap batch -o wrote");
  if (!is_batch_dir(batch_dir))
    throw UsageError(batch_dir.string() + ": no manifest.json here; give the folder wsi-heatmap batch -o wrote");
  const Manifest manifest = batch_manifest(batch_dir);
  const fs::path home = out_dir.empty() ? batch_dir : out_dir;
  if (!out_dir.empty()) {
    if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
      throw UsageError(out_dir.string() + ": is a file; give -o a folder for the index and the viewers");
    fs::create_directories(out_dir, ec);
    if (ec) throw UsageError(out_dir.string() + ": cannot create the folder: " + ec.message());
  }
  if (fs::is_directory(home / "index.html", ec))
    throw UsageError((home / "index.html").string() + " is a folder (a slide named index.html?); give -o another folder " +
                     "for the index");
  const fs::path index = home / "index.html";
  BatchViewResult result;
  result.index = index;
  // The evaluation of the whole batch, when evaluate-slides wrote one (default: into the batch folder).
  const fs::path eval_dir = params.evaluation.empty() ? batch_dir : params.evaluation;

  json slides = json::array();
  int k = 0;
  for (const ManifestEntry& e : manifest.entries) {
    ++k;
    ++result.slides;
    json s = {{"name", e.name}, {"slide", e.slide}, {"status", to_string(e.status)}, {"reason", e.reason},
              {"seconds", e.seconds}, {"finished", e.finished}};
    if (e.status != SlideStatus::done) {
      ++result.failed;
      result.failed_slides.emplace_back(e.name, std::string(to_string(e.status)) + ": " + e.reason);
      slides.push_back(s);
      continue;
    }
    ++result.done;
    const fs::path results = batch_dir / e.name;
    const fs::path summary = results / (e.name + ".summary.json");
    if (fs::is_regular_file(summary, ec)) {
      try {
        const json j = detail::read_json_file(summary, "a heatmap summary");
        if (j.contains("slide_score") && j["slide_score"].is_number()) s["score"] = j["slide_score"];
        if (j.contains("tumour_area_mm2") && j["tumour_area_mm2"].is_number()) s["area"] = j["tumour_area_mm2"];
      } catch (const Error& err) {
        s["viewer_error"] = err.what();
      }
    }
    if (progress) progress({e.name, k - 1, static_cast<int64_t>(manifest.entries.size()), true});
    const fs::path viewer = out_dir.empty() ? default_view_dir(results, e.name) : out_dir / e.name;
    const std::string back = detail::url_path(detail::relative_to(index, viewer));
    if (viewer_current(viewer, summary)) {
      ++result.viewers_kept;
    } else {
      try {
        ViewParams p = params;
        p.name = e.name;
        p.mpp_from_results = true;  // the batch passed --mpp / --mpp-csv to the slide's run itself
        p.evaluation = has_evaluation(eval_dir) ? eval_dir : fs::path();
        write_view(results, viewer, p, {}, back);
        ++result.viewers_written;
      } catch (const Error& err) {
        if (params.cancel && params.cancel->load()) throw;
        s["viewer_error"] = err.what();
        result.viewer_failures.emplace_back(e.name, err.what());
      }
    }
    if (fs::is_regular_file(viewer / "index.html", ec)) {
      s["viewer"] = detail::url_path(detail::relative_to(viewer / "index.html", home));
      if (fs::is_regular_file(viewer / "thumb.png", ec)) s["thumb"] = detail::url_path(detail::relative_to(viewer / "thumb.png", home));
    }
    if (!s.contains("thumb") && fs::is_regular_file(results / (e.name + ".thumb.png"), ec))
      s["thumb"] = detail::url_path(detail::relative_to(results / (e.name + ".thumb.png"), home));
    slides.push_back(s);
  }
  if (progress) progress({"index", result.slides, result.slides, true});

  json plots = json::array();
  if (fs::is_directory(eval_dir, ec))
    for (const auto& f : fs::directory_iterator(eval_dir, ec))
      if (f.is_regular_file() && f.path().extension() == ".svg" && f.path().filename().string().find("roc") != std::string::npos)
        plots.push_back({{"title", f.path().filename().string()},
                         {"src", detail::url_path(detail::relative_to(f.path(), home))}});
  fs::path shown = fs::absolute(batch_dir).lexically_normal();
  if (shown.filename().empty()) shown = shown.parent_path();  // "DIR/"
  const json data = {{"title", "batch " + shown.filename().string()},
                     {"generator", WSI_VERSION},
                     {"slides", slides},
                     {"plots", plots}};
  std::string page(detail::embedded_file("index.html"));
  // The data last: no text inside it is ever taken for a marker.
  replace_once(page, "/*WSI_JS*/", std::string(detail::embedded_file("index.js")));
  replace_once(page, "/*WSI_CSS*/", std::string(detail::embedded_file("viewer.css")));
  replace_once(page, "/*WSI_DATA*/null", script_json(data));
  detail::write_text_file(index, page);
  return result;
}

}  // namespace wsi
