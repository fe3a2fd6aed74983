// Helpers shared by the Google Benchmark programs in benchmarks/ (header-only, benchmark code only).
#pragma once

#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace wsi::bench {

// The environment variable `name`, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// A sample of the clocks that tell a clean measurement from one that shared the cores: on a
// 2-core machine one busy neighbour halves the 2-thread numbers. Linux; `busy` is NaN where
// /proc/stat is missing.
struct CpuSample {
  double wall = 0;  // seconds, monotonic clock
  double own = 0;   // seconds of CPU this process used (user + system)
  double busy = 0;  // seconds all CPUs were busy (steal included: time given to other guests)

  static CpuSample now() {
    CpuSample s;
    s.wall = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const auto secs = [](const timeval& tv) {
      return static_cast<double>(tv.tv_sec) + 1e-6 * static_cast<double>(tv.tv_usec);
    };
    s.own = secs(ru.ru_utime) + secs(ru.ru_stime);
    s.busy = std::nan("");
    if (std::FILE* f = std::fopen("/proc/stat", "r")) {
      unsigned long long v[8] = {};  // cpu  user nice system idle iowait irq softirq steal
      if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                      &v[6], &v[7]) == 8)
        s.busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                 static_cast<double>(sysconf(_SC_CLK_TCK));
      std::fclose(f);
    }
    return s;
  }
};

// Average number of cores other processes used between two samples (NaN when unknown).
inline double other_cores(const CpuSample& from, const CpuSample& to) {
  const double wall = to.wall - from.wall;
  const double others = (to.busy - from.busy) - (to.own - from.own);
  if (!(wall > 0) || std::isnan(others)) return std::nan("");
  return std::max(0.0, others / wall);
}

}  // namespace wsi::bench
