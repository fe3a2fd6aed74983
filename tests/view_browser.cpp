// The viewer in a real browser (ctest -L browser): Debian's Chromium, headless, driven over the
// DevTools protocol (tests/browser.hpp). A generated slide with a known tumour mask (`synth`) runs
// through the bundled demo model, evaluate-slides and `view`; the page is opened from file:// and
// its screenshots are compared at known slide coordinates. Screenshots and the viewer are kept in
// the build folder (browser/) for a person to look at. Chromium missing: skipped, or failed under
// CI=true (tools/setup.sh test installs it).
#include <gtest/gtest.h>
#include <vips/vips8>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "browser.hpp"
#include "test_support.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using vips::VImage;

#define REQUIRE_CHROMIUM()                                                                              \
  if (test::chromium_path().empty())                                                                    \
  WSI_SKIP_MISSING() << "Chromium is needed for the browser tests (Debian: apt-get install chromium; " \
                        "tools/setup.sh test installs it)"

constexpr int kWidth = 1200, kHeight = 800;
constexpr int64_t kSide = 4096;  // the generated slide, level-0 pixels at 0.5 µm

// Where screenshots and the kept viewer go: build/browser/.
fs::path out_dir() {
  const fs::path d = fs::path(WSI_FIXTURE_DIR).parent_path() / "browser";
  fs::create_directories(d);
  return d;
}

std::string run_ok(const std::vector<std::string>& args) {
  const test::CliResult r = test::run_wsi(args);
  if (r.code != 0) throw std::runtime_error("wsi-heatmap " + args[0] + " failed: " + r.err);
  return r.out;
}

// A slide with two generated tumours, its mask, the demo model's results and their evaluation.
struct Results {
  test::ScratchDir dir;
  fs::path slide, mask, results;
  json summary, regions;
  Results() {
    slide = dir / "s.tif";
    mask = dir / "s_mask.tif";
    results = dir / "results";
    run_ok({"synth", "--out", slide.string(), "--size", "4096x4096", "--mpp", "0.5", "--tumours", "2", "--seed", "3",
            "--mask", mask.string()});
    run_ok({slide.string(), "-o", results.string(), "-q", "--threads", "2"});
    run_ok({"evaluate-slides", "--results", results.string(), "--truth", mask.string(), "--slides", slide.string()});
    summary = json::parse(test::slurp(results / "s.summary.json"));
    regions = json::parse(test::slurp(results / "s.regions.geojson"));
  }
};

// A screenshot's pixels.
struct Shot {
  int width = 0, height = 0, bands = 0;
  std::vector<uint8_t> px;
  explicit Shot(const std::string& png, const std::string& keep_as = "") {
    static const bool started = VIPS_INIT("view_browser") == 0;
    if (!started) throw std::runtime_error("libvips did not start");
    if (!keep_as.empty()) std::ofstream(out_dir() / keep_as, std::ios::binary) << png;
    VImage im = VImage::new_from_buffer(png.data(), png.size(), "");
    width = im.width();
    height = im.height();
    bands = im.bands();
    size_t n = 0;
    void* mem = im.cast(VIPS_FORMAT_UCHAR).write_to_memory(&n);
    px.assign(static_cast<uint8_t*>(mem), static_cast<uint8_t*>(mem) + n);
    g_free(mem);
  }
  const uint8_t* at(int x, int y) const { return &px[(static_cast<size_t>(y) * width + x) * bands]; }
};

// Mean absolute difference of two screenshots over the (2r+1)² box around (x, y), all channels.
double box_diff(const Shot& a, const Shot& b, int x, int y, int r = 4) {
  double sum = 0;
  int n = 0;
  for (int v = y - r; v <= y + r; ++v)
    for (int u = x - r; u <= x + r; ++u)
      for (int c = 0; c < 3; ++c, ++n) sum += std::abs(a.at(u, v)[c] - b.at(u, v)[c]);
  return sum / n;
}

