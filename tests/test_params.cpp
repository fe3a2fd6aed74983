// Parameter tables (params.hpp): one spelling per parameter, JSON that round-trips, presets that
// take exactly the keys --print-config prints, and checks that name the flag.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/params_json.hpp"
#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/extract.hpp"
#include "wsi/heatmap.hpp"

// The statement throws `type` whose what() is exactly `msg`.
#define EXPECT_THROW_MSG(stmt, type, msg)          \
  try {                                            \
    stmt;                                          \
    ADD_FAILURE() << "no exception from " #stmt;   \
  } catch (const type& e) {                        \
    EXPECT_EQ(std::string(e.what()), msg);         \
  }

namespace wsi {
namespace {
namespace fs = std::filesystem;

template <class S>
void expect_one_spelling(const ParamTable<S>& table) {
  std::set<std::string> flags, keys;
  for (const Param<S>& p : table) {
    EXPECT_TRUE(flags.insert(p.flag).second) << p.flag << " is declared twice";
    EXPECT_TRUE(keys.insert(p.key).second) << p.key << " is declared twice";
    if (!p.negated) {
      EXPECT_EQ(p.key, key_of_flag(p.flag)) << p.flag;
    }
    EXPECT_FALSE(p.help.empty()) << p.flag;
  }
}

TEST(Params, EveryKeyIsItsFlagInSnakeCaseAndEveryFlagIsDeclaredOnce) {
  expect_one_spelling(heatmap_param_table());
  expect_one_spelling(extract_slide_param_table());
  expect_one_spelling(dataset_param_table());
  ParamTable<ExtractParams> both = extract_slide_param_table();
  append(both, dataset_param_table());
  expect_one_spelling(both);
  EXPECT_EQ(key_of_flag("--min-tissue"), "min_tissue");
  EXPECT_EQ(key_of_flag("---"), "");
}

TEST(Params, JsonOfChangedParametersReadsBackToTheSameValues) {
  HeatmapParams p;
  p.batch = 16;
  p.gradcam = false;
  p.grid.level = 2;
  p.grid.edge = EdgePolicy::pad;
  p.tissue.max_hole_um2 = 1e6;
  p.tissue.remove_pen = false;
  p.mpp_override = 0.5;
  const nlohmann::json j = detail::params_json(heatmap_param_table(), p);
  EXPECT_EQ(j["batch"], 16);
  EXPECT_EQ(j["gradcam"], false);
  EXPECT_EQ(j["remove_pen"], false);
  EXPECT_EQ(j["edge"], "pad");
  EXPECT_TRUE(j["target_mpp"].is_null());  // unset: the model's
  HeatmapParams q;
  for (const auto& param : heatmap_param_table()) detail::set_param_from_json(param, q, j[param.key], "test");
  EXPECT_EQ(detail::params_json(heatmap_param_table(), q), j);

  ExtractParams e;
  e.split = SplitSpec::parse("train=0.8,valid=0.2");
  e.balance.mode = BalanceMode::oversample;
  e.balance.ratio = 0.5;
  e.rule = LabelRule::parse("fraction:0.25");
  ParamTable<ExtractParams> all = extract_slide_param_table();
  append(all, dataset_param_table());
  const nlohmann::json je = detail::params_json(all, e);
  EXPECT_EQ(je["split"], "train=0.8,valid=0.2");
  EXPECT_EQ(je["ratio"], "0.5:1");
  ExtractParams f;
  for (const auto& param : all) detail::set_param_from_json(param, f, je[param.key], "test");
  EXPECT_EQ(detail::params_json(all, f), je);
}

TEST(Params, InfinityIsWrittenNullAndReadBackAsInfinity) {
  const TissueParams t;  // max_hole_um2 = inf: fill every hole
  const nlohmann::json j = detail::params_json(tissue_param_table(), t);
  EXPECT_TRUE(j["max_hole_um2"].is_null());
  TissueParams u;
  u.max_hole_um2 = 5;
  detail::set_param_from_json(*detail::find_param(tissue_param_table(), "max_hole_um2"), u, j["max_hole_um2"], "t");
  EXPECT_TRUE(std::isinf(u.max_hole_um2));
}

TEST(Params, ChecksNameTheFlagTheRangeAndTheValue) {
  TissueParams t;
  t.mask_mpp = 40;
  EXPECT_THROW_MSG(t.validate(), ConfigError, "--mask-mpp must be in 8..32 µm per mask pixel, not 40");
  HeatmapParams h;
  h.grid.target_mpp = 0.5;
  h.batch = 0;
  EXPECT_THROW_MSG(h.validate(), UsageError, "--batch must be in 1..4096, not 0");
  h.batch = 8;
  h.threshold = 0;
  EXPECT_THROW_MSG(h.validate(), UsageError, "--threshold must be in (0, 1], not 0");
  h.threshold = 0.5;
  h.grid.stride = 1000;
  EXPECT_THROW_MSG(h.validate(), UsageError, "--stride must be in 1..384 patch pixels (up to 4 patch sides), not 1000");
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

TEST(Params, PresetsTakeThePrintConfigKeysAndTheCommandLineWins) {
  test::ScratchDir dir;
  write(dir / "p.json", R"({"description": "x", "stride": 48, "min_tissue": 0.25, "edge": "pad", "batch": 8})");
  HeatmapParams p;
  apply_heatmap_preset(dir / "p.json", p, [](const std::string& flag) { return flag == "--batch"; });
  EXPECT_EQ(p.grid.stride, 48);
  EXPECT_DOUBLE_EQ(p.grid.min_tissue, 0.25);
  EXPECT_EQ(p.grid.edge, EdgePolicy::pad);
  EXPECT_EQ(p.batch, HeatmapParams{}.batch);  // given on the command line: kept
}

TEST(Params, PresetMistakesAreOneLineNamingTheFileAndKey) {
  test::ScratchDir dir;
  HeatmapParams p;
  const auto apply = [&](const std::string& text) {
    write(dir / "p.json", text);
    apply_heatmap_preset(dir / "p.json", p, {});
  };
  const std::string where = "preset " + (dir / "p.json").string();
  EXPECT_THROW_MSG(apply(R"({"min-tissue": 0.5})"), ConfigError,
                   where + ": unknown key \"min-tissue\"; write it \"min_tissue\"");
  EXPECT_THROW_MSG(apply(R"({"--stride": 48})"), ConfigError, where + ": unknown key \"--stride\"; write it \"stride\"");
  EXPECT_THROW_MSG(apply(R"({"-": 1})"), ConfigError,
                   where + ": unknown key \"-\" (keys are those wsi-heatmap heatmap --print-config prints, e.g. "
                           "\"min_tissue\"; the model, device and output are not preset)");
  EXPECT_THROW_MSG(apply(R"({"model": "m.pt"})"), ConfigError,
                   where + ": unknown key \"model\" (keys are those wsi-heatmap heatmap --print-config prints, e.g. "
                           "\"min_tissue\"; the model, device and output are not preset)");
  EXPECT_THROW_MSG(apply(R"({"stride": "wide"})"), ConfigError, where + ": \"stride\" must be a whole number, not \"wide\"");
  EXPECT_THROW_MSG(apply(R"({"stride": 4.5})"), ConfigError, where + ": \"stride\" must be a whole number, not 4.5");
  EXPECT_THROW_MSG(apply(R"({"float32": 1})"), ConfigError, where + ": \"float32\" must be true or false, not 1");
  EXPECT_THROW_MSG(apply(R"([1])"), ConfigError, where + " must be a JSON object of parameter keys and values");
  EXPECT_THROW_MSG(apply(R"({"edge": "middle"})"), UsageError, "unknown edge policy 'middle': use inside or pad");
}

TEST(Params, ShippedPresetsUseOnlyTableKeys) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(WSI_SOURCE_DIR) / "pipelines" / "presets")) {
    HeatmapParams p;
    EXPECT_NO_THROW(apply_heatmap_preset(e.path(), p, {})) << e.path();
    ++n;
  }
  EXPECT_GE(n, 2);
}

}  // namespace
}  // namespace wsi
