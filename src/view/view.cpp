// Offline HTML viewers of heatmap results (contract in wsi/view.hpp).
#include "wsi/view.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "view/assets.hpp"
#include "view/tiles.hpp"
#include "view/view_internal.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap_io.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;

namespace detail {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ConfigError(p.string() + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json read_json_file(const fs::path& p, const std::string& what) {
  const std::string text = read_file(p);
  if (json_depth(text) > kMaxJsonDepth) throw ConfigError(p.string() + ": nested too deeply to be " + what);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ConfigError(p.string() + " is not valid JSON (" + what + "): " + json_error_text(e));
  }
}

std::string url_path(const fs::path& relative) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : relative.generic_string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

fs::path relative_to(const fs::path& target, const fs::path& base_dir) {
  return fs::weakly_canonical(fs::absolute(target)).lexically_relative(fs::weakly_canonical(fs::absolute(base_dir)));
}

// A viewer folder carries this file, so that a folder which is not a viewer is never replaced.
constexpr const char* kMarker = ".wsi-heatmap-view";

void check_output_folder(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError(dir.string() + ": is a file; give -o a folder for the viewer");
  if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec) && !fs::exists(dir / kMarker, ec))
    throw UsageError(dir.string() + ": exists and is not a viewer wsi-heatmap wrote; give -o a new folder " +
                     "(a viewer folder is replaced whole)");
  const fs::path parent = fs::absolute(dir).parent_path();
  fs::create_directories(parent, ec);
  if (ec || !fs::is_directory(parent))
    throw UsageError(parent.string() + ": cannot create the folder for the viewer" + (ec ? ": " + ec.message() : "") +
                     "; check the path and its permissions");
  if (::access(parent.c_str(), W_OK) != 0)
    throw UsageError(parent.string() + ": the folder is not writable, so the viewer " + dir.filename().string() +
                     " cannot be written there; fix its permissions or give -o another folder");
}

// A folder built under a temporary name beside `final` and swapped in whole by commit(); removed
// on destruction otherwise.
class PendingFolder {
 public:
  explicit PendingFolder(fs::path final) : final_(std::move(final)), tmp_(temporary_name(final_)) {
    std::error_code ec;
    fs::create_directory(tmp_, ec);
    if (ec) throw WriteError(final_, "cannot create a temporary folder beside it: " + ec.message());
  }
  ~PendingFolder() {
    std::error_code ec;
    if (!committed_) fs::remove_all(tmp_, ec);
  }
  PendingFolder(const PendingFolder&) = delete;
  PendingFolder& operator=(const PendingFolder&) = delete;
  const fs::path& tmp() const { return tmp_; }
  void commit() {
    std::error_code ec;
    fs::path old;
    if (fs::exists(final_, ec)) {
      old = temporary_name(final_);
      fs::rename(final_, old, ec);
      if (ec) throw WriteError(final_, "cannot move the earlier viewer aside: " + ec.message());
    }
    fs::rename(tmp_, final_, ec);
    if (ec) {
      std::error_code ignored;
      if (!old.empty()) fs::rename(old, final_, ignored);
      throw WriteError(final_, "cannot rename the finished viewer into place: " + ec.message());
    }
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  fs::path final_, tmp_;
  bool committed_ = false;
};

void write_bytes(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) throw WriteError(p, "writing failed (is the disk full?)");
}

void copy_asset(const std::string& name, const fs::path& to) {
  const std::string_view bytes = embedded_file(name);
  if (bytes.empty()) throw Error("the viewer asset " + name + " is missing from this build");
  write_bytes(to, bytes);
}

// The probability colour map of the overlay (inferno), as the page's table: 52 control points.
json colormap_table() {
  std::vector<float> v(52);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 51.0f;
  std::vector<uint8_t> rgb(v.size() * 3);
  apply_colormap(v.data(), static_cast<int64_t>(v.size()), rgb.data());
  json t = json::array();
  for (size_t i = 0; i < v.size(); ++i) t.push_back({rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]});
  return t;
}

