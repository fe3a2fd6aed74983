// How one batch's patch indices are split between the threads that read them (ChunkQueue).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "heatmap/chunk_queue.hpp"

namespace wsi::detail {
namespace {

std::vector<size_t> drain(ChunkQueue& q, int thread) {
  std::vector<size_t> got;
  while (const auto k = q.next(thread)) got.push_back(*k);
  return got;
}

TEST(ChunkQueue, EachThreadWalksItsOwnChunkThenTakesFromTheBackOfTheLargest) {
  ChunkQueue q(10, 2);  // chunks [0, 5) and [5, 10)
  EXPECT_EQ(*q.next(1), 5u);
  EXPECT_EQ(*q.next(1), 6u);
  // Thread 0 walks its chunk from the front, then takes thread 1's last patches, from the back.
  EXPECT_EQ(drain(q, 0), (std::vector<size_t>{0, 1, 2, 3, 4, 9, 8, 7}));
  EXPECT_FALSE(q.next(1));
}

TEST(ChunkQueue, HandsOutEveryIndexExactlyOnceAcrossConcurrentThreads) {
  for (const int threads : {1, 2, 3, 8}) {
    for (const size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{64}, size_t{1000}}) {
      ChunkQueue q(n, threads);
      std::vector<std::vector<size_t>> got(static_cast<size_t>(threads));
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { got[static_cast<size_t>(t)] = drain(q, t); });
      for (std::thread& th : pool) th.join();
      std::vector<size_t> all;
      for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
      std::sort(all.begin(), all.end());
      std::vector<size_t> want(n);
      for (size_t i = 0; i < n; ++i) want[i] = i;
      EXPECT_EQ(all, want) << threads << " threads, " << n << " indices";
    }
  }
}

TEST(ChunkQueue, MoreThreadsThanIndicesLeavesSomeWithNothing) {
  ChunkQueue q(2, 4);  // chunks [0, 0), [0, 1), [1, 1), [1, 2)
  EXPECT_EQ(*q.next(0), 0u) << "its chunk is empty: the back of the largest (the first on a tie)";
  EXPECT_EQ(*q.next(3), 1u) << "its own chunk";
  EXPECT_FALSE(q.next(1));
  EXPECT_FALSE(q.next(2));
}

}  // namespace
}  // namespace wsi::detail
