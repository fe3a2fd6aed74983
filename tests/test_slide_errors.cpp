// Bad inputs: each gives its own clear error naming the file, never a crash.
#include <gtest/gtest.h>

#include <fstream>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace {

using test::testdata;

struct BadOpen {
  const char* file;       // relative to testdata/
  const char* expected;   // substring of the message
  bool usage;             // UsageError (exit 2) rather than SlideError (exit 1)
};

const BadOpen kBadOpens[] = {
    {"broken/unopenable.tiff", "Unsupported TIFF compression: 52479", false},
    {"broken/broken.svs", "not a format OpenSlide recognises", false},
    {"broken/kidney-48-5.tif", "a striped (non-tiled) TIFF", false},
    {"broken/boxes.png", "a PNG image, not a whole-slide image", false},
    {"no-such-dir/no-such-slide.svs", "no such file", true},
    {"broken", "is a directory", true},
};

class BadSlideOpen : public ::testing::TestWithParam<BadOpen> {};

TEST_P(BadSlideOpen, FailsWithItsOwnMessageNamingTheFile) {
  const BadOpen& c = GetParam();
  const auto path = testdata(c.file);
  try {
    Slide s(path);
    FAIL() << c.file << " opened";
  } catch (const SlideError& e) {
    EXPECT_FALSE(c.usage) << c.file;
    EXPECT_EQ(e.path(), path);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << msg;
  } catch (const UsageError& e) {
    EXPECT_TRUE(c.usage) << c.file;
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BadSlideOpen, ::testing::ValuesIn(kBadOpens),
                         [](const auto& param_info) {
                           std::string n = param_info.param.file;
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(BadSlides, ConvertHintForStripedTiff) {
  try {
    Slide s(testdata("broken/kidney-48-5.tif"));
    FAIL();
  } catch (const SlideError& e) {
    EXPECT_NE(std::string(e.what()).find("vips tiffsave"), std::string::npos) << e.what();
  }
}

TEST(BadSlides, EmptyFileSaysItIsEmpty) {
  test::ScratchDir dir;
  const auto p = dir / "empty.svs";
  std::ofstream(p).close();
  try {
    Slide s(p);
    FAIL();
  } catch (const SlideError& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(BadSlides, TruncatedTiffFailsCleanly) {
  test::ScratchDir dir;
  const auto p = dir / "truncated.svs";
  {
    std::ifstream in(testdata("slides/cmu-1-small-region.svs"), std::ios::binary);
    std::string head(4096, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(p, std::ios::binary) << head;
  }
  try {
    Slide s(p);
    // If it opens at all, reading must fail with a RegionReadError, not crash.
    EXPECT_THROW(s.read_region(Region{0, 0, 0, 512, 512}), SlideError);
  } catch (const SlideError& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
}

TEST(BadSlides, OpensButReadFailsWithRegionAndStaysFailed) {
  const auto path = testdata("broken/unreadable.svs");
  const Slide s(path);  // the header is fine
  EXPECT_EQ(s.width(), 16);
  const Region r{0, 0, 0, 16, 16};
  try {
    s.read_region(r);
    FAIL() << "the corrupt tile decoded";
  } catch (const RegionReadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("Bogus marker length"), std::string::npos) << msg;
    EXPECT_NE(msg.find("x=0 y=0"), std::string::npos) << msg;
    EXPECT_EQ(e.region(), r);
  }
  // OpenSlide's error is sticky: later reads fail too, still cleanly.
  EXPECT_THROW(s.read_region(Region{0, 4, 4, 2, 2}), RegionReadError);
}

}  // namespace
}  // namespace wsi
