#include "wsi/runtime.hpp"

#include <algorithm>
#include <cstdlib>  // defines __GLIBC__ (through <features.h>) when the C library is glibc

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <dlfcn.h>
#include <sched.h>

#include <string>
#include <thread>

#include "wsi/error.hpp"

namespace wsi {

bool tune_allocator_for_inference() {
#ifdef __GLIBC__
  // mallopt takes an int: 1 GiB is far above one batch's activations, far below INT_MAX.
  constexpr int kTrimThreshold = 1 << 30;
  const bool mmap_off = mallopt(M_MMAP_MAX, 0) == 1;
  const bool trim_high = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  const bool one_arena = mallopt(M_ARENA_MAX, 1) == 1;  // must precede the threads: see the header
  return mmap_off && trim_high && one_arena;
#else
  return false;
#endif
}

bool limit_blas_threads() {
  // Looked up at run time: we do not link OpenBLAS ourselves (LibTorch does, or uses another BLAS).
  using SetThreads = void (*)(int);
  void* sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (!sym) return false;
  reinterpret_cast<SetThreads>(sym)(1);
  return true;
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int resolve_threads(int requested) {
  if (requested < 0) throw UsageError("--threads must be >= 0 (0 = one per core), got " + std::to_string(requested));
  const int cores = available_cores();
  return requested == 0 || requested > cores ? cores : requested;
}

}  // namespace wsi
