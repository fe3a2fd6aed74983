// Every subcommand's bad inputs with the exact text each must print (issue 20, deliverable 5): one
// table per command, as OpenSlide's test cases state the expected error of each bad file.
//
// A row runs the wsi-heatmap executable and checks the whole of stderr (one line, `wsi-heatmap:
// error: <file or option>: <what>; <what to do>`), the exit code (2: the command line names
// something unusable; 1: bad input or a failed read/write), the whole of stdout (nothing, unless
// the row says what), and that no file appears: each row writes into its own folder {O}, which
// must hold no file afterwards, and the fixtures' folder gains no file.
//
// Fixtures are generated here: a small synthetic slide with its mask and outlines (`synth`), PCam
// patch sets cut from it (`extract`), broken files written by the test, the committed files in
// testdata/, and the bundled demo model (models/demo-cnn.pt) with sidecars broken on purpose.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"
#include "wsi/image_io.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Placeholders in argv, err and out: {S} the fixtures' folder, {O} the row's own output folder
// (created empty before the run), {T} testdata/, {CWD} the working directory.
struct Row {
  std::string name;               // also the name of {O}
  std::vector<std::string> argv;  // after the program name
  int code;
  std::string err;          // the whole of stderr is "wsi-heatmap: error: " + err + "\n"
  std::string out = "";     // the whole of stdout
  bool unwritable = false;  // needs {S}/ro to be unwritable: skipped as root (root writes anyway)
};

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string run_ok(const std::vector<std::string>& args) {
  const test::CliResult r = test::run_wsi(args);
  if (r.code != 0) throw std::runtime_error("fixture command failed: " + args[0] + ": " + r.err);
  return r.out;
}

// The fixtures every table shares, made once per test process.
const fs::path& fixtures() {
  static test::ScratchDir dir;
  static const bool made = [] {
    const fs::path S = dir.path();
    const std::string s = S.string();
    run_ok({"synth", "--out", s + "/slide.tif", "--mask", s + "/slide_mask.tif", "--annotations", s + "/slide.xml",
            "--size", "1024x1024", "--mpp", "0.5", "--tumours", "2", "--seed", "3"});
    write(S / "empty.svs", "");
    write(S / "text.svs", "this is not a slide\n");
    write(S / "text.tif", "this is not a slide\n");
    write(S / "truncated.tif", test::slurp(S / "slide.tif").substr(0, 4096));
    fs::create_directories(S / "dir");
    fs::create_directories(S / "ro");
    fs::permissions(S / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    write(S / "bad.json", "{bad\n");
    write(S / "preset_unknown.json", R"({"strid": 48})");
    write(S / "preset_bad.json", R"({"stride": )");
    write(S / "mpp_bad.csv", "slide,mpp\nslide,abc\n");
    write(S / "mpp_header.csv", "name,um\nslide,0.5\n");

    // The demo model, and copies whose sidecar (NAME.json) is missing or broken.
    const fs::path demo = fs::path(WSI_SOURCE_DIR) / "models" / "demo-cnn.pt";
    const json sidecar = json::parse(test::slurp(fs::path(WSI_SOURCE_DIR) / "models" / "demo-cnn.json"));
    const fs::path M = S / "models";
    fs::create_directories(M);
    const auto model = [&](const std::string& name, const std::string& side, const std::string& weights) {
      write(M / (name + ".pt"), weights);
      if (!side.empty()) write(M / (name + ".json"), side);
    };
    const std::string weights = test::slurp(demo);
    model("demo", sidecar.dump(2), weights);
    model("nosidecar", "", weights);
    json j = sidecar;
    j["strid"] = 1;
    model("unknown_key", j.dump(2), weights);
    j = sidecar;
    j["patch_size"] = "96";
    model("wrong_type", j.dump(2), weights);
    j = sidecar;
    j["patch_size"] = 0;
    model("patch0", j.dump(2), weights);
    j = sidecar;
    j["output"] = "odds";
    model("bad_enum", j.dump(2), weights);
    model("bad_json", R"({"format": "wsi-heatmap-model/1",)", weights);
    model("empty", sidecar.dump(2), "");
    model("text", sidecar.dump(2), "not a model\n");
    model("truncated", sidecar.dump(2), weights.substr(0, 5000));

    // evaluate-slides: results for the slide named "slide", and ground truth that is broken.
    write(S / "results" / "slide.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.5\n");
    write(S / "results_header" / "slide.patches.csv", "x,y\n0,0\n");
    write(S / "truth_text" / "slide.tif", "this is not a mask\n");
    write(S / "truth_empty" / "slide_mask.tif", "");
    write(S / "truth_truncated" / "slide_mask.tif", test::slurp(S / "slide_mask.tif").substr(0, 4096));
    write(S / "truth_json" / "slide.json", "{bad\n");
    write(S / "kaggle_label" / "train_labels.csv", "id,label\nabc,2\n");
    write(S / "kaggle_empty" / "train_labels.csv", "id,label\n");
    return true;
  }();
  (void)made;
  return dir.path();
}

// PCam patch sets cut from the slide: both classes (96 px), 64 px patches, one class only.
const fs::path& patch_sets() {
  static const bool made = [] {
    const std::string s = fixtures().string();
    run_ok({"extract", s + "/slide.tif", "--mask", s + "/slide_mask.tif", "-o", s + "/pcam", "-q", "--label-rule",
            "any", "--min-tissue", "0.1"});
    run_ok({"extract", s + "/slide.tif", "--mask", s + "/slide_mask.tif", "-o", s + "/pcam64", "-q", "--patch-size",
            "64", "--min-tissue", "0.1"});
    run_ok({"extract", s + "/slide.tif", "--unlabelled", "-o", s + "/pcam_normal", "-q", "--min-tissue", "0.1"});
    write(fixtures() / "pcam" / "only_x.h5", test::slurp(fixtures() / "pcam" / "patches_train_x.h5"));
    write(fixtures() / "empty_x.h5", "");
    return true;
  }();
  (void)made;
  return fixtures();
}

// Images for predict (the demo model's patches are 96 x 96): one patch, larger and smaller images.
const fs::path& predict_images() {
  static const bool made = [] {
    const fs::path I = fixtures() / "images";
    fs::create_directories(I);
    for (const auto& [name, w, h] : {std::tuple{"patch.png", 96, 96}, {"big.png", 200, 150}, {"small.png", 64, 64}}) {
      RgbImage img(w, h);
      for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 37 % 256);
      write_png(img, I / name);
    }
    return true;
  }();
  (void)made;
  return fixtures();
}

// view: the demo model's results for the slide, and results folders broken in one way each.
const fs::path& view_results() {
  static const bool made = [] {
    const fs::path S = fixtures();
    const std::string s = S.string();
    run_ok({s + "/slide.tif", "-o", s + "/heat", "-q", "--threads", "2"});
    run_ok({"synth", "--out", s + "/small.tif", "--size", "512x512", "--mpp", "0.5", "--seed", "3"});
    run_ok({"synth", "--out", s + "/fine.tif", "--size", "1024x1024", "--mpp", "0.25", "--seed", "3"});
    const auto copy = [&](const std::string& to) { fs::copy(S / "heat", S / to, fs::copy_options::recursive); };
    copy("heat_gone");
    json summary = json::parse(test::slurp(S / "heat" / "slide.summary.json"));
    summary["slide"]["path"] = s + "/gone.tif";
    write(S / "heat_gone" / "slide.summary.json", summary.dump(2));
    copy("heat_two");
    fs::copy_file(S / "heat" / "slide.summary.json", S / "heat_two" / "other.summary.json");
    copy("heat_badjson");
    write(S / "heat_badjson" / "slide.summary.json", "{bad\n");
    copy("heat_noprob");
    fs::remove(S / "heat_noprob" / "slide.prob.tif");
    copy("heat_mixed");  // a probability raster of another slide's size
    fs::copy_file(S / "small.tif", S / "heat_mixed" / "slide.prob.tif", fs::copy_options::overwrite_existing);
    test::run_wsi({"batch", s + "/text.svs", "-o", s + "/b", "-q"});  // one failed slide
    return true;
  }();
  (void)made;
  return fixtures();
}

