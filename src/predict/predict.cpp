// `predict`: inputs -> patches -> batches through the model -> predictions, skips, submission,
// Grad-CAM files.
#include "wsi/predict.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/image_io.hpp"
#include "wsi/metrics.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

struct Input {
  fs::path path;
  bool set = false;  // a patch set (open_patch_set), else an image file
};

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".tif" || ext == ".tiff" || ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<Input> expand_inputs(const std::vector<fs::path>& paths) {
  if (paths.empty()) throw UsageError("no input given (usage: wsi-heatmap predict INPUT... -o DIR --model M.pt)");
  std::vector<Input> inputs;
  for (const fs::path& p : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) throw UsageError(p.string() + ": no such file or directory; check the path");
    if (!fs::is_directory(st)) {
      const std::string ext = p.extension().string();
      inputs.push_back({p, ext == ".h5" || ext == ".hdf5" || ext == ".csv"});
      continue;
    }
    if (fs::exists(p / "train_labels.csv")) {
      inputs.push_back({p, true});
      continue;
    }
    std::vector<fs::path> images;
    for (const auto& e : fs::directory_iterator(p, ec))
      // Hidden files (macOS' ._NAME.tif beside NAME.tif, temporaries) are not images of the set.
      if (!e.is_directory(ec) && is_image_name(e.path()) && e.path().filename().string()[0] != '.')
        images.push_back(e.path());
    if (ec) throw UsageError(p.string() + ": cannot list the directory: " + ec.message());
    if (images.empty())
      throw UsageError(p.string() +
                       ": no images (.tif, .tiff, .png, .jpg, .jpeg) and no train_labels.csv in this "
                       "directory");
    std::sort(images.begin(), images.end());
    for (auto& i : images) inputs.push_back({std::move(i), false});
  }
  return inputs;
}

// One patch of the input, predicted or skipped by min_purple.
struct Row {
  std::string id, source;
  int64_t x = 0, y = 0, width = 0, height = 0;
  int truth = -1;  // -1: unknown
  double purple = 0;
  float probability = 0;
};

struct Skip {
  std::string id, source, reason;
  std::optional<double> purple;
  std::exception_ptr error;  // inputs that failed: rethrown when nothing could be predicted
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The reason without the leading "SOURCE: " (the CSV has a column for the source).
std::string reason_of(const std::string& message, const std::string& source) {
  const std::string prefix = source + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

std::string file_name_for(const std::string& id) {
  std::string s = id;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == '#' || c == '+' ||
          c == '-'))
      c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

class Runner {
 public:
  Runner(const Model& model, const PredictOptions& o) : model_(model), o_(o), P_(model.spec().patch_size) {
    patch_bytes_ = static_cast<size_t>(P_) * static_cast<size_t>(P_) * 3;
    batch_px_.resize(static_cast<size_t>(o.batch) * patch_bytes_);
  }

  // Adds one patch (already in the next batch slot) unless min_purple skips it.
  void add(Row row) {
    uint8_t* px = slot();
    row.purple = purple_fraction(px, static_cast<int64_t>(P_) * P_);
    if (o_.min_purple > 0 && row.purple < o_.min_purple) {
      std::ostringstream r;
      r << "purple fraction " << std::setprecision(4) << row.purple << " is below --min-purple " << o_.min_purple;
      skips_.push_back({row.id, row.source, r.str(), row.purple, nullptr});
      submission_.push_back({row.id, -1});
      ++below_;
      return;
    }
    batch_rows_.push_back(rows_.size());
    submission_.push_back({row.id, static_cast<int64_t>(rows_.size())});
    rows_.push_back(std::move(row));
    if (batch_rows_.size() == static_cast<size_t>(o_.batch)) flush();
  }
  uint8_t* slot() { return batch_px_.data() + batch_rows_.size() * patch_bytes_; }

  void skip_input(const std::string& id, const std::string& source, std::exception_ptr error) {
    std::string message;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    }
    skips_.push_back({id, source, reason_of(message, source), std::nullopt, error});
    ++skipped_inputs_;
  }

