// Training the built-in networks (see train.hpp).
#include "wsi/runtime.hpp"
#include "wsi/train.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#if __has_include(<torch/cuda.h>)
#include <torch/cuda.h>
#define WSI_HAVE_TORCH_CUDA_H 1
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>
#include <thread>

#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "model/nets.hpp"
#include "model/torch_messages.hpp"
#include "train/finetune.hpp"
#include "train/train_net.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/metrics.hpp"
#include "wsi/random.hpp"

namespace wsi {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kBlock = 1024;  // patches read contiguously when streaming
constexpr int kWindow = 8;        // blocks shuffled together when streaming

// Patches of one part (train or validation) of a PatchSet, in a seeded order per epoch. Small
// sets are decoded once and kept; larger ones are streamed in shuffled windows of contiguous
// blocks (HDF5 chunks decompress once per read that way).
class PartReader {
 public:
  PartReader(const PatchSet& set, std::vector<int64_t> members, int64_t cache_bytes)
      : set_(set), members_(std::move(members)), bytes_(static_cast<size_t>(set.patch_size()) * set.patch_size() * 3) {
    std::sort(members_.begin(), members_.end());
    if (static_cast<double>(members_.size()) * static_cast<double>(bytes_) <= static_cast<double>(cache_bytes)) {
      cache_.resize(members_.size() * bytes_);
      std::vector<uint8_t> block;
      size_t k = 0;
      while (k < members_.size()) {
        const int64_t first = members_[k];
        const int64_t last = std::min(first + kBlock, set.size());
        block.resize(static_cast<size_t>(last - first) * bytes_);
        set.read(first, last - first, block.data());
        for (; k < members_.size() && members_[k] < last; ++k)
          std::memcpy(cache_.data() + k * bytes_, block.data() + static_cast<size_t>(members_[k] - first) * bytes_, bytes_);
      }
    }
  }

  int64_t size() const { return static_cast<int64_t>(members_.size()); }
  const std::vector<int64_t>& members() const { return members_; }

  // Calls fn(pixels, set_indices) for batches of up to `batch` patches; the last batch of the
  // epoch is dropped when it has one patch (batch norm cannot train on it). `limit` > 0 stops
  // after that many patches.
  template <typename Fn>
  void for_each_batch(int batch, bool shuffled, uint64_t seed, int64_t limit, Fn&& fn) const {
    SplitMix64 rng(seed);
    std::vector<uint8_t> pixels;
    int64_t emitted = 0;
    const int64_t cap = limit > 0 ? std::min(limit, size()) : size();
    // Emits batches from `pool` (patches back to back, set indices `ids`) in shuffled order and
    // returns the pool positions left over: a remainder smaller than a batch is carried into the
    // next window unless this is the `last` one.
    const auto drain = [&](const std::vector<uint8_t>& pool, const std::vector<int64_t>& ids, bool last) {
      std::vector<size_t> order(ids.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      if (shuffled) shuffle(order, rng);
      size_t at = 0;
      while (at < order.size() && emitted < cap) {
        const size_t want = static_cast<size_t>(std::min<int64_t>(batch, cap - emitted));
        if (order.size() - at < want && !last) break;
        const size_t take = std::min(want, order.size() - at);
        if (take < 2 && shuffled) break;
        pixels.resize(take * bytes_);
        std::vector<int64_t> batch_ids(take);
        for (size_t i = 0; i < take; ++i) {
          std::memcpy(pixels.data() + i * bytes_, pool.data() + order[at + i] * bytes_, bytes_);
          batch_ids[i] = ids[order[at + i]];
        }
        fn(pixels.data(), batch_ids);
        emitted += static_cast<int64_t>(take);
        at += take;
      }
      return std::vector<size_t>(order.begin() + static_cast<ptrdiff_t>(at), order.end());
    };
    if (!cache_.empty() || members_.empty()) {
      drain(cache_, members_, true);
      return;
    }
    // Streaming: blocks of the underlying set that hold members, in shuffled windows.
    std::vector<int64_t> blocks;
    for (int64_t m : members_)
      if (blocks.empty() || blocks.back() != m / kBlock) blocks.push_back(m / kBlock);
    if (shuffled) shuffle(blocks, rng);
    std::vector<uint8_t> window, carry;
    std::vector<int64_t> carry_ids;
    for (size_t w = 0; w < blocks.size() && emitted < cap; w += kWindow) {
      // Window = carried patches + the members of the next kWindow blocks.
      window = carry;
      std::vector<int64_t> ids = carry_ids;
      std::vector<uint8_t> block;
      for (size_t b = w; b < std::min(blocks.size(), w + kWindow); ++b) {
        const int64_t first = blocks[b] * kBlock, last = std::min(first + kBlock, set_.size());
        block.resize(static_cast<size_t>(last - first) * bytes_);
        set_.read(first, last - first, block.data());
        auto it = std::lower_bound(members_.begin(), members_.end(), first);
        for (; it != members_.end() && *it < last; ++it) {
          window.insert(window.end(), block.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(*it - first) * bytes_),
                        block.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(*it - first + 1) * bytes_));
          ids.push_back(*it);
        }
      }
      const std::vector<size_t> rest = drain(window, ids, w + kWindow >= blocks.size());
      carry.clear();
      carry_ids.clear();
      for (const size_t i : rest) {
        carry.insert(carry.end(), window.begin() + static_cast<ptrdiff_t>(i * bytes_),
                     window.begin() + static_cast<ptrdiff_t>((i + 1) * bytes_));
        carry_ids.push_back(ids[i]);
      }
    }
  }

