#include <openslide.h>

#include <vector>

#include "slide/pixel_reader.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace {

class OpenSlideReader final : public PixelReader {
 public:
  OpenSlideReader(openslide_t* osr, std::filesystem::path path) : osr_(osr), path_(std::move(path)) {}

  std::string_view name() const override { return "openslide"; }

  void read(const Region& region, uint8_t* rgb) const override {
    // Per-thread scratch: reads are concurrent and must not allocate per call.
    thread_local std::vector<uint32_t> argb;
    argb.resize(static_cast<size_t>(region.w * region.h));
    openslide_read_region(osr_, argb.data(), region.x, region.y, region.level, region.w, region.h);
    if (const char* err = openslide_get_error(osr_))
      throw RegionReadError(path_, region,
                            std::string(err) +
                                ". The slide is damaged at or before this place; OpenSlide refuses further "
                                "reads of this handle (re-export the slide, or exclude the region)");
    argb_over_white_to_rgb(argb.data(), argb.size(), rgb);
  }

 private:
  openslide_t* osr_;  // owned by the Slide
  std::filesystem::path path_;
};

}  // namespace

std::unique_ptr<PixelReader> make_openslide_reader(openslide_t* osr, const std::filesystem::path& path) {
  return std::make_unique<OpenSlideReader>(osr, path);
}

}  // namespace wsi::detail
