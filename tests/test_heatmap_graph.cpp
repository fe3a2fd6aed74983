// The heatmap's flow graph, plan and streaming writer without a slide file or LibTorch
// (src/heatmap/graph.hpp, plan.hpp, outputs.hpp): an image held in memory stands for the slide
// and fake classifiers, synchronous (a CPU) and asynchronous (a GPU, results computed on another
// thread after a delay), stand for the model.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "heatmap/graph.hpp"
#include "heatmap/outputs.hpp"
#include "heatmap/plan.hpp"
#include "test_support.hpp"
#include "viewer_readback.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using detail::BatchSink;
using detail::PatchGraph;
using detail::PatchGraphParams;
using detail::PatchGraphStats;

constexpr int kSide = 8;  // patch pixels per side, read 1:1 at level 0

// A level-0 image whose pixel at (x, y) is (x / 8 % 256, y / 8 % 256, 7): each patch of the
// 8-pixel grid has its own colour, so a result can be traced back to its patch. Regions whose x
// is in `failing` throw RegionReadError, as an undecodable tile would.
class MemorySlide final : public PatchSource {
 public:
  MemorySlide(int64_t w, int64_t h, std::set<int64_t> failing = {}) : w_(w), h_(h), failing_(std::move(failing)) {}
  void read_region(const Region& r, uint8_t* out) const override {
    if (r.level != 0) throw std::logic_error("MemorySlide has level 0 only");
    if (failing_.count(r.x)) throw RegionReadError("memory.tif", r, "test: undecodable tile");
    for (int64_t y = 0; y < r.h; ++y)
      for (int64_t x = 0; x < r.w; ++x) {
        uint8_t* p = out + (y * r.w + x) * 3;
        const int64_t X = r.x + x, Y = r.y + y;
        const bool inside = X < w_ && Y < h_;
        p[0] = inside ? static_cast<uint8_t>(X / kSide % 256) : 255;
        p[1] = inside ? static_cast<uint8_t>(Y / kSide % 256) : 255;
        p[2] = inside ? 7 : 255;
      }
    reads_.fetch_add(1);
  }
  int64_t reads() const { return reads_.load(); }

 private:
  int64_t w_, h_;
  std::set<int64_t> failing_;
  mutable std::atomic<int64_t> reads_{0};
};

// The value the fake classifiers give a patch: its colour, read back.
float patch_value(const uint8_t* patch) { return (static_cast<float>(patch[0]) + 256.0f * patch[1]) / 65536.0f; }
float expected_value(const GridPatch& p) {
  return (static_cast<float>(p.x / kSide % 256) + 256.0f * static_cast<float>(p.y / kSide % 256)) / 65536.0f;
}

struct FakeOptions {
  bool asynchronous = false;
  int64_t fail_at_batch = -1;  // start() of this batch (0-based) throws ModelError
};

// probabilities[k] = patch_value(patch k); cams[k] = the patch's red channel / 255 everywhere.
class FakeClassifier final : public Classifier {
 public:
  explicit FakeClassifier(FakeOptions o) : o_(o) { spec_.patch_size = kSide; spec_.input_size = kSide; }
  const ModelSpec& spec() const override { return spec_; }
  bool asynchronous() const override { return o_.asynchronous; }
  std::unique_ptr<BatchSlot> make_slot(int64_t capacity, int side, bool with_gradcam) const override;
  mutable std::atomic<int> slots_made{0};
  mutable std::atomic<int64_t> batches_started{0};
  FakeOptions o_;

 private:
  ModelSpec spec_;
};

