// Batch runs over slide archives (batch.hpp, `wsi-heatmap batch`): inputs, names, shards, the
// manifest, the lock, child processes with a time limit, resuming, and crash safety under SIGKILL.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "test_support.hpp"
#include "wsi/batch.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

void touch(const fs::path& p, const std::string& bytes = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::set<std::string> filenames(const std::vector<fs::path>& v) {
  std::set<std::string> s;
  for (const auto& p : v) s.insert(p.filename().string());
  return s;
}

TEST(BatchInputs, DirectoriesAreSearchedRecursivelyByExtensionAndLinkLoopsEnd) {
  test::ScratchDir d;
  touch(d / "in/a.svs");
  touch(d / "in/sub/b.TIF");
  touch(d / "in/sub/deeper/c.ndpi");
  touch(d / "in/sub/readme.md");
  touch(d / "in/out/old.tif");  // inside the output directory: never an input
  fs::create_directory_symlink(d / "in", d / "in/sub/loop");  // a loop back to the top
  fs::create_directory_symlink(d / "in/sub", d / "in/again");  // a second way to the same files
  const auto slides = collect_slides({d / "in"}, d / "in/out");
  EXPECT_EQ(filenames(slides), (std::set<std::string>{"a.svs", "b.TIF", "c.ndpi"}));
  EXPECT_EQ(slides.size(), 3u) << "each real file once";
  EXPECT_TRUE(std::is_sorted(slides.begin(), slides.end()));
}

TEST(BatchInputs, ListFilesNameSlidesRelativeToThemselves) {
  test::ScratchDir d;
  touch(d / "s/one.svs");
  touch(d / "s/two.tiff");
  touch(d / "more/three.mrxs");
  touch(d / "s/list.txt", "# today's slides\none.svs\n\n  two.tiff  \n../more\n");
  EXPECT_EQ(filenames(collect_slides({d / "s/list.txt"})), (std::set<std::string>{"one.svs", "two.tiff", "three.mrxs"}));
  touch(d / "s/bad.txt", "one.svs\nmissing.svs\n");
  try {
    collect_slides({d / "s/bad.txt"});
    FAIL() << "a missing entry was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(collect_slides({d / "nothing-here"}), UsageError);
  touch(d / "notes.md");
  EXPECT_THROW(collect_slides({d / "notes.md"}), UsageError);
}

TEST(BatchNames, UnsafeNamesStayInOneFolderAndAreUnique) {
  const std::vector<fs::path> slides = {"/a/case 1.svs", "/b/case 1.svs", "/c/..svs", "/d/.hidden.tif",
                                        "/e/Ölprobe µ.tif", "/f/CASE_1.svs", "/g/x;rm -rf.tif"};
  const auto names = unique_safe_names(slides);
  ASSERT_EQ(names.size(), slides.size());
  EXPECT_EQ(names[0], "case_1");
  EXPECT_EQ(names[1], "case_1-2");
  EXPECT_EQ(names[2], "_");
  EXPECT_EQ(names[3], "_hidden");
  EXPECT_EQ(names[4], "Ölprobe_µ");
  EXPECT_EQ(names[5], "CASE_1-3") << "names differing only in case collide on some file systems";
  EXPECT_EQ(names[6], "x_rm_-rf");
  for (const auto& n : names) {
    EXPECT_EQ(fs::path(n).filename().string(), n) << n;
    EXPECT_NE(n, "..");
    EXPECT_NE(n[0], '.');
  }
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
}

TEST(BatchShard, ShardsPartitionTheSlidesAndBadSpecsAreUsageErrors) {
  std::map<std::string, int> owner;
  for (int i = 1; i <= 3; ++i) {
    const ShardSpec s = ShardSpec::parse(std::to_string(i) + "/3");
    for (int k = 0; k < 300; ++k) {
      const std::string name = "slide_" + std::to_string(k);
      if (s.contains(name)) owner[name] += 1;
    }
  }
  EXPECT_EQ(owner.size(), 300u);
  for (const auto& [name, n] : owner) EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(ShardSpec::parse("2/8").suffix(), ".shard-2-of-8");
  EXPECT_EQ(ShardSpec::parse("1/1").suffix(), "");
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "1/0", "1/2x", ""}) EXPECT_THROW(ShardSpec::parse(bad), UsageError) << bad;
}

