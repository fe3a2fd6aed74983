// Deep Zoom tiles with libvips (contract in tiles.hpp).
#include "view/tiles.hpp"

#include <vips/vips.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/vips.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"

namespace wsi::detail {
namespace fs = std::filesystem;

namespace {

struct Unref {
  void operator()(VipsImage* p) const {
    if (p) g_object_unref(p);
  }
};
using ImagePtr = std::unique_ptr<VipsImage, Unref>;

// What the generate callback and the progress signal share.
struct Job {
  const Slide* slide = nullptr;
  int level = 0;
  double downsample = 1;
  std::mutex mutex;
  std::exception_ptr error;  // the first read failure, rethrown with its own type
  const PixelProgress* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled = false;
};

// libvips asks for a rectangle of the level image: read it through the Slide (any backend).
int generate_level(VipsRegion* out, void*, void* a, void*, gboolean*) {
  auto* job = static_cast<Job*>(a);
  const VipsRect& r = out->valid;
  try {
    thread_local std::vector<uint8_t> rgb;
    rgb.resize(static_cast<size_t>(r.width) * static_cast<size_t>(r.height) * 3);
    Region region;
    region.level = job->level;
    region.x = std::llround(r.left * job->downsample);
    region.y = std::llround(r.top * job->downsample);
    region.w = r.width;
    region.h = r.height;
    job->slide->read_region(region, rgb.data());
    const size_t row = static_cast<size_t>(r.width) * 3;
    for (int y = 0; y < r.height; ++y)
      std::memcpy(VIPS_REGION_ADDR(out, r.left, r.top + y), rgb.data() + static_cast<size_t>(y) * row, row);
    return 0;
  } catch (const std::exception& e) {
    const std::lock_guard lock(job->mutex);
    if (!job->error) job->error = std::current_exception();
    vips_error("wsi-heatmap", "%s", e.what());
    return -1;
  }
}

void on_eval(VipsImage* image, VipsProgress* p, Job* job) {
  const std::lock_guard lock(job->mutex);
  if (job->cancel && job->cancel->load()) {
    job->cancelled = true;
    vips_image_set_kill(image, TRUE);
  }
  if (job->progress && *job->progress) (*job->progress)(static_cast<int64_t>(p->npels), static_cast<int64_t>(p->tpels));
}

int64_t count_files(const fs::path& dir) {
  int64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

DeepZoom save(VipsImage* image, Job& job, const fs::path& dir, const std::string& name, bool jpeg, int quality,
              VipsRegionShrink shrink) {
  vips_image_set_progress(image, TRUE);
  g_signal_connect(image, "eval", G_CALLBACK(on_eval), &job);
  DeepZoom dz;
  dz.width = vips_image_get_width(image);
  dz.height = vips_image_get_height(image);
  dz.format = jpeg ? "jpg" : "png";  // the tiles' file extension, as DZI's Format
  const std::string suffix = jpeg ? ".jpg[Q=" + std::to_string(quality) + "]" : ".png";
  const fs::path base = dir / name;
  if (vips_dzsave(image, base.c_str(), "suffix", suffix.c_str(), "tile_size", dz.tile_size, "overlap", dz.overlap,
                  "region_shrink", shrink, nullptr) != 0) {
    const std::string why = take_vips_error();
    if (job.error) std::rethrow_exception(job.error);
    if (job.cancelled) throw Error("interrupted");
    throw Error("making the " + name + " tiles in " + dir.string() + " failed: " + why);
  }
  std::error_code ec;
  fs::remove(base.string() + "_files/vips-properties.xml", ec);  // the rasters' metadata, paths included
  dz.tiles = count_files(base.string() + "_files");
  return dz;
}

}  // namespace

RasterInfo read_raster_info(const fs::path& tif) {
  ensure_vips_started();
  ImagePtr im(vips_image_new_from_file(tif.c_str(), nullptr));
  if (!im) throw ConfigError(tif.string() + ": cannot be read as a TIFF raster: " + take_vips_error());
  RasterInfo info;
  info.width = vips_image_get_width(im.get());
  info.height = vips_image_get_height(im.get());
  const char* description = nullptr;
  if (vips_image_get_typeof(im.get(), "image-description") &&
      vips_image_get_string(im.get(), "image-description", &description) == 0 && description) {
    const nlohmann::json d = nlohmann::json::parse(description, nullptr, false);
    if (d.is_object() && d.contains("level0_pixels_per_pixel") && d["level0_pixels_per_pixel"].is_number())
      info.level0_per_pixel = d["level0_pixels_per_pixel"].get<double>();
  }
  return info;
}

DeepZoom slide_deep_zoom(const Slide& slide, int level, double scale, const fs::path& dir, const std::string& name,
                         int quality, const PixelProgress& progress, const std::atomic<bool>* cancel) {
  ensure_vips_started();
  const LevelInfo& info = slide.level(level);
  Job job;
  job.slide = &slide;
  job.level = level;
  job.downsample = info.downsample;
  job.progress = &progress;
  job.cancel = cancel;
  ImagePtr level_image(vips_image_new());
  vips_image_init_fields(level_image.get(), static_cast<int>(info.width), static_cast<int>(info.height), 3,
                         VIPS_FORMAT_UCHAR, VIPS_CODING_NONE, VIPS_INTERPRETATION_sRGB, 1.0, 1.0);
  if (vips_image_pipelinev(level_image.get(), VIPS_DEMAND_STYLE_SMALLTILE, nullptr) != 0 ||
      vips_image_generate(level_image.get(), nullptr, generate_level, nullptr, &job, nullptr) != 0)
    throw Error("libvips: " + take_vips_error());
  ImagePtr resized;
  if (std::abs(scale - 1.0) > 1e-9) {
    VipsImage* out = nullptr;
    if (vips_resize(level_image.get(), &out, scale, nullptr) != 0) throw Error("libvips: " + take_vips_error());
    resized.reset(out);
  }
  return save(resized ? resized.get() : level_image.get(), job, dir, name, true, quality, VIPS_REGION_SHRINK_MEAN);
}

DeepZoom raster_deep_zoom(const fs::path& tif, const fs::path& dir, const std::string& name, bool jpeg,
                          const std::string& shrink, const PixelProgress& progress, const std::atomic<bool>* cancel) {
  ensure_vips_started();
  ImagePtr im(vips_image_new_from_file(tif.c_str(), nullptr));
  if (!im) throw ConfigError(tif.string() + ": cannot be read as a TIFF raster: " + take_vips_error());
  Job job;
  job.progress = &progress;
  job.cancel = cancel;
  return save(im.get(), job, dir, name, jpeg, 90, shrink == "max" ? VIPS_REGION_SHRINK_MAX : VIPS_REGION_SHRINK_MEAN);
}

}  // namespace wsi::detail
