#include "wsi/runtime.hpp"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) when the C library is glibc

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <dlfcn.h>

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

}  // namespace wsi
