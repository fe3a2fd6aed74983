// Tissue masks of slides: strip-wise reading and shrinking, and writing masks and overlays.
#include <vips/vips.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "core/vips.hpp"
#include "tissue/params_json.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"
#include "wsi/tissue.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

// Level pixels held in memory at once while shrinking (one strip, ~48 MB of RGB).
constexpr int64_t kStripPixels = int64_t{16} << 20;
constexpr int64_t kMaxStripRows = 512;

// A half-open range [a, b) of level pixels along one axis that one output pixel averages. b may
// run past the level's end: those pixels count as glass (white).
struct Span {
  int64_t a = 0, b = 0;
};

std::vector<Span> spans(int64_t out_n, double level_px_per_out_px) {
  std::vector<Span> s(static_cast<size_t>(out_n));
  for (int64_t i = 0; i < out_n; ++i) {
    Span& sp = s[static_cast<size_t>(i)];
    sp.a = static_cast<int64_t>(std::floor(static_cast<double>(i) * level_px_per_out_px + 1e-9));
    sp.b = static_cast<int64_t>(std::floor(static_cast<double>(i + 1) * level_px_per_out_px + 1e-9));
    if (sp.b <= sp.a) sp.b = sp.a + 1;  // finer than the level: nearest pixel
  }
  return s;
}

// Reads `level` of the slide in horizontal strips and box-averages it to out_w x out_h pixels,
// each covering ds_x x ds_y level-0 pixels from the origin. Level pixels whose centre is outside
// the slide's bounds, or beyond the level, count as white. Memory: one strip plus the output.
RgbImage read_shrunk(const Slide& slide, int level, int64_t out_w, int64_t out_h, double ds_x, double ds_y) {
  const LevelInfo& info = slide.level(level);
  const double d = info.downsample;
  const int64_t lw = info.width, lh = info.height;
  const std::vector<Span> cols = spans(out_w, ds_x / d), rows = spans(out_h, ds_y / d);
  const int64_t row_end = rows.empty() ? 0 : rows.back().b;  // level rows needed, white past lh
  const int64_t col_end = cols.empty() ? 0 : cols.back().b;

  const Bounds& bounds = slide.bounds();
  auto inside = [d](int64_t px, int64_t lo, int64_t len) {
    const double c = (static_cast<double>(px) + 0.5) * d;
    return c >= static_cast<double>(lo) && c < static_cast<double>(lo + len);
  };
  std::vector<uint8_t> col_in(static_cast<size_t>(std::max<int64_t>(col_end, lw)), 0);
  for (int64_t x = 0; x < lw; ++x) col_in[static_cast<size_t>(x)] = inside(x, bounds.x, bounds.width) ? 1 : 0;

  RgbImage out(out_w, out_h);
  std::deque<std::pair<int64_t, std::vector<double>>> active;  // output rows being summed
  size_t next_row = 0;                                         // next output row to open
  std::vector<double> prefix(static_cast<size_t>(col_end + 1) * 3);
  const int64_t strip_rows = std::clamp<int64_t>(kStripPixels / std::max<int64_t>(lw, 1), 1, kMaxStripRows);
  RgbImage strip;

  for (int64_t s0 = 0; s0 < row_end; s0 += strip_rows) {
    const int64_t s1 = std::min(row_end, s0 + strip_rows);
    const int64_t read_rows = std::max<int64_t>(0, std::min(s1, lh) - s0);
    if (read_rows > 0) {
      const Region r{level, 0, static_cast<int64_t>(std::llround(static_cast<double>(s0) * d)), lw, read_rows};
      strip = slide.read_region(r);
    }
    for (int64_t ly = s0; ly < s1; ++ly) {
      const bool row_ok = ly < lh && inside(ly, bounds.y, bounds.height);
      const uint8_t* src = row_ok ? strip.at(0, ly - s0) : nullptr;
      for (int64_t x = 0; x < col_end; ++x) {
        const bool ok = row_ok && x < lw && col_in[static_cast<size_t>(x)];
        for (int c = 0; c < 3; ++c) {
          const double v = ok ? src[x * 3 + c] : 255.0;
          prefix[static_cast<size_t>((x + 1) * 3 + c)] = prefix[static_cast<size_t>(x * 3 + c)] + v;
        }
      }
      while (next_row < rows.size() && rows[next_row].a <= ly) {
        active.emplace_back(static_cast<int64_t>(next_row), std::vector<double>(static_cast<size_t>(out_w) * 3, 0.0));
        ++next_row;
      }
      for (auto& [j, acc] : active) {
        if (rows[static_cast<size_t>(j)].b <= ly) continue;
        for (int64_t i = 0; i < out_w; ++i) {
          const Span& sp = cols[static_cast<size_t>(i)];
          for (int c = 0; c < 3; ++c)
            acc[static_cast<size_t>(i * 3 + c)] +=
                prefix[static_cast<size_t>(sp.b * 3 + c)] - prefix[static_cast<size_t>(sp.a * 3 + c)];
        }
      }
      while (!active.empty() && rows[static_cast<size_t>(active.front().first)].b <= ly + 1) {
        const int64_t j = active.front().first;
        const std::vector<double>& acc = active.front().second;
        const double rh = static_cast<double>(rows[static_cast<size_t>(j)].b - rows[static_cast<size_t>(j)].a);
        uint8_t* dst = out.at(0, j);
        for (int64_t i = 0; i < out_w; ++i) {
          const Span& sp = cols[static_cast<size_t>(i)];
          const double area = rh * static_cast<double>(sp.b - sp.a);
          for (int c = 0; c < 3; ++c)
            dst[i * 3 + c] = static_cast<uint8_t>(std::lround(acc[static_cast<size_t>(i * 3 + c)] / area));
        }
        active.pop_front();
      }
    }
  }
  return out;
}

