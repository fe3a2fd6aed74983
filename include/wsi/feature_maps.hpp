// wsi/feature_maps.hpp — what a network's layers see: the activations of its first convolution
// layer and of the layer Grad-CAM uses, and grids of them for people to look at (what the seed
// notebooks show with Keras: one small image per channel, the patch itself first).
//
// The two layers:
//   first_conv  TorchScript models: the first submodule, in definition order
//               (torch::jit::Module::named_modules(), pre-order), whose class is `Conv2d`
//               (torchvision's Conv2dNormActivation wrapper is not one), run on the preprocessed
//               input (preprocess() in model.hpp). Its raw output: before any batch norm and
//               activation that follow it (PyTorch's Conv2d has none of its own; which one follows
//               is not known from outside). ASSUMPTION: the network applies that convolution to
//               its input directly — true for torchvision's ResNet (conv1), MobileNetV2 and
//               EfficientNet (features.0.0), DenseNet (features.conv0) and tools/export_model.py's
//               wrappers of them; a network that transforms the input before its first Conv2d gets
//               maps of a convolution applied to the wrong tensor (a Conv2d that cannot take the
//               3-channel input is a ModelError).
//               Built-in networks (model.hpp "architecture"): the first block, as Keras shows
//               its first layer: cancernet "s0c0", the depthwise-separable convolution + ReLU
//               before its batch norm (Keras' SeparableConv2D(activation="relu") output);
//               resnet "stem", the 3x3 stride-2 convolution + batch norm + ReLU (the tensor the
//               residual stages start from).
//   features    the sidecar's features method (gradcam.hpp's A): absent when the model has no
//               Grad-CAM split.
//
// Frames and units: patches as for Model::predict (side² RGB uint8 HWC each, `side` 0 or
// patch_size, or input_size). Activations are float32 in the network's own units, N x C x h x w
// row-major (h, w: the layer's map size for the network's input_size, e.g. 48 x 48 for a stride-2
// first layer at input 96).
//
// Thread-safety: feature_maps() like Model::predict (one caller at a time per Model); the rest
// are pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wsi/region.hpp"

namespace wsi {

class Model;

// One layer's activations for `count` patches.
struct FeatureLayer {
  std::string name;  // the module path ("conv1", "body.0.0", "s0c0", "stem") or the method ("features")
  std::string kind;  // what the values are, for labels: "Conv2d output, before activation", ...
  int64_t channels = 0, height = 0, width = 0;
  std::vector<float> values;  // count x channels x height x width
  int64_t count() const {
    return channels * height * width > 0 ? static_cast<int64_t>(values.size()) / (channels * height * width) : 0;
  }
  const float* maps(int64_t patch) const { return values.data() + patch * channels * height * width; }
};

struct FeatureMaps {
  std::optional<FeatureLayer> first_conv;
  std::string first_conv_unavailable;  // one sentence when first_conv is absent
  std::optional<FeatureLayer> features;
  std::string features_unavailable;  // one sentence when features is absent (no Grad-CAM split)
};

// The activations of both layers (those the model has) for `count` patches, computed in the
// model's precision on its device, returned as float32 on the host. count 0 (patches unused) runs
// one mid-grey patch and returns the layers with names and sizes but no values: a check before a
// long run. Throws ModelError when the model has neither layer or a layer fails on the input,
// std::invalid_argument for a side that fits neither patch_size nor input_size.
FeatureMaps feature_maps(const Model& model, const uint8_t* patches, int64_t count, int side = 0);

// ---- Grids (pure; no LibTorch) ----

struct FeatureGridOptions {
  int max_channels = 64;  // channels shown at most (>= 1); see feature_grid_channels()
  int min_cell = 96;      // maps are enlarged by an integer factor to at least this side (px)
};

// The channels a grid shows for patch `patch` of `layer`: all, in order, when there are at most
// max_channels; otherwise the max_channels with the largest mean activation over the map (the
// most active for this patch; ties to the lower index), in channel order.
std::vector<int64_t> feature_grid_channels(const FeatureLayer& layer, int64_t patch,
                                           const FeatureGridOptions& options = {});

// Geometry of a grid image (pixels, origin top-left). Cell 0 holds the patch, cell k >= 1 the
// k-th shown channel; cells run left to right, then down, `columns` per row.
struct FeatureGridLayout {
  int scale = 1;                            // map pixel -> scale x scale image pixels (nearest)
  int64_t cell_width = 0, cell_height = 0;  // a map's size in the image: width * scale, height * scale
  int columns = 0, rows = 0;                // columns = ceil(sqrt(cells))
  int64_t title_height = 0;                 // the text band above the cells
  int64_t width = 0, height = 0;            // of the whole image
  static constexpr int kGap = 4;            // white space around and between cells
  static constexpr int kCaption = 14;       // the text band under each cell (its channel number)
  int64_t cell_x(int cell) const { return kGap + (cell % columns) * (cell_width + kGap); }
  int64_t cell_y(int cell) const { return title_height + (cell / columns) * (cell_height + kCaption + kGap); }
};

FeatureGridLayout feature_grid_layout(const FeatureLayer& layer, int64_t shown_channels, size_t title_lines,
                                      const FeatureGridOptions& options = {});

// The grid of patch `patch` of `layer`, on white: a title band (the layer's name and kind, its
// channel count and map size, which channels are shown, how they are scaled, then `caption`'s
// lines, e.g. the patch's id and probability), then the patch (`patch_rgb`, patch_side² RGB HWC,
// resampled nearest to the cell) captioned "INPUT", then each shown channel captioned with its
// number. Each channel is min–max scaled on its own to grey 0..255 (black = the map's minimum,
// white = its maximum, round to nearest); a flat map (max == min) is black. Text is drawn by
// libvips (Pango, the system's sans-serif font, 11 px).
// The image is at least as wide as its longest text line.
RgbImage render_feature_grid(const uint8_t* patch_rgb, int patch_side, const FeatureLayer& layer, int64_t patch,
                             const std::vector<std::string>& caption, const FeatureGridOptions& options = {});

// Which `n` patches of an evaluated set to show, as indices, deterministic. With labels of both
// classes (labels[i] 0/1, same length as probabilities): ceil(n/2) tumour and floor(n/2) normal
// patches (a class with too few gives the other its share); without (labels empty, or one class):
// one group. Within a group, ordered from the most confident correct prediction (highest
// probability for tumour, lowest for normal; ties to the lower index) to the least, the picks are
// spread evenly over that order: positions round(k (M - 1) / (m - 1)), k = 0..m-1, of M patches
// (m = 1: the most confident). So n = 2 gives the most confident tumour and normal patches, larger
// n runs on to the worst mistakes. Tumour picks first. n beyond the set is clamped to its size.
std::vector<int64_t> choose_feature_map_patches(const std::vector<float>& probabilities, const std::vector<int>& labels,
                                                int64_t n);

// A patch id as a file name stem: characters other than ASCII letters, digits, '.', '-' and '_'
// become '_' (PCam's "set_x.h5#12" -> "set_x.h5_12"); an empty id becomes "patch".
std::string feature_map_file_stem(const std::string& id);

}  // namespace wsi