double number_at(const json& j, const fs::path& file, const char* a, const char* b) {
  if (!j.is_object() || !j.contains(a) || !j[a].is_object() || !j[a].contains(b) || !j[a][b].is_number())
    throw ConfigError(file.string() + ": no number " + a + "." + b + "; not a summary written by wsi-heatmap");
  return j[a][b].get<double>();
}

// One bin per 0.01 of the probabilities in NAME.patches.csv (the last column).
std::vector<int64_t> probability_histogram(const fs::path& csv) {
  std::vector<int64_t> bins(100, 0);
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // header x,y,width,height,probability
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const size_t comma = line.find_last_of(',');
    std::string field = line.substr(comma == std::string::npos ? 0 : comma + 1);
    if (!field.empty() && field.back() == '\r') field.pop_back();
    double p = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), p);
    if (ec != std::errc() || end != field.data() + field.size() || !(p >= 0 && p <= 1))
      throw ConfigError(csv.string() + ":" + std::to_string(number) + ": probability '" + field +
                        "' is not a number in 0..1");
    bins[static_cast<size_t>(std::min(99.0, std::floor(p * 100 + 1e-9)))] += 1;
  }
  return bins;
}

// Curves (SVG) of an evaluate-slides folder and the slide's numbers from its evaluation.json.
struct Evaluation {
  std::vector<fs::path> plots;
  json metrics = json::array();
  bool found = false;
};

std::string plot_title(const fs::path& svg) {
  const std::string stem = svg.stem().string();
  if (stem.find("froc") != std::string::npos) return "FROC curve (" + svg.filename().string() + ")";
  if (stem.find("roc") != std::string::npos) return "ROC curve (" + svg.filename().string() + ")";
  return svg.filename().string();
}

Evaluation read_evaluation(const fs::path& dir, const std::string& name, bool required) {
  Evaluation ev;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) {
    if (required) throw UsageError("--evaluation " + dir.string() + ": no such directory");
    return ev;
  }
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".svg" && e.path().filename().string()[0] != '.' &&
        e.path().filename().string().find("roc") != std::string::npos)
      ev.plots.push_back(e.path());
  std::sort(ev.plots.begin(), ev.plots.end());
  const fs::path ej = dir / "evaluation.json";
  if (fs::is_regular_file(ej, ec)) {
    const json j = read_json_file(ej, "an evaluate-slides evaluation");
    ev.found = true;
    auto add = [&](const std::string& label, const json& v, int digits, const std::string& title) {
      if (!v.is_number()) return;
      std::ostringstream s;
      s.setf(std::ios::fixed);
      s.precision(digits);
      s << v.get<double>();
      ev.metrics.push_back({{"label", label}, {"value", s.str()}, {"title", title}});
    };
    if (j.contains("slides") && j["slides"].is_array())
      for (const json& s : j["slides"])
        if (s.is_object() && s.value("name", "") == name && s.contains("patch_level") && s["patch_level"].is_object()) {
          const json& pl = s["patch_level"];
          add("Patch AUC", pl.value("auc", json()), 3, "ROC AUC of this slide's patches against the truth");
          add("Dice", pl.value("dice", json()), 3, "2TP / (2TP + FP + FN) at the threshold");
        }
    if (j.contains("froc") && j["froc"].is_object())
      add("FROC score", j["froc"].value("score", json()), 3, "mean sensitivity at 1/4..8 FPs per slide, all slides");
  }
  if (required && !ev.found && ev.plots.empty())
    throw UsageError("--evaluation " + dir.string() + ": no evaluation.json or curves (*roc*.svg) there; give the folder " +
                     "evaluate-slides -o wrote");
  return ev;
}

}  // namespace detail

