// Streaming pyramidal BigTIFF writer (layout and memory bounds in wsi/heatmap_io.hpp).
//
// Each level owns a band: one row of tiles. Rows go into level 0's band; when a band is full (or
// holds the level's last row) its tiles are written and the band is shrunk 2x2 into the next
// level's band, which may fill and cascade in turn. Full bands have `tile` rows, an even number,
// so 2x2 blocks never straddle two bands; only a level's last band can have an odd row count.
#include <tiffio.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/pending_file.hpp"
#include "core/tiff_handle.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap_io.hpp"

namespace wsi {
namespace fs = std::filesystem;
using detail::PendingFile;
using Options = PyramidTiffOptions;
using Tiff = detail::TiffHandle;  // its messages: first_error()

namespace {

// Why a libtiff call failed: the system's reason when there is one (it says more), else libtiff's.
std::string cause(const Tiff& t, int err) {
  if (err != 0) return std::strerror(err);
  return t.first_error().empty() ? std::string("libtiff reported no reason") : t.first_error();
}

// The tags of one level. `compression` may differ from the options' (temporary files of JPEG
// pyramids are deflate); `fast` picks deflate's fastest level for those temporary files.
// `subifds`: how many levels follow level 0 as its SubIFDs (0 for the other levels and for
// temporary files).
bool set_tags(TIFF* t, const Options& o, const LevelSize& size, int level, int tile, Options::Compression compression,
              bool fast, uint16_t subifds) {
  const bool f32 = o.sample == Options::SampleType::f32;
  const bool jpeg = compression == Options::Compression::jpeg;
  const bool ycbcr = jpeg && o.channels == 3;
  uint16_t tiff_compression = COMPRESSION_NONE;
  // 32946, not Adobe's 8: the same zlib stream, and the code ASAP's TIFF reader accepts.
  if (compression == Options::Compression::deflate) tiff_compression = COMPRESSION_DEFLATE;
  if (jpeg) tiff_compression = COMPRESSION_JPEG;
  uint16_t photometric = o.channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
  if (ycbcr) photometric = PHOTOMETRIC_YCBCR;
  const double scale = std::ldexp(1.0, level);  // a level-k pixel is 2^k level-0 pixels wide
  bool ok =
      TIFFSetField(t, TIFFTAG_SUBFILETYPE, uint32_t{level > 0 ? FILETYPE_REDUCEDIMAGE : 0u}) &&
      TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(size.width)) &&
      TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(size.height)) &&
      TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(tile)) &&
      TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(tile)) &&
      TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(f32 ? 32 : 8)) &&
      TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(o.channels)) &&
      TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, static_cast<uint16_t>(f32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT)) &&
      TIFFSetField(t, TIFFTAG_PLANARCONFIG, uint16_t{PLANARCONFIG_CONTIG}) &&
      TIFFSetField(t, TIFFTAG_COMPRESSION, tiff_compression) && TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric) &&
      TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, uint16_t{RESUNIT_CENTIMETER}) &&
      TIFFSetField(t, TIFFTAG_XRESOLUTION, 10000.0 / (o.mpp_x * scale)) &&
      TIFFSetField(t, TIFFTAG_YRESOLUTION, 10000.0 / (o.mpp_y * scale)) &&
      TIFFSetField(t, TIFFTAG_SOFTWARE, "wsi-heatmap " WSI_VERSION);
  if (ok && !o.description.empty()) ok = TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, o.description.c_str());
  if (ok && subifds > 0) {
    // Placeholders: libtiff writes the next `subifds` directories as level 0's SubIFDs and fills
    // in their offsets.
    const std::vector<toff_t> offsets(subifds, 0);
    ok = TIFFSetField(t, TIFFTAG_SUBIFD, subifds, offsets.data());
  }
  if (ok && jpeg) {
    ok = TIFFSetField(t, TIFFTAG_JPEGQUALITY, o.jpeg_quality);
    // Set after the photometric and tile tags: libtiff recomputes the tile size from them here.
    if (ok && ycbcr) ok = TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
  }
  if (ok && compression == Options::Compression::deflate) {
    ok = TIFFSetField(t, TIFFTAG_PREDICTOR, static_cast<uint16_t>(f32 ? PREDICTOR_NONE : PREDICTOR_HORIZONTAL));
    if (ok && fast) ok = TIFFSetField(t, TIFFTAG_ZIPQUALITY, 1);
  }
  return ok;
}