class FakeSlot final : public BatchSlot {
 public:
  FakeSlot(const FakeClassifier& c, int64_t capacity, int side, bool cam)
      : c_(c), capacity_(capacity), side_(side), cam_(cam),
        pixels_(static_cast<size_t>(capacity * side * side * 3)), prob_(static_cast<size_t>(capacity)),
        cams_(cam ? static_cast<size_t>(capacity * side * side) : 0) {}
  ~FakeSlot() override {
    if (worker_.joinable()) worker_.join();
  }
  int64_t capacity() const override { return capacity_; }
  int side() const override { return side_; }
  uint8_t* pixels() override { return pixels_.data(); }
  const float* probabilities() const override { return prob_.data(); }
  const float* cams() const override { return cam_ ? cams_.data() : nullptr; }
  const BatchTimings& timings() const override { return timings_; }
  void start(int64_t count) override {
    if (count < 1 || count > capacity_) throw std::invalid_argument("bad count");
    const int64_t batch = c_.batches_started.fetch_add(1);
    if (batch == c_.o_.fail_at_batch) throw ModelError("fake.pt", "forward() failed: test failure");
    ++timings_.batches;
    if (!c_.o_.asynchronous) {
      compute(count);
      return;
    }
    // A device: the results arrive later, from another thread.
    worker_ = std::thread([this, count, delay = batch % 3] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      compute(count);
    });
  }
  void finish() override {
    if (worker_.joinable()) worker_.join();
  }

 private:
  void compute(int64_t count) {
    const size_t px = static_cast<size_t>(side_) * static_cast<size_t>(side_);
    for (int64_t k = 0; k < count; ++k) {
      const uint8_t* p = pixels_.data() + static_cast<size_t>(k) * px * 3;
      prob_[static_cast<size_t>(k)] = patch_value(p);
      if (cam_) std::fill_n(cams_.data() + static_cast<size_t>(k) * px, px, p[0] / 255.0f);
    }
  }
  const FakeClassifier& c_;
  int64_t capacity_;
  int side_;
  bool cam_;
  std::vector<uint8_t> pixels_;
  std::vector<float> prob_, cams_;
  BatchTimings timings_;
  std::thread worker_;
};

std::unique_ptr<BatchSlot> FakeClassifier::make_slot(int64_t capacity, int side, bool with_gradcam) const {
  slots_made.fetch_add(1);
  return std::make_unique<FakeSlot>(*this, capacity, side, with_gradcam);
}

// Records what reaches it, checking the calls' order as they come.
class RecordingSink final : public BatchSink {
 public:
  void add(size_t first, size_t count, const uint8_t* ok, const float* prob, const float* cams) override {
    if (first != next) order_ok = false;
    next = first + count;
    ++calls;
    if (throw_at_call == calls) throw WriteError("sink.tif", "test: disk full");
    for (size_t k = 0; k < count; ++k) {
      probability[first + k] = ok[k] ? prob[k] : -1.0f;
      if (cams) cam_first[first + k] = cams[k * kSide * kSide];
    }
    if (cancel_after_call == calls && cancel) cancel->store(true);
  }
  size_t next = 0;
  int calls = 0;
  bool order_ok = true;
  int throw_at_call = -1, cancel_after_call = -1;
  std::atomic<bool>* cancel = nullptr;
  std::map<size_t, float> probability, cam_first;  // by patch index; -1 = failed
};

PatchGeometry geometry() {
  PatchGeometry g;
  g.patch_size = kSide;
  g.read_size = kSide;
  g.size_level0 = kSide;
  g.stride_level0 = kSide;
  return g;
}

// Patches on a cols x rows grid of 8-pixel cells, every other cell of odd rows left out (as
// a tissue filter would).
std::vector<GridPatch> patches(int cols, int rows) {
  std::vector<GridPatch> v;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      if (r % 2 == 0 || c % 2 == 0) v.push_back({int64_t{c} * kSide, int64_t{r} * kSide, c, r, 1.0f});
  return v;
}

PatchGraphParams params(int batch, int threads, bool gradcam = false) {
  PatchGraphParams p;
  p.batch = batch;
  p.threads = threads;
  p.gradcam = gradcam;
  p.subject = "memory.tif";
  return p;
}

class PatchGraphBoth : public ::testing::TestWithParam<bool> {};  // asynchronous?

TEST_P(PatchGraphBoth, EveryPatchReachesTheSinkInGridOrderWithItsOwnResult) {
  const MemorySlide slide(40 * kSide, 30 * kSide);
  const auto ps = patches(40, 30);
  for (const int batch : {1, 7, 64, 5000})
    for (const int threads : {1, 3}) {
      FakeClassifier c({GetParam()});
      RecordingSink sink;
      PatchGraph graph(slide, ps, geometry(), c, sink, params(batch, threads, true));
      const PatchGraphStats s = graph.run();
      SCOPED_TRACE("batch " + std::to_string(batch) + ", threads " + std::to_string(threads));
      EXPECT_TRUE(sink.order_ok);
      EXPECT_EQ(s.patches, static_cast<int64_t>(ps.size()));
      EXPECT_EQ(s.failed, 0);
      EXPECT_FALSE(s.cancelled);
      EXPECT_EQ(s.batches, static_cast<int64_t>((ps.size() + batch - 1) / batch));
      ASSERT_EQ(sink.probability.size(), ps.size());
      for (size_t i = 0; i < ps.size(); ++i) {
        ASSERT_EQ(sink.probability[i], expected_value(ps[i])) << "patch " << i;
        ASSERT_FLOAT_EQ(sink.cam_first[i], static_cast<float>(ps[i].x / kSide % 256) / 255.0f) << "patch " << i;
      }
    }
}