struct PagePoint {
  int x = 0, y = 0;
};
PagePoint page_point(test::Browser& b, double x, double y) {
  const json p = b.eval("wsiView.pagePoint(" + std::to_string(x) + "," + std::to_string(y) + ")");
  return {static_cast<int>(std::lround(p["x"].get<double>())), static_cast<int>(std::lround(p["y"].get<double>()))};
}

// Opens a page from file:// and waits until every visible layer's tiles are drawn.
void open_viewer(test::Browser& b, const fs::path& page) {
  b.navigate("file://" + fs::absolute(page).string());
  ASSERT_TRUE(b.wait_for("window.wsiView && wsiView.ready === true")) << "the viewer did not finish loading";
  b.settle();
}

void set_control(test::Browser& b, const std::string& id, const std::string& js_value) {
  b.eval("(() => { const e = document.getElementById('" + id + "'); e.value = " + js_value +
         "; e.dispatchEvent(new Event('input')); })()");
}

void click(test::Browser& b, const std::string& id) {
  b.eval("document.getElementById('" + id + "').click()");
  ASSERT_TRUE(b.wait_for("wsiView.ready === true"));
  b.settle();
}

void expect_offline_and_clean(const test::Browser& b) {
  for (const std::string& e : b.errors()) ADD_FAILURE() << "the page reported an error: " << e;
  for (const std::string& url : b.requests())
    EXPECT_EQ(url.rfind("file://", 0), 0u) << "a request that is not a local file: " << url;
  EXPECT_FALSE(b.requests().empty());
}

// The row of NAME.patches.csv whose probability lies in (lo, hi) and is highest: its centre.
std::pair<double, double> patch_centre_between(const fs::path& csv, double lo, double hi, double* p_out) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  double best = -1, bx = 0, by = 0;
  while (std::getline(in, line)) {
    double x, y, w, h, p;
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf", &x, &y, &w, &h, &p) != 5) continue;
    if (p > lo && p < hi && p > best) best = p, bx = x + w / 2, by = y + h / 2;
  }
  *p_out = best;
  return {bx, by};
}

TEST(ViewBrowser, PageLoadsOfflineWithEveryLayerAndNoErrors) {
  REQUIRE_CHROMIUM();
  const Results r;
  const fs::path viewer = out_dir() / "viewer";  // replaced whole on every run
  const test::CliResult v = test::run_wsi({"view", r.results.string(), "-o", viewer.string(), "-q"});
  ASSERT_EQ(v.code, 0) << v.err;
  test::ScratchDir profile;
  test::Browser b(test::chromium_path(), profile.path(), kWidth, kHeight);
  open_viewer(b, viewer / "index.html");
  click(b, "layer-cam");  // Grad-CAM is off at first
  const json layers = b.eval("wsiView.layers()");
  ASSERT_EQ(layers.size(), 3u);
  for (const json& l : layers) {
    EXPECT_TRUE(l["on"].get<bool>()) << l;
    EXPECT_TRUE(l["loaded"].get<bool>()) << l;
  }
  // The summary, the regions, the histogram and evaluate-slides' FROC curve are in the page.
  EXPECT_EQ(b.eval("document.getElementById('summary').textContent.includes('Slide score')"), true);
  EXPECT_EQ(b.eval("document.querySelectorAll('#regions-g path').length"), r.regions["features"].size());
  EXPECT_GT(b.eval("document.querySelectorAll('#histogram rect').length").get<int>(), 0);
  EXPECT_EQ(b.eval("[...document.querySelectorAll('img.plot')].filter(i => i.complete && i.naturalWidth > 0).length"), 1);
  // The scale bar's length is the length it says, at the viewport's current zoom.
  const json bar = b.eval(
      "({px: document.getElementById('scalebar-bar').getBoundingClientRect().width,"
      " label: document.getElementById('scalebar-label').textContent,"
      " s: wsiView.viewer.viewport.deltaPixelsFromPoints(new OpenSeadragon.Point(1, 0), true).x})");
  const std::string label = bar["label"];
  double um = std::stod(label) * (label.find("mm") != std::string::npos ? 1000 : 1);
  const double um_per_px = r.summary["slide"]["mpp"].get<double>() / bar["s"].get<double>();
  EXPECT_NEAR(bar["px"].get<double>() * um_per_px, um, um * 0.03 + 2 * um_per_px) << label;
  Shot(b.screenshot(), "viewer-all-layers.png");
  expect_offline_and_clean(b);
}

