// bench_stitch — the pure output stages of the heatmap pipeline, without slide reading or a model:
// how much of a heatmap run can stitching and writing cost?
//
// Benchmarks (geometry as `wsi-heatmap` uses it on a 0.25 µm/px slide with a 96 px, 0.972 µm/px
// model: a patch covers 373.25 level-0 pixels, stride = patch size):
//   * cam_stitcher/cols:N     CamStitcher::add for one grid row of N patches (N = 52: a 20000 px
//                             wide slide; N = 267: 100000 px), each with a 96×96 Grad-CAM map,
//                             cam_per_patch 8 (raster pixel = 373.25 / 8 level-0 px), rows emitted
//                             to a sink that converts them to uint8 as the pipeline does. Grid rows
//                             follow each other, so every iteration also emits ~8 raster rows.
//                             Counter `patches/s`.
//   * probability_raster/side:N
//                             wsi::probability_raster for an N×N grid of patches (N = 53: 20000²;
//                             N = 267: 100000², every cell a patch, one pixel per cell).
//                             Counter `patches/s`.
//   * tiff_writer/rows_per_call:R
//                             PyramidTiffWriter: a 4096×4096 uint8 single-channel image (deflate,
//                             mean shrink, 256² tiles, all pyramid levels) written R rows per
//                             write_rows call (R = 1: what the CAM stitcher's sink does; R = 4096:
//                             the probability raster in one call), then finish(), into a
//                             temporary directory; the file is removed after each iteration.
//                             Counters `rows/s` (level-0 rows) and `MB/s` (level-0 pixel bytes).
// The image content is smooth (like CAM / probability maps) with NaN (= 0 after the uint8
// conversion) where there is no tissue, so compression sees realistic data.
//
// Environment: TMPDIR (or /tmp) hosts the writer's temporary directory. All Google Benchmark
// flags work; ctest's bench_stitch_smoke runs it with --benchmark_min_time=0.01 (seconds).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "wsi/heatmap_io.hpp"
#include "wsi/stitch.hpp"

namespace {

namespace fs = std::filesystem;

constexpr int kCam = 96;                 // Grad-CAM map side (= the model's patch size)
constexpr int kCamPerPatch = 8;          // saliency raster pixels per patch side
constexpr double kPatch0 = 96 * 0.972 / 0.25;  // level-0 pixels per patch side (373.248)
constexpr int64_t kTiffSide = 4096;

// A smooth map value in 0..1 with a "no tissue" hole (NaN) in one corner of the field.
float field(double x, double y) {
  if (x * x + y * y < 0.02) return std::numeric_limits<float>::quiet_NaN();
  return static_cast<float>(0.5 + 0.25 * std::sin(9.0 * x) * std::cos(7.0 * y) + 0.25 * std::sin(23.0 * x * y));
}

uint8_t to_u8(float v) { return std::isnan(v) ? 0 : static_cast<uint8_t>(std::lround(std::fmin(std::fmax(v, 0.f), 1.f) * 255.f)); }

// One 96×96 CAM per distinct value of `k` (a few, reused): smooth blobs as Grad-CAM gives.
std::vector<float> make_cams(int count) {
  std::vector<float> cams(static_cast<size_t>(count) * kCam * kCam);
  for (int k = 0; k < count; ++k)
    for (int y = 0; y < kCam; ++y)
      for (int x = 0; x < kCam; ++x) {
        const double dx = (x - 30.0 - 5 * k) / 30.0, dy = (y - 55.0 + 3 * k) / 25.0;
        cams[(static_cast<size_t>(k) * kCam + static_cast<size_t>(y)) * kCam + static_cast<size_t>(x)] =
            static_cast<float>(std::exp(-(dx * dx + dy * dy)));
      }
  return cams;
}

void bm_cam_stitcher(benchmark::State& state) {
  const int64_t cols = state.range(0);
  const int64_t grid_rows = 64;  // the stitcher is rebuilt (untimed) after this many rows
  const auto w0 = static_cast<int64_t>(std::ceil(static_cast<double>(cols) * kPatch0));
  const auto h0 = static_cast<int64_t>(std::ceil(static_cast<double>(grid_rows) * kPatch0));
  const wsi::RasterGeometry g = wsi::raster_for(w0, h0, kPatch0 / kCamPerPatch);
  const std::vector<float> cams = make_cams(4);
  std::vector<uint8_t> row_u8(static_cast<size_t>(g.width));
  const auto sink = [&](const float* row, int64_t) {
    for (size_t u = 0; u < row_u8.size(); ++u) row_u8[u] = to_u8(row[u]);
    benchmark::DoNotOptimize(row_u8.data());
  };
  auto stitcher = std::make_unique<wsi::CamStitcher>(g, kPatch0, kCam, sink);
  int64_t r = 0;
  for (auto _ : state) {
    if (r == grid_rows) {
      state.PauseTiming();
      stitcher->finish();
      stitcher = std::make_unique<wsi::CamStitcher>(g, kPatch0, kCam, sink);
      r = 0;
      state.ResumeTiming();
    }
    const auto y = static_cast<int64_t>(std::llround(static_cast<double>(r) * kPatch0));
    for (int64_t c = 0; c < cols; ++c) {
      const auto x = static_cast<int64_t>(std::llround(static_cast<double>(c) * kPatch0));
      stitcher->add(x, y, r, cams.data() + static_cast<size_t>(c % 4) * kCam * kCam);
    }
    ++r;
  }
  stitcher->finish();
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * cols), benchmark::Counter::kIsRate);
}

