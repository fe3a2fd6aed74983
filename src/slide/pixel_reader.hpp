// Private: the backends that decode a Slide's pixels. OpenSlide reads every format; plain tiled
// TIFFs (vendor generic-tiff) are decoded directly, because Debian's OpenSlide 3.4.1 with libtiff
// 4.5 decodes non-JPEG levels smaller than one tile wrongly (boxes.tiff levels 2-3 come back
// shifted or as noise) and because reading small regions directly is several times faster
// (benchmarks/bench_slide_read). The libtiff backend is the default for them: its tile cache is
// a fixed size, while libvips' TIFF loader caches ~3 rows of tiles per level, so its memory grows
// with the slide's width. libvips remains the fallback for layouts the libtiff backend does not
// decode, and can be chosen with WSI_PIXEL_BACKEND=libvips (see slide.cpp).
#pragma once

#include <cstddef>
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

// Bytes of decoded tiles the libtiff backend keeps per open slide: a constant, whatever the
// slide's size (32 MiB holds ~170 RGB tiles of 256², ~42 of 512²).
inline constexpr size_t kTiffTileCacheBytes = size_t{32} << 20;

// Decodes with libtiff: one handle per thread and level, a shared LRU cache of decoded tiles of
// at most `cache_bytes`. Handles 8-bit tiled directories with 1 (grey), 2 (grey + straight alpha),
// 3 (RGB, or JPEG YCbCr) or 4 (RGB + straight alpha) interleaved samples in any compression
// libtiff decodes; nullptr when a level's directory is anything else (then use libvips). A tile
// that does not decode throws RegionReadError for reads touching it; other tiles still read.
std::unique_ptr<PixelReader> try_make_tiff_tile_reader(const std::filesystem::path& path,
                                                       const std::vector<LevelInfo>& levels,
                                                       size_t cache_bytes = kTiffTileCacheBytes);

// nullptr when libvips cannot serve exactly the levels OpenSlide reported (then use OpenSlide).
std::unique_ptr<PixelReader> try_make_vips_tiff_reader(const std::filesystem::path& path,
                                                       const std::vector<LevelInfo>& levels);

}  // namespace wsi::detail
