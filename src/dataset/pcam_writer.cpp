// PCam-layout HDF5 writer (layout in wsi/dataset.hpp). Patches are staged into whole chunks,
// each chunk is compressed on a oneTBB task (OrderedDeflate: libdeflate, a zlib stream, which is
// what the dataset's deflate filter decodes) and written whole, in order, with H5Dset_extent +
// H5Dwrite_chunk from the caller's thread. HDF5's own deflate filter, serial and zlib's, never
// runs; the bytes depend only on the patches, not on the thread count or timing. Memory stays at
// a few chunks per thread however many patches come.
//
// Why a file driver of our own: HDF5 up to 1.14.0 frees a file's state when H5Fclose fails (for
// instance a full disk while flushing) but keeps its id, and then crashes at process exit when it
// closes that id again (HDFGroup/hdf5 #2257, fixed in 1.14.1; Debian 12 ships 1.10.8). So HDF5
// must never see a failed write: the driver below is the POSIX "sec2" driver except that it
// records the first failed write's errno, answers success, and drops all later writes. The writer
// checks that record after every HDF5 call that can write and throws WriteError; the file is then
// closed cleanly (nothing more reaches the disk) and its temporary removed.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <tbb/global_control.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/pending_file.hpp"
#include "dataset/meta_csv.hpp"
#include "dataset/parallel_deflate.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using detail::PendingFile;

// ---- The fail-soft file driver ----------------------------------------------------------------

// Shared between one Hdf5Array and its open file.
struct IoStatus {
  int error = 0;         // errno of the first failed write/truncate/close; 0 while all went well
  bool discard = false;  // the file is being abandoned: write nothing more
};

#if !H5_VERSION_GE(1, 12, 0)  // the 1.10 driver interface (H5FD_class_t without a version field)

struct FailSoftInfo {  // the driver's file-access property: where to report
  IoStatus* status = nullptr;
};

struct FailSoftFile {
  H5FD_t pub;  // first, as HDF5's drivers require: HDF5 fills it and hands us back this pointer
  int fd = -1;
  haddr_t eoa = 0, eof = 0;
  dev_t device = 0;
  ino_t inode = 0;
  IoStatus* status = nullptr;
};

FailSoftFile* as_file(H5FD_t* f) { return reinterpret_cast<FailSoftFile*>(f); }
const FailSoftFile* as_file(const H5FD_t* f) { return reinterpret_cast<const FailSoftFile*>(f); }

void record(IoStatus* status, int err) {
  if (status && status->error == 0) status->error = err ? err : EIO;
}

H5FD_t* fs_open(const char* name, unsigned flags, hid_t fapl, haddr_t /*maxaddr*/) {
  const auto* info = static_cast<const FailSoftInfo*>(H5Pget_driver_info(fapl));
  IoStatus* status = info ? info->status : nullptr;
  if (!status) return nullptr;  // only the writer below opens files with this driver
  int oflags = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
  if (flags & H5F_ACC_TRUNC) oflags |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) oflags |= O_CREAT;
  if (flags & H5F_ACC_EXCL) oflags |= O_EXCL;
  const int fd = ::open(name, oflags | O_CLOEXEC, 0666);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    // Not recorded in IoStatus: H5Fcreate probes for an existing file first, and that may fail.
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL, H5E_CANTOPENFILE, "%s",
             std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return nullptr;
  }
  auto* f = new (std::nothrow) FailSoftFile{};
  if (!f) {
    ::close(fd);
    return nullptr;
  }
  f->fd = fd;
  f->eof = static_cast<haddr_t>(st.st_size);
  f->device = st.st_dev;
  f->inode = st.st_ino;
  f->status = status;
  return &f->pub;
}

herr_t fs_close(H5FD_t* file) {
  FailSoftFile* f = as_file(file);
  if (::close(f->fd) != 0 && !f->status->discard) record(f->status, errno);
  delete f;
  return 0;
}

int fs_cmp(const H5FD_t* a, const H5FD_t* b) {
  const FailSoftFile *fa = as_file(a), *fb = as_file(b);
  if (fa->device != fb->device) return fa->device < fb->device ? -1 : 1;
  if (fa->inode != fb->inode) return fa->inode < fb->inode ? -1 : 1;
  return 0;
}

