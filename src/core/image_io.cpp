#include "wsi/image_io.hpp"

#include <tiffio.h>
#include <vips/vips.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "core/pending_file.hpp"
#include "core/tiff_handle.hpp"
#include "core/vips.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

enum class FileKind { tiff, png, jpeg, other };

FileKind sniff(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw UsageError(path.string() + ": no such file; check the path");
  if (fs::is_directory(st)) throw UsageError(path.string() + ": is a directory, not an image file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw ConfigError(path.string() + ": cannot read the file: " + ec.message());
  if (size == 0)
    throw ConfigError(path.string() + ": the file is empty (0 bytes); it was probably cut short while copying");
  unsigned char b[4] = {0, 0, 0, 0};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(b), sizeof b);
  if (!in.good() && in.gcount() == 0) throw ConfigError(path.string() + ": cannot read the file");
  if ((b[0] == 'I' && b[1] == 'I' && (b[2] == 42 || b[2] == 43) && b[3] == 0) ||
      (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && (b[3] == 42 || b[3] == 43)))
    return FileKind::tiff;
  if (b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') return FileKind::png;
  if (b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FileKind::jpeg;
  return FileKind::other;
}

void check_pixels(const fs::path& path, int64_t w, int64_t h) {
  if (w < 1 || h < 1)
    throw ConfigError(path.string() + ": the image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) +
                      ")");
  if (w * h > kMaxImagePixels)
    throw ConfigError(path.string() + ": " + std::to_string(w) + "x" + std::to_string(h) +
                      " px is more than predict decodes at once (16384x16384); for a whole-slide image run the "
                      "heatmap: wsi-heatmap SLIDE -o DIR");
}

std::string tiff_reason(const std::string& err) { return err.empty() ? std::string() : " (libtiff: " + err + ")"; }

// How a TIFF is read: libtiff's RGBA interface for the 8-bit kinds it gives as stored, libvips
// for alpha and 16-bit samples; the rest is refused here.
enum class TiffRoute { rgba, vips };

TiffRoute tiff_route(TIFF* t, const fs::path& path) {
  uint16_t bps = 1, spp = 1, format = SAMPLEFORMAT_UINT, photometric = 0xFFFF, extra = 0;
  uint16_t* extra_types = nullptr;
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
  const bool has_photometric = TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric) != 0;
  const std::string p = path.string() + ": ";
  if (format == SAMPLEFORMAT_IEEEFP || format == SAMPLEFORMAT_INT || format == SAMPLEFORMAT_COMPLEXINT ||
      format == SAMPLEFORMAT_COMPLEXIEEEFP)
    throw ConfigError(p + "a TIFF of " + (format == SAMPLEFORMAT_INT ? "signed" : "floating-point") + " " +
                      std::to_string(bps) + "-bit samples; convert it to 8-bit RGB (e.g. PNG) first");
  if (has_photometric && photometric == PHOTOMETRIC_SEPARATED)
    throw ConfigError(p +
                      "a CMYK TIFF; convert it to RGB with its colour profile first (e.g. `vips icc_transform IN "
                      "OUT.png srgb`)");
  if (has_photometric && photometric != PHOTOMETRIC_MINISWHITE && photometric != PHOTOMETRIC_MINISBLACK &&
      photometric != PHOTOMETRIC_RGB && photometric != PHOTOMETRIC_PALETTE && photometric != PHOTOMETRIC_YCBCR)
    throw ConfigError(p + "a TIFF in colour space " + std::to_string(photometric) +
                      " (TIFF Photometric tag; e.g. CIE Lab); convert it to RGB (e.g. PNG) first");
  if (bps != 1 && bps != 2 && bps != 4 && bps != 8 && bps != 16)
    throw ConfigError(p + "a TIFF of " + std::to_string(bps) + "-bit samples; convert it to 8-bit RGB first");
  if (bps <= 8 && extra == 0) {
    char emsg[1024] = "";
    if (!TIFFRGBAImageOK(t, emsg))
      throw ConfigError(p + "libtiff cannot decode this TIFF (" + std::string(emsg) + "); convert it to PNG first");
    return TiffRoute::rgba;
  }
  return TiffRoute::vips;  // alpha or other extra samples, 16-bit samples
}

RgbImage read_tiff_rgba(const detail::TiffHandle& tiff, const fs::path& path) {
  TIFF* t = tiff.get();
  uint32_t w = 0, h = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  check_pixels(path, w, h);
  std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
  if (!TIFFReadRGBAImageOriented(t, w, h, raster.data(), ORIENTATION_TOPLEFT, 1))
    throw ConfigError(path.string() + ": cannot decode the TIFF; it is damaged or cut short" +
                      tiff_reason(tiff.first_error_text()));
  RgbImage img(w, h);
  for (size_t k = 0; k < raster.size(); ++k) {
    img.pixels[3 * k] = static_cast<uint8_t>(TIFFGetR(raster[k]));
    img.pixels[3 * k + 1] = static_cast<uint8_t>(TIFFGetG(raster[k]));
    img.pixels[3 * k + 2] = static_cast<uint8_t>(TIFFGetB(raster[k]));
  }
  return img;
}

struct Unref {
  VipsImage* v = nullptr;
  ~Unref() {
    if (v) g_object_unref(v);
  }
};

const char* interpretation_name(VipsInterpretation i) {
  const char* n = vips_enum_nick(VIPS_TYPE_INTERPRETATION, static_cast<int>(i));
  return n ? n : "unknown";
}

RgbImage read_with_vips(const fs::path& path, FileKind kind) {
  detail::ensure_vips_started();
  Unref in;
  // Truncated files fail instead of decoding as grey (libvips' default only warns).
  const char* file = path.c_str();
  const int rc = kind == FileKind::png    ? vips_pngload(file, &in.v, "fail_on", VIPS_FAIL_ON_TRUNCATED, nullptr)
                 : kind == FileKind::jpeg ? vips_jpegload(file, &in.v, "fail_on", VIPS_FAIL_ON_TRUNCATED, nullptr)
                                          : vips_tiffload(file, &in.v, "fail_on", VIPS_FAIL_ON_TRUNCATED, nullptr);
  const char* what = kind == FileKind::png ? "PNG" : kind == FileKind::jpeg ? "JPEG" : "TIFF";
  if (rc != 0)
    throw ConfigError(path.string() + ": cannot read as a " + what + " (" + detail::take_vips_error() +
                      "); it is damaged or not an image");
  const int64_t w = vips_image_get_width(in.v), h = vips_image_get_height(in.v);
  const int bands = vips_image_get_bands(in.v);
  const VipsBandFormat format = vips_image_get_format(in.v);
  const VipsInterpretation interp = vips_image_get_interpretation(in.v);
  check_pixels(path, w, h);
  const std::string p = path.string() + ": ";
  if (format != VIPS_FORMAT_UCHAR && format != VIPS_FORMAT_USHORT)
    throw ConfigError(p + "samples of type " + vips_enum_nick(VIPS_TYPE_BAND_FORMAT, format) +
                      "; predict reads 8- and 16-bit images: convert it to 8-bit RGB first");
  switch (interp) {
    case VIPS_INTERPRETATION_MULTIBAND:
    case VIPS_INTERPRETATION_B_W:
    case VIPS_INTERPRETATION_GREY16:
    case VIPS_INTERPRETATION_sRGB:
    case VIPS_INTERPRETATION_RGB:
    case VIPS_INTERPRETATION_RGB16:
      break;
    case VIPS_INTERPRETATION_CMYK:
      throw ConfigError(p + "a CMYK " + what +
                        "; convert it to RGB with its colour profile first (e.g. `vips "
                        "icc_transform IN OUT.png srgb`)");
    default:
      throw ConfigError(p + "a " + what + " in colour space " + interpretation_name(interp) +
                        "; convert it to RGB first");
  }
  if (bands < 1 || bands > 4)
    throw ConfigError(p + std::to_string(bands) + " bands; predict reads grey, grey + alpha, RGB and RGB + alpha");
  size_t size = 0;
  void* mem = vips_image_write_to_memory(in.v, &size);
  if (!mem)
    throw ConfigError(p + "cannot decode the " + what + " (" + detail::take_vips_error() +
                      "); it is damaged or cut short");
  struct Free {
    void* m;
    ~Free() { g_free(m); }
  } free_mem{mem};
  const bool grey = bands <= 2;
  const size_t n = static_cast<size_t>(w * h);
  RgbImage img(w, h);
  const auto put = [&](auto sample) {
    for (size_t k = 0; k < n; ++k)
      for (size_t c = 0; c < 3; ++c) img.pixels[3 * k + c] = sample(k * static_cast<size_t>(bands) + (grey ? 0 : c));
  };
  if (format == VIPS_FORMAT_UCHAR) {
    const auto* s = static_cast<const uint8_t*>(mem);
    put([s](size_t i) { return s[i]; });
  } else {
    // round(v / 257): 8-bit values widened as v * 257 come back exactly.
    const auto* s = static_cast<const uint16_t*>(mem);
    put([s](size_t i) { return static_cast<uint8_t>((2u * s[i] + 257u) / 514u); });
  }
  return img;
}

}  // namespace

