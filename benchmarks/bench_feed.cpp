// bench_feed — the heatmap graph's feed ceiling: how many patches per second can the graph read,
// order and hand on when the model costs nothing? On a GPU that is the limit the device is fed
// at; a model slower than it is never kept waiting.
//
// The graph (src/heatmap/graph.hpp) runs over a real slide with an asynchronous classifier that
// costs nothing (start() and finish() return at once, like a GPU that is infinitely fast): what
// remains is reading (tile decode, resample, in contiguous strips on the graph's threads),
// ordering and the stitch stage. Benchmarks:
//   * feed/read/threads:T    the graph with T threads and a sink that keeps nothing;
//   * feed/stitch/threads:T  the same with the heatmap's own sink (NAME.patches.csv and Grad-CAM
//                            stitched into NAME.cam.tif, written under a temporary directory):
//                            the serial stitch stage's share.
// T = 1, 2, 4, ... up to the machine's cores. Counters: `patches/s`, `per_core` (patches/s over
// min(T, cores)), `read_cpu_us` (readers' CPU per patch, µs) and `other_cores` (CPU other
// processes used meanwhile). Each iteration is one whole graph run over every tissue patch.
//
// Environment:
//   WSI_BENCH_SLIDE   the slide (required; benchmarks/feed.sh makes a 0.243 µm/px one)
//   WSI_BENCH_INPUT   the free model's input: 96 (default: 96 px at 0.972 µm/px, ResNet50's
//                     contract) or 48 (the demo model's: 96 px at 0.972 µm area-resized to 48,
//                     read at 48 px from a coarser level)
//   WSI_BENCH_BATCH   patches per batch (default 256)
//   WSI_BENCH_IN_FLIGHT batches in the graph (PatchGraphParams::in_flight; default 0: the graph's)
//   WSI_BENCH_TILE_CACHE_MB  the slide's tile cache (SlideOptions::tile_cache_bytes; default:
//                     what the heatmap picks for the read level)
// Slide opening, the tissue mask and the plan happen once, before any timing.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "heatmap/graph.hpp"
#include "heatmap/outputs.hpp"
#include "heatmap/plan.hpp"
#include "slide/slide_handle.hpp"
#include "wsi/error.hpp"
#include "wsi/tissue.hpp"

namespace {
namespace fs = std::filesystem;
using wsi::bench::CpuSample;
using wsi::bench::env_or;

// A model that costs nothing, computed "on a device": probabilities and CAMs stay zero.
class FreeSlot final : public wsi::BatchSlot {
 public:
  FreeSlot(int64_t capacity, int side, bool cam)
      : capacity_(capacity), side_(side), pixels_(static_cast<size_t>(capacity * side * side * 3)),
        prob_(static_cast<size_t>(capacity)), cams_(cam ? static_cast<size_t>(capacity * side * side) : 0) {}
  int64_t capacity() const override { return capacity_; }
  int side() const override { return side_; }
  uint8_t* pixels() override { return pixels_.data(); }
  void start(int64_t) override { ++timings_.batches; }
  void finish() override {}
  const float* probabilities() const override { return prob_.data(); }
  const float* cams() const override { return cams_.empty() ? nullptr : cams_.data(); }
  const wsi::BatchTimings& timings() const override { return timings_; }

 private:
  int64_t capacity_;
  int side_;
  std::vector<uint8_t> pixels_;
  std::vector<float> prob_, cams_;
  wsi::BatchTimings timings_;
};

class FreeModel final : public wsi::Classifier {
 public:
  explicit FreeModel(wsi::ModelSpec spec) : spec_(std::move(spec)) {}
  const wsi::ModelSpec& spec() const override { return spec_; }
  bool asynchronous() const override { return true; }
  std::unique_ptr<wsi::BatchSlot> make_slot(int64_t capacity, int side, bool cam) const override {
    return std::make_unique<FreeSlot>(capacity, side, cam);
  }

