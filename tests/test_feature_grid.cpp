// Feature-map grids, the choice of patches to show, and file stems (feature_maps.hpp): pure
// functions, checked pixel by pixel and index by index with made-up activations.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "wsi/feature_maps.hpp"

namespace wsi {
namespace {

bool is_grey(const uint8_t* p, int v) { return p[0] == v && p[1] == v && p[2] == v; }

// Whether the rectangle [x0, x1) x [y0, y1) holds any black pixel (text).
bool has_ink(const RgbImage& img, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x)
      if (is_grey(img.at(x, y), 0)) return true;
  return false;
}

TEST(FeatureMapGrid, LaysOutOneNormalisedCellPerChannel) {
  FeatureLayer l;
  l.name = "conv";
  l.kind = "test";
  l.channels = 3, l.height = 2, l.width = 3;  // non-square maps: cells keep the aspect
  l.values = {0,  1, 2,  3, 4,  5,            // a ramp: 0, 51, ..., 255
              7,  7, 7,  7, 7,  7,            // flat: black
              -1, 1, -1, 1, -1, 3};           // min -1, max 3: 0, 127.5 -> 128, 255
  const int want[3][6] = {{0, 51, 102, 153, 204, 255}, {0, 0, 0, 0, 0, 0}, {0, 128, 0, 128, 0, 255}};
  std::vector<uint8_t> patch(4 * 4 * 3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      uint8_t* p = &patch[static_cast<size_t>((y * 4 + x) * 3)];
      p[0] = static_cast<uint8_t>(10 * x), p[1] = static_cast<uint8_t>(10 * y), p[2] = 200;
    }
  FeatureGridOptions o;
  o.min_cell = 6;  // maps of side 3 -> scale 2 -> cells of 6 x 4
  const RgbImage img = render_feature_grid(patch.data(), 4, l, 0, {"caption line"}, o);
  const FeatureGridLayout g = feature_grid_layout(l, 3, 4, o);  // 3 title lines + the caption
  ASSERT_EQ(g.scale, 2);
  ASSERT_EQ(g.cell_width, 6);
  ASSERT_EQ(g.cell_height, 4);
  ASSERT_EQ(g.columns, 2);  // 4 cells: 2 x 2
  ASSERT_EQ(g.rows, 2);
  EXPECT_EQ(img.height, g.height);
  EXPECT_GE(img.width, g.width);  // widened to the longest text line
  EXPECT_EQ(g.title_height, 4 + 4 * 14);

  // Cell 0: the patch, nearest-resampled 4 -> 6 across (columns 0 1 1 2 3 3), 4 -> 4 down.
  const int sx[6] = {0, 1, 1, 2, 3, 3};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) {
      const uint8_t* q = img.at(g.cell_x(0) + x, g.cell_y(0) + y);
      EXPECT_EQ(q[0], 10 * sx[x]) << x << "," << y;
      EXPECT_EQ(q[1], 10 * y) << x << "," << y;
      EXPECT_EQ(q[2], 200);
    }
  // Cells 1..3: channel c, each map pixel a 2 x 2 block of its grey.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 6; ++x)
        EXPECT_TRUE(is_grey(img.at(g.cell_x(c + 1) + x, g.cell_y(c + 1) + y), want[c][(y / 2) * 3 + x / 2]))
            << "channel " << c << " at " << x << "," << y;
  // Cell positions: left to right, then down, 4 px apart.
  EXPECT_EQ(g.cell_x(1) - g.cell_x(0), 6 + 4);
  EXPECT_EQ(g.cell_x(2), g.cell_x(0));
  EXPECT_EQ(g.cell_y(2) - g.cell_y(0), 4 + 14 + 4);
  // White between cells; text in the title band and under every cell.
  EXPECT_TRUE(is_grey(img.at(g.cell_x(1) - 1, g.cell_y(1)), 255));
  EXPECT_TRUE(is_grey(img.at(g.cell_x(0), g.cell_y(0) - 1), 255));
  EXPECT_TRUE(has_ink(img, 0, 0, img.width, g.title_height));
  for (int cell = 0; cell < 4; ++cell) {
    const int64_t x = g.cell_x(cell), y = g.cell_y(cell) + g.cell_height;
    EXPECT_TRUE(has_ink(img, x, y, x + g.cell_width + 4, y + FeatureGridLayout::kCaption))
        << "caption of cell " << cell;
  }
}