RgbImage read_image(const fs::path& path) {
  const FileKind kind = sniff(path);
  if (kind == FileKind::other)
    throw ConfigError(path.string() + ": not a TIFF, PNG or JPEG image (by its first bytes); convert it to PNG first");
  if (kind != FileKind::tiff) return read_with_vips(path, kind);
  detail::TiffHandle t;
  if (!t.open(path, "r"))
    throw ConfigError(path.string() + ": cannot read as a TIFF; it is damaged or cut short" +
                      tiff_reason(t.first_error_text()));
  if (tiff_route(t.get(), path) == TiffRoute::rgba) return read_tiff_rgba(t, path);
  t.close();
  return read_with_vips(path, kind);
}

void write_png(const RgbImage& image, const fs::path& out) {
  detail::ensure_vips_started();
  VipsImage* v = vips_image_new_from_memory(image.pixels.data(), image.pixels.size(), static_cast<int>(image.width),
                                            static_cast<int>(image.height), 3, VIPS_FORMAT_UCHAR);
  if (!v) throw WriteError(out, "cannot wrap the image: " + detail::take_vips_error());
  Unref unref{v};
  detail::save_through_target(out, [&](VipsTarget* t) { return vips_pngsave_target(v, t, "compression", 6, nullptr); });
}

void write_npy(const float* values, int64_t height, int64_t width, const fs::path& out) {
  // NPY 1.0: magic, version, little-endian uint16 header length, then a Python dict literal
  // padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes.
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(height) + ", " +
                     std::to_string(width) + "), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  const auto header_len = static_cast<uint16_t>(dict.size());
  std::string head("\x93NUMPY\x01\x00", 8);
  head += static_cast<char>(header_len & 0xFF);
  head += static_cast<char>(header_len >> 8);
  head += dict;
  const size_t n = static_cast<size_t>(height * width);
  std::vector<uint32_t> words(n);
  std::memcpy(words.data(), values, n * sizeof(float));
  if constexpr (std::endian::native == std::endian::big)
    for (auto& u : words) u = (u >> 24) | ((u >> 8) & 0xFF00u) | ((u << 8) & 0xFF0000u) | (u << 24);
  detail::PendingFile pending(out);
  {
    std::ofstream f(pending.tmp(), std::ios::binary);
    if (!f.is_open()) throw WriteError(out, std::string("cannot create the file: ") + std::strerror(errno));
    f.write(head.data(), static_cast<std::streamsize>(head.size()));
    f.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(n * sizeof(float)));
    f.flush();
    if (!f) throw WriteError(out, "writing failed (is the disk full?)");
  }
  pending.commit();
}

void blend_cam(const uint8_t* rgb, const float* cam, int64_t pixels, uint8_t* out) {
  for (int64_t i = 0; i < pixels; ++i) {
    const uint8_t* p = rgb + 3 * i;
    uint8_t* q = out + 3 * i;
    const float a = 0.6f * cam[i];
    q[0] = static_cast<uint8_t>(std::lround(p[0] * (1 - a) + 255 * a));
    q[1] = static_cast<uint8_t>(std::lround(p[1] * (1 - a)));
    q[2] = static_cast<uint8_t>(std::lround(p[2] * (1 - a)));
  }
}

RgbImage patch_beside_cam(const uint8_t* rgb, const float* cam, int side) {
  const int64_t P = side;
  RgbImage img(2 * P + 2, P);
  std::fill(img.pixels.begin(), img.pixels.end(), uint8_t{255});
  std::vector<uint8_t> blended(static_cast<size_t>(P * P * 3));
  blend_cam(rgb, cam, P * P, blended.data());
  for (int64_t y = 0; y < P; ++y) {
    std::copy_n(rgb + y * P * 3, P * 3, img.at(0, y));
    std::copy_n(blended.data() + y * P * 3, P * 3, img.at(P + 2, y));
  }
  return img;
}

}  // namespace wsi