// Clears mask pixels whose centre lies outside the slide's bounds (the frame stays the slide's).
void clear_outside_bounds(GrayImage& m, const Bounds& b, double ds_x, double ds_y) {
  for (int64_t j = 0; j < m.height; ++j) {
    const double cy = (static_cast<double>(j) + 0.5) * ds_y;
    const bool row_in = cy >= static_cast<double>(b.y) && cy < static_cast<double>(b.y + b.height);
    for (int64_t i = 0; i < m.width; ++i) {
      const double cx = (static_cast<double>(i) + 0.5) * ds_x;
      if (!row_in || cx < static_cast<double>(b.x) || cx >= static_cast<double>(b.x + b.width)) m.at(i, j) = 0;
    }
  }
}

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

struct VipsRef {
  VipsImage* img = nullptr;
  ~VipsRef() {
    if (img) g_object_unref(img);
  }
};

// Saves packed 8-bit pixels (1 or 3 bands) with a resolution of 1000 / mpp pixels per mm.
void save_pixels(const std::vector<uint8_t>& pixels, int64_t w, int64_t h, int bands, double mpp, const fs::path& out,
                 bool tiff) {
  detail::ensure_vips_started();
  if (w <= 0 || h <= 0) throw WriteError(out, "nothing to write: the image is empty");
  VipsRef mem, img;
  mem.img = vips_image_new_from_memory(pixels.data(), pixels.size(), static_cast<int>(w), static_cast<int>(h), bands,
                                       VIPS_FORMAT_UCHAR);
  if (!mem.img) throw WriteError(out, "cannot hand the pixels to libvips: " + detail::take_vips_error());
  const double px_per_mm = mpp > 0 ? 1000.0 / mpp : 1.0;
  if (vips_copy(mem.img, &img.img, "xres", px_per_mm, "yres", px_per_mm, "interpretation",
                bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB, nullptr) != 0)
    throw WriteError(out, "cannot set the resolution: " + detail::take_vips_error());
  if (tiff)
    detail::save_through_target(
        out,
        [&](VipsTarget* t) {
          return vips_tiffsave_target(img.img, t, "tile", TRUE, "tile_width", 256, "tile_height", 256, "compression",
                                      VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, "resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM,
                                      "xres", px_per_mm, "yres", px_per_mm, nullptr);
        },
        [&](const std::filesystem::path& tmp) { detail::check_tiff_is_whole(tmp, out); });
  else
    detail::save_through_target(out, [&](VipsTarget* t) { return vips_pngsave_target(img.img, t, "compression", 6, nullptr); });
}


}  // namespace

