#include <vips/vips.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "core/vips.hpp"
#include "slide/pixel_reader.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace {

struct Page {
  VipsImage* image = nullptr;
  int bands = 0;
};

class VipsTiffReader final : public PixelReader {
 public:
  VipsTiffReader(std::filesystem::path path, std::vector<Page> pages, std::vector<double> downsamples)
      : path_(std::move(path)), pages_(std::move(pages)), downsamples_(std::move(downsamples)) {}

  ~VipsTiffReader() override {
    // No read can be in flight while the Slide is destroyed; free every thread's regions.
    for (VipsRegion* r : regions_) g_object_unref(r);
    for (const Page& p : pages_) g_object_unref(p.image);
  }

  std::string_view name() const override { return "libvips"; }

  void read(const Region& region, uint8_t* rgb) const override {
    const Page& page = pages_[static_cast<size_t>(region.level)];
    const double ds = downsamples_[static_cast<size_t>(region.level)];
    // Level-k origin of a level-0 position: floor(x / downsample).
    const auto lx = static_cast<int64_t>(std::floor(static_cast<double>(region.x) / ds));
    const auto ly = static_cast<int64_t>(std::floor(static_cast<double>(region.y) / ds));
    std::fill(rgb, rgb + region.w * region.h * 3, uint8_t{255});
    const int64_t x0 = std::max<int64_t>(lx, 0), y0 = std::max<int64_t>(ly, 0);
    const int64_t x1 = std::min<int64_t>(lx + region.w, page.image->Xsize);
    const int64_t y1 = std::min<int64_t>(ly + region.h, page.image->Ysize);
    if (x1 <= x0 || y1 <= y0) return;  // wholly outside: glass
    VipsRect rect{static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0), static_cast<int>(y1 - y0)};
    VipsRegion* vr = region_for_this_thread(region.level);
    if (vips_region_prepare(vr, &rect) != 0)
      throw RegionReadError(path_, region, take_vips_error() + ". The slide is damaged at this place; re-export it");
    const int bands = page.bands;
    for (int64_t y = y0; y < y1; ++y) {
      const auto* src = reinterpret_cast<const uint8_t*>(VIPS_REGION_ADDR(vr, static_cast<int>(x0), static_cast<int>(y)));
      uint8_t* dst = rgb + ((y - ly) * region.w + (x0 - lx)) * 3;
      const int64_t n = x1 - x0;
      switch (bands) {
        case 3: std::copy_n(src, n * 3, dst); break;
        case 1:
          for (int64_t i = 0; i < n; ++i) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[i];
          break;
        case 2:  // grey + alpha over white
          for (int64_t i = 0; i < n; ++i) {
            const int a = src[2 * i + 1];
            dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = static_cast<uint8_t>((src[2 * i] * a + 255 * (255 - a) + 127) / 255);
          }
          break;
        default:  // RGBA (straight alpha) over white
          for (int64_t i = 0; i < n; ++i) {
            const int a = src[4 * i + 3];
            for (int c = 0; c < 3; ++c)
              dst[3 * i + c] = static_cast<uint8_t>((src[4 * i + c] * a + 255 * (255 - a) + 127) / 255);
          }
      }
    }
  }

 private:
  // libvips regions are not thread-safe: each thread gets its own, per level. Keys are never
  // reused (a process-wide counter), so a finished reader's stale entries are never looked up.
  VipsRegion* region_for_this_thread(int level) const {
    thread_local std::unordered_map<uint64_t, VipsRegion*> mine;
    const uint64_t key = id_ * 64 + static_cast<uint64_t>(level);
    auto it = mine.find(key);
    if (it != mine.end()) return it->second;
    VipsRegion* r = vips_region_new(pages_[static_cast<size_t>(level)].image);
    {
      std::lock_guard lock(mutex_);
      regions_.push_back(r);
    }
    mine.emplace(key, r);
    return r;
  }

  static uint64_t next_id() {
    static std::atomic<uint64_t> n{1};
    return n++;
  }

  std::filesystem::path path_;
  std::vector<Page> pages_;
  std::vector<double> downsamples_;
  uint64_t id_ = next_id();
  mutable std::mutex mutex_;
  mutable std::vector<VipsRegion*> regions_;
};

}  // namespace

std::unique_ptr<PixelReader> try_make_vips_tiff_reader(const std::filesystem::path& path,
                                                       const std::vector<LevelInfo>& levels) {
  if (levels.size() > 64) return nullptr;
  ensure_vips_started();
  std::vector<Page> all;
  auto release = [&] {
    for (const Page& p : all) g_object_unref(p.image);
  };
  VipsImage* first = vips_image_new_from_file(path.c_str(), "access", VIPS_ACCESS_RANDOM, nullptr);
  if (!first) {
    take_vips_error();
    return nullptr;
  }
  const int n_pages = std::max(1, vips_image_get_n_pages(first));
  g_object_unref(first);
  for (int i = 0; i < n_pages && i < 256; ++i) {
    VipsImage* img = vips_image_new_from_file(path.c_str(), "page", i, "access", VIPS_ACCESS_RANDOM, nullptr);
    if (!img) {
      take_vips_error();
      continue;
    }
    all.push_back(Page{img, img->Bands});
  }
  // Match each OpenSlide level to the TIFF page of the same size.
  std::vector<Page> pages;
  for (const LevelInfo& l : levels) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Page& p) {
      return p.image->Xsize == l.width && p.image->Ysize == l.height && p.image->BandFmt == VIPS_FORMAT_UCHAR &&
             p.bands >= 1 && p.bands <= 4;
    });
    if (it == all.end()) {
      release();
      return nullptr;
    }
    g_object_ref(it->image);
    pages.push_back(*it);
  }
  release();
  std::vector<double> ds;
  for (const LevelInfo& l : levels) ds.push_back(l.downsample);
  return std::make_unique<VipsTiffReader>(path, std::move(pages), std::move(ds));
}

}  // namespace wsi::detail
