// Dataset writers: PCam HDF5 files read back with the HDF5 C API and independently (h5py or
// h5dump), Kaggle TIFFs read back with libtiff, SHA-1 ids checked against the real Kaggle patches,
// and crash safety (no commit, full disk) checked by looking at what is left in the directory.
#include <hdf5.h>
#include <libdeflate.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tiffio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "dataset/parallel_deflate.hpp"
#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace fs = std::filesystem;
using wsi::test::ScratchDir;

namespace {

constexpr int kP = 96;
constexpr size_t kPatchBytes = size_t{kP} * kP * 3;

// Deterministic content: every patch differs (distinct SHA-1), values cover 0..255.
std::vector<uint8_t> make_pixels(int index) {
  std::vector<uint8_t> px(kPatchBytes);
  for (int r = 0; r < kP; ++r)
    for (int c = 0; c < kP; ++c)
      for (int ch = 0; ch < 3; ++ch)
        px[(size_t(r) * kP + size_t(c)) * 3 + size_t(ch)] = uint8_t((index * 37 + r * 3 + c * 5 + ch * 71) & 0xff);
  return px;
}

// Pseudo-random pixels that gzip cannot shrink (for the full-disk test).
std::vector<uint8_t> noise_pixels(uint32_t seed) {
  std::vector<uint8_t> px(kPatchBytes);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& v : px) {
    s = s * 1664525u + 1013904223u;
    v = uint8_t(s >> 24);
  }
  return px;
}

wsi::PatchRecord make_record(int i, const std::vector<uint8_t>& px) {
  wsi::PatchRecord r;
  r.rgb = px.data();
  r.x = 1000 + i * 384;
  r.y = 2000 + i;
  r.size_level0 = 384;
  r.level = 2;
  r.label = uint8_t(i % 3 == 0);
  r.tumor_patch = i % 2 == 0;
  r.center_tumor_patch = i % 3 == 0;
  r.tumour_fraction = i / 8.0;
  r.copy = i % 4;
  r.augment = i % 4 ? "rot90" : "";
  r.wsi = "tumor_001";
  return r;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

bool has_partial(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".partial-") != std::string::npos) return true;
  return false;
}

// Writes n patches with make_pixels/make_record into a pcam writer and commits.
std::unique_ptr<wsi::DatasetWriter> write_pcam(const fs::path& dir, int n) {
  auto w = wsi::make_pcam_writer(dir, "camelyon", "train", kP);
  for (int i = 0; i < n; ++i) {
    auto px = make_pixels(i);
    w->add(make_record(i, px));
  }
  w->commit();
  return w;
}

// Every 7th patch is noise (a chunk that barely compresses next to ones that shrink a lot).
std::vector<uint8_t> mixed_pixels(int i) { return i % 7 == 3 ? noise_pixels(uint32_t(i)) : make_pixels(i); }

// Writes n mixed_pixels patches on `threads` oneTBB threads (an arena of that many, the writer told
// the same) and commits.
void write_pcam_on_threads(const fs::path& dir, int n, int threads) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, size_t(threads));
  tbb::task_arena arena(threads);
  arena.execute([&] {
    auto w = wsi::make_pcam_writer(dir, "camelyon", "train", kP, threads);
    for (int i = 0; i < n; ++i) {
      auto px = mixed_pixels(i);
      w->add(make_record(i, px));
    }
    w->commit();
  });
}

// Minimal owner for HDF5 ids in the test (closed in reverse order of opening).
struct H5 {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5() {
    if (id >= 0) close(id);
  }
};

struct DatasetInfo {
  std::vector<hsize_t> dims, maxdims, chunk;
  bool u8 = false, chunked = false, deflate = false;
  unsigned deflate_level = 0;
  std::vector<uint8_t> data;
};