  void flush() {
    const auto n = static_cast<int64_t>(batch_rows_.size());
    if (n == 0) return;
    const std::vector<float> p = model_.predict(batch_px_.data(), n);
    for (int64_t i = 0; i < n; ++i) rows_[batch_rows_[static_cast<size_t>(i)]].probability = p[static_cast<size_t>(i)];
    if (!o_.gradcam_dir.empty()) {
      const GradcamBatch g = gradcam(model_, batch_px_.data(), n);
      const size_t plane = static_cast<size_t>(P_) * static_cast<size_t>(P_);
      for (int64_t i = 0; i < n; ++i) {
        std::string name = file_name_for(rows_[batch_rows_[static_cast<size_t>(i)]].id);
        for (int k = 2; !cam_names_.insert(name).second; ++k)
          name = file_name_for(rows_[batch_rows_[static_cast<size_t>(i)]].id) + "~" + std::to_string(k);
        const float* cam = g.cams.data() + static_cast<size_t>(i) * plane;
        write_npy(cam, P_, P_, o_.gradcam_dir / (name + ".npy"));
        write_png(patch_beside_cam(batch_px_.data() + static_cast<size_t>(i) * patch_bytes_, cam, P_),
                  o_.gradcam_dir / (name + ".png"));
      }
    }
    batch_rows_.clear();
  }

  void run_set(const Input& in) {
    std::unique_ptr<PatchSet> set;
    try {
      set = open_patch_set(in.path, false);
      if (set->patch_size() != P_)
        throw ConfigError(set->describe() + " has " + std::to_string(set->patch_size()) + " px patches but " +
                          model_.path().string() + " expects patch_size " + std::to_string(P_));
    } catch (const Error&) {
      skip_input(in.path.stem().string(), in.path.string(), std::current_exception());
      tick(1);
      return;
    }
    const int64_t n = set->size();
    total_ += n - 1;  // counted as one unit until opened
    const auto& labels = set->labels();
    // Runs of a batch at once (PCam decompresses a chunk at a time); a run that fails to read is
    // read again patch by patch, so one missing Kaggle TIFF skips only itself.
    std::vector<uint8_t> run;
    for (int64_t first = 0; first < n; first += o_.batch) {
      const int64_t count = std::min<int64_t>(o_.batch, n - first);
      run.resize(static_cast<size_t>(count) * patch_bytes_);
      bool read = true;
      try {
        set->read(first, count, run.data());
      } catch (const Error&) {
        read = false;
      }
      for (int64_t i = first; i < first + count; ++i) {
        Row row;
        row.id = set->id(i);
        row.source = in.path.string();
        row.width = row.height = P_;
        row.truth = labels[static_cast<size_t>(i)];
        if (read) {
          std::copy_n(run.data() + static_cast<size_t>(i - first) * patch_bytes_, patch_bytes_, slot());
        } else {
          try {
            set->read(i, 1, slot());
          } catch (const Error&) {
            skip_input(row.id, row.source, std::current_exception());
            tick(1);
            continue;
          }
        }
        add(std::move(row));
        tick(1);
      }
    }
  }

  // Consecutive image files: decoded and cut into patches on the model's CPU threads
  // (Model::on_each_thread), a group at a time, then added in input order. A group ends at 64
  // files or once it holds kMaxImagePixels decoded pixels, which bounds the memory it takes.
  void run_images(const Input* first, size_t count) {
    struct Decoded {
      std::optional<PatchedImage> image;
      std::exception_ptr error;
    };
    for (size_t done = 0; done < count;) {
      const size_t n = std::min<size_t>(64, count - done);
      std::vector<Decoded> out(n);
      std::atomic<size_t> next{0};
      std::atomic<int64_t> pixels{0};
      model_.on_each_thread([&](int, int) {
        while (pixels.load() < kMaxImagePixels) {
          const size_t k = next.fetch_add(1);
          if (k >= n) break;
          const Input& in = first[done + k];
          try {
            out[k].image = patch_image(read_image(in.path), in.path.string(), in.path.stem().string(), P_,
                                       model_.spec().mpp, o_.patching);
            pixels += out[k].image->pixels.width * out[k].image->pixels.height;
          } catch (const Error&) {
            out[k].error = std::current_exception();
          }
        }
      });
      const size_t decoded = std::min(next.load(), n);  // every index handed out below n was decoded
      for (size_t k = 0; k < decoded; ++k) {
        const Input& in = first[done + k];
        if (out[k].error)
          skip_input(in.path.stem().string(), in.path.string(), out[k].error);
        else
          add_tiles(*out[k].image, in.path.string());
        out[k].image.reset();
        tick(1);
      }
      done += decoded;
    }
  }

