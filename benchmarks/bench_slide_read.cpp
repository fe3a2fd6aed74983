// bench_slide_read — how fast can we read level-0 regions of a slide: OpenSlide vs libvips.
//
// Reads, on a generated 20000² pyramidal JPEG BigTIFF (`wsi-heatmap synth`'s format):
//   * grid96:  96×96 regions on a stride-96 grid (the patch size of the classifier),
//   * tile256: 256×256 regions aligned to the file's 256×256 tiles,
// each with OpenSlide (wsi::Slide::read_region, one shared handle) and with libvips (one
// VipsRegion per thread on one shared image), at 1 and 2 threads, and reports regions/s as
// items_per_second. After the runs it prints, for each (region kind, threads), both rates and
// the ratio libvips / OpenSlide, all from this same run.
//
// Only grid positions whose centre lies in tissue are read, in raster order, as a patch
// pipeline would. Thread t of T reads positions t, t+T, t+2T, ... (disjoint within a pass),
// wrapping to the start when the grid is exhausted.
//
// Environment:
//   WSI_BENCH_DIR   where the slide is kept (default ./bench-data); created if missing
//   WSI_BENCH_SIZE  slide width = height in pixels (default 20000; the CTest smoke test uses 2048)
// The slide `$WSI_BENCH_DIR/synth-<size>.tif` is generated on first use (seed 1, 0.25 um/px) and
// reused afterwards; delete it after changing the generator.
//
// All Google Benchmark flags work (--benchmark_filter, --benchmark_min_time, ...); the console
// output and the ratio table go to stdout, progress and the pixel sanity check to stderr.
#include <benchmark/benchmark.h>
#include <openslide.h>
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "wsi/region.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDefaultSize = 20000;
constexpr int64_t kMinSize = 512;
constexpr uint64_t kSeed = 1;
constexpr double kMpp = 0.25;

struct Pos {
  int64_t x = 0, y = 0;  // level-0 pixels
};

// One region kind: a size and the grid positions it is read at.
struct RegionKind {
  std::string name;   // benchmark name prefix, e.g. "grid96"
  std::string label;  // for the table, e.g. "96x96 grid"
  int64_t size = 0;   // region width = height, level-0 pixels
  std::vector<Pos> positions;
};

// ---- Environment ----

int64_t bench_size() {
  const char* s = std::getenv("WSI_BENCH_SIZE");
  if (s == nullptr || *s == '\0') return kDefaultSize;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (*end != '\0' || v < kMinSize || v > 1'000'000) {
    std::fprintf(stderr, "bench_slide_read: WSI_BENCH_SIZE=%s is not an integer in [%lld, 1000000]\n", s,
                 static_cast<long long>(kMinSize));
    std::exit(2);
  }
  return static_cast<int64_t>(v);
}

fs::path bench_dir() {
  const char* s = std::getenv("WSI_BENCH_DIR");
  return (s == nullptr || *s == '\0') ? fs::path("bench-data") : fs::path(s);
}

wsi::SynthParams synth_params(int64_t size) {
  wsi::SynthParams p;
  p.width = size;
  p.height = size;
  p.seed = kSeed;
  p.mpp = kMpp;
  return p;
}

// Generates the slide unless it is already there (written under a temporary name and renamed, so
// an existing file is always complete).
void ensure_slide(const wsi::SynthScene& scene, const fs::path& path) {
  if (fs::exists(path)) return;
  fs::create_directories(path.parent_path());
  const auto& p = scene.params();
  std::fprintf(stderr, "bench_slide_read: generating %s (%lldx%lld, seed %llu, %.2f um/px) ...\n",
               path.c_str(), static_cast<long long>(p.width), static_cast<long long>(p.height),
               static_cast<unsigned long long>(p.seed), p.mpp);
  const auto t0 = std::chrono::steady_clock::now();
  wsi::SynthOutputs out;
  out.slide = path;
  wsi::write_synthetic_slide(scene, out);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  std::fprintf(stderr, "bench_slide_read: generated in %.1f s\n", dt.count());
}