herr_t fs_query(const H5FD_t* /*file*/, unsigned long* flags) {
  if (flags)  // what sec2 declares: HDF5 may aggregate and cache small writes
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA;
  return 0;
}

haddr_t fs_get_eoa(const H5FD_t* file, H5FD_mem_t /*type*/) { return as_file(file)->eoa; }
herr_t fs_set_eoa(H5FD_t* file, H5FD_mem_t /*type*/, haddr_t addr) {
  as_file(file)->eoa = addr;
  return 0;
}
haddr_t fs_get_eof(const H5FD_t* file, H5FD_mem_t /*type*/) { return as_file(file)->eof; }

herr_t fs_get_handle(H5FD_t* file, hid_t /*fapl*/, void** handle) {
  *handle = &as_file(file)->fd;
  return 0;
}

herr_t fs_read(H5FD_t* file, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t addr, size_t size, void* buffer) {
  FailSoftFile* f = as_file(file);
  auto* out = static_cast<unsigned char*>(buffer);
  while (size > 0) {
    const ssize_t n = ::pread(f->fd, out, size, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) {  // past the end of the file (or a write that was dropped): zeros, like sec2
      std::memset(out, 0, size);
      break;
    }
    out += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  return 0;
}

herr_t fs_write(H5FD_t* file, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t addr, size_t size, const void* buffer) {
  FailSoftFile* f = as_file(file);
  if (f->status->error || f->status->discard) return 0;
  const auto* in = static_cast<const unsigned char*>(buffer);
  while (size > 0) {
    const ssize_t n = ::pwrite(f->fd, in, size, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      record(f->status, n < 0 ? errno : ENOSPC);
      return 0;  // reported through IoStatus; see the top of this file
    }
    in += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  f->eof = std::max(f->eof, addr);
  return 0;
}

herr_t fs_truncate(H5FD_t* file, hid_t /*dxpl*/, hbool_t /*closing*/) {
  FailSoftFile* f = as_file(file);
  if (f->status->error || f->status->discard || f->eoa == f->eof) return 0;
  if (::ftruncate(f->fd, static_cast<off_t>(f->eoa)) != 0) {
    record(f->status, errno);
    return 0;
  }
  f->eof = f->eoa;
  return 0;
}

// Callbacks left null get HDF5's defaults: its own space allocator, a plain copy of FailSoftInfo,
// no driver block in the superblock (so any reader opens the file with its default driver), no locks.
H5FD_class_t fail_soft_class() {
  H5FD_class_t c{};
  c.name = "wsi_fail_soft";
  c.maxaddr = static_cast<haddr_t>(std::numeric_limits<off_t>::max());
  c.fc_degree = H5F_CLOSE_WEAK;  // sec2's
  c.fapl_size = sizeof(FailSoftInfo);
  c.open = fs_open;
  c.close = fs_close;
  c.cmp = fs_cmp;
  c.query = fs_query;
  c.get_eoa = fs_get_eoa;
  c.set_eoa = fs_set_eoa;
  c.get_eof = fs_get_eof;
  c.get_handle = fs_get_handle;
  c.read = fs_read;
  c.write = fs_write;
  c.truncate = fs_truncate;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::copy(std::begin(map), std::end(map), std::begin(c.fl_map));
  return c;
}

hid_t fail_soft_driver() {
  static const H5FD_class_t cls = fail_soft_class();
  static const hid_t id = H5FDregister(&cls);
  return id;
}
#endif

// ---- HDF5 helpers -------------------------------------------------------------------------------

// The innermost message on HDF5's error stack is closest to the cause.
herr_t keep_innermost(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  if (err && err->desc && *err->desc) *static_cast<std::string*>(data) = err->desc;
  return 0;
}

std::string hdf5_cause() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &desc);
  H5Eclear2(H5E_DEFAULT);
  // sec2's write errors embed strerror() as "error message = '...'": that part is what users need.
  const std::string key = "error message = '";
  if (auto at = desc.find(key); at != std::string::npos) {
    if (auto end = desc.find('\'', at + key.size()); end != std::string::npos)
      return desc.substr(at + key.size(), end - at - key.size());
  }
  return desc;
}

