// wsi/heatmap_io.hpp — writing heatmaps of a slide as pyramidal TIFFs, and colouring them.
//
// A heatmap file (NAME.prob.tif: tumour probability; NAME.cam.tif: Grad-CAM saliency;
// NAME.overlay.tif: colour-mapped overlay) is a tiled BigTIFF. Level 0 is the file's only main
// directory (IFD); the coarser levels, each half the previous one (rounded up), are its SubIFDs
// (TIFFTAG_SUBIFD, NewSubfileType 1), largest first: the pyramid layout Bio-Formats (QuPath)
// documents. OpenSlide 3.4.1 (generic-tiff) and ASAP's TIFF reader follow the main chain only, so
// they see level 0 alone and scale it themselves (measured for OpenSlide; ASAP by its source).
// Every level carries XResolution / YResolution in pixels per centimetre (RESUNIT_CENTIMETER),
// so a viewer overlays the heatmap on its slide at the right physical scale even when the
// heatmap has fewer pixels than the slide.
//
// Tiles and levels, for OpenSlide 3.4.1: it decodes non-JPEG tiles through libtiff's
// TIFFRGBAImage, which (libtiff 4.5) draws a level narrower or shorter than one tile into a
// buffer of the wrong stride: garbage and transparency. So the tile side is the largest multiple
// of 16 (TIFF's rule) up to `tile` that fits level 0's shorter side, and the pyramid stops before
// a level would be smaller than one tile on either side. Level 0 itself must be at least 16
// pixels on each side for 3.4.1 to decode it; smaller images are written all the same.
//
// Frames and units: pixel (x, y) of level k covers level-0 pixels [2^k x, 2^k (x+1)) of THIS
// image (not of the slide; the heatmap's own mpp says how big they are). Level k's resolution tag
// is 10000 / (mpp * 2^k) pixels per cm: the physical size of a level-k pixel (the last column or
// row of an odd-sized level covers less, as the pixels that exist are all it averages).
//
// Memory is bounded whatever the image's height: rows arrive top to bottom (from a stitcher, say);
// a row of tiles of level 0 is compressed and written as soon as it is complete, and is then
// shrunk 2x2 into level 1's pending row of tiles, and so on down the pyramid in the same pass.
// Each level keeps one row of tiles (tile * level width * channels samples) and half a row of
// scratch. Because libtiff writes one directory at a time, levels 1.. are written meanwhile to
// temporary tiled TIFFs beside the output (same `.NAME.partial-*` naming as the output itself);
// finish() appends them as level 0's SubIFDs tile by tile (lossless compressions: the
// compressed tiles are copied as they are; JPEG: the temporary files are deflate-compressed, so
// each tile is JPEG-compressed once, when it is appended), then renames the output into place.
// Disk used meanwhile: the output plus levels 1.. once more (a third of level 0's pixels; for
// JPEG outputs deflate-compressed, so possibly more bytes than the JPEG output's share).
//
// Readers (tests/test_heatmap_io.cpp): OpenSlide 3.4.1, through its C API and python3-openslide,
// reads back every pixel of uint8 maps and RGB overlays; libtiff reads every level. ASAP's and
// Bio-Formats' rules (compression, layout) are checked against their source and documentation
// only. float32 maps keep exact values for analysis (libtiff, tifffile, ASAP); OpenSlide opens
// them (properties) but cannot decode float pixels (TIFFRGBAImage), so write uint8 for viewing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace wsi {

struct PyramidTiffOptions {
  enum class SampleType { u8, f32 };  // uint8 0..255, or IEEE float32 (SAMPLEFORMAT_IEEEFP)
  enum class Shrink { mean, max };    // how levels > 0 are made from the level above
  enum class Compression { none, deflate, jpeg };

  int64_t width = 0;   // level 0, pixels (>= 1, < 2^32)
  int64_t height = 0;  // level 0, pixels (>= 1, < 2^32)
  int channels = 1;    // 1 (PHOTOMETRIC_MINISBLACK) or 3 (RGB; YCbCr inside JPEG)
  SampleType sample = SampleType::u8;
  int tile = 256;    // largest tile side, a multiple of 16 (smaller images get smaller tiles: above)
  double mpp_x = 0;  // micrometres per level-0 pixel of THIS image, > 0
  double mpp_y = 0;
  std::string description;  // ImageDescription of every level (e.g. the slide and the model)
  // mean: the rounded mean of the 2x2 block (u8: (sum + n/2) / n); at an odd right or bottom edge
  //   the block has 1 or 2 pixels and only those are averaged. f32: NaN ("no data") pixels are
  //   left out of the mean; a block of NaNs gives NaN.
  // max: the largest of the pixels that exist (per channel; NaNs left out). For label-like maps,
  //   so that "tumour somewhere here" survives at every level.
  Shrink shrink = Shrink::mean;
  // deflate: lossless; u8 uses the horizontal-difference predictor, f32 no predictor (readers of
  // the floating-point predictor are rare). jpeg: u8 only, for RGB overlays (YCbCr 4:2:0).
  // deflate is written as compression 32946 (COMPRESSION_DEFLATE; ASAP does not accept Adobe's 8).
  Compression compression = Compression::deflate;
  int jpeg_quality = 90;  // 1..100, used by Compression::jpeg
};