std::vector<std::string> result_names(const fs::path& results_dir) {
  std::error_code ec;
  if (!fs::is_directory(results_dir, ec))
    throw UsageError(results_dir.string() + ": no such directory; give the folder the heatmap job wrote (-o DIR)");
  std::vector<std::string> names;
  const std::string suffix = ".summary.json";
  for (const auto& e : fs::directory_iterator(results_dir, ec)) {
    const std::string f = e.path().filename().string();
    if (e.is_regular_file() && f.size() > suffix.size() && f[0] != '.' &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(f.substr(0, f.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool is_batch_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "manifest.json", ec)) return true;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("manifest.shard-", 0) == 0 && e.path().extension() == ".json") return true;
  }
  return false;
}

fs::path default_view_dir(const fs::path& results_dir, const std::string& name) {
  return results_dir / (name + ".viewer");
}

namespace {

// NAME of the results to show: the one asked for, or the folder's only one.
std::string pick_result_name(const fs::path& results_dir, const std::string& wanted) {
  const std::vector<std::string> names = result_names(results_dir);
  if (!wanted.empty() && std::find(names.begin(), names.end(), wanted) == names.end())
    throw UsageError(results_dir.string() + ": no " + wanted + ".summary.json for --name " + wanted);
  if (!wanted.empty()) return wanted;
  if (names.empty())
    throw UsageError(results_dir.string() + ": no NAME.summary.json here; the summary is written last, so the " +
                     "heatmap job did not finish in this folder (run wsi-heatmap SLIDE -o " + results_dir.string() + ")");
  if (names.size() > 1) {
    std::string list;
    for (size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", " : "") + names[i];
    throw UsageError(results_dir.string() + " holds the results of " + std::to_string(names.size()) + " slides (" +
                     list + (names.size() > 5 ? ", ..." : "") + "): pick one with --name NAME");
  }
  return names.front();
}

// One slide's results as the viewer needs them: the summary's facts and the rasters, each checked
// to cover the slide the summary describes.
struct ViewInputs {
  fs::path dir;
  std::string name;
  fs::path file_summary;
  json summary;
  double W0 = 0, H0 = 0, mpp = 0, threshold = 0, stride0 = 0;
  std::string summary_slide;  // the slide's path as the summary records it
  fs::path prob_tif, cam_tif, overlay_tif;
  detail::RasterInfo prob, cam, overlay;  // cam.width / overlay.width 0: absent
  fs::path file(const std::string& suffix) const { return dir / (name + suffix); }
};

ViewInputs read_summary(const fs::path& results_dir, const std::string& name) {
  ViewInputs in;
  in.dir = results_dir;
  in.name = name;
  in.file_summary = in.file(".summary.json");
  in.summary = detail::read_json_file(in.file_summary, "a heatmap summary");
  in.W0 = detail::number_at(in.summary, in.file_summary, "slide", "width");
  in.H0 = detail::number_at(in.summary, in.file_summary, "slide", "height");
  in.mpp = detail::number_at(in.summary, in.file_summary, "slide", "mpp");
  in.threshold = detail::number_at(in.summary, in.file_summary, "parameters", "threshold");
  in.stride0 = detail::number_at(in.summary, in.file_summary, "parameters", "stride_level0");
  if (!(in.W0 >= 1 && in.H0 >= 1 && in.mpp > 0))
    throw ConfigError(in.file_summary.string() + ": the slide's size or mpp is not positive; not a summary written by wsi-heatmap");
  const json& slide = in.summary["slide"];
  in.summary_slide = slide.contains("path") && slide["path"].is_string() ? slide["path"].get<std::string>() : "";
  return in;
}

void check_cover(const ViewInputs& in, const fs::path& tif, const detail::RasterInfo& r) {
  const double d = r.level0_per_pixel;
  if (!(d > 0))
    throw ConfigError(tif.string() + ": not a raster wsi-heatmap wrote (its description gives no " +
                      "level0_pixels_per_pixel); rerun the heatmap job");
  const double w = static_cast<double>(r.width) * d, h = static_cast<double>(r.height) * d;
  if (std::abs(w - in.W0) > d + 1 || std::abs(h - in.H0) > d + 1) {
    std::ostringstream s;
    s << tif.string() << ": " << r.width << "x" << r.height << " px of " << d << " slide pixels do not cover the "
      << static_cast<int64_t>(in.W0) << "x" << static_cast<int64_t>(in.H0) << " px slide of "
      << in.file_summary.filename().string() << "; the results folder mixes files of different runs (rerun the heatmap job)";
    throw ConfigError(s.str());
  }
}

void read_rasters(ViewInputs& in, bool no_slide) {
  std::error_code ec;
  in.prob_tif = in.file(".prob.tif");
  if (!fs::is_regular_file(in.prob_tif, ec))
    throw ConfigError(in.prob_tif.string() + ": missing; the results folder is incomplete (rerun the heatmap job)");
  check_cover(in, in.prob_tif, in.prob = detail::read_raster_info(in.prob_tif));
  in.cam_tif = in.file(".cam.tif");
  if (fs::is_regular_file(in.cam_tif, ec)) check_cover(in, in.cam_tif, in.cam = detail::read_raster_info(in.cam_tif));
  in.overlay_tif = in.file(".overlay.tif");
  if (fs::is_regular_file(in.overlay_tif, ec))
    check_cover(in, in.overlay_tif, in.overlay = detail::read_raster_info(in.overlay_tif));
  if (no_slide && in.overlay.width == 0)
    throw UsageError("--no-slide shows " + in.overlay_tif.string() + ", which is missing");
}

// The slide the results were made from, and the level and scale its tiles are read at.
struct ViewSlide {
  std::optional<Slide> slide;
  fs::path path;
  double tile_mpp = 8;
  int level = 0;
  double scale = 1, level_downsample = 1;
};

ViewSlide open_view_slide(const ViewInputs& in, const ViewParams& params) {
  ViewSlide v;
  const double mpp = in.mpp;
  v.tile_mpp = params.tile_mpp.value_or(in.overlay.level0_per_pixel > 0 ? in.overlay.level0_per_pixel * mpp : 8.0);
  if (params.no_slide) return v;
  std::error_code ec;
  v.path = params.slide.empty() ? fs::path(in.summary_slide) : params.slide;
  if (v.path.empty() || !fs::exists(v.path, ec)) {
    if (params.slide.empty())
      throw UsageError("the results in " + in.dir.string() + " name the slide " +
                       (in.summary_slide.empty() ? std::string("(none)") : in.summary_slide) +
                       ", which is not there (a relative path is taken from the current folder); pass --slide SLIDE, " +
                       "or --no-slide to show " + in.overlay_tif.filename().string() + " instead");
    throw UsageError("--slide " + v.path.string() + ": no such file");
  }
  SlideOptions so;
  so.mpp_override = params.mpp_override;
  const Slide& slide = v.slide.emplace(v.path, so);
  if (slide.width() != static_cast<int64_t>(in.W0) || slide.height() != static_cast<int64_t>(in.H0)) {
    std::ostringstream s;
    s << v.path.string() << " is " << slide.width() << "x" << slide.height() << " px, but the results in "
      << in.dir.string() << " were made from a " << static_cast<int64_t>(in.W0) << "x" << static_cast<int64_t>(in.H0)
      << " px slide (" << in.file_summary.filename().string() << "); pass the slide they were made from with --slide";
    throw UsageError(s.str());
  }
  const Mpp& own = slide.mpp();
  if (!params.mpp_from_results && own.known() && std::abs(own.x - mpp) > 0.01 * mpp) {
    std::ostringstream s;
    s << v.path.string() << " has " << own.x << " µm/px, but the results in " << in.dir.string() << " were made at "
      << mpp << " µm/px (" << in.file_summary.filename().string()
      << "); pass the slide they were made from, or --mpp " << mpp << " if the heatmap job was given --mpp";
    throw UsageError(s.str());
  }
  if (v.tile_mpp < mpp * (1 - 1e-6)) {
    std::ostringstream s;
    s << "--tile-mpp " << v.tile_mpp << " is finer than the slide's own " << mpp << " µm/px; give at least " << mpp;
    throw UsageError(s.str());
  }
  const LevelChoice choice = choose_level(slide.levels(), mpp, v.tile_mpp);
  v.level = choice.level;
  v.level_downsample = slide.level(v.level).downsample;
  v.scale = 1.0 / choice.read_scale;
  return v;
}

// The Deep Zoom layers (base, probability, Grad-CAM) under tmp/tiles, as the page lists them.
json write_layers(const ViewInputs& in, const ViewSlide& vs, const ViewParams& params, const fs::path& tmp,
                  const ViewProgressFn& progress, ViewResult& result) {
  using namespace detail;
  const auto stage = [&progress](const std::string& what) {
    return [&progress, what](int64_t done, int64_t total) {
      if (progress) progress({what, done, total});
    };
  };
  json layers = json::array();
  const auto layer = [&](const std::string& id, const std::string& label, const DeepZoom& dz, double world_width) {
    layers.push_back({{"id", id},
                      {"label", label},
                      {"url", "tiles/" + id + "_files/"},
                      {"format", dz.format},
                      {"width", dz.width},
                      {"height", dz.height},
                      {"tileSize", dz.tile_size},
                      {"overlap", dz.overlap},
                      {"worldWidth", world_width}});
    result.tiles += dz.tiles;
  };
  if (vs.slide) {
    const DeepZoom dz = slide_deep_zoom(*vs.slide, vs.level, vs.scale, tmp / "tiles", "slide", params.jpeg_quality,
                                        stage("slide"), params.cancel);
    layer("slide", "Slide", dz, static_cast<double>(dz.width) * vs.level_downsample / vs.scale);
    result.tile_mpp = in.mpp * vs.level_downsample / vs.scale;
    result.base = "slide";
  } else {
    const DeepZoom dz =
        raster_deep_zoom(in.overlay_tif, tmp / "tiles", "slide", true, "mean", stage("overlay"), params.cancel);
    layer("slide", "Overlay (" + in.overlay_tif.filename().string() + ")", dz,
          static_cast<double>(dz.width) * in.overlay.level0_per_pixel);
    result.tile_mpp = in.overlay.level0_per_pixel * in.mpp;
    result.base = "overlay";
  }
  const DeepZoom prob =
      raster_deep_zoom(in.prob_tif, tmp / "tiles", "prob", false, "max", stage("probability"), params.cancel);
  layer("prob", "Probability", prob, static_cast<double>(prob.width) * in.prob.level0_per_pixel);
  if (in.cam.width > 0) {
    const DeepZoom dz = raster_deep_zoom(in.cam_tif, tmp / "tiles", "cam", false, "mean", stage("Grad-CAM"), params.cancel);
    layer("cam", "Grad-CAM", dz, static_cast<double>(dz.width) * in.cam.level0_per_pixel);
  }
  return layers;
}

// What the page shows beside the layers: regions, the histogram, the thumbnail and the
// evaluation's plots (copied into tmp).
json page_extras(const ViewInputs& in, const detail::Evaluation& evaluation, const fs::path& tmp, const fs::path& view_dir) {
  using namespace detail;
  std::error_code ec;
  json extras = {{"regions", {{"type", "FeatureCollection"}, {"features", json::array()}}},
                 {"histogram", {{"bins", json::array()}}},
                 {"plots", json::array()}};
  const fs::path regions_file = in.file(".regions.geojson");
  if (fs::is_regular_file(regions_file, ec)) {
    json& regions = extras["regions"] = read_json_file(regions_file, "GeoJSON regions");
    if (!regions.is_object() || !regions.contains("features") || !regions["features"].is_array())
      throw ConfigError(regions_file.string() + ": not a GeoJSON FeatureCollection");
  }
  const fs::path patches_csv = in.file(".patches.csv");
  if (fs::is_regular_file(patches_csv, ec)) {
    const double cell_mm = in.stride0 * in.mpp / 1000.0;
    extras["histogram"] = {{"bins", probability_histogram(patches_csv)}, {"cell_area_mm2", cell_mm * cell_mm}};
  }
  const fs::path thumb = in.file(".thumb.png");
  if (fs::is_regular_file(thumb, ec)) {
    fs::copy_file(thumb, tmp / "thumb.png", ec);
    if (ec) throw WriteError(view_dir / "thumb.png", "cannot copy " + thumb.string() + ": " + ec.message());
  }
  if (!evaluation.plots.empty()) fs::create_directories(tmp / "plots", ec);
  for (const fs::path& svg : evaluation.plots) {
    fs::copy_file(svg, tmp / "plots" / svg.filename(), ec);
    if (ec) throw WriteError(view_dir / "plots", "cannot copy " + svg.string() + ": " + ec.message());
    extras["plots"].push_back({{"title", plot_title(svg)}, {"src", url_path(fs::path("plots") / svg.filename())}});
  }
  return extras;
}

}  // namespace

