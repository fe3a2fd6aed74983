// Reading heatmap TIFFs back the way viewers do, for the suites that check what a viewer shows:
// libtiff (every pyramid level: level 0 is the main directory, level k its SubIFD k - 1),
// OpenSlide 3.4.1's C API (openslide_read_region over each level it lists) and python3-openslide
// (/usr/bin/python3: read_region over each level, and json.loads of the ImageDescription).
#pragma once

#include <gtest/gtest.h>
#include <openslide.h>
#include <tiffio.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace wsi::test {

// One pyramid level read with libtiff: its tags and its pixels (cropped to the image).
struct TiffLevel {
  uint32_t width = 0, height = 0, tile_w = 0, tile_h = 0, subfiletype = 0;
  uint16_t spp = 0, bps = 0, format = 0, photometric = 0, compression = 0, planar = 0, resunit = 0;
  float xres = 0, yres = 0;
  std::string description, software;
  std::vector<uint8_t> bytes;  // width * height * spp * bps/8, interleaved

  template <typename T>
  T at(int64_t x, int64_t y, int c = 0) const {
    T v;
    std::memcpy(&v, bytes.data() + ((y * width + x) * spp + c) * sizeof(T), sizeof(T));
    return v;
  }
};

struct TiffHandle {
  TIFF* t = nullptr;
  explicit TiffHandle(const std::filesystem::path& p) : t(TIFFOpen(p.c_str(), "r")) {}
  ~TiffHandle() {
    if (t) TIFFClose(t);
  }
  TiffHandle(const TiffHandle&) = delete;
  TiffHandle& operator=(const TiffHandle&) = delete;
  // The SubIFD offsets of the current directory (empty without the tag).
  std::vector<toff_t> subifds() const {
    uint16_t n = 0;
    toff_t* offsets = nullptr;
    if (!TIFFGetField(t, TIFFTAG_SUBIFD, &n, &offsets) || !offsets) return {};
    return std::vector<toff_t>(offsets, offsets + n);
  }
};

// Directories in the main IFD chain (what OpenSlide and ASAP list as levels).
inline int tiff_main_directories(const std::filesystem::path& p) {
  TiffHandle f(p);
  return f.t ? TIFFNumberOfDirectories(f.t) : -1;
}

// Level 0 plus its SubIFDs (what Bio-Formats lists as resolutions).
inline int tiff_level_count(const std::filesystem::path& p) {
  TiffHandle f(p);
  return f.t ? 1 + static_cast<int>(f.subifds().size()) : -1;
}

inline TiffLevel read_tiff_level(const std::filesystem::path& p, int level) {
  TiffHandle f(p);
  TiffLevel d;
  if (!f.t) {
    ADD_FAILURE() << "libtiff cannot open " << p;
    return d;
  }
  if (level > 0) {
    const std::vector<toff_t> sub = f.subifds();
    if (static_cast<size_t>(level) > sub.size() || !TIFFSetSubDirectory(f.t, sub[static_cast<size_t>(level - 1)])) {
      ADD_FAILURE() << "no SubIFD for level " << level << " in " << p;
      return d;
    }
  }
  TIFF* t = f.t;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &d.width);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &d.height);
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &d.tile_w);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &d.tile_h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SUBFILETYPE, &d.subfiletype);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &d.spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &d.bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &d.format);
  TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &d.photometric);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &d.compression);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &d.planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &d.resunit);
  TIFFGetField(t, TIFFTAG_XRESOLUTION, &d.xres);
  TIFFGetField(t, TIFFTAG_YRESOLUTION, &d.yres);
  const char* s = nullptr;
  if (TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &s) && s) d.description = s;
  if (TIFFGetField(t, TIFFTAG_SOFTWARE, &s) && s) d.software = s;
  if (!TIFFIsTiled(t) || d.tile_w == 0 || d.tile_h == 0) {
    ADD_FAILURE() << "level " << level << " of " << p << " is not tiled";
    return d;
  }
  if (d.photometric == PHOTOMETRIC_YCBCR) TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
  const size_t px = size_t{d.spp} * d.bps / 8;
  d.bytes.resize(size_t{d.width} * d.height * px);
  std::vector<uint8_t> tile(size_t{d.tile_w} * d.tile_h * px);
  for (uint32_t ty = 0; ty < d.height; ty += d.tile_h)
    for (uint32_t tx = 0; tx < d.width; tx += d.tile_w) {
      if (TIFFReadEncodedTile(t, TIFFComputeTile(t, tx, ty, 0, 0), tile.data(), static_cast<tmsize_t>(tile.size())) <
          0) {
        ADD_FAILURE() << "cannot read tile " << tx << "," << ty << " of level " << level;
        return d;
      }
      const uint32_t n = std::min(d.tile_w, d.width - tx);
      for (uint32_t y = ty; y < std::min(ty + d.tile_h, d.height); ++y)
        std::memcpy(d.bytes.data() + (size_t{y} * d.width + tx) * px, tile.data() + size_t{y - ty} * d.tile_w * px,
                    n * px);
    }
  return d;
}