// One pyramid level's size in pixels.
struct LevelSize {
  int64_t width = 0;
  int64_t height = 0;
  friend bool operator==(const LevelSize&, const LevelSize&) = default;
};

// The tile side PyramidTiffWriter uses: the largest multiple of 16 that is at most options.tile
// and at most level 0's width and height; 16 when level 0 is smaller than that.
int pyramid_tile(const PyramidTiffOptions& options);

// The levels PyramidTiffWriter writes for `options` (level 0 first): each is ceil(previous / 2)
// on both sides, as long as both sides are at least pyramid_tile(options).
std::vector<LevelSize> pyramid_levels(const PyramidTiffOptions& options);

// Streams a pyramidal tiled BigTIFF (see the top of this file). Usage:
//   PyramidTiffWriter w(path, options);
//   while (...) w.write_rows(rows, n);   // all `height` rows, top to bottom, any chunking
//   w.finish();                          // coarser levels appended, file renamed into place
// Nothing appears under `path` until finish() succeeds: destroyed before that (an exception, a
// cancelled run), the writer removes its temporary files and leaves no file under `path`.
// Edge tiles are padded by repeating the last column / row (cheaper to compress, no JPEG ringing);
// readers crop them to the level's size.
//
// Errors: ConfigError for unusable options (constructor); WriteError naming `path` when a file
// cannot be created or written (missing or unwritable directory, disk full), from whichever call
// hit it — after one, the writer only throws and should be destroyed; std::logic_error when rows
// are written past `height`, after finish(), or finish() is called before all rows arrived.
//
// Thread-safety: none; one thread drives a writer. Different writers are independent.
class PyramidTiffWriter {
 public:
  PyramidTiffWriter(std::filesystem::path path, PyramidTiffOptions options);
  ~PyramidTiffWriter();
  PyramidTiffWriter(const PyramidTiffWriter&) = delete;
  PyramidTiffWriter& operator=(const PyramidTiffWriter&) = delete;
  // Movable; a moved-from writer may only be destroyed (moving into a writer that holds an
  // unfinished file drops that file, as destroying it would).
  PyramidTiffWriter(PyramidTiffWriter&&) noexcept;
  PyramidTiffWriter& operator=(PyramidTiffWriter&&) noexcept;

  // `nrows` full rows of level 0, row-major, channels interleaved, no padding: sample c of pixel
  // (x, y) is at [((y - first) * width + x) * channels + c], of type uint8_t or float per
  // options.sample. Rows continue where the previous call stopped.
  void write_rows(const void* rows, int64_t nrows);

  // After all rows: writes the last partial tile rows, appends levels 1.. and renames the file
  // into place. Calling it again is a no-op.
  void finish();

  const std::filesystem::path& path() const;
  const PyramidTiffOptions& options() const;
  int64_t rows_written() const;  // level-0 rows received so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Colour map: matplotlib's "inferno" (perceptually uniform, luminance increasing from black-purple
// at 0 through red and orange to pale yellow at 1, readable in grey print and by colour-blind
// readers; "jet" and "turbo" are not monotone in luminance). 52 control points (every 5th entry of
// matplotlib's 256-entry table) interpolated linearly in sRGB.
//
// values: count values in 0..1 (clamped); NaN = no data -> white (255, 255, 255), like glass.
// rgb: count * 3 bytes, interleaved. `values` and `rgb` must not overlap.
void apply_colormap(const float* values, int64_t count, uint8_t* rgb);

// Where a heatmap is worth colouring over the slide: values >= kOverlayMinValue (the usual
// decision threshold of a tumour probability), so normal tissue keeps its own colours.
inline constexpr double kOverlayMinValue = 0.5;

// Overlay for viewing: out = (1 - alpha) * slide + alpha * inferno(value), rounded, per channel,
// where the value is valid and >= min_value; elsewhere (NaN, below min_value) out = slide,
// unchanged. alpha in 0..1 (clamped). slide_rgb and out_rgb: count * 3 bytes, interleaved; they
// may be the same buffer (blend in place).
void blend_overlay(const uint8_t* slide_rgb, const float* values, int64_t count, double alpha, uint8_t* out_rgb,
                   double min_value = kOverlayMinValue);

}  // namespace wsi
