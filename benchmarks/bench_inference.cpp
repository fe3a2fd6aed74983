// bench_inference — how many patches per second does a model run at, and how close is that to
// what this machine can compute?
//
// Benchmarks, all in one process, with the same intra-op thread count:
//   * predict/batch:N   wsi::Model::predict on N patches (preprocessing included: uint8 HWC
//                       patches in, probabilities out), N = 1, 16, 64, 128;
//   * gradcam/batch:N   wsi::gradcam on the same N patches (probabilities + CAMs at patch side);
//                       only when the model exports the features/classify split;
//   * slots/batch:N     the heatmap graph's way: a ring of 3 batch slots (Model as a Classifier,
//                       classifier.hpp) each started when the one started 3 batches before is
//                       finished, so on a GPU copies in, compute and copies back overlap as in
//                       the graph; on a CPU the same rate as predict. With Grad-CAM too:
//                       slots_cam/batch:N. The graph's ceiling when reading costs nothing;
//   * forward/batch:N   the network alone: its forward pass on an input already on its device,
//                       at its precision and layout (the "bare model" a python loop measures);
//                       on a GPU each iteration ends with a device synchronize;
//   * conv/contiguous, conv/channels_last
//                       the machine's convolution rate: one float32 3×3 convolution, 64 -> 64
//                       channels, 56×56, batch 32, stride 1, padding 1, no bias (ResNet's first
//                       stage; 7.40 GFLOP per call), under InferenceMode, NCHW-contiguous and
//                       channels-last tensors.
// The context (header, JSON "context") carries `gflops_per_patch` when the model knows its FLOPs
// (Model::gflops_per_patch(): built-in networks; 0 for TorchScript).
// Counters: `patches/s` for the model benchmarks, `GFLOP/s` (2 × multiply-adds) for conv, and
// `other_cores`: CPU that other processes used meanwhile, in cores (from /proc/stat minus this
// process's own CPU time; on a 2-core machine 0.5 cores of neighbours cost a 2-thread run about a
// quarter of its rate, so re-run when it is high). All times are wall-clock (torch's worker
// threads do the work, not the timing thread).
// benchmarks/inference.sh runs this per model and prints patches/s next to GFLOP per patch and
// the conv rate, so the fraction of the machine's limit a model reaches is visible.
//
// Environment:
//   WSI_BENCH_MODEL    the model (NAME.pt with NAME.json beside it, include/wsi/model.hpp);
//                      unset: only the conv benchmarks run
//   WSI_BENCH_THREADS  intra-op threads for the model and conv (default 2)
//   WSI_BENCH_MALLOC   tuned (default: wsi::tune_allocator_for_inference(), as the CLI does) or
//                      glibc (malloc's defaults, to see what the tuning is worth)
//   WSI_BENCH_BLAS     one (default: wsi::limit_blas_threads(), as the CLI does) or default
//                      (OpenBLAS' own thread pool, which spins between calls)
//   WSI_BENCH_SIDE     side of the patches fed to the model (default: its sidecar's patch_size).
//                      The heatmap pipeline feeds a model that area-resizes its patches at its
//                      input size (read so from the slide); heatmap_pipeline.sh passes that side
//                      so the bare run gets patches of the size the pipeline fed.
//   WSI_BENCH_DEVICE   cpu (default) or cuda
//   WSI_BENCH_PRECISION fp32 (default), bf16 or fp16 (fp16 needs cuda)
//   WSI_BENCH_STAGING  host (default on a CPU: preprocess()) or device (the GPU's path, tensor
//                      operations; always so on cuda): ModelOptions::device_staging
//   WSI_BENCH_BATCHES  comma-separated batch sizes (default 1,16,64,128; a GPU wants 256,1024)
//   WSI_BENCH_CALLER   main (default: predict runs on the thread that loaded the model, as in
//                      the heatmap pipeline) or thread (a thread of its own: a second OpenMP team,
//                      which puts libgomp's spin-waits into their throttled mode; shows that cost)
//
// Patches are deterministic pseudo-random bytes (the rate does not depend on pixel values).
// Each (benchmark, batch) is run once untimed before its first timing, so one-time costs
// (oneDNN primitive creation for a new shape, TorchScript profiling runs) are not counted.
// All Google Benchmark flags work. Settings go to stderr, results to stdout.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "model/nets.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"
#include "wsi/runtime.hpp"

