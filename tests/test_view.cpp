// `wsi-heatmap view` without a browser (ctest -L view): the viewer folder's layers cover the slide
// (checked on the tiles' pixels, not by eye), the probability tiles are the raster's exact values,
// the histogram agrees with the summary, reruns replace a viewer whole, --no-slide, heatmap --html
// and a batch folder's index. The browser's side is tests/view_browser.cpp.
#include <gtest/gtest.h>
#include <unistd.h>
#include <vips/vips8>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using vips::VImage;

constexpr int64_t kSide = 4096;  // level-0 pixels at 0.5 µm: 2048 µm
constexpr double kMpp = 0.5;

std::string run_ok(const std::vector<std::string>& args) {
  const test::CliResult r = test::run_wsi(args);
  if (r.code != 0) throw std::runtime_error("wsi-heatmap " + args[0] + " failed: " + r.err);
  return r.out;
}

// A generated slide and the demo model's results, made once per build (build/fixtures/view).
const fs::path& fixture() {
  static const fs::path dir = [] {
    if (VIPS_INIT("test_view")) throw std::runtime_error("vips init");
    const fs::path d = test::fixture_dir() / "view";
    if (fs::is_regular_file(d / "results" / "s.summary.json")) return d;
    const fs::path tmp = test::fixture_dir() / ("view.tmp-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    run_ok({"synth", "--out", (tmp / "s.tif").string(), "--size", "4096x4096", "--mpp", "0.5", "--tumours", "2",
            "--seed", "3", "--mask", (tmp / "s_mask.tif").string()});
    // The summary names the slide as given: its final place, so the fixture can move into it.
    fs::create_directories(d);
    std::error_code ec;
    fs::rename(tmp / "s.tif", d / "s.tif", ec);
    fs::rename(tmp / "s_mask.tif", d / "s_mask.tif", ec);
    run_ok({(d / "s.tif").string(), "-o", (tmp / "results").string(), "-q", "--threads", "2"});
    fs::rename(tmp / "results", d / "results", ec);  // another process may have won: same content
    fs::remove_all(tmp, ec);
    return d;
  }();
  return dir;
}

json read_data_js(const fs::path& viewer) {
  std::string text = test::slurp(viewer / "data.js");
  const std::string prefix = "window.WSI_VIEW = ";
  EXPECT_EQ(text.rfind(prefix, 0), 0u);
  text = text.substr(prefix.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == ';')) text.pop_back();
  return json::parse(text);
}

// The full-resolution level of a Deep Zoom pyramid, put together from its tiles.
VImage top_level(const fs::path& viewer, const json& layer) {
  const int w = layer["width"], h = layer["height"], ts = layer["tileSize"], ov = layer["overlap"];
  const int level = static_cast<int>(std::ceil(std::log2(std::max(w, h))));
  const std::string base = (viewer / layer["url"].get<std::string>()).string() + std::to_string(level) + "/";
  const std::string ext = layer["format"];
  VImage out;
  for (int j = 0; j * ts < h; ++j)
    for (int i = 0; i * ts < w; ++i) {
      VImage t = VImage::new_from_file((base + std::to_string(i) + "_" + std::to_string(j) + "." + ext).c_str());
      const int left = i ? ov : 0, top = j ? ov : 0;  // a tile starts `overlap` pixels early
      t = t.crop(left, top, std::min(ts, w - i * ts), std::min(ts, h - j * ts));
      out = (i == 0 && j == 0) ? VImage::black(w, h, VImage::option()->set("bands", t.bands())).insert(t, 0, 0)
                               : out.insert(t, i * ts, j * ts);
    }
  return out;
}

std::vector<uint8_t> pixels(const VImage& im) {
  size_t n = 0;
  auto* mem = static_cast<uint8_t*>(im.cast(VIPS_FORMAT_UCHAR).write_to_memory(&n));
  std::vector<uint8_t> v(mem, mem + n);
  g_free(mem);
  return v;
}