TEST(BatchManifest, RoundTripsAndNoticesChangedOutputs) {
  test::ScratchDir d;
  touch(d / "s1/s1.prob.tif", "probabilities");
  touch(d / "s1/s1.summary.json", "{}");
  touch(d / "s1/.s1.cam.tif.partial-12-0", "half");  // a temporary is never an output
  Manifest m;
  ManifestEntry e;
  e.name = "s1";
  e.slide = "/slides/s 1,\"x\".svs";
  e.status = SlideStatus::done;
  e.seconds = 12.5;
  e.attempts = 2;
  e.outputs = describe_outputs(d / "s1", d.path());
  ASSERT_EQ(e.outputs.size(), 2u);
  EXPECT_EQ(e.outputs[0].file, "s1/s1.prob.tif");
  m.upsert(e);
  ManifestEntry f;
  f.name = "s2";
  f.slide = "/slides/s2.svs";
  f.reason = "exit status 1: wsi-heatmap: error: broken";
  m.upsert(f);
  write_manifest(m, d / "manifest.json", d / "manifest.csv");
  const Manifest back = read_manifest(d / "manifest.json");
  ASSERT_EQ(back.entries.size(), 2u);
  EXPECT_EQ(back.find("s1")->slide, e.slide);
  EXPECT_EQ(back.find("s1")->status, SlideStatus::done);
  EXPECT_EQ(back.find("s2")->reason, f.reason);
  EXPECT_NE(test::slurp(d / "manifest.csv").find("\"/slides/s 1,\"\"x\"\".svs\""), std::string::npos);
  std::string why;
  EXPECT_TRUE(outputs_intact(back.find("s1")->outputs, d.path(), &why)) << why;
  touch(d / "s1/s1.prob.tif", "probabilitieZ");  // same size, other content
  EXPECT_FALSE(outputs_intact(back.find("s1")->outputs, d.path(), &why));
  EXPECT_NE(why.find("s1.prob.tif"), std::string::npos);
  fs::remove(d / "s1/s1.summary.json");
  EXPECT_FALSE(outputs_intact(back.find("s1")->outputs, d.path(), &why));
  EXPECT_TRUE(read_manifest(d / "absent.json").entries.empty());
  touch(d / "junk.json", "{\"slides\": 3}");
  EXPECT_THROW(read_manifest(d / "junk.json"), ConfigError);
}

