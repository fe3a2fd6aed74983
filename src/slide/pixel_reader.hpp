// Private: the backends that decode a Slide's pixels. OpenSlide reads every format; for plain
// tiled TIFFs (vendor generic-tiff) libvips decodes directly, because Debian's OpenSlide 3.4.1
// with libtiff 4.5 decodes non-JPEG levels smaller than one tile wrongly (boxes.tiff levels 2-3
// come back shifted or as noise) and because libvips reads small regions several times faster
// (benchmarks/bench_slide_read).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "wsi/region.hpp"
#include "wsi/slide.hpp"

typedef struct _openslide openslide_t;

namespace wsi::detail {

class PixelReader {
 public:
  virtual ~PixelReader() = default;
  // Reads `region` (level-0 origin, level-k size) as packed RGB over white. Thread-safe.
  virtual void read(const Region& region, uint8_t* rgb) const = 0;
  virtual std::string_view name() const = 0;
};

std::unique_ptr<PixelReader> make_openslide_reader(openslide_t* osr, const std::filesystem::path& path);

// nullptr when libvips cannot serve exactly the levels OpenSlide reported (then use OpenSlide).
std::unique_ptr<PixelReader> try_make_vips_tiff_reader(const std::filesystem::path& path,
                                                       const std::vector<LevelInfo>& levels);

}  // namespace wsi::detail
