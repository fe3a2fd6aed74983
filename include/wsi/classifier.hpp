// wsi/classifier.hpp — what the heatmap graph needs of a patch classifier (torch-free).
//
// A classifier runs batches through BatchSlots. A slot owns the host memory that readers fill
// with patches (pinned on a GPU, so that the copy to the device is asynchronous) and the memory
// its results come back to. start() hands a batch to the classifier; finish() waits for that
// batch and makes its results readable. On a GPU start() only queues work (copy in,
// preprocessing, forward pass, Grad-CAM, copy out, on CUDA streams) and returns at once, so the
// next batch is queued while this one computes and the previous one is copied back; on a CPU
// start() computes and finish() returns at once. Slots are made once per run and reused, so
// nothing is allocated per batch in the steady state.
//
// Frames and units: patches are side x side RGB uint8, row-major HWC, back to back (like
// wsi::RgbImage); probabilities are 0..1; CAMs are side x side floats per patch in 0..1, laid
// out as wsi::gradcam() documents (gradcam.hpp).
//
// Thread-safety: start() is called from one thread at a time for all slots of a classifier (a
// graph's serial inference stage); finish() and the result accessors of a slot may be called
// from another thread than its start(), once start() returned, while other slots start. One
// batch at a time per slot: start, finish, read the results, then start again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace wsi {

struct ModelSpec;  // model.hpp

// Where one slot's time went, in seconds, summed over its batches. On a CPU `staging` is the
// conversion to the network's input and `compute` the forward pass (and Grad-CAM); on a GPU
// `staging` is the host time spent queueing a batch, `copy_in`/`compute`/`copy_out` are
// device times measured between CUDA events, and `wait` is what finish() spent blocked.
struct BatchTimings {
  double staging = 0, copy_in = 0, compute = 0, copy_out = 0, wait = 0;
  int64_t batches = 0;
  BatchTimings& operator+=(const BatchTimings& o) {
    staging += o.staging;
    copy_in += o.copy_in;
    compute += o.compute;
    copy_out += o.copy_out;
    wait += o.wait;
    batches += o.batches;
    return *this;
  }
};

class BatchSlot {
 public:
  virtual ~BatchSlot() = default;
  virtual int64_t capacity() const = 0;  // patches
  virtual int side() const = 0;          // pixels per patch side
  // capacity() patches of side² * 3 bytes. Write them before start(); do not touch them again
  // until finish() returned.
  virtual uint8_t* pixels() = 0;
  // Starts classifying the first `count` (1..capacity()) patches. Throws what the model throws
  // (ModelError); the message names the model, not the patches.
  virtual void start(int64_t count) = 0;
  // Waits for the batch start() began. Throws when the device reported a failure for it.
  virtual void finish() = 0;
  // Valid after finish(): `count` probabilities, and count * side² CAM values (nullptr when the
  // slot was made without Grad-CAM).
  virtual const float* probabilities() const = 0;
  virtual const float* cams() const = 0;
  virtual const BatchTimings& timings() const = 0;
};

class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual const ModelSpec& spec() const = 0;
  // A slot for up to `capacity` patches of `side` pixels (as for Model::predict: 0 or
  // spec().patch_size, or spec().input_size), computing Grad-CAM too when `with_gradcam`.
  virtual std::unique_ptr<BatchSlot> make_slot(int64_t capacity, int side, bool with_gradcam) const = 0;
  // True when start() returns before the batch is computed (a GPU): readers then need threads
  // of their own. False when start() computes on the calling thread's cores (a CPU): reading
  // then runs between batches on the classifier's own threads (on_each_thread).
  virtual bool asynchronous() const = 0;
  // Runs fn(thread, threads) once on each thread the classifier computes with and returns when
  // all are done (see Model::on_each_thread). This default runs fn(0, 1) on the caller.
  virtual void on_each_thread(const std::function<void(int thread, int threads)>& fn) const { fn(0, 1); }
  // Human words for where it runs, e.g. "cpu" or "cuda:0 (NVIDIA H200)", for summaries.
  virtual std::string device_name() const { return "cpu"; }
};

}  // namespace wsi