std::string fill(std::string s, const fs::path& out_dir) {
  const std::pair<std::string, std::string> vars[] = {{"{S}", fixtures().string()},
                                                      {"{O}", out_dir.string()},
                                                      {"{T}", std::string(WSI_TESTDATA_DIR)},
                                                      {"{CWD}", fs::current_path().string()}};
  for (const auto& [key, value] : vars)
    for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size()))
      s.replace(at, key.size(), value);
  return s;
}

// Regular files (and links) under `dir`, relative to it.
std::set<std::string> files_under(const fs::path& dir) {
  std::set<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (!it->is_directory()) files.insert(fs::relative(it->path(), dir).string());
  return files;
}

void run_table(const std::string& command, const std::vector<Row>& rows) {
  const fs::path S = fixtures();
  const std::set<std::string> before = files_under(S);
  std::set<std::string> names;
  struct Job {
    const Row* row;
    fs::path out_dir;
    std::future<test::CliResult> result;
  };
  std::vector<Job> jobs;
  for (const Row& row : rows) {
    ASSERT_TRUE(names.insert(row.name).second) << "two rows named " << row.name;
    if (row.unwritable && ::geteuid() == 0) {
      std::cout << "[ skipped ] " << command << " / " << row.name << ": root writes into read-only folders\n";
      continue;
    }
    Job job{&row, S / "out" / command / row.name, {}};
    fs::create_directories(job.out_dir);
    jobs.push_back(std::move(job));
  }
  // Each run is mostly the executable's start-up (LibTorch), so a few run side by side.
  constexpr size_t kParallel = 4;
  for (size_t first = 0; first < jobs.size(); first += kParallel) {
    for (size_t i = first; i < std::min(jobs.size(), first + kParallel); ++i) {
      std::vector<std::string> args;
      for (const std::string& a : jobs[i].row->argv) args.push_back(fill(a, jobs[i].out_dir));
      jobs[i].result = std::async(std::launch::async, [args] { return test::run_wsi(args); });
    }
    for (size_t i = first; i < std::min(jobs.size(), first + kParallel); ++i) jobs[i].result.wait();
  }
  for (Job& job : jobs) {
    const Row& row = *job.row;
    SCOPED_TRACE(command + " / " + row.name);
    const test::CliResult r = job.result.get();
    EXPECT_FALSE(r.signalled);
    EXPECT_EQ(r.code, row.code) << r.err;
    EXPECT_EQ(r.err, "wsi-heatmap: error: " + fill(row.err, job.out_dir) + "\n");
    EXPECT_EQ(r.out, fill(row.out, job.out_dir));
    const std::set<std::string> left = files_under(job.out_dir);
    EXPECT_TRUE(left.empty()) << "a failed run left " << *left.begin() << " in its output folder";
  }
  std::set<std::string> added;
  const std::set<std::string> after = files_under(S);
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::inserter(added, added.end()));
  EXPECT_TRUE(added.empty()) << "a failed run left " << *added.begin() << " among the fixtures";
}

// CLI11's own lines end so (main.cpp adds it): its texts name the option or argument.
const std::string kHelp = " (run with --help for usage)";
const std::string kNotASlide =
    "cannot open as a slide: not a format OpenSlide recognises (Aperio .svs, Hamamatsu .ndpi/.vms, Leica .scn, MIRAX "
    ".mrxs, Philips/Ventana/generic tiled TIFF, ...); check that this is the slide file";
const std::string kEmptySlide =
    "cannot open as a slide: the file is empty (0 bytes); it was probably cut short while copying — copy it again";
const std::string kDamagedTiff =
    "cannot open as a slide: a damaged TIFF (libtiff cannot read its header); copy or export the file again";
const std::string kTruncatedTiff =
    "cannot open as a slide: a truncated TIFF (the file ends before its images do); it was probably cut short while "
    "copying — copy it again";
const std::string kConvert =
    "convert it to a tiled pyramidal TIFF, e.g. `vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg "
    "--bigtiff`";
const std::string kStriped =
    "{T}/broken/kidney-48-5.tif: cannot open as a slide: a striped (non-tiled) TIFF, not a tiled whole-slide image; " +
    kConvert;
const std::string kUnreadable =
    "{T}/broken/unreadable.svs: cannot read level 0, x=0 y=0 (level-0 px), 16x16 (level-0 px): Bogus marker length. "
    "The slide is damaged at or before this place; OpenSlide refuses further reads of this handle (re-export the "
    "slide, or exclude the region)";
const std::string kNoMpp =
    "{T}/slides/tcga-cr-7395-01a-01-ts1.svs: no microns-per-pixel in this slide's metadata; pass --mpp (e.g. --mpp "
    "0.25 for a 40x scan, 0.5 for 20x)";
const std::string kBadMpp =
    "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x scan), not ";
const std::string kNoSidecar =
    "model {S}/models/nosidecar.pt has no sidecar {S}/models/nosidecar.json: write one that describes its input and "
    "output (see docs/model-contract.md)";
const std::string kUnknownKey =
    "model sidecar {S}/models/unknown_key.json: unknown key \"strid\" (known keys: architecture, channel_order, "
    "description, format, gradcam, input_size, mean, mpp, name, output, patch_size, positive_index, resize, scale, "
    "std, training)";
const std::string kWrongType =
    "model sidecar {S}/models/wrong_type.json: \"patch_size\" must be an integer, not string";
const std::string kBadJsonSidecar =
    "model sidecar {S}/models/bad_json.json is not valid JSON: parse error at line 1, column 34: syntax error while "
    "parsing object key - unexpected end of input; expected string literal";
const std::string kNotAWeightFile =
    "{S}/models/text.pt: not a weight archive of the architecture its sidecar names (not a ZIP archive); was it saved "
    "by wsi-heatmap train with the same architecture, width and blocks?";
const std::string kEmptyModel =
    "{S}/models/empty.pt: the file is empty (0 bytes); it was probably cut short while copying — copy it again";
const std::string kUnwritable = "{S}/ro: the output directory is not writable; fix its permissions or choose another";
const std::string kIsAFile =
    "{S}/slide.tif: is a file, not a directory; give -o a directory (it is created if missing)";
const std::string kThreads = "--threads must be a whole number, 0 or more (0 = one per core), not '-1'";

// The tables keep one row per entry, as a reader scans them; clang-format would spread a row over lines.
// clang-format off
TEST(CliErrorTable, Info) {
  run_table("info", {
      {"missing-file", {"info", "{S}/nope.svs"}, 2, "{S}/nope.svs: no such file; check the path"},
      {"missing-relative-path", {"info", "no-such-slide.svs"}, 2,
       "no-such-slide.svs: no such file; check the path (it is relative to {CWD})"},
      {"directory", {"info", "{S}/dir"}, 2, "{S}/dir: is a directory, not a slide file; pass one slide file"},
      {"device", {"info", "/dev/null"}, 1,
       "/dev/null: not a regular file (a device, socket or pipe); pass a slide file"},
      {"empty-svs", {"info", "{S}/empty.svs"}, 1, "{S}/empty.svs: " + kEmptySlide},
      {"text-named-svs", {"info", "{S}/text.svs"}, 1, "{S}/text.svs: " + kNotASlide},
      {"text-named-tif", {"info", "{S}/text.tif"}, 1, "{S}/text.tif: " + kNotASlide},
      {"png", {"info", "{T}/broken/boxes.png"}, 1,
       "{T}/broken/boxes.png: cannot open as a slide: a PNG image, not a whole-slide image; " + kConvert},
      {"striped-tiff", {"info", "{T}/broken/kidney-48-5.tif"}, 1, kStriped},
      {"truncated-tiff-header", {"info", "{S}/truncated.tif"}, 1, "{S}/truncated.tif: " + kDamagedTiff},
      {"truncated-tiff-pyramid", {"info", "{S}/truth_truncated/slide_mask.tif"}, 1,
       "{S}/truth_truncated/slide_mask.tif: " + kTruncatedTiff},
      {"corrupt-tile", {"info", "{T}/broken/unreadable.svs"}, 1, kUnreadable},
      {"mpp-zero", {"info", "--mpp", "0", "{S}/slide.tif"}, 2, kBadMpp + "0"},
      {"mpp-nan", {"info", "--mpp", "nan", "{S}/slide.tif"}, 2, kBadMpp + "nan"},
      {"mpp-not-a-number", {"info", "--mpp", "abc", "{S}/slide.tif"}, 2, "Could not convert: --mpp = abc" + kHelp},
      {"two-slides", {"info", "{S}/slide.tif", "{S}/slide_mask.tif"}, 2,
       "The following argument was not expected: {S}/slide_mask.tif" + kHelp},
      {"no-slide", {"info", "--json"}, 2, "slide is required" + kHelp},
  });
}