TEST(ViewCli, EveryLayerCoversTheSlideWithinOneOfItsPixels) {
  test::ScratchDir out;
  const fs::path viewer = out / "v";
  const std::string said = run_ok({"view", (fixture() / "results").string(), "-o", viewer.string(), "-q"});
  EXPECT_NE(said.find("wrote the viewer " + (viewer / "index.html").string()), std::string::npos) << said;
  const json d = read_data_js(viewer);
  EXPECT_EQ(d["slide"]["width"], kSide);
  EXPECT_EQ(d["slide"]["mpp"], kMpp);
  ASSERT_EQ(d["layers"].size(), 3u);
  for (const json& L : d["layers"]) {
    SCOPED_TRACE(L["id"].get<std::string>());
    const double w = L["width"], h = L["height"], world = L["worldWidth"];
    const double pixel = world / w;  // level-0 pixels per layer pixel
    EXPECT_NEAR(world, kSide, pixel);
    EXPECT_NEAR(h * pixel, kSide, pixel);
    // The .dzi beside the tiles says the same size as data.js.
    const std::string dzi = test::slurp(viewer / "tiles" / (L["id"].get<std::string>() + ".dzi"));
    EXPECT_NE(dzi.find("Width=\"" + std::to_string(static_cast<int>(w)) + "\""), std::string::npos) << dzi;
  }
  // The slide's tiles at the overlay's 8 µm/px (the default): 16 level-0 pixels each.
  EXPECT_EQ(d["tile_mpp"], 8.0);
  EXPECT_EQ(d["layers"][0]["width"], kSide / 16);
  EXPECT_TRUE(fs::is_regular_file(viewer / "assets" / "openseadragon.min.js"));
  EXPECT_TRUE(fs::is_regular_file(viewer / "assets" / "openseadragon.LICENSE.txt"));
  EXPECT_TRUE(test::partial_files(out.path()).empty());
}

TEST(ViewCli, ProbabilityTilesHoldTheRasterExactlyAndSlideTilesLineUpWithTheSlide) {
  test::ScratchDir out;
  const fs::path viewer = out / "v";
  run_ok({"view", (fixture() / "results").string(), "-o", viewer.string(), "-q"});
  const json d = read_data_js(viewer);
  // Probability: PNG tiles, the raster's grey values unchanged (the page thresholds them).
  const VImage prob = VImage::new_from_file((fixture() / "results" / "s.prob.tif").c_str());
  const VImage tiles = top_level(viewer, d["layers"][1]);
  ASSERT_EQ(tiles.width(), prob.width());
  EXPECT_EQ(pixels(tiles.extract_band(0)), pixels(prob));
  // Slide: the tiles match the slide shrunk 16x, and match it worse one pixel off in any direction.
  const VImage slide = top_level(viewer, d["layers"][0]).extract_band(0, VImage::option()->set("n", 3));
  const VImage ref = VImage::new_from_file((fixture() / "s.tif").c_str()).extract_band(0, VImage::option()->set("n", 3)).shrink(16, 16);
  ASSERT_EQ(slide.width(), ref.width());
  const auto diff = [&](int dx, int dy) {
    const int w = slide.width() - 4, h = slide.height() - 4;
    return (slide.crop(2, 2, w, h).cast(VIPS_FORMAT_FLOAT) - ref.crop(2 + dx, 2 + dy, w, h).cast(VIPS_FORMAT_FLOAT))
        .abs()
        .avg();
  };
  const double aligned = diff(0, 0);
  EXPECT_LT(aligned, 6) << "JPEG tiles of the slide differ from the slide by more than compression";
  for (const auto& [dx, dy] : std::vector<std::pair<int, int>>{{1, 0}, {-1, 0}, {0, 1}, {0, -1}})
    EXPECT_GT(diff(dx, dy), aligned * 1.5) << "shifted by " << dx << "," << dy;
}

TEST(ViewCli, HistogramAgreesWithTheSummarysPatchCounts) {
  test::ScratchDir out;
  run_ok({"view", (fixture() / "results").string(), "-o", (out / "v").string(), "-q"});
  const json d = read_data_js(out / "v");
  const json& s = d["summary"];
  const std::vector<int64_t> bins = d["histogram"]["bins"];
  ASSERT_EQ(bins.size(), 100u);
  int64_t total = 0, above = 0;
  for (size_t k = 0; k < bins.size(); ++k) {
    total += bins[k];
    if (static_cast<double>(k) >= s["parameters"]["threshold"].get<double>() * 100) above += bins[k];
  }
  EXPECT_EQ(total, s["patches"]["processed"]);
  EXPECT_EQ(above, s["patches"]["tumour"]);
  const double cell_mm = s["parameters"]["stride_level0"].get<double>() * kMpp / 1000;
  EXPECT_NEAR(static_cast<double>(above) * d["histogram"]["cell_area_mm2"].get<double>(), s["tumour_area_mm2"].get<double>(), 1e-9);
  EXPECT_NEAR(d["histogram"]["cell_area_mm2"].get<double>(), cell_mm * cell_mm, 1e-12);
  EXPECT_EQ(d["regions"], json::parse(test::slurp(fixture() / "results" / "s.regions.geojson")));
}

