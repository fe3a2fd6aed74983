// The heatmap's flow graph (see graph.hpp): the one place where its stages are wired.
#include "heatmap/graph.hpp"

#include <pthread.h>
#include <time.h>
#include <tbb/blocked_range.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "heatmap/chunk_queue.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of the calling thread, in seconds. A reader's wall time also counts its waits (for a
// core, for the gate); this is the work itself.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// A batch is read in strips of at least this many consecutive patches: neighbours share tiles,
// and a thread that reads a strip decodes each of its tiles once.
constexpr size_t kMinStrip = 8;

// Batches in flight beside an asynchronous classifier: one waited for by the stitcher, one or two
// queued on the device, one or two being read by all threads at once (each in strips). More would
// only spread the readers over more tile rows than the slide's tile cache holds.
constexpr int kAsynchronousInFlight = 4;

}  // namespace

struct PatchGraph::Job {
  int64_t seq = 0;
  size_t first = 0, count = 0;  // patches_[first, first + count)
  std::unique_ptr<BatchSlot> slot;
  std::vector<uint8_t> ok;  // 0 = the region failed to decode
  double read_seconds = 0, infer_seconds = 0;
};

// The graph's jobs, made once with their slots (pinned host and device memory on a GPU) and
// reused: the limiter keeps at most in_flight of them in the graph, and the source node holds
// one more that the limiter has not taken yet.
class PatchGraph::Pool {
 public:
  Pool(const Classifier& c, size_t jobs, int64_t capacity, int side, bool gradcam) {
    for (size_t i = 0; i < jobs; ++i) {
      auto job = std::make_unique<Job>();
      job->slot = c.make_slot(capacity, side, gradcam);
      job->ok.reserve(static_cast<size_t>(capacity));
      free_.push_back(job.get());
      all_.push_back(std::move(job));
    }
  }
  Job* take() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) throw std::logic_error("PatchGraph: no free job (the limiter let more through than the pool holds)");
    Job* j = free_.back();
    free_.pop_back();
    return j;
  }
  void give_back(Job* j) {
    const std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(j);
  }
  BatchTimings timings() const {
    BatchTimings t;
    for (const auto& j : all_) t += j->slot->timings();
    return t;
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Job>> all_;
  std::vector<Job*> free_;
};

// Holds the stitcher back while a synchronous (CPU) classifier computes a batch: stitching (and
// compressing a finished row of TIFF tiles) on a core the model's threads use stalls them all.
// It works while inference reads or waits, and competes as an equal with other processes, so a
// busy machine cannot starve it. A gate made with `enabled` false never holds anyone back.
class PatchGraph::Gate {
 public:
  explicit Gate(bool enabled) : enabled_(enabled) {}
  // Closes the gate for its lifetime: inference holds one while it computes a batch.
  class Hold {
   public:
    explicit Hold(Gate& g) : g_(g) { g_.set_busy(true); }
    ~Hold() { g_.set_busy(false); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    Gate& g_;
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
      const std::lock_guard<std::mutex> lock(mutex_);
      busy_ = busy;
    }
    if (!busy) open_.notify_all();
  }
  const bool enabled_;
  std::mutex mutex_;
  std::condition_variable open_;
  bool busy_ = false;
};

