// The Camelyon16 FROC of metrics.hpp on cases built here: the official definition against
// tests/camelyon_froc_official.py, a Python port of the challenge's Evaluation_FROC.py, fed the
// same cases as that script reads them (masks at level 5 of a 0.243 µm scan, detection CSVs as
// froc_csv writes them); and both definitions against numbers worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/metrics.hpp"
#include "wsi/regions.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

constexpr int kLevel = 5;              // the script's EVALUATION_MASK_LEVEL
constexpr double kResolution = 0.243;  // its L0_RESOLUTION, µm per level-0 pixel
constexpr double kDownsample = 32;     // 2^kLevel
constexpr int64_t kMaskSide = 128;     // mask pixels at level 5: 4096 level-0 pixels
constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

// A tumour square on the level-5 mask (7.776 µm per pixel).
struct Box {
  int64_t x, y, n;
};
// Lesions: 25-pixel squares, about 40 pixels (310 µm) of major axis once dilated, over the
// 35.4-pixel (275 µm) ITC limit; the ITC: 3 x 3 pixels, about 12 once dilated.
constexpr Box kA{10, 10, 25}, kB{70, 70, 25}, kItc{100, 20, 3};

// A detection at the level-0 centre of mask pixel (mx, my).
Detection at(double p, int64_t mx, int64_t my) {
  return {p, static_cast<double>(mx) * kDownsample + 16, static_cast<double>(my) * kDownsample + 16};
}
// On box b, `dx` mask pixels right of its centre.
Detection on(double p, const Box& b, int64_t dx = 0) { return at(p, b.x + b.n / 2 + dx, b.y + b.n / 2); }
// On the glass, far from every lesion; `k` spreads several apart.
Detection glass(double p, int64_t k = 0) { return at(p, 5 + 3 * k, 120); }

struct SlideSpec {
  std::string name;        // 8 characters: the script matches the first 8 of a mask's name
  bool tumour = false;     // has a mask (the script's is_tumor)
  std::vector<Box> boxes;  // its tumour
  std::vector<Detection> detections;
};

struct FrocCase {
  std::string name;
  std::vector<SlideSpec> slides;
  // Worked out by hand (see make_cases); NaN where not.
  double official[6] = {kUnknown, kUnknown, kUnknown, kUnknown, kUnknown, kUnknown};
  double corrected[6] = {kUnknown, kUnknown, kUnknown, kUnknown, kUnknown, kUnknown};
};

void set6(double (&to)[6], std::initializer_list<double> v) { std::copy(v.begin(), v.end(), to); }

std::vector<uint8_t> mask_of(const SlideSpec& s) {
  std::vector<uint8_t> m(static_cast<size_t>(kMaskSide * kMaskSide), 0);
  for (const Box& b : s.boxes)
    for (int64_t y = b.y; y < b.y + b.n; ++y)
      for (int64_t x = b.x; x < b.x + b.n; ++x) m[static_cast<size_t>(y * kMaskSide + x)] = 255;
  return m;
}

// Random detections, probability uniform in 0..1: a third aimed at the slide's boxes, the rest
// anywhere on it (x, y from -31, which the script's int() truncates to mask column 0).
// Probabilities on a grid of `step` (many ties, few of them float32 values) when step > 0.
std::vector<Detection> random_detections(std::mt19937& rng, const SlideSpec& s, int n, double step) {
  std::uniform_real_distribution<double> pos(-31, 4096), prob(0, 1);
  std::uniform_int_distribution<int64_t> within(-10, 10);
  std::vector<Detection> out;
  for (int i = 0; i < n; ++i) {
    const bool aimed = !s.boxes.empty() && i % 3 == 0;
    double p = prob(rng);
    if (step > 0) p = std::round(p / step) * step;
    if (aimed) {
      const Box& b = s.boxes[static_cast<size_t>(i / 3) % s.boxes.size()];
      const int64_t d = b.n > 3 ? within(rng) : 0;
      out.push_back(on(p, b, d));
    } else {
      out.push_back({p, pos(rng), pos(rng)});
    }
  }
  return out;
}

