#include "core/vips.hpp"

#include <vips/vips.h>

#include <mutex>

#include "wsi/error.hpp"

namespace wsi::detail {

void ensure_vips_started() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    ok = vips_init("wsi-heatmap") == 0;
    if (ok) {
      // Library code never prints: libvips warnings would otherwise go to stderr.
      g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {},
                        nullptr);
      // Results are streamed once; caching operations only costs memory.
      vips_cache_set_max(0);
    }
  });
  if (!ok) throw Error("cannot start libvips: " + take_vips_error());
}

std::string take_vips_error() {
  std::string s = vips_error_buffer();
  vips_error_clear();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s)
    if (c == '\n') c = ' ';
  return s.empty() ? "unknown libvips error" : s;
}

}  // namespace wsi::detail
