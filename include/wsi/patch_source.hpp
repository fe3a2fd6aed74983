// wsi/patch_source.hpp — where the readers of a patch graph take their pixels from.
//
// Slide implements it; so does a reopening slide handle (src/slide/slide_handle.hpp) and, in
// tests, an image held in memory. The heatmap graph and `extract` read every patch through
// read_patch() (grid.hpp) over this interface.
//
// Frames and units: a Region's position is in level-0 pixels and its size in pixels of its
// level (region.hpp). Pixels outside the image are white (glass), as for Slide.
//
// Thread-safety: read_region() is called from many reader threads at once.
#pragma once

#include <cstdint>

#include "wsi/region.hpp"

namespace wsi {

class PatchSource {
 public:
  virtual ~PatchSource() = default;
  // Reads `region` as RGB into `rgb_out` (region.w * region.h * 3 bytes). Throws
  // RegionReadError when the pixels cannot be decoded.
  virtual void read_region(const Region& region, uint8_t* rgb_out) const = 0;
};

}  // namespace wsi