// Positions (x, y multiples of `stride`, region fully inside the slide) whose centre is tissue;
// all of them if none is.
std::vector<Pos> tissue_grid(const wsi::SynthScene& scene, int64_t width, int64_t height, int64_t size,
                             int64_t stride) {
  std::vector<Pos> all, tissue;
  for (int64_t y = 0; y + size <= height; y += stride)
    for (int64_t x = 0; x + size <= width; x += stride) {
      all.push_back({x, y});
      if (scene.is_tissue(static_cast<double>(x) + static_cast<double>(size) / 2,
                          static_cast<double>(y) + static_cast<double>(size) / 2))
        tissue.push_back({x, y});
    }
  return tissue.empty() ? all : tissue;
}

// ---- libvips helpers ----

std::string take_vips_error() {
  std::string s = vips_error_buffer();
  vips_error_clear();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown libvips error" : s;
}

struct GObjectUnref {
  void operator()(void* p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
using VipsImagePtr = std::unique_ptr<VipsImage, GObjectUnref>;
using VipsRegionPtr = std::unique_ptr<VipsRegion, GObjectUnref>;

// Prepares `size`² at (x, y) of `region` and copies it out as packed RGB (size*size*3 bytes).
// Returns false on a libvips error.
bool vips_read(VipsRegion* region, Pos p, int64_t size, uint8_t* rgb) {
  const int x = static_cast<int>(p.x), y = static_cast<int>(p.y), n = static_cast<int>(size);
  VipsRect rect{x, y, n, n};
  if (vips_region_prepare(region, &rect) != 0) return false;
  const size_t row_bytes = static_cast<size_t>(size) * 3;
  for (int r = 0; r < n; ++r)
    std::memcpy(rgb + static_cast<size_t>(r) * row_bytes, VIPS_REGION_ADDR(region, x, y + r), row_bytes);
  return true;
}

// ---- The benchmarks ----

// Thread t of T reads positions t, t+T, ...; returns the next index after `i`.
size_t next_index(size_t i, size_t threads, size_t first, size_t count) {
  i += threads;
  return i < count ? i : first;
}

void bm_openslide(benchmark::State& state, const wsi::Slide& slide, const RegionKind& kind) {
  std::vector<uint8_t> rgb(static_cast<size_t>(kind.size * kind.size * 3));
  const size_t count = kind.positions.size();
  const size_t threads = static_cast<size_t>(state.threads());
  const size_t first = static_cast<size_t>(state.thread_index()) % count;
  size_t i = first;
  try {
    for (auto _ : state) {
      const Pos p = kind.positions[i];
      slide.read_region(wsi::Region{0, p.x, p.y, kind.size, kind.size}, rgb.data());
      benchmark::DoNotOptimize(rgb.data());
      benchmark::ClobberMemory();
      i = next_index(i, threads, first, count);
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_libvips(benchmark::State& state, VipsImage* image, const RegionKind& kind) {
  std::vector<uint8_t> rgb(static_cast<size_t>(kind.size * kind.size * 3));
  const size_t count = kind.positions.size();
  const size_t threads = static_cast<size_t>(state.threads());
  const size_t first = static_cast<size_t>(state.thread_index()) % count;
  size_t i = first;
  {
    // One region per thread, as in a libvips thread pool; it is reused for every patch.
    VipsRegionPtr region(vips_region_new(image));
    for (auto _ : state) {
      if (!vips_read(region.get(), kind.positions[i], kind.size, rgb.data())) {
        state.SkipWithError(take_vips_error().c_str());
        break;
      }
      benchmark::DoNotOptimize(rgb.data());
      benchmark::ClobberMemory();
      i = next_index(i, threads, first, count);
    }
  }
  state.SetItemsProcessed(state.iterations());
  vips_thread_shutdown();  // frees this thread's libvips buffers (benchmark threads are short-lived)
}

// ---- Result capture and the ratio table ----

// Prints as ConsoleReporter does and keeps items_per_second per (benchmark, threads).
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      const Key key{run.run_name.function_name, run.threads};
      // With --benchmark_repetitions, the median wins over the single repetitions.
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") {
          rates_[key] = it->second.value;
          from_median_.insert(key);
        }
      } else if (!from_median_.contains(key)) {
        // Mean of the repetitions until a median arrives.
        auto& [sum, n] = reps_[key];
        sum += it->second.value;
        n += 1;
        rates_[key] = sum / n;
      }
    }
  }

