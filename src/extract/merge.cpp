// One dataset from per-slide parts (batch --extract): balance each split across its slides, then
// copy the chosen patches part by part into the final writers.
#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "extract/summary_json.hpp"
#include "wsi/error.hpp"
#include "core/params_json.hpp"
#include "wsi/extract.hpp"
#include "wsi/random.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

// Reads a part's patches in blocks, in increasing row order (picks are sorted by slide and row),
// so each compressed HDF5 chunk is decoded about once.
class PartCursor {
 public:
  PartCursor(const PatchSet& set, int64_t block) : set_(set), block_(block) {}
  const uint8_t* row(int64_t i) {
    if (i < first_ || i >= first_ + count_) {
      first_ = i;
      count_ = std::min(block_, set_.size() - i);
      const size_t bytes = static_cast<size_t>(set_.patch_size()) * static_cast<size_t>(set_.patch_size()) * 3;
      pixels_.resize(static_cast<size_t>(count_) * bytes);
      set_.read(first_, count_, pixels_.data());
    }
    const size_t bytes = static_cast<size_t>(set_.patch_size()) * static_cast<size_t>(set_.patch_size()) * 3;
    return pixels_.data() + static_cast<size_t>(i - first_) * bytes;
  }

 private:
  const PatchSet& set_;
  int64_t block_;
  int64_t first_ = 0, count_ = 0;
  std::vector<uint8_t> pixels_;
};

struct OpenPart {
  const DatasetPart* part = nullptr;
  std::unique_ptr<PatchSet> set;
  std::vector<PatchMeta> meta;
};

}  // namespace

namespace {

// Every part opened and checked before anything is written: a part that does not read back
// stops the merge. `patch_size`: the parts' (0 when all are empty).
std::vector<OpenPart> open_parts(const std::vector<DatasetPart>& parts, int& patch_size) {
  std::vector<OpenPart> open(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    OpenPart& o = open[i];
    o.part = &parts[i];
    o.set = open_patch_set(parts[i].x_h5);
    o.meta = read_patch_meta(parts[i].meta_csv);
    if (static_cast<int64_t>(o.meta.size()) != o.set->size())
      throw ConfigError(parts[i].meta_csv.string() + ": " + std::to_string(o.meta.size()) + " rows for " +
                        std::to_string(o.set->size()) + " patches in " + parts[i].x_h5.string() +
                        " (the part is damaged: run its slide again)");
    if (o.set->size() > 0) {
      if (patch_size && o.set->patch_size() != patch_size)
        throw ConfigError(parts[i].x_h5.string() + ": " + std::to_string(o.set->patch_size()) + " px patches where the other parts have " +
                          std::to_string(patch_size) + " px (were the slides extracted with different --patch-size?)");
      patch_size = o.set->patch_size();
    }
  }
  return open;
}

// One split of the merged dataset: its parts' candidates balanced over all of them, written.
SplitReport merge_split(const std::string& split, const std::vector<DatasetPart>& parts, std::vector<OpenPart>& open,
                        const BalanceParams& balance, const MergeParams& params, int patch_size, int64_t& written) {
  std::vector<size_t> members;  // indices into `open`, in input order
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < open.size(); ++i) {
    if (parts[i].split != split) continue;
    members.push_back(i);
    const auto& labels = open[i].set->labels();
    for (size_t k = 0; k < labels.size(); ++k)
      candidates.push_back({static_cast<int32_t>(i), static_cast<int64_t>(k), static_cast<uint8_t>(labels[k])});
  }
  const std::vector<Pick> picks = select_patches(candidates, balance, fnv1a(split));

  SplitReport rep;
  rep.name = split;
  rep.slides = static_cast<int64_t>(members.size());
  std::unique_ptr<DatasetWriter> writer = params.format == DatasetFormat::pcam
                                              ? make_pcam_writer(params.out_dir, params.prefix, split, patch_size)
                                              : make_kaggle_writer(params.out_dir, split, patch_size);
  std::map<size_t, PartCursor> cursors;
  std::vector<uint8_t> turned(static_cast<size_t>(patch_size) * static_cast<size_t>(patch_size) * 3);
  for (const Pick& pick : picks) {
    const Candidate& c = candidates[pick.candidate];
    OpenPart& o = open[static_cast<size_t>(c.slide)];
    PartCursor& cursor = cursors.try_emplace(static_cast<size_t>(c.slide), *o.set, 256).first->second;
    PatchRecord r;
    static_cast<PatchMeta&>(r) = o.meta[static_cast<size_t>(c.index)];
    r.rgb = cursor.row(c.index);
    r.copy = pick.copy;
    r.augment = d4_name(pick.augment);
    if (pick.augment) {
      apply_d4(pick.augment, r.rgb, turned.data(), patch_size);
      r.rgb = turned.data();
    }
    const int64_t before = writer->stats().written;
    writer->add(r);
    if (writer->stats().written > before) {
      ++(r.label ? rep.positives : rep.negatives);
      if (r.copy) ++rep.copies;
    }
  }
  writer->commit();
  rep.duplicates_skipped = writer->stats().duplicates_skipped;
  rep.outputs = writer->outputs();
  written += writer->stats().written;
  return rep;
}

}  // namespace

MergeSummary merge_dataset_parts(const std::vector<DatasetPart>& parts, const MergeParams& params) {
  params.balance.validate();
  std::error_code ec;
  fs::create_directories(params.out_dir, ec);
  if (!fs::is_directory(params.out_dir))
    throw WriteError(params.out_dir, "cannot create the dataset directory" + (ec ? ": " + ec.message() : std::string()));

  int patch_size = 0;
  std::vector<OpenPart> open = open_parts(parts, patch_size);
  if (!patch_size) patch_size = params.patch_size;

  BalanceParams balance = params.balance;
  balance.max_per_slide = 0;  // the per-slide cap was applied when each part was extracted
  MergeSummary summary;
  for (const auto& [split, fraction] : params.split.parts) {
    (void)fraction;
    summary.splits.push_back(merge_split(split, parts, open, balance, params, patch_size, summary.patches_written));
  }

  // The summary is the last file written: its presence means the dataset is complete.
  nlohmann::json j;
  j["tool"] = std::string("wsi-heatmap batch --extract ") + WSI_VERSION;
  j["coordinates"] = detail::kDatasetCoordinates;
  ExtractParams as_extract;  // the dataset table's view of the merge settings
  as_extract.format = params.format;
  as_extract.prefix = params.prefix;
  as_extract.split = params.split;
  as_extract.balance = balance;
  j["parameters"] = detail::params_json(dataset_param_table(), as_extract);
  j["parameters"]["patch_size"] = patch_size;
  j["parameters"]["split_rule"] = "by slide: FNV-1a of the slide's batch name with the seed (stable as the archive grows)";
  nlohmann::json slides = nlohmann::json::array();
  for (const OpenPart& o : open) {
    int64_t pos = 0;
    for (int l : o.set->labels()) pos += l;
    slides.push_back({{"name", o.part->name},
                      {"split", o.part->split},
                      {"candidates", o.set->size()},
                      {"positives", pos},
                      {"negatives", o.set->size() - pos}});
  }
  j["slides"] = slides;
  j["splits"] = detail::splits_json(summary.splits);
  j["patches_written"] = summary.patches_written;
  summary.summary_json = params.out_dir / (params.prefix + "_summary.json");
  detail::write_text_file(summary.summary_json, detail::json_text(j, 2) + "\n");
  return summary;
}

}  // namespace wsi