DatasetInfo read_dataset(const fs::path& file, const char* name) {
  DatasetInfo info;
  H5 f{H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  EXPECT_GE(f.id, 0) << file;
  H5 d{H5Dopen2(f.id, name, H5P_DEFAULT), H5Dclose};
  EXPECT_GE(d.id, 0) << name;
  if (d.id < 0) return info;
  H5 space{H5Dget_space(d.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  info.dims.resize(size_t(rank));
  info.maxdims.resize(size_t(rank));
  H5Sget_simple_extent_dims(space.id, info.dims.data(), info.maxdims.data());
  H5 type{H5Dget_type(d.id), H5Tclose};
  info.u8 = H5Tequal(type.id, H5T_STD_U8LE) > 0 && H5Tequal(type.id, H5T_NATIVE_UINT8) > 0;
  H5 dcpl{H5Dget_create_plist(d.id), H5Pclose};
  info.chunked = H5Pget_layout(dcpl.id) == H5D_CHUNKED;
  if (info.chunked) {
    info.chunk.resize(size_t(rank));
    H5Pget_chunk(dcpl.id, rank, info.chunk.data());
  }
  for (int i = 0; i < H5Pget_nfilters(dcpl.id); ++i) {
    unsigned flags = 0, cd[4] = {0, 0, 0, 0};
    size_t ncd = 4;
    char fname[64];
    if (H5Pget_filter2(dcpl.id, unsigned(i), &flags, &ncd, cd, sizeof fname, fname, nullptr) == H5Z_FILTER_DEFLATE) {
      info.deflate = true;
      info.deflate_level = ncd ? cd[0] : 0;
    }
  }
  const hsize_t total = std::accumulate(info.dims.begin(), info.dims.end(), hsize_t{1}, std::multiplies<>());
  info.data.resize(size_t(total));
  if (total) {
    EXPECT_GE(H5Dread(d.id, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, info.data.data()), 0);
  }
  return info;
}

struct TiffImage {
  uint32_t width = 0, height = 0;
  uint16_t spp = 0, bps = 0, photometric = 0, planar = 0, compression = 0;
  uint32_t rows_per_strip = 0;
  std::vector<uint8_t> rgb;
};

TiffImage read_tiff(const fs::path& path) {
  TiffImage img;
  TIFF* t = TIFFOpen(path.c_str(), "rc");  // "c": no strip chopping, report the strips as stored
  EXPECT_NE(t, nullptr) << path;
  if (!t) return img;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &img.width);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &img.height);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &img.spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &img.bps);
  TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &img.photometric);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &img.planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &img.compression);
  TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &img.rows_per_strip);
  if (img.spp == 3 && img.bps == 8 && img.planar == PLANARCONFIG_CONTIG) {
    const size_t row = size_t(img.width) * 3;
    img.rgb.resize(row * img.height);
    for (uint32_t y = 0; y < img.height; ++y)
      EXPECT_EQ(TIFFReadScanline(t, img.rgb.data() + row * y, y, 0), 1) << path << " row " << y;
  }
  TIFFClose(t);
  return img;
}