// Reference 2x2 shrink of the pixels that exist (what the header promises).
inline std::vector<uint8_t> ref_shrink_u8(const std::vector<uint8_t>& src, int64_t w, int64_t h, int ch, bool use_max) {
  const int64_t ow = (w + 1) / 2, oh = (h + 1) / 2;
  std::vector<uint8_t> out(static_cast<size_t>(ow * oh * ch));
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x)
      for (int c = 0; c < ch; ++c) {
        int sum = 0, n = 0, best = 0;
        for (int64_t yy = 2 * y; yy < std::min(2 * y + 2, h); ++yy)
          for (int64_t xx = 2 * x; xx < std::min(2 * x + 2, w); ++xx) {
            const int v = src[static_cast<size_t>((yy * w + xx) * ch + c)];
            sum += v;
            best = std::max(best, v);
            ++n;
          }
        out[static_cast<size_t>((y * ow + x) * ch + c)] =
            static_cast<uint8_t>(use_max ? best : static_cast<int>(std::lround(double(sum) / n)));
      }
  return out;
}

// One level as a viewer got it from OpenSlide: width * height pixels, 0xAARRGGBB.
struct ViewerLevel {
  int64_t width = 0, height = 0;
  std::vector<uint32_t> argb;
};

// Every level OpenSlide's C API lists, each read whole with openslide_read_region.
inline std::vector<ViewerLevel> openslide_c_levels(const std::filesystem::path& p) {
  std::vector<ViewerLevel> levels;
  openslide_t* o = openslide_open(p.c_str());
  if (!o) {
    ADD_FAILURE() << "OpenSlide does not recognise " << p;
    return levels;
  }
  if (const char* e = openslide_get_error(o)) {
    ADD_FAILURE() << p << ": " << e;
    openslide_close(o);
    return levels;
  }
  for (int32_t k = 0; k < openslide_get_level_count(o); ++k) {
    ViewerLevel l;
    openslide_get_level_dimensions(o, k, &l.width, &l.height);
    l.argb.resize(static_cast<size_t>(l.width * l.height));
    openslide_read_region(o, l.argb.data(), 0, 0, k, l.width, l.height);
    if (const char* e = openslide_get_error(o)) ADD_FAILURE() << p << " level " << k << ": " << e;
    levels.push_back(std::move(l));
  }
  openslide_close(o);
  return levels;
}

// What python3-openslide gives: every level read whole with read_region (RGBA, turned into
// 0xAARRGGBB like the C API's), and json.loads of the ImageDescription (tiff.ImageDescription),
// dumped back as JSON text, or the exception's text when it does not parse.
struct PythonReadback {
  std::vector<ViewerLevel> levels;
  std::string description_json;   // json.dumps(json.loads(description)); empty on failure
  std::string description_error;  // why json.loads failed
};

inline bool python_openslide_available() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import openslide' >/dev/null 2>&1") == 0;
  return ok;
}

inline PythonReadback python_openslide_readback(const std::filesystem::path& p) {
  PythonReadback r;
  const ScratchDir dir;
  const std::filesystem::path script = dir / "read.py", out = dir / "out.json";
  {
    std::ofstream py(script);
    py << R"(import json, sys
import openslide
s = openslide.OpenSlide(sys.argv[1])
result = {"levels": []}
for k, (w, h) in enumerate(s.level_dimensions):
    img = s.read_region((0, 0), k, (w, h))
    with open(sys.argv[2] + "/level%d.rgba" % k, "wb") as f:
        f.write(img.tobytes())
    result["levels"].append([w, h])
try:
    result["description"] = json.loads(s.properties["tiff.ImageDescription"])
except Exception as e:
    result["error"] = repr(e)
with open(sys.argv[2] + "/out.json", "w") as f:
    json.dump(result, f)
)";
  }
  const std::string cmd = "/usr/bin/python3 " + shell_quote(script.string()) + " " + shell_quote(p.string()) + " " +
                          shell_quote(dir.path().string()) + " 2>" + shell_quote((dir / "err").string());
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "python3-openslide failed on " << p << ": " << slurp(dir / "err");
    return r;
  }
  const nlohmann::json j = nlohmann::json::parse(slurp(out));
  for (size_t k = 0; k < j["levels"].size(); ++k) {
    ViewerLevel l;
    l.width = j["levels"][k][0].get<int64_t>();
    l.height = j["levels"][k][1].get<int64_t>();
    const std::string rgba = slurp(dir / ("level" + std::to_string(k) + ".rgba"));
    if (rgba.size() != static_cast<size_t>(l.width * l.height * 4)) {
      ADD_FAILURE() << "python3-openslide level " << k << ": " << rgba.size() << " bytes";
      return r;
    }
    l.argb.resize(static_cast<size_t>(l.width * l.height));
    for (size_t i = 0; i < l.argb.size(); ++i) {
      const auto b = [&](size_t c) { return static_cast<uint32_t>(static_cast<uint8_t>(rgba[4 * i + c])); };
      l.argb[i] = b(3) << 24 | b(0) << 16 | b(1) << 8 | b(2);
    }
    r.levels.push_back(std::move(l));
  }
  if (j.contains("description")) r.description_json = j["description"].dump();
  if (j.contains("error")) r.description_error = j["error"].get<std::string>();
  return r;
}

}  // namespace wsi::test
