// The batch run as a library (batch.hpp: run_batch, child command lines, --mpp-csv, --list,
// the --extract merge), called directly: children are a small shell script standing in for
// wsi-heatmap, so the resume rules are tested in milliseconds.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "wsi/batch.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

TEST(BatchMppCsv, ReadsRowsByHeaderNameAndFindsASlideByPathFileNameOrStem) {
  test::ScratchDir d;
  write(d / "mpp.csv", "note,MPP,Slide\nx,0.25,/data/a.svs\n\ny,0.5,b.tif\r\nz,1e-1,c\n");
  const auto m = read_mpp_csv(d / "mpp.csv");
  EXPECT_EQ(m.size(), 3u);
  ASSERT_NE(mpp_for_slide(m, "/data/a.svs"), nullptr);
  EXPECT_EQ(*mpp_for_slide(m, "/data/a.svs"), "0.25");  // the text as written goes to the child
  EXPECT_EQ(*mpp_for_slide(m, "/other/b.tif"), "0.5");
  EXPECT_EQ(*mpp_for_slide(m, "/other/c.ndpi"), "1e-1");
  EXPECT_EQ(mpp_for_slide(m, "/other/a.svs"), nullptr);  // a path names one file only
  // The path as given wins over a file name, which wins over a stem.
  write(d / "both.csv", "slide,mpp\nb,0.3\nb.tif,0.4\n/x/b.tif,0.6\n");
  const auto both = read_mpp_csv(d / "both.csv");
  EXPECT_EQ(*mpp_for_slide(both, "/x/b.tif"), "0.6");
  EXPECT_EQ(*mpp_for_slide(both, "/y/b.tif"), "0.4");
  EXPECT_EQ(*mpp_for_slide(both, "/y/b.svs"), "0.3");
}

TEST(BatchMppCsv, BadFilesAreUsageErrorsNamingTheFileAndLine) {
  test::ScratchDir d;
  const auto error_of = [&](const std::string& text) {
    write(d / "m.csv", text);
    return usage_error([&] { read_mpp_csv(d / "m.csv"); });
  };
  const std::string f = "--mpp-csv " + (d / "m.csv").string();
  EXPECT_EQ(error_of("name,mpp\na,0.5\n"), f + ": the header must name the columns slide and mpp");
  EXPECT_EQ(error_of("slide,mpp\na,0.5\nb,fast\n"), f + ":3: mpp 'fast' is not a number of um per pixel (0..100)");
  EXPECT_EQ(error_of("slide,mpp\na,0.5x\n"), f + ":2: mpp '0.5x' is not a number of um per pixel (0..100)");
  EXPECT_EQ(error_of("slide,mpp\na,0\n"), f + ":2: mpp '0' is not a number of um per pixel (0..100)");
  EXPECT_EQ(error_of("slide,mpp\na,0.5\n\na,0.25\n"), f + ":4: a is listed twice");
  EXPECT_EQ(error_of("slide,mpp\na,0.5,extra\n"), f + ":2: expected 2 columns");
  EXPECT_EQ(usage_error([&] { read_mpp_csv(d / "nope.csv"); }),
            "--mpp-csv " + (d / "nope.csv").string() + ": cannot open the file");
}

TEST(BatchList, EscapesBackslashTabNewlineAndCarriageReturnOnly) {
  EXPECT_EQ(escape_for_list("/data/plain slide.svs"), "/data/plain slide.svs");
  EXPECT_EQ(escape_for_list("a\\b\tc\nd\re"), "a\\\\b\\tc\\nd\\re");
  EXPECT_EQ(escape_for_list("\xc3\xa9.svs"), "\xc3\xa9.svs");  // UTF-8 untouched
}

