// The heatmap's flow graph: the one place where its stages are wired (src/heatmap/graph.cpp).
//
//   source  (serial: the patch list cut into batches of consecutive patches, each in a reused
//            BatchSlot of the classifier)
//     -> limiter (at most `in_flight` batches between source and stitcher)
//     -> read    (every patch of the batch through read_patch() into the slot's pixels; on an
//                 asynchronous classifier (a GPU) on the graph's TBB threads, a batch split into
//                 contiguous strips, one per task; on a synchronous one (a CPU) between batches on
//                 the classifier's own threads: Classifier::on_each_thread)
//     -> order   (sequencer: grid order again)
//     -> infer   (serial, on the thread that called run(): BatchSlot::start)
//     -> stitch  (serial: BatchSlot::finish, then BatchSink::add, in grid order)
//     -> back to the limiter (frees a slot)
//
// It knows nothing of slides, models or output files: a PatchSource, a Classifier and a BatchSink
// stand for them, so ordering, cancellation, failure counting and stitching are tested with an
// image in memory and a fake classifier (tests/test_heatmap_graph.cpp).
//
// Failure policy: a patch whose region fails to decode (RegionReadError) is counted, handed to
// the sink with ok = 0 (its pixels white, its results meaningless) and the run goes on. Any other
// exception in a stage cancels the graph and is rethrown by run(); a classifier's failure is
// rethrown as Error naming `subject` and the batch's level-0 extent.
//
// Thread-safety: one run() at a time per PatchGraph, and per Classifier.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wsi/classifier.hpp"
#include "wsi/grid.hpp"
#include "wsi/patch_source.hpp"

namespace wsi::detail {

// Receives each batch's results in grid order, from the stitch stage (one call at a time).
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Patches [first, first + count) of the graph's patch list. ok[k] == 0: patch first + k failed
  // to decode and its values are meaningless. `cams`: count * side² values (side = the read
  // geometry's patch_size), or nullptr without Grad-CAM.
  virtual void add(size_t first, size_t count, const uint8_t* ok, const float* probabilities, const float* cams) = 0;
};

struct PatchGraphParams {
  int batch = 64;               // patches per batch (the last may be smaller)
  int threads = 1;              // TBB threads (readers on an asynchronous classifier)
  int in_flight = 0;            // batches between source and stitcher (0 = 2 + threads, or 4
                                // beside an asynchronous classifier)
  bool gradcam = false;         // make slots that also compute Grad-CAM
  std::string subject;          // names the slide in error messages
  const std::atomic<bool>* cancel = nullptr;  // raised: no new batch starts; run() returns early
  std::function<void(int64_t done, int64_t total)> progress;  // after each batch, from the stitcher
};

struct PatchGraphStats {
  int64_t patches = 0;          // handed to the sink
  int64_t failed = 0;           // of which failed to decode
  std::string first_failure;    // the first such failure's message (which region, why)
  int64_t batches = 0;
  bool cancelled = false;       // stopped early by PatchGraphParams::cancel
  double read_seconds = 0;      // the read stage's wall time, summed over batches
  double read_cpu_seconds = 0;  // the readers' thread CPU time
  double infer_seconds = 0;     // the infer stage (BatchSlot::start), summed
  double finish_seconds = 0;    // the stitch stage waiting in BatchSlot::finish, summed
  double sink_seconds = 0;      // BatchSink::add, summed
  BatchTimings classifier;      // the slots' own accounts, summed
};

class PatchGraph {
 public:
  // `geometry` is the read geometry: its patch_size is the side the classifier is fed. The
  // arguments must outlive the graph.
  PatchGraph(const PatchSource& source, const std::vector<GridPatch>& patches, const PatchGeometry& geometry,
             const Classifier& classifier, BatchSink& sink, const PatchGraphParams& params);
  ~PatchGraph();
  PatchGraph(const PatchGraph&) = delete;
  PatchGraph& operator=(const PatchGraph&) = delete;

  // Runs every patch through; see the failure policy above.
  PatchGraphStats run();

 private:
  struct Job;
  class Pool;
  // The node bodies.
  Job* source(bool& stop);
  void read(Job& job);
  void infer(Job& job);
  void stitch(Job& job);
  // read()'s two ways: a synchronous classifier's threads, or TBB tasks over contiguous strips.
  void read_on_classifier_threads(Job& job);
  void read_in_strips(Job& job);
  // Reads patch k of `job` into its slot; a region that fails to decode leaves it white, ok 0.
  void read_one(Job& job, size_t k, std::vector<uint8_t>& scratch);
  [[noreturn]] void rethrow_classifier_error(const Job& job, const std::exception& e) const;

  const PatchSource& source_;
  const std::vector<GridPatch>& patches_;
  const PatchGeometry geometry_;
  const Classifier& classifier_;
  BatchSink& sink_;
  const PatchGraphParams params_;
  const int threads_, in_flight_;
  const size_t patch_bytes_;
  std::unique_ptr<Pool> pool_;
  class Gate;
  std::unique_ptr<Gate> gate_;
  size_t next_ = 0;  // the source's position in patches_
  int64_t seq_ = 0;
  std::atomic<int64_t> failed_{0};
  std::mutex failure_mutex_;
  std::string first_failure_;
  std::atomic<int64_t> read_cpu_ns_{0};
  PatchGraphStats stats_;  // the stitcher's (serial) accounts
};

}  // namespace wsi::detail