// 2x2 shrink of `rows` rows of `width` pixels into ceil(rows/2) rows of ceil(width/2) pixels;
// blocks cut by the right or bottom edge use the pixels that exist.
template <typename T>
void shrink_band(const T* src, int64_t width, int64_t rows, int channels, Options::Shrink mode, T* dst) {
  const int64_t out_w = (width + 1) / 2, out_h = (rows + 1) / 2;
  const bool use_max = mode == Options::Shrink::max;
  for (int64_t oy = 0; oy < out_h; ++oy) {
    const int64_t y0 = 2 * oy, ny = std::min<int64_t>(2, rows - y0);
    for (int64_t ox = 0; ox < out_w; ++ox) {
      const int64_t x0 = 2 * ox, nx = std::min<int64_t>(2, width - x0);
      for (int c = 0; c < channels; ++c) {
        T* out = dst + (oy * out_w + ox) * channels + c;
        if constexpr (std::is_same_v<T, uint8_t>) {
          int sum = 0, best = 0;
          for (int64_t dy = 0; dy < ny; ++dy)
            for (int64_t dx = 0; dx < nx; ++dx) {
              const int v = src[((y0 + dy) * width + x0 + dx) * channels + c];
              sum += v;
              best = std::max(best, v);
            }
          const int n = static_cast<int>(nx * ny);
          *out = static_cast<uint8_t>(use_max ? best : (sum + n / 2) / n);
        } else {
          double sum = 0;
          int n = 0;
          float best = std::numeric_limits<float>::quiet_NaN();
          for (int64_t dy = 0; dy < ny; ++dy)
            for (int64_t dx = 0; dx < nx; ++dx) {
              const float v = src[((y0 + dy) * width + x0 + dx) * channels + c];
              if (std::isnan(v)) continue;
              sum += v;
              ++n;
              best = std::fmax(best, v);
            }
          *out = use_max ? best : n == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(sum / n);
        }
      }
    }
  }
}

struct Level {
  LevelSize size;
  int64_t band_top = 0;                  // this level's row at the top of the band
  int64_t band_rows = 0;                 // rows in the band
  std::vector<uint8_t> band;             // min(tile, height) rows
  std::vector<uint8_t> shrunk;           // the band shrunk 2x2, for the next level
  std::unique_ptr<PendingFile> scratch;  // levels > 0: their temporary TIFF (removed when dropped)
  std::unique_ptr<Tiff> tiff;            // levels > 0: that TIFF, open for writing
};

void validate(const fs::path& path, const Options& o) {
  const std::string where = "heatmap TIFF " + path.string() + ": ";
  constexpr int64_t kMaxSide = std::numeric_limits<uint32_t>::max();
  if (o.width < 1 || o.height < 1 || o.width > kMaxSide || o.height > kMaxSide)
    throw ConfigError(where + "size " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                      " is not 1..4294967295 on each side");
  if (o.channels != 1 && o.channels != 3)
    throw ConfigError(where + "channels must be 1 or 3, not " + std::to_string(o.channels));
  if (o.tile < 16 || o.tile % 16 != 0 || o.tile > 4096)
    throw ConfigError(where + "tile size must be a multiple of 16 between 16 and 4096, not " + std::to_string(o.tile));
  if (!(o.mpp_x > 0) || !(o.mpp_y > 0) || !std::isfinite(o.mpp_x) || !std::isfinite(o.mpp_y))
    throw ConfigError(where + "mpp must be positive (micrometres per pixel of the heatmap's level 0)");
  if (o.compression == Options::Compression::jpeg) {
    if (o.sample != Options::SampleType::u8)
      throw ConfigError(where + "JPEG needs 8-bit samples; use deflate for float32 maps");
    if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
      throw ConfigError(where + "JPEG quality must be between 1 and 100, not " + std::to_string(o.jpeg_quality));
  }
}

}  // namespace

