#include "dataset/parallel_deflate.hpp"

#include <libdeflate.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "wsi/error.hpp"

namespace wsi::detail {
namespace {

// libdeflate's compressors hold their hash tables (a few hundred KiB) and are not thread-safe:
// one per thread, kept for the thread's life, instead of one allocation per block.
struct ThreadCompressor {
  int level = -1;
  libdeflate_compressor* compressor = nullptr;
  ~ThreadCompressor() { libdeflate_free_compressor(compressor); }
};

libdeflate_compressor* compressor_for(int level) {
  thread_local ThreadCompressor mine;
  if (mine.level != level) {
    libdeflate_free_compressor(mine.compressor);
    mine.level = -1;
    mine.compressor = libdeflate_alloc_compressor(level);
    if (!mine.compressor)
      throw Error("cannot set up libdeflate at level " + std::to_string(level) +
                  " (levels are 0..12; or out of memory)");
    mine.level = level;
  }
  return mine.compressor;
}

}  // namespace

size_t zlib_bound(size_t n) { return libdeflate_zlib_compress_bound(nullptr, n); }

size_t zlib_compress(int level, const uint8_t* in, size_t n, uint8_t* out, size_t capacity) {
  const size_t size = libdeflate_zlib_compress(compressor_for(level), in, n, out, capacity);
  // 0 means "did not fit", which zlib_bound() rules out.
  if (size == 0) throw std::logic_error("zlib_compress: output buffer below zlib_bound()");
  return size;
}

OrderedDeflate::OrderedDeflate(size_t block_bytes, size_t max_in_flight, int level)
    : OrderedDeflate(
          block_bytes, max_in_flight,
          [level](const uint8_t* in, size_t n, uint8_t* out, size_t capacity) {
            return zlib_compress(level, in, n, out, capacity);
          },
          zlib_bound(block_bytes)) {}

OrderedDeflate::OrderedDeflate(size_t block_bytes, size_t max_in_flight, Compress compress, size_t out_capacity)
    : block_bytes_(block_bytes), out_capacity_(out_capacity), compress_(std::move(compress)) {
  if (max_in_flight == 0) throw std::logic_error("OrderedDeflate needs room for one block at least");
  slots_.reserve(max_in_flight);
  for (size_t i = 0; i < max_in_flight; ++i) slots_.push_back(std::make_unique<Slot>());
}

OrderedDeflate::~OrderedDeflate() {
  for (auto& s : slots_) {
    try {
      s->tasks.wait();
    } catch (...) {  // the tasks catch everything themselves; a destructor must not throw anyway
    }
  }
}

uint8_t* OrderedDeflate::fill() {
  if (full()) throw std::logic_error("OrderedDeflate::fill with every block in flight");
  Slot& s = *slots_[(head_ + count_) % slots_.size()];
  if (s.in.empty()) {  // allocated on first use: a small dataset never needs them all
    s.in.resize(block_bytes_);
    s.out.resize(out_capacity_);
  }
  return s.in.data();
}

void OrderedDeflate::submit(size_t used) {
  if (used > block_bytes_) throw std::logic_error("OrderedDeflate::submit beyond the block");
  uint8_t* const in = fill();
  Slot& s = *slots_[(head_ + count_) % slots_.size()];
  std::memset(in + used, 0, block_bytes_ - used);
  s.used = used;
  s.size = 0;
  s.error = nullptr;
  s.done.store(false, std::memory_order_relaxed);
  s.tasks.run([this, &s] {
    try {
      s.size = compress_(s.in.data(), s.in.size(), s.out.data(), s.out.size());
      if (s.size > s.out.size()) throw std::logic_error("OrderedDeflate: the compressor overran its buffer");
    } catch (...) {
      s.error = std::current_exception();
    }
    s.done.store(true, std::memory_order_release);
  });
  ++count_;
}

bool OrderedDeflate::oldest_ready() const { return count_ > 0 && slots_[head_]->done.load(std::memory_order_acquire); }

OrderedDeflate::Compressed OrderedDeflate::wait_oldest() {
  if (count_ == 0) throw std::logic_error("OrderedDeflate::wait_oldest with nothing in flight");
  Slot& s = *slots_[head_];
  s.tasks.wait();
  if (!s.done.load(std::memory_order_acquire))  // only a cancelled task, which nothing here does
    throw Error("compressing a chunk was cancelled");
  if (s.error) std::rethrow_exception(s.error);
  return {s.out.data(), s.size, s.used};
}

void OrderedDeflate::pop() {
  if (count_ == 0) throw std::logic_error("OrderedDeflate::pop with nothing in flight");
  head_ = (head_ + 1) % slots_.size();
  --count_;
}

}  // namespace wsi::detail