void bm_probability_raster(benchmark::State& state) {
  const int64_t side = state.range(0);
  const auto stride = static_cast<int64_t>(std::llround(kPatch0));
  std::vector<int64_t> xs, ys;
  std::vector<float> ps;
  for (int64_t r = 0; r < side; ++r)
    for (int64_t c = 0; c < side; ++c) {
      xs.push_back(c * stride);
      ys.push_back(r * stride);
      ps.push_back(field(static_cast<double>(c) / static_cast<double>(side), static_cast<double>(r) / static_cast<double>(side)));
    }
  const wsi::RasterGeometry g = wsi::raster_for(side * stride, side * stride, static_cast<double>(stride));
  for (auto _ : state) {
    std::vector<float> raster = wsi::probability_raster(g, xs, ys, ps, static_cast<double>(stride), static_cast<double>(stride));
    benchmark::DoNotOptimize(raster.data());
  }
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(ps.size()), benchmark::Counter::kIsRate);
}

// A scratch directory, removed at exit.
struct TempDir {
  fs::path path;
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/bench_stitch.XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void bm_tiff_writer(benchmark::State& state, const fs::path* dir) {
  const int64_t rows_per_call = state.range(0);
  std::vector<uint8_t> image(static_cast<size_t>(kTiffSide * kTiffSide));
  for (int64_t y = 0; y < kTiffSide; ++y)
    for (int64_t x = 0; x < kTiffSide; ++x)
      image[static_cast<size_t>(y * kTiffSide + x)] =
          to_u8(field(static_cast<double>(x) / kTiffSide, static_cast<double>(y) / kTiffSide));
  wsi::PyramidTiffOptions o;
  o.width = o.height = kTiffSide;
  o.channels = 1;
  o.sample = wsi::PyramidTiffOptions::SampleType::u8;
  o.compression = wsi::PyramidTiffOptions::Compression::deflate;
  o.shrink = wsi::PyramidTiffOptions::Shrink::mean;
  o.mpp_x = o.mpp_y = kPatch0 / kCamPerPatch * 0.25;
  o.description = "bench_stitch";
  const fs::path out = *dir / "map.tif";
  uintmax_t bytes = 0;
  for (auto _ : state) {
    wsi::PyramidTiffWriter w(out, o);
    for (int64_t y = 0; y < kTiffSide; y += rows_per_call)
      w.write_rows(image.data() + y * kTiffSide, std::min(rows_per_call, kTiffSide - y));
    w.finish();
    state.PauseTiming();
    bytes = fs::file_size(out);
    fs::remove(out);
    state.ResumeTiming();
  }
  const auto its = static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(its * kTiffSide, benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(its * kTiffSide * kTiffSide / 1e6, benchmark::Counter::kIsRate);
  state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const TempDir dir;
  benchmark::RegisterBenchmark("cam_stitcher", bm_cam_stitcher)->ArgName("cols")->Arg(52)->Arg(267);
  benchmark::RegisterBenchmark("probability_raster", bm_probability_raster)->ArgName("side")->Arg(53)->Arg(267);
  benchmark::RegisterBenchmark("tiff_writer", bm_tiff_writer, &dir.path)
      ->ArgName("rows_per_call")
      ->Arg(1)
      ->Arg(kTiffSide)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_stitch: %s\n", e.what());
    return 1;
  }
}