 private:
  const PatchSet& set_;
  std::vector<int64_t> members_;
  size_t bytes_;
  std::vector<uint8_t> cache_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Mean of w * BCE(logit, y), computed stably: softplus(z) - y z.
torch::Tensor weighted_bce(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& w) {
  return (w * (torch::softplus(logits) - y * logits)).mean();
}

void set_lr(torch::optim::Adam& opt, double lr) {
  for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

}  // namespace

void check_out_is_not_init(const TrainOptions& o, const fs::path& out_arg) {
  if (o.init.empty()) return;
  fs::path out = out_arg;
  if (out.extension() != ".pt") out += ".pt";
  std::error_code e1, e2;
  if (fs::weakly_canonical(out, e1) == fs::weakly_canonical(o.init, e2) && !e1 && !e2)
    throw UsageError("--out " + out.string() + " is the --init model: write the fine-tuned model to another file");
}

void check_train_device(Device d) {
  if (d == Device::cpu) return;
#ifdef WSI_HAVE_TORCH_CUDA_H
  if (torch::cuda::is_available()) return;
#endif
  // As Model says it.
  throw ConfigError(std::string("--device cuda: this build's LibTorch ") + TORCH_VERSION +
                    " has no CUDA support or no GPU is visible; use --device cpu");
}

namespace {

torch::Device train_device(Device d) {
  check_train_device(d);
  return d == Device::cpu ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA, 0);
}

using detail::shape_of;

// The log-odds of tumour z of n patches from the network's output, by the sidecar's "output".
// Binary cross-entropy with logits on z is then BCE with logits (logit), the cross-entropy with
// the non-tumour classes together (softmax; z = x_pos - logsumexp(x_other)), or BCE on the
// probability clamped to [1e-7, 1 - 1e-7] (probability; z = logit(p)). AUC and accuracy (z > 0)
// use z too.
torch::Tensor log_odds(const torch::Tensor& raw, int64_t n, const ModelSpec& spec, const fs::path& model) {
  const torch::Tensor out = raw.to(torch::kFloat32);
  const auto bad = [&](const std::string& need) {
    throw ModelError(model, "forward() returns shape " + shape_of(out) + " for " + std::to_string(n) +
                                " patches; its sidecar's \"output\" needs " + need);
  };
  if (spec.output == OutputKind::softmax) {
    if (out.dim() != 2 || out.size(0) != n || out.size(1) <= spec.positive_index)
      bad("[N, K] logits with K > positive_index " + std::to_string(spec.positive_index));
    const torch::Tensor pos = torch::full({1}, spec.positive_index, torch::dtype(torch::kLong).device(out.device()));
    const torch::Tensor others = out.index_fill(1, pos, -std::numeric_limits<float>::infinity()).logsumexp(1);
    return out.select(1, spec.positive_index) - others;
  }
  if (out.numel() != n || (out.dim() > 0 && out.size(0) != n)) bad("one value per patch ([N] or [N, 1])");
  torch::Tensor z = out.reshape({n});
  if (spec.output == OutputKind::probability) {
    const torch::Tensor p = z.clamp(1e-7, 1 - 1e-7);
    z = torch::log(p) - torch::log1p(-p);
  }
  return z;
}

}  // namespace