// Runs `body` in a forked child whose file size limit is `limit` bytes (writes beyond it fail with
// EFBIG instead of killing it). Returns the child's exit status; its stderr text goes to `message`.
int run_with_file_size_limit(rlim_t limit, const std::function<void()>& body, std::string& message) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);
    rlimit rl{limit, limit};
    setrlimit(RLIMIT_FSIZE, &rl);
    int code = 0;
    std::string what;
    try {
      body();
    } catch (const wsi::WriteError& e) {
      what = e.what();
      code = 3;
    } catch (const std::exception& e) {
      what = std::string("not a WriteError: ") + e.what();
      code = 4;
    }
    if (!what.empty() && write(fds[1], what.data(), what.size()) < 0) code = 5;
    // What exit() would do for HDF5: close whatever is still open. HDF5 1.10 crashes here when a
    // file failed to close before (see pcam_writer.cpp), so this checks the writer avoided that.
    H5close();
    _exit(code);
  }
  close(fds[1]);
  char buf[1024];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int shell(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// SHA-1 ids and the format name

TEST(Sha1Hex, MatchesTheStandardTestVectorForAbc) {
  const std::string abc = "abc";
  EXPECT_EQ(wsi::sha1_hex(reinterpret_cast<const uint8_t*>(abc.data()), abc.size()),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(wsi::sha1_hex(nullptr, 0), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST(Sha1Hex, RealKagglePatchNamesAreTheSha1OfTheirPixels) {
  const fs::path root = wsi::test::shared_testdata("pcam");
  if (!fs::is_directory(root)) WSI_SKIP_MISSING() << root << " is absent";
  int checked = 0;
  for (const auto& folder : fs::directory_iterator(root)) {
    if (!folder.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(folder.path())) {
      if (f.path().extension() != ".tif") continue;
      TiffImage img = read_tiff(f.path());
      ASSERT_EQ(img.width, 96u) << f.path();
      ASSERT_EQ(img.height, 96u) << f.path();
      ASSERT_EQ(img.rgb.size(), kPatchBytes) << f.path();
      EXPECT_EQ(wsi::sha1_hex(img.rgb.data(), img.rgb.size()), f.path().stem().string()) << f.path();
      ++checked;
    }
  }
  if (checked == 0) WSI_SKIP_MISSING() << "no .tif patches under " << root;
  EXPECT_GE(checked, 1);
}

TEST(ParseDatasetFormat, AcceptsPcamAndKaggleAndRejectsOthersAsUsageError) {
  EXPECT_EQ(wsi::parse_dataset_format("pcam"), wsi::DatasetFormat::pcam);
  EXPECT_EQ(wsi::parse_dataset_format("kaggle"), wsi::DatasetFormat::kaggle);
  try {
    wsi::parse_dataset_format("hdf5");
    FAIL() << "no exception";
  } catch (const wsi::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'hdf5'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pcam"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// PCam writer

TEST(PcamWriter, WritesChunkedGzipDatasetsThatReadBackExactly) {
  ScratchDir dir;
  const int n = 150;  // two full chunks of 64 and a partial one
  auto w = write_pcam(dir.path(), n);
  EXPECT_EQ(w->stats().written, n);
  EXPECT_EQ(w->stats().positives, 50);
  EXPECT_EQ(w->stats().negatives, 100);
  EXPECT_EQ(w->outputs(), (std::vector<fs::path>{dir / "camelyon_train_x.h5", dir / "camelyon_train_y.h5",
                                                 dir / "camelyon_train_meta.csv"}));
  EXPECT_EQ(names_in(dir.path()),
            (std::set<std::string>{"camelyon_train_x.h5", "camelyon_train_y.h5", "camelyon_train_meta.csv"}));

  DatasetInfo x = read_dataset(dir / "camelyon_train_x.h5", "x");
  EXPECT_EQ(x.dims, (std::vector<hsize_t>{n, kP, kP, 3}));
  EXPECT_EQ(x.maxdims, (std::vector<hsize_t>{H5S_UNLIMITED, kP, kP, 3}));
  EXPECT_TRUE(x.u8);
  ASSERT_TRUE(x.chunked);
  EXPECT_EQ(x.chunk, (std::vector<hsize_t>{64, kP, kP, 3}));
  EXPECT_TRUE(x.deflate);
  EXPECT_EQ(x.deflate_level, 1u);  // libdeflate's level (the chunks arrive compressed)
  ASSERT_EQ(x.data.size(), n * kPatchBytes);
  for (int i = 0; i < n; ++i) {
    auto px = make_pixels(i);
    ASSERT_TRUE(std::equal(px.begin(), px.end(), x.data.begin() + ptrdiff_t(i * kPatchBytes))) << "patch " << i;
  }

  DatasetInfo y = read_dataset(dir / "camelyon_train_y.h5", "y");
  EXPECT_EQ(y.dims, (std::vector<hsize_t>{n, 1, 1, 1}));
  EXPECT_EQ(y.maxdims[0], H5S_UNLIMITED);
  EXPECT_TRUE(y.u8);
  EXPECT_TRUE(y.chunked);
  EXPECT_TRUE(y.deflate);
  ASSERT_EQ(y.data.size(), size_t{n});
  for (int i = 0; i < n; ++i) EXPECT_EQ(y.data[size_t(i)], i % 3 == 0 ? 1 : 0) << "label " << i;
}

TEST(PcamWriter, MetaCsvHasPcamColumnsThenOursWithPandasBooleans) {
  ScratchDir dir;
  write_pcam(dir.path(), 5);
  const auto lines = lines_of(read_text(dir / "camelyon_train_meta.csv"));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0],
            "coord_y,coord_x,tumor_patch,center_tumor_patch,wsi,label,tumour_fraction,copy,augment,level,"
            "patch_size_level0");
  EXPECT_EQ(lines[1], "2000,1000,True,True,tumor_001,1,0,0,,2,384");
  EXPECT_EQ(lines[2], "2001,1384,False,False,tumor_001,0,0.125,1,rot90,2,384");
  EXPECT_EQ(lines[4], "2003,2152,False,True,tumor_001,1,0.375,3,rot90,2,384");
}

TEST(PcamWriter, QuotesSlideNamesThatNeedItPerRfc4180) {
  ScratchDir dir;
  auto w = wsi::make_pcam_writer(dir.path(), "p", "valid", kP);
  auto px = make_pixels(0);
  auto r = make_record(0, px);
  r.wsi = "slide, \"A\"";
  w->add(r);
  w->commit();
  const auto lines = lines_of(read_text(dir / "p_valid_meta.csv"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "2000,1000,True,True,\"slide, \"\"A\"\"\",1,0,0,,2,384");
}

TEST(PcamWriter, MetaCsvReadsBackAsWritten) {
  ScratchDir dir;
  auto w = wsi::make_pcam_writer(dir.path(), "p", "train", kP);
  std::vector<wsi::PatchRecord> want;
  for (int i = 0; i < 5; ++i) {
    auto px = make_pixels(i);
    auto r = make_record(i, px);
    if (i == 3) r.wsi = "slide, \"A\"";  // quoted in the file
    w->add(r);
    want.push_back(r);
  }
  w->commit();
  const auto got = wsi::read_patch_meta(dir / "p_train_meta.csv");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].x, want[i].x);
    EXPECT_EQ(got[i].y, want[i].y);
    EXPECT_EQ(got[i].size_level0, want[i].size_level0);
    EXPECT_EQ(got[i].level, want[i].level);
    EXPECT_EQ(got[i].label, want[i].label);
    EXPECT_EQ(got[i].tumor_patch, want[i].tumor_patch);
    EXPECT_EQ(got[i].center_tumor_patch, want[i].center_tumor_patch);
    EXPECT_NEAR(got[i].tumour_fraction, want[i].tumour_fraction, 1e-6);
    EXPECT_EQ(got[i].copy, want[i].copy);
    EXPECT_EQ(got[i].augment, want[i].augment);
    EXPECT_EQ(got[i].wsi, want[i].wsi);
  }
  std::ofstream(dir / "bad_meta.csv") << "coord_y,coord_x\n1,2\n";
  EXPECT_THROW(wsi::read_patch_meta(dir / "bad_meta.csv"), wsi::ConfigError);
}

TEST(PcamWriter, ZeroPatchesGiveValidEmptyDatasets) {
  ScratchDir dir;
  write_pcam(dir.path(), 0);
  DatasetInfo x = read_dataset(dir / "camelyon_train_x.h5", "x");
  EXPECT_EQ(x.dims, (std::vector<hsize_t>{0, kP, kP, 3}));
  EXPECT_TRUE(x.u8);
  DatasetInfo y = read_dataset(dir / "camelyon_train_y.h5", "y");
  EXPECT_EQ(y.dims, (std::vector<hsize_t>{0, 1, 1, 1}));
  EXPECT_EQ(lines_of(read_text(dir / "camelyon_train_meta.csv")).size(), 1u);
}

TEST(PcamWriter, H5pyReadsBackEveryPatchAndLabelExactlyIncludingAPartialLastChunk) {
  if (shell("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0)
    WSI_SKIP_MISSING() << "/usr/bin/python3 with h5py and numpy is not available";
  for (const int n : {70, 128}) {  // 64 + 6 (a partial chunk), and exactly two chunks
    SCOPED_TRACE("n = " + std::to_string(n));
    ScratchDir dir;
    write_pcam_on_threads(dir.path(), n, 2);
    // h5py's own gzip filter decodes every chunk; the script writes back what it read, raw.
    std::ofstream(dir / "check.py") << "import sys, h5py, numpy as np\n"
                                       "d = sys.argv[1]\n"
                                       "with h5py.File(d + '/camelyon_train_x.h5', 'r') as f:\n"
                                       "    x = f['x']\n"
                                       "    assert x.dtype == np.uint8, x.dtype\n"
                                       "    assert x.compression == 'gzip', x.compression\n"
                                       "    assert x.chunks == (64, 96, 96, 3), x.chunks\n"
                                       "    print(x.shape)\n"
                                       "    open(d + '/x.raw', 'wb').write(x[:].tobytes())\n"
                                       "    assert (x[x.shape[0] - 1] == x[:][-1]).all()  # the last row on its own\n"
                                       "with h5py.File(d + '/camelyon_train_y.h5', 'r') as f:\n"
                                       "    y = f['y']\n"
                                       "    assert y.dtype == np.uint8 and y.compression == 'gzip'\n"
                                       "    print(y.shape)\n"
                                       "    open(d + '/y.raw', 'wb').write(y[:].tobytes())\n"
                                       "print('ok')\n";
    const std::string out =
        shell_output("/usr/bin/python3 " + (dir / "check.py").string() + " " + dir.path().string() + " 2>&1");
    const std::string N = std::to_string(n);
    EXPECT_EQ(out, "(" + N + ", 96, 96, 3)\n(" + N + ", 1, 1, 1)\nok\n");
    std::string want_x, want_y;
    for (int i = 0; i < n; ++i) {
      const auto px = mixed_pixels(i);
      want_x.append(px.begin(), px.end());
      want_y.push_back(char(i % 3 == 0));
    }
    EXPECT_TRUE(read_text(dir / "x.raw") == want_x) << "the patches h5py read differ from those written";
    EXPECT_EQ(read_text(dir / "y.raw"), want_y);
  }
}

TEST(PcamWriter, FileMadeWithFourThreadsIsByteIdenticalToOneThreadAndToASecondRun) {
  const int n = 64 * 5 + 17;  // chunks compressed concurrently, finishing out of order, and a partial one
  ScratchDir one, four, again;
  write_pcam_on_threads(one.path(), n, 1);
  write_pcam_on_threads(four.path(), n, 4);
  write_pcam_on_threads(again.path(), n, 4);
  for (const char* f : {"camelyon_train_x.h5", "camelyon_train_y.h5", "camelyon_train_meta.csv"}) {
    SCOPED_TRACE(f);
    const std::string a = read_text(one / f), b = read_text(four / f), c = read_text(again / f);
    EXPECT_GT(a.size(), 1000u);
    EXPECT_TRUE(a == b) << "1 thread: " << a.size() << " bytes, 4 threads: " << b.size();
    EXPECT_TRUE(b == c) << "first run: " << b.size() << " bytes, second: " << c.size();
  }
  DatasetInfo x = read_dataset(four / "camelyon_train_x.h5", "x");
  ASSERT_EQ(x.data.size(), size_t(n) * kPatchBytes);
  for (int i = 0; i < n; ++i) {
    const auto px = mixed_pixels(i);
    ASSERT_TRUE(std::equal(px.begin(), px.end(), x.data.begin() + ptrdiff_t(size_t(i) * kPatchBytes))) << i;
  }
}

TEST(PcamWriter, H5dumpDescribesTheSameShapesAndTypes) {
  if (shell("h5dump --version >/dev/null 2>&1") != 0) WSI_SKIP_MISSING() << "h5dump (hdf5-tools) is not installed";
  ScratchDir dir;
  write_pcam(dir.path(), 3);
  const std::string x = shell_output("h5dump -H -p " + (dir / "camelyon_train_x.h5").string());
  EXPECT_NE(x.find("DATASET \"x\""), std::string::npos) << x;
  EXPECT_NE(x.find("H5T_STD_U8LE"), std::string::npos) << x;
  EXPECT_NE(x.find("( 3, 96, 96, 3 ) / ( H5S_UNLIMITED, 96, 96, 3 )"), std::string::npos) << x;
  EXPECT_NE(x.find("DEFLATE"), std::string::npos) << x;
  const std::string y = shell_output("h5dump -H " + (dir / "camelyon_train_y.h5").string());
  EXPECT_NE(y.find("DATASET \"y\""), std::string::npos) << y;
  EXPECT_NE(y.find("H5T_STD_U8LE"), std::string::npos) << y;
  EXPECT_NE(y.find("( 3, 1, 1, 1 ) / ( H5S_UNLIMITED, 1, 1, 1 )"), std::string::npos) << y;
}

TEST(PcamWriter, WithoutCommitLeavesNoFilesAndNoTemporaries) {
  ScratchDir dir;
  {
    auto w = wsi::make_pcam_writer(dir.path(), "camelyon", "train", kP);
    for (int i = 0; i < 100; ++i) {
      auto px = make_pixels(i);
      w->add(make_record(i, px));
    }
    EXPECT_FALSE(names_in(dir.path()).empty());  // the temporaries exist while writing
  }
  EXPECT_TRUE(names_in(dir.path()).empty());
}

TEST(PcamWriter, MissingDirectoryIsAWriteErrorNamingTheFile) {
  ScratchDir dir;
  try {
    wsi::make_pcam_writer(dir / "nope", "camelyon", "train", kP);
    FAIL() << "no exception";
  } catch (const wsi::WriteError& e) {
    EXPECT_EQ(e.path(), dir / "nope" / "camelyon_train_x.h5");
  }
}

TEST(PcamWriter, FullDiskIsAWriteErrorAndLeavesNoFinalOrPartialFiles) {
  ScratchDir dir;
  std::string message;
  const int code = run_with_file_size_limit(
      256 << 10,
      [&] {
        auto w = wsi::make_pcam_writer(dir.path(), "camelyon", "train", kP);
        for (int i = 0; i < 300; ++i) {
          auto px = noise_pixels(uint32_t(i));
          w->add(make_record(i, px));
        }
        w->commit();
      },
      message);
  EXPECT_EQ(code, 3) << message;
  EXPECT_NE(message.find("camelyon_train_x.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("disk full"), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;  // the cause
  EXPECT_EQ(message.find(".partial-"), std::string::npos) << message;           // the final name, not the temporary
  EXPECT_TRUE(names_in(dir.path()).empty());
}

TEST(PcamWriter, FullDiskFoundOnlyAtCommitIsStillAWriteError) {
  // 8x8 patches make 192-byte rows and 12 KiB chunks: 60 patches stay in the chunk being staged,
  // so nothing reaches the disk before commit() compresses and writes it.
  ScratchDir dir;
  std::string message;
  const int code = run_with_file_size_limit(
      8 << 10,
      [&] {
        auto w = wsi::make_pcam_writer(dir.path(), "camelyon", "train", 8);
        std::vector<uint8_t> px(8 * 8 * 3);
        for (int i = 0; i < 60; ++i) {
          auto noise = noise_pixels(uint32_t(i));
          std::copy_n(noise.begin(), px.size(), px.begin());
          try {
            w->add(make_record(i, px));
          } catch (const wsi::WriteError& e) {
            throw std::runtime_error(std::string("add(), not commit(), failed: ") + e.what());
          }
        }
        w->commit();
      },
      message);
  EXPECT_EQ(code, 3) << message;
  EXPECT_NE(message.find("camelyon_train_x.h5: writing the dataset \"x\" failed: " + std::string(std::strerror(EFBIG)) +
                         " (is the disk full?)"),
            std::string::npos)
      << message;
  EXPECT_TRUE(names_in(dir.path()).empty());
}

// ---------------------------------------------------------------------------------------------
// OrderedDeflate: the PCam writer's parallel chunk compression

namespace {

std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size, size_t raw_size) {
  std::vector<uint8_t> out(raw_size);
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  size_t got = 0;
  const auto rc = libdeflate_zlib_decompress(d, data, size, out.data(), out.size(), &got);
  libdeflate_free_decompressor(d);
  EXPECT_EQ(rc, LIBDEFLATE_SUCCESS);
  EXPECT_EQ(got, raw_size);
  return out;
}

}  // namespace

TEST(OrderedDeflate, HandsBlocksBackInSubmissionOrderAsZlibStreamsOfTheZeroPaddedBlock) {
  constexpr size_t kBlock = 4096;
  // Earlier blocks take longer, so on several threads they finish after later ones.
  const auto slow_first = [](const uint8_t* in, size_t n, uint8_t* out, size_t cap) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * (4 - in[0] % 4)));
    return wsi::detail::zlib_compress(4, in, n, out, cap);
  };
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 4);
  tbb::task_arena arena(4);
  arena.execute([&] {
    wsi::detail::OrderedDeflate deflate(kBlock, 4, slow_first, wsi::detail::zlib_bound(kBlock));
    std::vector<std::vector<uint8_t>> sent;
    size_t next_back = 0;
    for (int b = 0; b < 12; ++b) {
      if (deflate.full()) {
        const auto c = deflate.wait_oldest();
        std::vector<uint8_t> want = sent[next_back++];
        EXPECT_EQ(c.used, want.size());
        want.resize(kBlock, 0);
        EXPECT_EQ(zlib_decompress(c.data, c.size, kBlock), want) << "block " << next_back - 1;
        deflate.pop();
      }
      const size_t used = b == 11 ? 1000 : kBlock;  // the last one partial
      uint8_t* in = deflate.fill();
      for (size_t i = 0; i < used; ++i) in[i] = uint8_t(b + (i % 97 == 0 ? i : 0));
      in[0] = uint8_t(b);
      sent.emplace_back(in, in + used);
      deflate.submit(used);
      EXPECT_LE(deflate.in_flight(), 4u);
    }
    while (deflate.in_flight() > 0) {
      const auto c = deflate.wait_oldest();
      std::vector<uint8_t> want = sent[next_back++];
      EXPECT_EQ(c.used, want.size());
      want.resize(kBlock, 0);
      EXPECT_EQ(zlib_decompress(c.data, c.size, kBlock), want) << "block " << next_back - 1;
      deflate.pop();
    }
    EXPECT_EQ(next_back, 12u);
  });
}

TEST(OrderedDeflate, ZlibCompressWritesARfc1950StreamWhoseBytesDependOnlyOnInputAndLevel) {
  const auto px = make_pixels(5);
  std::vector<uint8_t> a(wsi::detail::zlib_bound(px.size())), b(a.size());
  const size_t na = wsi::detail::zlib_compress(4, px.data(), px.size(), a.data(), a.size());
  size_t nb = 0;
  std::thread([&] { nb = wsi::detail::zlib_compress(4, px.data(), px.size(), b.data(), b.size()); }).join();
  ASSERT_EQ(na, nb);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + ptrdiff_t(na), b.begin()));
  // RFC 1950 header: deflate, 32 KiB window, header checksum.
  EXPECT_EQ(a[0], 0x78);
  EXPECT_EQ((a[0] * 256 + a[1]) % 31, 0);
  EXPECT_EQ(zlib_decompress(a.data(), na, px.size()), px);
  EXPECT_THROW(wsi::detail::zlib_compress(13, px.data(), px.size(), a.data(), a.size()), wsi::Error);
}