TEST(CliErrorTable, Synth) {
  run_table("synth", {
      {"no-out", {"synth", "--size", "256x256"}, 2, "--out is required" + kHelp},
      {"size-too-small", {"synth", "-o", "{O}/s.tif", "--size", "10x10"}, 2,
       "synth: --size must be at least 64x64 pixels"},
      {"size-beyond-integers", {"synth", "-o", "{O}/s.tif", "--size", "99999999999999999999x64"}, 2,
       "synth: --size is limited to 1000000x1000000 pixels"},
      {"size-word", {"synth", "-o", "{O}/s.tif", "--size", "large"}, 2,
       "--size must look like WIDTHxHEIGHT, e.g. 20000x20000 (got 'large')"},
      {"mpp-zero", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--mpp", "0"}, 2,
       "synth: --mpp must be between 0.05 and 20 micrometres per pixel"},
      {"tumours-out-of-range", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--tumours", "101"}, 2,
       "synth: --tumours must be between 0 and 100"},
      {"tumours-not-whole", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--tumours", "1.5"}, 2,
       "Could not convert: --tumours = 1.5" + kHelp},
      {"noise-out-of-range", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--noise", "2"}, 2,
       "synth: --noise must be between 0 and 1"},
      {"quality-zero", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--quality", "0"}, 2,
       "--quality must be in 1..100 (JPEG quality), not 0"},
      {"threads-negative", {"synth", "-o", "{O}/s.tif", "--size", "256x256", "--threads", "-1"}, 2, kThreads},
      {"out-png", {"synth", "-o", "{O}/s.png", "--size", "256x256"}, 2,
       "--out {O}/s.png: synth writes the slide as a pyramidal TIFF; name it .tif or .tiff"},
      {"out-directory", {"synth", "-o", "{S}/dir", "--size", "256x256"}, 2,
       "--out {S}/dir: is a directory; give a file name for the slide"},
      {"out-empty", {"synth", "-o", "", "--size", "256x256"}, 2, "--out '': give a file name for the slide"},
      {"out-in-missing-directory", {"synth", "-o", "{O}/missing/s.tif", "--size", "256x256"}, 1,
       "{O}/missing/s.tif: the output directory {O}/missing does not exist; create it first"},
      {"mask-is-the-slide", {"synth", "-o", "{O}/s.tif", "--mask", "{O}/s.tif", "--size", "256x256"}, 2,
       "--mask {O}/s.tif: the same file as --out; give the mask its own name (e.g. NAME_mask.tif)"},
      {"annotations-json", {"synth", "-o", "{O}/s.tif", "--annotations", "{O}/s.json", "--size", "256x256"}, 2,
       "--annotations {O}/s.json: synth writes the tumour outlines as ASAP XML; name it .xml"},
      {"unwritable-directory", {"synth", "-o", "{S}/ro/s.tif", "--size", "256x256"}, 1,
       "{S}/ro/s.tif: cannot create the file: Permission denied", "", true},
  });
}

TEST(CliErrorTable, Mask) {
  run_table("mask", {
      {"missing-slide", {"mask", "{S}/nope.svs", "-o", "{O}/m.png"}, 2, "{S}/nope.svs: no such file; check the path"},
      {"directory", {"mask", "{S}/dir", "-o", "{O}/m.png"}, 2,
       "{S}/dir: is a directory, not a slide file; pass one slide file"},
      {"empty-svs", {"mask", "{S}/empty.svs", "-o", "{O}/m.png"}, 1, "{S}/empty.svs: " + kEmptySlide},
      {"striped-tiff", {"mask", "{T}/broken/kidney-48-5.tif", "-o", "{O}/m.png"}, 1, kStriped},
      {"corrupt-tile", {"mask", "{T}/broken/unreadable.svs", "-o", "{O}/m.png"}, 1, kUnreadable},
      {"no-mpp", {"mask", "{T}/slides/tcga-cr-7395-01a-01-ts1.svs", "-o", "{O}/m.png"}, 1, kNoMpp},
      {"out-is-the-slide", {"mask", "{S}/slide.tif", "-o", "{S}/slide.tif"}, 2,
       "--out {S}/slide.tif: that is the slide itself; give the mask its own name (e.g. NAME_tissue.png)"},
      {"overlay-is-the-mask", {"mask", "{S}/slide.tif", "-o", "{O}/m.png", "--overlay", "{O}/m.png"}, 2,
       "--overlay {O}/m.png: the same file as --out; give the overlay its own name"},
      {"out-directory", {"mask", "{S}/slide.tif", "-o", "{S}/dir"}, 2,
       "tissue mask {S}/dir: unknown extension ''; name it .png or .tif/.tiff to choose the format"},
      {"white-threshold-out-of-range", {"mask", "{S}/slide.tif", "-o", "{O}/m.png", "--white-threshold", "300"}, 2,
       "--white-threshold must be in 0..255, not 300"},
      {"black-above-white", {"mask", "{S}/slide.tif", "-o", "{O}/m.png", "--black-threshold", "250"}, 2,
       "--black-threshold must be below --white-threshold (220), not 250"},
      {"closing-not-a-number", {"mask", "{S}/slide.tif", "-o", "{O}/m.png", "--closing-um", "wide"}, 2,
       "Could not convert: --closing-um = wide" + kHelp},
      {"out-in-missing-directory", {"mask", "{S}/slide.tif", "-o", "{O}/missing/m.png"}, 1,
       "{O}/missing/m.png: the output directory {O}/missing does not exist; create it first"},
      {"unwritable-directory", {"mask", "{S}/slide.tif", "-o", "{S}/ro/m.png"}, 1,
       "{S}/ro/m.png: cannot create the file: Permission denied", "", true},
  });
}