TEST(BatchDataset, SplitOfANameDependsOnTheNameAndSeedAlone) {
  BatchDataset d;
  d.params.split = SplitSpec::parse("train=0.5,valid=0.25,test=0.25");
  d.params.balance.seed = 11;
  std::map<std::string, int> counts;
  for (int i = 0; i < 400; ++i) {
    const std::string name = "slide_" + std::to_string(i);
    const std::string s = d.split_of(name);
    EXPECT_EQ(s, d.split_of(name));
    EXPECT_EQ(s, split_for_name(name, d.params.split, 11));
    ++counts[s];
  }
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_GT(counts["train"], 150);  // the fractions hold on average
  BatchDataset other = d;
  other.params.balance.seed = 12;
  int moved = 0;
  for (int i = 0; i < 100; ++i)
    moved += other.split_of("slide_" + std::to_string(i)) != d.split_of("slide_" + std::to_string(i));
  EXPECT_GT(moved, 0);
  BatchDataset bad;
  bad.params.prefix = "a/b";
  EXPECT_EQ(usage_error([&] { bad.validate(); }), "--prefix 'a/b' must be a plain file name part (no '/')");
  EXPECT_NO_THROW(d.validate());
}

TEST(BatchChildCommand, LibraryOptionsThenTheCsvRowThenTheHooksInAStableOrder) {
  BatchJob job;
  job.exe = "/bin/wsi";
  job.threads = 3;
  job.mpp_of = {{"a", "0.25"}};
  job.heatmap.model = "m.pt";
  std::vector<bool> told;
  const ForwardedOptions hook = [&](const fs::path& slide, const std::string& name, bool mpp_from_csv) {
    told.push_back(mpp_from_csv);
    return std::vector<std::string>{"--batch", "16", "--stride", slide.stem().string() + "/" + name};
  };
  EXPECT_EQ(joined(child_argv(job, hook, "/s/a.svs", "/o/a", "a")),
            "/bin/wsi heatmap /s/a.svs -o /o/a --name a -q --model m.pt --mpp 0.25 --batch 16 "
            "--stride a/a --threads 3");
  EXPECT_EQ(child_settings(job, hook, "/s/b.svs", "b-2"),
            "heatmap --name b-2 -q --model m.pt --batch 16 --stride b/b-2");  // no --threads
  EXPECT_EQ(told, (std::vector<bool>{true, false}));
  job.extract = true;
  job.dataset.params.balance.seed = 5;
  const std::string split = job.dataset.split_of("a");
  EXPECT_EQ(joined(child_options(job, {}, "/s/a.svs", "a")),
            "--prefix part --split " + split + "=1 --format pcam --balance none --seed 5 -q --mpp 0.25");
}

TEST(BatchReportText, ExitStatusAndTheShardNoteFollowTheReport) {
  BatchReport r;
  r.selected = 2;
  r.ran_ok = 2;
  r.manifest_json = "/o/manifest.1-of-2.json";
  BatchJob job;
  EXPECT_EQ(batch_exit_status(r, job), 0);
  r.failures.push_back({"b", "exit status 1"});
  EXPECT_EQ(batch_exit_status(r, job), 1);
  job.merge_only = true;  // every slide of the archive must be done
  r.manifests_done = 1;
  EXPECT_EQ(batch_exit_status(r, job), 1);
  r.manifests_done = 2;
  EXPECT_EQ(batch_exit_status(r, job), 0);
  r.dataset = BatchMergeReport{};
  r.dataset->outcome = BatchMergeReport::Outcome::nothing_finished;
  EXPECT_EQ(batch_exit_status(r, job), 1);
  const std::string text = batch_report_text(r, "/o", "1/2", false, true);
  EXPECT_NE(text.find("batch /o shard 1/2: 2 slides"), std::string::npos) << text;
  EXPECT_NE(text.find("  FAILED b: exit status 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dataset: not merged in a shard"), std::string::npos) << text;
  EXPECT_EQ(batch_report_text(r, "/o", "", false, true).find("not merged"), std::string::npos);
}

TEST(BatchChildCommand, FailureReasonsSayTimeoutSignalOrStatusAndTheErrorLine) {
  ChildResult r;
  r.exit_code = 3;
  r.last_error = "wsi-heatmap: error: bad slide";
  EXPECT_EQ(failure_reason(r, 0), "exit status 3: wsi-heatmap: error: bad slide");
  r.last_error.clear();
  r.signal = 11;
  EXPECT_EQ(failure_reason(r, 0), "crashed (signal 11: Segmentation fault)");
  r.timed_out = true;
  EXPECT_EQ(failure_reason(r, 2.5), "timed out after 2.5 s (--timeout) and was stopped");
}