TissueMask compute_tissue_mask(const Slide& slide, const TissueParams& params) {
  return compute_tissue_mask(slide, params, nullptr);
}

TissueMask compute_tissue_mask(const Slide& slide, const TissueParams& params, RgbImage* view) {
  params.validate();
  const LevelChoice choice = slide.choose_level(params.mask_mpp);  // ConfigError "pass --mpp"
  const Mpp& mpp = slide.mpp();
  TissueMask m;
  m.mpp = params.mask_mpp;
  m.source_level = choice.level;
  m.downsample_x = params.mask_mpp / mpp.x;
  m.downsample_y = params.mask_mpp / mpp.y;
  const auto w = static_cast<int64_t>(std::ceil(static_cast<double>(slide.width()) / m.downsample_x - 1e-9));
  const auto h = static_cast<int64_t>(std::ceil(static_cast<double>(slide.height()) / m.downsample_y - 1e-9));
  RgbImage rgb = read_shrunk(slide, choice.level, w, h, m.downsample_x, m.downsample_y);
  m.mask = tissue_mask_from_rgb(rgb, params.mask_mpp, params, &m.stats);
  if (view) *view = std::move(rgb);
  if (slide.bounds().from_properties) {
    clear_outside_bounds(m.mask, slide.bounds(), m.downsample_x, m.downsample_y);
    int64_t on = 0;
    for (uint8_t v : m.mask.pixels) on += v ? 1 : 0;
    m.stats.tissue_fraction = static_cast<double>(on) / static_cast<double>(std::max<size_t>(1, m.mask.pixels.size()));
  }
  return m;
}

void check_tissue_mask_path(const fs::path& out) {
  const std::string ext = lower_extension(out);
  if (ext != ".png" && ext != ".tif" && ext != ".tiff")
    throw UsageError("tissue mask " + out.string() + ": unknown extension '" + ext +
                     "'; name it .png or .tif/.tiff to choose the format");
}

void write_tissue_mask(const TissueMask& mask, const TissueParams& params, const fs::path& out,
                       const std::string& slide_path) {
  check_tissue_mask_path(out);
  const bool tiff = lower_extension(out) != ".png";
  save_pixels(mask.mask.pixels, mask.mask.width, mask.mask.height, 1, mask.mpp, out, tiff);

  fs::path sidecar = out;
  sidecar += ".json";
  detail::write_text_file(sidecar, detail::json_text(detail::tissue_mask_json(mask, params, out, slide_path), 2) + "\n");
}

nlohmann::json detail::tissue_mask_json(const TissueMask& mask, const TissueParams& params, const fs::path& out,
                                        const std::string& slide_path) {
  nlohmann::json j;
  j["slide"] = slide_path;
  j["mask"] = out.filename().string();
  j["width"] = mask.mask.width;
  j["height"] = mask.mask.height;
  j["downsample_x"] = mask.downsample_x;
  j["downsample_y"] = mask.downsample_y;
  j["mpp"] = mask.mpp;
  j["source_level"] = mask.source_level;
  j["values"] = "255 = tissue, 0 = background";
  j["frame"] =
      "mask pixel (i, j) covers the level-0 rectangle [i * downsample_x, (i + 1) * downsample_x) x "
      "[j * downsample_y, (j + 1) * downsample_y) of the whole level-0 image; pixels are mpp micrometres wide";
  j["params"] = tissue_params_json(params);
  j["stats"] = {{"otsu_threshold", mask.stats.otsu_threshold},
                {"used_threshold", mask.stats.used_threshold},
                {"pen_pixels", mask.stats.pen_pixels},
                {"removed_components", mask.stats.removed_components},
                {"tissue_fraction", mask.stats.tissue_fraction}};
  return j;
}