TEST_P(PatchGraphBoth, SlotsAreMadeOnceAndReusedWhateverTheNumberOfBatches) {
  const MemorySlide slide(64 * kSide, 64 * kSide);
  const auto ps = patches(64, 64);
  FakeClassifier c({GetParam()});
  RecordingSink sink;
  PatchGraphParams p = params(16, 2);
  p.in_flight = 3;
  PatchGraph graph(slide, ps, geometry(), c, sink, p);
  const PatchGraphStats s = graph.run();
  EXPECT_GT(s.batches, 100);
  // The limiter's three plus the one the source node holds back.
  EXPECT_EQ(c.slots_made.load(), 4);
  EXPECT_EQ(s.classifier.batches, s.batches);  // the slots' own accounts, summed
}

TEST_P(PatchGraphBoth, RegionsThatFailToDecodeAreCountedMarkedAndTheRunCompletes) {
  const MemorySlide slide(20 * kSide, 20 * kSide, {3 * kSide, 11 * kSide});
  const auto ps = patches(20, 20);
  FakeClassifier c({GetParam()});
  RecordingSink sink;
  PatchGraph graph(slide, ps, geometry(), c, sink, params(9, 2));
  const PatchGraphStats s = graph.run();
  int64_t failed = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const bool bad = ps[i].x == 3 * kSide || ps[i].x == 11 * kSide;
    failed += bad;
    EXPECT_EQ(sink.probability[i], bad ? -1.0f : expected_value(ps[i])) << "patch " << i;
  }
  EXPECT_EQ(s.failed, failed);
  EXPECT_EQ(failed, 20);  // columns 3 and 11 on the 10 even rows (odd rows skip odd columns)
  EXPECT_EQ(s.patches, static_cast<int64_t>(ps.size()));
}

TEST_P(PatchGraphBoth, CancelStopsNewBatchesAndSaysSo) {
  const MemorySlide slide(50 * kSide, 50 * kSide);
  const auto ps = patches(50, 50);
  std::atomic<bool> cancel{false};
  FakeClassifier c({GetParam()});
  RecordingSink sink;
  sink.cancel = &cancel;
  sink.cancel_after_call = 2;
  PatchGraphParams p = params(10, 2);
  p.cancel = &cancel;
  p.in_flight = 2;
  PatchGraph graph(slide, ps, geometry(), c, sink, p);
  const PatchGraphStats s = graph.run();
  EXPECT_TRUE(s.cancelled);
  // Batches already in the graph when the flag rose still finish, in order; no new one starts.
  EXPECT_TRUE(sink.order_ok);
  EXPECT_LE(s.batches, 2 + 2 + 1);
  EXPECT_LT(s.patches, static_cast<int64_t>(ps.size()));
}

TEST_P(PatchGraphBoth, ClassifierFailureNamesTheSlideAndTheBatchRegion) {
  const MemorySlide slide(30 * kSide, 10 * kSide);
  const auto ps = patches(30, 10);
  FakeOptions o{GetParam()};
  o.fail_at_batch = 2;
  FakeClassifier c(o);
  RecordingSink sink;
  PatchGraph graph(slide, ps, geometry(), c, sink, params(20, 2));
  try {
    graph.run();
    FAIL() << "no exception";
  } catch (const Error& e) {
    // Batch 2 holds patches 40..59: row 1 (odd: 15 patches in even columns, from index 30) gives
    // patch 40 = column 20, (160, 8); patch 59 is column 14 of row 2, (112, 16), 8 px wide.
    EXPECT_STREQ(e.what(),
                 "memory.tif: inference failed on the batch of 20 patches from level-0 (160, 8) to (120, 24): "
                 "fake.pt: forward() failed: test failure");
  }
  EXPECT_TRUE(sink.order_ok);
  EXPECT_LE(sink.calls, 2);
}

