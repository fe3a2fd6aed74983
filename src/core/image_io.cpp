#include "wsi/image_io.hpp"

#include <vips/vips.h>

#include "core/pending_file.hpp"
#include "core/vips.hpp"
#include "wsi/error.hpp"

namespace wsi {

void write_png(const RgbImage& image, const std::filesystem::path& out) {
  detail::ensure_vips_started();
  VipsImage* v = vips_image_new_from_memory(image.pixels.data(), image.pixels.size(), static_cast<int>(image.width),
                                            static_cast<int>(image.height), 3, VIPS_FORMAT_UCHAR);
  if (!v) throw WriteError(out, "cannot wrap the image: " + detail::take_vips_error());
  struct Unref {
    VipsImage* v;
    ~Unref() { g_object_unref(v); }
  } unref{v};
  detail::save_through_target(out, [&](VipsTarget* t) { return vips_pngsave_target(v, t, "compression", 6, nullptr); });
}

}  // namespace wsi
