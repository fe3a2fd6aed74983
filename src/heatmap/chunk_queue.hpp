// Splits the indices [0, n) of one batch between `threads` threads that read patches: each
// thread starts on its own contiguous chunk and walks it from the front; once its chunk is empty
// it takes from the back of the chunk with the most left. Why: reading a patch costs ~2 µs when
// its tiles are cached and ~0.4 ms when a tile must be decoded first, so fixed chunks left one
// thread idle while the other decoded (1.4 of 2 cores busy while reading, measured); taking from
// the back keeps both threads on neighbouring patches (the same tiles) and away from each other's
// next tile. Indices are batch positions, no coordinates.
// Thread-safety: next() may be called from any thread; one caller per `thread` index.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

namespace wsi::detail {

class ChunkQueue {
 public:
  ChunkQueue(size_t n, int threads) : chunks_(static_cast<size_t>(std::max(1, threads))) {
    const size_t t = chunks_.size();
    for (size_t i = 0; i < t; ++i) chunks_[i] = {n * i / t, n * (i + 1) / t};
  }
  // The next index for `thread` (0-based, < threads), or nothing once all were handed out.
  std::optional<size_t> next(int thread) {
    const std::lock_guard<std::mutex> lock(mutex_);
    Chunk& own = chunks_[static_cast<size_t>(thread) % chunks_.size()];
    if (own.begin < own.end) return own.begin++;
    const auto most = std::max_element(chunks_.begin(), chunks_.end(), [](const Chunk& a, const Chunk& b) {
      return a.end - a.begin < b.end - b.begin;
    });
    if (most->begin == most->end) return std::nullopt;
    return --most->end;
  }

 private:
  struct Chunk {
    size_t begin = 0, end = 0;
  };
  std::mutex mutex_;  // one lock per patch read: ~64 per batch, against ~1.5 ms of reading
  std::vector<Chunk> chunks_;
};

}  // namespace wsi::detail
