// `batch --extract`: the parts of the done slides merged into DIR/dataset, once per set of parts
// and settings.
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/params_json.hpp"
#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

void BatchDataset::validate() const {
  if (const std::string m = first_problem(dataset_param_table(), params); !m.empty()) throw UsageError(m);
}

std::string BatchDataset::split_of(const std::string& name) const {
  return split_for_name(name, params.split, params.balance.seed);
}

BatchMergeReport merge_batch_dataset(const BatchJob& job, const ForwardedOptions& forwarded, const BatchSelection& sel,
                                     const Manifest& manifest) {
  const BatchDataset& d = job.dataset;
  const fs::path& out = job.out;
  BatchMergeReport report;
  std::vector<DatasetPart> parts;
  nlohmann::json inputs = nlohmann::json::array();
  for (size_t i = 0; i < sel.slides.size(); ++i) {
    const std::string& name = sel.names[i];
    const ManifestEntry* e = manifest.find(name);
    if (!e || e->status != SlideStatus::done || e->settings != child_settings(job, forwarded, sel.slides[i], name) ||
        !outputs_intact(e->outputs, out)) {
      ++report.left_out;
      continue;
    }
    const std::string split = d.split_of(name);
    const std::string stem = std::string(kBatchPartPrefix) + "_" + split;
    parts.push_back({name, split, out / name / (stem + "_x.h5"), out / name / (stem + "_meta.csv")});
    nlohmann::json files = nlohmann::json::array();
    for (const OutputFile& o : e->outputs) files.push_back(o.sha1);
    inputs.push_back({{"name", name}, {"split", split}, {"sha1", files}});
  }
  report.slides = parts.size();
  // What the dataset is the merge of: the parts' content and every setting that shapes it.
  nlohmann::json key = detail::params_json(dataset_param_table(), d.params);
  key["parts"] = inputs;
  report.dir = out / "dataset";
  const fs::path key_file = report.dir / "merge-inputs.json";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out, ec))  // left by a merge that was killed
    if (entry.path().filename().string().rfind(".dataset.", 0) == 0) fs::remove_all(entry.path(), ec);
  if (fs::exists(key_file) && fs::exists(report.dir / (d.params.prefix + "_summary.json"))) {
    std::ifstream f(key_file);
    nlohmann::json old;
    try {
      f >> old;
    } catch (const nlohmann::json::exception&) {  // unreadable: merged again
    }
    if (old == key) {
      report.outcome = BatchMergeReport::Outcome::up_to_date;
      report.left_out = 0;
      return report;
    }
  }
  if (parts.empty()) return report;  // nothing_finished
  MergeParams mp;
  mp.split = d.params.split;
  mp.balance.mode = d.params.balance.mode;
  mp.balance.ratio = d.params.balance.ratio;
  mp.balance.seed = d.params.balance.seed;
  mp.balance.augment = d.params.balance.augment;
  mp.format = d.params.format;
  mp.prefix = d.params.prefix;
  mp.out_dir = out / (".dataset.partial-" + std::to_string(::getpid()));
  MergeSummary m = merge_dataset_parts(parts, mp);
  {
    std::ofstream f(mp.out_dir / "merge-inputs.json");  // inside the temporary folder: renamed with it
    f << detail::json_text(key, 2) << "\n";
    if (!f.flush()) throw WriteError(mp.out_dir / "merge-inputs.json", "writing failed (is the disk full?)");
  }
  const fs::path old = out / (".dataset.old-" + std::to_string(::getpid()));
  if (fs::exists(report.dir)) fs::rename(report.dir, old);
  fs::rename(mp.out_dir, report.dir);
  fs::remove_all(old, ec);
  report.outcome = BatchMergeReport::Outcome::merged;
  report.splits = std::move(m.splits);
  return report;
}

}  // namespace wsi
