// The heatmap job's writers (see outputs.hpp).
#include "heatmap/outputs.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <string_view>
#include <utility>

#include "wsi/error.hpp"
#include "wsi/image_io.hpp"
#include "wsi/overlay.hpp"
#include "wsi/regions.hpp"

namespace wsi::detail {
using nlohmann::json;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

uint8_t to_u8(float v) { return std::isnan(v) ? 0 : static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); }

}  // namespace

std::string tiff_description(const json& d) {
  // Names from the user's files may be any bytes: those that are not UTF-8 become U+FFFD
  // rather than failing the run.
  std::string text = d.dump(-1, ' ', false, json::error_handler_t::replace);
  // Only string values can hold these words (keys are ours, numbers cannot), and no escape
  // nlohmann writes ends in one, so a \u escape of the first letter is valid JSON there.
  for (const auto& [word, escaped] : {std::pair<std::string_view, std::string_view>{"xml", "\\u0078ml"},
                                      {"XML", "\\u0058ML"},
                                      {"DICOM", "\\u0044ICOM"}})
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + escaped.size()))
      text.replace(at, word.size(), escaped);
  return text;
}

PyramidTiffOptions heatmap_tiff_options(const HeatmapPlan& plan, const json& description, const RasterGeometry& raster,
                                        int channels, bool float32, const std::string& what, bool jpeg) {
  PyramidTiffOptions o;
  o.width = raster.width;
  o.height = raster.height;
  o.channels = channels;
  o.sample = float32 ? PyramidTiffOptions::SampleType::f32 : PyramidTiffOptions::SampleType::u8;
  // unknown mpp: level-0 pixels as "µm"
  o.mpp_x = o.mpp_y = (plan.mpp0 > 0 ? plan.mpp0 : 1.0) * static_cast<double>(raster.pixel);
  json d = description;
  d["image"] = what;
  d["level0_pixels_per_pixel"] = raster.pixel;
  o.description = tiff_description(d);
  o.compression = jpeg ? PyramidTiffOptions::Compression::jpeg : PyramidTiffOptions::Compression::deflate;
  o.shrink = PyramidTiffOptions::Shrink::mean;
  return o;
}

HeatmapStitcher::HeatmapStitcher(const HeatmapPlan& plan, const json& description)
    : plan_(plan),
      prob_(plan.grid.patches.size(), kNaN),
      patches_file_(plan.outputs.patches_csv),
      patches_csv_(patches_file_.tmp(), std::ios::binary),
      size0_(static_cast<int64_t>(std::llround(plan.geometry.size_level0))) {
  if (!patches_csv_) throw WriteError(plan.outputs.patches_csv, "cannot create the file (is the directory writable?)");
  patches_csv_ << "x,y,width,height,probability\n";
  if (!plan.gradcam) return;
  const int side = plan.read_geometry.patch_size;
  cam_values_ = static_cast<size_t>(side) * static_cast<size_t>(side);
  cam_row_.resize(static_cast<size_t>(plan.cam_raster.width));
  cam_writer_ = std::make_unique<PyramidTiffWriter>(
      plan.outputs.cam, heatmap_tiff_options(plan, description, plan.cam_raster, 1, false, "gradcam", false));
  cam_stitcher_ =
      std::make_unique<CamStitcher>(plan.cam_raster, plan.geometry.size_level0, side, [this](const float* row, int64_t) {
        for (size_t u = 0; u < cam_row_.size(); ++u) cam_row_[u] = to_u8(row[u]);
        cam_writer_->write_rows(cam_row_.data(), 1);
      });
}

HeatmapStitcher::~HeatmapStitcher() = default;

void HeatmapStitcher::add(size_t first, size_t count, const uint8_t* ok, const float* probabilities, const float* cams) {
  for (size_t k = 0; k < count; ++k) {
    if (!ok[k]) continue;
    const GridPatch& gp = plan_.grid.patches[first + k];
    const float p = probabilities[k];
    prob_[first + k] = p;
    patches_csv_ << gp.x << ',' << gp.y << ',' << size0_ << ',' << size0_ << ',' << std::setprecision(6) << p << '\n';
    if (cam_stitcher_) cam_stitcher_->add(gp.x, gp.y, gp.row, cams + k * cam_values_);
  }
}

void HeatmapStitcher::finish() {
  if (cam_stitcher_) {
    cam_stitcher_->finish();
    cam_writer_->finish();
  }
  patches_csv_.close();
  if (!patches_csv_) throw WriteError(plan_.outputs.patches_csv, "write failed (disk full?)");
  patches_file_.commit();
}