TEST(ViewBrowser, LayerTogglesAndSlidersChangeThePixels) {
  REQUIRE_CHROMIUM();
  const Results r;
  ASSERT_EQ(test::run_wsi({"view", r.results.string(), "-q"}).code, 0);
  test::ScratchDir profile;
  test::Browser b(test::chromium_path(), profile.path(), kWidth, kHeight);
  open_viewer(b, r.results / "s.viewer" / "index.html");
  const double threshold = r.summary["parameters"]["threshold"];
  // A cell called tumour (the highest detection) and one below the threshold but above 0.05.
  std::ifstream froc(r.results / "s.froc.csv");
  double p_hot = 0, hx = 0, hy = 0;
  char comma;
  froc >> p_hot >> comma >> hx >> comma >> hy;
  ASSERT_GE(p_hot, threshold);
  double p_mid = 0;
  const auto [mx, my] = patch_centre_between(r.results / "s.patches.csv", 0.06, threshold - 0.05, &p_mid);
  ASSERT_GT(p_mid, 0) << "the fixture has no cell between 0.06 and the threshold";
  const PagePoint hot = page_point(b, hx, hy), mid = page_point(b, mx, my);

  const Shot base(b.screenshot(), "toggle-0-base.png");
  click(b, "layer-prob");
  const Shot no_prob(b.screenshot(), "toggle-1-probability-off.png");
  EXPECT_GT(box_diff(base, no_prob, hot.x, hot.y), 20) << "hiding the probability layer left the tumour's pixels";
  EXPECT_LT(box_diff(base, no_prob, mid.x, mid.y), 2) << "a cell below the threshold was coloured";
  click(b, "layer-prob");
  const Shot again(b.screenshot());
  EXPECT_LT(box_diff(base, again, hot.x, hot.y), 2) << "showing the layer again did not restore it";

  // The threshold re-colours live: down to 0.05 the cell at p_mid is coloured, the hot one stays.
  set_control(b, "threshold", "0.05");
  b.settle();
  const Shot low(b.screenshot(), "toggle-2-threshold-0.05.png");
  EXPECT_GT(box_diff(base, low, mid.x, mid.y), 15) << "p=" << p_mid << " stayed uncoloured at threshold 0.05";
  EXPECT_LT(box_diff(base, low, hot.x, hot.y), 2);
  EXPECT_EQ(b.eval("document.getElementById('threshold-value').textContent"), "0.05");
  set_control(b, "threshold", std::to_string(threshold));
  b.settle();

  // Opacity 0 hides the heatmap: the same pixels as without the layer.
  set_control(b, "opacity", "0");
  b.settle();
  const Shot clear(b.screenshot(), "toggle-3-opacity-0.png");
  EXPECT_LT(box_diff(no_prob, clear, hot.x, hot.y), 2);
  set_control(b, "opacity", "1");
  b.settle();
  const Shot opaque(b.screenshot(), "toggle-4-opacity-1.png");
  EXPECT_GT(box_diff(base, opaque, hot.x, hot.y), 5) << "opacity 1 looks like opacity 0.6";
  EXPECT_LT(box_diff(no_prob, opaque, 340, 40), 2) << "an opaque heatmap hid the slide where it is transparent";

  click(b, "layer-cam");
  const Shot cam(b.screenshot(), "toggle-5-gradcam.png");
  EXPECT_GT(box_diff(opaque, cam, hot.x, hot.y), 5) << "the Grad-CAM layer changed nothing over the tumour";
  expect_offline_and_clean(b);
}

