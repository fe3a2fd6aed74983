// Compression of equal-size blocks on oneTBB tasks, handed back in the order they were submitted:
// the PCam writer compresses HDF5 chunks this way and writes them whole (H5Dwrite_chunk) from the
// pipeline's serial stage. Private to src/dataset/.
#pragma once

#include <tbb/task_group.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

namespace wsi::detail {

// Worst-case size of zlib_compress's output for `n` input bytes (any level).
size_t zlib_bound(size_t n);

// A zlib stream (RFC 1950: what HDF5's deflate filter and zlib's inflate read) of in[0, n) at
// libdeflate's `level` (1..12, a zlib-like scale), written to `out`, which holds `capacity` >=
// zlib_bound(n) bytes. Returns its size. The bytes depend only on the input and the level.
// Thread-safe: each thread keeps its own libdeflate compressor. Throws Error when libdeflate
// cannot allocate one or the level is out of range.
size_t zlib_compress(int level, const uint8_t* in, size_t n, uint8_t* out, size_t capacity);

// Blocks of `block_bytes` bytes: the caller fills one (fill()), submits it, and oneTBB tasks
// compress it (spawned in the arena of the submitting thread, so --threads bounds them too); the
// caller takes the results back oldest first. At most `max_in_flight` blocks exist at once, each
// block_bytes plus the compressor's bound, so memory does not grow with the data.
//
// Errors: an exception thrown by `compress` is kept and rethrown, unchanged, by the wait_oldest()
// that reaches its block; nothing is lost. After that the object is only good for destruction.
//
// Thread-safety: the member functions are called from one thread at a time (not necessarily the
// same one, e.g. a parallel_pipeline's serial stage); the tasks are internal. The destructor waits
// for every task still running, so an abandoned object never frees a buffer a task still uses.
class OrderedDeflate {
 public:
  // Compresses in[0, n) into out[0, capacity) and returns the size written. Called from several
  // tasks at once (on different blocks). May throw.
  using Compress = std::function<size_t(const uint8_t* in, size_t n, uint8_t* out, size_t capacity)>;

  // zlib streams at libdeflate `level`.
  OrderedDeflate(size_t block_bytes, size_t max_in_flight, int level);
  // Any compressor whose output never exceeds `out_capacity` bytes per block (tests inject one).
  OrderedDeflate(size_t block_bytes, size_t max_in_flight, Compress compress, size_t out_capacity);
  ~OrderedDeflate();
  OrderedDeflate(const OrderedDeflate&) = delete;
  OrderedDeflate& operator=(const OrderedDeflate&) = delete;

  size_t block_bytes() const { return block_bytes_; }
  size_t max_in_flight() const { return slots_.size(); }
  // Blocks submitted and not yet popped.
  size_t in_flight() const { return count_; }
  bool full() const { return count_ == slots_.size(); }

  // The next block to fill: block_bytes writable bytes, content unspecified. Requires !full();
  // the same block until submit().
  uint8_t* fill();
  // Starts compressing the block from fill(): its first `used` bytes (<= block_bytes) followed by
  // zeros up to block_bytes (how HDF5 stores a dataset's last, partial chunk).
  void submit(size_t used);

  // Whether the oldest block in flight is compressed (never waits). False when none is in flight.
  bool oldest_ready() const;

  struct Compressed {
    const uint8_t* data;
    size_t size;  // compressed bytes
    size_t used;  // what submit() was told
  };
  // The oldest block's result, valid until pop(); waits for it (the thread runs other tasks
  // meanwhile). Requires in_flight() > 0. Rethrows its task's exception.
  Compressed wait_oldest();
  // Frees the oldest block for reuse. Requires a wait_oldest() that returned since the last pop().
  void pop();

 private:
  struct Slot {
    std::vector<uint8_t> in, out;
    size_t used = 0, size = 0;
    std::exception_ptr error;
    std::atomic<bool> done{false};
    // Isolated: a cancelled caller (an exception elsewhere in the pipeline that submitted) must
    // not cancel compressions whose chunks are still to be written.
    tbb::task_group_context context{tbb::task_group_context::isolated};
    tbb::task_group tasks{context};  // one task at a time: waiting on it waits for this block only
  };

  size_t block_bytes_, out_capacity_;
  Compress compress_;
  std::vector<std::unique_ptr<Slot>> slots_;  // a ring: count_ blocks in flight from head_ on
  size_t head_ = 0, count_ = 0;
};

}  // namespace wsi::detail