void TrainOptions::validate() const {
  const auto fail = [](const std::string& m) { throw UsageError(m); };
  if (arch.name != "cancernet" && arch.name != "resnet") fail("--arch must be cancernet or resnet, not '" + arch.name + "'");
  if (arch.width < 4 || arch.width > 512) fail("--width must be in 4..512");
  if (arch.blocks < 1 || arch.blocks > 8) fail("--blocks must be in 1..8");
  if (!(dropout < 1) || (dropout < 0 && dropout != -1))
    fail("--dropout must be in 0..1 (below 1; leave it out for the architecture's default)");
  if (input_size < 16 || input_size > 1024) fail("--input-size must be in 16..1024");
  if (!(mpp > 0)) fail("--mpp must be positive (µm per patch pixel of the training data)");
  if (epochs < 1) fail("--epochs must be at least 1");
  if (batch < 2) fail("--batch must be at least 2 (batch norm needs two patches)");
  if (!(lr > 0) || lr > 1) fail("--lr must be in (0, 1]");
  if (weight_decay < 0) fail("--weight-decay must be >= 0");
  if (schedule != "cosine" && schedule != "plateau" && schedule != "none")
    fail("--schedule must be cosine, plateau or none, not '" + schedule + "'");
  if (patience < 1) fail("--patience must be at least 1");
  if (!(val_fraction > 0 && val_fraction < 0.9)) fail("--val-fraction must be in (0, 0.9)");
  if (max_patches_per_epoch < 0)
    fail("--max-patches-per-epoch must be 0 (all) or more, not " + std::to_string(max_patches_per_epoch));
  // Augmentation strengths, by the flags that set them: 0 is off, negative is meaningless.
  const auto strength = [&](const char* flag, double v, double below, bool inclusive) {
    if (!(v >= 0) || (inclusive ? v > below : v >= below)) {
      std::ostringstream m;
      m << flag << (inclusive ? " must be in 0.." : " must be 0 or more and below ") << below << " (0 = off), not " << v;
      fail(m.str());
    }
  };
  strength("--rotation", augment.max_rotation_deg, 180, true);
  strength("--zoom", augment.max_zoom, 0.9, false);
  strength("--shift", augment.max_shift, 0.5, true);
  strength("--stain-jitter", augment.stain, 0.5, true);
  strength("--hue", augment.hue, 0.5, true);
  strength("--saturation", augment.saturation, 1, true);
  strength("--brightness", augment.value, 1, true);
  // Fine-tuning.
  if (freeze != "none" && freeze != "features") fail("--freeze must be none or features, not '" + freeze + "'");
  if (bn != "" && bn != "frozen" && bn != "train") fail("--bn must be frozen or train, not '" + bn + "'");
  if (finetune_lr != -1 && (!(finetune_lr > 0) || finetune_lr > 1)) fail("--finetune-lr must be in (0, 1]");
  if (init.empty()) {
    if (freeze != "none") fail("--freeze " + freeze + " needs --init MODEL.pt (a new network has no trained features)");
    if (bn == "frozen") fail("--bn frozen needs --init MODEL.pt (a new network must learn its batch-norm statistics)");
  }
  if (freeze != "features") {
    if (freeze_epochs != -1) fail("--freeze-epochs needs --freeze features");
    if (finetune_lr != -1) fail("--finetune-lr needs --freeze features (it is the rate after the frozen epochs; "
                                "without freezing, --lr is the rate)");
  } else if (freeze_epochs < 1 && freeze_epochs != -1) {
    fail("--freeze-epochs must be at least 1, not " + std::to_string(freeze_epochs));
  } else if (stage1_epochs() >= epochs) {
    fail("--freeze-epochs " + std::to_string(stage1_epochs()) + (freeze_epochs == -1 ? " (the default)" : "") +
         " must be below --epochs " + std::to_string(epochs) + ": the epochs after it train everything");
  }
}

int TrainOptions::stage1_epochs() const { return freeze != "features" ? 0 : freeze_epochs == -1 ? 2 : freeze_epochs; }
double TrainOptions::stage2_lr() const { return finetune_lr == -1 ? lr / 10 : finetune_lr; }
bool TrainOptions::bn_frozen() const { return bn.empty() ? !init.empty() : bn == "frozen"; }