TEST(FeatureMapGrid, SecondPatchUsesItsOwnMaps) {
  FeatureLayer l;
  l.name = "f", l.kind = "k";
  l.channels = 1, l.height = 1, l.width = 2;
  l.values = {0, 1, 1, 0};  // patch 0: dark-light, patch 1: light-dark
  const std::vector<uint8_t> patch(3, 100);
  FeatureGridOptions o;
  o.min_cell = 2;
  const RgbImage img = render_feature_grid(patch.data(), 1, l, 1, {}, o);
  const FeatureGridLayout g = feature_grid_layout(l, 1, 3, o);
  EXPECT_TRUE(is_grey(img.at(g.cell_x(1), g.cell_y(1)), 255));
  EXPECT_TRUE(is_grey(img.at(g.cell_x(1) + 1, g.cell_y(1)), 0));
  EXPECT_THROW(render_feature_grid(patch.data(), 1, l, 2, {}, o), std::invalid_argument);
}

TEST(FeatureMapGrid, CapsChannelsToTheMostActiveInChannelOrder) {
  FeatureLayer l;
  l.channels = 5, l.height = 1, l.width = 2;
  l.values = {0, 0, /*c1*/ 5, 5, /*c2*/ 1, 1, /*c3*/ 9, -1, /*c4*/ 3, 7};  // means 0, 5, 1, 4, 5
  FeatureGridOptions o;
  o.max_channels = 2;
  EXPECT_EQ(feature_grid_channels(l, 0, o), (std::vector<int64_t>{1, 4}));  // the tie 5 = 5 both fit
  o.max_channels = 3;
  EXPECT_EQ(feature_grid_channels(l, 0, o), (std::vector<int64_t>{1, 3, 4}));
  o.max_channels = 64;
  EXPECT_EQ(feature_grid_channels(l, 0, o), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  l.values[2] = 3;  // c1's mean 4: ties with c3, the lower index wins
  o.max_channels = 2;
  EXPECT_EQ(feature_grid_channels(l, 0, o), (std::vector<int64_t>{1, 4}));
  // The title says how many were shown of how many; the grid has a cell per shown channel.
  const std::vector<uint8_t> patch(3, 0);
  o.min_cell = 2;
  const RgbImage img = render_feature_grid(patch.data(), 1, l, 0, {}, o);
  EXPECT_EQ(img.height, feature_grid_layout(l, 2, 3, o).height);
}

TEST(FeatureMapChoice, SpreadsOverBothClassesFromTheMostConfident) {
  //                                  0     1     2     3     4     5     6     7
  const std::vector<float> p = {0.9f, 0.2f, 0.7f, 0.1f, 0.95f, 0.4f, 0.6f, 0.05f};
  const std::vector<int> y = {1, 0, 1, 0, 1, 0, 0, 1};
  // Tumour by falling p: 4 0 2 7; normal by rising p: 3 1 5 6.
  EXPECT_EQ(choose_feature_map_patches(p, y, 0), (std::vector<int64_t>{}));
  EXPECT_EQ(choose_feature_map_patches(p, y, 1), (std::vector<int64_t>{4}));
  EXPECT_EQ(choose_feature_map_patches(p, y, 2), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(choose_feature_map_patches(p, y, 4), (std::vector<int64_t>{4, 7, 3, 6}));  // ends of each class
  EXPECT_EQ(choose_feature_map_patches(p, y, 5), (std::vector<int64_t>{4, 2, 7, 3, 6}));
  EXPECT_EQ(choose_feature_map_patches(p, y, 100), (std::vector<int64_t>{4, 0, 2, 7, 3, 1, 5, 6}));  // clamped
  // One tumour patch: the normal class (by rising p: 7 3 1 5 6 2 0) takes the rest of the share.
  const std::vector<int> one = {0, 0, 0, 0, 1, 0, 0, 0};
  EXPECT_EQ(choose_feature_map_patches(p, one, 4), (std::vector<int64_t>{4, 7, 5, 0}));
  // No labels: one group by falling probability (4 0 2 6 5 1 3 7); ties to the lower index.
  EXPECT_EQ(choose_feature_map_patches(p, {}, 3), (std::vector<int64_t>{4, 5, 7}));
  EXPECT_EQ(choose_feature_map_patches({0.5f, 0.5f, 0.5f}, {}, 1), (std::vector<int64_t>{0}));
  // Only normal labels: the most confident normal is the lowest probability.
  EXPECT_EQ(choose_feature_map_patches({0.3f, 0.1f, 0.2f}, {0, 0, 0}, 1), (std::vector<int64_t>{1}));
  EXPECT_THROW(choose_feature_map_patches(p, {1, 0}, 2), std::invalid_argument);
}

TEST(FeatureMapFileStem, ReplacesCharactersOutsideASafeSet) {
  EXPECT_EQ(feature_map_file_stem("patches_train_x.h5#12"), "patches_train_x.h5_12");
  EXPECT_EQ(feature_map_file_stem("f7a1b2c3d4-e5_0.9"), "f7a1b2c3d4-e5_0.9");
  EXPECT_EQ(feature_map_file_stem("a/b c\\d:é"), "a_b_c_d___");  // é is two bytes
  EXPECT_EQ(feature_map_file_stem(""), "patch");
}

}  // namespace
}  // namespace wsi
