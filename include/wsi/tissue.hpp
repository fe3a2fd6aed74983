// wsi/tissue.hpp — tissue detection on a low-resolution view of the slide.
//
// The mask is computed at `TissueParams::mask_mpp` micrometres per mask pixel (default 16 µm,
// allowed 8–32 µm): the slide level is chosen by mpp (never by level index), read in strips and
// box-shrunk to that scale, so memory is one mask plus one strip whatever the slide size.
//
// Algorithm (each step is a pure function below, testable on arrays built in a test):
//   1. glass/artefact exclusion: near-white pixels (min(R,G,B) >= white_threshold), near-black
//      pixels (max(R,G,B) <= black_threshold) and greys (max - min < 16, where saturation is
//      noise: a dark grey of chroma 9 has saturation 0.2) are never tissue;
//   2. Otsu threshold on HSV saturation, floored at min_saturation so an empty slide does not
//      find "tissue" in the noise of the glass. The histogram holds the glass too (not black
//      pixels or ink): with only non-glass pixels, Otsu would split the tissue itself into pale
//      and dark halves;
//   3. optional pen-ink removal: ink colours (see pen_ink) plus a 16 µm rim around real strokes
//      (ink pieces wider than ~16 µm), because a marker on the coverslip is out of focus and its
//      blurred edge mixes ink and glass into colours H&E also has. Strokes are cleared again
//      after steps 4, 5 and 7, which would otherwise fill them back in;
//   4. morphological closing then opening with discs of closing_um / opening_um radius;
//   5. hole filling (holes smaller than max_hole_um2; 0 = none, infinity = all);
//   6. removal of connected components (8-connected) smaller than min_component_um2;
//   7. growth by a disc of margin_um radius.
// Defaults, and why (checked against histolab's expected masks, real tiles and synthetic slides
// in tests/test_tissue.cpp):
//   * closing 64 µm: joins loose, fatty and fibrous tissue into one region and fills gaps
//     narrower than ~0.13 mm; 32 µm left loose connective tissue in pieces;
//   * opening 16 µm and pieces >= 0.05 mm²: dust, debris and slivers are not worth patches;
//   * margin 16 µm (one mask pixel at the default scale): a mask pixel straddling the tissue
//     edge averages tissue with glass and falls under the threshold, so without it the mask
//     sits up to a pixel inside the true edge.
// Pixels outside openslide.bounds-* are background.
//
// Frames and units: mask pixel (i, j) covers the level-0 rectangle
// [i * downsample_x, (i+1) * downsample_x) x [j * downsample_y, (j+1) * downsample_y) of the
// whole level-0 image (bounds are honoured by clearing, not by cropping, so the frame stays the
// slide's). Areas are µm².
//
// Thread-safety: pure functions are re-entrant; a TissueMask is an immutable value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>

#include "wsi/params.hpp"
#include "wsi/region.hpp"

namespace wsi {

class Slide;

struct TissueParams {
  double mask_mpp = 16.0;        // µm per mask pixel, 8..32
  int white_threshold = 220;     // min(R,G,B) >= this is glass (0..255)
  int black_threshold = 40;      // max(R,G,B) <= this is an artefact (0..255)
  double min_saturation = 0.07;  // floor of the Otsu threshold on HSV saturation (0..1)
  bool remove_pen = true;        // drop red / green / blue / dark marker ink
  double closing_um = 64.0;      // disc radius of the closing, µm (0 = none)
  double opening_um = 16.0;      // disc radius of the opening, µm (0 = none)
  double max_hole_um2 = std::numeric_limits<double>::infinity();  // fill holes up to this area
  double min_component_um2 = 50000;  // drop tissue pieces smaller than this (≈ 0.05 mm²)
  double margin_um = 16.0;           // grow the final mask by a disc of this radius, µm (0 = none)

  // Throws ConfigError naming the flag that sets the bad field and its allowed range.
  void validate() const;
};

// The flags, JSON keys, defaults, help and checks of TissueParams (params.hpp).
const ParamTable<TissueParams>& tissue_param_table();

// Diagnostics of one mask computation (for the CLI, the JSON sidecar and tests).
struct TissueStats {
  double otsu_threshold = 0.0;     // saturation threshold Otsu found (0..1)
  double used_threshold = 0.0;     // after the min_saturation floor
  int64_t pen_pixels = 0;          // mask pixels removed as pen ink
  int64_t removed_components = 0;  // components dropped as too small
  double tissue_fraction = 0.0;    // of the whole mask
};

struct TissueMask {
  GrayImage mask;             // 255 = tissue, 0 = background; covers the whole level 0
  double downsample_x = 1.0;  // level-0 pixels per mask pixel
  double downsample_y = 1.0;
  double mpp = 0.0;      // µm per mask pixel
  int source_level = 0;  // slide level that was read
  TissueStats stats;