namespace {

// Threads behind the graph's async_nodes (oneTBB's pattern for work owned by outside threads): a
// node's body submit()s a job with the stage's work, a worker runs the work and puts the job to
// that node's output. With `threads` 0 no thread is started: the caller lends its own with
// run_here(). Jobs run in submission order. A job whose work throws is not passed on; the first
// exception is kept (error()) and the graph is cancelled.
template <typename Message>
class Workers {
 public:
  using Node = tbb::flow::async_node<Message, Message>;
  using Work = std::function<void(Message)>;
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
      const std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
  }
  // The calling thread works as one more worker until stop(); never throws (loop() keeps errors).
  void run_here() { loop(); }
  // An async_node's body: the graph waits for the message (reserve_wait) until a worker has run
  // `work` (which must outlive this Workers) on it.
  void submit(const Work& work, Message m, typename Node::gateway_type& gateway) {
    gateway.reserve_wait();
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({&work, m, &gateway});
    }
    ready_.notify_one();
  }
  // The first exception a job threw (read it after the graph's wait_for_all), or null.
  std::exception_ptr error() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

 private:
  struct Item {
    const Work* work = nullptr;
    Message message{};
    typename Node::gateway_type* gateway = nullptr;
  };
  void loop() {
    for (;;) {
      Item item;
      bool skip = false;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = queue_.front();
        queue_.pop_front();
        skip = error_ != nullptr;
      }
      if (!skip && !graph_.is_cancelled()) {
        try {
          (*item.work)(item.message);
          item.gateway->try_put(item.message);
        } catch (...) {
          {
            const std::lock_guard<std::mutex> lock(mutex_);
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

}  // namespace

PatchGraph::PatchGraph(const PatchSource& source, const std::vector<GridPatch>& patches, const PatchGeometry& geometry,
                       const Classifier& classifier, BatchSink& sink, const PatchGraphParams& params)
    : source_(source),
      patches_(patches),
      geometry_(geometry),
      classifier_(classifier),
      sink_(sink),
      params_(params),
      threads_(std::max(1, params.threads)),
      in_flight_(params.in_flight > 0      ? params.in_flight
                 : classifier.asynchronous() ? kAsynchronousInFlight
                                             : 2 + std::max(1, params.threads)),
      patch_bytes_(static_cast<size_t>(geometry.patch_size) * static_cast<size_t>(geometry.patch_size) * 3),
      gate_(std::make_unique<Gate>(!classifier.asynchronous())) {
  if (params.batch < 1) throw std::invalid_argument("PatchGraph: batch must be >= 1");
}

PatchGraph::~PatchGraph() = default;

PatchGraph::Job* PatchGraph::source(bool& stop) {
  if (next_ >= patches_.size() || (params_.cancel && params_.cancel->load())) {
    stop = true;
    return nullptr;
  }
  Job* job = pool_->take();
  job->seq = seq_++;
  job->first = next_;
  job->count = std::min(static_cast<size_t>(params_.batch), patches_.size() - next_);
  next_ += job->count;
  return job;
}

void PatchGraph::read_one(Job& job, size_t k, std::vector<uint8_t>& scratch) {
  uint8_t* dst = job.slot->pixels() + k * patch_bytes_;
  try {
    read_patch(source_, patches_[job.first + k], geometry_, dst, scratch);
  } catch (const RegionReadError& e) {
    job.ok[k] = 0;
    std::fill(dst, dst + patch_bytes_, uint8_t{255});
    if (failed_.fetch_add(1, std::memory_order_relaxed) == 0) {
      const std::lock_guard<std::mutex> lock(failure_mutex_);
      first_failure_ = e.what();
    }
  }
}

void PatchGraph::read_on_classifier_threads(Job& job) {
  // The team's size is known inside the call only; the first thread in makes the queue.
  std::unique_ptr<ChunkQueue> queue;
  std::mutex mutex;
  classifier_.on_each_thread([&](int t, int team) {
    {
      const std::lock_guard<std::mutex> lock(mutex);
      if (!queue) queue = std::make_unique<ChunkQueue>(job.count, team);
    }
    thread_local std::vector<uint8_t> scratch;
    const double cpu0 = thread_cpu_seconds();
    while (const std::optional<size_t> k = queue->next(t)) read_one(job, *k, scratch);
    read_cpu_ns_.fetch_add(static_cast<int64_t>(1e9 * (thread_cpu_seconds() - cpu0)), std::memory_order_relaxed);
  });
}

void PatchGraph::read_in_strips(Job& job) {
  const size_t strips = std::clamp<size_t>(job.count / kMinStrip, 1, static_cast<size_t>(threads_));
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, strips, 1),
      [&](const tbb::blocked_range<size_t>& r) {
        thread_local std::vector<uint8_t> scratch;
        const double cpu0 = thread_cpu_seconds();
        for (size_t s = r.begin(); s < r.end(); ++s)
          for (size_t k = job.count * s / strips; k < job.count * (s + 1) / strips; ++k) read_one(job, k, scratch);
        read_cpu_ns_.fetch_add(static_cast<int64_t>(1e9 * (thread_cpu_seconds() - cpu0)), std::memory_order_relaxed);
      },
      tbb::simple_partitioner());
}

void PatchGraph::read(Job& job) {
  const auto t0 = Clock::now();
  job.ok.assign(job.count, 1);
  if (classifier_.asynchronous())
    read_in_strips(job);
  else
    read_on_classifier_threads(job);
  job.read_seconds = seconds_since(t0);
}

void PatchGraph::rethrow_classifier_error(const Job& job, const std::exception& e) const {
  // The classifier names itself; add the slide and where on it.
  const GridPatch& a = patches_[job.first];
  const GridPatch& b = patches_[job.first + job.count - 1];
  const auto size0 = static_cast<int64_t>(std::llround(geometry_.size_level0));
  std::ostringstream m;
  m << params_.subject << ": inference failed on the batch of " << job.count << " patches from level-0 (" << a.x
    << ", " << a.y << ") to (" << b.x + size0 << ", " << b.y + size0 << "): " << e.what();
  throw Error(m.str());
}

void PatchGraph::infer(Job& job) {
  const auto t0 = Clock::now();
  const Gate::Hold hold(*gate_);
  try {
    job.slot->start(static_cast<int64_t>(job.count));
  } catch (const std::exception& e) {
    rethrow_classifier_error(job, e);
  }
  job.infer_seconds = seconds_since(t0);
}

void PatchGraph::stitch(Job& job) {
  gate_->wait_while_busy();
  const auto t0 = Clock::now();
  try {
    job.slot->finish();
  } catch (const std::exception& e) {
    rethrow_classifier_error(job, e);
  }
  const auto t1 = Clock::now();
  sink_.add(job.first, job.count, job.ok.data(), job.slot->probabilities(),
            params_.gradcam ? job.slot->cams() : nullptr);
  stats_.finish_seconds += std::chrono::duration<double>(t1 - t0).count();
  stats_.sink_seconds += seconds_since(t1);
  stats_.read_seconds += job.read_seconds;
  stats_.infer_seconds += job.infer_seconds;
  stats_.patches += static_cast<int64_t>(job.count);
  ++stats_.batches;
  if (params_.progress) params_.progress(stats_.patches, static_cast<int64_t>(patches_.size()));
  pool_->give_back(&job);
}

PatchGraphStats PatchGraph::run() {
  stats_ = {};
  next_ = 0;
  seq_ = 0;
  failed_ = 0;
  first_failure_.clear();
  read_cpu_ns_ = 0;
  if (patches_.empty()) return stats_;
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads_));
  const auto capacity = static_cast<int64_t>(std::min(static_cast<size_t>(params_.batch), patches_.size()));
  if (!pool_)
    pool_ = std::make_unique<Pool>(classifier_, static_cast<size_t>(in_flight_) + 1, capacity, geometry_.patch_size,
                                   params_.gradcam);

  // Inference runs on the thread that called run(), while a helper thread drives the graph.
  // LibTorch's OpenMP team belongs to the thread that starts a parallel region, and libgomp keeps
  // each such thread's workers alive and counts them all: once they outnumber the CPUs it spins
  // 100 iterations instead of ~300k before sleeping, so its workers sleep and are woken around
  // every operation. The caller has already run the model (the Model constructor's contract
  // check), so inference on any other thread would make a second team: on 2 cores that cost a
  // ResNet50 about a quarter of its rate (`WSI_BENCH_CALLER=thread bench_inference` shows it).
  // A serial function_node would be worse still: it hops between TBB threads, a new team each.
  // On a CPU the model keeps every core busy while a batch runs, and a thread that takes a core
  // from one of the team's threads stalls them all, so a synchronous classifier's batches are
  // also read on that thread, between batches, split over the team (on_each_thread); reader
  // threads of our own waiting at a gate left inference idle for 6-8 % of the graph where the
  // reading itself was ~4.5 %. An asynchronous classifier (a GPU) computes while the graph's TBB
  // threads read the next batches.
  using JobWorkers = Workers<Job*>;
  // The graph's own arena of `threads_` slots, entered by the driver thread below: a graph made
  // in the caller's implicit arena would keep a slot for the caller, which works for inference
  // instead, and so run on one thread fewer (on 2 cores: one reader for two cores).
  tbb::task_arena arena(threads_);
  std::optional<tbb::flow::graph> graph;
  arena.execute([&] { graph.emplace(); });  // a graph runs its tasks in the arena it is made in
  tbb::flow::graph& g = *graph;
  JobWorkers inference(g, "wsi-infer", 0);  // run_here() below
  const bool sync = !classifier_.asynchronous();
  const JobWorkers::Work read_work = [this](Job* job) { read(*job); };
  const JobWorkers::Work infer_work = [this](Job* job) { infer(*job); };

  tbb::flow::input_node<Job*> source_node(g, [this](tbb::flow_control& fc) -> Job* {
    bool stop = false;
    Job* job = source(stop);
    if (stop) fc.stop();
    return job;
  });
  tbb::flow::limiter_node<Job*> limiter(g, static_cast<size_t>(in_flight_));
  JobWorkers::Node read_node(g, tbb::flow::unlimited, [&](Job* job, JobWorkers::Node::gateway_type& gateway) {
    if (sync) {
      inference.submit(read_work, job, gateway);
    } else {
      read(*job);
      gateway.try_put(job);
    }
  });
  tbb::flow::sequencer_node<Job*> order(g, [](Job* const& job) { return static_cast<size_t>(job->seq); });
  JobWorkers::Node infer_node(g, tbb::flow::serial, [&](Job* job, JobWorkers::Node::gateway_type& gateway) {
    inference.submit(infer_work, job, gateway);
  });
  // Declared after the nodes, so destroyed before them, also when wait_for_all throws: the
  // workers finish with the nodes' gateways before the nodes go.
  const struct Finish {
    JobWorkers& w;
    ~Finish() { w.finish(); }
  } finish_inference{inference};
  tbb::flow::function_node<Job*, tbb::flow::continue_msg> stitch_node(g, tbb::flow::serial, [this](Job* job) {
    stitch(*job);
    return tbb::flow::continue_msg();
  });

  tbb::flow::make_edge(source_node, limiter);
  tbb::flow::make_edge(limiter, read_node);
  tbb::flow::make_edge(read_node, order);
  tbb::flow::make_edge(order, infer_node);
  tbb::flow::make_edge(infer_node, stitch_node);
  tbb::flow::make_edge(stitch_node, limiter.decrementer());

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
        source_node.activate();
        g.wait_for_all();  // rethrows the first exception of any node (the graph is cancelled)
      } catch (...) {
        graph_error = std::current_exception();
      }
      inference.stop();  // every job was released (wait_for_all waited for them): run_here returns
    })};
    inference.run_here();
  }
  if (graph_error) std::rethrow_exception(graph_error);
  if (const std::exception_ptr e = inference.error()) std::rethrow_exception(e);

  stats_.failed = failed_.load();
  stats_.first_failure = first_failure_;
  stats_.read_cpu_seconds = 1e-9 * static_cast<double>(read_cpu_ns_.load());
  stats_.cancelled = params_.cancel && params_.cancel->load() && stats_.patches < static_cast<int64_t>(patches_.size());
  stats_.classifier = pool_->timings();
  return stats_;
}

}  // namespace wsi::detail
