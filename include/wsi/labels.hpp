// wsi/labels.hpp — patch labels from ground truth (mask TIFFs or polygon annotations).
//
// Ground truth is queried per patch at the patch's own resolution and never rasterised whole:
// a GroundTruth answers "which class is at these sample points" for a small window, reading a
// mask at the pyramid level that matches, or scan-filling only the polygons that touch it.
//
// Class codes in a class raster: 0 = normal, 1 = tumour, 2 = excluded (kClass* in
// annotations.hpp).
//
// Frames and units: window origins are LEVEL-0 pixels; `scale` is level-0 pixels per sample;
// sample (i, j) is taken at the level-0 point (x0 + (i + 0.5) * scale, y0 + (j + 0.5) * scale).
//
// Label rules (PatchCamelyon's is the default):
//   center       label 1 when any tumour sample lies in the central center_size x center_size
//                square of the patch (PCam: 32 x 32 of 96 x 96);
//   any          label 1 when any sample of the patch is tumour;
//   fraction:T   label 1 when the tumour fraction of the patch is >= T (0 < T <= 1).
// Exclusion: with ExclusionPolicy::normal (Camelyon16's convention for `_2`), excluded samples
// simply are not tumour; with ExclusionPolicy::skip, a patch with any excluded sample is dropped.
//
// Thread-safety: label_patch is pure; GroundTruth::classes may be called from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "wsi/annotations.hpp"
#include "wsi/region.hpp"

namespace wsi {

class Slide;

enum class LabelRuleKind { center, any, fraction };

struct LabelRule {
  LabelRuleKind kind = LabelRuleKind::center;
  double threshold = 0.5;  // for fraction
  int center_size = 32;    // for center, patch pixels

  // "center", "center:N", "any", "fraction:T". Throws UsageError with the accepted forms.
  static LabelRule parse(const std::string& s);
  std::string to_string() const;
};

enum class ExclusionPolicy { normal, skip };
ExclusionPolicy parse_exclusion_policy(const std::string& s);  // throws UsageError

// Maps mask pixel values to classes. Default: 0 normal, any non-zero tumour.
struct MaskValueMap {
  std::array<uint8_t, 256> cls{};

  MaskValueMap();
  // "0=normal,1=tumour,255=tumour,2=exclude" (names: normal, tumour|tumor, exclude|excluded);
  // values not listed keep the default mapping. Throws UsageError.
  static MaskValueMap parse(const std::string& s);
  std::string to_string() const;
};

struct PatchLabel {
  double tumour_fraction = 0.0;    // over the whole patch
  double excluded_fraction = 0.0;
  bool any_tumour = false;         // PCam meta "tumor_patch"
  bool center_tumour = false;      // PCam meta "center_tumor_patch"
  bool dropped = false;            // ExclusionPolicy::skip and the patch touches an exclusion
  uint8_t label = 0;
};

// Labels one patch from its size x size class raster (row-major).
PatchLabel label_patch(const uint8_t* classes, int size, const LabelRule& rule, ExclusionPolicy exclusion);

// Where the truth comes from.
class GroundTruth {
 public:
  virtual ~GroundTruth() = default;
  // Class raster of w x h samples; see the frame note above. Throws RegionReadError (mask).
  virtual GrayImage classes(double x0, double y0, double scale, int64_t w, int64_t h) const = 0;
  virtual std::string describe() const = 0;  // e.g. "mask tumor_001_mask.tif (downsample 1)"
};

// A mask slide (OpenSlide-readable or plain tiled TIFF; gray or RGB, the first channel counts).
// Its level 0 must have the slide's size or be an integer downsample of it (the same factor in
// x and y, ±1 pixel of rounding); anything else is a ConfigError naming both geometries.
std::unique_ptr<GroundTruth> make_mask_truth(const std::filesystem::path& mask, const Slide& slide,
                                             const MaskValueMap& values);

// Polygons. Throws ConfigError when no shape overlaps the slide (wrong slide or wrong
// --annotation-scale); shapes partly outside are clipped naturally.
std::unique_ptr<GroundTruth> make_annotation_truth(AnnotationSet annotations, const Slide& slide);

}  // namespace wsi
