#include "wsi/slide.hpp"

#include <openslide.h>
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "core/text.hpp"
#include "core/tiff_handle.hpp"
#include "slide/pixel_reader.hpp"
#include "wsi/error.hpp"
#include "wsi/patch_source.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

constexpr char kConvertHint[] =
    "convert it to a tiled pyramidal TIFF, e.g. `vips tiffsave IN OUT.tif --tile --pyramid "
    "--compression jpeg --bigtiff`";
// A single read larger than this is almost certainly a frame mix-up (level-0 size at level k).
constexpr int64_t kMaxRegionPixels = int64_t{1} << 28;

std::optional<double> parse_double(const std::string& s) {
  double v = 0;
  const char* b = s.data();
  const char* e = b + s.size();
  while (b < e && *b == ' ') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p == b || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_int(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> find(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<double> find_double(const std::map<std::string, std::string>& m, const std::string& k) {
  auto v = find(m, k);
  return v ? parse_double(*v) : std::nullopt;
}

std::optional<int64_t> find_int(const std::map<std::string, std::string>& m, const std::string& k) {
  auto v = find(m, k);
  return v ? parse_int(*v) : std::nullopt;
}

// libtiff prints warnings (e.g. "Raster width ... larger than image width") to stderr; library
// code never prints, and OpenSlide reports what matters through its own error string.
void silence_libtiff_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetWarningHandler(nullptr);
    TIFFSetErrorHandler(nullptr);
  });
}

// Explains why OpenSlide does not recognise a file, from its first bytes.
// Whether a tile or strip of any directory lies beyond the end of the file, or the chain of
// directories breaks off before its end: a copy cut short.
bool tiff_data_past_end(TIFF* t, const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return false;
  uint64_t dir = 0;  // the offset of the last directory libtiff read
  do {
    dir = TIFFCurrentDirOffset(t);
    const bool tiled = TIFFIsTiled(t) != 0;
    const uint64_t* offsets = nullptr;
    const uint64_t* counts = nullptr;
    if (!TIFFGetField(t, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
        !TIFFGetField(t, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) || !offsets || !counts)
      continue;
    const uint32_t n = tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
    for (uint32_t i = 0; i < n; ++i)
      if (offsets[i] > size || counts[i] > size - offsets[i]) return true;
  } while (TIFFReadDirectory(t));
  // The last directory read: does its link to a next one point past the end?
  const bool big = TIFFIsBigTIFF(t) != 0, swap = TIFFIsByteSwapped(t) != 0;
  std::ifstream in(path, std::ios::binary);
  const auto read_uint = [&](uint64_t at, int bytes) -> std::optional<uint64_t> {
    unsigned char b[8] = {};
    in.seekg(static_cast<std::streamoff>(at));
    if (!in.read(reinterpret_cast<char*>(b), bytes)) return std::nullopt;
    uint64_t v = 0;  // little-endian in the file unless swapped relative to this (little-endian) host
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(b[swap ? bytes - 1 - i : i]) << (8 * i);
    return v;
  };
  const auto entries = read_uint(dir, big ? 8 : 2);
  if (!entries) return true;
  const auto next = read_uint(dir + (big ? 8 : 2) + *entries * (big ? 20 : 12), big ? 8 : 4);
  return !next || *next >= size;
}

std::string explain_unrecognised(const fs::path& path) {
  std::array<unsigned char, 132> head{};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  const auto n = static_cast<size_t>(in.gcount());
  auto starts = [&](std::string_view magic) {
    return n >= magic.size() && std::equal(magic.begin(), magic.end(), head.begin(),
                                           [](char a, unsigned char b) { return static_cast<unsigned char>(a) == b; });
  };
  if (n == 0) return "the file is empty (0 bytes); it was probably cut short while copying — copy it again";
  if (starts("II*\0") || starts("MM\0*") || starts("II+\0") || starts("MM\0+")) {
    if (detail::TiffHandle t; t.open(path, "r")) {
      const bool tiled = TIFFIsTiled(t.get()) != 0;
      const bool cut_short = tiff_data_past_end(t.get(), path);
      t.close();
      if (cut_short)
        return "a truncated TIFF (the file ends before its images do); it was probably cut short while copying — "
               "copy it again";
      if (!tiled)
        return std::string("a striped (non-tiled) TIFF, not a tiled whole-slide image; ") + kConvertHint;
      return std::string("a tiled TIFF that OpenSlide does not recognise as a slide; ") + kConvertHint;
    }
    return "a damaged TIFF (libtiff cannot read its header); copy or export the file again";
  }
  if (starts("\x89PNG")) return std::string("a PNG image, not a whole-slide image; ") + kConvertHint;
  if (starts("\xff\xd8\xff")) return std::string("a JPEG image, not a whole-slide image; ") + kConvertHint;
  if (n >= 132 && std::string_view(reinterpret_cast<const char*>(head.data()) + 128, 4) == "DICM")
    return std::string("a DICOM file; this OpenSlide (") + openslide_get_version() +
           ") reads DICOM WSI only from version 4.0 on; " + kConvertHint;
  return "not a format OpenSlide recognises (Aperio .svs, Hamamatsu .ndpi/.vms, Leica .scn, "
         "MIRAX .mrxs, Philips/Ventana/generic tiled TIFF, ...); check that this is the slide file";
}

}  // namespace