namespace {

constexpr std::array<int64_t, 4> kDefaultBatches{1, 16, 64, 128};
constexpr int kDefaultThreads = 2;

// The reference convolution: N x C x H x W input, C -> C channels, K x K kernel, same padding.
constexpr int64_t kConvN = 32, kConvC = 64, kConvHW = 56, kConvK = 3;
constexpr double kConvFlops = 2.0 * kConvN * kConvC * kConvHW * kConvHW * kConvC * kConvK * kConvK;

using wsi::bench::CpuSample;
using wsi::bench::env_or;

void count_other_cores(benchmark::State& state, const CpuSample& start) {
  state.counters["other_cores"] = wsi::bench::other_cores(start, CpuSample::now());
}

// Runs `fn` once the first time `key` is seen: the runner calls a benchmark function several
// times (to size the iteration count), and the warm-up is needed only before the first.
template <class Fn>
void warm_up_once(const std::string& key, Fn&& fn) {
  static std::set<std::string> done;
  if (done.insert(key).second) fn();
}

// The patches every model benchmark is fed, `side` pixels square.
struct Patches {
  std::vector<uint8_t> bytes;
  int side = 0;
};

void bm_predict(benchmark::State& state, const wsi::Model* model, const Patches* patches, int64_t batch) {
  const auto body = [&] {
    warm_up_once("predict/" + std::to_string(batch),
                 [&] { (void)model->predict(patches->bytes.data(), batch, patches->side); });
    const CpuSample start = CpuSample::now();
    for (auto _ : state) {
      std::vector<float> p = model->predict(patches->bytes.data(), batch, patches->side);
      benchmark::DoNotOptimize(p.data());
    }
    count_other_cores(state, start);
  };
  if (env_or("WSI_BENCH_CALLER", "main") == "thread") {
    std::thread t(body);  // a second OpenMP team beside the one the model's constructor started
    t.join();
  } else {
    body();
  }
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

void bm_gradcam(benchmark::State& state, const wsi::Model* model, const Patches* patches, int64_t batch) {
  warm_up_once("gradcam/" + std::to_string(batch),
               [&] { (void)wsi::gradcam(*model, patches->bytes.data(), batch, patches->side); });
  const CpuSample start = CpuSample::now();
  for (auto _ : state) {
    wsi::GradcamBatch g = wsi::gradcam(*model, patches->bytes.data(), batch, patches->side);
    benchmark::DoNotOptimize(g.cams.data());
  }
  count_other_cores(state, start);
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

// A ring of slots as the heatmap graph keeps them (its in-flight batches): each iteration
// starts one batch and first finishes the one that slot held.
void bm_slots(benchmark::State& state, const wsi::Model* model, const Patches* patches, int64_t batch, bool cam) {
  constexpr int kRing = 3;
  std::vector<std::unique_ptr<wsi::BatchSlot>> ring;
  for (int i = 0; i < kRing; ++i) {
    ring.push_back(model->make_slot(batch, patches->side, cam));
    std::copy_n(patches->bytes.data(), static_cast<size_t>(batch) * static_cast<size_t>(patches->side) *
                                           static_cast<size_t>(patches->side) * 3, ring.back()->pixels());
  }
  std::vector<bool> busy(kRing, false);
  size_t next = 0;
  const auto step = [&] {
    wsi::BatchSlot& s = *ring[next];
    if (busy[next]) s.finish();
    s.start(batch);
    busy[next] = true;
    next = (next + 1) % kRing;
  };
  warm_up_once(std::string(cam ? "slots_cam/" : "slots/") + std::to_string(batch), [&] {
    for (int i = 0; i < 2 * kRing; ++i) step();
  });
  const CpuSample start = CpuSample::now();
  for (auto _ : state) step();
  for (int i = 0; i < kRing; ++i)
    if (busy[static_cast<size_t>(i)]) ring[static_cast<size_t>(i)]->finish();
  count_other_cores(state, start);
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

// The network alone, loaded the way Model loads it, on a random input already on its device.
struct BareNet {
  torch::jit::Module module;
  std::shared_ptr<wsi::detail::NetImpl> net;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  int input = 96;
  at::Tensor forward(const at::Tensor& x) {
    return net ? net->forward(x) : module.forward({x}).toTensor();
  }
};

BareNet load_bare(const std::string& path, const wsi::ModelSpec& spec, const wsi::ModelOptions& o) {
  BareNet b;
  b.device = o.device == wsi::Device::cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  b.dtype = o.precision == wsi::Precision::fp16 ? torch::kFloat16
            : o.precision == wsi::Precision::bf16 ? torch::kBFloat16 : torch::kFloat32;
  b.input = spec.input_size;
  const auto cl = [](auto params) {
    torch::NoGradGuard no_grad;
    for (auto p : params)
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  };
  if (spec.architecture) {
    b.net = wsi::detail::make_net(*spec.architecture);
    wsi::detail::load_net(*b.net, path, b.device);
    b.net->eval();
    b.net->to(b.dtype);
    cl(b.net->parameters());
  } else {
    b.module = torch::jit::load(path, b.device);
    b.module.eval();
    b.module.to(b.dtype);
    cl(b.module.parameters());
  }
  return b;
}

void bm_forward(benchmark::State& state, BareNet* net, int64_t batch) {
  c10::InferenceMode guard;
  const at::Tensor x = at::randn({batch, 3, net->input, net->input}, at::TensorOptions().device(net->device))
                           .to(net->dtype)
                           .contiguous(at::MemoryFormat::ChannelsLast);
  const bool cuda = net->device.is_cuda();
  const auto once = [&] {
    at::Tensor y = net->forward(x);
    if (cuda) torch::cuda::synchronize();
    benchmark::DoNotOptimize(y.data_ptr());
  };
  warm_up_once("forward/" + std::to_string(batch), [&] {
    once();
    once();
  });
  const CpuSample start = CpuSample::now();
  for (auto _ : state) once();
  count_other_cores(state, start);
  state.counters["patches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

void bm_conv(benchmark::State& state, bool channels_last) {
  c10::InferenceMode guard;
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::manual_seed(0);
  const at::Tensor x = at::randn({kConvN, kConvC, kConvHW, kConvHW}).contiguous(format);
  const at::Tensor w = (at::randn({kConvC, kConvC, kConvK, kConvK}) * 0.05).contiguous(format);
  const std::array<int64_t, 2> stride{1, 1}, padding{kConvK / 2, kConvK / 2};
  const auto conv = [&] { return at::conv2d(x, w, /*bias=*/{}, stride, padding); };
  warm_up_once(channels_last ? "conv/cl" : "conv/nchw", [&] { (void)conv(); });
  const CpuSample start = CpuSample::now();
  for (auto _ : state) {
    at::Tensor y = conv();
    benchmark::DoNotOptimize(y.data_ptr());
  }
  count_other_cores(state, start);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kConvFlops / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// Deterministic pseudo-random patches, enough for the largest batch.
Patches make_patches(int side, int64_t largest_batch) {
  Patches p;
  p.side = side;
  p.bytes.resize(static_cast<size_t>(largest_batch) * static_cast<size_t>(side) * static_cast<size_t>(side) * 3);
  std::mt19937 rng(1);
  for (auto& b : p.bytes) b = static_cast<uint8_t>(rng() >> 24);
  return p;
}

int run(int argc, char** argv) {
  // Each switch: its first value does what the CLI does, its second leaves the library default.
  const auto env_switch = [](const char* var, const char* as_cli, const char* as_default, bool (*apply)(),
                             std::string& mode) {
    mode = env_or(var, as_cli);
    if (mode == as_cli) return apply();
    if (mode != as_default)
      throw wsi::UsageError(std::string(var) + "=" + mode + ": use " + as_cli + " or " + as_default);
    return false;
  };
  std::string malloc_mode, blas_mode;
  const bool tuned = env_switch("WSI_BENCH_MALLOC", "tuned", "glibc", wsi::tune_allocator_for_inference, malloc_mode);
  const bool blas_one = env_switch("WSI_BENCH_BLAS", "one", "default", wsi::limit_blas_threads, blas_mode);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  const std::string threads_text = env_or("WSI_BENCH_THREADS", std::to_string(kDefaultThreads));
  int threads = 0;
  try {
    threads = std::stoi(threads_text);
  } catch (const std::exception&) {
  }
  if (threads < 1) {
    std::fprintf(stderr, "bench_inference: WSI_BENCH_THREADS=%s: give a thread count >= 1\n", threads_text.c_str());
    return 2;
  }
  at::set_num_threads(threads);

  std::vector<int64_t> batches;
  {
    const std::string text = env_or("WSI_BENCH_BATCHES", "");
    if (text.empty()) batches.assign(kDefaultBatches.begin(), kDefaultBatches.end());
    size_t at = 0;
    while (at < text.size()) {
      const size_t comma = std::min(text.find(',', at), text.size());
      int64_t b = 0;
      try {
        b = std::stoll(text.substr(at, comma - at));
      } catch (const std::exception&) {
      }
      if (b < 1 || b > 4096) throw wsi::UsageError("WSI_BENCH_BATCHES=" + text + ": give batch sizes in 1..4096, e.g. 64,256");
      batches.push_back(b);
      at = comma + 1;
    }
  }
  std::unique_ptr<wsi::Model> model;
  std::unique_ptr<BareNet> bare;
  Patches patches;
  const std::string model_path = env_or("WSI_BENCH_MODEL", "");
  if (model_path.empty()) {
    std::fprintf(stderr, "bench_inference: WSI_BENCH_MODEL is not set: only the conv benchmarks run\n");
  } else {
    wsi::ModelOptions options;
    options.device = wsi::parse_device(env_or("WSI_BENCH_DEVICE", "cpu"));
    options.precision = wsi::parse_precision(env_or("WSI_BENCH_PRECISION", "fp32"));
    options.threads = threads;
    const std::string staging = env_or("WSI_BENCH_STAGING", "host");
    if (staging != "host" && staging != "device")
      throw wsi::UsageError("WSI_BENCH_STAGING=" + staging + ": use host or device");
    options.device_staging = staging == "device";
    model = std::make_unique<wsi::Model>(model_path, options);
    const wsi::ModelSpec& s = model->spec();
    const std::string side_text = env_or("WSI_BENCH_SIDE", std::to_string(s.patch_size));
    int side = 0;
    try {
      side = std::stoi(side_text);
    } catch (const std::exception&) {
    }
    if (side < 1 || side > 4096) throw wsi::UsageError("WSI_BENCH_SIDE=" + side_text + ": give a patch side in pixels");
    patches = make_patches(side, *std::max_element(batches.begin(), batches.end()));
    bare = std::make_unique<BareNet>(load_bare(model_path, s, options));
    std::fprintf(stderr, "bench_inference: model %s (%s) on %s, %s: %d px patches fed (sidecar: %d px patches -> %d px input), Grad-CAM %s\n",
                 model_path.c_str(), s.name.c_str(), model->device_name().c_str(), env_or("WSI_BENCH_PRECISION", "fp32").c_str(),
                 side, s.patch_size, s.input_size,
                 model->has_gradcam() ? "yes" : ("no: " + model->gradcam_unavailable_reason()).c_str());
    // Built-in networks know their FLOPs; inference.sh reads this from the JSON output's context.
    if (const double gflops = model->gflops_per_patch(); gflops > 0) {
      char text[32];
      std::snprintf(text, sizeof text, "%.6g", gflops);
      benchmark::AddCustomContext("gflops_per_patch", text);
      std::fprintf(stderr, "bench_inference: %s GFLOP per patch (forward pass)\n", text);
    }
  }
  std::fprintf(stderr, "bench_inference: %d intra-op threads (at::get_num_threads() = %d), malloc %s, BLAS %s\n",
               threads, at::get_num_threads(),
               tuned ? "tuned (M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB, one arena)"
                     : malloc_mode == "glibc" ? "glibc defaults (WSI_BENCH_MALLOC=glibc)" : "not tunable (not glibc)",
               blas_one ? "OpenBLAS single-threaded" : blas_mode == "default" ? "its own threads (WSI_BENCH_BLAS=default)"
                                                                               : "not OpenBLAS (left as is)");

  for (const bool cl : {false, true})
    benchmark::RegisterBenchmark(cl ? "conv/channels_last" : "conv/contiguous", bm_conv, cl)->UseRealTime();
  if (model) {
    const auto add = [&](const std::string& name, auto&&... args) {
      for (const int64_t b : batches)
        benchmark::RegisterBenchmark((name + "/batch:" + std::to_string(b)).c_str(), args..., b)->UseRealTime();
    };
    add("predict", bm_predict, model.get(), &patches);
    if (model->has_gradcam()) add("gradcam", bm_gradcam, model.get(), &patches);
    for (const int64_t b : batches)
      benchmark::RegisterBenchmark(("slots/batch:" + std::to_string(b)).c_str(), bm_slots, model.get(), &patches, b,
                                   false)
          ->UseRealTime();
    if (model->has_gradcam())
      for (const int64_t b : batches)
        benchmark::RegisterBenchmark(("slots_cam/batch:" + std::to_string(b)).c_str(), bm_slots, model.get(),
                                     &patches, b, true)
            ->UseRealTime();
    add("forward", bm_forward, bare.get());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const wsi::UsageError& e) {
    std::fprintf(stderr, "bench_inference: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {  // not a std::runtime_error; its what() carries a backtrace
    std::fprintf(stderr, "bench_inference: LibTorch: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inference: %s\n", e.what());
    return 1;
  }
}
