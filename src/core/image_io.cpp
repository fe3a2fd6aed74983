#include "wsi/image_io.hpp"

#include <vips/vips.h>

#include "core/pending_file.hpp"
#include "core/vips.hpp"
#include "wsi/error.hpp"

namespace wsi {

void write_png(const RgbImage& image, const std::filesystem::path& out) {
  detail::ensure_vips_started();
  detail::PendingFile file(out);
  VipsImage* v = vips_image_new_from_memory(image.pixels.data(), image.pixels.size(), static_cast<int>(image.width),
                                            static_cast<int>(image.height), 3, VIPS_FORMAT_UCHAR);
  if (!v) throw WriteError(out, "cannot wrap the image: " + detail::take_vips_error());
  const int rc = vips_pngsave(v, file.tmp().c_str(), "compression", 6, nullptr);
  g_object_unref(v);
  if (rc != 0) throw WriteError(out, "writing the PNG failed: " + detail::take_vips_error() + " (is the disk full?)");
  file.commit();
}

}  // namespace wsi
