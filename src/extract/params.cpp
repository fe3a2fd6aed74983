// ExtractParams' tables (extract.hpp): what each slide's patches are, and how the dataset is made.
#include <cmath>

#include "wsi/error.hpp"
#include "wsi/extract.hpp"

namespace wsi {

namespace {

std::string split_text(const SplitSpec& s) {
  std::string t;
  for (const auto& [name, fraction] : s.parts) t += (t.empty() ? "" : ",") + name + "=" + number_text(fraction);
  return t;
}

const char* balance_text(BalanceMode m) {
  const char* names[] = {"none", "undersample", "oversample"};
  return names[static_cast<int>(m)];
}

// extract's own per-slide parameters (labels, --mpp), without the nested grid and tissue tables.
const ParamTable<ExtractParams>& own_slide_params() {
  using P = ExtractParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> own = {
        word<P>("--mask-values", "Mask value map, e.g. 0=normal,1=tumour,255=tumour,2=exclude (default: non-zero = tumour)",
                [](const P& p) { return p.mask_values.to_string(); },
                [](P& p, const std::string& s) { p.mask_values = MaskValueMap::parse(s); }),
        word<P>("--exclusion", "Excluded areas: normal (not tumour) or skip (drop the patch)",
                [](const P& p) { return std::string(p.exclusion == ExclusionPolicy::normal ? "normal" : "skip"); },
                [](P& p, const std::string& s) { p.exclusion = parse_exclusion_policy(s); }),
        flag(&P::allow_unlabelled, "--unlabelled", "Allow slides without ground truth (label 0)"),
        flag(&P::allow_no_tumour, "--allow-no-tumour",
             "Accept annotations without a tumour shape (the slide is then all normal); otherwise such a slide "
             "fails with the groups found"),
        word<P>("--label-rule", "center[:N] (PCam), any, or fraction:T", [](const P& p) { return p.rule.to_string(); },
                [](P& p, const std::string& s) { p.rule = LabelRule::parse(s); }),
        param(&P::mpp_override, "--mpp",
              "Level-0 um per pixel of every slide, overriding their metadata (needed where it is missing)"),
    };
    own.back().check = [](const P& p) -> std::string {
      if (!p.mpp_override || (*p.mpp_override > 0 && std::isfinite(*p.mpp_override))) return {};
      return "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not " +
             number_text(*p.mpp_override);
    };
    return own;
  }();
  return table;
}

}  // namespace

const ParamTable<ExtractParams>& extract_slide_param_table() {
  using P = ExtractParams;
  static const ParamTable<P> table = [] {
    ParamTable<GridParams> t = {param(&GridParams::patch_size, "--patch-size", "Patch side in target pixels")};
    ParamTable<P> out = nested(&P::grid, t);
    append(out, nested(&P::grid, grid_param_table()));
    out[0].group = "Patch grid";
    append(out, nested(&P::annotation_options,
                       ParamTable<AnnotationOptions>{param(
                           &AnnotationOptions::coordinate_scale, "--annotation-scale",
                           "Divide annotation coordinates by this (32 for level-0 Camelyon annotations on a level-5 "
                           "export)")}));
    append(out, own_slide_params());
    append(out, nested(&P::balance, ParamTable<BalanceParams>{param(&BalanceParams::max_per_slide, "--max-per-slide",
                                                                     "Cap patches per slide (0 = none)")}));
    append(out, nested(&P::tissue, tissue_param_table()));
    return out;
  }();
  return table;
}

const ParamTable<ExtractParams>& dataset_param_table() {
  using P = ExtractParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t = {
          word<P>("--format", "pcam (HDF5 x/y + meta CSV) or kaggle (train/<sha1>.tif + labels CSV)",
                  [](const P& p) { return std::string(p.format == DatasetFormat::pcam ? "pcam" : "kaggle"); },
                  [](P& p, const std::string& s) { p.format = parse_dataset_format(s); }),
          param(&P::prefix, "--prefix", "File prefix of the pcam files"),  // checked below
          word<P>("--split",
                  "Splits by slide, e.g. train=0.8,valid=0.1,test=0.1 (a slide's split comes from its name and "
                  "--seed, so it never moves as the archive grows)",
                  [](const P& p) { return split_text(p.split); },
                  [](P& p, const std::string& s) { p.split = SplitSpec::parse(s); }),
          word<P>("--balance", "none, undersample or oversample (over all slides of a split)",
                  [](const P& p) { return std::string(balance_text(p.balance.mode)); },
                  [](P& p, const std::string& s) { p.balance.mode = parse_balance_mode(s); }),
          word<P>("--ratio", "positives:negatives after balancing",
                  [](const P& p) { return number_text(p.balance.ratio) + ":1"; },
                  [](P& p, const std::string& s) { p.balance.ratio = parse_ratio(s); }),
    };
    append(t, nested(&P::balance,
                     ParamTable<BalanceParams>{
                         param(&BalanceParams::seed, "--seed", "Seed of every random choice (splits, caps, balancing)"),
                         flag(&BalanceParams::augment, "--augment",
                              "Give oversampled copies a random flip / 90-degree rotation")}));
    t[1].check = [](const P& p) -> std::string {
      if (!p.prefix.empty() && p.prefix.find_first_of("/\\") == std::string::npos) return {};
      return "--prefix '" + p.prefix + "' must be a plain file name part (no '/')";
    };
    return grouped(std::move(t), "Dataset");
  }();
  return table;
}

void ExtractParams::validate() const {
  tissue.validate();
  grid.validate();
  if (const std::string m = first_problem(own_slide_params(), *this); !m.empty()) throw ConfigError(m);
  balance.validate();
  if (const std::string m = first_problem(dataset_param_table(), *this); !m.empty()) throw UsageError(m);
  if (out_dir.empty()) throw UsageError("no output directory given (-o DIR)");
  if (chunk < 1) throw ConfigError("chunk must be >= 1");
  if (threads < 0) throw ConfigError("threads must be >= 0");
}

}  // namespace wsi