// One HDF5 identifier, closed on destruction (errors ignored there: destructors must not throw).
class H5Id {
 public:
  H5Id() = default;
  H5Id(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() {
    if (id_ >= 0) closer_(id_);
  }
  // Takes ownership of `id` (closing any id held before).
  void reset(hid_t id, herr_t (*closer)(hid_t)) {
    if (id_ >= 0) closer_(id_);
    id_ = id;
    closer_ = closer;
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; false when HDF5 reports an error (the id is dropped either way).
  bool close() {
    if (id_ < 0) return true;
    const hid_t id = std::exchange(id_, H5I_INVALID_HID);
    return closer_(id) >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*closer_)(hid_t) = nullptr;
};

// libdeflate's level, on zlib's scale, for every chunk; also what the dcpl records. Measured on
// the 8672 patches of benchmarks/extract_throughput.sh 60000 (one thread, the same chunks): zlib's
// level 4, what HDF5's filter wrote before, 172.0 MB in 5.4 s; libdeflate 4: 171.5 MB in 3.0 s;
// libdeflate 1: 176.1 MB (+2.4 %; +1.9 % on 44 real PCam patches) in 1.9 s. On the 14740 level-0
// patches of a generated 20000² slide (`extract --level 0`, 2 threads, whole run): zlib 4 7.75 s,
// 176.9 MB; libdeflate 4 3.15 s, 175.4 MB; 2 3.00 s, 177.3 MB; 1 2.38 s, 187.5 MB (+6 %).
// Compression is half of extract's CPU time: level 1's speed is worth its few percent.
constexpr int kDeflateLevel = 1;

// One file holding one growable, chunked, deflate-compressed uint8 dataset of shape N x row_dims.
// Rows are staged straight into the compressor's blocks (one block = one chunk); full chunks are
// compressed on oneTBB tasks and written whole, in order, from the calling thread, which is the
// only one that ever calls HDF5.
class Hdf5Array {
 public:
  // At most `max_in_flight` chunks are staged or being compressed at once.
  Hdf5Array(fs::path final_path, const char* name, std::vector<hsize_t> row_dims, hsize_t chunk_rows,
            size_t max_in_flight)
      : file_(std::move(final_path)), name_(name), chunk_rows_(chunk_rows) {
    // No printing of HDF5's error stack: failures come back as WriteError.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    dims_.push_back(0);
    dims_.insert(dims_.end(), row_dims.begin(), row_dims.end());
    for (size_t i = 1; i < dims_.size(); ++i) row_bytes_ *= dims_[i];
    const int rank = static_cast<int>(dims_.size());

    htri_t avail = H5Zfilter_avail(H5Z_FILTER_DEFLATE);
    unsigned config = 0;
    if (avail <= 0 || H5Zget_filter_info(H5Z_FILTER_DEFLATE, &config) < 0 ||
        !(config & H5Z_FILTER_CONFIG_ENCODE_ENABLED))
      fail("this HDF5 library cannot gzip-compress (no deflate filter); install a libhdf5 built with zlib", "");

    H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (!fapl.valid() || !set_driver(fapl.get()) ||
        // Closing the file then closes anything still open in it.
        H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
      fail("cannot set up the HDF5 file-access properties", "");
    fid_.reset(H5Fcreate(file_.tmp().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!fid_.valid()) fail("cannot create the HDF5 file", " (is the directory writable?)");

    std::vector<hsize_t> maxdims = dims_, chunk = dims_;
    maxdims[0] = H5S_UNLIMITED;
    chunk[0] = chunk_rows;
    H5Id space(H5Screate_simple(rank, dims_.data(), maxdims.data()), H5Sclose);
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (!space.valid() || !dcpl.valid() || H5Pset_chunk(dcpl.get(), rank, chunk.data()) < 0 ||
        // The filter readers undo (h5py: compression "gzip"); the chunks arrive compressed.
        H5Pset_deflate(dcpl.get(), kDeflateLevel) < 0 ||
        // No creation/modification times in the object header: the same patches give the same
        // bytes on every run (reproducible datasets; batch reruns compare them by hash).
        H5Pset_obj_track_times(dcpl.get(), false) < 0)
      fail("cannot set up the chunked, gzip-compressed dataset \"" + name_ + "\"", "");
    dset_.reset(H5Dcreate2(fid_.get(), name, H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                H5Dclose);
    if (!dset_.valid() || status_.error) fail("cannot create the dataset \"" + name_ + "\"", kDiskHint);
    deflate_.emplace(static_cast<size_t>(chunk_rows_ * row_bytes_), max_in_flight, kDeflateLevel);
  }

  // Abandoned without close(): write nothing more, close the handles, remove the temporary. The
  // compressor's destructor first waits for its tasks.
  ~Hdf5Array() {
    status_.discard = true;
    deflate_.reset();
    dset_.close();
    fid_.close();
  }
  Hdf5Array(const Hdf5Array&) = delete;
  Hdf5Array& operator=(const Hdf5Array&) = delete;

  // Appends `n` rows of row_bytes each; writes the chunks whose compression has finished.
  void append(const uint8_t* rows, hsize_t n) {
    while (n > 0) {
      const hsize_t take = std::min(n, chunk_rows_ - staged_);
      std::copy_n(rows, take * row_bytes_, deflate_->fill() + staged_ * row_bytes_);
      rows += take * row_bytes_;
      n -= take;
      staged_ += take;
      if (staged_ == chunk_rows_) submit();
    }
  }

  // Writes the last (partial) chunk and every chunk still in flight, flushes and closes every
  // handle; throws when the data did not all reach the disk.
  void close() {
    if (staged_ > 0) submit();
    write_chunks(true);
    if (H5Fflush(fid_.get(), H5F_SCOPE_LOCAL) < 0 || status_.error) fail("flushing the file failed", kDiskHint);
    if (!dset_.close() || status_.error) fail("closing the dataset \"" + name_ + "\" failed", kDiskHint);
    if (!fid_.close() || status_.error) fail("closing the file failed", kDiskHint);
  }

  void commit() { file_.commit(); }
  const fs::path& final_path() const { return file_.final_path(); }
  hsize_t row_bytes() const { return row_bytes_; }

 private:
  static constexpr const char* kDiskHint = " (is the disk full?)";

  void submit() {
    deflate_->submit(static_cast<size_t>(staged_ * row_bytes_));
    staged_ = 0;
    write_chunks(false);
  }

  // Writes finished chunks oldest first: all of them when `all`, else those already done, and
  // when every block is in flight, the oldest (waiting for it) so that fill() has one again.
  void write_chunks(bool all) {
    while (deflate_->in_flight() > 0 && (all || deflate_->full() || deflate_->oldest_ready())) {
      detail::OrderedDeflate::Compressed chunk{};
      try {
        chunk = deflate_->wait_oldest();
      } catch (const std::exception& e) {
        fail("compressing the dataset \"" + name_ + "\" failed", "", e.what());
      }
      const hsize_t rows = chunk.used / row_bytes_;
      std::vector<hsize_t> offset(dims_.size(), 0);
      offset[0] = dims_[0];
      dims_[0] += rows;
      if (H5Dset_extent(dset_.get(), dims_.data()) < 0 || status_.error)
        fail("cannot extend the dataset \"" + name_ + "\"", kDiskHint);
      // Filter mask 0: the dataset's deflate filter was applied. A last partial chunk is stored
      // full-size, padded with zeros, as HDF5 itself stores edge chunks.
      if (H5Dwrite_chunk(dset_.get(), H5P_DEFAULT, 0, offset.data(), chunk.size, chunk.data) < 0 || status_.error)
        fail("writing the dataset \"" + name_ + "\" failed", kDiskHint);
      deflate_->pop();
    }
  }

  bool set_driver(hid_t fapl) {
#if H5_VERSION_GE(1, 12, 0)
    // The driver interface changed in 1.12. A failed close is safe with sec2 from 1.14.1 on; 1.12 to
    // 1.14.0 keep the crash described at the top of this file.
    return H5Pset_fapl_sec2(fapl) >= 0;
#else
    const hid_t driver = fail_soft_driver();
    const FailSoftInfo info{&status_};
    return driver >= 0 && H5Pset_driver(fapl, driver, &info) >= 0;
#endif
  }

  // Throws WriteError naming the final file: what failed, why (`cause`, else errno or HDF5's
  // message), a hint.
  [[noreturn]] void fail(const std::string& what, const char* hint, std::string cause = {}) {
    if (cause.empty()) cause = status_.error ? std::strerror(status_.error) : hdf5_cause();
    H5Eclear2(H5E_DEFAULT);
    throw WriteError(file_.final_path(), what + (cause.empty() ? "" : ": " + cause) + hint);
  }

  PendingFile file_;  // first: the temporary is removed after the handles are closed
  std::string name_;
  std::vector<hsize_t> dims_;  // dims_[0]: rows written so far (whole chunks, then the last one)
  hsize_t row_bytes_ = 1;
  hsize_t chunk_rows_;
  hsize_t staged_ = 0;  // rows in the block deflate_->fill() returns
  IoStatus status_;     // before the handles: the open file reports into it until it is closed
  H5Id fid_, dset_;
  std::optional<detail::OrderedDeflate> deflate_;
};

// PCam's files are chunked by 64 patches; fewer per chunk for big patches keeps a chunk <= 32 MiB.
hsize_t chunk_patches(int patch_size) {
  const hsize_t bytes = 3ull * static_cast<hsize_t>(patch_size) * static_cast<hsize_t>(patch_size);
  return std::clamp<hsize_t>((32ull << 20) / bytes, 1, 64);
}

int checked_patch_size(int patch_size) {
  if (patch_size <= 0)
    throw UsageError("patch size must be a positive number of pixels, got " + std::to_string(patch_size));
  return patch_size;
}

// Chunks in flight per array: enough that every thread can compress one while the writer stages
// the next and waits for none, few enough that memory stays a few chunks per thread.
size_t chunks_in_flight(int threads) {
  const size_t t = threads > 0 ? static_cast<size_t>(threads)
                               : tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
  return 2 * std::max<size_t>(1, t);
}

class PcamWriter final : public DatasetWriter {
 public:
  PcamWriter(const fs::path& dir, const std::string& prefix, const std::string& split, int patch_size, int threads)
      : x_(dir / (prefix + "_" + split + "_x.h5"), "x", {hsize_t(patch_size), hsize_t(patch_size), 3},
           chunk_patches(checked_patch_size(patch_size)), chunks_in_flight(threads)),
        // y is tiny: bigger chunks keep the chunk index small; one chunk per 1024 patches.
        y_(dir / (prefix + "_" + split + "_y.h5"), "y", {1, 1, 1}, 1024, 2),
        meta_(dir / (prefix + "_" + split + "_meta.csv")) {
    meta_.write_line(std::string(detail::kMetaColumns));
  }

  void add(const PatchRecord& p) override {
    if (committed_) throw std::logic_error("PcamWriter::add after commit");
    x_.append(p.rgb, 1);
    y_.append(&p.label, 1);
    meta_.write_line(detail::meta_row(p));
    ++stats_.written;
    ++(p.label ? stats_.positives : stats_.negatives);
  }

  void commit() override {
    if (committed_) return;
    x_.close();
    y_.close();
    meta_.close();
    x_.commit();
    y_.commit();
    meta_.commit();
    committed_ = true;
  }

  std::vector<fs::path> outputs() const override { return {x_.final_path(), y_.final_path(), meta_.final_path()}; }
  const DatasetWriterStats& stats() const override { return stats_; }

 private:
  Hdf5Array x_, y_;
  detail::PendingCsv meta_;
  DatasetWriterStats stats_;
  bool committed_ = false;
};

}  // namespace

std::unique_ptr<DatasetWriter> make_pcam_writer(const fs::path& dir, const std::string& prefix,
                                                const std::string& split, int patch_size, int threads) {
  detail::check_name_part("prefix", prefix, true);
  detail::check_name_part("split", split, false);
  return std::make_unique<PcamWriter>(dir, prefix, split, patch_size, threads);
}

}  // namespace wsi