int pyramid_tile(const PyramidTiffOptions& o) {
  const int64_t fit = std::min<int64_t>(o.tile, std::min(o.width, o.height)) / 16 * 16;
  return static_cast<int>(std::max<int64_t>(16, fit));
}

std::vector<LevelSize> pyramid_levels(const PyramidTiffOptions& o) {
  const int64_t tile = pyramid_tile(o);
  std::vector<LevelSize> levels{{o.width, o.height}};
  for (;;) {
    const LevelSize next{(levels.back().width + 1) / 2, (levels.back().height + 1) / 2};
    if (next.width < tile || next.height < tile) break;
    levels.push_back(next);
  }
  return levels;
}

struct PyramidTiffWriter::Impl {
  enum class State { writing, finished, failed };

  fs::path path;
  Options o;
  int tile = 0;  // pyramid_tile(o)
  size_t pixel_bytes = 0;
  int64_t rows_in = 0;
  State state = State::writing;
  // Files before handles: members die in reverse order, so handles close before files are removed.
  std::unique_ptr<PendingFile> out;
  std::unique_ptr<Tiff> main;
  std::vector<Level> levels;
  std::vector<uint8_t> tile_buf;

  [[noreturn]] void fail(const std::string& what, const Tiff& t, int err, bool maybe_full) {
    state = State::failed;
    throw WriteError(path, what + ": " + cause(t, err) + (maybe_full ? " (is the disk full?)" : ""));
  }

  Impl(fs::path p, Options opts) : path(std::move(p)), o(std::move(opts)) {
    validate(path, o);
    pixel_bytes = static_cast<size_t>(o.channels) * (o.sample == Options::SampleType::f32 ? 4u : 1u);
    out = std::make_unique<PendingFile>(path);  // WriteError when the directory is missing
    main = std::make_unique<Tiff>();
    tile = pyramid_tile(o);
    const std::vector<LevelSize> sizes = pyramid_levels(o);
    levels.resize(sizes.size());
    const auto side = static_cast<size_t>(tile);
    tile_buf.resize(side * side * pixel_bytes);
    for (size_t k = 0; k < sizes.size(); ++k) {
      Level& l = levels[k];
      l.size = sizes[k];
      const auto band_rows = static_cast<size_t>(std::min<int64_t>(tile, l.size.height));
      l.band.resize(band_rows * static_cast<size_t>(l.size.width) * pixel_bytes);
      if (k + 1 < sizes.size())
        l.shrunk.resize((band_rows + 1) / 2 * static_cast<size_t>(sizes[k + 1].width) * pixel_bytes);
    }
    open_for_writing(*main, out->tmp(), sizes[0], 0, o.compression, false, static_cast<uint16_t>(sizes.size() - 1));
    // JPEG tiles are compressed once, when appended; the temporary files are lossless.
    const bool jpeg = o.compression == Options::Compression::jpeg;
    for (size_t k = 1; k < levels.size(); ++k) {
      levels[k].scratch = std::make_unique<PendingFile>(path);
      levels[k].tiff = std::make_unique<Tiff>();
      open_for_writing(*levels[k].tiff, levels[k].scratch->tmp(), sizes[k], static_cast<int>(k),
                       jpeg ? Options::Compression::deflate : o.compression, jpeg, 0);
    }
  }

  void open_for_writing(Tiff& t, const fs::path& file, const LevelSize& size, int level,
                        Options::Compression compression, bool fast, uint16_t subifds) {
    if (!t.open(file, "w8")) {
      const std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
      fail("cannot create the file in " + dir + " (is the directory writable?)", t, errno, false);
    }
    if (!set_tags(t.get(), o, size, level, tile, compression, fast, subifds))
      fail("cannot set the TIFF tags of level " + std::to_string(level), t, 0, false);
  }