TEST(ViewBrowser, RegionOutlineLiesOverTheKnownTumourAndHoverShowsItsProbabilities) {
  REQUIRE_CHROMIUM();
  const Results r;
  ASSERT_EQ(test::run_wsi({"view", r.results.string(), "-q"}).code, 0);
  ASSERT_GE(r.regions["features"].size(), 1u);
  test::ScratchDir profile;
  test::Browser b(test::chromium_path(), profile.path(), kWidth, kHeight);
  open_viewer(b, r.results / "s.viewer" / "index.html");
  click(b, "layer-slide");
  click(b, "layer-prob");
  const Shot outlines(b.screenshot(), "regions-outlines-only.png");

  // The mask at 1/16 (256 px): tumour where the mean is at least half (libvips started by Shot).
  constexpr int kShrink = 16;
  const VImage m = VImage::new_from_file(r.mask.c_str()).extract_band(0).shrink(kShrink, kShrink) > 127;
  const int mw = m.width(), mh = m.height();
  size_t n = 0;
  auto* mem = static_cast<uint8_t*>(m.cast(VIPS_FORMAT_UCHAR).write_to_memory(&n));
  const std::vector<uint8_t> mask(mem, mem + n);
  g_free(mem);
  // Page pixel -> level-0 pixel, from where the page puts two corners of the slide.
  const PagePoint a = page_point(b, 0, 0), c = page_point(b, kSide, kSide);
  const double sx = static_cast<double>(kSide) / (c.x - a.x), sy = static_cast<double>(kSide) / (c.y - a.y);
  // Every outline pixel (the outlines' cyan) lies within one grid cell of the generated tumour.
  const double cell = r.summary["parameters"]["stride_level0"];
  const int reach = static_cast<int>(std::ceil(cell / kShrink)) + 1;
  int outline = 0, near_tumour = 0;
  for (int y = 0; y < outlines.height; ++y)
    for (int x = 330; x < outlines.width; ++x) {
      const uint8_t* p = outlines.at(x, y);
      if (!(p[0] < 90 && p[1] > 170 && p[2] > 200)) continue;
      ++outline;
      const int u = static_cast<int>((x - a.x) * sx / kShrink), v = static_cast<int>((y - a.y) * sy / kShrink);
      bool found = false;
      for (int j = std::max(0, v - reach); j <= std::min(mh - 1, v + reach) && !found; ++j)
        for (int i = std::max(0, u - reach); i <= std::min(mw - 1, u + reach) && !found; ++i) found = mask[j * mw + i] != 0;
      near_tumour += found;
    }
  EXPECT_GT(outline, 200) << "no outline drawn";
  EXPECT_GE(near_tumour, outline * 0.95) << near_tumour << " of " << outline << " outline pixels near the tumour";

  // Hovering the highest detection (a cell of the tumour) shows its region's probabilities.
  std::ifstream froc(r.results / "s.froc.csv");
  double p = 0, hx = 0, hy = 0;
  char comma;
  froc >> p >> comma >> hx >> comma >> hy;
  ASSERT_NE(mask[static_cast<int>(hy / kShrink) * mw + static_cast<int>(hx / kShrink)], 0)
      << "the highest detection is not on the generated tumour";
  const PagePoint h = page_point(b, hx, hy);
  b.call("Input.dispatchMouseEvent", {{"type", "mouseMoved"}, {"x", h.x}, {"y", h.y}});
  b.settle();
  const std::string tip = b.eval("document.getElementById('tooltip').hidden ? '' : document.getElementById('tooltip').textContent");
  double best = 0;  // the region holding the detection has the slide's highest probability
  for (const json& f : r.regions["features"]) best = std::max(best, f["properties"]["measurements"]["max_probability"].get<double>());
  char expected[64];
  std::snprintf(expected, sizeof expected, "max probability %.3f", best);
  EXPECT_NE(tip.find(expected), std::string::npos) << tip;
  EXPECT_NE(tip.find("mean probability"), std::string::npos) << tip;
  EXPECT_EQ(b.eval("document.querySelectorAll('#regions-g path.hover').length"), 1);
  Shot(b.screenshot(), "regions-hover.png");
  expect_offline_and_clean(b);
}