  // Regions/s of `name` at `threads`, or a negative value when it did not run.
  double rate(const std::string& name, int64_t threads) const {
    const auto it = rates_.find(Key{name, threads});
    return it == rates_.end() ? -1.0 : it->second;
  }

  std::set<int64_t> thread_counts() const {
    std::set<int64_t> s;
    for (const auto& [key, value] : rates_) s.insert(key.second);
    return s;
  }

 private:
  using Key = std::pair<std::string, int64_t>;
  std::map<Key, double> rates_;
  std::map<Key, std::pair<double, int>> reps_;
  std::set<Key> from_median_;
};

std::string format_rate(double r) {
  if (r < 0) return "-";
  char buf[32];
  if (r >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", r / 1e3);
  else if (r >= 1e3)
    std::snprintf(buf, sizeof buf, "%.2fk", r / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", r);
  return buf;
}

void print_ratio_table(const CapturingReporter& rep, const std::vector<RegionKind>& kinds) {
  std::printf("\nRegions/s at level 0, measured in this run (items_per_second); ratio = libvips / OpenSlide\n");
  std::printf("%-14s %7s %12s %12s %18s\n", "region", "threads", "OpenSlide", "libvips", "libvips/OpenSlide");
  int rows = 0;
  for (const RegionKind& kind : kinds)
    for (const int64_t t : rep.thread_counts()) {
      const double os = rep.rate(kind.name + "/openslide", t);
      const double lv = rep.rate(kind.name + "/libvips", t);
      if (os < 0 && lv < 0) continue;
      char ratio[32] = "-";
      if (os > 0 && lv >= 0) std::snprintf(ratio, sizeof ratio, "%.2fx", lv / os);
      std::printf("%-14s %7lld %12s %12s %18s\n", kind.label.c_str(), static_cast<long long>(t),
                  format_rate(os).c_str(), format_rate(lv).c_str(), ratio);
      ++rows;
    }
  if (rows == 0) std::printf("(no benchmark ran; check --benchmark_filter)\n");
  std::fflush(stdout);
}

// ---- Pixel sanity check: the two readers should return the same pixels ----

void compare_readers(const wsi::Slide& slide, VipsImage* image, const RegionKind& kind) {
  const Pos p = kind.positions[kind.positions.size() / 2];
  const size_t n = static_cast<size_t>(kind.size * kind.size * 3);
  std::vector<uint8_t> a(n), b(n);
  slide.read_region(wsi::Region{0, p.x, p.y, kind.size, kind.size}, a.data());
  VipsRegionPtr region(vips_region_new(image));
  if (!vips_read(region.get(), p, kind.size, b.data()))
    throw std::runtime_error("libvips cannot read the sanity-check region: " + take_vips_error());
  double mean_a[3] = {0, 0, 0}, mean_b[3] = {0, 0, 0};
  int max_diff = 0;
  size_t differing = 0;
  for (size_t i = 0; i < n; ++i) {
    mean_a[i % 3] += a[i];
    mean_b[i % 3] += b[i];
    const int d = std::abs(int{a[i]} - int{b[i]});
    max_diff = std::max(max_diff, d);
    differing += d != 0 ? 1 : 0;
  }
  const double px = static_cast<double>(n / 3);
  std::fprintf(stderr,
               "bench_slide_read: sanity check, %lldx%lld at (%lld, %lld): mean RGB OpenSlide "
               "(%.2f, %.2f, %.2f), libvips (%.2f, %.2f, %.2f); %zu of %zu bytes differ, max |diff| %d%s\n",
               static_cast<long long>(kind.size), static_cast<long long>(kind.size),
               static_cast<long long>(p.x), static_cast<long long>(p.y), mean_a[0] / px, mean_a[1] / px,
               mean_a[2] / px, mean_b[0] / px, mean_b[1] / px, mean_b[2] / px, differing, n, max_diff,
               max_diff > 2 ? "  <-- the readers disagree; the comparison may not be like for like" : "");
}

int run(int argc, char** argv) {
  // Flags first: --help must not wait for a slide to be generated.
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  const int64_t size = bench_size();
  const fs::path path = bench_dir() / ("synth-" + std::to_string(size) + ".tif");

  const wsi::SynthScene scene(synth_params(size));
  ensure_slide(scene, path);

  const wsi::Slide slide(path);
  VipsImagePtr image(vips_image_new_from_file(path.c_str(), "access", VIPS_ACCESS_RANDOM, nullptr));
  if (!image) throw std::runtime_error("libvips cannot open " + path.string() + ": " + take_vips_error());
  if (image->Bands != 3 || image->BandFmt != VIPS_FORMAT_UCHAR || image->Xsize != slide.width() ||
      image->Ysize != slide.height())
    throw std::runtime_error("libvips sees " + path.string() + " as " + std::to_string(image->Xsize) + "x" +
                             std::to_string(image->Ysize) + ", " + std::to_string(image->Bands) +
                             " bands; expected level 0 as 8-bit RGB of the OpenSlide size (delete the file "
                             "to regenerate it)");

  const auto& l0 = slide.level(0);
  const int64_t tile = l0.tile_width > 0 ? l0.tile_width : 256;
  std::vector<RegionKind> kinds = {
      {"grid96", "96x96 grid", 96, tissue_grid(scene, slide.width(), slide.height(), 96, 96)},
      {"tile256", "256x256 tile", tile, tissue_grid(scene, slide.width(), slide.height(), tile, tile)},
  };
  std::fprintf(stderr,
               "bench_slide_read: %s, %lldx%lld, %d levels, vendor %s, level-0 tiles %lldx%lld; OpenSlide %s, "
               "libvips %s\n",
               path.c_str(), static_cast<long long>(slide.width()), static_cast<long long>(slide.height()),
               slide.level_count(), slide.vendor().c_str(), static_cast<long long>(l0.tile_width),
               static_cast<long long>(l0.tile_height), openslide_get_version(), vips_version_string());
  for (const auto& k : kinds)
    std::fprintf(stderr, "bench_slide_read: %s: %zu positions with tissue at the centre\n", k.name.c_str(),
                 k.positions.size());
  compare_readers(slide, image.get(), kinds[1]);

  for (const RegionKind& kind : kinds) {
    const RegionKind* k = &kind;
    benchmark::RegisterBenchmark((kind.name + "/openslide").c_str(),
                                 [&slide, k](benchmark::State& st) { bm_openslide(st, slide, *k); })
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    VipsImage* img = image.get();
    benchmark::RegisterBenchmark((kind.name + "/libvips").c_str(),
                                 [img, k](benchmark::State& st) { bm_libvips(st, img, *k); })
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }

  CapturingReporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                        : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_ratio_table(reporter, kinds);
  benchmark::Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (VIPS_INIT(argv[0]) != 0) {
    std::fprintf(stderr, "bench_slide_read: cannot start libvips: %s\n", take_vips_error().c_str());
    return 1;
  }
  vips_cache_set_max(0);  // operation cache: off, as in the library
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_slide_read: %s\n", e.what());
    return 1;
  }
}