TEST_P(PatchGraphBoth, SinkFailureStopsTheGraphAndIsRethrown) {
  const MemorySlide slide(30 * kSide, 30 * kSide);
  const auto ps = patches(30, 30);
  FakeClassifier c({GetParam()});
  RecordingSink sink;
  sink.throw_at_call = 3;
  PatchGraph graph(slide, ps, geometry(), c, sink, params(8, 2));
  EXPECT_THROW(graph.run(), WriteError);
  EXPECT_EQ(sink.calls, 3);
  EXPECT_LT(c.batches_started.load(), static_cast<int64_t>(ps.size() / 8));
}

INSTANTIATE_TEST_SUITE_P(Classifiers, PatchGraphBoth, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Asynchronous" : "Synchronous"; });

TEST(PatchGraph, NoPatchesMakesNoSlotAndNoCall) {
  const MemorySlide slide(64, 64);
  const std::vector<GridPatch> none;
  FakeClassifier c({true});
  RecordingSink sink;
  PatchGraph graph(slide, none, geometry(), c, sink, params(8, 2));
  const PatchGraphStats s = graph.run();
  EXPECT_EQ(s.patches, 0);
  EXPECT_EQ(sink.calls, 0);
  EXPECT_EQ(c.slots_made.load(), 0);
}

TEST(PatchGraph, AsynchronousReadersReadEachPatchOnce) {
  const MemorySlide slide(100 * kSide, 100 * kSide);
  const auto ps = patches(100, 100);
  FakeClassifier c({true});
  RecordingSink sink;
  PatchGraph graph(slide, ps, geometry(), c, sink, params(256, 4));
  const PatchGraphStats s = graph.run();
  EXPECT_EQ(slide.reads(), static_cast<int64_t>(ps.size()));
  EXPECT_GT(s.read_cpu_seconds, 0.0);
  EXPECT_EQ(s.patches, static_cast<int64_t>(ps.size()));
}

// ---- The plan ----

detail::SlideFacts slide_facts() {
  detail::SlideFacts f;
  f.path = "/data/slides/tumor_001.tif";
  f.vendor = "generic-tiff";
  // 0.25 µm/px with levels at 2x steps: 0.5, 1.0, 2.0 µm.
  for (int l = 0; l < 4; ++l) f.levels.push_back({16384 >> l, 12288 >> l, double(1 << l), 256, 256});
  f.mpp.x = f.mpp.y = 0.25;
  f.mpp.source = MppSource::tiff_resolution;
  f.bounds = {0, 0, 16384, 12288, false};
  return f;
}

detail::ModelFacts model_facts(int input_size, ResizeMode resize) {
  detail::ModelFacts m;
  m.spec.patch_size = 96;
  m.spec.mpp = 1.0;
  m.spec.input_size = input_size;
  m.spec.resize = resize;
  m.path = "m.pt";
  m.sha1 = "0";
  m.has_gradcam = true;
  return m;
}

TEST(HeatmapPlan, NamesEveryOutputAfterTheSlideAndReadsAnAreaResizedInputFromACoarserLevel) {
  HeatmapParams hp;
  hp.grid.min_tissue = 0;
  const auto plan = detail::plan_heatmap(slide_facts(), model_facts(48, ResizeMode::area), hp, "/out", nullptr);
  EXPECT_EQ(plan.name, "tumor_001");
  EXPECT_EQ(plan.outputs.prob, "/out/tumor_001.prob.tif");
  EXPECT_EQ(plan.outputs.cam, "/out/tumor_001.cam.tif");
  EXPECT_EQ(plan.outputs.summary, "/out/tumor_001.summary.json");
  EXPECT_TRUE(plan.outputs.prob_f32.empty());
  // 96 px at 1 µm = 384 level-0 px; the model's 48 px input at 2 µm is read 1:1 from level 3.
  EXPECT_EQ(plan.geometry.level, 2);
  EXPECT_DOUBLE_EQ(plan.geometry.size_level0, 384);
  EXPECT_EQ(plan.read_geometry.level, 3);
  EXPECT_EQ(plan.read_geometry.patch_size, 48);
  EXPECT_EQ(plan.read_geometry.read_size, 48);
  EXPECT_EQ(plan.grid.cols, 16384 / 384);
  EXPECT_EQ(plan.grid.patches.size(), static_cast<size_t>((16384 / 384) * (12288 / 384)));
  EXPECT_EQ(plan.description["parameters"]["read_level"], 3);
  EXPECT_EQ(plan.description["model"]["name"], "model");
  // The probability raster has 8 pixels per 384-px stride cell (16384 / 341 == 12288 / 256 ==
  // 48); the overlay is at 8 µm (32 level-0 px) from level 3.
  EXPECT_EQ(plan.prob_raster.pixel, 48);
  EXPECT_EQ(plan.prob_raster.width, 341);
  EXPECT_EQ(plan.prob_raster.height, 256);
  EXPECT_EQ(plan.overlay_raster.pixel, 32);
  EXPECT_EQ(plan.overlay_level, 3);
}

TEST(HeatmapPlan, OverlappingPatchesSplitEachCellSoThatBordersFallOnPixels) {
  HeatmapParams hp;
  hp.grid.min_tissue = 0;
  hp.grid.stride = 48;  // half the patch: cells (192 level-0 px) are offset by a quarter patch (96)
  const auto plan = detail::plan_heatmap(slide_facts(), model_facts(96, ResizeMode::none), hp, "/out", nullptr);
  EXPECT_EQ(plan.prob_raster.pixel, 192 / 8);
  EXPECT_EQ(96 % plan.prob_raster.pixel, 0);
  EXPECT_EQ(plan.read_geometry.patch_size, 96);
}

// Every raster's pixel is an integer d with W / width == H / height == d (ASAP's rule for a
// likelihood map, checked here by that rule: there is no ASAP here), at least 16 pixels a side
// (OpenSlide 3.4.1 decodes nothing smaller) and, for probabilities, at most an eighth of a cell.
// Slides: the tester's 12000 x 9000 (whose 33 x 25 map broke the rule), a 0.25 µm scan of
// 100000 x 80000, and one too small for 8 pixels per cell.
TEST(HeatmapPlan, RastersAreAnIntegerDivisionOfTheSlideAndAtLeastSixteenPixelsASide) {
  for (const auto& [w, h] : {std::pair<int64_t, int64_t>{12000, 9000}, {100000, 80000}, {400, 390}}) {
    detail::SlideFacts f = slide_facts();
    f.levels.resize(1);
    f.levels[0] = {w, h, 1.0, 256, 256};
    f.bounds = {0, 0, w, h, false};
    HeatmapParams hp;
    hp.grid.min_tissue = 0;
    auto model = model_facts(96, ResizeMode::none);
    model.spec.mpp = 0.972;
    const auto plan = detail::plan_heatmap(f, model, hp, "/out", nullptr);
    for (const auto& [name, g] : {std::pair<const char*, RasterGeometry>{"prob", plan.prob_raster},
                                  {"cam", plan.cam_raster},
                                  {"overlay", plan.overlay_raster}}) {
      SCOPED_TRACE(std::string(name) + " of " + std::to_string(w) + "x" + std::to_string(h));
      EXPECT_EQ(w / g.width, g.pixel);
      EXPECT_EQ(h / g.height, g.pixel);
      EXPECT_GE(std::min(g.width, g.height), 16);
    }
    EXPECT_LE(static_cast<double>(plan.prob_raster.pixel), plan.geometry.stride_level0 / 8);
  }
}

TEST(HeatmapPlan, ANameThatIsAPathAndAModelWithoutGradcamAreHandled) {
  HeatmapParams hp;
  hp.grid.min_tissue = 0;
  hp.name = "../escape";
  EXPECT_THROW(
      {
        try {
          detail::plan_heatmap(slide_facts(), model_facts(96, ResizeMode::none), hp, "/out", nullptr);
        } catch (const UsageError& e) {
          EXPECT_STREQ(e.what(), "output name '../escape' must be a file name, not a path");
          throw;
        }
      },
      UsageError);
  hp.name.clear();
  auto m = model_facts(96, ResizeMode::none);
  m.has_gradcam = false;
  const auto plan = detail::plan_heatmap(slide_facts(), m, hp, "/out", nullptr);
  EXPECT_FALSE(plan.gradcam);
  EXPECT_TRUE(plan.outputs.cam.empty());
}

// The rasters' ImageDescription is the description JSON as it is (json.loads reads it; it used
// to start with "wsi-heatmap probability "), and hides "xml", "XML" and "DICOM" from ASAP's TIFF
// reader, which refuses files whose description contains them (its source; no ASAP here), with
// escapes that parse back to the same name.
TEST(HeatmapTiffDescription, IsJsonThatParsesAsItIsAndThatAsapDoesNotRefuse) {
  const test::ScratchDir dir;
  HeatmapParams hp;
  hp.grid.min_tissue = 0;
  hp.gradcam = false;
  hp.name = "case_xml_XML_DICOM";
  auto facts = slide_facts();
  facts.levels.resize(1);
  facts.levels[0] = {3840, 768, 1.0, 256, 256};
  facts.bounds = {0, 0, 3840, 768, false};
  const auto plan = detail::plan_heatmap(facts, model_facts(96, ResizeMode::none), hp, dir.path(), nullptr);
  nlohmann::json description = plan.description;
  description["software"] = {{"wsi_heatmap", "test"}};
  const std::vector<float> prob(plan.grid.patches.size(), 0.25f);
  detail::write_probability_rasters(plan, description, prob);
  nlohmann::json expected = description;
  expected["image"] = "probability";
  expected["level0_pixels_per_pixel"] = plan.prob_raster.pixel;

  const std::string text = test::read_tiff_level(plan.outputs.prob, 0).description;
  for (const char* word : {"xml", "XML", "DICOM"}) EXPECT_EQ(text.find(word), std::string::npos) << word << " in " << text;
  EXPECT_EQ(text.front(), '{');
  EXPECT_EQ(nlohmann::json::parse(text), expected);
  EXPECT_EQ(nlohmann::json::parse(text)["slide"]["name"], "case_xml_XML_DICOM");
  if (!test::python_openslide_available()) WSI_SKIP_MISSING() << "python3-openslide is not installed (Debian: python3-openslide)";
  const test::PythonReadback py = test::python_openslide_readback(plan.outputs.prob);
  EXPECT_EQ(py.description_error, "");
  ASSERT_FALSE(py.description_json.empty());
  EXPECT_EQ(nlohmann::json::parse(py.description_json), expected);
}

// A slide name that is not UTF-8 (file names may be any bytes) does not fail the run.
TEST(HeatmapTiffDescription, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  const nlohmann::json d = {{"slide", {{"name", "case\xff_xml"}}}};
  const std::string text = detail::tiff_description(d);
  EXPECT_EQ(nlohmann::json::parse(text)["slide"]["name"], "case\xef\xbf\xbd_xml");
  EXPECT_EQ(text.find("xml"), std::string::npos) << text;
}

// ---- The streaming writer ----

TEST(HeatmapStitcher, PatchesCsvAppearsOnlyOnFinishWithFailedPatchesLeftOut) {
  const test::ScratchDir dir;
  HeatmapParams hp;
  hp.grid.min_tissue = 0;
  hp.gradcam = false;
  auto facts = slide_facts();
  facts.levels.resize(1);
  facts.levels[0] = {3840, 768, 1.0, 256, 256};
  facts.bounds = {0, 0, 3840, 768, false};
  const auto plan = detail::plan_heatmap(facts, model_facts(96, ResizeMode::none), hp, dir.path(), nullptr);
  ASSERT_EQ(plan.grid.patches.size(), 20u);  // 384 level-0 px per patch: 10 x 2
  detail::HeatmapStitcher stitcher(plan, plan.description);
  std::vector<uint8_t> ok(20, 1);
  ok[3] = 0;
  std::vector<float> prob(20);
  for (size_t i = 0; i < prob.size(); ++i) prob[i] = static_cast<float>(i) / 20.0f;
  stitcher.add(0, 12, ok.data(), prob.data(), nullptr);
  stitcher.add(12, 8, ok.data() + 12, prob.data() + 12, nullptr);
  EXPECT_FALSE(fs::exists(plan.outputs.patches_csv));
  stitcher.finish();
  std::ifstream csv(plan.outputs.patches_csv);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(csv, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 20u);  // the header and 19 patches
  EXPECT_EQ(lines[0], "x,y,width,height,probability");
  EXPECT_EQ(lines[3], "768,0,384,384,0.1");  // patch 2
  EXPECT_EQ(lines[4], "1536,0,384,384,0.2");  // patch 4: patch 3 failed
  EXPECT_TRUE(std::isnan(stitcher.probabilities()[3]));
  EXPECT_FLOAT_EQ(stitcher.probabilities()[19], 0.95f);
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

}  // namespace
}  // namespace wsi