  // Writes the band of level k as one row of tiles, edge tiles padded by repeating the last pixel.
  void write_band_tiles(size_t k) {
    Level& l = levels[k];
    Tiff& t = k == 0 ? *main : *l.tiff;
    const auto side = static_cast<int64_t>(tile);
    const int64_t across = (l.size.width + side - 1) / side;
    const int64_t tile_row = l.band_top / side;
    const size_t band_row_bytes = static_cast<size_t>(l.size.width) * pixel_bytes;
    const size_t tile_row_bytes = static_cast<size_t>(side) * pixel_bytes;
    for (int64_t tx = 0; tx < across; ++tx) {
      const int64_t x0 = tx * side, n = std::min(side, l.size.width - x0);
      const size_t copy = static_cast<size_t>(n) * pixel_bytes;
      for (int64_t r = 0; r < side; ++r) {
        uint8_t* dst = tile_buf.data() + static_cast<size_t>(r) * tile_row_bytes;
        if (r >= l.band_rows) {
          std::memcpy(dst, dst - tile_row_bytes, tile_row_bytes);
          continue;
        }
        const uint8_t* src =
            l.band.data() + static_cast<size_t>(r) * band_row_bytes + static_cast<size_t>(x0) * pixel_bytes;
        std::memcpy(dst, src, copy);
        for (size_t b = copy; b < tile_row_bytes; b += pixel_bytes)
          std::memcpy(dst + b, dst + copy - pixel_bytes, pixel_bytes);
      }
      errno = 0;
      if (TIFFWriteEncodedTile(t.get(), static_cast<uint32_t>(tile_row * across + tx), tile_buf.data(),
                               static_cast<tmsize_t>(tile_buf.size())) < 0)
        fail("writing tiles of level " + std::to_string(k) + " failed", t, errno, true);
    }
  }

  // The band of level k is complete: write it, shrink it into level k + 1, empty it.
  void emit(size_t k) {
    Level& l = levels[k];
    write_band_tiles(k);
    if (k + 1 < levels.size()) {
      const int64_t rows = (l.band_rows + 1) / 2;
      if (o.sample == Options::SampleType::f32)
        shrink_band(reinterpret_cast<const float*>(l.band.data()), l.size.width, l.band_rows, o.channels, o.shrink,
                    reinterpret_cast<float*>(l.shrunk.data()));
      else
        shrink_band(l.band.data(), l.size.width, l.band_rows, o.channels, o.shrink, l.shrunk.data());
      push(k + 1, l.shrunk.data(), rows);
    }
    l.band_top += l.band_rows;
    l.band_rows = 0;
  }

  void push(size_t k, const uint8_t* rows, int64_t n) {
    Level& l = levels[k];
    const size_t row_bytes = static_cast<size_t>(l.size.width) * pixel_bytes;
    const auto capacity = static_cast<int64_t>(l.band.size() / row_bytes);
    while (n > 0) {
      const int64_t take = std::min(n, capacity - l.band_rows);
      std::memcpy(l.band.data() + static_cast<size_t>(l.band_rows) * row_bytes, rows,
                  static_cast<size_t>(take) * row_bytes);
      l.band_rows += take;
      rows += static_cast<size_t>(take) * row_bytes;
      n -= take;
      if (l.band_rows == capacity || l.band_top + l.band_rows == l.size.height) emit(k);
    }
  }

