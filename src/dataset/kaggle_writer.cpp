// Kaggle-layout writer (layout in wsi/dataset.hpp): one uncompressed 8-bit RGB TIFF per patch,
// tagged like the Kaggle set's own files (one strip, contiguous samples), named by the SHA-1 of its
// pixels. Each TIFF is written under a temporary name and renamed when complete; the CSVs are
// renamed at commit().
#include <tiffio.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "core/pending_file.hpp"
#include "dataset/meta_csv.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using detail::PendingFile;

// libtiff reports through callbacks; keep the first error for the WriteError, print nothing.
int keep_tiff_error(TIFF* /*tif*/, void* data, const char* /*module*/, const char* fmt, va_list ap) {
  auto* out = static_cast<std::string*>(data);
  if (out->empty()) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    *out = buf;
  }
  return 1;  // handled: libtiff must not call its global (printing) handler
}

int ignore_tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

class TiffFile {
 public:
  TiffFile(const fs::path& path, std::string* errors) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, keep_tiff_error, errors);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, ignore_tiff_warning, nullptr);
    tif_ = TIFFOpenExt(path.c_str(), "w", opts);
    TIFFOpenOptionsFree(opts);
  }
  ~TiffFile() {
    if (tif_) TIFFClose(tif_);
  }
  TiffFile(const TiffFile&) = delete;
  TiffFile& operator=(const TiffFile&) = delete;
  TIFF* get() const { return tif_; }

 private:
  TIFF* tif_ = nullptr;
};

class KaggleWriter final : public DatasetWriter {
 public:
  KaggleWriter(const fs::path& dir, const std::string& split, int patch_size)
      : patch_size_(patch_size),
        patch_dir_(dir / split),
        labels_(dir / (split + "_labels.csv")),
        meta_(dir / (split + "_meta.csv")) {
    std::error_code ec;
    fs::create_directories(patch_dir_, ec);
    if (ec || !fs::is_directory(patch_dir_))
      throw WriteError(patch_dir_, "cannot create the patch directory: " +
                                       (ec ? ec.message() : std::string("a file of that name is in the way")));
    labels_.write_line("id,label");
    meta_.write_line("id," + std::string(detail::kMetaColumns));
    strip_.resize(3 * static_cast<size_t>(patch_size) * static_cast<size_t>(patch_size));
  }

  void add(const PatchRecord& p) override {
    if (committed_) throw std::logic_error("KaggleWriter::add after commit");
    std::string id = sha1_hex(p.rgb, strip_.size());
    if (ids_.contains(id)) {
      ++stats_.duplicates_skipped;
      return;
    }
    write_tiff(patch_dir_ / (id + ".tif"), p.rgb);
    labels_.write_line(id + "," + std::to_string(int{p.label}));
    meta_.write_line(id + "," + detail::meta_row(p));
    ids_.insert(std::move(id));
    ++stats_.written;
    ++(p.label ? stats_.positives : stats_.negatives);
  }

  void commit() override {
    if (committed_) return;
    labels_.close();
    meta_.close();
    labels_.commit();
    meta_.commit();
    committed_ = true;
  }

  std::vector<fs::path> outputs() const override { return {patch_dir_, labels_.final_path(), meta_.final_path()}; }
  const DatasetWriterStats& stats() const override { return stats_; }

 private:
  void write_tiff(const fs::path& path, const uint8_t* rgb) {
    PendingFile file(path);
    std::string error;  // libtiff's own message; for I/O the system's (errno) says more
    auto fail = [&](const std::string& what, int err) {
      const std::string cause = err ? std::strerror(err) : error;
      throw WriteError(path, what + (cause.empty() ? "" : ": " + cause) + " (is the disk full?)");
    };
    {
      TiffFile tiff(file.tmp(), &error);
      TIFF* t = tiff.get();
      if (!t) fail("cannot create the TIFF", errno);
      const auto size = static_cast<uint32_t>(patch_size_);
      if (!TIFFSetField(t, TIFFTAG_IMAGEWIDTH, size) || !TIFFSetField(t, TIFFTAG_IMAGELENGTH, size) ||
          !TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, uint16_t{8}) ||
          !TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, uint16_t{3}) ||
          !TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, uint16_t{SAMPLEFORMAT_UINT}) ||
          !TIFFSetField(t, TIFFTAG_PHOTOMETRIC, uint16_t{PHOTOMETRIC_RGB}) ||
          !TIFFSetField(t, TIFFTAG_PLANARCONFIG, uint16_t{PLANARCONFIG_CONTIG}) ||
          !TIFFSetField(t, TIFFTAG_COMPRESSION, uint16_t{COMPRESSION_NONE}) ||
          !TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, size) ||
          !TIFFSetField(t, TIFFTAG_SOFTWARE, "wsi-heatmap " WSI_VERSION))
        fail("cannot set the TIFF tags", 0);
      // libtiff may modify the buffer it is given, so it gets a copy.
      std::copy(rgb, rgb + strip_.size(), strip_.begin());
      errno = 0;
      if (TIFFWriteEncodedStrip(t, 0, strip_.data(), static_cast<tmsize_t>(strip_.size())) < 0)
        fail("writing the TIFF failed", errno);
      errno = 0;
      if (TIFFFlush(t) != 1) fail("writing the TIFF directory failed", errno);
    }
    file.commit();
  }

  int patch_size_;
  fs::path patch_dir_;
  detail::PendingCsv labels_, meta_;
  std::vector<uint8_t> strip_;
  std::unordered_set<std::string> ids_;
  DatasetWriterStats stats_;
  bool committed_ = false;
};

}  // namespace

std::unique_ptr<DatasetWriter> make_kaggle_writer(const fs::path& dir, const std::string& split, int patch_size) {
  detail::check_name_part("split", split, false);
  if (patch_size <= 0)
    throw UsageError("patch size must be a positive number of pixels, got " + std::to_string(patch_size));
  return std::make_unique<KaggleWriter>(dir, split, patch_size);
}

}  // namespace wsi
