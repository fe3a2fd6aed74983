// One libtiff handle (TIFF*) that closes itself and keeps the error messages libtiff reported
// through it, the one way the stages open TIFFs with libtiff (heatmap_io's pyramid writer, the
// slide's tile reader and its diagnosis of unrecognised files, image_io's TIFF decoding).
//
// Why per-handle handlers (libtiff >= 4.5's TIFFOpenOptions): libtiff's process-wide handlers
// print to stderr, and library code never prints; per handle, a message lands in the handle of
// the thread whose call caused it, and other libraries sharing libtiff (OpenSlide, libvips) keep
// their own handlers. Warnings are dropped: what matters comes back as an error or a failed call.
//
// Thread-safety: like a TIFF*, one thread at a time per handle. Not movable: libtiff holds the
// handle's address for its messages.
#pragma once

#include <tiffio.h>

#include <filesystem>
#include <string>

namespace wsi::detail {

class TiffHandle {
 public:
  TiffHandle() = default;
  ~TiffHandle();
  TiffHandle(const TiffHandle&) = delete;
  TiffHandle& operator=(const TiffHandle&) = delete;

  // Opens `path` with TIFFOpen's `mode` ("r", "w8" for a new BigTIFF, "rDm", ...), closing what
  // was open and clearing the messages first. False on failure, with errno as libtiff's open left
  // it (the system's reason, when there is one) and the messages.
  bool open(const std::filesystem::path& path, const char* mode);
  void close();

  TIFF* get() const { return tif_; }
  explicit operator bool() const { return tif_ != nullptr; }

  // Every error message since open() or clear_messages(), each as "MODULE: TEXT" (TEXT alone
  // without a module), joined by "; "; empty when there was none.
  const std::string& messages() const { return messages_; }
  // The first of them, which says what went wrong (later ones follow from it): as in messages(),
  // and its TEXT alone.
  const std::string& first_error() const { return first_error_; }
  const std::string& first_error_text() const { return first_error_text_; }
  void clear_messages();

 private:
  static int on_error(TIFF* tif, void* handle, const char* module, const char* fmt, va_list ap);

  TIFF* tif_ = nullptr;
  std::string messages_, first_error_, first_error_text_;
};

}  // namespace wsi::detail
