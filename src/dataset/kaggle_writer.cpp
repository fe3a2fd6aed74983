// Kaggle-layout writer (layout in wsi/dataset.hpp): one uncompressed 8-bit RGB TIFF per patch,
// tagged like the Kaggle set's own files (one strip, contiguous samples), named by the SHA-1 of its
// pixels. The TIFFs go into a temporary directory beside the split's folder, which commit()
// renames into place with the CSVs: a run that fails (a full disk) leaves no patch folder without
// its labels, and a split written again replaces its folder instead of mixing two runs' patches.
#include <tiffio.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "core/pending_file.hpp"
#include "core/tiff_handle.hpp"
#include "dataset/meta_csv.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

// A directory made under a temporary name beside `final`, removed with what is in it unless
// commit() renamed it into place (replacing a directory of that name).
class PendingDir {
 public:
  explicit PendingDir(fs::path final) : final_(std::move(final)), tmp_(detail::temporary_name(final_)) {
    std::error_code ec;
    if (fs::exists(final_, ec) && !fs::is_directory(final_, ec))
      throw WriteError(final_, "cannot create the patch directory: a file of that name is in the way");
    fs::create_directories(tmp_, ec);
    if (ec || !fs::is_directory(tmp_)) throw WriteError(final_, "cannot create the patch directory: " + ec.message());
  }
  ~PendingDir() {
    std::error_code ec;
    if (!committed_) fs::remove_all(tmp_, ec);
  }
  PendingDir(const PendingDir&) = delete;
  PendingDir& operator=(const PendingDir&) = delete;
  const fs::path& tmp() const { return tmp_; }
  const fs::path& final_path() const { return final_; }
  void commit() {
    std::error_code ec;
    fs::path old;
    if (fs::exists(final_, ec)) {  // a dataset written before: out of the way first, removed after
      old = detail::temporary_name(final_);
      fs::rename(final_, old, ec);
      if (ec) throw WriteError(final_, "cannot replace the patch directory: " + ec.message());
    }
    fs::rename(tmp_, final_, ec);
    if (ec) throw WriteError(final_, "cannot rename the patch directory into place: " + ec.message());
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  fs::path final_, tmp_;
  bool committed_ = false;
};

class KaggleWriter final : public DatasetWriter {
 public:
  KaggleWriter(const fs::path& dir, const std::string& split, int patch_size)
      : patch_size_(patch_size),
        patch_dir_(dir / split),
        labels_(dir / (split + "_labels.csv")),
        meta_(dir / (split + "_meta.csv")) {
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
    write_tiff(id + ".tif", p.rgb);
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
    patch_dir_.commit();
    labels_.commit();
    meta_.commit();
    committed_ = true;
  }

  std::vector<fs::path> outputs() const override {
    return {patch_dir_.final_path(), labels_.final_path(), meta_.final_path()};
  }
  const DatasetWriterStats& stats() const override { return stats_; }

 private:
  // Into the pending directory (the whole directory is renamed at commit); messages name the file
  // where it was to end up.
  void write_tiff(const std::string& name, const uint8_t* rgb) {
    const fs::path path = patch_dir_.final_path() / name;
    detail::TiffHandle tiff;
    // libtiff's own (first) message; for I/O the system's (errno) says more.
    auto fail = [&](const std::string& what, int err) {
      const std::string cause = err ? std::strerror(err) : tiff.first_error_text();
      throw WriteError(path, what + (cause.empty() ? "" : ": " + cause) + " (is the disk full?)");
    };
    {
      if (!tiff.open(patch_dir_.tmp() / name, "w")) fail("cannot create the TIFF", errno);
      TIFF* t = tiff.get();
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
  }

  int patch_size_;
  PendingDir patch_dir_;  // before the CSVs: removed after them when abandoned
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
