// libtiff backend for plain tiled TIFFs (OpenSlide's generic-tiff) with a bounded cache of
// decoded tiles. It replaced libvips as the default for these files because libvips' TIFF loader
// caches about three rows of tiles per opened page, so memory grew with the slide's width; here
// the cache is a fixed number of bytes whatever the slide's size.
#include <tiffio.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tiff_handle.hpp"
#include "slide/pixel_reader.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace {

constexpr size_t kMaxLevels = 64;  // handle keys reserve 6 bits for the level
constexpr int kMaxDirectories = 256;
// Decoded tiles bigger than this are not a tiled slide's tiles; leave such files to libvips.
constexpr int64_t kMaxTileBytes = int64_t{64} << 20;

// Where a level's pixels are in the file and how they are stored.
struct LevelLayout {
  tdir_t dir = 0;  // IFD index in the main chain (libvips' "page", OpenSlide's level)
  int64_t width = 0, height = 0;
  int64_t tile_w = 0, tile_h = 0;
  int64_t tiles_across = 0;
  int bands = 0;            // 1 grey, 2 grey + alpha, 3 RGB, 4 RGB + alpha; 8 bits each, interleaved
  bool ycbcr_jpeg = false;  // libtiff's JPEG codec converts to RGB when told to
  double downsample = 1;
  int64_t tile_bytes() const { return tile_w * tile_h * bands; }
};

// libtiff handles are not thread-safe, so each thread opens its own, one per level (no
// directory switching); their messages() say why a read failed.
using Handle = TiffHandle;

// "D": load a directory's tile offsets only when a tile of it is read. "m": no memory map of the
// file; its touched pages would count as resident memory, growing with the slide's size.
constexpr const char* kReadMode = "rDm";

// The layout of the current directory, or nullopt when this backend does not decode it.
std::optional<LevelLayout> supported_layout(TIFF* t, tdir_t dir) {
  uint32_t w = 0, h = 0, tw = 0, th = 0;
  uint16_t spp = 1, bps = 1, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photometric = 0,
           compression = COMPRESSION_NONE;
  if (!TIFFIsTiled(t) || !TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h) ||
      !TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(t, TIFFTAG_TILELENGTH, &th) ||
      !TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric))
    return std::nullopt;
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
  uint16_t n_extra = 0;
  uint16_t* extra = nullptr;
  TIFFGetFieldDefaulted(t, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
  if (w == 0 || h == 0 || tw == 0 || th == 0 || bps != 8 || format != SAMPLEFORMAT_UINT || spp < 1 || spp > 4 ||
      (spp > 1 && planar != PLANARCONFIG_CONTIG) || !TIFFIsCODECConfigured(compression))
    return std::nullopt;
  // Alpha must be straight (what the compositing below assumes); premultiplied is left to libvips.
  if (n_extra > 1 || (n_extra == 1 && extra && extra[0] == EXTRASAMPLE_ASSOCALPHA)) return std::nullopt;
  const bool grey = photometric == PHOTOMETRIC_MINISBLACK && spp <= 2;
  const bool rgb = photometric == PHOTOMETRIC_RGB && spp >= 3;
  const bool ycbcr_jpeg = photometric == PHOTOMETRIC_YCBCR && spp == 3 && compression == COMPRESSION_JPEG;
  if (!grey && !rgb && !ycbcr_jpeg) return std::nullopt;
  LevelLayout l;
  l.dir = dir;
  l.width = w;
  l.height = h;
  l.tile_w = tw;
  l.tile_h = th;
  l.tiles_across = (l.width + l.tile_w - 1) / l.tile_w;
  l.bands = spp;
  l.ycbcr_jpeg = ycbcr_jpeg;
  if (l.tile_bytes() > kMaxTileBytes) return std::nullopt;
  return l;
}

// Decoded tiles, least recently used evicted first, bounded by bytes. Tiles are shared_ptr so a
// thread copying out of one is unaffected when another thread evicts it meanwhile.
class TileCache {
 public:
  using Tile = std::shared_ptr<const std::vector<uint8_t>>;