TEST(CliErrorTable, Extract) {
  const std::vector<std::string> ok = {"extract", "{S}/slide.tif", "--mask", "{S}/slide_mask.tif", "-o", "{O}", "-q"};
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = ok;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  run_table("extract", {
      {"missing-slide", {"extract", "{S}/nope.tif", "--mask", "{S}/slide_mask.tif", "-o", "{O}"}, 2,
       "{S}/nope.tif: no such file; check the path"},
      {"directory", {"extract", "{S}/dir", "--mask", "{S}/slide_mask.tif", "-o", "{O}"}, 2,
       "{S}/dir: is a directory, not a file; pass slide files (wsi-heatmap batch DIR --extract takes a directory of "
       "slides)"},
      {"no-ground-truth", {"extract", "{S}/slide.tif", "-o", "{O}"}, 2,
       "no ground truth for {S}/slide.tif: give --mask or --annotations, or --unlabelled to label every patch 0"},
      {"missing-mask", {"extract", "{S}/slide.tif", "--mask", "{S}/nope_mask.tif", "-o", "{O}"}, 2,
       "{S}/nope_mask.tif: no such file; check the path"},
      {"missing-annotations", {"extract", "{S}/slide.tif", "--annotations", "{S}/nope.xml", "-o", "{O}"}, 2,
       "{S}/nope.xml: no such annotation file"},
      {"mask-not-an-image", {"extract", "{S}/slide.tif", "--mask", "{S}/text.tif", "-o", "{O}", "-q"}, 1,
       "{S}/text.tif: " + kNotASlide},
      {"annotations-not-annotations",
       {"extract", "{S}/slide.tif", "--annotations", "{S}/text.tif", "-o", "{O}", "-q"}, 1,
       "{S}/text.tif: not an annotation file; supported formats: ASAP XML (<ASAP_Annotations>), Camelyon JSON "
       "({\"positive\": [...], \"negative\": [...]}) and GeoJSON (a FeatureCollection, a Feature or an array of "
       "Features)"},
      {"annotations-bad-json", {"extract", "{S}/slide.tif", "--annotations", "{S}/bad.json", "-o", "{O}", "-q"}, 1,
       "{S}/bad.json: invalid JSON: parse error at line 1, column 2: syntax error while parsing object key - invalid "
       "literal; last read: '{b'; expected string literal"},
      {"empty-svs", {"extract", "{S}/empty.svs", "--mask", "{S}/slide_mask.tif", "-o", "{O}", "-q"}, 1,
       "{S}/empty.svs: " + kEmptySlide},
      {"format-unknown", with({"--format", "hdf5"}), 2,
       "unknown dataset format 'hdf5': use 'pcam' (HDF5 x/y files + meta CSV) or 'kaggle' (one TIFF per patch + labels "
       "CSV)"},
      {"label-rule-unknown", with({"--label-rule", "middle"}), 2,
       "unknown label rule 'middle' (use center, center:N, any or fraction:T with 0 < T <= 1)"},
      {"split-not-summing-to-one", with({"--split", "train=0.5"}), 2,
       "split fractions of 'train=0.5' sum to 0.5, not 1"},
      {"stride-zero", with({"--stride", "0"}), 2,
       "--stride must be in 1..384 patch pixels (up to 4 patch sides), not 0"},
      {"patch-size-word", with({"--patch-size", "big"}), 2, "Could not convert: --patch-size = big" + kHelp},
      {"min-tissue-out-of-range", with({"--min-tissue", "2"}), 2,
       "--min-tissue must be in 0..1 (the tissue fraction of a patch; 0 = every patch), not 2"},
      {"max-per-slide-negative", with({"--max-per-slide", "-1"}), 2,
       "--max-per-slide must be 0 (no cap) or more, not -1"},
      {"mpp-negative", with({"--mpp", "-1"}), 2, kBadMpp + "-1"},
      {"level-missing-in-slide", with({"--level", "9"}), 1,
       "{S}/slide.tif: --level 9: the slide has 3 levels (0..2); pick one of them"},
      {"mask-twice-for-one-slide", with({"--mask", "{S}/slide_mask.tif"}), 2,
       "--mask was given 2 times for 1 slides: give one per slide, in the same order, or one pattern with {stem} (e.g. "
       "--mask 'masks/{stem}_mask.tif')"},
      {"out-is-a-file", {"extract", "{S}/slide.tif", "--mask", "{S}/slide_mask.tif", "-o", "{S}/slide.tif"}, 2,
       kIsAFile},
      {"unwritable-directory", {"extract", "{S}/slide.tif", "--mask", "{S}/slide_mask.tif", "-o", "{S}/ro"}, 2,
       kUnwritable, "", true},
  });
}