std::vector<FrocCase> make_cases() {
  std::vector<FrocCase> cases;
  auto add = [&](std::string name, std::vector<SlideSpec> slides) -> FrocCase& {
    cases.push_back({std::move(name), std::move(slides)});
    return cases.back();
  };
  {
    // Lesion A at 0.75, a false positive at 0.75 on a normal slide (a tie float32 holds exactly),
    // B at 0.5, another FP at 0.25. Official: thresholds 0.5, 0.75 (0.25 skipped) give (1/2 FP,
    // 1) and (1/2, 1/2), then (0, 0). Reversed: (0, 0), (1/2, 1/2), (1/2, 1); at 1/4, halfway
    // from (0, 0) to (1/2, 1/2): 1/4; at 1/2 the last of the two, 1; beyond, 1. Corrected:
    // (1, 1), (1/2, 1), (1/2, 1/2); left of 1/2 FP the top threshold's 1/2.
    FrocCase& c = add("ties_at_top", {{"Test_001", true, {kA, kB}, {on(0.75, kA), on(0.5, kB)}},
                                      {"Norm_001", false, {}, {glass(0.75), glass(0.25, 1)}}});
    set6(c.official, {0.25, 1, 1, 1, 1, 1});
    set6(c.corrected, {0.5, 1, 1, 1, 1, 1});
  }
  {
    // A at 0.75, an FP at 0.5, B found only by the lowest detection, 0.25. Official: no missed
    // lesion, so no 0 in the sweep and all_probs[1:] drops 0.25: B is never found, 1/2 at every
    // point. Corrected: (1 FP, 1) at 0.25, so 1 from 1 FP on.
    FrocCase& c = add("lesion_found_only_by_the_lowest_detection",
                      {{"Test_001", true, {kA, kB}, {on(0.75, kA), glass(0.5), on(0.25, kB)}}});
    set6(c.official, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
    set6(c.corrected, {0.5, 0.5, 1, 1, 1, 1});
  }
  {
    // Only the missed lesions' zeros to sweep, and all_probs[1:] drops them: just (0, 0).
    FrocCase& c = add("no_detections",
                      {{"Test_001", true, {kA, kB}, {}}, {"Test_002", true, {kA}, {}}, {"Norm_001", false, {}, {}}});
    set6(c.official, {0, 0, 0, 0, 0, 0});
    set6(c.corrected, {0, 0, 0, 0, 0, 0});
  }
  {
    FrocCase& c = add("only_false_positives", {{"Test_001", true, {kA, kB}, {glass(0.9), glass(0.2, 1)}},
                                               {"Norm_001", false, {}, {glass(0.6), glass(0.35, 1)}}});
    set6(c.official, {0, 0, 0, 0, 0, 0});
    set6(c.corrected, {0, 0, 0, 0, 0, 0});
  }
  {
    // 0.95 on the ITC counts for nothing; A at 0.7, an FP at 0.8, B missed; two slides.
    // Official: the zeros of B and the ITC skipped, thresholds 0.7f (1/2 FP, 1/2), 0.8 (1/2, 0),
    // then (0, 0): at 1/4 on the flat (0, 0)-(1/2, 0) stretch, 0; from 1/2 FP, 1/2. Corrected:
    // the same two points.
    FrocCase& c = add(
        "itc_and_excluded_detections",
        {{"Test_001", true, {kA, kB, kItc}, {on(0.95, kItc), on(0.7, kA), glass(0.8)}}, {"Norm_001", false, {}, {}}});
    set6(c.official, {0, 0.5, 0.5, 0.5, 0.5, 0.5});
    set6(c.corrected, {0, 0.5, 0.5, 0.5, 0.5, 0.5});
  }
  {
    // A at 0.8 and an FP at 0.8, B missed: not a tie, as A's float32 score 0.8f = 0.800000012 >
    // 0.8. Official: thresholds 0.8 (1 FP, 1/2), 0.8f (0 FP, 1/2), so 1/2 everywhere.
    // Corrected: one threshold, (1, 1/2), and 1/2 everywhere.
    FrocCase& c =
        add("float32_score_above_a_tied_false_positive", {{"Test_001", true, {kA, kB}, {on(0.8, kA), glass(0.8)}}});
    set6(c.official, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
    set6(c.corrected, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  }
  {
    // The same at 0.9, whose float32 0.9f = 0.899999976 < 0.9: thresholds 0.9f and 0.9 both
    // count the FP and A, (1, 1/2) twice, as a tie would: from (0, 0) to (1, 1/2), 1/8 and 1/4,
    // then 1/2. Corrected: 1/2 everywhere.
    FrocCase& c =
        add("float32_score_below_a_tied_false_positive", {{"Test_001", true, {kA, kB}, {on(0.9, kA), glass(0.9)}}});
    set6(c.official, {0.125, 0.25, 0.5, 0.5, 0.5, 0.5});
    set6(c.corrected, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  }
  {
    // A only at probability 0 (official: not found, 0 > 0 is false), B at 0.3, 0.6, 0.45 (its
    // score 0.6), FPs at 0 and 0.1. Official: thresholds 0.1 (1/2 FP, 1/2), 0.6f (0, 1/2): 1/2
    // everywhere. Corrected: A counts as found at threshold 0 with both FPs, (1, 1).
    FrocCase& c =
        add("probability_zero_and_the_best_of_several",
            {{"Test_001", true, {kA, kB}, {on(0.0, kA), on(0.3, kB, -5), on(0.6, kB), on(0.45, kB, 5), glass(0.0)}},
             {"Norm_001", false, {}, {glass(0.1)}}});
    set6(c.official, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
    set6(c.corrected, {0.5, 0.5, 1, 1, 1, 1});
  }
  {
    // No lesion anywhere: the script's sensitivities are 0 / 0 (NaN); ours 0 (the deviation).
    FrocCase& c = add("only_normal_slides",
                      {{"Norm_001", false, {}, {glass(0.5)}}, {"Norm_002", false, {}, {glass(0.3), glass(0.8, 1)}}});
    set6(c.official, {0, 0, 0, 0, 0, 0});
    set6(c.corrected, {0, 0, 0, 0, 0, 0});
  }
  std::mt19937 rng(20);
  const std::vector<std::tuple<std::string, int, double>> random = {
      {"random_slides_with_and_without_tumours", 12, 0}, {"random_rounded_probabilities_many_ties", 20, 0.05}};
  for (const auto& [name, n, step] : random) {
    std::vector<SlideSpec> slides = {{"Test_001", true, {kA, kB, kItc}, {}},
                                     {"Test_002", true, {kA}, {}},
                                     {"Test_003", true, {kB}, {}},
                                     {"Norm_001", false, {}, {}},
                                     {"Norm_002", false, {}, {}}};
    for (SlideSpec& s : slides) s.detections = random_detections(rng, s, n, step);
    add(name, std::move(slides));
  }
  return cases;
}

// The case as the script reads it: results/NAME.csv (froc_csv), masks/NAME.pgm, params.
void write_case(const FrocCase& c, const fs::path& dir) {
  fs::create_directories(dir / "results");
  fs::create_directories(dir / "masks");
  std::ofstream(dir / "params") << kLevel << " " << kResolution << "\n";
  for (const SlideSpec& s : c.slides) {
    std::ofstream(dir / "results" / (s.name + ".csv"), std::ios::binary) << froc_csv(s.detections);
    if (!s.tumour) continue;
    const auto m = mask_of(s);
    std::ofstream pgm(dir / "masks" / (s.name + ".pgm"), std::ios::binary);
    pgm << "P5\n" << kMaskSide << " " << kMaskSide << "\n255\n";
    pgm.write(reinterpret_cast<const char*>(m.data()), static_cast<std::streamsize>(m.size()));
  }
}

// Our FROC of the case, read back from the files written for the script (so both see the
// truncated coordinates).
FrocResult our_froc(const FrocCase& c, const fs::path& dir, FrocDefinition definition) {
  std::vector<SlideTruth> truth;
  std::vector<std::vector<Detection>> det;
  for (const SlideSpec& s : c.slides) {
    SlideTruth t;
    t.name = s.name;
    if (s.tumour) t.lesions = camelyon_lesion_map(mask_of(s), kMaskSide, kMaskSide, kResolution * kDownsample);
    t.downsample = kDownsample;
    truth.push_back(std::move(t));
    det.push_back(read_detection_csv(dir / "results" / (s.name + ".csv")));
  }
  return camelyon_froc(truth, det, definition);
}

std::string shell_output(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  return out;
}

using PortResult = std::map<std::string, std::vector<double>>;

// The port's blocks ("case DIR", then "key v..." lines) by case directory.
std::map<std::string, PortResult> parse_port(const std::string& text) {
  std::map<std::string, PortResult> out;
  PortResult* cur = nullptr;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "case") {
      std::string dir;
      fields >> dir;
      cur = &out[dir];
      continue;
    }
    if (!cur) continue;
    auto& v = (*cur)[key];
    for (std::string tok; fields >> tok;) v.push_back(std::strtod(tok.c_str(), nullptr));
  }
  return out;
}

TEST(FrocOfficial, EqualsThePythonPortOfEvaluationFrocOnEveryCase) {
  if (std::system("/usr/bin/python3 -c 'import numpy, scipy.ndimage' >/dev/null 2>&1") != 0)
    WSI_SKIP_MISSING() << "needs /usr/bin/python3 with numpy and scipy (Debian: python3-numpy python3-scipy; "
                    "tools/setup.sh test installs them)";
  const auto cases = make_cases();
  ASSERT_GE(cases.size(), 8u);
  test::ScratchDir dir;
  std::string cmd =
      "/usr/bin/python3 " + test::shell_quote(std::string(WSI_SOURCE_DIR) + "/tests/camelyon_froc_official.py");
  for (const FrocCase& c : cases) {
    write_case(c, dir / c.name);
    cmd.append(" ").append(test::shell_quote((dir / c.name).string()));
  }
  const std::string text = shell_output(cmd + " 2>&1");
  const auto port = parse_port(text);
  ASSERT_EQ(port.size(), cases.size()) << text;
  for (const FrocCase& c : cases) {
    SCOPED_TRACE(c.name);
    const PortResult& p = port.at((dir / c.name).string());
    const FrocResult r = our_froc(c, dir / c.name, FrocDefinition::official);
    ASSERT_EQ(p.at("tumours").size(), 1u);
    EXPECT_EQ(static_cast<double>(r.lesions), p.at("tumours")[0]);
    // Thresholds are the very same doubles (float32 lesion scores included).
    EXPECT_EQ(r.thresholds, p.at("thresholds"));
    ASSERT_EQ(r.avg_false_positives.size(), p.at("fps").size());
    ASSERT_EQ(r.sensitivity.size(), p.at("sens").size());
    for (size_t k = 0; k < r.sensitivity.size(); ++k) {
      EXPECT_NEAR(r.avg_false_positives[k], p.at("fps")[k], 1e-9) << k;
      if (r.lesions == 0) {  // the script's 0 / 0; ours 0 (metrics.hpp, quirk 9)
        EXPECT_TRUE(std::isnan(p.at("sens")[k]) && r.sensitivity[k] == 0) << k;
      } else {
        EXPECT_NEAR(r.sensitivity[k], p.at("sens")[k], 1e-9) << k;
      }
    }
    ASSERT_EQ(p.at("at").size(), 6u);
    for (int k = 0; k < 6; ++k) {
      if (r.lesions == 0) {
        EXPECT_TRUE(std::isnan(p.at("at")[static_cast<size_t>(k)]) && r.sensitivity_at[k] == 0) << k;
      } else {
        EXPECT_NEAR(r.sensitivity_at[k], p.at("at")[static_cast<size_t>(k)], 1e-9) << k;
      }
    }
    if (r.lesions > 0) {
      EXPECT_NEAR(r.score, p.at("score").at(0), 1e-9);
    }
  }
}

TEST(FrocOfficial, HandComputedCasesGiveTheDocumentedNumbersInBothDefinitions) {
  test::ScratchDir dir;
  int checked = 0;
  for (const FrocCase& c : make_cases()) {
    if (std::isnan(c.official[0])) continue;
    SCOPED_TRACE(c.name);
    write_case(c, dir / c.name);
    const FrocResult o = our_froc(c, dir / c.name, FrocDefinition::official);
    const FrocResult k = our_froc(c, dir / c.name, FrocDefinition::corrected);
    EXPECT_EQ(o.definition, FrocDefinition::official);
    EXPECT_EQ(k.definition, FrocDefinition::corrected);
    double so = 0, sk = 0;
    for (int i = 0; i < 6; ++i) {
      EXPECT_NEAR(o.sensitivity_at[i], c.official[i], 1e-12) << "official at " << i;
      EXPECT_NEAR(k.sensitivity_at[i], c.corrected[i], 1e-12) << "corrected at " << i;
      so += c.official[i], sk += c.corrected[i];
    }
    EXPECT_NEAR(o.score, so / 6, 1e-12);
    EXPECT_NEAR(k.score, sk / 6, 1e-12);
    // The official curve ends with the appended (0, 0) point.
    EXPECT_EQ(o.thresholds.back(), std::numeric_limits<double>::infinity());
    EXPECT_EQ(o.avg_false_positives.back(), 0);
    EXPECT_EQ(o.sensitivity.back(), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

TEST(FrocOfficial, TheHeatmapsDetectionCsvIsWhatTheOfficialReaderParses) {
  // float(prob), int(x), int(y) per line, nothing else: no header, integer coordinates.
  EXPECT_EQ(froc_csv({{0.5, 720.9, 3856.2}, {0.25, -5.7, 0.5}}), "0.5,720,3856\n0.25,-5,0\n");
  EXPECT_EQ(froc_csv({}), "");
}

}  // namespace
}  // namespace wsi
