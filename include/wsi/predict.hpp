// wsi/predict.hpp — a model on patch images, patch folders and patch sets (`wsi-heatmap predict`).
//
// Inputs, in the order given (a folder's images sorted by file name, not recursive):
//   * an image file: TIFF, PNG or JPEG (read_image(), image_io.hpp); its id is the file name
//     without its extension (a Kaggle patch `<id>.tif` keeps its Kaggle id);
//   * a folder: its *.tif, *.tiff, *.png, *.jpg, *.jpeg (any case; hidden files ignored), e.g.
//     Kaggle's test/; a folder holding train_labels.csv is the Kaggle layout with labels instead;
//   * a patch set, through open_patch_set() (dataset.hpp): a PCam *_x.h5 (with its *_y.h5 or
//     without), a Kaggle labels CSV, a folder with train_labels.csv. Its ids are the set's, its
//     labels the truth. Patches of a set are taken as they are (--mpp and --resize do not apply).
//
// How an image becomes patches (P = the model's patch_size, all sizes in the image's pixels):
//   * exactly P x P: one patch, as it is (also with `resize`, and with `mpp` equal to the model's);
//   * `mpp` given (the images' µm per pixel): the image is resampled by mpp / model mpp with an
//     area filter (resize_image, area) unless that factor is within 1e-3 of 1, then cut into P x P
//     tiles from its top-left corner; a right or bottom remainder narrower than P is not
//     predicted. A tile's id is `NAME@X_Y`, (X, Y) its top-left corner in the ORIGINAL image's
//     pixels (rounded); an image that resamples to exactly P x P is one patch named NAME;
//   * `resize` given: each image larger than P x P is resized whole to P x P (aspect ratio not
//     kept) with that filter;
//   * neither: a larger image is skipped with a UsageError naming both options.
//   Smaller images (also after resampling) are skipped with a ConfigError naming both sizes.
//
// Outputs in the output directory, each written under a temporary name and renamed when complete
// (none when the run fails):
//   predictions.csv  id,probability,label,truth,purple_fraction,source,x,y,width,height — one row
//                    per predicted patch in input order; label = probability >= threshold (0/1);
//                    truth = the set's label (empty for images); x, y, width, height = the
//                    patch's area in the source image's pixels (0, 0, P, P for set patches);
//                    probabilities printed as evaluate prints them (6 significant digits).
//   skipped.csv      id,source,reason,purple_fraction — every input or patch not predicted.
//   summary.json     counts, options, model, AUC (when the truth has both classes), seconds.
// Optional: a Kaggle submission (`id,label`, see PredictOptions) and Grad-CAM files.
//
// Thread-safety: run_predict uses the Model as Model::predict allows (one caller at a time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wsi/model.hpp"
#include "wsi/region.hpp"

