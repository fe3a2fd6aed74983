// One libtiff handle with its error messages (see tiff_handle.hpp).
#include "core/tiff_handle.hpp"

#include <cerrno>
#include <cstdarg>
#include <cstdio>

#include "core/text.hpp"

namespace wsi::detail {
namespace {

int ignore_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

}  // namespace

TiffHandle::~TiffHandle() { close(); }

void TiffHandle::close() {
  if (tif_) TIFFClose(tif_);
  tif_ = nullptr;
}

void TiffHandle::clear_messages() {
  messages_.clear();
  first_error_.clear();
  first_error_text_.clear();
}

int TiffHandle::on_error(TIFF*, void* handle, const char* module, const char* fmt, va_list ap) {
  auto* h = static_cast<TiffHandle*>(handle);
  char text[512];
  std::vsnprintf(text, sizeof text, fmt, ap);
  const std::string message = module && *module ? std::string(module) + ": " + text : std::string(text);
  if (h->messages_.empty()) {
    h->first_error_ = message;
    h->first_error_text_ = text;
  }
  append_clause(h->messages_, message);
  return 1;  // handled: libtiff's process-wide (printing) handler is not called
}

bool TiffHandle::open(const std::filesystem::path& path, const char* mode) {
  close();
  clear_messages();
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, this);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, ignore_warning, nullptr);
  errno = 0;
  tif_ = TIFFOpenExt(path.c_str(), mode, opts);
  const int err = errno;  // TIFFOpenOptionsFree may change it
  TIFFOpenOptionsFree(opts);
  errno = err;
  return tif_ != nullptr;
}

}  // namespace wsi::detail