TEST(OrderedDeflate, AnExceptionInACompressionTaskIsRethrownByTheWaitThatReachesItsBlock) {
  constexpr size_t kBlock = 256;
  const auto third_fails = [](const uint8_t* in, size_t n, uint8_t* out, size_t cap) -> size_t {
    if (in[0] == 2) throw std::runtime_error("no memory for block 2");
    return wsi::detail::zlib_compress(1, in, n, out, cap);
  };
  wsi::detail::OrderedDeflate deflate(kBlock, 4, third_fails, wsi::detail::zlib_bound(kBlock));
  for (int b = 0; b < 4; ++b) {
    deflate.fill()[0] = uint8_t(b);
    deflate.submit(kBlock);
  }
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(deflate.wait_oldest().used, kBlock);
    deflate.pop();
  }
  try {
    deflate.wait_oldest();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no memory for block 2");
  }
}

TEST(OrderedDeflate, DestroyedWithBlocksInFlightItWaitsForEveryTask) {
  constexpr size_t kBlock = 256;
  std::atomic<int> started{0}, finished{0};
  {
    const auto slow = [&](const uint8_t* in, size_t n, uint8_t* out, size_t cap) {
      ++started;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      const size_t size = wsi::detail::zlib_compress(1, in, n, out, cap);
      ++finished;
      return size;
    };
    wsi::detail::OrderedDeflate deflate(kBlock, 6, slow, wsi::detail::zlib_bound(kBlock));
    for (int b = 0; b < 6; ++b) deflate.submit(0);
    EXPECT_TRUE(deflate.full());
    EXPECT_THROW(deflate.fill(), std::logic_error);
  }  // abandoned: nothing waited for, nothing popped
  EXPECT_EQ(started.load(), 6);
  EXPECT_EQ(finished.load(), 6);
}