std::vector<float> write_probability_rasters(const HeatmapPlan& plan, const json& description,
                                             const std::vector<float>& prob) {
  std::vector<int64_t> xs, ys;
  std::vector<float> ps;
  for (size_t i = 0; i < prob.size(); ++i) {
    if (std::isnan(prob[i])) continue;
    xs.push_back(plan.grid.patches[i].x);
    ys.push_back(plan.grid.patches[i].y);
    ps.push_back(prob[i]);
  }
  const RasterGeometry& g = plan.prob_raster;
  std::vector<float> raster =
      probability_raster(g, xs, ys, ps, plan.geometry.size_level0, plan.geometry.stride_level0);
  {
    std::vector<uint8_t> u8(raster.size());
    for (size_t i = 0; i < raster.size(); ++i) u8[i] = to_u8(raster[i]);
    PyramidTiffWriter w(plan.outputs.prob, heatmap_tiff_options(plan, description, g, 1, false, "probability", false));
    w.write_rows(u8.data(), g.height);
    w.finish();
  }
  if (plan.params.float32) {
    PyramidTiffWriter w(plan.outputs.prob_f32, heatmap_tiff_options(plan, description, g, 1, true, "probability", false));
    w.write_rows(raster.data(), g.height);
    w.finish();
  }
  return raster;
}

void write_overlay(const HeatmapPlan& plan, const json& description, const PatchSource& slide,
                   const std::vector<float>& raster) {
  OverlayGeometry g;
  g.overlay = plan.overlay_raster;
  g.probability = plan.prob_raster;
  g.level = plan.overlay_level;
  g.downsample = plan.overlay_downsample;
  OverlayStyle style;
  style.alpha = plan.params.overlay_alpha;
  style.min_value = plan.params.overlay_min;
  PyramidTiffWriter w(plan.outputs.overlay, heatmap_tiff_options(plan, description, g.overlay, 3, false, "overlay", true));
  const RgbImage thumb =
      render_overlay(slide, g, raster, style, [&](const uint8_t* rgb, int64_t rows) { w.write_rows(rgb, rows); });
  w.finish();
  write_png(thumb, plan.outputs.thumb);
}

void write_regions(const HeatmapPlan& plan, const std::vector<float>& prob) {
  const PatchGrid& grid = plan.grid;
  const PatchGeometry& geo = plan.geometry;
  ProbabilityGrid pg;
  pg.cols = grid.cols;
  pg.rows = grid.rows;
  pg.step = geo.stride_level0;
  pg.x0 = static_cast<double>(grid.origin_x) + (geo.size_level0 - geo.stride_level0) / 2;
  pg.y0 = static_cast<double>(grid.origin_y) + (geo.size_level0 - geo.stride_level0) / 2;
  pg.values.assign(static_cast<size_t>(grid.cols * grid.rows), kNaN);
  for (size_t i = 0; i < prob.size(); ++i)
    pg.values[static_cast<size_t>(grid.patches[i].row) * static_cast<size_t>(grid.cols) +
              static_cast<size_t>(grid.patches[i].col)] = prob[i];
  RegionParams rp;
  rp.threshold = plan.params.threshold;
  rp.mpp = plan.mpp0;
  write_text_file(plan.outputs.regions, regions_geojson(pg, rp));
  MaximaParams mp;
  mp.threshold = plan.params.froc_threshold;
  mp.mpp = plan.mpp0;
  if (plan.mpp0 <= 0) mp.nms_um = 0;
  write_text_file(plan.outputs.froc_csv, froc_csv(local_maxima(pg, mp)));
}

ProbabilityStats probability_stats(const HeatmapPlan& plan, const std::vector<float>& prob) {
  ProbabilityStats s;
  double sum = 0;
  for (const float p : prob) {
    if (std::isnan(p)) continue;
    ++s.processed;
    sum += p;
    s.slide_score = std::max(s.slide_score, static_cast<double>(p));
    if (p >= plan.params.threshold) ++s.tumour;
  }
  s.mean = s.processed ? sum / static_cast<double>(s.processed) : 0.0;
  const double cell_um = plan.mpp0 * plan.geometry.stride_level0;
  s.tumour_area_mm2 = static_cast<double>(s.tumour) * cell_um * cell_um / 1e6;
  return s;
}

}  // namespace wsi::detail