  void add_tiles(const PatchedImage& img, const std::string& source) {
    for (const ImageTile& t : img.tiles) {
      for (int64_t y = 0; y < P_; ++y)
        std::copy_n(img.pixels.at(t.px, t.py + y), static_cast<size_t>(P_) * 3,
                    slot() + static_cast<size_t>(y) * P_ * 3);
      Row row;
      row.id = t.id;
      row.source = source;
      row.x = t.x, row.y = t.y, row.width = t.width, row.height = t.height;
      add(std::move(row));
    }
  }

  void tick(int64_t k) {
    done_ += k;
    if (o_.progress) o_.progress(done_, total_);
  }

  int64_t total_ = 0, done_ = 0;
  const Model& model_;
  const PredictOptions& o_;
  const int P_;
  size_t patch_bytes_ = 0;
  std::vector<uint8_t> batch_px_;
  std::vector<size_t> batch_rows_;
  std::vector<Row> rows_;
  std::vector<Skip> skips_;
  std::vector<std::pair<std::string, int64_t>> submission_;  // id, row (-1: skipped by min_purple)
  std::unordered_set<std::string> cam_names_;
  int64_t below_ = 0, skipped_inputs_ = 0;
};

std::string probability_text(float p) {
  std::ostringstream s;
  s << std::setprecision(6) << p;  // as evaluate's predictions.csv
  return s.str();
}

}  // namespace

namespace {

// No prediction at all: the one error as it is, or how many inputs failed and the first reason.
[[noreturn]] void throw_nothing_predicted(const std::vector<Skip>& skips) {
  if (skips.empty()) throw ConfigError("the inputs hold no patches");
  if (skips.size() == 1) std::rethrow_exception(skips.front().error);
  bool all_usage = true;
  for (const Skip& k : skips) {
    try {
      std::rethrow_exception(k.error);
    } catch (const UsageError&) {
    } catch (...) {
      all_usage = false;
    }
  }
  const std::string message = "none of the " + std::to_string(skips.size()) + " inputs could be predicted; the first: " +
                              skips.front().source + ": " + skips.front().reason;
  if (all_usage) throw UsageError(message);
  throw ConfigError(message);
}

// predictions.csv; counts the positives into `s` and collects the labelled rows' scores.
std::string predictions_csv(const std::vector<Row>& rows, double threshold, PredictSummary& s,
                            std::vector<double>& scores, std::vector<int>& truth) {
  std::ostringstream pred;
  pred << "id,probability,label,truth,purple_fraction,source,x,y,width,height\n";
  for (const Row& row : rows) {
    const bool positive = row.probability >= threshold;
    s.positives += positive;
    if (row.truth >= 0) scores.push_back(row.probability), truth.push_back(row.truth);
    std::ostringstream purple;
    purple << std::setprecision(4) << row.purple;
    pred << csv_field(row.id) << "," << probability_text(row.probability) << "," << (positive ? 1 : 0) << ","
         << (row.truth >= 0 ? std::to_string(row.truth) : std::string()) << "," << purple.str() << ","
         << csv_field(row.source) << "," << row.x << "," << row.y << "," << row.width << "," << row.height << "\n";
  }
  return pred.str();
}

std::string skipped_csv(const std::vector<Skip>& skips) {
  std::ostringstream skipped;
  skipped << "id,source,reason,purple_fraction\n";
  for (const Skip& k : skips) {
    std::ostringstream purple;
    if (k.purple) purple << std::setprecision(4) << *k.purple;
    skipped << csv_field(k.id) << "," << csv_field(k.source) << "," << csv_field(k.reason) << "," << purple.str()
            << "\n";
  }
  return skipped.str();
}

// The Kaggle submission: every id of the inputs, in order (ids without a patch: 0).
std::string submission_csv(const std::vector<std::pair<std::string, int64_t>>& ids, const std::vector<Row>& rows,
                           const PredictOptions& o) {
  std::ostringstream sub;
  sub << "id,label\n";
  for (const auto& [id, index] : ids) {
    sub << csv_field(id) << ",";
    if (index < 0) {
      sub << "0\n";
    } else {
      const float p = rows[static_cast<size_t>(index)].probability;
      sub << (o.submission_labels ? (p >= o.threshold ? "1" : "0") : probability_text(p)) << "\n";
    }
  }
  return sub.str();
}

}  // namespace

