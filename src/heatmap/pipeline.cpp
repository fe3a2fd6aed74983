// The heatmap flow graph (see heatmap.hpp): the one place where the stages are wired.
#include "wsi/heatmap.hpp"

#include <openslide.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <tiffio.h>
#include <torch/version.h>
#include <vips/vips.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <fstream>
#include <iomanip>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/pending_file.hpp"
#include "core/text.hpp"
#include "heatmap/chunk_queue.hpp"
#include "slide/slide_handle.hpp"
#include "tissue/params_json.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/heatmap_io.hpp"
#include "wsi/image_io.hpp"
#include "wsi/regions.hpp"
#include "wsi/stitch.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of the calling thread, in seconds. A reader's wall time also counts its waits (for
// the gate below, for a core); this is the work itself.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// One batch of consecutive grid patches travelling through the graph.
struct Job {
  int64_t seq = 0;
  size_t first = 0, count = 0;  // grid.patches[first, first + count)
  std::vector<uint8_t> pixels;  // count patches, side*side*3 each (side = the read geometry's patch_size)
  std::vector<uint8_t> ok;      // 0 = the region failed to decode
  std::vector<float> prob;      // count
  std::vector<float> cams;      // count * side*side (Grad-CAM only)
  double read_seconds = 0, read_cpu_seconds = 0, infer_seconds = 0;
};
using JobPtr = std::shared_ptr<Job>;

// Holds the stitcher back while a CPU model runs a batch (see run_heatmap): it works while
// inference reads or waits, and competes as an equal with other processes, so a busy machine
// cannot starve it. The stitcher checks before each batch.
// A gate made with `enabled` false never holds anyone back.
class InferenceGate {
 public:
  explicit InferenceGate(bool enabled) : enabled_(enabled) {}
  // Closes the gate for its lifetime: inference holds one while it runs a batch.
  class Hold {
   public:
    explicit Hold(InferenceGate& g) : g_(g) { g_.set_busy(true); }
    ~Hold() { g_.set_busy(false); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    InferenceGate& g_;
  };
  void wait_while_busy() {
    if (!enabled_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    open_.wait(lock, [&] { return !busy_; });
  }

 private:
  void set_busy(bool busy) {
    if (!enabled_) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = busy;
    }
    if (!busy) open_.notify_all();
  }
  const bool enabled_;
  std::mutex mutex_;
  std::condition_variable open_;
  bool busy_ = false;
};

// Threads of our own behind the graph's async_nodes (oneTBB's pattern for work owned by outside
// threads): a node's body submit()s a job with the stage's work, a worker runs the work on it and
// puts the job to that node's output. Several nodes may share one Workers (on a CPU, reading and
// inference share the caller's thread). One worker runs jobs in submission order. A job whose
// work throws is not passed on; the first exception is kept (error()) and the graph is cancelled.
// With `threads` 0 no thread is started: the caller lends its own with run_here().
class Workers {
 public:
  using Node = tbb::flow::async_node<JobPtr, JobPtr>;
  using Work = std::function<void(Job&)>;
  // `name` (at most 15 bytes) names the threads, as `top -H` and profilers show them.
  Workers(tbb::flow::graph& g, const char* name, int threads) : graph_(g) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this, name] {
        (void)pthread_setname_np(pthread_self(), name);  // best effort
        loop();
      });
  }
  ~Workers() { finish(); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Runs what was submitted and joins the threads; call it before the async_node is destroyed
  // (its gateway is used until then). Idempotent.
  void finish() {
    stop();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
    if (threads_.empty()) loop();  // the caller's turn: what was submitted after run_here returned
  }
  // Tells the workers (and run_here) to return once the queue is empty; does not wait.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
  }
  // The calling thread works as one more worker until stop(); never throws (loop() keeps errors).
  void run_here() { loop(); }
  // An async_node's body: the graph waits for the job (reserve_wait) until a worker has run
  // `work` (which must outlive this Workers) on it.
  void submit(const Work& work, JobPtr job, Node::gateway_type& gateway) {
    gateway.reserve_wait();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({&work, std::move(job), &gateway});
    }
    ready_.notify_one();
  }
  // The first exception a job threw (read it after the graph's wait_for_all), or null.
  std::exception_ptr error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

 private:
  struct Item {
    const Work* work;
    JobPtr job;
    Node::gateway_type* gateway;
  };
  void loop() {
    for (;;) {
      Item item;
      bool skip = false;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
        skip = error_ != nullptr;
      }
      if (!skip && !graph_.is_cancelled()) {
        try {
          (*item.work)(*item.job);
          item.gateway->try_put(item.job);
        } catch (...) {
          {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
          }
          graph_.cancel();
        }
      }
      item.gateway->release_wait();
    }
  }

  tbb::flow::graph& graph_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;  // last: started after the members above exist
};


