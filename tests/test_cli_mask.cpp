// `wsi-heatmap mask` as a user meets it: outputs, sidecar, overlay, exit codes and messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace {

using test::testdata;

// Width and height from a PNG's IHDR chunk (bytes 16..23, big-endian).
std::pair<int64_t, int64_t> png_size(const std::filesystem::path& p) {
  const std::string b = test::slurp(p);
  if (b.size() < 24 || b.compare(1, 3, "PNG") != 0) return {-1, -1};
  auto be32 = [&](size_t at) {
    int64_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
    return v;
  };
  return {be32(16), be32(20)};
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(CliMask, WritesPngSidecarAndDefaultOverlay) {
  test::ScratchDir dir;
  const auto slide = testdata("slides/cmu-1-small-region.svs");
  const auto out = dir / "cmu.png";
  const test::CliResult r = test::run_wsi({"mask", slide.string(), "-o", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_EQ(lines(r.out), 1u) << r.out;
  EXPECT_NE(r.out.find("tissue"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("threshold"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16.000 um/px"), std::string::npos) << r.out;

  const auto j = nlohmann::json::parse(test::slurp(dir / "cmu.png.json"));
  EXPECT_EQ(j["slide"], slide.string());
  EXPECT_EQ(j["width"], 70);   // ceil(2220 px x 0.499 um / 16 um)
  EXPECT_EQ(j["height"], 93);  // ceil(2967 x 0.499 / 16)
  EXPECT_NEAR(j["downsample_x"].get<double>(), 16.0 / 0.499, 0.01);
  EXPECT_EQ(j["mpp"], 16.0);
  EXPECT_EQ(j["source_level"], 0);
  EXPECT_TRUE(j["params"].contains("closing_um"));
  EXPECT_GT(j["stats"]["tissue_fraction"].get<double>(), 0.2);
  EXPECT_NE(j["frame"].get<std::string>().find("level-0"), std::string::npos);
  EXPECT_EQ(png_size(out), std::make_pair(int64_t{70}, int64_t{93}));
  EXPECT_EQ(png_size(dir / "cmu.overlay.png"), std::make_pair(int64_t{70}, int64_t{93}));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

TEST(CliMask, WritesATiledTiffWithItsResolutionAndJsonSummary) {
  test::ScratchDir dir;
  const auto out = dir / "m.tiff", overlay = dir / "look.png";
  const test::CliResult r =
      test::run_wsi({"mask", testdata("slides/cmu-1-small-region.svs").string(), "-o", out.string(), "--overlay",
                     overlay.string(), "--mask-mpp", "8", "--json", "--no-pen-removal"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["width"], 139);
  EXPECT_EQ(j["overlay"], overlay.string());
  EXPECT_EQ(j["stats"]["pen_pixels"], 0);  // the sidecar's JSON, with the paths
  EXPECT_TRUE(std::filesystem::exists(overlay));
  EXPECT_FALSE(nlohmann::json::parse(test::slurp(dir / "m.tiff.json"))["params"]["remove_pen"].get<bool>());
  // The mask is a slide too: OpenSlide opens it and finds 8 um/px in its TIFF resolution.
  const Slide mask(out);
  EXPECT_EQ(mask.width(), 139);
  EXPECT_EQ(mask.height(), 186);
  ASSERT_TRUE(mask.mpp().known());
  EXPECT_NEAR(mask.mpp().x, 8.0, 1e-3);
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

TEST(CliMask, MppOverrideLetsASlideWithoutMppBeMasked) {
  test::ScratchDir dir;
  const test::CliResult r = test::run_wsi({"mask", testdata("slides/tcga-cr-7395-01a-01-ts1.svs").string(), "--mpp",
                                           "1.0", "-o", (dir / "t.png").string(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["width"], 278);       // ceil(4443 x 1.0 / 16)
  EXPECT_EQ(j["source_level"], 1);  // 2 um/px is the coarsest level finer than 16
  EXPECT_GT(j["stats"]["tissue_fraction"].get<double>(), 0.4);
}

struct BadCase {
  std::vector<std::string> args;
  int code;
  std::string needle;
};

TEST(CliMask, EachBadInputGivesOneClearLineAndNoFiles) {
  test::ScratchDir dir;
  const std::string cmu = testdata("slides/cmu-1-small-region.svs").string();
  const std::string tcga = testdata("slides/tcga-cr-7395-01a-01-ts1.svs").string();
  const std::string png = (dir / "m.png").string();
  const std::vector<BadCase> cases = {
      {{"mask", cmu, "-o", (dir / "m.jpg").string()}, 2, "unknown extension '.jpg'; name it .png or .tif/.tiff"},
      {{"mask", cmu, "-o", (dir / "m").string()}, 2, "name it .png or .tif/.tiff"},
      {{"mask", cmu, "-o", png, "--overlay", (dir / "o.jpg").string()}, 2, "the overlay is a PNG"},
      {{"mask", tcga, "-o", png}, 1, "--mpp"},
      {{"mask", cmu, "-o", png, "--mask-mpp", "4"}, 2, "--mask-mpp must be in 8..32 µm per mask pixel, not 4"},
      {{"mask", cmu, "-o", png, "--min-saturation", "2"}, 2, "--min-saturation must be in 0..1, not 2"},
      {{"mask", cmu, "-o", png, "--mpp", "0"}, 2, "--mpp must be a positive number"},
      {{"mask", testdata("nope.svs").string(), "-o", png}, 2, "no such file"},
      {{"mask", cmu}, 2, "--out is required"},
      {{"mask", cmu, "-o", "/nonexistent-dir/m.png"}, 1, "/nonexistent-dir/m.png"},
  };
  for (const auto& c : cases) {
    const test::CliResult r = test::run_wsi(c.args);
    std::string what;
    for (const auto& a : c.args) what.append(a).append(" ");
    EXPECT_FALSE(r.signalled) << what;
    EXPECT_EQ(r.code, c.code) << what << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1u) << what << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("wsi-heatmap: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << what << "\n" << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a failed run left files behind";
}

}  // namespace
}  // namespace wsi
