// wsi/slide.hpp — whole-slide image access: an RAII wrapper over OpenSlide.
//
// Frames and units:
//   * All positions are LEVEL-0 pixels (int64). Region sizes are pixels of the region's level
//     (see region.hpp). Level dimensions are pixels of that level.
//   * Microns per pixel (mpp) are micrometres per LEVEL-0 pixel unless a function says
//     "level mpp" (= level-0 mpp x level downsample).
//
// Thread-safety: a const Slide may be read from many threads at once (OpenSlide serialises what it
// must internally; the libvips backend keeps one region per thread; measured: one handle per
// thread is no faster). Opening and moving are not
// thread-safe. OpenSlide's error state is sticky: after one failed read every later read of the
// same Slide fails too (each with a RegionReadError); open the file again to retry.
//
// Errors: every OpenSlide call is followed by a check of openslide_get_error(); failures become
// SlideError (file level) or RegionReadError (file + region), with a hint on what to do.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wsi/patch_source.hpp"
#include "wsi/region.hpp"

namespace wsi {

struct LevelInfo {
  int64_t width = 0;        // pixels of this level
  int64_t height = 0;
  double downsample = 1.0;  // level-0 pixels per pixel of this level (may be non-integer)
  int64_t tile_width = 0;   // native tile size when the format reports it, else 0
  int64_t tile_height = 0;
};

// Where the slide's microns-per-pixel came from, in the order they are tried.
enum class MppSource {
  user_override,       // --mpp on the command line
  openslide_property,  // openslide.mpp-x / openslide.mpp-y (vendor metadata)
  tiff_resolution,     // TIFF XResolution/YResolution with a centimetre or inch unit
  objective_power,     // openslide.objective-power: 10 / power — a GUESS, flagged as such
  unknown,
};
std::string_view to_string(MppSource s);

struct Mpp {
  double x = 0.0;  // micrometres per level-0 pixel; 0 when unknown
  double y = 0.0;
  MppSource source = MppSource::unknown;
  std::string note;  // e.g. why a TIFF resolution was ignored; empty when nothing to say

  bool known() const { return source != MppSource::unknown; }
  bool is_guess() const { return source == MppSource::objective_power; }
};

// Non-empty area of the slide in level-0 pixels (openslide.bounds-*), or the whole level 0.
struct Bounds {
  int64_t x = 0, y = 0, width = 0, height = 0;
  bool from_properties = false;
};

// Result of picking a level for a target resolution.
struct LevelChoice {
  int level = 0;
  double level_mpp = 0.0;   // micrometres per pixel of the chosen level
  // Level pixels per target pixel (target_mpp / level_mpp). 1 = read as is; > 1 = read more
  // pixels and shrink; < 1 when the target is finer than level 0 or the level was accepted within
  // a tolerance (enlarge).
  double read_scale = 1.0;
};

struct AssociatedImageInfo {
  std::string name;  // "label", "macro", "thumbnail", ...
  int64_t width = 0;
  int64_t height = 0;
};

struct SlideOptions {
  std::optional<double> mpp_override;  // micrometres per level-0 pixel; wins over metadata
  // Decoded tiles kept for reuse (plain tiled TIFFs through libtiff), bytes; 0 = 32 MiB. Readers
  // that walk a grid row by row decode each tile once when this holds the tile rows they span.
  size_t tile_cache_bytes = 0;
};

class Slide final : public PatchSource {
 public:
  // Opens `path`. Throws UsageError when the path is missing or a directory, SlideError when
  // it is not a slide OpenSlide can read (with a reason and a hint, e.g. for striped TIFFs).
  explicit Slide(const std::filesystem::path& path, const SlideOptions& options = {});
  ~Slide() override;
  Slide(Slide&&) noexcept;
  Slide& operator=(Slide&&) noexcept;
  Slide(const Slide&) = delete;
  Slide& operator=(const Slide&) = delete;

  const std::filesystem::path& path() const;
  const std::string& vendor() const;  // openslide.vendor, e.g. "aperio", "generic-tiff"
  int level_count() const;
  const std::vector<LevelInfo>& levels() const;
  const LevelInfo& level(int index) const;  // throws std::out_of_range
  int64_t width() const { return level(0).width; }
  int64_t height() const { return level(0).height; }

  const std::map<std::string, std::string>& properties() const;
  std::optional<std::string> property(std::string_view name) const;
  const Bounds& bounds() const;
  const std::vector<AssociatedImageInfo>& associated_images() const;

  const Mpp& mpp() const;
  // Micrometres per pixel of `level` (mean of x and y). Throws ConfigError if mpp is unknown.
  double level_mpp(int level) const;
  // Best level at or finer than target_mpp, plus the resample factor. Throws ConfigError if the
  // mpp is unknown ("pass --mpp").
  LevelChoice choose_level(double target_mpp) const;

  // Reads `region` as RGB; pixels outside the slide or transparent are white (glass).
  RgbImage read_region(const Region& region) const;
  // Same, into caller memory of region.w * region.h * 3 bytes.
  void read_region(const Region& region, uint8_t* rgb_out) const override;

  RgbImage read_associated_image(const std::string& name) const;

  // Which decoder serves read_region: "openslide", or "libvips" for plain tiled TIFFs (faster,
  // and correct where OpenSlide 3.4.1 + libtiff 4.5 misdecode levels smaller than a tile).
  std::string_view pixel_backend() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Pure helpers (no slide needed; used by Slide and tested directly) ----

// Resolves mpp from OpenSlide properties in the documented source order. TIFF resolutions
// outside [0.01, 100] um/px (e.g. the 72 dpi default many writers leave) are ignored with a note.
Mpp resolve_mpp(const std::map<std::string, std::string>& properties,
                std::optional<double> mpp_override = std::nullopt);

// openslide.bounds-* if all four are present and valid, else the whole level 0.
Bounds resolve_bounds(const std::map<std::string, std::string>& properties, int64_t width,
                      int64_t height);

// Picks the coarsest level whose mpp is <= target_mpp * (1 + tolerance); level 0 when the target
// is finer than every level. `tolerance` is relative, at least 1e-3 (so a 2.0005 downsample still
// counts as 2); a larger one (--mpp-tolerance) accepts a level slightly coarser than the target,
// read_scale < 1 then saying how much to enlarge it.
LevelChoice choose_level(const std::vector<LevelInfo>& levels, double level0_mpp, double target_mpp,
                         double tolerance = 0.0);

// Premultiplied ARGB (OpenSlide's output) composited over white into packed RGB.
void argb_over_white_to_rgb(const uint32_t* argb, size_t count, uint8_t* rgb);

}  // namespace wsi