double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

uint8_t to_u8(float v) { return std::isnan(v) ? 0 : static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); }

// Box-averages `src` (w x h RGB) into `dst` (dw x dh RGB); used for overlay strips and the thumbnail.
void box_resample(const uint8_t* src, int64_t w, int64_t h, uint8_t* dst, int64_t dw, int64_t dh) {
  for (int64_t v = 0; v < dh; ++v) {
    const int64_t y0 = v * h / dh, y1 = std::max(y0 + 1, (v + 1) * h / dh);
    for (int64_t u = 0; u < dw; ++u) {
      const int64_t x0 = u * w / dw, x1 = std::max(x0 + 1, (u + 1) * w / dw);
      uint32_t s[3] = {0, 0, 0};
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x)
          for (int c = 0; c < 3; ++c) s[c] += src[(y * w + x) * 3 + c];
      const auto n = static_cast<uint32_t>((y1 - y0) * (x1 - x0));
      for (int c = 0; c < 3; ++c) dst[(v * dw + u) * 3 + c] = static_cast<uint8_t>((s[c] + n / 2) / n);
    }
  }
}

// "LIBTIFF, Version 4.5.0\nCopyright ..." -> "4.5.0".
std::string libtiff_version() {
  std::string v = TIFFGetVersion();
  v = v.substr(0, v.find('\n'));
  const auto at = v.rfind(' ');
  return at == std::string::npos ? v : v.substr(at + 1);
}

}  // namespace

void HeatmapParams::validate() const {
  const auto fail = [](const std::string& m) { throw UsageError(m); };
  grid.validate();
  if (batch < 1 || batch > 4096) fail("--batch must be in 1..4096");
  if (cam_per_patch < 1 || cam_per_patch > 64) fail("--cam-resolution must be in 1..64 pixels per patch side");
  if (!(overlay_mpp >= 0.25 && overlay_mpp <= 256)) fail("--overlay-mpp must be in 0.25..256 µm per pixel");
  if (!(overlay_alpha >= 0 && overlay_alpha <= 1)) fail("--overlay-alpha must be in 0..1");
  if (!(threshold > 0 && threshold <= 1)) fail("--threshold must be in (0, 1]");
  if (!(froc_threshold >= 0 && froc_threshold <= 1)) fail("--froc-threshold must be in 0..1");
  if (threads < 0) fail("--threads must be >= 0");
}