TEST(BatchLockFile, SecondHolderIsRefusedUntilTheFirstLetsGo) {
  test::ScratchDir d;
  {
    const BatchLock first(d / ".batch.lock");
    try {
      const BatchLock second(d / ".batch.lock");
      FAIL() << "two locks at once";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("another batch run"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(BatchLock(d / ".batch.lock"));
}

TEST(BatchLockFile, SharedHoldersRunSideBySideButNeverBesideAnExclusiveOne) {
  test::ScratchDir d;
  {
    const BatchLock shard1(d / ".batch.lock", BatchLock::Mode::shared);
    EXPECT_NO_THROW(BatchLock(d / ".batch.lock", BatchLock::Mode::shared));
    EXPECT_THROW(BatchLock(d / ".batch.lock"), Error);
  }
  const BatchLock whole(d / ".batch.lock");
  EXPECT_THROW(BatchLock(d / ".batch.lock", BatchLock::Mode::shared), Error);
}

TEST(BatchChild, ExitStatusErrorLineAndTimeout) {
  test::ScratchDir d;
  const ChildResult r =
      run_child({"/bin/sh", "-c", "echo working; echo 'wsi-heatmap: error: slide.svs: broken tile' >&2; exit 3"}, d / "log", 0);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.last_error, "wsi-heatmap: error: slide.svs: broken tile");
  const auto t0 = std::chrono::steady_clock::now();
  const ChildResult hung = run_child({"/bin/sleep", "30"}, d / "log2", 0.3);
  EXPECT_TRUE(hung.timed_out);
  EXPECT_EQ(hung.signal, SIGTERM);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_THROW(run_child({"/bin/true"}, d / "no-such-dir/log", 0), WriteError);
}

// ---- The CLI on generated slides ----

// Three small generated slides (2048², different seeds), made once per build.
const std::vector<fs::path>& small_slides() {
  static const std::vector<fs::path> slides = [] {
    std::vector<fs::path> v;
    const fs::path dir = test::fixture_dir() / "batch-slides";
    fs::create_directories(dir);
    for (int seed = 1; seed <= 3; ++seed) {
      const fs::path p = dir / ("slide " + std::to_string(seed) + ".tif");
      if (!fs::exists(p)) {
        const auto r = test::run_wsi({"synth", "--out", p.string(), "--size", "2048x2048", "--seed", std::to_string(seed),
                                      "--tumours", "1"});
        if (r.code != 0) throw std::runtime_error("synth failed: " + r.err);
      }
      v.push_back(p);
    }
    return v;
  }();
  return slides;
}

// An archive: the three slides, a broken one, an empty one, and a text file to ignore.
fs::path make_archive(const fs::path& root) {
  const fs::path a = root / "archive";
  fs::create_directories(a / "week 2");
  fs::copy_file(small_slides()[0], a / "slide 1.tif");
  fs::copy_file(small_slides()[1], a / "week 2" / "slide 2.tif");
  fs::copy_file(small_slides()[2], a / "week 2" / "ü slide 3.tif");
  touch(a / "broken.svs", std::string(4096, 'z'));
  touch(a / "empty.tif", "");
  touch(a / "notes.md", "not a slide");
  return a;
}

json manifest_of(const fs::path& dir) { return json::parse(test::slurp(dir / "manifest.json")); }

std::map<std::string, std::string> statuses(const json& m) {
  std::map<std::string, std::string> s;
  for (const auto& e : m["slides"]) s[e["name"].get<std::string>()] = e["status"].get<std::string>();
  return s;
}

TEST(BatchCli, MixedArchiveFinishesReportsEachAndResumesWithoutRedoingWork) {
  test::ScratchDir d;
  const fs::path archive = make_archive(d.path());
  const fs::path out = d / "out";
  const auto r = test::run_wsi({"batch", archive.string(), "-o", out.string(), "-q", "--no-gradcam"});
  EXPECT_EQ(r.code, 1) << "a failed slide makes the exit status non-zero\n" << r.out << r.err;
  const auto st = statuses(manifest_of(out));
  EXPECT_EQ(st, (std::map<std::string, std::string>{{"broken", "failed"},
                                                   {"empty", "skipped"},
                                                   {"slide_1", "done"},
                                                   {"slide_2", "done"},
                                                   {"ü_slide_3", "done"}}))
      << r.out;
  EXPECT_TRUE(fs::exists(out / "slide_1" / "slide_1.prob.tif"));
  EXPECT_TRUE(fs::exists(out / "ü_slide_3" / "ü_slide_3.summary.json"));
  EXPECT_NE(r.out.find("FAILED broken"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.svs"), std::string::npos) << "the reason names the file\n" << r.out;
  // On stderr too, for scripts that keep only the error stream (issue 20).
  EXPECT_NE(r.err.find("wsi-heatmap: batch: slide broken failed: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("wsi-heatmap: batch: slide empty failed: skipped: empty file"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("slides/hour"), std::string::npos) << r.out;
  EXPECT_TRUE(test::partial_files(out).empty());
  EXPECT_NE(test::slurp(out / "manifest.csv").find("slide_2,"), std::string::npos);

  // A rerun trusts the finished slides (sizes and SHA-1s checked) and runs nothing.
  const auto t0 = std::chrono::steady_clock::now();
  const auto again = test::run_wsi({"batch", archive.string(), "-o", out.string(), "-q", "--no-gradcam"});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("0 done now, 3 already done"), std::string::npos) << again.out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  // An output that changed is not trusted: that slide runs again.
  std::ofstream(out / "slide_2" / "slide_2.patches.csv", std::ios::app) << "tampered\n";
  const auto third = test::run_wsi({"batch", archive.string(), "-o", out.string(), "-q", "--no-gradcam", "--retry-failed"});
  EXPECT_NE(third.out.find("1 done now, 2 already done"), std::string::npos) << third.out;
  EXPECT_EQ(manifest_of(out)["slides"][0]["attempts"].get<int>(), 2) << "broken ran again with --retry-failed";
}

TEST(BatchCli, ShardsSplitTheArchiveAndALockedDirectoryIsRefused) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  std::vector<std::string> slides;
  for (const auto& s : small_slides()) slides.push_back(s.string());
  std::set<std::string> done;
  for (const char* shard : {"1/2", "2/2"}) {
    std::vector<std::string> args = {"batch"};
    args.insert(args.end(), slides.begin(), slides.end());
    args.insert(args.end(), {"-o", out.string(), "-q", "--no-gradcam", "--shard", shard});
    const auto r = test::run_wsi(args);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    const std::string suffix = std::string(".shard-") + shard[0] + "-of-2";
    const json m = json::parse(test::slurp(out / ("manifest" + suffix + ".json")));
    for (const auto& e : m["slides"]) EXPECT_TRUE(done.insert(e["name"].get<std::string>()).second) << "in two shards";
  }
  EXPECT_EQ(done.size(), 3u);
  // After the shards, --merge-only writes one manifest of all of them, which a whole run trusts.
  std::vector<std::string> merge = {"batch"};
  merge.insert(merge.end(), slides.begin(), slides.end());
  merge.insert(merge.end(), {"-o", out.string(), "-q", "--no-gradcam", "--merge-only"});
  const auto m = test::run_wsi(merge);
  EXPECT_EQ(m.code, 0) << m.out << m.err;
  EXPECT_EQ(statuses(manifest_of(out)).size(), 3u);
  merge.pop_back();
  const auto whole = test::run_wsi(merge);
  EXPECT_NE(whole.out.find("0 done now, 3 already done"), std::string::npos) << whole.out;
  // Another run holding the directory's lock: refused, nothing touched.
  {
    const BatchLock held(out / ".batch.lock");
    const auto r = test::run_wsi({"batch", slides[0], "-o", out.string(), "-q"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("another batch run"), std::string::npos) << r.err;
    const auto s = test::run_wsi({"batch", slides[0], "-o", out.string(), "-q", "--shard", "1/2"});
    EXPECT_EQ(s.code, 1);
    EXPECT_NE(s.err.find("another batch run"), std::string::npos) << s.err;
  }
  // A shard at work (holding the directory shared and its shard's lock): a whole run or the
  // merge is refused (once, the lock was per manifest and they ran over each other), the other
  // shard is not.
  const BatchLock shard_dir(out / ".batch.lock", BatchLock::Mode::shared);
  const BatchLock shard_own(out / ".batch.shard-1-of-2.lock");
  std::vector<std::string> whole_again = {"batch"};
  whole_again.insert(whole_again.end(), slides.begin(), slides.end());
  whole_again.insert(whole_again.end(), {"-o", out.string(), "-q", "--no-gradcam"});
  auto r = test::run_wsi(whole_again);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("another batch run"), std::string::npos) << r.err;
  whole_again.push_back("--merge-only");
  r = test::run_wsi(whole_again);
  EXPECT_EQ(r.code, 1);
  whole_again.back() = "--shard";
  whole_again.push_back("1/2");
  r = test::run_wsi(whole_again);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(".batch.shard-1-of-2.lock is locked"), std::string::npos) << r.err;
  whole_again.back() = "2/2";
  r = test::run_wsi(whole_again);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(BatchCli, LogsFolderThatIsASymlinkIsRefused) {
  test::ScratchDir d;
  const fs::path out = d / "out", elsewhere = d / "elsewhere";
  fs::create_directories(out);
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, out / "logs");
  const auto r = test::run_wsi({"batch", small_slides()[0].string(), "-o", out.string(), "-q"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "wsi-heatmap: error: " + (out / "logs").string() +
                       " is a symbolic link; batch keeps its logs in a folder of its own there: remove the link\n");
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

// A file name holding a tab or a newline once split the line --list prints for workflow engines.
TEST(BatchCli, ListEscapesTabsNewlinesAndBackslashesInPaths) {
  test::ScratchDir d;
  const fs::path odd = d / "a\tb\nc\\d.tif";
  fs::copy_file(small_slides()[0], odd);
  const auto r = test::run_wsi({"batch", "--list", odd.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "a_b_c_d\t" + d.path().string() + "/a\\tb\\nc\\\\d.tif\n");
}

TEST(BatchCli, SlideOverItsTimeLimitIsStoppedAndRecordedAsFailed) {
  test::ScratchDir d;
  const auto r = test::run_wsi({"batch", small_slides()[0].string(), "-o", (d / "out").string(), "-q", "--timeout", "0.05"});
  EXPECT_EQ(r.code, 1);
  const json m = manifest_of(d / "out");
  EXPECT_EQ(m["slides"][0]["status"], "failed");
  EXPECT_NE(m["slides"][0]["reason"].get<std::string>().find("timed out"), std::string::npos) << m.dump(1);
  EXPECT_TRUE(test::partial_files(d / "out").empty());
}

// Everything under `dir` except the manifests, logs and lock: path -> bytes, with each summary's
// run-dependent fields (timings, memory) removed.
std::map<std::string, std::string> results(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (rel.rfind("manifest", 0) == 0 || rel.rfind("logs/", 0) == 0 || rel.rfind(".batch", 0) == 0) continue;
    std::string bytes = test::slurp(e.path());
    if (rel.size() > 13 && rel.substr(rel.size() - 13) == ".summary.json") {
      json j = json::parse(bytes);
      for (const char* k : {"timings_s", "patches_per_second", "peak_rss_mib"}) j.erase(k);
      bytes = j.dump();
    }
    m[rel] = bytes;
  }
  return m;
}

// Runs the CLI with `args` (its output to /dev/null) and kills it with SIGKILL after `seconds`.
void run_and_sigkill(std::vector<std::string> args, double seconds) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(WSI_CLI_PATH)};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execv(WSI_CLI_PATH, argv.data());
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// Killed with SIGKILL at random moments, several times, then run to completion: the same bytes
// as a run never interrupted, and no temporary left anywhere.
TEST(BatchCli, SigkillAtRandomMomentsThenRerunGivesTheUninterruptedResult) {
  test::ScratchDir d;
  std::vector<std::string> args = {"batch"};
  for (const auto& s : small_slides()) args.push_back(s.string());
  args.insert(args.end(), {"-q", "--threads", "2"});
  const auto with_out = [&](const fs::path& out) {
    auto a = args;
    a.insert(a.end(), {"-o", out.string()});
    return a;
  };
  const auto reference = test::run_wsi(with_out(d / "reference"));
  ASSERT_EQ(reference.code, 0) << reference.out << reference.err;

  std::mt19937 rng(20261123);
  std::uniform_real_distribution<double> when(0.2, 3.0);
  for (int kill = 0; kill < 4; ++kill) run_and_sigkill(with_out(d / "killed"), when(rng));
  const auto finish = test::run_wsi(with_out(d / "killed"));
  ASSERT_EQ(finish.code, 0) << finish.out << finish.err;
  EXPECT_TRUE(test::partial_files(d / "killed").empty());
  const auto want = results(d / "reference"), got = results(d / "killed");
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [file, bytes] : want) {
    ASSERT_TRUE(got.count(file)) << file << " missing after the interrupted runs";
    EXPECT_TRUE(got.at(file) == bytes) << file << " differs from the uninterrupted run";
  }
}

TEST(BatchCli, MppCsvGivesSlidesTheirOwnResolutionAndAChangeRunsThemAgain) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  const std::string one = small_slides()[0].string(), two = small_slides()[1].string();
  touch(d / "mpp.csv", "Slide,MPP\n\"slide 1\",0.5\n");  // by stem; slide 2 keeps its own 0.25
  std::vector<std::string> args = {"batch", one, two, "-o", out.string(), "-q", "--no-gradcam",
                                   "--mpp-csv", (d / "mpp.csv").string()};
  const auto r = test::run_wsi(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto mpp = [&](const char* name) {
    return json::parse(test::slurp(out / name / (std::string(name) + ".summary.json")))["slide"]["mpp"].get<double>();
  };
  EXPECT_DOUBLE_EQ(mpp("slide_1"), 0.5);
  EXPECT_DOUBLE_EQ(mpp("slide_2"), 0.25);
  // Another mpp for slide 1 is another setting: that slide runs again, the other does not.
  touch(d / "mpp.csv", "slide,mpp\n" + one + ",0.3\n");
  const auto again = test::run_wsi(args);
  EXPECT_NE(again.out.find("1 done now, 1 already done"), std::string::npos) << again.out;
  EXPECT_DOUBLE_EQ(mpp("slide_1"), 0.3);
  touch(d / "mpp.csv", "slide,mpp\nslide 1,fast\n");
  const auto bad = test::run_wsi(args);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("mpp.csv:2"), std::string::npos) << bad.err;
}

// ---- --extract: per-slide parts merged into one dataset ----

// Three generated slides at 0.5 um/px with their tumour masks (masks/<stem>.mask.tif), and a
// broken slide whose mask pattern points nowhere.
fs::path make_labelled_archive(const fs::path& root) {
  static const fs::path made = [] {
    const fs::path dir = test::fixture_dir() / "batch-labelled";
    for (int seed = 1; seed <= 3; ++seed) {
      const std::string stem = "case " + std::to_string(seed);
      const fs::path slide = dir / "slides" / (stem + ".tif"), mask = dir / "masks" / (stem + ".mask.tif");
      if (fs::exists(slide) && fs::exists(mask)) continue;
      fs::create_directories(slide.parent_path());
      fs::create_directories(mask.parent_path());
      const auto r = test::run_wsi({"synth", "--out", slide.string(), "--mask", mask.string(), "--size", "3000x3000",
                                    "--mpp", "0.5", "--seed", std::to_string(10 + seed), "--tumours", "2"});
      if (r.code != 0) throw std::runtime_error("synth failed: " + r.err);
    }
    return dir;
  }();
  const fs::path a = root / "labelled";
  fs::copy(made, a, fs::copy_options::recursive);
  touch(a / "slides" / "broken.svs", std::string(4096, 'z'));
  return a;
}

std::vector<std::string> extract_args(const fs::path& archive, const fs::path& out) {
  return {"batch", "--extract", (archive / "slides").string(), "-o", out.string(), "-q",
          "--mask", (archive / "masks" / "{stem}.mask.tif").string(), "--split", "train=0.5,test=0.5",
          "--balance", "undersample", "--max-per-slide", "60", "--seed", "7", "--threads", "2"};
}

// wsi column -> rows per label, from a split's meta CSV.
std::map<std::string, std::array<int, 2>> rows_by_slide(const fs::path& meta_csv) {
  std::map<std::string, std::array<int, 2>> m;
  for (const PatchMeta& r : read_patch_meta(meta_csv)) m[r.wsi][r.label] += 1;
  return m;
}

TEST(BatchExtract, PartsMergeIntoOneBalancedDatasetWithEachSlideInOneSplit) {
  test::ScratchDir d;
  const fs::path archive = make_labelled_archive(d.path()), out = d / "out";
  const auto r = test::run_wsi(extract_args(archive, out));
  EXPECT_EQ(r.code, 1) << "the broken slide failed\n" << r.out << r.err;
  EXPECT_EQ(statuses(manifest_of(out)), (std::map<std::string, std::string>{
                                            {"broken", "failed"}, {"case_1", "done"}, {"case_2", "done"}, {"case_3", "done"}}))
      << r.out;
  EXPECT_NE(r.out.find("dataset: " + (out / "dataset").string() + " from 3 slides"), std::string::npos) << r.out;
  const json summary = json::parse(test::slurp(out / "dataset" / "patches_summary.json"));
  std::set<std::string> seen;
  int64_t total = 0;
  for (const char* split : {"train", "test"}) {
    const auto rows = rows_by_slide(out / "dataset" / (std::string("patches_") + split + "_meta.csv"));
    int pos = 0, neg = 0;
    for (const auto& [slide, n] : rows) {
      EXPECT_TRUE(seen.insert(slide).second) << slide << " is in two splits";
      EXPECT_LE(n[0] + n[1], 60) << slide << ": --max-per-slide is applied per slide";
      neg += n[0];
      pos += n[1];
    }
    const json& js = summary["splits"][split];
    EXPECT_EQ(js["positives"].get<int>(), pos) << split;
    EXPECT_EQ(js["negatives"].get<int>(), neg) << split;
    if (pos > 0 && neg > 0) {
      EXPECT_EQ(pos, neg) << split << ": undersampled to 1:1 across its slides";
    }
    total += pos + neg;
    const auto x = open_patch_set(out / "dataset" / (std::string("patches_") + split + "_x.h5"));
    EXPECT_EQ(x->size(), pos + neg);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"case 1", "case 2", "case 3"})) << "the wsi column is the slide's stem";
  EXPECT_GT(total, 0);
  EXPECT_EQ(summary["patches_written"].get<int64_t>(), total);
  EXPECT_TRUE(test::partial_files(out).empty());

  // A rerun extracts nothing and leaves the dataset as it is.
  const std::string before = test::slurp(out / "dataset" / "patches_train_x.h5");
  const auto again = test::run_wsi(extract_args(archive, out));
  EXPECT_NE(again.out.find("0 done now, 3 already done"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("is up to date"), std::string::npos) << again.out;
  EXPECT_TRUE(test::slurp(out / "dataset" / "patches_train_x.h5") == before);

  // Balance and format are the merge's: changing them merges again from the same parts, and the
  // new dataset replaces the old one whole.
  auto none = extract_args(archive, out);
  none[std::find(none.begin(), none.end(), "undersample") - none.begin()] = "none";
  none.insert(none.end(), {"--format", "kaggle"});
  const auto third = test::run_wsi(none);
  EXPECT_NE(third.out.find("0 done now, 3 already done"), std::string::npos) << third.out;
  const json all = json::parse(test::slurp(out / "dataset" / "patches_summary.json"));
  EXPECT_GE(all["patches_written"].get<int64_t>(), total);
  EXPECT_EQ(all["parameters"]["balance"], "none");
  EXPECT_FALSE(fs::exists(out / "dataset" / "patches_train_x.h5")) << "the pcam merge was replaced";
  int64_t listed = 0;
  for (const char* split : {"train", "test"}) {
    const fs::path labels = out / "dataset" / (std::string(split) + "_labels.csv");
    EXPECT_TRUE(fs::exists(labels)) << labels;
    const json& js = all["splits"][split];
    if (js["positives"].get<int64_t>() + js["negatives"].get<int64_t>() > 0) listed += open_patch_set(labels)->size();
  }
  EXPECT_EQ(listed, all["patches_written"].get<int64_t>());

  // A per-slide option is a slide's setting: another --max-per-slide extracts every slide again.
  auto capped = extract_args(archive, out);
  capped[std::find(capped.begin(), capped.end(), "60") - capped.begin()] = "20";
  const auto fourth = test::run_wsi(capped);
  EXPECT_NE(fourth.out.find("3 done now, 0 already done"), std::string::npos) << fourth.out;
}

TEST(BatchExtract, OptionsThatCannotWorkAreRefusedBeforeAnySlideRuns) {
  test::ScratchDir d;
  const fs::path archive = make_labelled_archive(d.path()), out = d / "out";
  const std::string slides = (archive / "slides").string();
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{"batch", "--extract", slides, "-o", out.string()}, "needs ground truth"},
      {{"batch", "--extract", slides, "-o", out.string(), "--mask", "one.tif"}, "{stem}"},
      {{"batch", slides, "-o", out.string(), "--mask", "m/{stem}.tif"}, "--mask is an option of --extract runs"},
      {{"batch", "--extract", slides, "-o", out.string(), "--unlabelled", "--stride", "many"}, "--stride"},
      {{"batch", "--extract", slides, "-o", out.string(), "--unlabelled", "--split", "train=2"}, "split"},
  };
  for (const Case& c : cases) {
    const auto r = test::run_wsi(c.args);
    EXPECT_EQ(r.code, 2) << c.says << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out / "manifest.json")) << "no slide ran: " << c.says;
  }
}