ViewResult write_view(const fs::path& results_dir, const fs::path& view_dir_arg, const ViewParams& params,
                      const ViewProgressFn& progress, const std::string& index_link) {
  using namespace detail;
  ViewInputs in = read_summary(results_dir, pick_result_name(results_dir, params.name));
  // Options that need no pixels, then the rasters and the slide: all before the folder is made.
  if (params.tile_mpp && !(*params.tile_mpp > 0 && std::isfinite(*params.tile_mpp)))
    throw UsageError("--tile-mpp must be a positive number of µm per pixel");
  if (params.jpeg_quality < 1 || params.jpeg_quality > 100) throw UsageError("--quality must be 1..100");
  const fs::path view_dir = view_dir_arg.empty() ? default_view_dir(results_dir, in.name) : view_dir_arg;
  check_output_folder(view_dir);
  const Evaluation evaluation = read_evaluation(params.evaluation.empty() ? results_dir : params.evaluation, in.name,
                                                !params.evaluation.empty());
  read_rasters(in, params.no_slide);
  const ViewSlide vs = open_view_slide(in, params);

  PendingFolder folder(view_dir);
  const fs::path tmp = folder.tmp();
  std::error_code ec;
  fs::create_directories(tmp / "assets", ec);
  fs::create_directories(tmp / "tiles", ec);
  if (ec) throw WriteError(view_dir, "cannot create its folders: " + ec.message());
  ViewResult result;
  result.name = in.name;
  result.dir = view_dir;
  result.page = view_dir / "index.html";
  const json layers = write_layers(in, vs, params, tmp, progress, result);
  json data = page_extras(in, evaluation, tmp, view_dir);
  data.update({
      {"name", in.name},
      {"generator", WSI_VERSION},
      {"slide",
       {{"path", vs.slide ? vs.path.string() : in.summary_slide}, {"width", in.W0}, {"height", in.H0}, {"mpp", in.mpp}}},
      {"base", result.base},
      {"tile_mpp", result.tile_mpp},
      {"summary", in.summary},
      {"threshold", in.threshold},
      {"colormap", colormap_table()},
      {"layers", layers},
      {"metrics", evaluation.metrics},
      {"index", index_link.empty() ? json() : json(index_link)},
  });
  write_bytes(tmp / "data.js", "window.WSI_VIEW = " + json_text(data) + ";\n");
  copy_asset("viewer.html", tmp / "index.html");
  copy_asset("viewer.js", tmp / "assets" / "viewer.js");
  copy_asset("viewer.css", tmp / "assets" / "viewer.css");
  copy_asset("openseadragon.min.js", tmp / "assets" / "openseadragon.min.js");
  copy_asset("LICENSE.txt", tmp / "assets" / "openseadragon.LICENSE.txt");
  write_bytes(tmp / kMarker, "wsi-heatmap view " WSI_VERSION "\n");
  if (params.cancel && params.cancel->load()) throw Error("interrupted");
  folder.commit();
  return result;
}

}  // namespace wsi
