// Labelled patch sets for training tests, rendered straight from a synthetic scene at patch
// resolution (no slide files): every whole 96x96 patch on a grid that is mostly tissue, labelled
// by the scene's tumour mask at its centre (the PCam rule).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "wsi/dataset.hpp"
#include "wsi/synth.hpp"

namespace wsi::test {

// How generated scenes look (SynthParams): stain shift, sensor noise, blur in pixels.
struct SceneLook {
  double stain_variation = 0, noise = 0, blur = 0;
};

// Writes <dir>/<name>_train_x.h5 (+ _y.h5, meta) from one `side` x `side` scene per seed at
// 0.972 um/px, all in one set, and returns the x.h5 path. Per scene, at most `max_tumour` tumour
// patches (0 = all) are kept, and normal patches are thinned to at most `normal_per_tumour` per
// tumour patch (+ 8) so small sets stay balanced enough to learn from.
inline std::filesystem::path write_scenes_patches(const std::filesystem::path& dir, const std::string& name,
                                                  const std::vector<uint64_t>& seeds, int64_t side,
                                                  const SceneLook& look = {}, int64_t max_tumour = 0,
                                                  int normal_per_tumour = 2) {
  constexpr int P = 96;
  auto writer = make_pcam_writer(dir, name, "train", P);
  std::vector<uint8_t> rgb(P * P * 3);
  for (const uint64_t seed : seeds) {
    SynthParams sp;
    sp.width = sp.height = side;
    sp.mpp = 0.972;
    sp.seed = seed;
    sp.tumours = 3;
    sp.stain_variation = look.stain_variation;
    sp.noise = look.noise;
    sp.blur_sigma = look.blur;
    const SynthScene scene(sp);
    std::vector<PatchRecord> normals;
    std::vector<std::vector<uint8_t>> normal_pixels;
    int64_t tumours = 0;
    for (int64_t y = 0; y + P <= side; y += P) {
      for (int64_t x = 0; x + P <= side; x += P) {
        int tissue = 0;
        const auto fx = static_cast<double>(x), fy = static_cast<double>(y);
        for (int k = 0; k < 9; ++k) tissue += scene.is_tissue(fx + 16 + 32 * (k % 3), fy + 16 + 32 * (k / 3)) ? 1 : 0;
        if (tissue < 6) continue;
        const bool tumour = scene.is_tumour(fx + P / 2.0, fy + P / 2.0);
        if (tumour && max_tumour > 0 && tumours >= max_tumour) continue;
        scene.render_rgb(x, y, P, P, rgb.data());
        PatchRecord r;
        r.rgb = rgb.data();
        r.x = x, r.y = y, r.size_level0 = P;
        r.label = tumour ? 1 : 0;
        r.center_tumor_patch = tumour;
        r.wsi = name;
        if (r.label) {
          writer->add(r);
          ++tumours;
        } else if (static_cast<int64_t>(normal_pixels.size()) < tumours * normal_per_tumour + 8) {
          normal_pixels.push_back(rgb);
          normals.push_back(r);
        }
      }
    }
    for (size_t i = 0; i < normals.size(); ++i) {
      normals[i].rgb = normal_pixels[i].data();
      writer->add(normals[i]);
    }
  }
  writer->commit();
  return dir / (name + "_train_x.h5");
}

// One scene, as above.
inline std::filesystem::path write_scene_patches(const std::filesystem::path& dir, const std::string& name,
                                                 uint64_t seed, int64_t side, int normal_per_tumour = 2) {
  return write_scenes_patches(dir, name, {seed}, side, {}, 0, normal_per_tumour);
}

}  // namespace wsi::test
