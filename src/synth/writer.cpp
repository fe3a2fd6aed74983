// Streams a SynthScene into pyramidal TIFFs through libvips: the scene is a libvips "generated"
// image, so libvips' threadpool asks for small tiles on demand and its pyramid writer keeps only
// a strip of each level in flight. Memory does not grow with the slide's height.
#include <vips/vips.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "core/pending_file.hpp"
#include "core/vips.hpp"
#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace fs = std::filesystem;
using detail::write_text_file;

namespace {

struct GenerateContext {
  const SynthScene* scene = nullptr;
  bool mask = false;
};

int generate_region(VipsRegion* out, void* /*seq*/, void* a, void* /*b*/, gboolean* /*stop*/) {
  const auto* ctx = static_cast<const GenerateContext*>(a);
  const VipsRect& r = out->valid;
  const int bands = ctx->mask ? 1 : 3;
  try {
    thread_local std::vector<uint8_t> buf;
    buf.resize(static_cast<size_t>(r.width) * static_cast<size_t>(r.height) * static_cast<size_t>(bands));
    if (ctx->mask)
      ctx->scene->render_mask(r.left, r.top, r.width, r.height, buf.data());
    else
      ctx->scene->render_rgb(r.left, r.top, r.width, r.height, buf.data());
    const size_t row = static_cast<size_t>(r.width) * static_cast<size_t>(bands);
    for (int y = 0; y < r.height; ++y)
      std::copy_n(buf.data() + static_cast<size_t>(y) * row, row, VIPS_REGION_ADDR(out, r.left, r.top + y));
  } catch (const std::exception& e) {
    // Exceptions must not unwind through libvips' C threadpool.
    vips_error("wsi-synth", "%s", e.what());
    return -1;
  }
  return 0;
}

struct VipsImageRef {
  VipsImage* img = nullptr;
  ~VipsImageRef() {
    if (img) g_object_unref(img);
  }
};

void save_pyramid(const SynthScene& scene, bool mask, const fs::path& path, const SynthOutputs& o) {
  const SynthParams& p = scene.params();
  GenerateContext ctx{&scene, mask};
  VipsImageRef ref;
  ref.img = vips_image_new();
  const double px_per_mm = 1000.0 / p.mpp;
  vips_image_init_fields(ref.img, static_cast<int>(p.width), static_cast<int>(p.height), mask ? 1 : 3,
                         VIPS_FORMAT_UCHAR, VIPS_CODING_NONE,
                         mask ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB, px_per_mm, px_per_mm);
  if (vips_image_pipelinev(ref.img, VIPS_DEMAND_STYLE_SMALLTILE, nullptr) != 0 ||
      vips_image_generate(ref.img, nullptr, generate_region, nullptr, &ctx, nullptr) != 0)
    throw WriteError(path, "cannot set up the image generator: " + detail::take_vips_error());
  std::ostringstream desc;
  desc << "wsi-heatmap synth " << (mask ? "tumour mask (0 normal, 255 tumour)" : "H&E slide") << "; seed="
       << p.seed << " size=" << p.width << "x" << p.height << " mpp=" << p.mpp << " tumours=" << p.tumours;
  vips_image_set_string(ref.img, "image-description", desc.str().c_str());

  const auto save = [&](VipsTarget* target) {
    if (mask)  // pyramid levels shrink with max, so "any tumour here" holds at every level
      return vips_tiffsave_target(ref.img, target, "tile", TRUE, "tile_width", o.tile_size, "tile_height",
                                  o.tile_size, "pyramid", TRUE, "bigtiff", TRUE, "compression",
                                  VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, "predictor",
                                  VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL, "region_shrink", VIPS_REGION_SHRINK_MAX,
                                  "resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM, "xres", px_per_mm, "yres", px_per_mm,
                                  nullptr);
    return vips_tiffsave_target(ref.img, target, "tile", TRUE, "tile_width", o.tile_size, "tile_height", o.tile_size,
                                "pyramid", TRUE, "bigtiff", TRUE, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG,
                                "Q", o.jpeg_quality, "resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM, "xres", px_per_mm,
                                "yres", px_per_mm, nullptr);
  };
  detail::save_through_target(path, save, [&](const fs::path& tmp) { detail::check_tiff_is_whole(tmp, path); });
}

}  // namespace

std::string asap_xml(const std::vector<std::vector<PointD>>& outlines) {
  std::ostringstream x;
  x.precision(10);
  x << "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n";
  for (size_t i = 0; i < outlines.size(); ++i) {
    x << "\t\t<Annotation Name=\"Tumor " << i << "\" Type=\"Polygon\" PartOfGroup=\"Tumor\" Color=\"#F4FA58\">\n"
      << "\t\t\t<Coordinates>\n";
    for (size_t k = 0; k < outlines[i].size(); ++k)
      x << "\t\t\t\t<Coordinate Order=\"" << k << "\" X=\"" << outlines[i][k].x << "\" Y=\"" << outlines[i][k].y
        << "\" />\n";
    x << "\t\t\t</Coordinates>\n\t\t</Annotation>\n";
  }
  x << "\t</Annotations>\n\t<AnnotationGroups>\n"
    << "\t\t<Group Name=\"Tumor\" PartOfGroup=\"None\" Color=\"#F4FA58\">\n\t\t\t<Attributes />\n\t\t</Group>\n"
    << "\t</AnnotationGroups>\n</ASAP_Annotations>\n";
  return x.str();
}

void write_synthetic_slide(const SynthScene& scene, const SynthOutputs& outputs, int threads) {
  detail::ensure_vips_started();
  if (threads > 0) vips_concurrency_set(threads);
  if (outputs.jpeg_quality < 1 || outputs.jpeg_quality > 100)
    throw ConfigError("synth: JPEG quality must be between 1 and 100");
  if (outputs.tile_size < 16 || outputs.tile_size % 16 != 0)
    throw ConfigError("synth: tile size must be a multiple of 16");
  save_pyramid(scene, false, outputs.slide, outputs);
  if (outputs.mask) save_pyramid(scene, true, *outputs.mask, outputs);
  if (outputs.annotations) write_text_file(*outputs.annotations, asap_xml(scene.tumour_outlines()));
}

}  // namespace wsi
