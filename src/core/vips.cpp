#include "core/vips.hpp"

#include <fcntl.h>
#include <tiffio.h>
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/pending_file.hpp"
#include "core/tiff_handle.hpp"
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

namespace {

// The file behind a fail-soft target: positioned I/O on `fd`, the logical end kept apart from
// what reached the disk, so libvips and libtiff see a file that behaves whatever was dropped.
struct FailSoftFile {
  int fd = -1;
  int64_t pos = 0, end = 0;
  int error = 0;  // errno of the first failed write; writes are dropped from then on
};

gint64 on_write(VipsTargetCustom*, const void* data, gint64 length, FailSoftFile* f) {
  if (f->error == 0) {
    const auto* p = static_cast<const char*>(data);
    int64_t done = 0;
    while (done < length) {
      const ssize_t n = ::pwrite(f->fd, p + done, static_cast<size_t>(length - done), f->pos + done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        f->error = n < 0 ? errno : ENOSPC;
        break;
      }
      done += n;
    }
  }
  f->pos += length;
  f->end = std::max(f->end, f->pos);
  return length;  // always "written": see save_through_target
}

gint64 on_read(VipsTargetCustom*, void* buffer, gint64 length, FailSoftFile* f) {
  const int64_t n = std::max<int64_t>(0, std::min(length, f->end - f->pos));
  int64_t got = 0;
  while (f->error == 0 && got < n) {
    const ssize_t r = ::pread(f->fd, static_cast<char*>(buffer) + got, static_cast<size_t>(n - got), f->pos + got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  std::memset(static_cast<char*>(buffer) + got, 0, static_cast<size_t>(n - got));  // what was dropped
  f->pos += n;
  return n;
}

gint64 on_seek(VipsTargetCustom*, gint64 offset, int whence, FailSoftFile* f) {
  const int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : f->end;
  if (base + offset < 0) return -1;
  f->pos = base + offset;
  return f->pos;
}

int on_end(VipsTargetCustom*, FailSoftFile*) { return 0; }

}  // namespace

void save_through_target(const std::filesystem::path& final_path, const std::function<int(VipsTarget*)>& save,
                         const std::function<void(const std::filesystem::path&)>& check) {
  ensure_vips_started();
  PendingFile pending(final_path);
  FailSoftFile f;
  f.fd = ::open(pending.tmp().c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd < 0) throw WriteError(final_path, std::string("cannot create the file: ") + std::strerror(errno));
  VipsTargetCustom* target = vips_target_custom_new();
  g_signal_connect(target, "write", G_CALLBACK(on_write), &f);
  g_signal_connect(target, "read", G_CALLBACK(on_read), &f);
  g_signal_connect(target, "seek", G_CALLBACK(on_seek), &f);
  g_signal_connect(target, "end", G_CALLBACK(on_end), &f);
  const int rc = save(VIPS_TARGET(target));
  const std::string vips_message = rc != 0 ? take_vips_error() : std::string();
  g_object_unref(target);
  const int close_error = ::close(f.fd) == 0 ? 0 : errno;
  if (f.error != 0 || (rc == 0 && close_error != 0))
    throw WriteError(final_path, std::string("writing failed: ") + std::strerror(f.error ? f.error : close_error) +
                                     " (is the disk full?)");
  if (rc != 0) throw WriteError(final_path, "writing failed: " + vips_message);
  if (check) check(pending.tmp());
  pending.commit();
}

void check_tiff_is_whole(const std::filesystem::path& tmp, const std::filesystem::path& final_path) {
  std::error_code ec;
  const auto size = static_cast<uint64_t>(std::filesystem::file_size(tmp, ec));
  if (ec) throw WriteError(final_path, "cannot check what was written: " + ec.message());
  TiffHandle tiff;  // its messages are not needed: the checks below say what is wrong
  const auto broken = [&](const std::string& why) {
    throw WriteError(final_path, "the written file is not whole (" + why + "); it was not renamed into place");
  };
  if (!tiff.open(tmp, "r")) broken("it does not open as a TIFF");
  TIFF* t = tiff.get();
  int dir = 0;
  do {
    const bool tiled = TIFFIsTiled(t);
    const uint64_t* offsets = nullptr;
    const uint64_t* counts = nullptr;
    if (!TIFFGetField(t, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
        !TIFFGetField(t, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts))
      broken("directory " + std::to_string(dir) + " has no data offsets");
    const uint32_t n = tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
    for (uint32_t i = 0; i < n; ++i)
      if (counts[i] == 0 || offsets[i] + counts[i] > size)
        broken("directory " + std::to_string(dir) + " block " + std::to_string(i) + " lies past its end");
    ++dir;
  } while (TIFFReadDirectory(t));
}

TextMask render_text(const std::string& utf8, int pixel_size) {
  ensure_vips_started();
  TextMask m;
  if (utf8.empty()) return m;
  // vips_text reads Pango markup: escape it so ids such as "a<b&c" print as written. At 72 dpi a
  // point is a pixel.
  gchar* escaped = g_markup_escape_text(utf8.c_str(), static_cast<gssize>(utf8.size()));
  const std::string font = "sans " + std::to_string(pixel_size) + "px";
  VipsImage* text = nullptr;
  const int rc = vips_text(&text, escaped, "font", font.c_str(), "dpi", 72, nullptr);
  g_free(escaped);
  if (rc != 0) throw Error("cannot render text with libvips: " + take_vips_error());
  size_t bytes = 0;
  void* mem = vips_image_write_to_memory(text, &bytes);
  m.width = vips_image_get_width(text);
  m.height = vips_image_get_height(text);
  g_object_unref(text);
  if (!mem) throw Error("cannot render text with libvips: " + take_vips_error());
  m.ink.assign(static_cast<const uint8_t*>(mem), static_cast<const uint8_t*>(mem) + bytes);
  g_free(mem);
  return m;
}

}  // namespace wsi::detail
