// What a batch run says when it ends (batch.hpp): the CLI prints these texts as they are.
#include <algorithm>
#include <iomanip>
#include <sstream>

#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi {

std::string batch_report_text(const BatchReport& r, const std::string& out, const std::string& shard,
                              bool merge_only, bool extract) {
  std::ostringstream s;
  if (merge_only) {
    s << "batch " << out << ": " << r.selected << " slides, " << r.in_manifests << " in the shards' manifests ("
      << r.manifests_done << " done)\n  manifest: " << r.manifest_json.string() << "\n";
    return s.str();
  }
  s << "batch " << out << (shard.empty() ? "" : " shard " + shard) << ": " << r.selected << " slides (" << r.found
    << " found): " << r.ran_ok << " done now, " << r.already << " already done, " << r.ran_failed + r.kept_failed
    << " failed, " << r.skipped << " skipped\n";
  if (r.ran_ok + r.ran_failed > 0)
    s << std::fixed << std::setprecision(1) << "  " << (r.ran_ok + r.ran_failed) * 3600.0 / std::max(r.wall_seconds, 1e-9)
      << " slides/hour (" << r.wall_seconds << " s for " << r.ran_ok + r.ran_failed << " slides)\n"
      << std::defaultfloat;
  for (const SlideFailure& f : r.failures) s << "  FAILED " << f.name << ": " << f.reason << "\n";
  s << "  manifest: " << r.manifest_json.string() << "\n";
  if (extract && !shard.empty())
    s << "  dataset: not merged in a shard; when every shard has finished, run the same command with "
         "--merge-only instead of --shard\n";
  return s.str();
}

std::string batch_merge_text(const BatchMergeReport& m) {
  std::ostringstream s;
  if (m.outcome == BatchMergeReport::Outcome::up_to_date) {
    s << "  dataset: " << m.dir.string() << " is up to date (" << m.slides << " slides)\n";
    return s.str();
  }
  s << "  dataset: " << m.dir.string() << " from " << m.slides << " slides";
  if (m.left_out) s << " (" << m.left_out << " without a finished part left out)";
  s << "\n";
  for (const SplitReport& r : m.splits)
    s << "    " << r.name << ": " << r.positives + r.negatives << " patches (" << r.positives << " tumour, "
      << r.negatives << " normal" << (r.copies ? ", " + std::to_string(r.copies) + " oversampled copies" : "")
      << ") from " << r.slides << " slide(s)\n";
  return s.str();
}

std::string batch_list_text(const BatchSelection& sel) {
  std::string s;
  for (const size_t i : sel.mine) s += sel.names[i] + '\t' + escape_for_list(sel.slides[i].string()) + '\n';
  return s;
}

int batch_exit_status(const BatchReport& r, const BatchJob& job) {
  const bool merge_failed = r.dataset && r.dataset->outcome == BatchMergeReport::Outcome::nothing_finished;
  if (job.merge_only) return merge_failed || r.manifests_done < static_cast<int>(r.selected) ? 1 : 0;
  return r.failures.empty() && !merge_failed ? 0 : 1;
}

void check_batch_truth(const std::string& mask, const std::string& annotations, bool unlabelled) {
  if (!mask.empty() && !annotations.empty()) throw UsageError("give --mask or --annotations, not both");
  const std::string flag = mask.empty() ? "--annotations" : "--mask", truth = mask.empty() ? annotations : mask;
  if (!truth.empty() && truth.find("{stem}") == std::string::npos)
    throw UsageError(flag + " " + truth + ": in a batch, give a pattern with {stem}, the slide's file name without " +
                     "extension (e.g. " + flag + " 'masks/{stem}_mask.tif')");
  if (truth.empty() && !unlabelled)
    throw UsageError("--extract needs ground truth: --mask or --annotations with {stem} (e.g. --mask "
                     "'masks/{stem}_mask.tif'), or --unlabelled");
}

}  // namespace wsi