TEST(PcamWriter, AbandonedWhileChunksAreBeingCompressedLeavesNoFiles) {
  ScratchDir dir;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
    auto w = wsi::make_pcam_writer(dir.path(), "camelyon", "train", kP, 2);
    // Four chunks submitted, the last just now: the destructor waits for its task (ASan checks).
    for (int i = 0; i < 64 * 4; ++i) {
      auto px = noise_pixels(uint32_t(i));
      w->add(make_record(i, px));
    }
  }
  EXPECT_TRUE(names_in(dir.path()).empty());
}

// ---------------------------------------------------------------------------------------------
// Kaggle writer

TEST(KaggleWriter, NamesEachTiffBySha1AndTheTiffHoldsTheSameRgbPixels) {
  ScratchDir dir;
  auto w = wsi::make_kaggle_writer(dir.path(), "train", kP);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto px = make_pixels(i);
    w->add(make_record(i, px));
    ids.push_back(wsi::sha1_hex(px.data(), px.size()));
  }
  w->commit();
  EXPECT_EQ(w->stats().written, 5);
  for (int i = 0; i < 5; ++i) {
    const fs::path f = dir / "train" / (ids[size_t(i)] + ".tif");
    ASSERT_TRUE(fs::is_regular_file(f)) << f;
    TiffImage img = read_tiff(f);
    EXPECT_EQ(img.width, 96u);
    EXPECT_EQ(img.height, 96u);
    EXPECT_EQ(img.spp, 3);
    EXPECT_EQ(img.bps, 8);
    EXPECT_EQ(img.photometric, PHOTOMETRIC_RGB);
    EXPECT_EQ(img.planar, PLANARCONFIG_CONTIG);
    EXPECT_EQ(img.compression, COMPRESSION_NONE);
    EXPECT_EQ(img.rows_per_strip, 96u);  // one strip, like the Kaggle files
    EXPECT_EQ(img.rgb, make_pixels(i)) << f;
    EXPECT_EQ(wsi::sha1_hex(img.rgb.data(), img.rgb.size()), ids[size_t(i)]);
  }
  EXPECT_EQ(names_in(dir / "train").size(), 5u);
  EXPECT_FALSE(has_partial(dir.path()));
}