namespace wsi {

// ---- The purple rule: pixels stained by haematoxylin and eosin ----
//
// With M = max(R, G, B), m = min(R, G, B) (8-bit), V = M / 255, S = (M - m) / M and H the HSV
// hue in degrees (0 = red, 120 = green, 240 = blue), a pixel is purple when
//   kPurpleHueMin <= H <= kPurpleHueMax   blue-violet haematoxylin through purple and magenta
//                                         to eosin pink; pen red and blood (> 345), blue and
//                                         cyan marker ink (< 220) are not;
//   S >= kPurpleMinSaturation             grey, white glass and background are not;
//   kPurpleMinValue <= V <= kPurpleMaxValue   black ink, dark folds and bright background are not.
// Chosen on real tiles (tests/test_predict.cpp, PurpleRule.*): histolab's three tissue tiles have
// purple fractions 0.53, 0.61 and 0.64; its four no-tissue tiles 0.00, 0.00, 0.00 and 0.18 (the
// red-pen one: its dark ink is mostly above 345 degrees or darker than V 0.3); 39 of the 44
// real Kaggle patches are at 0.25 or more, the rest mostly white (fat, glass).
inline constexpr double kPurpleHueMin = 220.0;
inline constexpr double kPurpleHueMax = 345.0;
inline constexpr double kPurpleMinSaturation = 0.08;
inline constexpr double kPurpleMinValue = 0.30;
inline constexpr double kPurpleMaxValue = 0.96;

bool is_purple(uint8_t r, uint8_t g, uint8_t b);
// The fraction (0..1) of `pixels` RGB pixels (interleaved) that are purple; 0 for no pixels.
double purple_fraction(const uint8_t* rgb, int64_t pixels);

// ---- Images to patches ----

struct ImagePatching {
  std::optional<double> mpp;         // the images' µm per pixel: tile at the model's mpp
  std::optional<ResizeMode> resize;  // nearest | bilinear | area: resize each image whole
};

struct ImageTile {
  std::string id;
  int64_t x = 0, y = 0, width = 0, height = 0;  // its area in the original image's pixels
  int64_t px = 0, py = 0;                       // its top-left in PatchedImage::pixels
};

struct PatchedImage {
  RgbImage pixels;               // the image at the model's resolution (or resized to P x P)
  std::vector<ImageTile> tiles;  // P x P squares of `pixels`, row by row
};

// Resizes an RGB image to width x height with preprocess()'s filters along each axis
// (model.hpp: nearest, bilinear, area), rounded to the nearest 8-bit value. Same size: a copy.
RgbImage resize_image(const RgbImage& image, int64_t width, int64_t height, ResizeMode mode);

// Splits a decoded image into patches as above. `source` names the file in messages (which start
// with it), `name` is the id's stem. Throws UsageError (larger, neither option) or ConfigError.
PatchedImage patch_image(RgbImage image, const std::string& source, const std::string& name, int patch_size,
                         double model_mpp, const ImagePatching& patching);

// ---- The run ----

struct PredictOptions {
  std::vector<std::filesystem::path> inputs;
  ImagePatching patching;
  int batch = 64;           // patches per forward pass
  double threshold = 0.5;   // label = probability >= threshold
  double min_purple = 0.0;  // patches with a smaller purple fraction are skipped; 0 = keep all
  // Kaggle's submission format (histopathologic-cancer-detection): header `id,label`, one row per
  // patch, id without extension. The competition scores ROC AUC on `label`, which may hold
  // probabilities, so probabilities are written (6 significant digits) unless submission_labels
  // asks for 0/1 at `threshold`. Patches skipped by min_purple are written as 0, so the file
  // keeps a row for every id; inputs that could not be read are left out (see skipped.csv).
  std::filesystem::path kaggle_submission;  // empty: none
  bool submission_labels = false;
  // Grad-CAM (gradcam.hpp) of every predicted patch: ID.npy, float32 (P, P) in 0..1 (write_npy),
  // and ID.png, the patch beside its CAM blended in red (patch_beside_cam). Characters of an id
  // other than letters, digits and ._@#+- become '_' in file names. The folder must exist.
  std::filesystem::path gradcam_dir;  // empty: none
  // Called after each input patch or image: done, total (patches of sets + image files).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct PredictSummary {
  int64_t inputs = 0;            // image files and patch sets
  int64_t predicted = 0;         // patches predicted
  int64_t positives = 0;         // of which at or above the threshold
  int64_t skipped_inputs = 0;    // images or sets not predicted at all (unreadable, wrong size, ...)
  int64_t below_min_purple = 0;  // patches skipped by min_purple
  std::optional<double> auc;     // over the patches with truth, when both classes are among them
  std::vector<std::filesystem::path> outputs;
  double seconds = 0;
};

// Predicts every input's patches with `model` and writes the outputs into `out_dir` (which must
// exist). A run goes past an input that fails (listed in skipped.csv with the reason) unless
// nothing could be predicted and nothing was skipped by min_purple: then it throws that input's
// error (one input) or an Error naming the count and the first reason, and writes nothing.
// Throws UsageError for a missing input or a folder without images (before predicting), and
// ModelError / WriteError as the model and the writers do.
PredictSummary run_predict(const Model& model, const PredictOptions& options, const std::filesystem::path& out_dir);

}  // namespace wsi