TEST(ViewCli, RerunReplacesTheViewerWholeAndNeverAFolderThatIsNotOne) {
  test::ScratchDir out;
  const fs::path viewer = out / "v";
  run_ok({"view", (fixture() / "results").string(), "-o", viewer.string(), "-q", "--tile-mpp", "4"});
  std::ofstream(viewer / "stray.txt") << "from before\n";
  run_ok({"view", (fixture() / "results").string(), "-o", viewer.string(), "-q"});
  EXPECT_FALSE(fs::exists(viewer / "stray.txt")) << "the earlier viewer was not replaced whole";
  EXPECT_EQ(read_data_js(viewer)["tile_mpp"], 8.0);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(out.path())) entries.push_back(e.path().filename().string());
  EXPECT_EQ(entries, std::vector<std::string>{"v"}) << "temporaries or the old viewer left beside it";
  // A folder of other files is never replaced.
  fs::create_directories(out / "mine");
  std::ofstream(out / "mine" / "notes.txt") << "keep\n";
  const test::CliResult r = test::run_wsi({"view", (fixture() / "results").string(), "-o", (out / "mine").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(fs::is_regular_file(out / "mine" / "notes.txt"));
}

TEST(ViewCli, NoSlideShowsTheOverlayWhenTheSlideIsNotAtHand) {
  test::ScratchDir out;
  // The results copied elsewhere without their slide, as to a laptop.
  fs::copy(fixture() / "results", out / "results", fs::copy_options::recursive);
  fs::remove_all(out / "results" / "s.viewer");
  json s = json::parse(test::slurp(out / "results" / "s.summary.json"));
  s["slide"]["path"] = (out / "gone.tif").string();
  std::ofstream(out / "results" / "s.summary.json") << s.dump(2);
  const test::CliResult missing = test::run_wsi({"view", (out / "results").string(), "-q"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--no-slide"), std::string::npos) << missing.err;
  run_ok({"view", (out / "results").string(), "--no-slide", "-q"});
  const json d = read_data_js(out / "results" / "s.viewer");
  EXPECT_EQ(d["base"], "overlay");
  const json& L = d["layers"][0];
  EXPECT_NEAR(L["worldWidth"].get<double>(), kSide, L["worldWidth"].get<double>() / L["width"].get<double>());
}

TEST(ViewCli, HeatmapHtmlWritesTheViewerBesideTheResults) {
  test::ScratchDir out;
  const std::string said =
      run_ok({(fixture() / "s.tif").string(), "-o", out.path().string(), "-q", "--threads", "2", "--html", "--no-gradcam"});
  EXPECT_NE(said.find("wrote the viewer " + (out / "s.viewer" / "index.html").string()), std::string::npos) << said;
  const json d = read_data_js(out / "s.viewer");
  ASSERT_EQ(d["layers"].size(), 2u) << "no Grad-CAM layer without Grad-CAM";
  EXPECT_EQ(d["layers"][1]["id"], "prob");
}

TEST(ViewCli, BatchFolderGetsAnIndexAndViewersThatARerunKeeps) {
  test::ScratchDir dir;
  fs::create_directories(dir / "in");
  fs::copy_file(fixture() / "s.tif", dir / "in" / "a.tif");
  std::ofstream(dir / "in" / "broken.tif") << "not a slide\n";
  EXPECT_EQ(test::run_wsi({"batch", (dir / "in").string(), "-o", (dir / "out").string(), "-q", "--threads", "2",
                           "--no-gradcam"}).code, 1);
  const std::string first = run_ok({"view", (dir / "out").string(), "-q"});
  EXPECT_NE(first.find("2 slides (1 done, 1 failed or skipped), 1 viewers written, 0 up to date"), std::string::npos) << first;
  EXPECT_NE(first.find("broken failed: "), std::string::npos) << first;
  EXPECT_TRUE(fs::is_regular_file(dir / "out" / "a" / "a.viewer" / "index.html"));
  const std::string index = test::slurp(dir / "out" / "index.html");
  EXPECT_NE(index.find("\"viewer\":\"a/a.viewer/index.html\""), std::string::npos);
  EXPECT_EQ(index.find("</script>\n<script>\nwindow"), std::string::npos);
  const std::string second = run_ok({"view", (dir / "out").string(), "-q"});
  EXPECT_NE(second.find("0 viewers written, 1 up to date"), std::string::npos) << second;
  // Elsewhere (-o): the index and one viewer folder per slide, linked relatively.
  run_ok({"view", (dir / "out").string(), "-o", (dir / "web").string(), "-q"});
  EXPECT_TRUE(fs::is_regular_file(dir / "web" / "a" / "index.html"));
  EXPECT_NE(test::slurp(dir / "web" / "index.html").find("\"viewer\":\"a/index.html\""), std::string::npos);
  EXPECT_EQ(read_data_js(dir / "web" / "a")["index"], "../index.html");
}

}  // namespace
}  // namespace wsi
