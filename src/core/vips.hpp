// Private: libvips start-up and error capture shared by the stages that use libvips.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

typedef struct _VipsTarget VipsTarget;

namespace wsi::detail {

// Starts libvips once per process (thread-safe). Throws wsi::Error if it cannot start.
void ensure_vips_started();

// Takes and clears libvips' (thread-local) error buffer, trimmed to one line.
std::string take_vips_error();

// Writes `final_path` with `save` (a libvips *save_target call on the target given; non-zero =
// failure) under a temporary name, renamed into place only when every byte reached the file and
// it closed cleanly. The target never reports a failed write to libvips: libvips 8.14.1 (Debian
// 12's) frees its TIFF writer on a write error and then uses it (libvips#3411: a full disk
// crashed `synth`, and once a truncated slide was renamed into place as if complete). Here the
// first write error is kept, later writes are dropped, reads of what was dropped give zeros, and
// the run then throws WriteError naming the file and the cause. `check` (optional) looks at the
// complete temporary file before the rename and throws WriteError when it is not whole.
void save_through_target(const std::filesystem::path& final_path, const std::function<int(VipsTarget*)>& save,
                         const std::function<void(const std::filesystem::path& tmp)>& check = {});

// Checks a TIFF written by libvips: every directory opens, and every tile or strip lies within
// the file. Throws WriteError naming `final_path` (messages) when not.
void check_tiff_is_whole(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

// One line of text as libvips renders it (Pango, the system's sans-serif font through fontconfig;
// Debian's fontconfig always brings one): an 8-bit coverage mask, row-major, 0 = paper, 255 = ink,
// antialiased. `pixel_size` is the font size in pixels (about the height of a capital plus
// descender). Plain text: no Pango markup is interpreted. Thread-safe (libvips serialises Pango).
// Throws wsi::Error when libvips cannot render it.
struct TextMask {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> ink;
};
TextMask render_text(const std::string& utf8, int pixel_size);

}  // namespace wsi::detail