TEST(KaggleWriter, SkipsAndCountsDuplicatePixels) {
  ScratchDir dir;
  auto w = wsi::make_kaggle_writer(dir.path(), "train", kP);
  auto a = make_pixels(1), b = make_pixels(2);
  w->add(make_record(0, a));
  w->add(make_record(1, b));
  w->add(make_record(2, a));  // same pixels, other metadata: still the same Kaggle id
  w->add(make_record(3, a));
  w->commit();
  EXPECT_EQ(w->stats().written, 2);
  EXPECT_EQ(w->stats().duplicates_skipped, 2);
  EXPECT_EQ(w->stats().positives, 1);
  EXPECT_EQ(w->stats().negatives, 1);
  EXPECT_EQ(names_in(dir / "train").size(), 2u);
  EXPECT_EQ(lines_of(read_text(dir / "train_labels.csv")).size(), 3u);
}

TEST(KaggleWriter, LabelsCsvIsKaggleIdLabelAndMetaCsvAddsOurColumns) {
  ScratchDir dir;
  auto w = wsi::make_kaggle_writer(dir.path(), "train", kP);
  auto a = make_pixels(0), b = make_pixels(1);
  w->add(make_record(0, a));
  w->add(make_record(1, b));
  w->commit();
  const std::string ia = wsi::sha1_hex(a.data(), a.size()), ib = wsi::sha1_hex(b.data(), b.size());
  EXPECT_EQ(read_text(dir / "train_labels.csv"), "id,label\n" + ia + ",1\n" + ib + ",0\n");
  EXPECT_EQ(read_text(dir / "train_meta.csv"),
            "id,coord_y,coord_x,tumor_patch,center_tumor_patch,wsi,label,tumour_fraction,copy,augment,level,"
            "patch_size_level0\n" +
                ia + ",2000,1000,True,True,tumor_001,1,0,0,,2,384\n" + ib +
                ",2001,1384,False,False,tumor_001,0,0.125,1,rot90,2,384\n");
  EXPECT_EQ(w->outputs(), (std::vector<fs::path>{dir / "train", dir / "train_labels.csv", dir / "train_meta.csv"}));
}