  explicit TileCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  Tile find(uint64_t key) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->tile;
  }

  void insert(uint64_t key, Tile tile) {
    const size_t bytes = tile->size();
    if (bytes > capacity_) return;
    std::lock_guard lock(mutex_);
    if (index_.count(key)) return;  // another thread decoded it too
    while (bytes_ + bytes > capacity_) {
      bytes_ -= lru_.back().tile->size();
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, std::move(tile)});
    index_.emplace(key, lru_.begin());
    bytes_ += bytes;
  }

 private:
  struct Entry {
    uint64_t key;
    Tile tile;
  };
  const size_t capacity_;
  std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

// Packs `n` pixels of `bands` interleaved 8-bit samples as RGB, alpha composited over white.
void to_rgb(const uint8_t* src, int64_t n, int bands, uint8_t* dst) {
  switch (bands) {
    case 3:
      std::copy_n(src, n * 3, dst);
      break;
    case 1:
      for (int64_t i = 0; i < n; ++i) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[i];
      break;
    case 2:
      for (int64_t i = 0; i < n; ++i) {
        const int a = src[2 * i + 1];
        dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] =
            static_cast<uint8_t>((src[2 * i] * a + 255 * (255 - a) + 127) / 255);
      }
      break;
    default:
      for (int64_t i = 0; i < n; ++i) {
        const int a = src[4 * i + 3];
        for (int c = 0; c < 3; ++c)
          dst[3 * i + c] = static_cast<uint8_t>((src[4 * i + c] * a + 255 * (255 - a) + 127) / 255);
      }
  }
}

class TiffTileReader final : public PixelReader {
 public:
  TiffTileReader(std::filesystem::path path, std::vector<LevelLayout> levels, size_t cache_bytes)
      : path_(std::move(path)), levels_(std::move(levels)), cache_(cache_bytes) {}

  std::string_view name() const override { return "libtiff"; }

  void read(const Region& region, uint8_t* rgb) const override {
    const LevelLayout& l = levels_[static_cast<size_t>(region.level)];
    // Level-k origin of a level-0 position: floor(x / downsample).
    const auto lx = static_cast<int64_t>(std::floor(static_cast<double>(region.x) / l.downsample));
    const auto ly = static_cast<int64_t>(std::floor(static_cast<double>(region.y) / l.downsample));
    std::fill(rgb, rgb + region.w * region.h * 3, uint8_t{255});
    const int64_t x0 = std::max<int64_t>(lx, 0), y0 = std::max<int64_t>(ly, 0);
    const int64_t x1 = std::min<int64_t>(lx + region.w, l.width), y1 = std::min<int64_t>(ly + region.h, l.height);
    if (x1 <= x0 || y1 <= y0) return;  // wholly outside: glass
    for (int64_t ty = y0 / l.tile_h; ty <= (y1 - 1) / l.tile_h; ++ty) {
      for (int64_t tx = x0 / l.tile_w; tx <= (x1 - 1) / l.tile_w; ++tx) {
        const TileCache::Tile tile = tile_at(region, tx, ty);
        const int64_t left = tx * l.tile_w, top = ty * l.tile_h;
        const int64_t cx0 = std::max(x0, left), cx1 = std::min(x1, left + l.tile_w);
        const int64_t cy0 = std::max(y0, top), cy1 = std::min(y1, top + l.tile_h);
        for (int64_t y = cy0; y < cy1; ++y) {
          const uint8_t* src = tile->data() + ((y - top) * l.tile_w + (cx0 - left)) * l.bands;
          to_rgb(src, cx1 - cx0, l.bands, rgb + ((y - ly) * region.w + (cx0 - lx)) * 3);
        }
      }
    }
  }