RgbImage read_rgb_image(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError(path.string() + ": no such file");
  detail::ensure_vips_started();
  VipsRef in, flat, rgb, u8;
  in.img = vips_image_new_from_file(path.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  if (!in.img) throw Error(path.string() + ": cannot read the image: " + detail::take_vips_error());
  VipsImage* cur = in.img;
  if (vips_image_hasalpha(cur)) {
    VipsArrayDouble* white = vips_array_double_newv(1, 255.0);
    const int rc = vips_flatten(cur, &flat.img, "background", white, nullptr);
    vips_area_unref(VIPS_AREA(white));
    if (rc != 0) throw Error(path.string() + ": cannot flatten the alpha: " + detail::take_vips_error());
    cur = flat.img;
  }
  if (vips_colourspace(cur, &rgb.img, VIPS_INTERPRETATION_sRGB, nullptr) != 0 ||
      vips_cast(rgb.img, &u8.img, VIPS_FORMAT_UCHAR, nullptr) != 0)
    throw Error(path.string() + ": cannot convert the image to 8-bit RGB: " + detail::take_vips_error());
  if (vips_image_get_bands(u8.img) != 3)
    throw Error(path.string() + ": expected 3 colour bands after conversion, got " +
                std::to_string(vips_image_get_bands(u8.img)));
  size_t size = 0;
  void* mem = vips_image_write_to_memory(u8.img, &size);
  if (!mem) throw Error(path.string() + ": cannot decode the image: " + detail::take_vips_error());
  RgbImage out(vips_image_get_width(u8.img), vips_image_get_height(u8.img));
  std::copy_n(static_cast<const uint8_t*>(mem), std::min(size, out.pixels.size()), out.pixels.begin());
  g_free(mem);
  return out;
}

void write_tissue_overlay(const Slide& slide, const TissueMask& mask, const fs::path& out_png) {
  const GrayImage& m = mask.mask;
  write_tissue_overlay(read_shrunk(slide, mask.source_level, m.width, m.height, mask.downsample_x, mask.downsample_y),
                       mask, out_png);
}

void write_tissue_overlay(const RgbImage& view, const TissueMask& mask, const fs::path& out_png) {
  if (lower_extension(out_png) != ".png")
    throw UsageError("overlay " + out_png.string() + ": the overlay is a PNG; name it .png");
  const GrayImage& m = mask.mask;
  if (view.width != m.width || view.height != m.height)
    throw UsageError("overlay " + out_png.string() + ": the view is " + std::to_string(view.width) + "x" +
                     std::to_string(view.height) + " px but the mask is " + std::to_string(m.width) + "x" +
                     std::to_string(m.height));
  RgbImage rgb = view;
  constexpr double kAlpha = 0.35;
  constexpr uint8_t kTint[3] = {0, 200, 0}, kLine[3] = {0, 110, 0};
  for (int64_t y = 0; y < m.height; ++y)
    for (int64_t x = 0; x < m.width; ++x) {
      if (!m.at(x, y)) continue;
      uint8_t* p = rgb.at(x, y);
      const bool edge = x == 0 || y == 0 || x == m.width - 1 || y == m.height - 1 || !m.at(x - 1, y) ||
                        !m.at(x + 1, y) || !m.at(x, y - 1) || !m.at(x, y + 1);
      for (int c = 0; c < 3; ++c)
        p[c] = edge ? kLine[c] : static_cast<uint8_t>(std::lround((1 - kAlpha) * p[c] + kAlpha * kTint[c]));
    }
  save_pixels(rgb.pixels, rgb.width, rgb.height, 3, mask.mpp, out_png, false);
}

}  // namespace wsi
