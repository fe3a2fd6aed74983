// wsi/image_io.hpp — reading patch images, and small outputs for people and scripts (galleries,
// Grad-CAM overlays, float arrays).
//
// Frames and units: images are wsi::RgbImage (8-bit RGB, row-major, top-left origin, see
// region.hpp); a CAM is `side * side` float32 values in 0..1, pixel (x, y) at cam[y * side + x].
// Thread-safety: every function here is reentrant (no shared state besides libvips' start-up).
#pragma once

#include <cstdint>
#include <filesystem>

#include "wsi/region.hpp"

namespace wsi {

// Largest image read_image() decodes (pixels, width x height): 2^28, a 16384² image, 768 MiB as
// RGB. Anything larger is a whole-slide image, which the heatmap reads by regions instead.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

// Decodes a TIFF (striped or tiled, any compression libtiff reads), PNG or JPEG file, recognised
// by its first bytes (not its name), into 8-bit RGB with the samples as stored: no colour
// management (ICC profiles and PNG gamma are ignored) and no EXIF rotation.
//   * 8-bit TIFFs without extra samples (RGB, grey, palette, YCbCr/JPEG; Kaggle's and PCam's
//     patches) go through libtiff's RGBA interface (TIFFReadRGBAImageOriented, top-left), which
//     the Kaggle patch-set reader (dataset.hpp) shares, so both give the same pixels.
//   * Other TIFFs, PNG and JPEG go through libvips: grey is expanded to R = G = B; an alpha band
//     is dropped (the stored colour is kept, not blended against a background); a palette gives
//     its colours; 16-bit samples become round(v / 257) (the exact inverse of 8 -> 16 bit v * 257).
//   * Refused, with one line naming the file and what to do: CMYK, Lab and other colour spaces,
//     float or signed samples, more than 4 bands, a decoding error or a truncated file, and
//     images above kMaxImagePixels.
// Throws UsageError (no such file, a directory) or ConfigError (not an image, cannot decode, an
// unsupported kind); messages start with the path.
RgbImage read_image(const std::filesystem::path& path);

// Writes `image` as PNG under a temporary name, renamed when complete. Throws WriteError.
void write_png(const RgbImage& image, const std::filesystem::path& out);

// Writes `height * width` float32 values (row-major) as a NumPy .npy file: format version 1.0,
// dtype '<f4' (little-endian), C order, shape (height, width); numpy.load reads it. Written
// under a temporary name, renamed when complete. Throws WriteError.
void write_npy(const float* values, int64_t height, int64_t width, const std::filesystem::path& out);

// Blends a CAM into a patch in red: out = p * (1 - a) + (255, 0, 0) * a with a = 0.6 * cam,
// rounded, for `pixels` RGB pixels (cam values 0..1). The gallery's and predict's overlays.
void blend_cam(const uint8_t* rgb, const float* cam, int64_t pixels, uint8_t* out);

// A patch (side² RGB) and, 2 white pixels to its right, the same patch with its CAM blended in
// (blend_cam): a (2 * side + 2) x side image.
RgbImage patch_beside_cam(const uint8_t* rgb, const float* cam, int side);

}  // namespace wsi