std::string_view to_string(MppSource s) {
  switch (s) {
    case MppSource::user_override: return "user override (--mpp)";
    case MppSource::openslide_property: return "openslide.mpp-x/y";
    case MppSource::tiff_resolution: return "TIFF resolution tags";
    case MppSource::objective_power: return "objective power (guess)";
    case MppSource::unknown: return "unknown";
  }
  return "unknown";
}

Mpp resolve_mpp(const std::map<std::string, std::string>& props, std::optional<double> override_mpp) {
  Mpp m;
  if (override_mpp) {
    if (!(*override_mpp > 0) || !std::isfinite(*override_mpp)) {
      std::ostringstream msg;
      msg << "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not "
          << *override_mpp;
      throw UsageError(msg.str());
    }
    m.x = m.y = *override_mpp;
    m.source = MppSource::user_override;
    return m;
  }
  auto mx = find_double(props, "openslide.mpp-x");
  auto my = find_double(props, "openslide.mpp-y");
  if (mx && *mx > 0) {
    m.x = *mx;
    m.y = (my && *my > 0) ? *my : *mx;
    m.source = MppSource::openslide_property;
    return m;
  }
  auto rx = find_double(props, "tiff.XResolution");
  auto ry = find_double(props, "tiff.YResolution");
  auto unit = find(props, "tiff.ResolutionUnit");
  if (rx && *rx > 0 && unit && (*unit == "centimeter" || *unit == "inch")) {
    const double um_per_unit = (*unit == "centimeter") ? 1e4 : 25.4e3;
    const double x = um_per_unit / *rx;
    const double y = (ry && *ry > 0) ? um_per_unit / *ry : x;
    if (x >= 0.01 && x <= 100 && y >= 0.01 && y <= 100) {
      m.x = x;
      m.y = y;
      m.source = MppSource::tiff_resolution;
      return m;
    }
    m.note = "TIFF resolution " + find(props, "tiff.XResolution").value() + " px/" + *unit +
             " ignored: " + std::to_string(x) + " um/px is not a scan resolution (a writer default)";
  }
  auto power = find_double(props, "openslide.objective-power");
  if (power && *power > 0) {
    // 10x objective ~ 1 um/px on common scanners; a rough rule only.
    m.x = m.y = 10.0 / *power;
    m.source = MppSource::objective_power;
    detail::append_clause(m.note, "guessed from objective power " + find(props, "openslide.objective-power").value() +
                                      "x; pass --mpp for exact units");
    return m;
  }
  return m;
}

Bounds resolve_bounds(const std::map<std::string, std::string>& props, int64_t width, int64_t height) {
  auto bx = find_int(props, OPENSLIDE_PROPERTY_NAME_BOUNDS_X);
  auto by = find_int(props, OPENSLIDE_PROPERTY_NAME_BOUNDS_Y);
  auto bw = find_int(props, OPENSLIDE_PROPERTY_NAME_BOUNDS_WIDTH);
  auto bh = find_int(props, OPENSLIDE_PROPERTY_NAME_BOUNDS_HEIGHT);
  if (bx && by && bw && bh && *bw > 0 && *bh > 0 && *bx >= 0 && *by >= 0)
    return Bounds{*bx, *by, *bw, *bh, true};
  return Bounds{0, 0, width, height, false};
}

LevelChoice choose_level(const std::vector<LevelInfo>& levels, double level0_mpp, double target_mpp,
                         double tolerance) {
  if (levels.empty()) throw std::invalid_argument("choose_level: no levels");
  if (!(level0_mpp > 0) || !(target_mpp > 0))
    throw ConfigError("choose_level: mpp must be positive (level 0: " + std::to_string(level0_mpp) +
                      ", target: " + std::to_string(target_mpp) + ")");
  const double limit = target_mpp * (1 + std::max(tolerance, 1e-3));
  int best = 0;
  for (int i = 0; i < static_cast<int>(levels.size()); ++i) {
    const double lm = level0_mpp * levels[static_cast<size_t>(i)].downsample;
    if (lm <= limit && lm >= level0_mpp * levels[static_cast<size_t>(best)].downsample)
      best = i;
  }
  LevelChoice c;
  c.level = best;
  c.level_mpp = level0_mpp * levels[static_cast<size_t>(best)].downsample;
  c.read_scale = target_mpp / c.level_mpp;
  if (std::abs(c.read_scale - 1.0) < 1e-3) c.read_scale = 1.0;
  return c;
}