  // Appends level k's temporary TIFF to the output as its next directory (a SubIFD of level 0).
  void append_level(size_t k) {
    Level& l = levels[k];
    Tiff& src = *l.tiff;
    errno = 0;
    if (!TIFFFlush(src.get())) fail("writing level " + std::to_string(k) + " failed", src, errno, true);
    src.close();
    if (!src.open(l.scratch->tmp(), "r"))
      fail("cannot read back the temporary file of level " + std::to_string(k), src, errno, false);
    const bool reencode = o.compression == Options::Compression::jpeg;
    if (!set_tags(main->get(), o, l.size, static_cast<int>(k), tile, o.compression, false, 0))
      fail("cannot set the TIFF tags of level " + std::to_string(k), *main, 0, false);
    std::vector<uint8_t> raw;
    const uint32_t tiles = TIFFNumberOfTiles(src.get());
    for (uint32_t i = 0; i < tiles; ++i) {
      errno = 0;
      tmsize_t n = static_cast<tmsize_t>(tile_buf.size());
      if (reencode) {
        if (TIFFReadEncodedTile(src.get(), i, tile_buf.data(), n) < 0)
          fail("cannot read back the temporary file of level " + std::to_string(k), src, errno, false);
        errno = 0;
        if (TIFFWriteEncodedTile(main->get(), i, tile_buf.data(), n) < 0)
          fail("writing tiles of level " + std::to_string(k) + " failed", *main, errno, true);
      } else {
        raw.resize(static_cast<size_t>(TIFFGetStrileByteCount(src.get(), i)));
        n = TIFFReadRawTile(src.get(), i, raw.data(), static_cast<tmsize_t>(raw.size()));
        if (n < 0) fail("cannot read back the temporary file of level " + std::to_string(k), src, errno, false);
        errno = 0;
        if (TIFFWriteRawTile(main->get(), i, raw.data(), n) < 0)
          fail("writing tiles of level " + std::to_string(k) + " failed", *main, errno, true);
      }
    }
    errno = 0;
    if (!TIFFWriteDirectory(main->get()))
      fail("writing the directory of level " + std::to_string(k) + " failed", *main, errno, true);
    l.tiff.reset();
    l.scratch.reset();  // removes the temporary file
  }

  void finish() {
    errno = 0;
    if (!TIFFWriteDirectory(main->get())) fail("writing the directory of level 0 failed", *main, errno, true);
    for (size_t k = 1; k < levels.size(); ++k) append_level(k);
    main->close();
    out->commit();
    state = State::finished;
    std::vector<Level>().swap(levels);  // the bands are not needed while the caller keeps the writer
    std::vector<uint8_t>().swap(tile_buf);
  }
};

PyramidTiffWriter::PyramidTiffWriter(std::filesystem::path path, PyramidTiffOptions options)
    : impl_(std::make_unique<Impl>(std::move(path), std::move(options))) {}

PyramidTiffWriter::~PyramidTiffWriter() = default;
PyramidTiffWriter::PyramidTiffWriter(PyramidTiffWriter&&) noexcept = default;
PyramidTiffWriter& PyramidTiffWriter::operator=(PyramidTiffWriter&&) noexcept = default;

void PyramidTiffWriter::write_rows(const void* rows, int64_t nrows) {
  Impl& w = *impl_;
  if (w.state == Impl::State::finished) throw std::logic_error("PyramidTiffWriter::write_rows after finish()");
  if (w.state == Impl::State::failed) throw WriteError(w.path, "an earlier write failed; the file was not written");
  if (nrows < 0 || w.rows_in + nrows > w.o.height)
    throw std::logic_error("PyramidTiffWriter::write_rows: " + std::to_string(nrows) + " rows after " +
                           std::to_string(w.rows_in) + " of " + std::to_string(w.o.height));
  if (nrows == 0) return;
  w.rows_in += nrows;
  w.push(0, static_cast<const uint8_t*>(rows), nrows);
}

void PyramidTiffWriter::finish() {
  Impl& w = *impl_;
  if (w.state == Impl::State::finished) return;
  if (w.state == Impl::State::failed) throw WriteError(w.path, "an earlier write failed; the file was not written");
  if (w.rows_in != w.o.height)
    throw std::logic_error("PyramidTiffWriter::finish after " + std::to_string(w.rows_in) + " of " +
                           std::to_string(w.o.height) + " rows");
  w.finish();
}

const std::filesystem::path& PyramidTiffWriter::path() const { return impl_->path; }
const PyramidTiffOptions& PyramidTiffWriter::options() const { return impl_->o; }
int64_t PyramidTiffWriter::rows_written() const { return impl_->rows_in; }

}  // namespace wsi