// Killed with SIGKILL while extracting and merging, then run to completion: the same dataset as
// an uninterrupted run, and no temporary left.
TEST(BatchExtract, SigkillDuringExtractionAndMergeThenRerunGivesTheUninterruptedDataset) {
  test::ScratchDir d;
  const fs::path archive = make_labelled_archive(d.path());
  fs::remove(archive / "slides" / "broken.svs");
  ASSERT_EQ(test::run_wsi(extract_args(archive, d / "reference")).code, 0);
  std::mt19937 rng(1123);
  std::uniform_real_distribution<double> when(0.1, 2.5);
  for (int kill = 0; kill < 3; ++kill) run_and_sigkill(extract_args(archive, d / "killed"), when(rng));
  const auto finish = test::run_wsi(extract_args(archive, d / "killed"));
  ASSERT_EQ(finish.code, 0) << finish.out << finish.err;
  EXPECT_TRUE(test::partial_files(d / "killed").empty());
  for (const auto& e : fs::directory_iterator(d / "killed"))
    EXPECT_NE(e.path().filename().string().rfind(".dataset.", 0), 0u) << e.path() << " left behind";
  for (const char* f : {"patches_train_x.h5", "patches_train_y.h5", "patches_train_meta.csv", "patches_test_x.h5",
                        "patches_test_meta.csv", "patches_summary.json"})
    EXPECT_TRUE(test::slurp(d / "killed" / "dataset" / f) == test::slurp(d / "reference" / "dataset" / f)) << f;
}

}  // namespace
}  // namespace wsi
