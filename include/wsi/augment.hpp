// wsi/augment.hpp — training-time augmentation of RGB patches (pure, torch-free).
//
// What the seeds' Keras ImageDataGenerator did, plus what histopathology needs:
//   geometry  one affine map about the patch centre: a random multiple of 90°, horizontal and
//             vertical flips (each with probability 1/2), a rotation uniform in ±max_rotation_deg,
//             an isotropic zoom uniform in [1 - max_zoom, 1 + max_zoom] and a translation uniform in
//             ±max_shift of the patch side per axis; bilinear sampling, reflected at the borders
//             (tissue continues past the edge; Keras' constant/nearest fills draw artificial edges);
//   stain     H&E(+DAB) optical-density jitter (Tellez et al. 2018): Ruifrok–Johnston colour
//             deconvolution, each stain's concentration scaled by U[1-s, 1+s] and shifted by U[-s, s];
//   colour    HSV jitter: hue shifted by U[-h, h] turns, saturation and value scaled by U[1-x, 1+x].
// Every random number comes from SplitMix64(seed), so a patch's augmentation depends only on
// its seed (training derives it from the run seed, the epoch and the patch index), whatever the
// thread that computes it.
//
// Frames and units: square patches, P x P RGB uint8, row-major HWC (like wsi::RgbImage).
// Thread-safety: pure function.
#pragma once

#include <cstdint>

namespace wsi {

struct AugmentParams {
  bool rot90 = true, flips = true;
  double max_rotation_deg = 90;  // Keras rotation_range
  double max_zoom = 0.2;         // Keras zoom_range
  double max_shift = 0.1;        // Keras width/height_shift_range (fraction of the side)
  double stain = 0.05;           // HED jitter strength (0 = off)
  double hue = 0.02, saturation = 0.1, value = 0.1;  // HSV jitter (0 = off)

  static AugmentParams none() { return {false, false, 0, 0, 0, 0, 0, 0, 0}; }
  bool geometric() const { return rot90 || flips || max_rotation_deg > 0 || max_zoom > 0 || max_shift > 0; }
};

// Writes the augmented version of `src` to `dst` (both P*P*3 bytes; they must not alias).
// With AugmentParams::none() dst is an exact copy.
void augment_patch(const uint8_t* src, uint8_t* dst, int size, const AugmentParams& params, uint64_t seed);

}  // namespace wsi