PredictSummary run_predict(const Model& model, const PredictOptions& o, const fs::path& out_dir) {
  const auto start = std::chrono::steady_clock::now();
  if (o.batch < 1) throw UsageError("--batch must be >= 1");
  if (!(o.threshold >= 0 && o.threshold <= 1)) throw UsageError("--threshold must be in 0..1");
  if (!(o.min_purple >= 0 && o.min_purple <= 1)) throw UsageError("--min-purple must be in 0..1");
  if (o.patching.mpp && o.patching.resize) throw UsageError("--mpp and --resize exclude each other; give one");
  if (!o.gradcam_dir.empty() && !model.has_gradcam())
    throw UsageError("--gradcam: " + model.path().string() +
                     " has no Grad-CAM split: " + model.gradcam_unavailable_reason());
  const std::vector<Input> inputs = expand_inputs(o.inputs);

  Runner r(model, o);
  r.total_ = static_cast<int64_t>(inputs.size());
  for (size_t i = 0; i < inputs.size();) {
    if (inputs[i].set) {
      r.run_set(inputs[i++]);
      continue;
    }
    size_t end = i;
    while (end < inputs.size() && !inputs[end].set) ++end;
    r.run_images(inputs.data() + i, end - i);
    i = end;
  }
  r.flush();

  if (r.rows_.empty() && r.below_ == 0) throw_nothing_predicted(r.skips_);

  PredictSummary s;
  s.inputs = static_cast<int64_t>(inputs.size());
  s.predicted = static_cast<int64_t>(r.rows_.size());
  s.below_min_purple = r.below_;
  s.skipped_inputs = r.skipped_inputs_;
  std::vector<double> scores;
  std::vector<int> truth;
  const std::string pred = predictions_csv(r.rows_, o.threshold, s, scores, truth);
  const bool both = std::count(truth.begin(), truth.end(), 1) > 0 && std::count(truth.begin(), truth.end(), 0) > 0;
  if (both) s.auc = roc_auc(scores, truth);

  nlohmann::json j;
  j["model"] = {{"path", model.path().string()},
                {"name", model.spec().name},
                {"patch_size", model.spec().patch_size},
                {"mpp", model.spec().mpp}};
  j["inputs"] = s.inputs;
  j["predicted"] = s.predicted;
  j["positives"] = s.positives;
  j["threshold"] = o.threshold;
  j["skipped_inputs"] = s.skipped_inputs;
  j["below_min_purple"] = s.below_min_purple;
  j["min_purple"] = o.min_purple;
  j["mpp"] = o.patching.mpp ? nlohmann::json(*o.patching.mpp) : nlohmann::json(nullptr);
  j["resize"] = o.patching.resize ? nlohmann::json(resize_mode_name(*o.patching.resize)) : nlohmann::json(nullptr);
  j["with_truth"] = static_cast<int64_t>(truth.size());
  j["auc"] = s.auc ? nlohmann::json(*s.auc) : nlohmann::json(nullptr);

  detail::write_text_file(out_dir / "predictions.csv", pred);
  detail::write_text_file(out_dir / "skipped.csv", skipped_csv(r.skips_));
  s.outputs = {out_dir / "predictions.csv", out_dir / "skipped.csv", out_dir / "summary.json"};
  if (!o.kaggle_submission.empty()) {
    detail::write_text_file(o.kaggle_submission, submission_csv(r.submission_, r.rows_, o));
    s.outputs.push_back(o.kaggle_submission);
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  j["seconds"] = s.seconds;
  j["outputs"] = nlohmann::json::array();
  for (const auto& p : s.outputs) j["outputs"].push_back(p.string());
  if (!o.gradcam_dir.empty()) j["gradcam"] = o.gradcam_dir.string();
  detail::write_text_file(out_dir / "summary.json", detail::json_text(j, 2) + "\n");
  return s;
}

}  // namespace wsi
