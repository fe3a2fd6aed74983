// Training the built-in networks (see train.hpp).
#include "wsi/runtime.hpp"
#include "wsi/train.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>
#include <thread>

#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "model/nets.hpp"
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
}

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

TrainResult train_model(const PatchSet& train, const PatchSet* val, const TrainOptions& o, const fs::path& out_arg,
                        const std::function<void(const TrainProgress&)>& progress,
                        const std::function<void(const EpochRecord&)>& on_epoch) {
  o.validate();
  const int P = train.patch_size();
  if (val && val->patch_size() != P)
    throw UsageError("the validation set has " + std::to_string(val->patch_size()) + " px patches, the training set " +
                     std::to_string(P) + " px: use sets extracted with the same patch size");
  fs::path out = out_arg;
  if (out.extension() != ".pt") out += ".pt";
  if (!out.parent_path().empty() && !fs::is_directory(out.parent_path()))
    throw UsageError("output directory " + out.parent_path().string() + " does not exist");
  fs::path base = out;
  base.replace_extension();

  // Parts: a seeded random split of `train` when no validation set is given.
  std::vector<int64_t> train_members, val_members;
  if (val) {
    for (int64_t i = 0; i < train.size(); ++i) train_members.push_back(i);
    for (int64_t i = 0; i < val->size(); ++i) val_members.push_back(i);
  } else {
    std::vector<int64_t> all(static_cast<size_t>(train.size()));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    SplitMix64 rng(mix_seed(o.seed, 0x7661ULL));
    shuffle(all, rng);
    const auto nval = static_cast<size_t>(std::llround(o.val_fraction * static_cast<double>(all.size())));
    val_members.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(nval));
    train_members.assign(all.begin() + static_cast<ptrdiff_t>(nval), all.end());
  }
  const PatchSet& vset = val ? *val : train;
  const auto& train_labels = train.labels();
  const auto& val_labels = vset.labels();
  TrainResult result;
  for (int64_t i : train_members) (train_labels[static_cast<size_t>(i)] ? result.positives : result.negatives)++;
  int64_t val_pos = 0;
  for (int64_t i : val_members) val_pos += val_labels[static_cast<size_t>(i)] ? 1 : 0;
  if (result.positives == 0 || result.negatives == 0)
    throw ConfigError(train.describe() + ": the training part has " + std::to_string(result.positives) + " tumour and " +
                      std::to_string(result.negatives) + " normal patches; both classes are needed");
  if (val_pos == 0 || val_pos == static_cast<int64_t>(val_members.size()))
    throw ConfigError(vset.describe() + ": the validation part needs both classes to compute AUC (it has " +
                      std::to_string(val_pos) + " tumour of " + std::to_string(val_members.size()) + ")");
  result.train_patches = static_cast<int64_t>(train_members.size());
  result.val_patches = static_cast<int64_t>(val_members.size());

  // Not lowered to the cores (resolve_threads): the count is part of what makes a run reproducible.
  const int threads = o.threads > 0 ? o.threads : available_cores();
  at::set_num_threads(threads);
  torch::manual_seed(o.seed);

  ModelSpec spec;
  spec.name = o.name;
  spec.description = "built-in " + o.arch.name + " trained by wsi-heatmap train";
  spec.patch_size = P;
  spec.mpp = o.mpp;
  spec.input_size = o.input_size;
  spec.resize = o.input_size == P ? ResizeMode::none : o.resize;
  spec.output = OutputKind::logit;
  spec.architecture = o.arch;
  spec.validate();

  const double dropout = o.dropout < 0 ? detail::default_dropout(o.arch.name) : o.dropout;
  auto net = detail::make_net(o.arch, dropout);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  const double n_all = static_cast<double>(result.positives + result.negatives);
  const float w_pos = o.class_weights ? static_cast<float>(n_all / (2.0 * static_cast<double>(result.positives))) : 1.f;
  const float w_neg = o.class_weights ? static_cast<float>(n_all / (2.0 * static_cast<double>(result.negatives))) : 1.f;

  PartReader train_part(train, train_members, o.cache_bytes);
  PartReader val_part(vset, val_members, val ? o.cache_bytes : o.cache_bytes / 4);
  const int64_t per_epoch =
      o.max_patches_per_epoch > 0 ? std::min(o.max_patches_per_epoch, train_part.size()) : train_part.size();

  const size_t bytes = static_cast<size_t>(P) * P * 3;
  std::vector<uint8_t> augmented;
  const int S = spec.input_size;
  result.model = out;
  result.log_csv = base.string() + ".log.csv";
  result.curve_svg = base.string() + ".curve.svg";
  double lr = o.lr;
  int since_best = 0, since_plateau_cut = 0;
  double best_auc = -1;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.schedule == "cosine")
      lr = o.lr * (0.01 + 0.99 * 0.5 * (1 + std::cos(std::numbers::pi * (epoch - 1) / std::max(1, o.epochs))));
    set_lr(opt, lr);
    net->train();
    TrainProgress pr{epoch, o.epochs, 0, per_epoch, 0, std::max(0.0, best_auc), false};
    double loss_sum = 0;
    std::vector<double> tr_scores;
    std::vector<int> tr_labels;
    const uint64_t epoch_seed = mix_seed(o.seed, static_cast<uint64_t>(epoch));
    train_part.for_each_batch(o.batch, true, epoch_seed, per_epoch, [&](const uint8_t* px, const std::vector<int64_t>& ids) {
      const auto n = static_cast<int64_t>(ids.size());
      augmented.resize(static_cast<size_t>(n) * bytes);
      at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          augment_patch(px + static_cast<size_t>(i) * bytes, augmented.data() + static_cast<size_t>(i) * bytes, P,
                        o.augment, mix_seed(epoch_seed, static_cast<uint64_t>(ids[static_cast<size_t>(i)]) + 1));
      });
      torch::Tensor x = torch::empty({n, 3, S, S}, torch::kFloat32);
      preprocess(augmented.data(), n, spec, x.data_ptr<float>());
      torch::Tensor y = torch::empty({n}, torch::kFloat32), w = torch::empty({n}, torch::kFloat32);
      for (int64_t i = 0; i < n; ++i) {
        const int label = train_labels[static_cast<size_t>(ids[static_cast<size_t>(i)])];
        y[i] = static_cast<float>(label);
        w[i] = label ? w_pos : w_neg;
        tr_labels.push_back(label);
      }
      opt.zero_grad();
      const torch::Tensor logits = net->forward(x).reshape({n});
      const torch::Tensor loss = weighted_bce(logits, y, w);
      loss.backward();
      opt.step();
      const torch::Tensor l = logits.detach().contiguous();
      tr_scores.insert(tr_scores.end(), l.data_ptr<float>(), l.data_ptr<float>() + n);
      loss_sum += loss.item<double>() * static_cast<double>(n);
      pr.done += n;
      pr.loss = loss_sum / static_cast<double>(pr.done);
      if (progress) progress(pr);
    });
    if (!std::isfinite(loss_sum))
      throw ConfigError("training diverged (loss is not finite) in epoch " + std::to_string(epoch) +
                        ": lower --lr (now " + std::to_string(o.lr) + ")");

    // Validation: no augmentation, eval mode (batch-norm running statistics, no dropout).
    pr.validating = true;
    if (progress) progress(pr);
    net->eval();
    std::vector<double> va_scores;
    std::vector<int> va_labels;
    double va_loss = 0;
    {
      torch::NoGradGuard no_grad;
      val_part.for_each_batch(256, false, 0, 0, [&](const uint8_t* px, const std::vector<int64_t>& ids) {
        const auto n = static_cast<int64_t>(ids.size());
        torch::Tensor x = torch::empty({n, 3, S, S}, torch::kFloat32);
        preprocess(px, n, spec, x.data_ptr<float>());
        const torch::Tensor logits = net->forward(x).reshape({n}).contiguous();
        torch::Tensor y = torch::empty({n}, torch::kFloat32);
        for (int64_t i = 0; i < n; ++i) {
          const int label = val_labels[static_cast<size_t>(ids[static_cast<size_t>(i)])];
          y[i] = static_cast<float>(label);
          va_labels.push_back(label);
        }
        va_loss += weighted_bce(logits, y, torch::ones({n})).item<double>() * static_cast<double>(n);
        va_scores.insert(va_scores.end(), logits.data_ptr<float>(), logits.data_ptr<float>() + n);
      });
    }
    EpochRecord rec;
    rec.epoch = epoch;
    rec.lr = lr;
    rec.train_loss = pr.loss;
    rec.train_auc = roc_auc(tr_scores, tr_labels);
    rec.val_loss = va_loss / static_cast<double>(va_scores.size());
    rec.val_auc = roc_auc(va_scores, va_labels);
    const ConfusionMatrix cm = confusion_matrix(va_scores, va_labels, 0.0);  // logit 0 = probability 0.5
    rec.val_accuracy = static_cast<double>(cm.tp + cm.tn) / static_cast<double>(va_scores.size());
    rec.seconds = seconds_since(t0);
    if (rec.val_auc > best_auc) {
      best_auc = rec.val_auc;
      rec.best = true;
      since_best = 0;
      result.best_epoch = epoch;
      result.best_val_auc = rec.val_auc;
      json t;
      t["recipe"] = {{"arch", o.arch.name}, {"width", o.arch.width}, {"blocks", o.arch.blocks},
                     {"dropout", dropout}, {"input_size", o.input_size}, {"epochs", o.epochs}, {"batch", o.batch}, {"lr", o.lr}, {"weight_decay", o.weight_decay},
                     {"schedule", o.schedule}, {"patience", o.patience}, {"class_weights", o.class_weights},
                     {"seed", o.seed}, {"threads", threads}, {"max_patches_per_epoch", o.max_patches_per_epoch},
                     {"augment", {{"rot90", o.augment.rot90}, {"flips", o.augment.flips},
                                  {"max_rotation_deg", o.augment.max_rotation_deg}, {"max_zoom", o.augment.max_zoom},
                                  {"max_shift", o.augment.max_shift}, {"stain", o.augment.stain},
                                  {"hue", o.augment.hue}, {"saturation", o.augment.saturation},
                                  {"value", o.augment.value}}}};
      t["data"] = {{"train", train.describe()}, {"validation", val ? val->describe() : "random " + std::to_string(o.val_fraction) + " of the training set"},
                   {"train_patches", result.train_patches}, {"train_tumour", result.positives},
                   {"val_patches", result.val_patches}, {"val_tumour", val_pos}};
      t["best"] = {{"epoch", epoch}, {"val_auc", rec.val_auc}, {"val_loss", rec.val_loss},
                   {"val_accuracy", rec.val_accuracy}};
      t["software"] = {{"wsi_heatmap", WSI_VERSION}, {"libtorch", TORCH_VERSION}};
      spec.training_json = t.dump();
      detail::save_net(*net, out);
      detail::write_text_file(sidecar_path(out), spec.to_json());
    } else {
      ++since_best;
    }
    if (o.schedule == "plateau" && !rec.best && ++since_plateau_cut >= 2) {
      lr = std::max(lr * 0.5, 1e-6);
      since_plateau_cut = 0;
    } else if (rec.best) {
      since_plateau_cut = 0;
    }
    result.epochs.push_back(rec);
    detail::write_text_file(result.log_csv, training_log_csv(result.epochs));
    detail::write_text_file(result.curve_svg, learning_curve_svg(result.epochs, o.name + " (" + o.arch.name + ")"));
    if (on_epoch) on_epoch(rec);
    if (since_best >= o.patience) {
      result.stop_reason = "early stop: validation AUC did not improve for " + std::to_string(o.patience) +
                           " epochs after epoch " + std::to_string(result.best_epoch);
      break;
    }
  }
  if (result.stop_reason.empty()) result.stop_reason = "completed " + std::to_string(result.epochs.size()) + " epochs";
  return result;
}

}  // namespace wsi
