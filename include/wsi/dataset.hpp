// wsi/dataset.hpp — writers for labelled patch datasets in formats PyTorch, Keras and Kaggle code
// already read.
//
//   pcam:   <dir>/<prefix>_<split>_x.h5    dataset "x", N x P x P x 3 uint8 (P = patch size)
//           <dir>/<prefix>_<split>_y.h5    dataset "y", N x 1 x 1 x 1 uint8 (0/1)
//           <dir>/<prefix>_<split>_meta.csv  PCam's columns coord_y,coord_x,tumor_patch,
//             center_tumor_patch,wsi (True/False like pandas), then ours: label,tumour_fraction,
//             copy,augment,level,patch_size_level0. coord_x/coord_y are the LEVEL-0 pixel
//             position of the patch's TOP-LEFT corner; patch_size_level0 is its level-0 extent.
//           Chunked (64 patches), gzip-compressed (HDF5's deflate filter, so h5py and PCam
//           readers decode them), extended as patches stream in. Chunks are compressed on oneTBB
//           tasks and written in order: the same patches give the same bytes whatever the thread
//           count and on every run (no timestamps).
//   kaggle: <dir>/train/<id>.tif + <dir>/train_labels.csv (id,label) for split "train"; other
//           splits use <dir>/<split>/ and <dir>/<split>_labels.csv. <id> is the lower-case hex
//           SHA-1 of the raw P x P x 3 RGB bytes (row-major, interleaved), like Kaggle's set, so a
//           duplicate patch cannot get two ids: the second copy is skipped and counted.
//           <dir>/<split>_meta.csv carries id,coord_y,coord_x,... as for pcam.
//
// Crash safety: every file is written under a temporary name (see core/pending_file.hpp) and
// renamed into place by commit(); a writer destroyed without commit() (exception, full disk)
// removes its temporaries, so no partial HDF5 or CSV is ever left under a final name. Kaggle
// patch TIFFs are renamed one by one (each is complete), the labels CSV only at commit().
//
// Thread-safety: a writer is used from one thread at a time (the pipeline's serial output stage).
// The pcam writer compresses on oneTBB tasks of its own, in the arena of the thread that calls
// add() (so tbb::global_control limits them too); its destructor waits for them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace wsi {

enum class DatasetFormat { pcam, kaggle };
DatasetFormat parse_dataset_format(const std::string& s);  // throws UsageError

// What a dataset records about one patch besides its pixels (the meta CSV's columns).
struct PatchMeta {
  int64_t x = 0, y = 0;             // level-0 top-left of the patch
  int64_t size_level0 = 0;          // level-0 extent of the patch (patch_size * target/level0 mpp)
  int level = 0;                    // slide level the pixels were read from
  uint8_t label = 0;                // 0 normal, 1 tumour (after the label rule)
  bool tumor_patch = false;         // any tumour pixel in the patch
  bool center_tumor_patch = false;  // any tumour pixel in the central region
  double tumour_fraction = 0.0;     // 0..1 over the whole patch
  int copy = 0;                     // 0 = original, k > 0 = k-th oversampled duplicate
  std::string augment;              // "" or the D4 op applied: "flip-h", "rot90", ...
  std::string wsi;                  // slide name (file stem)
};

// One patch as it goes into a dataset.
struct PatchRecord : PatchMeta {
  const uint8_t* rgb = nullptr;  // patch_size x patch_size x 3, row-major RGB
};

struct DatasetWriterStats {
  int64_t written = 0;
  int64_t duplicates_skipped = 0;  // kaggle: identical pixels already written
  int64_t positives = 0;
  int64_t negatives = 0;
};

class DatasetWriter {
 public:
  virtual ~DatasetWriter() = default;
  // Appends one patch. Throws WriteError (naming the file) on I/O failure.
  virtual void add(const PatchRecord& patch) = 0;
  // Flushes and renames every file into place. After commit() add() must not be called.
  virtual void commit() = 0;
  // The final paths this writer produces (for the summary).
  virtual std::vector<std::filesystem::path> outputs() const = 0;
  virtual const DatasetWriterStats& stats() const = 0;
};

// `dir` must exist. `patch_size` is P. Throws WriteError when the files cannot be created.
// pcam: `threads` bounds the chunks being compressed at once (2 per thread are held, about
// 2 x P*P*3*64 bytes each); 0 = what oneTBB may use now (tbb::global_control's limit).
std::unique_ptr<DatasetWriter> make_pcam_writer(const std::filesystem::path& dir, const std::string& prefix,
                                                const std::string& split, int patch_size, int threads = 0);
std::unique_ptr<DatasetWriter> make_kaggle_writer(const std::filesystem::path& dir, const std::string& split,
                                                  int patch_size);

// ---- Reading labelled patch sets (for train / evaluate) ----

// A labelled set of square RGB patches. Thread-safety: read() from one thread at a time.
class PatchSet {
 public:
  virtual ~PatchSet() = default;
  virtual int patch_size() const = 0;
  virtual int64_t size() const = 0;
  virtual const std::vector<int>& labels() const = 0;  // 0 / 1 (-1: unknown, see open_patch_set)
  virtual std::string id(int64_t index) const = 0;     // Kaggle id, or "<x.h5>#<row>"
  // Reads patches [first, first + count) into `rgb` (count * P * P * 3 bytes, HWC RGB).
  // Throws SlideError/ConfigError naming the file.
  virtual void read(int64_t first, int64_t count, uint8_t* rgb) const = 0;
  virtual std::string describe() const = 0;
};

// Opens either layout:
//   * PCam: a `*_x.h5` file (dataset "x", N x P x P x 3 uint8); labels from the `*_y.h5` beside
//     it (dataset "y", N x 1 x 1 x 1 or N), as PatchCamelyon ships them and `extract` writes them;
//   * Kaggle: a labels CSV (`id,label`; a leading pandas index column is accepted), or a directory
//     holding `train_labels.csv`; images are `<dir>/<split>/<id>.tif` (split = the CSV name
//     without `_labels.csv`) or `<dir>/<id>.tif`.
// With require_labels false, a PCam *_x.h5 without its *_y.h5 opens too, every label -1
// (unknown; `predict` reads unlabelled sets so). Throws UsageError (missing path) or ConfigError
// (what is wrong and where).
std::unique_ptr<PatchSet> open_patch_set(const std::filesystem::path& path, bool require_labels = true);

// Reads back a meta CSV the writers wrote (pcam `<prefix>_<split>_meta.csv` or kaggle
// `<split>_meta.csv`), one entry per row in file order, i.e. in the order of the patches in the
// HDF5 / labels CSV. Throws ConfigError naming the file and line.
std::vector<PatchMeta> read_patch_meta(const std::filesystem::path& csv);

// Lower-case hex SHA-1 of `size` bytes (OpenSSL).
std::string sha1_hex(const uint8_t* data, size_t size);
// Lower-case hex SHA-1 of a file's contents, read in 1 MiB blocks. Throws Error naming the file.
std::string sha1_file(const std::filesystem::path& path);

}  // namespace wsi