void argb_over_white_to_rgb(const uint32_t* argb, size_t count, uint8_t* rgb) {
  for (size_t i = 0; i < count; ++i) {
    const uint32_t p = argb[i];
    const uint32_t a = p >> 24;
    // Premultiplied: colour over white = c + (255 - a).
    const uint32_t add = 255 - a;
    rgb[3 * i + 0] = static_cast<uint8_t>(std::min<uint32_t>(255, ((p >> 16) & 0xff) + add));
    rgb[3 * i + 1] = static_cast<uint8_t>(std::min<uint32_t>(255, ((p >> 8) & 0xff) + add));
    rgb[3 * i + 2] = static_cast<uint8_t>(std::min<uint32_t>(255, (p & 0xff) + add));
  }
}

struct Slide::Impl {
  fs::path path;
  openslide_t* osr = nullptr;
  std::string vendor;
  std::vector<LevelInfo> levels;
  std::map<std::string, std::string> properties;
  Bounds bounds;
  Mpp mpp;
  std::vector<AssociatedImageInfo> associated;
  std::unique_ptr<detail::PixelReader> reader;  // declared after osr: destroyed before it is closed

  ~Impl() {
    reader.reset();
    if (osr) openslide_close(osr);
  }

  void validate(const Region& region) const;

  // Throws if OpenSlide's sticky error is set. `doing` says what was attempted.
  void check(const std::string& doing) const {
    if (const char* err = openslide_get_error(osr))
      throw SlideError(path, doing + " failed: " + err +
                                 ". The file may be damaged or use an unsupported encoding; "
                                 "re-export it from the scanner software");
  }
};

Slide::Slide(const fs::path& path, const SlideOptions& options) : impl_(std::make_unique<Impl>()) {
  silence_libtiff_once();
  impl_->path = path;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    throw UsageError(path.string() + ": no such file; check the path" +
                     (path.is_relative() ? " (it is relative to " + fs::current_path().string() + ")" : std::string()));
  if (fs::is_directory(st))
    throw UsageError(path.string() + ": is a directory, not a slide file; pass one slide file");
  if (!fs::is_regular_file(st))
    throw SlideError(path, "not a regular file (a device, socket or pipe); pass a slide file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw SlideError(path, "cannot be read (permission denied?); check its permissions");
  }

  const char* vendor = openslide_detect_vendor(path.c_str());
  if (!vendor) throw SlideError(path, "cannot open as a slide: " + explain_unrecognised(path));
  impl_->osr = openslide_open(path.c_str());
  if (!impl_->osr) throw SlideError(path, "cannot open as a slide: " + explain_unrecognised(path));
  if (const char* err = openslide_get_error(impl_->osr))
    throw SlideError(path, std::string("OpenSlide cannot open it: ") + err +
                               ". The file is damaged or uses an encoding this OpenSlide (" +
                               openslide_get_version() + ") does not support; " + kConvertHint);
  impl_->vendor = vendor;

  for (const char* const* names = openslide_get_property_names(impl_->osr); names && *names; ++names) {
    const char* v = openslide_get_property_value(impl_->osr, *names);
    impl_->properties.emplace(*names, v ? v : "");
  }
  impl_->check("reading the properties");

  const int32_t n = openslide_get_level_count(impl_->osr);
  impl_->check("counting the levels");
  if (n < 1) throw SlideError(path, "has no pyramid levels; the file is damaged");
  for (int32_t i = 0; i < n; ++i) {
    LevelInfo li;
    openslide_get_level_dimensions(impl_->osr, i, &li.width, &li.height);
    li.downsample = openslide_get_level_downsample(impl_->osr, i);
    impl_->check("reading level " + std::to_string(i));
    const std::string prefix = "openslide.level[" + std::to_string(i) + "].";
    li.tile_width = find_int(impl_->properties, prefix + "tile-width").value_or(0);
    li.tile_height = find_int(impl_->properties, prefix + "tile-height").value_or(0);
    impl_->levels.push_back(li);
  }
  if (impl_->levels[0].width <= 0 || impl_->levels[0].height <= 0)
    throw SlideError(path, "level 0 has no pixels; the file is damaged");

  for (const char* const* names = openslide_get_associated_image_names(impl_->osr); names && *names; ++names) {
    AssociatedImageInfo a;
    a.name = *names;
    openslide_get_associated_image_dimensions(impl_->osr, *names, &a.width, &a.height);
    impl_->associated.push_back(a);
  }
  impl_->check("listing the associated images");

  // Plain tiled TIFFs: libtiff, else libvips (a layout the libtiff backend does not decode), else
  // OpenSlide. WSI_PIXEL_BACKEND=libvips|openslide forces another backend, to compare them.
  const char* env = std::getenv("WSI_PIXEL_BACKEND");
  const std::string_view forced = env ? env : "";
  if (!forced.empty() && forced != "libtiff" && forced != "libvips" && forced != "openslide")
    throw UsageError("WSI_PIXEL_BACKEND=" + std::string(forced) + ": must be libtiff, libvips or openslide");
  if (impl_->vendor == "generic-tiff") {
    if (forced.empty() || forced == "libtiff")
      impl_->reader = detail::try_make_tiff_tile_reader(
          path, impl_->levels, options.tile_cache_bytes ? options.tile_cache_bytes : detail::kTiffTileCacheBytes);
    if (!impl_->reader && forced != "openslide") impl_->reader = detail::try_make_vips_tiff_reader(path, impl_->levels);
  }
  if (!impl_->reader) impl_->reader = detail::make_openslide_reader(impl_->osr, path);

  impl_->bounds = resolve_bounds(impl_->properties, impl_->levels[0].width, impl_->levels[0].height);
  impl_->mpp = resolve_mpp(impl_->properties, options.mpp_override);
}