TEST(CliErrorTable, Evaluate) {
  patch_sets();
  const auto eval = [](const std::string& data, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"evaluate", data, "-m", "{S}/models/demo.pt", "-o", "{O}", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string pcam = "{S}/pcam/patches_train_x.h5";
  const auto model = [&](const std::string& name) {
    return std::vector<std::string>{"evaluate", pcam, "-m", "{S}/models/" + name + ".pt", "-o", "{O}", "-q"};
  };
  run_table("evaluate", {
      {"missing-data", eval("{S}/nope_x.h5"), 2, "{S}/nope_x.h5: no such file or directory"},
      {"directory-without-labels", eval("{S}/dir"), 2,
       "{S}/dir: a directory must hold train_labels.csv (Kaggle layout); for PCam give the *_x.h5 file"},
      {"slide-instead-of-data", eval("{S}/slide.tif"), 2,
       "{S}/slide.tif: give a PCam *_x.h5 file, a Kaggle labels CSV, or a directory with train_labels.csv"},
      {"labels-file-instead-of-patches", eval("{S}/pcam/patches_train_y.h5"), 1,
       "{S}/pcam/patches_train_y.h5: a PCam patch file is named *_x.h5 (its labels are in *_y.h5)"},
      {"empty-h5", eval("{S}/empty_x.h5"), 1, "{S}/empty_x.h5: not an HDF5 file HDF5 can open"},
      {"patches-without-labels", eval("{S}/pcam/only_x.h5"), 1,
       "{S}/pcam/only_x.h5: its labels file {S}/pcam/only_y.h5 cannot be opened"},
      {"kaggle-label-not-binary", eval("{S}/kaggle_label"), 1,
       "{S}/kaggle_label/train_labels.csv: line 2: label must be 0 or 1, not '2'"},
      {"kaggle-no-patches", eval("{S}/kaggle_empty"), 1, "{S}/kaggle_empty/train_labels.csv: no patches listed"},
      {"missing-model", model("nope"), 2, "{S}/models/nope.pt: no such model file"},
      {"model-without-sidecar", model("nosidecar"), 2, kNoSidecar},
      {"sidecar-unknown-key", model("unknown_key"), 1, kUnknownKey},
      {"sidecar-wrong-type", model("wrong_type"), 1, kWrongType},
      {"sidecar-bad-json", model("bad_json"), 1, kBadJsonSidecar},
      {"model-not-a-weight-file", model("text"), 1, kNotAWeightFile},
      {"patch-size-mismatch", eval("{S}/pcam64/patches_train_x.h5"), 1,
       "PCam {S}/pcam64/patches_train_x.h5 (14 patches of 64x64) has 64 px patches but {S}/models/demo.pt "
       "expects patch_size 96"},
      {"batch-zero", eval(pcam, {"--batch", "0"}), 2, "--batch must be >= 1"},
      {"threshold-out-of-range", eval(pcam, {"--threshold", "2"}), 2, "--threshold must be in 0..1"},
      {"gallery-negative", eval(pcam, {"--gallery", "-1"}), 2, "--gallery must be 0 (none) or more, not -1"},
      {"feature-maps-negative", eval(pcam, {"--feature-maps", "-1"}), 2,
       "--feature-maps must be 0 (none) to 256 patches, not -1"},
      {"feature-maps-too-many", eval(pcam, {"--feature-maps", "257"}), 2,
       "--feature-maps must be 0 (none) to 256 patches, not 257"},
      {"feature-maps-word", eval(pcam, {"--feature-maps", "all"}), 2, "Could not convert: --feature-maps = all" + kHelp},
      {"device-unknown", eval(pcam, {"--device", "tpu"}), 2, "unknown device 'tpu': use cpu or cuda"},
      {"fp16-on-cpu", eval(pcam, {"--precision", "fp16"}), 2,
       "--precision fp16 needs --device cuda; on a CPU use bf16"},
      {"out-is-a-file", {"evaluate", pcam, "-m", "{S}/models/demo.pt", "-o", "{S}/slide.tif"}, 2, kIsAFile},
      {"unwritable-directory", {"evaluate", pcam, "-m", "{S}/models/demo.pt", "-o", "{S}/ro"}, 2,
       kUnwritable, "", true},
  });
}

TEST(CliErrorTable, Train) {
  patch_sets();
  const std::string pcam = "{S}/pcam/patches_train_x.h5";
  const auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"train", pcam, "-o", "{O}/m", "-q", "--epochs", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string demo = "{S}/models/demo.pt";
  std::vector<Row> rows = {
      {"no-data", {"train", "-o", "{O}/m"}, 2, "data is required" + kHelp},
      {"no-out", {"train", pcam}, 2, "--out is required" + kHelp},
      {"missing-data", {"train", "{S}/nope_x.h5", "-o", "{O}/m"}, 2, "{S}/nope_x.h5: no such file or directory"},
      {"not-hdf5", {"train", "{S}/empty_x.h5", "-o", "{O}/m"}, 1, "{S}/empty_x.h5: not an HDF5 file HDF5 can open"},
      {"missing-validation-set", train({"--val", "{S}/nope_x.h5"}), 2, "{S}/nope_x.h5: no such file or directory"},
      {"validation-patch-size-differs", train({"--val", "{S}/pcam64/patches_train_x.h5"}), 2,
       "the validation set has 64 px patches, the training set 96 px: use sets extracted with the same patch size"},
      {"arch-unknown", train({"--arch", "vgg"}), 2, "--arch must be cancernet or resnet, not 'vgg'"},
      {"resize-unknown", train({"--resize", "cubic"}), 2, "--resize must be nearest, bilinear or area, not 'cubic'"},
      {"epochs-zero", {"train", pcam, "-o", "{O}/m", "--epochs", "0"}, 2, "--epochs must be at least 1"},
      {"lr-word", train({"--lr", "fast"}), 2, "Could not convert: --lr = fast" + kHelp},
      {"zoom-too-strong", train({"--zoom", "2"}), 2, "--zoom must be 0 or more and below 0.9 (0 = off), not 2"},
      {"rotation-negative", train({"--rotation", "-5"}), 2, "--rotation must be in 0..180 (0 = off), not -5"},
      {"val-fraction-out-of-range", train({"--val-fraction", "1.5"}), 2, "--val-fraction must be in (0, 0.9)"},
      {"dropout-one", train({"--dropout", "1"}), 2,
       "--dropout must be in 0..1 (below 1; leave it out for the architecture's default)"},
      {"dropout-negative", train({"--dropout", "-0.5"}), 2,
       "--dropout must be in 0..1 (below 1; leave it out for the architecture's default)"},
      {"max-patches-negative", train({"--max-patches-per-epoch", "-5"}), 2,
       "--max-patches-per-epoch must be 0 (all) or more, not -5"},
      {"threads-negative", train({"--threads", "-1"}), 2, kThreads},
      {"out-directory", {"train", pcam, "-o", "{S}/dir"}, 2,
       "--out {S}/dir: is a directory; give the model's file name, e.g. {S}/dir/model.pt"},
      {"out-ends-in-slash", {"train", pcam, "-o", "{O}/"}, 2,
       "--out '{O}/': give the model's file name, e.g. DIR/model.pt"},
      {"out-in-missing-directory", {"train", pcam, "-o", "{O}/missing/m"}, 2,
       "--out {O}/missing/m: the directory {O}/missing does not exist; create it first"},
      {"one-class-only", {"train", "{S}/pcam_normal/patches_train_x.h5", "-o", "{O}/m", "-q"}, 1,
       "PCam {S}/pcam_normal/patches_train_x.h5 (15 patches of 96x96): the training part has 0 tumour and 13 normal "
       "patches; both classes are needed",
       "training cancernet (width 32) on PCam {S}/pcam_normal/patches_train_x.h5 (15 patches of 96x96)\nvalidating "
       "on a random 0.1 of it\n"},
      {"unwritable-directory", {"train", pcam, "-o", "{S}/ro/m"}, 2, kUnwritable, "", true},
      // Fine-tuning (--init).
      {"init-missing", train({"--init", "{S}/models/nope.pt"}), 2, "{S}/models/nope.pt: no such model file"},
      {"init-sidecar-unknown-key", train({"--init", "{S}/models/unknown_key.pt"}), 1, kUnknownKey},
      {"init-with-arch", train({"--init", demo, "--arch", "resnet"}), 2,
       "--arch does not apply to --init: the network, its input size, resize and mpp come from " + demo +
       " and its sidecar"},
      {"init-with-input-size", train({"--init", demo, "--input-size", "96"}), 2,
       "--input-size does not apply to --init: the network, its input size, resize and mpp come from " + demo +
       " and its sidecar"},
      {"init-patch-size-differs", {"train", "{S}/pcam64/patches_train_x.h5", "-o", "{O}/m", "-q", "--init", demo}, 1,
       "PCam {S}/pcam64/patches_train_x.h5 (14 patches of 64x64) has 64 px patches but " + demo +
       " expects patch_size 96 (at 0.972 µm/px, its sidecar): extract patches of that size"},
      {"freeze-without-init", train({"--freeze", "features"}), 2,
       "--freeze features needs --init MODEL.pt (a new network has no trained features)"},
      {"freeze-unknown", train({"--init", demo, "--freeze", "all"}), 2, "--freeze must be none or features, not 'all'"},
      {"freeze-epochs-not-below-epochs", train({"--init", demo, "--freeze", "features", "--freeze-epochs", "1"}), 2,
       "--freeze-epochs 1 must be below --epochs 1: the epochs after it train everything"},
      {"freeze-epochs-default-not-below-epochs", train({"--init", demo, "--freeze", "features"}), 2,
       "--freeze-epochs 2 (the default) must be below --epochs 1: the epochs after it train everything"},
      {"freeze-epochs-zero", train({"--init", demo, "--freeze", "features", "--freeze-epochs", "0"}), 2,
       "--freeze-epochs must be at least 1, not 0"},
      {"freeze-epochs-without-freeze", train({"--init", demo, "--freeze-epochs", "2"}), 2,
       "--freeze-epochs needs --freeze features"},
      {"finetune-lr-out-of-range", train({"--init", demo, "--freeze", "features", "--finetune-lr", "2"}), 2,
       "--finetune-lr must be in (0, 1]"},
      {"finetune-lr-without-freeze", train({"--init", demo, "--finetune-lr", "0.0001"}), 2,
       "--finetune-lr needs --freeze features (it is the rate after the frozen epochs; without freezing, --lr is the "
       "rate)"},
      {"bn-unknown", train({"--init", demo, "--bn", "sometimes"}), 2, "--bn must be frozen or train, not 'sometimes'"},
      {"bn-frozen-without-init", train({"--bn", "frozen"}), 2,
       "--bn frozen needs --init MODEL.pt (a new network must learn its batch-norm statistics)"},
      {"device-unknown", train({"--device", "tpu"}), 2, "unknown device 'tpu': use cpu or cuda"},
      {"out-is-the-init-model", {"train", pcam, "-o", "{S}/models/demo", "-q", "--init", demo}, 2,
       "--out {S}/models/demo.pt is the --init model: write the fine-tuned model to another file"},
  };
  // TorchScript inits (tests/make_test_models.py): one without the features/classify split.
  if (const fs::path* models = test::models_dir()) {
    const std::string nosplit = (*models / "nosplit.pt").string(), cnn = (*models / "cnn.pt").string();
    rows.push_back({"freeze-without-split",
                    {"train", pcam, "-o", "{O}/m", "-q", "--epochs", "3", "--init", nosplit, "--freeze", "features"}, 2,
                    nosplit + ": --freeze features needs the model's features/classify split, and its sidecar " +
                        (*models / "nosplit.json").string() +
                        " names no \"gradcam\" methods; export the model with both (tools/export_model.py does)"});
    rows.push_back({"dropout-with-torchscript-init", train({"--init", cnn, "--dropout", "0.2"}), 2,
                    "--dropout applies to the built-in networks; " + cnn +
                        " is TorchScript, whose dropout is part of the module"});
  } else {
    std::cout << "[ skipped ] train / TorchScript --init rows: /usr/bin/python3 with torch and numpy is missing\n";
  }
  run_table("train", rows);
}

TEST(CliErrorTable, Predict) {
  patch_sets();
  predict_images();
  const auto pred = [](const std::string& input, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"predict", input, "-m", "{S}/models/demo.pt", "-o", "{O}", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string patch = "{S}/images/patch.png";
  const auto model = [&](const std::string& name) {
    return std::vector<std::string>{"predict", patch, "-m", "{S}/models/" + name + ".pt", "-o", "{O}", "-q"};
  };
  run_table("predict", {
      {"no-input", {"predict", "-m", "{S}/models/demo.pt", "-o", "{O}"}, 2, "inputs is required" + kHelp},
      {"missing-input", pred("{S}/nope.png"), 2, "{S}/nope.png: no such file or directory; check the path"},
      {"folder-without-images", pred("{S}/dir"), 2,
       "{S}/dir: no images (.tif, .tiff, .png, .jpg, .jpeg) and no train_labels.csv in this directory"},
      {"not-an-image", pred("{S}/text.tif"), 1,
       "{S}/text.tif: not a TIFF, PNG or JPEG image (by its first bytes); convert it to PNG first"},
      {"empty-image", pred("{S}/empty.svs"), 1,
       "{S}/empty.svs: the file is empty (0 bytes); it was probably cut short while copying"},
      {"too-small-image", pred("{S}/images/small.png"), 1,
       "{S}/images/small.png: 64x64 px is smaller than the model's 96x96 px patch; give images of at least that "
       "size"},
      {"too-small-at-mpp", pred("{S}/images/big.png", {"--mpp", "0.4"}), 1,
       "{S}/images/big.png: 200x150 px at --mpp 0.4 is 82x62 px at the model's 0.972 µm/px, smaller than its 96x96 "
       "px patch; give larger images (or check --mpp)"},
      {"larger-image-without-mpp-or-resize", pred("{S}/images/big.png"), 2,
       "{S}/images/big.png: 200x150 px is larger than the model's 96x96 px patch; give --mpp (the image's µm per "
       "pixel) to cut it into tiles at the model's 0.972 µm/px, or --resize area|bilinear|nearest to shrink it whole"},
      {"two-inputs-both-bad", {"predict", "{S}/images/small.png", "{S}/text.tif", "-m", "{S}/models/demo.pt", "-o",
                               "{O}", "-q"}, 1,
       "none of the 2 inputs could be predicted; the first: {S}/images/small.png: 64x64 px is smaller than the "
       "model's 96x96 px patch; give images of at least that size"},
      {"kaggle-label-not-binary", pred("{S}/kaggle_label"), 1,
       "{S}/kaggle_label/train_labels.csv: line 2: label must be 0 or 1, not '2'"},
      {"patch-size-mismatch", pred("{S}/pcam64/patches_train_x.h5"), 1,
       "PCam {S}/pcam64/patches_train_x.h5 (14 patches of 64x64) has 64 px patches but {S}/models/demo.pt expects "
       "patch_size 96"},
      {"mpp-and-resize", pred(patch, {"--mpp", "0.5", "--resize", "area"}), 2,
       "--mpp and --resize exclude each other (--mpp cuts images into tiles at the model's resolution, --resize "
       "shrinks each whole); give one"},
      {"resize-unknown", pred(patch, {"--resize", "cubic"}), 2, "--resize must be area, bilinear or nearest, not 'cubic'"},
      {"mpp-zero", pred(patch, {"--mpp", "0"}), 2,
       "--mpp must be a positive number of micrometres per pixel of the images (e.g. 0.25 for a 40x scan), not 0"},
      {"min-purple-out-of-range", pred(patch, {"--min-purple", "2"}), 2,
       "--min-purple must be in 0..1 (the fraction of purple pixels a patch needs; 0 = keep every patch), not 2"},
      {"min-purple-word", pred(patch, {"--min-purple", "some"}), 2, "Could not convert: --min-purple = some" + kHelp},
      {"threshold-out-of-range", pred(patch, {"--threshold", "1.5"}), 2, "--threshold must be in 0..1, not 1.5"},
      {"batch-zero", pred(patch, {"--batch", "0"}), 2, "--batch must be >= 1"},
      {"threads-negative", pred(patch, {"--threads", "-1"}), 2, kThreads},
      {"device-unknown", pred(patch, {"--device", "tpu"}), 2, "unknown device 'tpu': use cpu or cuda"},
      {"fp16-on-cpu", pred(patch, {"--precision", "fp16"}), 2,
       "--precision fp16 needs --device cuda; on a CPU use bf16"},
      {"missing-model", model("nope"), 2, "{S}/models/nope.pt: no such model file"},
      {"model-is-a-directory", {"predict", patch, "-m", "{S}/dir", "-o", "{O}"}, 2,
       "{S}/dir: is a directory, not a model file; pass NAME.pt"},
      {"model-without-sidecar", model("nosidecar"), 2, kNoSidecar},
      {"sidecar-unknown-key", model("unknown_key"), 1, kUnknownKey},
      {"model-not-a-weight-file", model("text"), 1, kNotAWeightFile},
      {"submission-in-missing-directory", pred(patch, {"--kaggle-submission", "{O}/missing/sub.csv"}), 2,
       "--kaggle-submission {O}/missing/sub.csv: the directory {O}/missing does not exist; create it first"},
      {"submission-is-a-directory", pred(patch, {"--kaggle-submission", "{S}/dir"}), 2,
       "--kaggle-submission {S}/dir: is a directory; give a file name, e.g. {S}/dir/submission.csv"},
      {"out-is-a-file", {"predict", patch, "-m", "{S}/models/demo.pt", "-o", "{S}/slide.tif"}, 2, kIsAFile},
      {"unwritable-directory", {"predict", patch, "-m", "{S}/models/demo.pt", "-o", "{S}/ro"}, 2, kUnwritable, "",
       true},
  });
}

TEST(CliErrorTable, Heatmap) {
  const auto heatmap = [](std::vector<std::string> extra) {
    std::vector<std::string> a = {"{S}/slide.tif", "-o", "{O}", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const auto model = [&](const std::string& name) { return heatmap({"--model", "{S}/models/" + name + ".pt"}); };
  run_table("heatmap", {
      {"no-slide", {"heatmap", "-o", "{O}"}, 2, "no slide given (usage: wsi-heatmap SLIDE... [-o DIR])"},
      {"missing-slide", {"{S}/nope.tif", "-o", "{O}"}, 2, "{S}/nope.tif: no such file; check the path"},
      {"directory", {"{S}/dir", "-o", "{O}"}, 2,
       "{S}/dir: is a directory, not a file; pass slide files (wsi-heatmap batch DIR runs every slide of a directory; "
       "wsi-heatmap predict DIR predicts a folder of patches or images)"},
      {"empty-svs", {"{S}/empty.svs", "-o", "{O}", "-q"}, 1, "{S}/empty.svs: " + kEmptySlide},
      {"text-named-svs", {"{S}/text.svs", "-o", "{O}", "-q"}, 1, "{S}/text.svs: " + kNotASlide},
      {"striped-tiff", {"{T}/broken/kidney-48-5.tif", "-o", "{O}", "-q"}, 1, kStriped},
      {"truncated-tiff", {"{S}/truncated.tif", "-o", "{O}", "-q"}, 1, "{S}/truncated.tif: " + kDamagedTiff},
      {"no-mpp", {"{T}/slides/tcga-cr-7395-01a-01-ts1.svs", "-o", "{O}", "-q"}, 1, kNoMpp},
      {"missing-model", model("nope"), 2, "{S}/models/nope.pt: no such model file"},
      {"model-is-a-directory", heatmap({"--model", "{S}/dir"}), 2,
       "{S}/dir: is a directory, not a model file; pass NAME.pt"},
      {"model-without-sidecar", model("nosidecar"), 2, kNoSidecar},
      {"sidecar-unknown-key", model("unknown_key"), 1, kUnknownKey},
      {"sidecar-bad-json", model("bad_json"), 1, kBadJsonSidecar},
      {"sidecar-unknown-output", model("bad_enum"), 1,
       "model sidecar {S}/models/bad_enum.json: \"output\" must be logit (one value, sigmoid), probability (one value) "
       "or softmax (2+ logits), not \"odds\""},
      {"sidecar-patch-size-zero", model("patch0"), 1,
       "model sidecar {S}/models/patch0.json: patch_size must be in 8..4096"},
      {"empty-model", model("empty"), 1, kEmptyModel},
      {"truncated-model", model("truncated"), 1,
       "{S}/models/truncated.pt: not a weight archive of the architecture its sidecar names (failed finding central "
       "directory); was it saved by wsi-heatmap train with the same architecture, width and blocks?"},
      {"stride-zero-two-slides", {"{S}/slide.tif", "{S}/slide_mask.tif", "-o", "{O}", "-q", "--stride", "0"}, 2,
       "--stride must be in 1..384 patch pixels (up to 4 patch sides), not 0"},
      {"level-missing-in-slide", heatmap({"--level", "7"}), 1,
       "{S}/slide.tif: --level 7: the slide has 3 levels (0..2); pick one of them"},
      {"mpp-tolerance-out-of-range", heatmap({"--mpp-tolerance", "0.5"}), 2,
       "--mpp-tolerance must be in 0..0.25 (a fraction: 0.03 accepts a level 3 % coarser than the target), not 0.5"},
      {"mpp-zero", heatmap({"--mpp", "0"}), 2, kBadMpp + "0"},
      {"device-unknown", heatmap({"--device", "tpu"}), 2, "unknown device 'tpu': use cpu or cuda"},
      {"fp16-on-cpu", heatmap({"--precision", "fp16"}), 2, "--precision fp16 needs --device cuda; on a CPU use bf16"},
      {"edge-unknown", heatmap({"--edge", "out"}), 2, "unknown edge policy 'out': use inside or pad"},
      {"batch-word", heatmap({"--batch", "many"}), 2, "Could not convert: --batch = many" + kHelp},
      {"missing-preset", heatmap({"--preset", "nope"}), 2,
       "--preset nope: no such file, and no preset of that name in pipelines/presets/"},
      {"preset-unknown-key", heatmap({"--preset", "{S}/preset_unknown.json"}), 1,
       "preset {S}/preset_unknown.json: unknown key \"strid\" (keys are those wsi-heatmap heatmap --print-config "
       "prints, e.g. \"min_tissue\"; the model, device and output are not preset)"},
      {"preset-bad-json", heatmap({"--preset", "{S}/preset_bad.json"}), 1,
       "preset {S}/preset_bad.json is not valid JSON: parse error at line 1, column 12: syntax error while parsing "
       "value - unexpected end of input; expected '[', '{', or a literal"},
      {"name-for-two-slides", {"{S}/slide.tif", "{S}/slide_mask.tif", "-o", "{O}", "--name", "a"}, 2,
       "--name names the outputs of one slide; give one slide"},
      {"out-is-a-file", {"{S}/slide.tif", "-o", "{S}/slide.tif"}, 2, kIsAFile},
      {"unwritable-directory", {"{S}/slide.tif", "-o", "{S}/ro"}, 2, kUnwritable, "", true},
  });
}

TEST(CliErrorTable, Batch) {
  const auto batch = [](std::vector<std::string> extra) {
    std::vector<std::string> a = {"batch", "{S}/slide.tif", "-o", "{O}/b", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  run_table("batch", {
      {"no-inputs", {"batch", "-o", "{O}/b"}, 2, "inputs is required" + kHelp},
      {"no-out", {"batch", "{S}/slide.tif"}, 2, "batch needs an output directory: -o DIR"},
      {"missing-input", {"batch", "{S}/nope", "-o", "{O}/b"}, 2, "{S}/nope: no such slide, directory or list file"},
      {"no-slides-in-directory", {"batch", "{S}/dir", "-o", "{O}/b"}, 2,
       "no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)"},
      {"shard-out-of-range", batch({"--shard", "3/2"}), 2,
       "--shard 3/2: give I/N with 1 <= I <= N (e.g. 3/8 for the third of eight shards)"},
      {"batch-zero", batch({"--batch", "0"}), 2, "--batch must be in 1..4096, not 0"},  // as heatmap says it
      {"timeout-negative", batch({"--timeout", "-1"}), 2,
       "--timeout must be a number, 0 or more (0 = no limit), not '-1'"},
      {"threads-negative", batch({"--threads", "-1"}), 2, kThreads},
      {"missing-mpp-csv", batch({"--mpp-csv", "{S}/nope.csv"}), 2,
       "--mpp-csv {S}/nope.csv: no such file; check the path"},
      {"mpp-csv-bad-value", batch({"--mpp-csv", "{S}/mpp_bad.csv"}), 2,
       "--mpp-csv {S}/mpp_bad.csv:2: mpp 'abc' is not a number of um per pixel (0..100)"},
      {"mpp-csv-bad-header", batch({"--mpp-csv", "{S}/mpp_header.csv"}), 2,
       "--mpp-csv {S}/mpp_header.csv: the header must name the columns slide and mpp"},
      {"stride-zero", batch({"--stride", "0"}), 2,
       "--stride must be in 1..384 patch pixels (up to 4 patch sides), not 0"},
      {"stride-word", batch({"--stride", "wide"}), 2,
       "Could not convert: --stride = wide" + kHelp},  // typed: refused when parsed
      {"model-without-sidecar", batch({"--model", "{S}/models/nosidecar.pt"}), 2, kNoSidecar},
      {"sidecar-unknown-key", batch({"--model", "{S}/models/unknown_key.pt"}), 1, kUnknownKey},
      {"device-unknown", batch({"--device", "tpu"}), 2, "unknown device 'tpu': use cpu or cuda"},
      {"threshold-out-of-range", batch({"--threshold", "5"}), 2, "--threshold must be in (0, 1], not 5"},
      {"mask-without-extract", batch({"--mask", "{S}/slide_mask.tif"}), 2,
       "--mask is an option of --extract runs, not of heatmap runs"},
      {"extract-without-ground-truth", batch({"--extract"}), 2,
       "--extract needs ground truth: --mask or --annotations with {stem} (e.g. --mask 'masks/{stem}_mask.tif'), or "
       "--unlabelled"},
      {"extract-mask-without-stem", batch({"--extract", "--mask", "{S}/slide_mask.tif"}), 2,
       "--mask {S}/slide_mask.tif: in a batch, give a pattern with {stem}, the slide's file name without extension "
       "(e.g. --mask 'masks/{stem}_mask.tif')"},
      {"extract-patch-size-out-of-range", batch({"--extract", "--unlabelled", "--patch-size", "2"}), 2,
       "--patch-size must be in 8..4096 pixels, not 2"},
      {"float32-with-extract", batch({"--extract", "--unlabelled", "--float32"}), 2,
       "--float32 is an option of the heatmap runs, not of --extract runs"},
      {"merge-only-with-shard", batch({"--merge-only", "--shard", "1/2"}), 2,
       "--merge-only merges every shard: give it without --shard"},
      {"out-is-a-file", {"batch", "{S}/slide.tif", "-o", "{S}/text.tif"}, 2,
       "{S}/text.tif: is a file, not a directory; give -o a directory (it is created if missing)"},
      {"unwritable-directory", {"batch", "{S}/slide.tif", "-o", "{S}/ro"}, 2, kUnwritable, "", true},
  });
}

TEST(CliErrorTable, EvaluateSlides) {
  const auto eval = [](const std::string& results, std::vector<std::string> extra) {
    std::vector<std::string> a = {"evaluate-slides", "--results", results, "-o", "{O}"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string results = "{S}/results";
  const std::vector<std::string> mask = {"--truth", "{S}/slide_mask.tif"};
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = mask;
    a.insert(a.end(), extra.begin(), extra.end());
    return eval(results, a);
  };
  run_table("evaluate-slides", {
      {"results-is-a-file", eval("{S}/slide.tif", mask), 2,
       "{S}/slide.tif: is not a directory; --results takes the directory holding NAME.patches.csv and NAME.froc.csv"},
      {"patches-csv-without-columns", eval("{S}/results_header", mask), 1,
       "{S}/results_header/slide.patches.csv:1: the header has no column 'width' (expected "
       "x,y,width,height,probability)"},
      {"truth-not-an-image", eval(results, {"--truth", "{S}/truth_text"}), 1,
       "{S}/truth_text/slide.tif: " + kNotASlide},
      {"truth-empty", eval(results, {"--truth", "{S}/truth_empty"}), 1,
       "{S}/truth_empty/slide_mask.tif: " + kEmptySlide},
      {"truth-truncated", eval(results, {"--truth", "{S}/truth_truncated"}), 1,
       "{S}/truth_truncated/slide_mask.tif: " + kTruncatedTiff},
      {"truth-bad-json", eval(results, {"--truth", "{S}/truth_json"}), 1,
       "{S}/truth_json/slide.json: invalid JSON: parse error at line 1, column 2: syntax error while parsing object "
       "key - invalid literal; last read: '{b'; expected string literal"},
      {"threshold-word", with({"--threshold", "high"}), 2, "Could not convert: --threshold = high" + kHelp},
      {"mpp-negative", with({"--mpp", "-1"}), 2, kBadMpp + "-1"},
      {"label-rule-out-of-range", with({"--label-rule", "fraction:0"}), 2,
       "bad label rule 'fraction:0' (use center, center:N, any or fraction:T with 0 < T <= 1)"},
      {"missing-slides", with({"--slides", "{S}/nope.tif"}), 2, "{S}/nope.tif: no such file or directory (--slides)"},
      {"slides-without-this-slide", with({"--slides", "{S}/text.svs"}), 2,
       "no slide named slide among --slides (needed for its ground truth {S}/slide_mask.tif)"},
      {"out-is-a-file", {"evaluate-slides", "-r", results, "-t", "{S}/slide_mask.tif", "-o", "{S}/slide.tif"}, 2,
       kIsAFile},
      {"unwritable-directory", {"evaluate-slides", "-r", results, "-t", "{S}/slide_mask.tif", "-o", "{S}/ro"}, 2,
       kUnwritable, "", true},
  });
}

TEST(CliErrorTable, View) {
  view_results();
  const auto view = [](const std::string& results, std::vector<std::string> extra) {
    std::vector<std::string> a = {"view", results, "-o", "{O}/v", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string heat = "{S}/heat";
  run_table("view", {
      {"results-missing", view("{S}/nope", {}), 2,
       "{S}/nope: no such directory; give the folder the heatmap job wrote (-o DIR)"},
      {"no-summary", view("{S}/dir", {}), 2,
       "{S}/dir: no NAME.summary.json here; the summary is written last, so the heatmap job did not finish in this "
       "folder (run wsi-heatmap SLIDE -o {S}/dir)"},
      {"slide-of-another-size", view(heat, {"--slide", "{S}/small.tif"}), 2,
       "{S}/small.tif is 512x512 px, but the results in {S}/heat were made from a 1024x1024 px slide "
       "(slide.summary.json); pass the slide they were made from with --slide"},
      {"slide-of-another-mpp", view(heat, {"--slide", "{S}/fine.tif"}), 2,
       "{S}/fine.tif has 0.25 µm/px, but the results in {S}/heat were made at 0.5 µm/px (slide.summary.json); pass "
       "the slide they were made from, or --mpp 0.5 if the heatmap job was given --mpp"},
      {"slide-not-there", view("{S}/heat_gone", {}), 2,
       "the results in {S}/heat_gone name the slide {S}/gone.tif, which is not there (a relative path is taken from "
       "the current folder); pass --slide SLIDE, or --no-slide to show slide.overlay.tif instead"},
      {"slide-option-missing", view(heat, {"--slide", "{S}/nope.tif"}), 2, "--slide {S}/nope.tif: no such file; check the path"},
      {"slide-and-no-slide", view(heat, {"--slide", "{S}/slide.tif", "--no-slide"}), 2,
       "--slide and --no-slide contradict each other; give one"},
      {"several-results", view("{S}/heat_two", {}), 2,
       "{S}/heat_two holds the results of 2 slides (other, slide): pick one with --name NAME"},
      {"name-unknown", view(heat, {"--name", "other"}), 2, "{S}/heat: no other.summary.json for --name other"},
      {"summary-not-json", view("{S}/heat_badjson", {}), 1,
       "{S}/heat_badjson/slide.summary.json is not valid JSON (a heatmap summary): parse error at line 1, column 2: "
       "syntax error while parsing object key - invalid literal; last read: '{b'; expected string literal"},
      {"probability-missing", view("{S}/heat_noprob", {}), 1,
       "{S}/heat_noprob/slide.prob.tif: missing; the results folder is incomplete (rerun the heatmap job)"},
      {"probability-not-from-wsi-heatmap", view("{S}/heat_mixed", {}), 1,
       "{S}/heat_mixed/slide.prob.tif: not a raster wsi-heatmap wrote (its description gives no "
       "level0_pixels_per_pixel); rerun the heatmap job"},
      {"tile-mpp-finer-than-the-slide", view(heat, {"--tile-mpp", "0.1"}), 2,
       "--tile-mpp 0.1 is finer than the slide's own 0.5 µm/px; give at least 0.5"},
      {"tile-mpp-zero", view(heat, {"--tile-mpp", "0"}), 2, "--tile-mpp must be a positive number of µm per pixel"},
      {"tile-mpp-word", view(heat, {"--tile-mpp", "fine"}), 2, "Could not convert: --tile-mpp = fine" + kHelp},
      {"quality-out-of-range", view(heat, {"--quality", "0"}), 2, "--quality must be 1..100"},
      {"evaluation-missing", view(heat, {"--evaluation", "{S}/nope"}), 2, "--evaluation {S}/nope: no such directory"},
      {"evaluation-without-curves", view(heat, {"--evaluation", "{S}/dir"}), 2,
       "--evaluation {S}/dir: no evaluation.json or curves (*roc*.svg) there; give the folder evaluate-slides -o wrote"},
      {"batch-with-name", {"view", "{S}/b", "--name", "text", "-o", "{O}/v"}, 2,
       "{S}/b is a batch folder: its slides come from its manifest; leave out --slide and --name"},
      {"out-is-a-file", {"view", heat, "-o", "{S}/slide.tif"}, 2, "{S}/slide.tif: is a file; give -o a folder for the viewer"},
      {"out-is-not-a-viewer", {"view", heat, "-o", "{S}/models"}, 2,
       "{S}/models: exists and is not a viewer wsi-heatmap wrote; give -o a new folder (a viewer folder is replaced "
       "whole)"},
      {"out-under-a-file", {"view", heat, "-o", "{S}/slide.tif/v"}, 2,
       "{S}/slide.tif: cannot create the folder for the viewer: Not a directory; check the path and its permissions"},
      {"batch-html-with-extract", {"batch", "{S}/slide.tif", "-o", "{O}/b", "--html", "--extract", "--unlabelled"}, 2,
       "--html shows heatmaps; it does not go with --extract"},
      {"unwritable-directory", {"view", heat, "-o", "{S}/ro/v"}, 2,
       "{S}/ro: the folder is not writable, so the viewer v cannot be written there; fix its permissions or give -o "
       "another folder", "", true},
  });
}

// clang-format on

}  // namespace
}  // namespace wsi
