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

// Writes <dir>/<name>_train_x.h5 (+ _y.h5, meta) from a `side` x `side` scene at 0.972 um/px and
// returns the x.h5 path. Normal patches are thinned to at most `normal_per_tumour` per tumour
// patch so small sets stay balanced enough to learn from.
inline std::filesystem::path write_scene_patches(const std::filesystem::path& dir, const std::string& name,
                                                 uint64_t seed, int64_t side, int normal_per_tumour = 2) {
  SynthParams sp;
  sp.width = sp.height = side;
  sp.mpp = 0.972;
  sp.seed = seed;
  sp.tumours = 3;
  const SynthScene scene(sp);
  constexpr int P = 96;
  auto writer = make_pcam_writer(dir, name, "train", P);
  std::vector<uint8_t> rgb(P * P * 3);
  std::vector<PatchRecord> normals;
  std::vector<std::vector<uint8_t>> normal_pixels;
  int64_t tumours = 0;
  for (int64_t y = 0; y + P <= side; y += P) {
    for (int64_t x = 0; x + P <= side; x += P) {
      int tissue = 0;
      const auto fx = static_cast<double>(x), fy = static_cast<double>(y);
      for (int k = 0; k < 9; ++k) tissue += scene.is_tissue(fx + 16 + 32 * (k % 3), fy + 16 + 32 * (k / 3)) ? 1 : 0;
      if (tissue < 6) continue;
      scene.render_rgb(x, y, P, P, rgb.data());
      PatchRecord r;
      r.rgb = rgb.data();
      r.x = x, r.y = y, r.size_level0 = P;
      r.label = scene.is_tumour(fx + P / 2.0, fy + P / 2.0) ? 1 : 0;
      r.center_tumor_patch = r.label == 1;
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
  writer->commit();
  return dir / (name + "_train_x.h5");
}

}  // namespace wsi::test