 private:
  TileCache::Tile tile_at(const Region& region, int64_t tx, int64_t ty) const {
    const LevelLayout& l = levels_[static_cast<size_t>(region.level)];
    const auto index = static_cast<uint64_t>(ty * l.tiles_across + tx);
    const uint64_t key = (static_cast<uint64_t>(region.level) << 56) | index;
    if (TileCache::Tile hit = cache_.find(key)) return hit;
    // Decoded outside the cache's lock; two threads missing the same tile both decode it.
    Handle& h = handle_for_this_thread(region);
    auto tile = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(l.tile_bytes()));
    const uint32_t t =
        TIFFComputeTile(h.get(), static_cast<uint32_t>(tx * l.tile_w), static_cast<uint32_t>(ty * l.tile_h), 0, 0);
    h.clear_messages();
    if (TIFFReadEncodedTile(h.get(), t, tile->data(), static_cast<tmsize_t>(tile->size())) < 0) {
      const std::string why = h.messages().empty() ? "libtiff cannot decode it" : h.messages();
      h.close();  // the codec may be left mid-tile; the next read reopens the file
      throw RegionReadError(path_, region,
                            "the tile at level-" + std::to_string(region.level) + " pixel (" +
                                std::to_string(tx * l.tile_w) + ", " + std::to_string(ty * l.tile_h) +
                                ") does not decode (" + why + "). The slide is damaged at this place; re-export it");
    }
    cache_.insert(key, tile);
    return tile;
  }

  // This thread's handle for the region's level, opened (or reopened after a failure) lazily.
  // Keys are never reused (a process-wide counter), so a finished reader's stale entries in a
  // thread's map are never looked up; the reader owns and closes the handles.
  Handle& handle_for_this_thread(const Region& region) const {
    thread_local std::unordered_map<uint64_t, Handle*> mine;
    const uint64_t key = id_ * kMaxLevels + static_cast<uint64_t>(region.level);
    Handle*& h = mine[key];
    if (!h) {
      std::lock_guard lock(mutex_);
      h = handles_.emplace_back(std::make_unique<Handle>()).get();
    }
    if (h->get()) return *h;
    const LevelLayout& l = levels_[static_cast<size_t>(region.level)];
    if (!h->open(path_, kReadMode) || !TIFFSetDirectory(h->get(), l.dir) ||
        (l.ycbcr_jpeg && !TIFFSetField(h->get(), TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB))) {
      const std::string why = h->messages().empty() ? "libtiff cannot open it" : h->messages();
      h->close();
      throw RegionReadError(path_, region,
                            "cannot reopen the file (" + why + "); check that it was not moved or changed meanwhile");
    }
    return *h;
  }

  static uint64_t next_id() {
    static std::atomic<uint64_t> n{1};
    return n++;
  }

  std::filesystem::path path_;
  std::vector<LevelLayout> levels_;
  mutable TileCache cache_;
  uint64_t id_ = next_id();
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<Handle>> handles_;
};

}  // namespace

std::unique_ptr<PixelReader> try_make_tiff_tile_reader(const std::filesystem::path& path,
                                                       const std::vector<LevelInfo>& levels, size_t cache_bytes) {
  if (levels.empty() || levels.size() > kMaxLevels) return nullptr;
  Handle probe;
  if (!probe.open(path, kReadMode)) return nullptr;
  // Every directory of the main chain, as libvips' pages: nullopt where this backend cannot decode it.
  std::vector<std::pair<LevelLayout, bool>> dirs;
  for (int i = 0; i < kMaxDirectories; ++i) {
    const auto dir = static_cast<tdir_t>(i);
    uint32_t w = 0, h = 0;
    TIFFGetField(probe.get(), TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(probe.get(), TIFFTAG_IMAGELENGTH, &h);
    const std::optional<LevelLayout> layout = supported_layout(probe.get(), dir);
    LevelLayout sized = layout.value_or(LevelLayout{});
    sized.width = w;
    sized.height = h;
    dirs.emplace_back(sized, layout.has_value());
    if (!TIFFReadDirectory(probe.get())) break;
  }
  // Each OpenSlide level is the first directory of its size (as in the libvips backend); if that
  // one has a layout this backend does not decode, the caller falls back to libvips.
  std::vector<LevelLayout> chosen;
  for (const LevelInfo& li : levels) {
    auto it = std::find_if(dirs.begin(), dirs.end(),
                           [&](const auto& d) { return d.first.width == li.width && d.first.height == li.height; });
    if (it == dirs.end() || !it->second) return nullptr;
    LevelLayout l = it->first;
    l.downsample = li.downsample;
    chosen.push_back(l);
  }
  return std::make_unique<TiffTileReader>(path, std::move(chosen), cache_bytes);
}

}  // namespace wsi::detail