// A stand-in for wsi-heatmap: `SUBCOMMAND SLIDE -o DIR OPTIONS...`. A slide whose bytes are
// "fail" fails with an error line; others get DIR/out.txt holding the options. Every call is
// appended to CALLS.
struct FakeChild {
  test::ScratchDir dir;
  fs::path exe = dir / "fake-wsi.sh", calls = dir / "calls.txt";
  FakeChild() {
    write(exe, "#!/bin/sh\necho \"$2\" >> '" + calls.string() +
                   "'\nif [ \"$(cat \"$2\")\" = fail ]; then echo 'wsi-heatmap: error: bad slide' >&2; exit 3; fi\n"
                   "d=\"$4\"; shift 4; echo \"$@\" > \"$d/out.txt\"\n");
    fs::permissions(exe, fs::perms::owner_all);
  }
  std::vector<std::string> take_calls() {
    std::vector<std::string> v;
    std::ifstream in(calls);
    for (std::string line; std::getline(in, line);) v.push_back(fs::path(line).stem().string());
    fs::remove(calls);
    return v;
  }
};

TEST(BatchRun, DoneSlidesWithIntactOutputsAreSkippedAndFailuresKeptUntilRetried) {
  test::ScratchDir d;
  FakeChild child;
  write(d / "in/a.svs", "slide a");
  write(d / "in/b.svs", "slide b");
  write(d / "in/c.svs", "fail");
  write(d / "in/e.svs", "");
  BatchJob job;
  job.inputs = {d / "in"};
  job.out = d / "out";
  job.exe = child.exe;
  fs::create_directories(job.out);
  std::vector<std::pair<size_t, size_t>> progress;
  BatchCallbacks cb;
  cb.progress = [&](size_t k, size_t n, int, int) { progress.emplace_back(k, n); };
  int finished_calls = 0;
  cb.slides_finished = [&](const BatchReport&) { ++finished_calls; };

  BatchReport r = run_batch(job, {}, cb);
  EXPECT_EQ(child.take_calls(), (std::vector<std::string>{"a", "b", "c"}));  // e is empty: not run
  EXPECT_EQ(r.found, 4u);
  EXPECT_EQ(r.selected, 4u);
  EXPECT_EQ(r.ran_ok, 2);
  EXPECT_EQ(r.ran_failed, 1);
  EXPECT_EQ(r.skipped, 1);
  ASSERT_EQ(r.failures.size(), 2u);
  EXPECT_EQ(r.failures[0].name, "c");
  EXPECT_EQ(r.failures[0].reason, "exit status 3: wsi-heatmap: error: bad slide");
  EXPECT_EQ(r.failures[1].reason, "skipped: empty file");
  EXPECT_EQ(progress.back(), (std::pair<size_t, size_t>{4, 4}));
  EXPECT_EQ(finished_calls, 1);
  EXPECT_FALSE(r.dataset);
  EXPECT_EQ(test::slurp(job.out / "a/out.txt"), "--name a -q\n");
  EXPECT_FALSE(fs::exists(job.out / "c"));  // a failed slide's empty folder goes; its log stays
  EXPECT_NE(test::slurp(job.out / "logs/c.log").find("bad slide"), std::string::npos);
  Manifest m = read_manifest(r.manifest_json);
  ASSERT_NE(m.find("a"), nullptr);
  EXPECT_EQ(m.find("a")->status, SlideStatus::done);
  EXPECT_EQ(m.find("a")->settings, "heatmap --name a -q");
  EXPECT_EQ(m.find("c")->status, SlideStatus::failed);
  EXPECT_EQ(m.find("e")->status, SlideStatus::skipped);

  // Again: nothing done is redone, the failure is kept with its earlier reason; the skipped
  // file is looked at again.
  r = run_batch(job, {});
  EXPECT_EQ(child.take_calls(), std::vector<std::string>{});
  EXPECT_EQ(r.already, 2);
  EXPECT_EQ(r.kept_failed, 1);
  EXPECT_EQ(r.ran_ok + r.ran_failed, 0);
  EXPECT_EQ(r.failures[0].reason,
            "exit status 3: wsi-heatmap: error: bad slide (earlier run; --retry-failed runs it again)");

  // An output that changed is not trusted: that slide runs again.
  write(job.out / "a/out.txt", "edited\n");
  r = run_batch(job, {});
  EXPECT_EQ(child.take_calls(), std::vector<std::string>{"a"});
  EXPECT_EQ(r.ran_ok, 1);
  EXPECT_EQ(r.already, 1);

  // --retry-failed runs the failed slide again and counts its attempts.
  job.retry_failed = true;
  r = run_batch(job, {});
  EXPECT_EQ(child.take_calls(), std::vector<std::string>{"c"});
  EXPECT_EQ(read_manifest(r.manifest_json).find("c")->attempts, 2);

  // Other settings (from the library's options or from the hook) redo every slide.
  job.retry_failed = false;
  const ForwardedOptions hook = [](const fs::path&, const std::string&, bool) {
    return std::vector<std::string>{"--stride", "2"};
  };
  r = run_batch(job, hook);
  EXPECT_EQ(child.take_calls(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(test::slurp(job.out / "b/out.txt"), "--name b -q --stride 2\n");
}

TEST(BatchRun, AStopFlagEndsTheRunAndMergeOnlyNeedsTheWholeArchive) {
  test::ScratchDir d;
  FakeChild child;
  write(d / "in/a.svs", "slide a");
  BatchJob job;
  job.inputs = {d / "in"};
  job.out = d / "out";
  job.exe = child.exe;
  fs::create_directories(job.out);
  const volatile std::sig_atomic_t stop = 1;
  const BatchReport r = run_batch(job, {}, {}, &stop);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(child.take_calls(), std::vector<std::string>{});
  job.merge_only = true;
  job.shard = ShardSpec::parse("1/2");
  EXPECT_EQ(usage_error([&] { run_batch(job, {}); }), "--merge-only merges every shard: give it without --shard");
  job.merge_only = false;
  job.inputs = {d / "out"};
  EXPECT_EQ(usage_error([&] { run_batch(job, {}); }),
            "no slides found in the inputs (extensions: .svs .tif .tiff .ndpi .mrxs ...)");
}

TEST(BatchRun, ShardsThenMergeOnlyGiveOneManifestOfEverySlide) {
  test::ScratchDir d;
  FakeChild child;
  for (const char* n : {"a", "b", "c", "d", "e", "f"}) write(d / "in" / (std::string(n) + ".svs"), n);
  BatchJob job;
  job.inputs = {d / "in"};
  job.out = d / "out";
  job.exe = child.exe;
  fs::create_directories(job.out);
  job.shard = ShardSpec::parse("1/2");
  const BatchReport one = run_batch(job, {});
  EXPECT_EQ(one.manifest_json, job.out / "manifest.shard-1-of-2.json");
  ASSERT_GT(one.selected, 0u);
  ASSERT_LT(one.selected, 6u);
  job.merge_only = true;
  job.shard = ShardSpec{};
  BatchReport r = run_batch(job, {});  // before shard 2: only shard 1's slides are done
  EXPECT_EQ(r.selected, 6u);
  EXPECT_EQ(r.in_manifests, one.selected);
  EXPECT_EQ(r.manifests_done, static_cast<int>(one.selected));
  EXPECT_EQ(child.take_calls().size(), one.selected);  // merge_only ran nothing
  job.merge_only = false;
  job.shard = ShardSpec::parse("2/2");
  run_batch(job, {});
  job.merge_only = true;
  job.shard = ShardSpec{};
  r = run_batch(job, {});
  EXPECT_EQ(r.manifests_done, 6);
  EXPECT_EQ(read_manifest(job.out / "manifest.json").entries.size(), 6u);
  // A whole run then trusts the merged manifest as its own.
  job.merge_only = false;
  child.take_calls();
  r = run_batch(job, {});
  EXPECT_EQ(r.already, 6);
  EXPECT_EQ(child.take_calls(), std::vector<std::string>{});
}

// One slide's extraction part as `extract --prefix part --split S=1` leaves it, recorded done.
void add_part(const BatchJob& job, const std::string& name, int positives, int negatives, BatchSelection& sel,
              Manifest& manifest) {
  const fs::path slide = job.out.parent_path() / "in" / (name + ".svs");
  const std::string split = job.dataset.split_of(name);
  fs::create_directories(job.out / name);
  auto w = make_pcam_writer(job.out / name, kBatchPartPrefix, split, 8);
  std::vector<uint8_t> rgb(8 * 8 * 3, 100);
  for (int i = 0; i < positives + negatives; ++i) {
    PatchRecord p;
    p.rgb = rgb.data();
    p.x = i * 8;
    p.size_level0 = 8;
    p.label = i < positives ? 1 : 0;
    p.wsi = name;
    w->add(p);
  }
  w->commit();
  sel.slides.push_back(slide);
  sel.names.push_back(name);
  sel.mine.push_back(sel.mine.size());
  ManifestEntry e;
  e.name = name;
  e.slide = slide.string();
  e.status = SlideStatus::done;
  e.settings = child_settings(job, {}, slide, name);
  e.outputs = describe_outputs(job.out / name, job.out);
  manifest.upsert(e);
}

TEST(BatchMerge, DatasetIsUpToDateUntilAPartOrAMergeSettingChanges) {
  test::ScratchDir d;
  BatchJob job;
  job.out = d / "out";
  job.extract = true;
  BatchSelection sel;
  Manifest manifest;
  add_part(job, "s1", 3, 5, sel, manifest);
  add_part(job, "s2", 2, 2, sel, manifest);

  BatchMergeReport m = merge_batch_dataset(job, {}, sel, manifest);
  EXPECT_EQ(m.outcome, BatchMergeReport::Outcome::merged);
  EXPECT_EQ(m.slides, 2u);
  EXPECT_EQ(m.left_out, 0u);
  ASSERT_EQ(m.splits.size(), 1u);
  EXPECT_EQ(m.splits[0].positives, 5);
  EXPECT_EQ(m.splits[0].negatives, 7);
  EXPECT_TRUE(fs::exists(job.out / "dataset/patches_train_x.h5"));

  m = merge_batch_dataset(job, {}, sel, manifest);
  EXPECT_EQ(m.outcome, BatchMergeReport::Outcome::up_to_date);
  EXPECT_EQ(m.slides, 2u);

  // A merge setting (not a child's): merged again, and DIR/dataset swapped whole.
  job.dataset.params.balance.mode = BalanceMode::undersample;
  m = merge_batch_dataset(job, {}, sel, manifest);
  EXPECT_EQ(m.outcome, BatchMergeReport::Outcome::merged);
  EXPECT_EQ(m.splits[0].positives, 5);
  EXPECT_EQ(m.splits[0].negatives, 5);
  EXPECT_EQ(merge_batch_dataset(job, {}, sel, manifest).outcome, BatchMergeReport::Outcome::up_to_date);

  // A part that changed since it was recorded is left out, so the dataset is merged again.
  write(job.out / "s2/part_train_meta.csv", "changed\n");
  m = merge_batch_dataset(job, {}, sel, manifest);
  EXPECT_EQ(m.outcome, BatchMergeReport::Outcome::merged);
  EXPECT_EQ(m.slides, 1u);
  EXPECT_EQ(m.left_out, 1u);

  // A dataset without its summary is not trusted; a killed merge's temporaries are cleared.
  fs::remove(job.out / "dataset/patches_summary.json");
  fs::create_directories(job.out / ".dataset.partial-1");
  EXPECT_EQ(merge_batch_dataset(job, {}, sel, manifest).outcome, BatchMergeReport::Outcome::merged);
  EXPECT_FALSE(fs::exists(job.out / ".dataset.partial-1"));

  // Settings of the children changed (the seed is one): no part counts, nothing is written.
  job.dataset.params.balance.seed = 9;
  m = merge_batch_dataset(job, {}, sel, manifest);
  EXPECT_EQ(m.outcome, BatchMergeReport::Outcome::nothing_finished);
  EXPECT_EQ(m.left_out, 2u);
  EXPECT_TRUE(fs::exists(job.out / "dataset/patches_summary.json"));  // the last merge stays
}

}  // namespace
}  // namespace wsi
