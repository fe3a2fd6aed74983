// `wsi-heatmap train` from files in one call, and its texts (train.hpp).
#include <iomanip>
#include <memory>
#include <sstream>

#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

// --init's summary line and what the stages train.
std::string init_plan_text(const TrainOptions& o, const InitSummary& s, const PatchSet& data) {
  std::ostringstream out, lr1, lr2;
  out << "fine-tuning " << o.init.string() << " (" << s.kind << ", " << s.parameters << " parameters) on "
      << data.describe() << "\n";
  lr1 << o.lr;
  lr2 << o.stage2_lr();
  const std::string bn = o.bn_frozen() ? "batch norm frozen" : "batch norm trained";
  if (o.freeze == "features") {
    std::string head;
    for (const auto& h : s.head) head += (head.empty() ? "" : ", ") + h;
    const int n = o.stage1_epochs();
    out << (n == 1 ? "epoch 1" : "epochs 1-" + std::to_string(n)) << ": the head only (" << head << "; "
        << s.head_parameters << " parameters) at lr " << lr1.str() << "; then everything at lr " << lr2.str() << "; "
        << bn << "\n";
  } else {
    out << "everything trained at lr " << lr1.str() << "; " << bn << "\n";
  }
  return out.str();
}

}  // namespace

std::string training_plan_text(const TrainOptions& o, const PatchSet& train, const PatchSet* val,
                               const InitSummary* init) {
  std::ostringstream out, fraction;
  if (init)
    out << init_plan_text(o, *init, train);
  else
    out << "training " << o.arch.name << " (width " << o.arch.width
        << (o.arch.name == "resnet" ? ", " + std::to_string(o.arch.blocks) + " blocks/stage" : std::string()) << ") on "
        << train.describe() << "\n";
  fraction << o.val_fraction;
  out << "validating on " << (val ? val->describe() : "a random " + fraction.str() + " of it") << "\n";
  return out.str();
}

std::string epoch_text(const EpochRecord& e) {
  std::ostringstream s;
  s << "epoch " << e.epoch << ": lr " << std::setprecision(3) << e.lr << std::fixed << std::setprecision(4)
    << "  train loss " << e.train_loss << " AUC " << e.train_auc << "  val loss " << e.val_loss << " AUC " << e.val_auc
    << " acc " << e.val_accuracy << std::setprecision(1) << "  " << e.seconds << " s"
    << (e.head_only ? "  (head only)" : "") << (e.best ? "  (best, saved)" : "") << "\n";
  return s.str();
}

std::string progress_text(const TrainProgress& p) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << "loss " << p.loss;
  if (p.best_val_auc > 0) s << "  best val AUC " << p.best_val_auc;
  if (p.validating) s << "  validating...";
  return s.str();
}

std::string train_summary_text(const TrainResult& r) {
  std::ostringstream s;
  s << r.stop_reason << "; best epoch " << r.best_epoch << ", validation AUC " << std::fixed << std::setprecision(4)
    << r.best_val_auc << "\nwrote " << r.model.string() << " (+ .json), " << r.log_csv.string() << ", "
    << r.curve_svg.string() << "\n";
  return s.str();
}

TrainResult train_on_files(const fs::path& data, const fs::path& val, const TrainOptions& o, const fs::path& out,
                           const std::function<void(const std::string&)>& say,
                           const std::function<void(const TrainProgress&)>& progress,
                           const std::function<void(const EpochRecord&)>& on_epoch) {
  const auto train_set = open_patch_set(data);
  std::unique_ptr<PatchSet> val_set;
  if (!val.empty()) val_set = open_patch_set(val);
  // As train_model says it, but before the plan is said.
  if (val_set && val_set->patch_size() != train_set->patch_size())
    throw UsageError("the validation set has " + std::to_string(val_set->patch_size()) + " px patches, the training set " +
                     std::to_string(train_set->patch_size()) + " px: use sets extracted with the same patch size");
  std::optional<InitSummary> init;
  if (!o.init.empty()) init = inspect_init(o, train_set.get());
  if (say) say(training_plan_text(o, *train_set, val_set.get(), init ? &*init : nullptr));
  return train_model(*train_set, val_set.get(), o, out, progress, on_epoch);
}

}  // namespace wsi
