// bench_slide_read — how fast can we read level-0 regions of a slide: OpenSlide vs libvips.
//
// Reads, on a generated 20000² pyramidal JPEG BigTIFF (`wsi-heatmap synth`'s format):
//   * grid96:  96×96 regions on a stride-96 grid (the classifier's patch size),
//   * tile256: 256×256 regions aligned to the file's 256×256 tiles,
// at 1 and 2 threads, with three readers, and reports regions/s as items_per_second:
//   * openslide: openslide_read_region on one shared handle + ARGB -> RGB over white, exactly
//     what wsi::Slide did before it got a libvips backend (called directly here, because
//     wsi::Slide now sends generic TIFFs to libvips);
//   * libvips:   the image opened once (page 0, random access), one VipsRegion per thread,
//     vips_region_prepare + a row-by-row copy into a packed RGB buffer;
//   * wsi_slide: wsi::Slide::read_region, the project's own read path, whatever backend it
//     picked for this file (printed at start-up).
// Also resample/SRC_to_DST: wsi::resample_area on one SRC² RGB patch (what the readers do when
// a model's input is coarser than the nearest pyramid level: 93 -> 48 for the demo model on a
// 0.25 µm slide, 187 -> 96 for a 96 px patch at 0.5 µm read from level 0), patches/s.
// After the runs it prints, for each (region kind, threads), the three rates and the ratio
// libvips / OpenSlide, all from this same run, plus how much CPU other processes took meanwhile.
//
// Only grid positions whose centre lies in tissue are read, in raster order, as a patch
// pipeline would. By default thread t of T reads positions t, t+T, t+2T, ... (interleaved:
// neighbouring patches go to different threads), wrapping to its start at the end; with
// WSI_BENCH_SPLIT=blocks thread t reads the t-th contiguous block of the grid instead.
//
// Environment:
//   WSI_BENCH_DIR   where the slide is kept (default ./bench-data); created if missing
//   WSI_BENCH_SIZE  slide width = height in pixels (default 20000; the CTest smoke test uses 2048)
//   WSI_BENCH_SPLIT how threads share the grid: interleaved (default) or blocks
// The slide `$WSI_BENCH_DIR/synth-<size>.tif` is generated on first use (seed 1, 0.25 um/px) and
// reused afterwards; delete it after changing the generator.
//
// All Google Benchmark flags work (--benchmark_filter, --benchmark_min_time, ...). The console
// output and the table go to stdout; progress and the pixel sanity check go to stderr.
#include <benchmark/benchmark.h>
#include <openslide.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <array>
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
#include <thread>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "wsi/grid.hpp"
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

// How the benchmark threads share a grid (see the top of the file).
enum class Split { interleaved, blocks };

// One region kind: a size and the grid positions it is read at.
struct RegionKind {
  std::string name;   // benchmark name prefix, e.g. "grid96"
  std::string label;  // for the table, e.g. "96x96 grid"
  int64_t size = 0;   // region width = height, level-0 pixels
  std::vector<Pos> positions;
  Split split = Split::interleaved;
};

// ---- Environment and the slide ----

int64_t bench_size() {
  const char* s = std::getenv("WSI_BENCH_SIZE");
  if (s == nullptr || *s == '\0') return kDefaultSize;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (*end != '\0' || v < kMinSize || v > 1'000'000)
    throw std::runtime_error("WSI_BENCH_SIZE=" + std::string(s) + " is not an integer in [" +
                             std::to_string(kMinSize) + ", 1000000]");
  return static_cast<int64_t>(v);
}

fs::path bench_dir() { return wsi::bench::env_or("WSI_BENCH_DIR", "bench-data"); }

Split bench_split() {
  const std::string s = wsi::bench::env_or("WSI_BENCH_SPLIT", "interleaved");
  if (s == "interleaved") return Split::interleaved;
  if (s == "blocks") return Split::blocks;
  throw std::runtime_error("WSI_BENCH_SPLIT=" + s + " is neither 'interleaved' nor 'blocks'");
}