TEST(ViewBrowser, BatchIndexListsEverySlideByScoreAndAFailedOneWithItsReason) {
  REQUIRE_CHROMIUM();
  test::ScratchDir dir;
  const fs::path in = dir / "in", out = dir / "out";
  fs::create_directories(in);
  run_ok({"synth", "--out", (in / "good.tif").string(), "--size", "2048x2048", "--mpp", "0.5", "--tumours", "1",
          "--seed", "5"});
  std::ofstream(in / "broken.tif") << "this is not a slide\n";
  const test::CliResult batch = test::run_wsi({"batch", in.string(), "-o", out.string(), "--html", "-q", "--threads", "2"});
  EXPECT_EQ(batch.code, 1) << "a failed slide makes the batch exit 1\n" << batch.err;
  ASSERT_TRUE(fs::is_regular_file(out / "index.html")) << batch.out << batch.err;
  ASSERT_TRUE(fs::is_regular_file(out / "good" / "good.viewer" / "index.html"));
  std::string reason;
  const json manifest = json::parse(test::slurp(out / "manifest.json"));
  for (const json& e : manifest["slides"])
    if (e["name"] == "broken") reason = e["reason"];
  ASSERT_FALSE(reason.empty());

  test::ScratchDir profile;
  test::Browser b(test::chromium_path(), profile.path(), kWidth, kHeight);
  b.navigate("file://" + (out / "index.html").string());
  ASSERT_TRUE(b.wait_for("document.querySelectorAll('#slides tbody tr').length === 2"));
  const char* rows_js =
      "[...document.querySelectorAll('#slides tbody tr')].map(tr => ({name: tr.dataset.name, status: tr.dataset.status,"
      " reason: (tr.querySelector('.reason') || {}).textContent || '', link: (tr.querySelector('a.viewer-link') || {}).href || '',"
      " thumb: !!tr.querySelector('img.thumb') && tr.querySelector('img.thumb').naturalWidth > 0}))";
  b.wait_for("[...document.querySelectorAll('img.thumb')].every(i => i.complete)");
  json rows = b.eval(rows_js);
  ASSERT_EQ(rows.size(), 2u);
  // Highest score first; the failed slide (no score) last, with the manifest's reason.
  EXPECT_EQ(rows[0]["name"], "good");
  EXPECT_EQ(rows[0]["status"], "done");
  EXPECT_TRUE(rows[0]["thumb"].get<bool>());
  EXPECT_NE(rows[0]["link"].get<std::string>().find("good/good.viewer/index.html"), std::string::npos);
  EXPECT_EQ(rows[1]["name"], "broken");
  EXPECT_EQ(rows[1]["status"], "failed");
  EXPECT_EQ(rows[1]["reason"], reason);
  EXPECT_EQ(rows[1]["link"], "");
  Shot(b.screenshot(), "batch-index.png");
  b.eval("document.querySelector('th[data-key=score]').click()");  // ascending: the failed one first
  EXPECT_EQ(b.eval(rows_js)[0]["name"], "broken");
  expect_offline_and_clean(b);

  // The link opens the slide's viewer, which links back to the index.
  b.navigate(rows[0]["link"]);
  ASSERT_TRUE(b.wait_for("window.wsiView && wsiView.ready === true"));
  EXPECT_EQ(b.eval("document.getElementById('back-link').href"), "file://" + (out / "index.html").string());
  expect_offline_and_clean(b);
}

}  // namespace
}  // namespace wsi
