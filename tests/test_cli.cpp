// The wsi-heatmap executable as a user meets it: exit codes, one-line errors, outputs.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.hpp"

namespace wsi {
namespace {

using test::testdata;

using CliRun = test::CliResult;
using test::slurp;

CliRun run_cli(const std::vector<std::string>& args) { return test::run_wsi(args); }

size_t line_count(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(CliInfo, ShowsLevelsMppAndAssociatedImages) {
  const CliRun r = run_cli({"info", testdata("slides/cmu-1-small-region.svs").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("aperio"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2220 x 2967"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0.499"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("openslide.mpp-x/y"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("thumbnail"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(CliInfo, JsonHasEveryLevelAndTheMppSource) {
  const CliRun r = run_cli({"info", "--json", testdata("slides/boxes.tiff").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["levels"].size(), 4u);
  EXPECT_EQ(j["levels"][3]["width"], 37);
  EXPECT_NEAR(j["levels"][2]["downsample"].get<double>(), 4.016129, 1e-6);
  EXPECT_EQ(j["mpp"]["source"], "unknown");
  EXPECT_TRUE(j["mpp"]["x"].is_null());
  EXPECT_EQ(j["vendor"], "generic-tiff");
  EXPECT_TRUE(j["properties"].contains("openslide.quickhash-1"));
}

TEST(CliInfo, MppOverrideIsReportedAsSuch) {
  const CliRun r = run_cli({"info", "--json", "--mpp", "0.5", testdata("slides/tcga-cr-7395-01a-01-ts1.svs").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mpp"]["source"], "user override (--mpp)");
  EXPECT_NEAR(j["levels"][1]["mpp"].get<double>(), 0.5 * 2.0005, 1e-3);
}

TEST(CliInfo, WorksOnEveryRealSlide) {
  for (const char* f : {"slides/cmu-1-small-region.svs", "slides/tcga-cr-7395-01a-01-ts1.svs",
                        "slides/tumor_001aaf.tif", "slides/small.svs", "slides/boxes.tiff"}) {
    const CliRun r = run_cli({"info", testdata(f).string()});
    EXPECT_EQ(r.code, 0) << f << ": " << r.err;
  }
}

struct BadCase {
  std::vector<std::string> args;
  int code;
  std::string needle;   // in the one error line
  std::string names;    // the file the line must name ("" = none)
};

TEST(CliErrors, EachBadInputGivesOneClearLineAndItsExitCode) {
  const std::string dir = testdata("broken").string();
  const std::vector<BadCase> cases = {
      {{"info", testdata("nope.svs").string()}, 2, "no such file", testdata("nope.svs").string()},
      {{"info", dir}, 2, "is a directory", dir},
      {{"info", testdata("broken/broken.svs").string()}, 1, "not a format OpenSlide recognises", testdata("broken/broken.svs").string()},
      {{"info", testdata("broken/kidney-48-5.tif").string()}, 1, "striped (non-tiled) TIFF", testdata("broken/kidney-48-5.tif").string()},
      {{"info", testdata("broken/unopenable.tiff").string()}, 1, "Unsupported TIFF compression", testdata("broken/unopenable.tiff").string()},
      {{"info", testdata("broken/boxes.png").string()}, 1, "PNG image", testdata("broken/boxes.png").string()},
      {{"info", testdata("broken/unreadable.svs").string()}, 1, "Bogus marker length", testdata("broken/unreadable.svs").string()},
      {{"info"}, 2, "slide is required", ""},
      {{"info", "--frobnicate", testdata("slides/small.svs").string()}, 2, "frobnicate", ""},
      {{"info", "--mpp", "-1", testdata("slides/small.svs").string()}, 2, "--mpp must be a positive number", ""},
      {{}, 2, "subcommand", ""},
      {{"synth", "--out", "/tmp/x.tif", "--size", "big"}, 2, "--size must look like WIDTHxHEIGHT", ""},
      {{"synth", "--out", "/nonexistent-dir/x.tif", "--size", "256x256"}, 1, "does not exist", "/nonexistent-dir/x.tif"},
  };
  for (const auto& c : cases) {
    const CliRun r = run_cli(c.args);
    std::string what;
    for (const auto& a : c.args) what += a + " ";
    EXPECT_FALSE(r.signalled) << what;
    EXPECT_EQ(r.code, c.code) << what << "\n" << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << what << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("wsi-heatmap: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << what << "\n" << r.err;
    if (!c.names.empty()) {
      EXPECT_NE(r.err.find(c.names), std::string::npos) << r.err;
    }
  }
}

TEST(CliHelp, HelpAndVersionExitZero) {
  const CliRun h = run_cli({"--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("synth"), std::string::npos);
  const CliRun v = run_cli({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("wsi-heatmap"), std::string::npos);
}

TEST(CliHelp, EverySubcommandsHelpEndsWithExamplesThatUseItsOwnOptions) {
  // The subcommands as the main --help lists them, each with an "Examples:" footer whose lines
  // start with wsi-heatmap and name only options that subcommand has.
  const CliRun top = run_cli({"--help"});
  ASSERT_EQ(top.code, 0);
  const std::string list = top.out.substr(top.out.find("Subcommands:"));
  std::istringstream lines(list);
  std::string line;
  std::getline(lines, line);
  int checked = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string sub;
    if (!(words >> sub)) continue;
    const CliRun h = run_cli({sub, "--help"});
    ASSERT_EQ(h.code, 0) << sub;
    const auto at = h.out.find("\nExamples:\n");
    ASSERT_NE(at, std::string::npos) << sub << " --help has no examples";
    std::istringstream ex(h.out.substr(at + 11));
    std::string example;
    int examples = 0;
    while (std::getline(ex, example)) {
      if (example.empty()) continue;
      ++examples;
      EXPECT_EQ(example.rfind("  wsi-heatmap ", 0), 0u) << sub << ": " << example;
      std::istringstream tokens(example.substr(0, example.find('#')));
      std::string t;
      const std::string options = h.out.substr(0, at);  // the help above the footer
      while (tokens >> t) {
        if (t.rfind("--", 0) != 0) continue;
        const bool listed = options.find(" " + t + " ") != std::string::npos ||
                            options.find("," + t + " ") != std::string::npos;
        EXPECT_TRUE(listed) << sub << " has no option " << t;
      }
    }
    EXPECT_GE(examples, 1) << sub;
    ++checked;
  }
  EXPECT_GE(checked, 11);
}

TEST(CliSynth, WritesSlideMaskAndAnnotationsThatInfoOpens) {
  test::ScratchDir dir;
  const auto slide = (dir / "s.tif").string(), mask = (dir / "m.tif").string(), xml = (dir / "a.xml").string();
  const CliRun r = run_cli({"synth", "--out", slide, "--size", "1024x768", "--seed", "4", "--mpp", "0.5",
                         "--tumours", "1", "--mask", mask, "--annotations", xml, "--pen-marks", "--noise", "0.2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const CliRun info = run_cli({"info", "--json", slide});
  ASSERT_EQ(info.code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["width"], 1024);
  EXPECT_EQ(j["height"], 768);
  EXPECT_NEAR(j["mpp"]["x"].get<double>(), 0.5, 1e-6);
  const CliRun minfo = run_cli({"info", "--json", mask});
  ASSERT_EQ(minfo.code, 0) << minfo.err;
  EXPECT_EQ(nlohmann::json::parse(minfo.out)["width"], 1024);
  EXPECT_TRUE(std::filesystem::exists(xml));
}

// Options that once passed where they should not (issue 20), each with the line it now gives.
TEST(CliBadOptions, ConflictingAbsurdAndNegativeValuesAreRefusedWithOneLine) {
  test::ScratchDir dir;
  const auto slide = (dir / "s.tif").string(), mask = (dir / "m.tif").string();
  ASSERT_EQ(run_cli({"synth", "--out", slide, "--size", "2048x2048", "--mask", mask}).code, 0);
  const auto out = (dir / "o").string();
  // --level and --target-mpp together: one of them was dropped silently.
  CliRun r = run_cli({"extract", slide, "--mask", mask, "-o", out, "--level", "1", "--target-mpp", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "wsi-heatmap: error: give --level or --target-mpp, not both: --level reads that level 1:1, "
                   "--target-mpp picks the level for a resolution\n");
  // A patch larger than the slide: 0 patches and exit 0 before.
  r = run_cli({"extract", slide, "--mask", mask, "-o", out, "--target-mpp", "1e9", "-q"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("target resolution 1e+09 um/px makes a 96-pixel patch 9.6e+07 mm wide, larger than the whole "
                       "slide (2048 x 2048 pixels at 0.25 um/px): check --target-mpp"),
            std::string::npos)
      << r.err;
  // Negative thread counts, and batch's own checks (they passed through to the children before).
  r = run_cli({"extract", slide, "--mask", mask, "-o", out, "--threads", "-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--batch", "0"}, {"--threads", "-1"}, {"--batch", "5000"}}) {
    std::vector<std::string> args{"batch", dir.path().string(), "-o", (dir / "b").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    r = run_cli(args);
    EXPECT_EQ(r.code, 2) << extra[0] << " " << extra[1];
    EXPECT_NE(r.err.find(extra[0]), std::string::npos) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "b" / "manifest.json"));
  }
}

// More threads than cores only contend: the count is lowered to the cores, and said once.
TEST(CliBadOptions, ThreadsAboveTheCoresAreLoweredWithANote) {
  test::ScratchDir dir;
  const auto slide = (dir / "s.tif").string(), mask = (dir / "m.tif").string();
  ASSERT_EQ(run_cli({"synth", "--out", slide, "--size", "2048x2048", "--mask", mask, "--threads", "10000"}).code, 0);
  const CliRun r = run_cli({"extract", slide, "--mask", mask, "-o", (dir / "o").string(), "--threads", "10000", "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("wsi-heatmap: note: --threads 10000: this process may run on "), std::string::npos) << r.err;
}

}  // namespace
}  // namespace wsi