 private:
  wsi::ModelSpec spec_;
};

class NullSink final : public wsi::detail::BatchSink {
 public:
  void add(size_t, size_t count, const uint8_t*, const float*, const float*) override { patches += count; }
  size_t patches = 0;
};

struct Setup {
  std::string slide_path;
  wsi::SlideOptions slide_options;
  std::unique_ptr<FreeModel> model;
  wsi::detail::HeatmapPlan plan;
  fs::path scratch;
  int batch = 256;
  int in_flight = 0;
};
Setup* g_setup = nullptr;

void bm_feed(benchmark::State& state, bool stitch) {
  Setup& s = *g_setup;
  const int threads = static_cast<int>(state.range(0));
  wsi::detail::PatchGraphParams gp;
  gp.batch = s.batch;
  gp.threads = threads;
  gp.gradcam = stitch;
  gp.in_flight = s.in_flight;
  gp.subject = "bench";
  const CpuSample start = CpuSample::now();
  double read_cpu = 0;
  int64_t patches = 0;
  for (auto _ : state) {
    // A fresh handle each run: nothing decoded by the run before is in its tile cache.
    state.PauseTiming();
    const wsi::detail::SlideHandle slide(s.slide_path, s.slide_options);
    state.ResumeTiming();
    NullSink null_sink;
    std::unique_ptr<wsi::detail::HeatmapStitcher> stitcher;
    wsi::detail::BatchSink* sink = &null_sink;
    if (stitch) {
      stitcher = std::make_unique<wsi::detail::HeatmapStitcher>(s.plan, s.plan.description);
      sink = stitcher.get();
    }
    wsi::detail::PatchGraph graph(slide, s.plan.grid.patches, s.plan.read_geometry, *s.model, *sink, gp);
    const wsi::detail::PatchGraphStats st = graph.run();
    if (stitcher) stitcher->finish();
    read_cpu += st.read_cpu_seconds;
    patches += st.patches;
  }
  const auto cores = static_cast<double>(std::min<unsigned>(static_cast<unsigned>(threads), std::max(1u, std::thread::hardware_concurrency())));
  state.counters["patches/s"] = benchmark::Counter(static_cast<double>(patches), benchmark::Counter::kIsRate);
  state.counters["per_core"] = benchmark::Counter(static_cast<double>(patches) / cores, benchmark::Counter::kIsRate);
  state.counters["read_cpu_us"] = patches ? 1e6 * read_cpu / static_cast<double>(patches) : 0.0;
  state.counters["other_cores"] = wsi::bench::other_cores(start, CpuSample::now());
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const std::string slide_path = env_or("WSI_BENCH_SLIDE", "");
  if (slide_path.empty()) throw wsi::UsageError("set WSI_BENCH_SLIDE to a slide (benchmarks/feed.sh makes one)");
  const int input = std::stoi(env_or("WSI_BENCH_INPUT", "96"));
  if (input != 96 && input != 48) throw wsi::UsageError("WSI_BENCH_INPUT must be 96 or 48");

  Setup s;
  s.batch = std::stoi(env_or("WSI_BENCH_BATCH", "256"));
  s.in_flight = std::stoi(env_or("WSI_BENCH_IN_FLIGHT", "0"));
  s.slide_path = slide_path;
  s.slide_options.tile_cache_bytes = static_cast<size_t>(std::stoll(env_or("WSI_BENCH_TILE_CACHE_MB", "0"))) << 20;
  const auto slide = std::make_shared<const wsi::Slide>(slide_path, s.slide_options);
  wsi::ModelSpec spec;
  spec.name = "free";
  spec.patch_size = 96;
  spec.mpp = 0.972;
  spec.input_size = input;
  spec.resize = input == 96 ? wsi::ResizeMode::none : wsi::ResizeMode::area;
  s.model = std::make_unique<FreeModel>(spec);
  wsi::HeatmapParams hp;
  hp.batch = s.batch;
  const wsi::TissueMask tissue = wsi::compute_tissue_mask(*slide, hp.tissue);
  char dir[] = "/tmp/bench-feed.XXXXXX";
  if (!mkdtemp(dir)) throw wsi::Error("cannot make a temporary directory");
  s.scratch = dir;
  const wsi::detail::SlideFacts facts{slide_path, slide->vendor(), slide->levels(), slide->mpp(), slide->bounds()};
  const wsi::detail::ModelFacts mf{spec, "free", "0", true, ""};
  s.plan = wsi::detail::plan_heatmap(facts, mf, hp, s.scratch, &tissue);
  g_setup = &s;
  std::fprintf(stderr, "bench_feed: %s (%s, %zu tissue patches, read at level %d, %lld px -> %d px), batch %d\n",
               slide_path.c_str(), std::string(slide->pixel_backend()).c_str(), s.plan.grid.patches.size(),
               s.plan.read_geometry.level, static_cast<long long>(s.plan.read_geometry.read_size),
               s.plan.read_geometry.patch_size, s.batch);

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const bool stitch : {false, true}) {
    auto* b = benchmark::RegisterBenchmark(stitch ? "feed/stitch" : "feed/read", bm_feed, stitch);
    b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
    for (int t = 1; t < cores; t *= 2) b->Arg(t);
    b->Arg(cores);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(s.scratch, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_feed: %s\n", e.what());
    return 1;
  }
}