wsi::SynthParams synth_params(int64_t size) {
  wsi::SynthParams p;
  p.width = size;
  p.height = size;
  p.seed = kSeed;
  p.mpp = kMpp;
  return p;
}

// Generates the slide unless it is already there (the writer renames a complete temporary file,
// so an existing file is never a partial one).
void ensure_slide(const wsi::SynthScene& scene, const fs::path& path) {
  if (fs::exists(path)) return;
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
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

// Positions (x, y multiples of `stride`, region wholly inside the slide) whose centre is tissue;
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

// ---- The readers, as thin as their libraries allow ----

struct OpenSlideClose {
  void operator()(openslide_t* osr) const {
    if (osr != nullptr) openslide_close(osr);
  }
};
using OpenSlidePtr = std::unique_ptr<openslide_t, OpenSlideClose>;

// Reads size² at p of level 0 into rgb (size*size*3 bytes), using argb (size*size) as scratch.
// Throws on an OpenSlide error (which is sticky: every later read fails too).
void openslide_read(openslide_t* osr, Pos p, int64_t size, uint32_t* argb, uint8_t* rgb) {
  openslide_read_region(osr, argb, p.x, p.y, 0, size, size);
  if (const char* err = openslide_get_error(osr)) throw std::runtime_error(std::string("OpenSlide: ") + err);
  wsi::argb_over_white_to_rgb(argb, static_cast<size_t>(size * size), rgb);
}

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

// Prepares size² at p of `region`'s image (level 0, 3-band uchar) and copies it out row by row
// into rgb (size*size*3 bytes). Throws on a libvips error.
void vips_read(VipsRegion* region, Pos p, int64_t size, uint8_t* rgb) {
  const int x = static_cast<int>(p.x), y = static_cast<int>(p.y), n = static_cast<int>(size);
  VipsRect rect{x, y, n, n};
  if (vips_region_prepare(region, &rect) != 0) throw std::runtime_error("libvips: " + take_vips_error());
  const size_t row_bytes = static_cast<size_t>(size) * 3;
  for (int r = 0; r < n; ++r)
    std::memcpy(rgb + static_cast<size_t>(r) * row_bytes, VIPS_REGION_ADDR(region, x, y + r), row_bytes);
}

// ---- The benchmarks ----

// Runs the benchmark loop: `read(pos, rgb)` once per iteration over this thread's share of the
// grid (see Split), wrapping around at its end. Each thread owns its output buffer.
template <class Read>
void read_loop(benchmark::State& state, const RegionKind& kind, Split split, Read&& read) {
  std::vector<uint8_t> rgb(static_cast<size_t>(kind.size * kind.size * 3));
  const size_t count = kind.positions.size();
  const size_t threads = static_cast<size_t>(state.threads()), t = static_cast<size_t>(state.thread_index());
  size_t first = 0, end = count, step = 1;
  if (split == Split::interleaved) {
    first = t % count;
    step = threads;
  } else {
    first = std::min(t * count / threads, count - 1);
    end = std::max((t + 1) * count / threads, first + 1);
  }
  size_t i = first;
  try {
    for (auto _ : state) {
      read(kind.positions[i], rgb.data());
      benchmark::DoNotOptimize(rgb.data());
      benchmark::ClobberMemory();
      i += step;
      if (i >= end) i = first;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_openslide(benchmark::State& state, openslide_t* osr, const RegionKind& kind) {
  std::vector<uint32_t> argb(static_cast<size_t>(kind.size * kind.size));  // this thread's scratch
  read_loop(state, kind, kind.split, [&](Pos p, uint8_t* rgb) { openslide_read(osr, p, kind.size, argb.data(), rgb); });
}

void bm_libvips(benchmark::State& state, VipsImage* image, const RegionKind& kind) {
  {
    // One region per thread, as in a libvips thread pool, reused for every patch.
    VipsRegionPtr region(vips_region_new(image));
    read_loop(state, kind, kind.split, [&](Pos p, uint8_t* rgb) { vips_read(region.get(), p, kind.size, rgb); });
  }
  vips_thread_shutdown();  // frees this thread's libvips buffers (benchmark threads are short-lived)
}

void bm_wsi_slide(benchmark::State& state, const wsi::Slide& slide, const RegionKind& kind) {
  read_loop(state, kind, kind.split, [&](Pos p, uint8_t* rgb) {
    slide.read_region(wsi::Region{0, p.x, p.y, kind.size, kind.size}, rgb);
  });
}

// ---- Result capture and the ratio table ----

// CPU time used on this machine by processes other than this one, so that a reader of the
// results can tell a clean run from one that shared the cores (on a 2-core machine, one busy
// neighbour halves the 2-thread numbers). Linux only; NaN elsewhere.
class NeighbourLoad {
 public:
  NeighbourLoad() : last_(wsi::bench::CpuSample::now()) {}
  // Average number of cores used by other processes since the previous call (or construction).
  double cores_since_last() {
    const wsi::bench::CpuSample now = wsi::bench::CpuSample::now();
    const double cores = wsi::bench::other_cores(last_, now);
    last_ = now;
    return cores;
  }

 private:
  wsi::bench::CpuSample last_;
};

// Prints as ConsoleReporter does and keeps, per (benchmark, threads), items_per_second and the
// neighbours' CPU load while it ran.
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    // Called once per benchmark instance, after all its repetitions.
    const double neighbours = load_.cores_since_last();
    for (const Run& run : runs) {
      if (run.error_occurred) {
        ++errors_;
        continue;
      }
      const auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      const Key key{run.run_name.function_name, run.threads};
      neighbours_[key] = neighbours;
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

  // Cores used by other processes while `name` at `threads` ran; NaN when unknown or not run.
  double neighbour_load(const std::string& name, int64_t threads) const {
    const auto it = neighbours_.find(Key{name, threads});
    return it == neighbours_.end() ? std::nan("") : it->second;
  }

  int errors() const { return errors_; }  // runs that failed (SkipWithError)

  std::set<int64_t> thread_counts() const {
    std::set<int64_t> s;
    for (const auto& [key, value] : rates_) s.insert(key.second);
    return s;
  }

 private:
  using Key = std::pair<std::string, int64_t>;
  NeighbourLoad load_;
  int errors_ = 0;
  std::map<Key, double> rates_;
  std::map<Key, double> neighbours_;
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

void print_table(const CapturingReporter& rep, const std::vector<RegionKind>& kinds,
                 const std::string& slide_backend) {
  constexpr double kBusy = 0.25;  // other processes' cores above which a row is marked
  const std::string wsi_title = "wsi::Slide(" + slide_backend + ")";
  std::printf("\nRegions/s at level 0, measured in this run (items_per_second); ratio = libvips / OpenSlide\n");
  std::printf("%-13s %7s %10s %10s %10s %20s %15s\n", "region", "threads", "OpenSlide", "libvips", "ratio",
              wsi_title.c_str(), "other procs (*)");
  int rows = 0;
  double worst = 0;
  for (const RegionKind& kind : kinds)
    for (const int64_t t : rep.thread_counts()) {
      const std::array<std::string, 3> names = {kind.name + "/openslide", kind.name + "/libvips",
                                                kind.name + "/wsi_slide"};
      const double os = rep.rate(names[0], t), lv = rep.rate(names[1], t), ws = rep.rate(names[2], t);
      if (os < 0 && lv < 0 && ws < 0) continue;
      char ratio[32] = "-";
      if (os > 0 && lv >= 0) std::snprintf(ratio, sizeof ratio, "%.2fx", lv / os);
      double load = std::nan("");
      for (const auto& n : names) load = std::fmax(load, rep.neighbour_load(n, t));  // fmax skips NaN
      char busy[32] = "-";
      if (!std::isnan(load)) {
        std::snprintf(busy, sizeof busy, "%.2f cores%s", load, load > kBusy ? " !" : "");
        worst = std::max(worst, load);
      }
      std::printf("%-13s %7lld %10s %10s %10s %20s %15s\n", kind.label.c_str(), static_cast<long long>(t),
                  format_rate(os).c_str(), format_rate(lv).c_str(), ratio, format_rate(ws).c_str(), busy);
      ++rows;
    }
  if (rows == 0) std::printf("(no benchmark ran; check --benchmark_filter)\n");
  std::printf("(*) CPU used by other processes while the row's benchmarks ran, of %u cores.\n",
              std::thread::hardware_concurrency());
  if (worst > kBusy)
    std::printf("    Rows marked ! shared the machine: their rates (2 threads most) are too low; re-run when idle.\n");
  std::fflush(stdout);
}

// ---- Pixel sanity check: the readers must return the same pixels ----

void compare_readers(openslide_t* osr, VipsImage* image, const wsi::Slide& slide, const RegionKind& kind) {
  const Pos p = kind.positions[kind.positions.size() / 2];
  const size_t n = static_cast<size_t>(kind.size * kind.size * 3);
  std::vector<uint32_t> argb(n / 3);
  std::array<std::vector<uint8_t>, 3> px;
  for (auto& v : px) v.resize(n);
  openslide_read(osr, p, kind.size, argb.data(), px[0].data());
  {
    VipsRegionPtr region(vips_region_new(image));
    vips_read(region.get(), p, kind.size, px[1].data());
  }
  slide.read_region(wsi::Region{0, p.x, p.y, kind.size, kind.size}, px[2].data());

  const char* names[3] = {"OpenSlide", "libvips", "wsi::Slide"};
  std::fprintf(stderr, "bench_slide_read: sanity check, %lldx%lld at (%lld, %lld), mean R G B:",
               static_cast<long long>(kind.size), static_cast<long long>(kind.size), static_cast<long long>(p.x),
               static_cast<long long>(p.y));
  for (size_t r = 0; r < 3; ++r) {
    double mean[3] = {0, 0, 0};
    for (size_t i = 0; i < n; ++i) mean[i % 3] += px[r][i];
    const double count = static_cast<double>(n / 3);
    std::fprintf(stderr, " %s %.2f %.2f %.2f%s", names[r], mean[0] / count, mean[1] / count, mean[2] / count,
                 r < 2 ? ";" : "\n");
  }
  for (size_t r = 1; r < 3; ++r) {
    int max_diff = 0;
    size_t differing = 0;
    for (size_t i = 0; i < n; ++i) {
      const int d = std::abs(int{px[0][i]} - int{px[r][i]});
      max_diff = std::max(max_diff, d);
      differing += d != 0 ? 1 : 0;
    }
    std::fprintf(stderr, "bench_slide_read:   %s vs OpenSlide: %zu of %zu bytes differ, max |diff| %d%s\n", names[r],
                 differing, n, max_diff,
                 max_diff > 2 ? "  <-- the readers disagree; the timings may not compare like with like" : "");
  }
}

void bm_resample(benchmark::State& state) {
  const int64_t src = state.range(0), dst = state.range(1);
  std::vector<uint8_t> in(static_cast<size_t>(src * src * 3)), out(static_cast<size_t>(dst * dst * 3));
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
  for (auto _ : state) {
    wsi::resample_area(in.data(), src, out.data(), dst);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

int run(int argc, char** argv) {
  // Flags first: --help must not wait for a slide to be generated.
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  const int64_t size = bench_size();
  const Split split = bench_split();
  const fs::path path = bench_dir() / ("synth-" + std::to_string(size) + ".tif");
  const wsi::SynthScene scene(synth_params(size));
  ensure_slide(scene, path);

  const wsi::Slide slide(path);
  OpenSlidePtr osr(openslide_open(path.c_str()));
  if (!osr) throw std::runtime_error("OpenSlide cannot open " + path.string());
  if (const char* err = openslide_get_error(osr.get()))
    throw std::runtime_error("OpenSlide cannot open " + path.string() + ": " + err);
  VipsImagePtr image(vips_image_new_from_file(path.c_str(), "access", VIPS_ACCESS_RANDOM, nullptr));
  if (!image) throw std::runtime_error("libvips cannot open " + path.string() + ": " + take_vips_error());
  if (image->Bands != 3 || image->BandFmt != VIPS_FORMAT_UCHAR || image->Xsize != slide.width() ||
      image->Ysize != slide.height())
    throw std::runtime_error("libvips sees " + path.string() + " as " + std::to_string(image->Xsize) + "x" +
                             std::to_string(image->Ysize) + " with " + std::to_string(image->Bands) +
                             " bands; expected 8-bit RGB of OpenSlide's level-0 size (delete the file to "
                             "regenerate it)");

  const auto& l0 = slide.level(0);
  const int64_t tile = l0.tile_width > 0 ? l0.tile_width : 256;
  const std::vector<RegionKind> kinds = {
      {"grid96", "96x96 grid", 96, tissue_grid(scene, slide.width(), slide.height(), 96, 96), split},
      {"tile256", std::to_string(tile) + "x" + std::to_string(tile) + " tile", tile,
       tissue_grid(scene, slide.width(), slide.height(), tile, tile), split},
  };
  const std::string backend(slide.pixel_backend());
  std::fprintf(stderr,
               "bench_slide_read: %s: %lldx%lld, %d levels, vendor %s, level-0 tiles %lldx%lld; OpenSlide %s, "
               "libvips %s; wsi::Slide reads it with %s\n",
               path.c_str(), static_cast<long long>(slide.width()), static_cast<long long>(slide.height()),
               slide.level_count(), slide.vendor().c_str(), static_cast<long long>(l0.tile_width),
               static_cast<long long>(l0.tile_height), openslide_get_version(), vips_version_string(),
               backend.c_str());
  for (const auto& k : kinds)
    std::fprintf(stderr, "bench_slide_read: %s: %zu positions with tissue at the centre, split %s between threads\n",
                 k.name.c_str(), k.positions.size(), split == Split::blocks ? "in blocks" : "interleaved");
  compare_readers(osr.get(), image.get(), slide, kinds.back());

  for (const RegionKind& kind : kinds) {
    const RegionKind* k = &kind;
    openslide_t* o = osr.get();
    VipsImage* img = image.get();
    const wsi::Slide* s = &slide;
    benchmark::RegisterBenchmark((kind.name + "/openslide").c_str(),
                                 [o, k](benchmark::State& st) { bm_openslide(st, o, *k); })
        ->Threads(1)->Threads(2)->UseRealTime();
    benchmark::RegisterBenchmark((kind.name + "/libvips").c_str(),
                                 [img, k](benchmark::State& st) { bm_libvips(st, img, *k); })
        ->Threads(1)->Threads(2)->UseRealTime();
    benchmark::RegisterBenchmark((kind.name + "/wsi_slide").c_str(),
                                 [s, k](benchmark::State& st) { bm_wsi_slide(st, *s, *k); })
        ->Threads(1)->Threads(2)->UseRealTime();
  }

  benchmark::RegisterBenchmark("resample", bm_resample)->ArgNames({"from", "to"})->Args({93, 48})->Args({187, 96});

  CapturingReporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                        : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_table(reporter, kinds, backend);
  benchmark::Shutdown();
  if (reporter.errors() > 0) {
    std::fprintf(stderr, "bench_slide_read: %d benchmark run(s) failed; see ERROR OCCURRED above\n", reporter.errors());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (VIPS_INIT(argv[0]) != 0) {
    std::fprintf(stderr, "bench_slide_read: cannot start libvips: %s\n", take_vips_error().c_str());
    return 1;
  }
  vips_cache_set_max(0);  // the operation cache only costs memory here, as in the library
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_slide_read: %s\n", e.what());
    return 1;
  }
}