TEST(KaggleWriter, OtherSplitsUseTheirOwnDirectoryAndLabelsFile) {
  ScratchDir dir;
  auto w = wsi::make_kaggle_writer(dir.path(), "valid", kP);
  auto px = make_pixels(7);
  w->add(make_record(7, px));
  w->commit();
  EXPECT_TRUE(fs::is_regular_file(dir / "valid" / (wsi::sha1_hex(px.data(), px.size()) + ".tif")));
  EXPECT_EQ(names_in(dir.path()), (std::set<std::string>{"valid", "valid_labels.csv", "valid_meta.csv"}));
}

// Patches without their labels are no dataset: an abandoned writer leaves nothing (issue 20).
TEST(KaggleWriter, WithoutCommitLeavesNoPatchFolderCsvOrTemporaries) {
  ScratchDir dir;
  {
    auto w = wsi::make_kaggle_writer(dir.path(), "train", kP);
    auto px = make_pixels(3);
    w->add(make_record(3, px));
  }
  EXPECT_TRUE(names_in(dir.path()).empty());
  EXPECT_FALSE(has_partial(dir.path()));
}

TEST(KaggleWriter, FullDiskIsAWriteErrorAndLeavesNoCsvOrPartialFiles) {
  ScratchDir dir;
  std::string message;
  // A 96x96 TIFF is ~27 KiB, over the 20 KiB limit: the first patch already fails.
  const int code = run_with_file_size_limit(
      20 << 10,
      [&] {
        auto w = wsi::make_kaggle_writer(dir.path(), "train", kP);
        for (int i = 0; i < 10; ++i) {
          auto px = make_pixels(i);
          w->add(make_record(i, px));
        }
        w->commit();
      },
      message);
  EXPECT_EQ(code, 3) << message;
  EXPECT_NE(message.find(".tif"), std::string::npos) << message;
  EXPECT_NE(message.find("disk full"), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;  // the cause
  EXPECT_NE(message.find(dir.path().string() + "/train/"), std::string::npos) << message;  // where it was to go
  EXPECT_TRUE(names_in(dir.path()).empty());
  EXPECT_FALSE(has_partial(dir.path()));
}
