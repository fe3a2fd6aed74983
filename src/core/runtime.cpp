#include "wsi/runtime.hpp"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) when the C library is glibc

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace wsi {

bool tune_allocator_for_inference() {
#ifdef __GLIBC__
  // mallopt takes an int: 1 GiB is far above one batch's activations, far below INT_MAX.
  constexpr int kTrimThreshold = 1 << 30;
  const bool mmap_off = mallopt(M_MMAP_MAX, 0) == 1;
  const bool trim_high = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return mmap_off && trim_high;
#else
  return false;
#endif
}

}  // namespace wsi