std::string training_log_csv(const std::vector<EpochRecord>& epochs) {
  std::ostringstream s;
  s << "epoch,lr,train_loss,train_auc,val_loss,val_auc,val_accuracy,seconds,best\n";
  s << std::setprecision(6);
  for (const auto& e : epochs)
    s << e.epoch << "," << e.lr << "," << e.train_loss << "," << e.train_auc << "," << e.val_loss << "," << e.val_auc
      << "," << e.val_accuracy << "," << std::fixed << std::setprecision(1) << e.seconds << std::defaultfloat
      << std::setprecision(6) << "," << (e.best ? 1 : 0) << "\n";
  return s.str();
}

std::string learning_curve_svg(const std::vector<EpochRecord>& epochs, const std::string& title) {
  // Two stacked charts: loss and AUC per epoch, training dashed, validation solid.
  detail::PlotSpec loss, auc;
  loss.title = title;
  loss.x_label = auc.x_label = "epoch";
  loss.y_label = "loss (BCE)";
  auc.y_label = "ROC AUC";
  loss.x_min = auc.x_min = 1;
  loss.x_integer = auc.x_integer = true;
  loss.id = "loss";
  auc.id = "auc";
  auc.legend_bottom = true;
  loss.x_max = auc.x_max = std::max<double>(2, static_cast<double>(epochs.size()));
  detail::PlotSeries tl{"training", "#2c7fb8", {}, {}, true, true}, vl{"validation", "#d95f0e", {}, {}, false, true};
  detail::PlotSeries ta = tl, va = vl;
  double max_loss = 0, min_auc = 1;
  int best = 0;
  for (const auto& e : epochs) {
    tl.x.push_back(e.epoch), tl.y.push_back(e.train_loss);
    vl.x.push_back(e.epoch), vl.y.push_back(e.val_loss);
    ta.x.push_back(e.epoch), ta.y.push_back(e.train_auc);
    va.x.push_back(e.epoch), va.y.push_back(e.val_auc);
    max_loss = std::max({max_loss, e.train_loss, e.val_loss});
    min_auc = std::min({min_auc, e.train_auc, e.val_auc});
    if (e.best) best = e.epoch;
  }
  loss.y_max = max_loss > 0 ? max_loss * 1.1 : 1;
  auc.y_min = std::max(0.0, std::floor(min_auc * 50) / 50);
  loss.series = {tl, vl};
  auc.series = {ta, va};
  if (best) {
    auc.series.push_back({"best epoch", "#999", {double(best), double(best)}, {auc.y_min, 1.0}, true, false});
    for (const auto& e : epochs)
      if (e.epoch == best) {
        std::ostringstream n;
        n << "best: epoch " << best << ", val AUC " << std::fixed << std::setprecision(4) << e.val_auc;
        auc.notes.push_back(n.str());
      }
  }
  const std::string top = detail::line_plot_svg(loss), bottom = detail::line_plot_svg(auc);
  // Stack the two documents as nested <svg> elements.
  const auto body = [](const std::string& svg) { return svg.substr(svg.find('\n') + 1, svg.rfind("</svg>") - svg.find('\n') - 1); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << loss.width << "\" height=\"" << loss.height + auc.height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<svg y=\"0\">\n"
    << body(top) << "</svg>\n<svg y=\"" << loss.height << "\">\n" << body(bottom) << "</svg>\n</svg>\n";
  return s.str();
}

namespace {

// The parts of a run: patches (indices into their set) for training and validation.
struct Parts {
  std::vector<int64_t> train, val;
  int64_t val_tumour = 0;
};

Parts split_parts(const PatchSet& train, const PatchSet* val, const TrainOptions& o, TrainResult& result) {
  Parts parts;
  // A seeded random split of `train` when no validation set is given.
  if (val) {
    for (int64_t i = 0; i < train.size(); ++i) parts.train.push_back(i);
    for (int64_t i = 0; i < val->size(); ++i) parts.val.push_back(i);
  } else {
    std::vector<int64_t> all(static_cast<size_t>(train.size()));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    SplitMix64 rng(mix_seed(o.seed, 0x7661ULL));
    shuffle(all, rng);
    const auto nval = static_cast<size_t>(std::llround(o.val_fraction * static_cast<double>(all.size())));
    parts.val.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(nval));
    parts.train.assign(all.begin() + static_cast<ptrdiff_t>(nval), all.end());
  }
  const PatchSet& vset = val ? *val : train;
  for (int64_t i : parts.train) (train.labels()[static_cast<size_t>(i)] ? result.positives : result.negatives)++;
  for (int64_t i : parts.val) parts.val_tumour += vset.labels()[static_cast<size_t>(i)] ? 1 : 0;
  if (result.positives == 0 || result.negatives == 0)
    throw ConfigError(train.describe() + ": the training part has " + std::to_string(result.positives) + " tumour and " +
                      std::to_string(result.negatives) + " normal patches; both classes are needed");
  if (parts.val_tumour == 0 || parts.val_tumour == static_cast<int64_t>(parts.val.size()))
    throw ConfigError(vset.describe() + ": the validation part needs both classes to compute AUC (it has " +
                      std::to_string(parts.val_tumour) + " tumour of " + std::to_string(parts.val.size()) + ")");
  result.train_patches = static_cast<int64_t>(parts.train.size());
  result.val_patches = static_cast<int64_t>(parts.val.size());
  return parts;
}

// The sidecar's "training" "recipe": the options that made the model.
json recipe_json(const TrainOptions& o, const ModelSpec& spec, double dropout, int threads,
                 const std::optional<detail::InitModel>& init) {
  json r;
  if (spec.architecture) {
    r["arch"] = spec.architecture->name;
    r["width"] = spec.architecture->width;
    r["blocks"] = spec.architecture->blocks;
    r["dropout"] = dropout;
  } else {
    r["arch"] = "torchscript";
  }
  r.update({{"input_size", spec.input_size}, {"epochs", o.epochs}, {"batch", o.batch}, {"lr", o.lr},
            {"weight_decay", o.weight_decay}, {"schedule", o.schedule}, {"patience", o.patience},
            {"class_weights", o.class_weights}, {"seed", o.seed}, {"threads", threads},
            {"max_patches_per_epoch", o.max_patches_per_epoch},
            {"augment", {{"rot90", o.augment.rot90}, {"flips", o.augment.flips},
                         {"max_rotation_deg", o.augment.max_rotation_deg}, {"max_zoom", o.augment.max_zoom},
                         {"max_shift", o.augment.max_shift}, {"stain", o.augment.stain},
                         {"hue", o.augment.hue}, {"saturation", o.augment.saturation},
                         {"value", o.augment.value}}},
            {"device", o.device == Device::cuda ? "cuda" : "cpu"}, {"bn", o.bn_frozen() ? "frozen" : "train"}});
  if (init) {
    const ModelSpec& is = init->summary.spec;
    json from = {{"path", o.init.string()}, {"sha1", sha1_file(o.init)}, {"name", is.name}, {"kind", init->summary.kind}};
    if (!is.training_json.empty()) from["training"] = json::parse(is.training_json);
    r["init"] = from;
    r["freeze"] = o.freeze;
    if (o.freeze == "features") {
      r["freeze_epochs"] = o.stage1_epochs();
      r["finetune_lr"] = o.stage2_lr();
      r["head"] = init->summary.head;
    }
  }
  return r;
}

// OUT.pt of `out` (".pt" appended when missing), after the checks made before anything is read.
fs::path checked_model_path(const PatchSet& train, const PatchSet* val, const TrainOptions& o, const fs::path& out_arg) {
  o.validate();
  const int P = train.patch_size();
  if (val && val->patch_size() != P)
    throw UsageError("the validation set has " + std::to_string(val->patch_size()) + " px patches, the training set " +
                     std::to_string(P) + " px: use sets extracted with the same patch size");
  fs::path out = out_arg;
  if (out.extension() != ".pt") out += ".pt";
  if (!out.parent_path().empty() && !fs::is_directory(out.parent_path()))
    throw UsageError("output directory " + out.parent_path().string() + " does not exist");
  check_out_is_not_init(o, out);
  return out;
}

// The trained model's sidecar: the init model's under the new name, or a new built-in's for
// `patch_size` px patches.
ModelSpec trained_spec(const TrainOptions& o, const std::optional<detail::InitModel>& init, int patch_size) {
  ModelSpec spec;
  if (init) {
    spec = init->summary.spec;
    spec.description = "fine-tuned from " + spec.name + " by wsi-heatmap train";
    spec.name = o.name;
  } else {
    spec.name = o.name;
    spec.description = "built-in " + o.arch.name + " trained by wsi-heatmap train";
    spec.patch_size = patch_size;
    spec.mpp = o.mpp;
    spec.input_size = o.input_size;
    spec.resize = o.input_size == patch_size ? ResizeMode::none : o.resize;
    spec.output = OutputKind::logit;
    spec.architecture = o.arch;
  }
  spec.validate();
  return spec;
}

// Scores (log-odds of tumour) and labels of the patches one pass saw, and its mean loss.
struct Pass {
  double loss = 0;
  std::vector<double> scores;
  std::vector<int> labels;
};

// One run of train_model: the network, its optimiser and both parts of the data, set up in the
// order that makes runs reproducible (threads and seed before the network is made), then epochs.
class Trainer {
 public:
  Trainer(const PatchSet& train, const PatchSet* val, const TrainOptions& o, const fs::path& out)
      : train_(train), val_(val), vset_(val ? *val : train), o_(o), out_(out), device_(train_device(o.device)) {
    // The network and its sidecar: the init model's, or a new built-in's.
    if (!o.init.empty()) init_ = detail::load_init(o, &train);
    parts_ = split_parts(train, val, o, result_);
    // Not lowered to the cores (resolve_threads): the count is part of what makes a run reproducible.
    const int threads = o.threads > 0 ? o.threads : available_cores();
    at::set_num_threads(threads);
    torch::manual_seed(o.seed);
    spec_ = trained_spec(o, init_, train.patch_size());
    const double dropout =
        o.dropout >= 0 ? o.dropout : spec_.architecture ? detail::default_dropout(spec_.architecture->name) : 0;
    net_.emplace(init_ ? init_->net : detail::TrainNet::fresh(o.arch, dropout));
    recipe_ = recipe_json(o, spec_, dropout, threads, init_);
    model_path_ = init_ ? o.init : out;  // named in messages about the network's output
    net_->to(device_);
    const double n_all = static_cast<double>(result_.positives + result_.negatives);
    if (o.class_weights) {
      w_pos_ = static_cast<float>(n_all / (2.0 * static_cast<double>(result_.positives)));
      w_neg_ = static_cast<float>(n_all / (2.0 * static_cast<double>(result_.negatives)));
    }
    train_part_.emplace(train, parts_.train, o.cache_bytes);
    val_part_.emplace(vset_, parts_.val, val ? o.cache_bytes : o.cache_bytes / 4);
    per_epoch_ = o.max_patches_per_epoch > 0 ? std::min(o.max_patches_per_epoch, train_part_->size()) : train_part_->size();
    fs::path base = out;
    base.replace_extension();
    result_.model = out;
    result_.log_csv = base.string() + ".log.csv";
    result_.curve_svg = base.string() + ".curve.svg";
    title_ = o.name + (init_ ? " (fine-tuned from " + o.init.filename().string() + ")" : " (" + o.arch.name + ")");
  }

  TrainResult run(const std::function<void(const TrainProgress&)>& progress,
                  const std::function<void(const EpochRecord&)>& on_epoch) {
    // Stage 1 of freeze "features" trains the head only; stage 2 (or the only stage) everything.
    const int stage1 = o_.stage1_epochs();
    double lr = o_.lr, stage_lr = o_.lr;
    int since_best = 0, since_plateau_cut = 0, stage_first = 1, stage_epochs = o_.epochs;
    double best_auc = -1;
    for (int epoch = 1; epoch <= o_.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      const bool head_only = epoch <= stage1;
      if (epoch == 1 || epoch == stage1 + 1) {
        stage_lr = lr = head_only || stage1 == 0 ? o_.lr : o_.stage2_lr();
        stage_first = epoch;
        stage_epochs = head_only ? stage1 : o_.epochs - stage1;
        // Each stage keeps its own best, as the notebooks' second fit() with its own checkpoint did:
        // stage 1 warms the head up, the model is stage 2's best. Early stopping waits for it too.
        best_auc = -1;
        since_best = since_plateau_cut = 0;
        start_stage(head_only, lr);
      }
      if (o_.schedule == "cosine")
        lr = stage_lr *
             (0.01 + 0.99 * 0.5 * (1 + std::cos(std::numbers::pi * (epoch - stage_first) / std::max(1, stage_epochs))));
      set_lr(*opt_, lr);
      TrainProgress pr{epoch, o_.epochs, head_only, 0, per_epoch_, 0, std::max(0.0, best_auc), false};
      const Pass trained = train_epoch(epoch, pr, progress);
      pr.validating = true;
      if (progress) progress(pr);
      const Pass validated = validate();
      EpochRecord rec = record(epoch, lr, head_only, trained, validated, t0);
      if (rec.val_auc > best_auc) {
        best_auc = rec.val_auc;
        rec.best = true;
        since_best = 0;
        result_.best_epoch = epoch;
        result_.best_val_auc = rec.val_auc;
        save_checkpoint(rec);
      } else {
        ++since_best;
      }
      if (o_.schedule == "plateau" && !rec.best && ++since_plateau_cut >= 2) {
        lr = std::max(lr * 0.5, 1e-6);
        since_plateau_cut = 0;
      } else if (rec.best) {
        since_plateau_cut = 0;
      }
      result_.epochs.push_back(rec);
      detail::write_text_file(result_.log_csv, training_log_csv(result_.epochs));
      detail::write_text_file(result_.curve_svg, learning_curve_svg(result_.epochs, title_));
      if (on_epoch) on_epoch(rec);
      if (since_best >= o_.patience && epoch > stage1) {
        result_.stop_reason = "early stop: validation AUC did not improve for " + std::to_string(o_.patience) +
                              " epochs after epoch " + std::to_string(result_.best_epoch);
        break;
      }
    }
    if (result_.stop_reason.empty()) result_.stop_reason = "completed " + std::to_string(result_.epochs.size()) + " epochs";
    return result_;
  }

 private:
  // A fresh Adam over the parameters a stage trains (the head's only, or all); the others frozen.
  void start_stage(bool head_only, double lr) {
    const std::vector<std::string> head = init_ ? init_->summary.head : std::vector<std::string>{};
    std::vector<torch::Tensor> trained;
    for (auto& [name, p] : net_->named_parameters()) {
      const bool on = !head_only || detail::TrainNet::in(head, name);
      p.requires_grad_(on);
      if (on) trained.push_back(p);
    }
    opt_ = std::make_unique<torch::optim::Adam>(trained, torch::optim::AdamOptions(lr).weight_decay(o_.weight_decay));
  }

  // The network's input, on its device, from `n` patches in host memory.
  torch::Tensor input(const uint8_t* px, int64_t n) const {
    const int S = spec_.input_size;
    torch::Tensor x = torch::empty({n, 3, S, S}, torch::kFloat32);
    preprocess(px, n, spec_, x.data_ptr<float>());
    return x.to(device_);
  }

  static void host_scores(const torch::Tensor& z, std::vector<double>& scores) {
    const torch::Tensor c = z.detach().to(torch::kCPU).contiguous();
    scores.insert(scores.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }

  // One pass over (up to max_patches_per_epoch of) the training part, augmented, in the epoch's
  // seeded order; `pr` counts the patches and the running loss.
  Pass train_epoch(int epoch, TrainProgress& pr, const std::function<void(const TrainProgress&)>& progress) {
    const int P = train_.patch_size();
    const size_t bytes = static_cast<size_t>(P) * P * 3;
    const auto& labels = train_.labels();
    net_->set_mode(true, o_.bn_frozen());
    Pass pass;
    double loss_sum = 0;
    const uint64_t epoch_seed = mix_seed(o_.seed, static_cast<uint64_t>(epoch));
    train_part_->for_each_batch(o_.batch, true, epoch_seed, per_epoch_, [&](const uint8_t* px, const std::vector<int64_t>& ids) {
      const auto n = static_cast<int64_t>(ids.size());
      augmented_.resize(static_cast<size_t>(n) * bytes);
      at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          augment_patch(px + static_cast<size_t>(i) * bytes, augmented_.data() + static_cast<size_t>(i) * bytes, P,
                        o_.augment, mix_seed(epoch_seed, static_cast<uint64_t>(ids[static_cast<size_t>(i)]) + 1));
      });
      const torch::Tensor x = input(augmented_.data(), n);
      torch::Tensor y = torch::empty({n}, torch::kFloat32), w = torch::empty({n}, torch::kFloat32);
      for (int64_t i = 0; i < n; ++i) {
        const int label = labels[static_cast<size_t>(ids[static_cast<size_t>(i)])];
        y[i] = static_cast<float>(label);
        w[i] = label ? w_pos_ : w_neg_;
        pass.labels.push_back(label);
      }
      opt_->zero_grad();
      const torch::Tensor z = log_odds(net_->forward(x), n, spec_, model_path_);
      const torch::Tensor loss = weighted_bce(z, y.to(device_), w.to(device_));
      loss.backward();
      opt_->step();
      host_scores(z, pass.scores);
      loss_sum += loss.item<double>() * static_cast<double>(n);
      pr.done += n;
      pr.loss = loss_sum / static_cast<double>(pr.done);
      if (progress) progress(pr);
    });
    if (!std::isfinite(loss_sum))
      throw ConfigError("training diverged (loss is not finite) in epoch " + std::to_string(epoch) +
                        ": lower --lr (now " + std::to_string(o_.lr) + ")");
    pass.loss = pr.loss;
    return pass;
  }

  // The validation part: no augmentation, eval mode (batch-norm running statistics, no dropout);
  // the loss unweighted.
  Pass validate() {
    net_->set_mode(false, false);
    const auto& labels = vset_.labels();
    Pass pass;
    double loss_sum = 0;
    torch::NoGradGuard no_grad;
    val_part_->for_each_batch(256, false, 0, 0, [&](const uint8_t* px, const std::vector<int64_t>& ids) {
      const auto n = static_cast<int64_t>(ids.size());
      const torch::Tensor z = log_odds(net_->forward(input(px, n)), n, spec_, model_path_);
      torch::Tensor y = torch::empty({n}, torch::kFloat32);
      for (int64_t i = 0; i < n; ++i) {
        const int label = labels[static_cast<size_t>(ids[static_cast<size_t>(i)])];
        y[i] = static_cast<float>(label);
        pass.labels.push_back(label);
      }
      loss_sum += weighted_bce(z, y.to(device_), torch::ones({n}, z.options())).item<double>() * static_cast<double>(n);
      host_scores(z, pass.scores);
    });
    pass.loss = loss_sum / static_cast<double>(pass.scores.size());
    return pass;
  }

  static EpochRecord record(int epoch, double lr, bool head_only, const Pass& trained, const Pass& validated,
                            std::chrono::steady_clock::time_point t0) {
    EpochRecord rec;
    rec.epoch = epoch;
    rec.lr = lr;
    rec.head_only = head_only;
    rec.train_loss = trained.loss;
    rec.train_auc = roc_auc(trained.scores, trained.labels);
    rec.val_loss = validated.loss;
    rec.val_auc = roc_auc(validated.scores, validated.labels);
    const ConfusionMatrix cm = confusion_matrix(validated.scores, validated.labels, 0.0);  // log-odds 0 = probability 0.5
    rec.val_accuracy = static_cast<double>(cm.tp + cm.tn) / static_cast<double>(validated.scores.size());
    rec.seconds = seconds_since(t0);
    return rec;
  }

  // OUT.pt and its sidecar, with the recipe, the data and this (best) epoch's metrics.
  void save_checkpoint(const EpochRecord& rec) {
    json t;
    t["recipe"] = recipe_;
    t["data"] = {{"train", train_.describe()},
                 {"validation", val_ ? val_->describe() : "random " + std::to_string(o_.val_fraction) + " of the training set"},
                 {"train_patches", result_.train_patches}, {"train_tumour", result_.positives},
                 {"val_patches", result_.val_patches}, {"val_tumour", parts_.val_tumour}};
    t["best"] = {{"epoch", rec.epoch}, {"val_auc", rec.val_auc}, {"val_loss", rec.val_loss},
                 {"val_accuracy", rec.val_accuracy}};
    t["software"] = {{"wsi_heatmap", WSI_VERSION}, {"libtorch", TORCH_VERSION}};
    spec_.training_json = t.dump();
    net_->save(out_);
    detail::write_text_file(sidecar_path(out_), spec_.to_json());
  }

  const PatchSet& train_;
  const PatchSet* val_;
  const PatchSet& vset_;
  const TrainOptions& o_;
  const fs::path out_;
  const torch::Device device_;
  std::optional<detail::InitModel> init_;
  TrainResult result_;
  Parts parts_;
  ModelSpec spec_;
  std::optional<detail::TrainNet> net_;
  json recipe_;
  fs::path model_path_;
  std::unique_ptr<torch::optim::Adam> opt_;
  float w_pos_ = 1.f, w_neg_ = 1.f;
  std::optional<PartReader> train_part_, val_part_;
  int64_t per_epoch_ = 0;
  std::string title_;
  std::vector<uint8_t> augmented_;
};

}  // namespace

TrainResult train_model(const PatchSet& train, const PatchSet* val, const TrainOptions& o, const fs::path& out,
                        const std::function<void(const TrainProgress&)>& progress,
                        const std::function<void(const EpochRecord&)>& on_epoch) {
  Trainer trainer(train, val, o, checked_model_path(train, val, o, out));
  return trainer.run(progress, on_epoch);
}

}  // namespace wsi
