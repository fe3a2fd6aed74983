// wsi/synth.hpp — deterministic synthetic H&E lymph-node slides with ground truth.
//
// A SynthScene is a pure function of SynthParams: every pixel is computed from the seed and its
// level-0 position alone, so any rectangle renders the same bytes whatever the tiling or thread
// count. That is what lets `wsi-heatmap synth` stream gigapixel slides in bounded memory.
//
// What it paints (Beer-Lambert mixing of haematoxylin and eosin optical densities):
//   * white glass (optionally noisy), irregular tissue sections with a pink stromal capsule,
//     sinuses/fat holes and fibrous pink stroma;
//   * lymphoid areas of dense small round dark lymphocyte nuclei (~7 um);
//   * tumour regions (metastases): nests of larger (9-16 um), pleomorphic, clustered, darker
//     purple nuclei with chromatin texture and nucleoli, on paler purple cytoplasm;
//   * optional per-slide stain variation, Gaussian blur and pen-ink strokes.
//
// Frames and units: all coordinates are LEVEL-0 pixels (double for geometry, int64 for rects).
// Physical sizes in SynthParams are micrometres and are converted with `mpp`.
//
// Thread-safety: a constructed SynthScene is immutable; render_* may be called concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wsi {

struct SynthParams {
  int64_t width = 20000;   // level-0 pixels
  int64_t height = 20000;
  uint64_t seed = 1;
  double mpp = 0.25;       // micrometres per level-0 pixel (0.25 ~ a 40x scan)
  int tumours = 3;         // number of tumour regions (0 = a normal node)
  int sections = 0;        // tissue sections; 0 = pick from the slide's aspect ratio (1-3)
  double stain_variation = 0.0;  // 0..1: random shift of the H and E stain vectors and strength
  double blur_sigma = 0.0;       // Gaussian blur, level-0 pixels (0 = sharp)
  bool pen_marks = false;        // a few green/blue/red marker strokes near the tissue
  double noise = 0.0;            // 0..1: sensor noise on glass and tissue

  // Throws ConfigError naming the bad field.
  void validate() const;
};

struct PointD {
  double x = 0, y = 0;  // level-0 pixels
};

class SynthScene {
 public:
  explicit SynthScene(const SynthParams& params);
  ~SynthScene();
  SynthScene(SynthScene&&) noexcept;
  SynthScene& operator=(SynthScene&&) noexcept;

  const SynthParams& params() const;

  // Renders the level-0 rectangle [x, x+w) x [y, y+h) as packed RGB (w*h*3 bytes).
  // Pixels outside the slide are rendered like glass.
  void render_rgb(int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const;
  // Renders the tumour mask of the same rectangle: 255 inside a tumour outline, else 0.
  void render_mask(int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* mask) const;

  bool is_tissue(double x, double y) const;  // inside a tissue section (holes count as tissue)
  bool is_tumour(double x, double y) const;  // inside a tumour outline (== mask 255)

  // Closed tumour outlines (last vertex != first), densely sampled; the mask is their union.
  std::vector<std::vector<PointD>> tumour_outlines() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SynthOutputs {
  std::filesystem::path slide;                     // pyramidal tiled JPEG BigTIFF (required)
  std::optional<std::filesystem::path> mask;       // pyramidal uint8 mask TIFF (0 / 255)
  std::optional<std::filesystem::path> annotations;  // ASAP XML tumour outlines
  int jpeg_quality = 85;
  int tile_size = 256;
};

// Writes the slide (and mask/annotations when asked). Each file is written under a temporary
// name in the same directory and renamed when complete, so a crash leaves no partial file under
// the final name. Memory is bounded by the tile strip, not the slide size. Throws WriteError.
// `threads` = 0 uses libvips' default (one per core).
void write_synthetic_slide(const SynthScene& scene, const SynthOutputs& outputs, int threads = 0);

// ASAP XML for the outlines (group "Tumor", one Polygon per outline); pure, for tests.
std::string asap_xml(const std::vector<std::vector<PointD>>& outlines);

}  // namespace wsi