  // Fraction (0..1) of the level-0 rectangle [x, x+w) x [y, y+h) that is tissue, area-weighted
  // over the mask pixels it overlaps; parts outside the slide count as background.
  double fraction_in(int64_t x, int64_t y, int64_t w, int64_t h) const;
};

// ---- Pure steps ----

// HSV saturation (max-min)/max scaled to 0..255 per pixel; 0 for black.
GrayImage saturation(const RgbImage& rgb);
// Otsu's threshold of a 256-bin histogram: the bin t that maximises between-class variance of
// {< t} vs {>= t}. Returns 0 for an empty or constant histogram.
int otsu_threshold(const uint64_t (&histogram)[256]);
// 255 where the pixel looks like marker ink: green or cyan (hue 70°-190°, saturation >= 0.2),
// clear blue (190°-245°, >= 0.25), pure red (350°-10° at >= 0.2, 345°-15° at >= 0.55) or dark
// red-violet (max(R,G,B) <= 100, 320°-15°, >= 0.4). H&E is pink to purple (~250°-345°) with
// green its weakest channel; pools of blood look like red ink and are dropped with it, and a
// dark speck of dense tissue may match the dark rule (isolated specks are refilled; see step 3).
GrayImage pen_ink(const RgbImage& rgb);
// Binary morphology with a disc of `radius` pixels (0 = copy): offsets (dx, dy) with
// dx² + dy² <= radius². Outside the image counts as background for dilate and as foreground for
// erode (as in scikit-image), so a closing never eats tissue cut by the image border.
// O(pixels x (2 radius + 1)).
GrayImage dilate(const GrayImage& mask, int radius);
GrayImage erode(const GrayImage& mask, int radius);
GrayImage morph_close(const GrayImage& mask, int radius);  // dilate then erode
GrayImage morph_open(const GrayImage& mask, int radius);   // erode then dilate
// Fills 4-connected background regions not touching the border whose area <= max_area_px.
GrayImage fill_holes(const GrayImage& mask, double max_area_px);
// Removes 8-connected foreground components with fewer than min_area_px pixels; returns how
// many were removed through `removed` when given.
GrayImage remove_small_components(const GrayImage& mask, double min_area_px, int64_t* removed = nullptr);

// The whole algorithm on an RGB image whose pixels are `um_per_pixel` µm wide.
GrayImage tissue_mask_from_rgb(const RgbImage& rgb, double um_per_pixel, const TissueParams& params,
                               TissueStats* stats = nullptr);

// ---- Slides ----

// Computes the mask of a slide. Needs the slide's mpp (throws ConfigError "pass --mpp" when it
// is unknown); throws ConfigError for bad params, RegionReadError when a strip cannot be read.
TissueMask compute_tissue_mask(const Slide& slide, const TissueParams& params);
// Same, also handing back the slide as read at mask scale (mask-sized RGB, white outside the
// bounds), e.g. for write_tissue_overlay without reading the slide a second time.
TissueMask compute_tissue_mask(const Slide& slide, const TissueParams& params, RgbImage* view);

// Writes the mask as PNG (by extension .png) or tiled TIFF (.tif/.tiff) with its resolution set
// from `mpp`, plus `<out>.json` describing the frame (downsample, mpp, level, params, stats).
// Written under a temporary name and renamed. Throws WriteError / UsageError (unknown extension).
void write_tissue_mask(const TissueMask& mask, const TissueParams& params, const std::filesystem::path& out,
                       const std::string& slide_path);
// Throws UsageError unless `out` ends in .png, .tif or .tiff (so a CLI can fail before working).
void check_tissue_mask_path(const std::filesystem::path& out);
// Reads a plain image file (PNG, JPEG, TIFF, ... anything libvips loads; alpha is composited over
// white, grey is expanded) as RGB, e.g. a tile or a thumbnail to run tissue_mask_from_rgb on.
// Throws UsageError when the file is missing, Error when it cannot be decoded.
RgbImage read_rgb_image(const std::filesystem::path& path);

// An overlay a person can look at: the slide at mask resolution with tissue tinted and its
// outline drawn. PNG (UsageError unless `out_png` ends in .png). Throws WriteError / RegionReadError.
void write_tissue_overlay(const Slide& slide, const TissueMask& mask, const std::filesystem::path& out_png);
// Same from the view compute_tissue_mask handed back (must be the mask's size, else UsageError).
void write_tissue_overlay(const RgbImage& view, const TissueMask& mask, const std::filesystem::path& out_png);

}  // namespace wsi