Slide::~Slide() = default;
Slide::Slide(Slide&&) noexcept = default;
Slide& Slide::operator=(Slide&&) noexcept = default;

const fs::path& Slide::path() const { return impl_->path; }
const std::string& Slide::vendor() const { return impl_->vendor; }
int Slide::level_count() const { return static_cast<int>(impl_->levels.size()); }
const std::vector<LevelInfo>& Slide::levels() const { return impl_->levels; }
const LevelInfo& Slide::level(int index) const {
  if (index < 0 || index >= level_count())
    throw std::out_of_range(impl_->path.string() + ": no level " + std::to_string(index) + " (slide has " +
                            std::to_string(level_count()) + ")");
  return impl_->levels[static_cast<size_t>(index)];
}
const std::map<std::string, std::string>& Slide::properties() const { return impl_->properties; }
std::optional<std::string> Slide::property(std::string_view name) const {
  return find(impl_->properties, std::string(name));
}
const Bounds& Slide::bounds() const { return impl_->bounds; }
const std::vector<AssociatedImageInfo>& Slide::associated_images() const { return impl_->associated; }
const Mpp& Slide::mpp() const { return impl_->mpp; }

double Slide::level_mpp(int lvl) const {
  if (!impl_->mpp.known())
    throw ConfigError(impl_->path.string() + ": no microns-per-pixel in this slide's metadata; pass --mpp " +
                      "(e.g. --mpp 0.25 for a 40x scan, 0.5 for 20x)");
  return 0.5 * (impl_->mpp.x + impl_->mpp.y) * level(lvl).downsample;
}

LevelChoice Slide::choose_level(double target_mpp) const {
  return wsi::choose_level(impl_->levels, level_mpp(0), target_mpp);
}

// Both read_region overloads validate here, before any allocation or decoding.
void Slide::Impl::validate(const Region& region) const {
  if (region.level < 0 || region.level >= static_cast<int>(levels.size()))
    throw RegionReadError(path, region, "no such level (the slide has " + std::to_string(levels.size()) + ")");
  if (region.w <= 0 || region.h <= 0 || region.w * region.h > kMaxRegionPixels)
    throw RegionReadError(path, region,
                          "region size must be between 1 and 2^28 pixels (is w/h in level-0 units by mistake?)");
}

RgbImage Slide::read_region(const Region& region) const {
  impl_->validate(region);
  RgbImage img(region.w, region.h);
  impl_->reader->read(region, img.pixels.data());
  return img;
}

void Slide::read_region(const Region& region, uint8_t* rgb_out) const {
  impl_->validate(region);
  impl_->reader->read(region, rgb_out);
}

std::string_view Slide::pixel_backend() const { return impl_->reader->name(); }

RgbImage Slide::read_associated_image(const std::string& name) const {
  auto it = std::find_if(impl_->associated.begin(), impl_->associated.end(),
                         [&](const AssociatedImageInfo& a) { return a.name == name; });
  if (it == impl_->associated.end())
    throw SlideError(impl_->path, "has no associated image '" + name + "'");
  std::vector<uint32_t> argb(static_cast<size_t>(it->width * it->height));
  openslide_read_associated_image(impl_->osr, name.c_str(), argb.data());
  impl_->check("reading associated image '" + name + "'");
  RgbImage img(it->width, it->height);
  argb_over_white_to_rgb(argb.data(), argb.size(), img.pixels.data());
  return img;
}

}  // namespace wsi