HeatmapSummary run_heatmap(const fs::path& slide_path, const Model& model, const HeatmapParams& params_in,
                           const fs::path& out_dir, const std::function<void(const HeatmapProgress&)>& progress) {
  HeatmapParams params = params_in;
  const ModelSpec& spec = model.spec();
  params.grid.patch_size = spec.patch_size;
  if (!params.grid.level && !params.grid.target_mpp) params.grid.target_mpp = spec.mpp;
  params.validate();
  if (!fs::is_directory(out_dir)) throw UsageError("output directory " + out_dir.string() + " does not exist");
  const bool cam_on = params.gradcam && model.has_gradcam();
  const int threads = params.threads > 0 ? params.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));

  const auto t_start = Clock::now();
  SlideOptions slide_options;
  slide_options.mpp_override = params.mpp_override;
  detail::SlideHandle handle(slide_path, slide_options);
  const std::shared_ptr<const Slide> first_slide = handle.get();
  const Slide& slide = *first_slide;

  HeatmapSummary summary;
  summary.slide = slide_path.string();
  summary.name = params.name.empty() ? slide_path.stem().string() : params.name;
  if (summary.name.find('/') != std::string::npos || summary.name == "." || summary.name == "..")
    throw UsageError("output name '" + summary.name + "' must be a file name, not a path");
  HeatmapOutputs& out = summary.outputs;
  const fs::path base = out_dir / summary.name;
  out.prob = base.string() + ".prob.tif";
  if (params.float32) out.prob_f32 = base.string() + ".prob.f32.tif";
  if (cam_on) out.cam = base.string() + ".cam.tif";
  out.overlay = base.string() + ".overlay.tif";
  out.thumb = base.string() + ".thumb.png";
  out.patches_csv = base.string() + ".patches.csv";
  out.froc_csv = base.string() + ".froc.csv";
  out.regions = base.string() + ".regions.geojson";
  out.summary = base.string() + ".summary.json";

  // ---- Survey: tissue mask and grid ----
  const auto t_survey = Clock::now();
  const PatchGeometry geo = resolve_geometry(slide, params.grid);
  std::optional<TissueMask> tissue;
  if (params.grid.min_tissue > 0) tissue = compute_tissue_mask(slide, params.tissue);
  const PatchGrid grid = make_grid(slide.bounds(), geo, params.grid, tissue ? &*tissue : nullptr);
  const double survey_seconds = seconds_since(t_survey);
  summary.grid_patches = grid.cols * grid.rows;
  summary.tissue_patches = static_cast<int64_t>(grid.patches.size());
  if (grid.patches.empty()) summary.note = "no tissue found: the outputs are valid but empty (check the slide, or lower --min-tissue)";

  const int64_t W0 = slide.levels()[0].width, H0 = slide.levels()[0].height;
  const double mpp0 = slide.mpp().known() ? slide.mpp().x : 0.0;
  const int P = geo.patch_size;
  // What the readers deliver: patches at the network's input size when the model area-resizes
  // down to it anyway (the same pixels up to rounding, read from a coarser level: for the demo
  // model 4x fewer to decode), else at patch_size.
  const bool feed_input = spec.resize == ResizeMode::area && spec.input_size < P;
  const PatchGeometry read_geo =
      feed_input ? geometry_for_size(slide.levels(), geo, spec.input_size, params.grid.mpp_tolerance) : geo;
  const int side = read_geo.patch_size;
  if (const std::string hint = mpp_tolerance_hint(slide.levels(), read_geo); !hint.empty())
    detail::append_clause(summary.note, hint);
  const size_t patch_bytes = static_cast<size_t>(side) * static_cast<size_t>(side) * 3;
  const size_t cam_values = static_cast<size_t>(side) * static_cast<size_t>(side);

  // ---- Description carried by every TIFF ----
  json desc;
  desc["software"] = {{"wsi_heatmap", WSI_VERSION}, {"libtorch", TORCH_VERSION}, {"openslide", openslide_get_version()},
                      {"libvips", vips_version_string()}, {"libtiff", libtiff_version()}};
  desc["slide"] = {{"name", summary.name}, {"width", W0}, {"height", H0}, {"mpp", mpp0}};
  desc["model"] = {{"name", spec.name}, {"path", model.path().string()}, {"sha1", sha1_file(model.path())}};
  desc["parameters"] = {{"patch_size", P},
                        {"target_mpp", geo.target_mpp},
                        {"mpp_tolerance", params.grid.mpp_tolerance},
                        {"level", geo.level},
                        {"read_level", read_geo.level},
                        {"read_size", read_geo.read_size},
                        {"read_side", side},
                        {"stride", params.grid.stride},
                        {"stride_level0", geo.stride_level0},
                        {"patch_size_level0", geo.size_level0},
                        {"min_tissue", params.grid.min_tissue},
                        {"edge", params.grid.edge == EdgePolicy::inside ? "inside" : "pad"},
                        {"batch", params.batch},
                        {"gradcam", cam_on},
                        {"cam_per_patch", params.cam_per_patch},
                        {"threshold", params.threshold},
                        {"tissue", detail::tissue_params_json(params.tissue)}};
  const auto description = [&](const std::string& what, double pixel) {
    json d = desc;
    d["image"] = what;
    d["level0_pixels_per_pixel"] = pixel;
    return "wsi-heatmap " + what + " " + d.dump();
  };
  const auto tiff_options = [&](int64_t w, int64_t h, int channels, bool f32, double pixel, const std::string& what,
                                bool jpeg) {
    PyramidTiffOptions o;
    o.width = w;
    o.height = h;
    o.channels = channels;
    o.sample = f32 ? PyramidTiffOptions::SampleType::f32 : PyramidTiffOptions::SampleType::u8;
    o.mpp_x = o.mpp_y = (mpp0 > 0 ? mpp0 : 1.0) * pixel;  // unknown mpp: level-0 pixels as "µm"
    o.description = description(what, pixel);
    o.compression = jpeg ? PyramidTiffOptions::Compression::jpeg : PyramidTiffOptions::Compression::deflate;
    o.shrink = PyramidTiffOptions::Shrink::mean;
    return o;
  };

  // ---- Streaming outputs opened before the graph ----
  detail::PendingFile patches_file(out.patches_csv);
  std::ofstream patches_csv(patches_file.tmp(), std::ios::binary);
  if (!patches_csv) throw WriteError(out.patches_csv, "cannot create the file (is the directory writable?)");
  patches_csv << "x,y,width,height,probability\n";
  const auto size0 = static_cast<int64_t>(std::llround(geo.size_level0));

  const RasterGeometry cam_geo = raster_for(W0, H0, geo.size_level0 / params.cam_per_patch);
  std::unique_ptr<PyramidTiffWriter> cam_writer;
  std::unique_ptr<CamStitcher> stitcher;
  std::vector<uint8_t> cam_row(static_cast<size_t>(cam_geo.width));
  if (cam_on) {
    cam_writer = std::make_unique<PyramidTiffWriter>(
        out.cam, tiff_options(cam_geo.width, cam_geo.height, 1, false, cam_geo.pixel, "gradcam", false));
    stitcher = std::make_unique<CamStitcher>(cam_geo, geo.size_level0, side, [&](const float* row, int64_t) {
      for (size_t u = 0; u < cam_row.size(); ++u) cam_row[u] = to_u8(row[u]);
      cam_writer->write_rows(cam_row.data(), 1);
    });
  }

  // ---- Warm-up: the model's first batches at this shape run before the graph's clock starts
  // (once per Model and shape: later slides of a batch run skip it); timed on its own ----
  const auto t_warm = Clock::now();
  if (!grid.patches.empty()) {
    const int64_t warm = std::min<int64_t>(params.batch, static_cast<int64_t>(grid.patches.size()));
    try {
      model.warm_up(warm, side, cam_on);
    } catch (const std::exception& e) {
      throw Error(slide_path.string() + ": the model failed on a warm-up batch of " + std::to_string(warm) +
                  " grey patches (the run's batch size; try a smaller --batch): " + e.what());
    }
  }
  const double warm_up_seconds = seconds_since(t_warm);

  // ---- The flow graph ----
  const size_t n = grid.patches.size();
  std::vector<float> prob(n, kNaN);
  std::atomic<int64_t> failed{0};
  double read_seconds = 0, read_cpu_seconds = 0, infer_seconds = 0, stitch_seconds = 0;
  int64_t done = 0;
  const auto t_graph = Clock::now();
  // Inference runs on the thread that called run_heatmap, while a helper thread drives the
  // graph. LibTorch's OpenMP team belongs to the thread that starts a parallel region, and
  // libgomp keeps each such thread's workers alive and counts them all: once they outnumber the
  // CPUs it spins 100 iterations instead of ~300k before sleeping, so its workers sleep and are
  // woken around every operation. The caller has already run the model (the Model constructor's
  // contract check), so inference on any other thread would make a second team: on 2 cores that
  // cost a ResNet50 about a quarter of its rate, with thousands of futex sleeps per minute where
  // one team has tens (`WSI_BENCH_CALLER=thread bench_inference` shows it). A serial
  // function_node would be worse still: it hops between TBB threads, a new team at each hop.
  // On a CPU the model keeps every core busy while a batch runs, and a thread that takes a core
  // from one of the team's threads stalls them all (free-running readers using a third of a core
  // cost inference two thirds of one). So on a CPU the reader node's jobs run on that same
  // thread, between batches, each job's patches split over the team (Model::on_each_thread): no
  // reader thread competes with the team's spinning workers or wakes them, and reading takes all
  // cores while inference waits for it. (Reader threads of our own waiting at a gate while a
  // batch ran left the inference node idle for 6-8 % of the graph, where the reading itself was
  // ~4.5 %: part of a core went to the team's spinning worker, and tile decodes still under way
  // when a batch started stalled it; idle scheduling priority starved the readers on a busy
  // machine.) The stitcher waits at InferenceGate while a CPU batch runs. On a GPU, reader
  // threads of our own read while the device computes.
  const bool on_cpu = model.device() == Device::cpu;
  InferenceGate gate(on_cpu);
  {
    tbb::flow::graph g;
    Workers inference(g, "wsi-infer", 0);  // run_here() below
    std::optional<Workers> reader_threads;
    if (!on_cpu) reader_threads.emplace(g, "wsi-read", std::max(1, threads));
    Workers& readers = on_cpu ? inference : *reader_threads;
    size_t next = 0;
    int64_t seq = 0;
    const auto batch = static_cast<size_t>(params.batch);
    tbb::flow::input_node<JobPtr> source(g, [&](tbb::flow_control& fc) -> JobPtr {
      if (next >= n || (params.cancel && params.cancel->load())) {
        fc.stop();
        return nullptr;
      }
      auto job = std::make_shared<Job>();
      job->seq = seq++;
      job->first = next;
      job->count = std::min(batch, n - next);
      next += job->count;
      return job;
    });
    tbb::flow::limiter_node<JobPtr> limiter(
        g, static_cast<size_t>(params.in_flight > 0 ? params.in_flight : 2 + threads));
    // Reads the patches `queue` hands out to `thread`; returns the calling thread's CPU seconds.
    const auto read_patches = [&](Job& job, detail::ChunkQueue& queue, int thread) {
      const double cpu0 = thread_cpu_seconds();
      std::vector<uint8_t> raw(read_geo.read_size == side ? 0 : static_cast<size_t>(read_geo.read_size * read_geo.read_size * 3));
      while (const std::optional<size_t> k = queue.next(thread)) {
        const GridPatch& gp = grid.patches[job.first + *k];
        const auto s = handle.get();
        uint8_t* dst = job.pixels.data() + *k * patch_bytes;
        try {
          if (raw.empty()) {
            s->read_region(patch_region(gp, read_geo), dst);
          } else {
            s->read_region(patch_region(gp, read_geo), raw.data());
            resample_area(raw.data(), read_geo.read_size, dst, side);
          }
        } catch (const RegionReadError&) {
          handle.reopen_after_failure(s);
          job.ok[*k] = 0;
          std::fill(dst, dst + patch_bytes, uint8_t{255});
          failed.fetch_add(1, std::memory_order_relaxed);
        }
      }
      return thread_cpu_seconds() - cpu0;
    };
    const Workers::Work read = [&](Job& job) {
      const auto t0 = Clock::now();
      job.pixels.resize(job.count * patch_bytes);
      job.ok.assign(job.count, 1);
      if (on_cpu) {
        std::unique_ptr<detail::ChunkQueue> queue;
        std::mutex m;
        double cpu = 0;
        model.on_each_thread([&](int t, int team) {
          {
            const std::lock_guard<std::mutex> lock(m);
            if (!queue) queue = std::make_unique<detail::ChunkQueue>(job.count, team);
          }
          const double c = read_patches(job, *queue, t);
          const std::lock_guard<std::mutex> lock(m);
          cpu += c;
        });
        job.read_cpu_seconds = cpu;
      } else {
        detail::ChunkQueue queue(job.count, 1);  // one reader thread per job
        job.read_cpu_seconds = read_patches(job, queue, 0);
      }
      job.read_seconds = seconds_since(t0);
    };
    Workers::Node reader(g, tbb::flow::unlimited, [&](JobPtr job, Workers::Node::gateway_type& gateway) {
      readers.submit(read, std::move(job), gateway);
    });
    tbb::flow::sequencer_node<JobPtr> order(g, [](const JobPtr& job) { return static_cast<size_t>(job->seq); });
    const Workers::Work infer_work = [&](Job& job) {
      const auto t0 = Clock::now();
      const auto count = static_cast<int64_t>(job.count);
      const InferenceGate::Hold hold(gate);
      try {
        if (cam_on) {
          GradcamBatch gb = gradcam(model, job.pixels.data(), count, side);
          job.prob = std::move(gb.probabilities);
          job.cams = std::move(gb.cams);
        } else {
          job.prob = model.predict(job.pixels.data(), count, side);
        }
      } catch (const std::exception& e) {
        // The model names itself; add the slide and where on it.
        const GridPatch& a = grid.patches[job.first];
        const GridPatch& b = grid.patches[job.first + job.count - 1];
        std::ostringstream m;
        m << slide_path.string() << ": inference failed on the batch of " << job.count << " patches from level-0 ("
          << a.x << ", " << a.y << ") to (" << b.x + size0 << ", " << b.y + size0 << "): " << e.what();
        throw Error(m.str());
      }
      job.infer_seconds = seconds_since(t0);
    };
    Workers::Node infer(g, tbb::flow::serial, [&](JobPtr job, Workers::Node::gateway_type& gateway) {
      inference.submit(infer_work, std::move(job), gateway);
    });
    // Declared after the nodes, so destroyed before them, also when wait_for_all throws: the
    // workers finish with the nodes' gateways before the nodes go.
    const struct Finish {
      std::optional<Workers>& readers;
      Workers& inference;
      ~Finish() {
        if (readers) readers->finish();
        inference.finish();
      }
    } finish_workers{reader_threads, inference};
    tbb::flow::function_node<JobPtr, tbb::flow::continue_msg> stitch(g, tbb::flow::serial, [&](JobPtr job) {
      // Also waits for a CPU batch to end: stitching a batch (and, at the end of a row of
      // tiles, compressing it) on a core the model's threads use stalls them both.
      gate.wait_while_busy();
      const auto t0 = Clock::now();
      for (size_t k = 0; k < job->count; ++k) {
        const GridPatch& gp = grid.patches[job->first + k];
        if (!job->ok[k]) continue;
        const float p = job->prob[k];
        prob[job->first + k] = p;
        patches_csv << gp.x << ',' << gp.y << ',' << size0 << ',' << size0 << ',' << std::setprecision(6) << p << '\n';
        if (stitcher) stitcher->add(gp.x, gp.y, gp.row, job->cams.data() + k * cam_values);
      }
      read_seconds += job->read_seconds;
      read_cpu_seconds += job->read_cpu_seconds;
      infer_seconds += job->infer_seconds;
      stitch_seconds += seconds_since(t0);
      done += static_cast<int64_t>(job->count);
      if (progress) progress({done, static_cast<int64_t>(n)});
      return tbb::flow::continue_msg();
    });
    tbb::flow::make_edge(source, limiter);
    tbb::flow::make_edge(limiter, reader);
    tbb::flow::make_edge(reader, order);
    tbb::flow::make_edge(order, infer);
    tbb::flow::make_edge(infer, stitch);
    tbb::flow::make_edge(stitch, limiter.decrementer());
    std::exception_ptr graph_error;
    {
      // Joined before the nodes go, also if anything below throws.
      struct Driver {
        std::thread t;
        ~Driver() {
          if (t.joinable()) t.join();
        }
      } driver{std::thread([&] {
        (void)pthread_setname_np(pthread_self(), "wsi-graph");  // best effort
        try {
          source.activate();
          g.wait_for_all();  // rethrows the first exception of any node (the graph is cancelled)
        } catch (...) {
          graph_error = std::current_exception();
        }
        inference.stop();  // every job was released (wait_for_all waited for them): run_here returns
      })};
      inference.run_here();
    }
    if (graph_error) std::rethrow_exception(graph_error);
    for (const Workers* w : {&readers, &inference})
      if (const std::exception_ptr e = w->error()) std::rethrow_exception(e);
  }
  const double graph_seconds = seconds_since(t_graph);
  if (params.cancel && params.cancel->load())
    throw Error(slide_path.string() + ": interrupted; no output was renamed into place");

  // ---- Finish the outputs ----
  const auto t_write = Clock::now();
  if (stitcher) {
    stitcher->finish();
    cam_writer->finish();
  }
  patches_csv.close();
  if (!patches_csv) throw WriteError(out.patches_csv, "write failed (disk full?)");
  patches_file.commit();

  std::vector<int64_t> xs, ys;
  std::vector<float> ps;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(prob[i])) continue;
    xs.push_back(grid.patches[i].x);
    ys.push_back(grid.patches[i].y);
    ps.push_back(prob[i]);
    sum += prob[i];
    summary.slide_score = std::max(summary.slide_score, static_cast<double>(prob[i]));
    if (prob[i] >= params.threshold) ++summary.tumour_patches;
  }
  summary.processed = static_cast<int64_t>(ps.size());
  summary.failed = failed.load();
  summary.mean_probability = ps.empty() ? 0.0 : sum / static_cast<double>(ps.size());
  const double cell_um = mpp0 * geo.stride_level0;
  summary.tumour_area_mm2 = static_cast<double>(summary.tumour_patches) * cell_um * cell_um / 1e6;

  // Probability rasters cover the slide from its origin. One pixel per stride cell, or a
  // fraction 1/k of it when the patches overlap so that the cells' borders (offset by half the
  // overlap) fall on pixel borders: no half-cell shift (e.g. patch 96, stride 48: k = 2).
  int k = 1;
  for (int c = 1; c <= 16; ++c) {
    const double r = c * static_cast<double>(P - params.grid.stride) / (2.0 * params.grid.stride);
    if (std::abs(r - std::round(r)) < 1e-9) {
      k = c;
      break;
    }
  }
  const RasterGeometry prob_geo = raster_for(W0, H0, geo.stride_level0 / k);
  const std::vector<float> raster = probability_raster(prob_geo, xs, ys, ps, geo.size_level0, geo.stride_level0);
  {
    std::vector<uint8_t> u8(raster.size());
    for (size_t i = 0; i < raster.size(); ++i) u8[i] = to_u8(raster[i]);
    PyramidTiffWriter w(out.prob, tiff_options(prob_geo.width, prob_geo.height, 1, false, prob_geo.pixel, "probability", false));
    w.write_rows(u8.data(), prob_geo.height);
    w.finish();
  }
  if (params.float32) {
    PyramidTiffWriter w(out.prob_f32, tiff_options(prob_geo.width, prob_geo.height, 1, true, prob_geo.pixel, "probability", false));
    w.write_rows(raster.data(), prob_geo.height);
    w.finish();
  }

  // Overlay: the slide at overlay_mpp with the probability colour map blended in, streamed in
  // strips; the thumbnail is accumulated from the same strips.
  {
    const double pixel = mpp0 > 0 ? params.overlay_mpp / mpp0 : 32.0;
    const RasterGeometry og = raster_for(W0, H0, std::max(1.0, pixel));
    int level = 0;
    for (int l = 0; l < slide.level_count(); ++l)
      if (slide.level(l).downsample <= og.pixel * 1.0001) level = l;
    const double ds = slide.level(level).downsample;
    PyramidTiffWriter w(out.overlay, tiff_options(og.width, og.height, 3, false, og.pixel, "overlay", true));
    const int64_t longest = std::max(og.width, og.height);
    const int64_t tw = std::max<int64_t>(1, og.width * std::min<int64_t>(1024, longest) / longest);
    const int64_t th = std::max<int64_t>(1, og.height * std::min<int64_t>(1024, longest) / longest);
    RgbImage thumb(tw, th);
    std::vector<uint64_t> tsum(static_cast<size_t>(tw * th * 3), 0), tcount(static_cast<size_t>(tw * th), 0);
    // Strips of at most ~512 rows of the level read (bounded memory even without a pyramid).
    const int64_t strip = std::clamp<int64_t>(static_cast<int64_t>(512.0 * ds / og.pixel), 1, 64);
    std::vector<uint8_t> base_rgb, blended;
    std::vector<float> values;
    for (int64_t v0 = 0; v0 < og.height; v0 += strip) {
      const int64_t sh = std::min(strip, og.height - v0);
      // Level pixels covering overlay rows [v0, v0 + sh), then box-resampled to the overlay grid.
      const auto y0 = static_cast<int64_t>(std::floor(static_cast<double>(v0) * og.pixel));
      const auto y1 = std::min(H0, static_cast<int64_t>(std::ceil(static_cast<double>(v0 + sh) * og.pixel)));
      Region r;
      r.level = level;
      r.x = 0;
      r.y = y0;
      r.w = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(W0) / ds)));
      r.h = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(y1 - y0) / ds)));
      std::vector<uint8_t> level_rgb(static_cast<size_t>(r.w * r.h * 3), 255);
      try {
        handle.get()->read_region(r, level_rgb.data());
      } catch (const RegionReadError&) {
        // A strip that cannot be decoded stays white in the overlay; the heatmap itself is unaffected.
      }
      base_rgb.resize(static_cast<size_t>(og.width * sh * 3));
      box_resample(level_rgb.data(), r.w, r.h, base_rgb.data(), og.width, sh);
      values.resize(static_cast<size_t>(og.width * sh));
      for (int64_t v = 0; v < sh; ++v) {
        const double cy = (static_cast<double>(v0 + v) + 0.5) * og.pixel;
        const auto pv = std::min(prob_geo.height - 1, static_cast<int64_t>(cy / prob_geo.pixel));
        for (int64_t u = 0; u < og.width; ++u) {
          const double cx = (static_cast<double>(u) + 0.5) * og.pixel;
          const auto pu = std::min(prob_geo.width - 1, static_cast<int64_t>(cx / prob_geo.pixel));
          values[static_cast<size_t>(v * og.width + u)] = raster[static_cast<size_t>(pv * prob_geo.width + pu)];
        }
      }
      blended.resize(base_rgb.size());
      blend_overlay(base_rgb.data(), values.data(), og.width * sh, params.overlay_alpha, blended.data(), params.overlay_min);
      w.write_rows(blended.data(), sh);
      for (int64_t v = 0; v < sh; ++v) {
        const int64_t tv = (v0 + v) * th / og.height;
        for (int64_t u = 0; u < og.width; ++u) {
          const int64_t tu = u * tw / og.width;
          const size_t t = static_cast<size_t>(tv * tw + tu);
          for (int c = 0; c < 3; ++c) tsum[t * 3 + static_cast<size_t>(c)] += blended[static_cast<size_t>((v * og.width + u) * 3 + c)];
          ++tcount[t];
        }
      }
    }
    w.finish();
    for (size_t t = 0; t < tcount.size(); ++t)
      for (size_t c = 0; c < 3; ++c)
        thumb.pixels[t * 3 + c] = tcount[t] ? static_cast<uint8_t>((tsum[t * 3 + c] + tcount[t] / 2) / tcount[t]) : 255;
    write_png(thumb, out.thumb);
  }

  // Regions and FROC detections from the probability grid (one value per grid cell).
  ProbabilityGrid pg;
  pg.cols = grid.cols;
  pg.rows = grid.rows;
  pg.step = geo.stride_level0;
  pg.x0 = static_cast<double>(grid.origin_x) + (geo.size_level0 - geo.stride_level0) / 2;
  pg.y0 = static_cast<double>(grid.origin_y) + (geo.size_level0 - geo.stride_level0) / 2;
  pg.values.assign(static_cast<size_t>(grid.cols * grid.rows), kNaN);
  for (size_t i = 0; i < n; ++i)
    pg.values[static_cast<size_t>(grid.patches[i].row) * static_cast<size_t>(grid.cols) + static_cast<size_t>(grid.patches[i].col)] = prob[i];
  RegionParams rp;
  rp.threshold = params.threshold;
  rp.mpp = mpp0;
  detail::write_text_file(out.regions, regions_geojson(pg, rp));
  MaximaParams mp;
  mp.threshold = params.froc_threshold;
  mp.mpp = mpp0;
  if (mpp0 <= 0) mp.nms_um = 0;
  detail::write_text_file(out.froc_csv, froc_csv(local_maxima(pg, mp)));
  const double write_seconds = seconds_since(t_write);

  // ---- Summary (written last: its presence means the slide is complete) ----
  json s;
  s["slide"] = {{"path", summary.slide}, {"name", summary.name}, {"width", W0}, {"height", H0}, {"mpp", mpp0},
                {"vendor", slide.vendor()}};
  s["model"] = desc["model"];
  s["model"]["gradcam"] = cam_on;
  if (params.gradcam && !cam_on) s["model"]["gradcam_unavailable"] = model.gradcam_unavailable_reason();
  s["parameters"] = desc["parameters"];
  s["patches"] = {{"grid", summary.grid_patches}, {"tissue", summary.tissue_patches}, {"processed", summary.processed},
                  {"failed", summary.failed}, {"tumour", summary.tumour_patches}};
  s["slide_score"] = summary.slide_score;
  s["mean_probability"] = summary.mean_probability;
  s["tumour_area_mm2"] = summary.tumour_area_mm2;
  s["timings_s"] = {{"survey", survey_seconds}, {"warm_up", warm_up_seconds}, {"graph", graph_seconds},
                    {"read_total", read_seconds}, {"read_cpu", read_cpu_seconds}, {"inference_total", infer_seconds},
                    {"stitch_total", stitch_seconds}, {"write", write_seconds}, {"total", seconds_since(t_start)}};
  s["patches_per_second"] = graph_seconds > 0 ? static_cast<double>(n) / graph_seconds : 0.0;
  s["peak_rss_mib"] = peak_rss_mib();
  s["software"] = desc["software"];
  json outputs = json::object();
  for (const auto& [key, path] : {std::pair{"prob", out.prob}, {"prob_f32", out.prob_f32}, {"cam", out.cam},
                                  {"overlay", out.overlay}, {"thumb", out.thumb}, {"patches_csv", out.patches_csv},
                                  {"froc_csv", out.froc_csv}, {"regions", out.regions}})
    if (!path.empty()) outputs[key] = path.filename().string();
  s["outputs"] = outputs;
  if (!summary.note.empty()) s["note"] = summary.note;
  if (summary.failed > 0)
    s["warning"] = std::to_string(summary.failed) + " patch region(s) failed to decode and are missing from the outputs";
  summary.json = s.dump(2) + "\n";
  detail::write_text_file(out.summary, summary.json);
  return summary;
}

}  // namespace wsi
