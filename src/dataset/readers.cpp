// Readers of labelled patch sets: PCam HDF5 pairs and Kaggle TIFF folders.
#include <hdf5.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "dataset/meta_csv.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/image_io.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

// ---- PCam ----

class H5Handle {
 public:
  explicit H5Handle(hid_t id = -1, herr_t (*close)(hid_t) = nullptr) : id_(id), close_(close) {}
  ~H5Handle() {
    if (id_ >= 0 && close_) close_(id_);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t get() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::vector<hsize_t> dims_of(hid_t dataset) {
  H5Handle space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> d(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
  return d;
}

class PcamSet final : public PatchSet {
 public:
  PcamSet(const fs::path& x_path, bool require_labels) : x_path_(x_path) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    std::string name = x_path.filename().string();
    const auto at = name.rfind("_x.h5");
    if (at == std::string::npos || at + 5 != name.size())
      throw ConfigError(x_path.string() + ": a PCam patch file is named *_x.h5 (its labels are in *_y.h5)");
    const fs::path y_path = x_path.parent_path() / (name.substr(0, at) + "_y.h5");
    file_ = std::make_unique<H5Handle>(H5Fopen(x_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (file_->get() < 0) throw ConfigError(x_path.string() + ": not an HDF5 file HDF5 can open");
    x_ = std::make_unique<H5Handle>(H5Dopen2(file_->get(), "x", H5P_DEFAULT), H5Dclose);
    if (x_->get() < 0) throw ConfigError(x_path.string() + ": has no dataset \"x\" (PCam layout: x = N x P x P x 3 uint8)");
    const auto d = dims_of(x_->get());
    if (d.size() != 4 || d[1] != d[2] || d[3] != 3)
      throw ConfigError(x_path.string() + ": dataset \"x\" must be N x P x P x 3, not rank " + std::to_string(d.size()));
    n_ = static_cast<int64_t>(d[0]);
    p_ = static_cast<int>(d[1]);
    // Labels.
    if (!require_labels && !fs::exists(y_path)) {
      labels_.assign(static_cast<size_t>(n_), -1);
      return;
    }
    H5Handle yf(H5Fopen(y_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (yf.get() < 0) throw ConfigError(x_path.string() + ": its labels file " + y_path.string() + " cannot be opened");
    H5Handle y(H5Dopen2(yf.get(), "y", H5P_DEFAULT), H5Dclose);
    if (y.get() < 0) throw ConfigError(y_path.string() + ": has no dataset \"y\"");
    const auto yd = dims_of(y.get());
    hsize_t total = 1;
    for (hsize_t v : yd) total *= v;
    if (yd.empty() || yd[0] != d[0] || total != d[0])
      throw ConfigError(y_path.string() + ": dataset \"y\" must hold one label per patch of " + x_path.string() + " (" +
                        std::to_string(n_) + ")");
    std::vector<uint8_t> raw(static_cast<size_t>(n_));
    if (n_ > 0 && H5Dread(y.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
      throw ConfigError(y_path.string() + ": cannot read dataset \"y\"");
    labels_.assign(raw.begin(), raw.end());
    for (int& l : labels_) l = l ? 1 : 0;
  }

  int patch_size() const override { return p_; }
  int64_t size() const override { return n_; }
  const std::vector<int>& labels() const override { return labels_; }
  std::string id(int64_t i) const override { return x_path_.filename().string() + "#" + std::to_string(i); }
  std::string describe() const override {
    return "PCam " + x_path_.string() + " (" + std::to_string(n_) + " patches of " + std::to_string(p_) + "x" +
           std::to_string(p_) + ")";
  }

  void read(int64_t first, int64_t count, uint8_t* rgb) const override {
    if (count <= 0) return;
    H5Handle space(H5Dget_space(x_->get()), H5Sclose);
    const hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
    const hsize_t extent[4] = {static_cast<hsize_t>(count), static_cast<hsize_t>(p_), static_cast<hsize_t>(p_), 3};
    H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr);
    H5Handle mem(H5Screate_simple(4, extent, nullptr), H5Sclose);
    if (H5Dread(x_->get(), H5T_NATIVE_UINT8, mem.get(), space.get(), H5P_DEFAULT, rgb) < 0)
      throw ConfigError(x_path_.string() + ": cannot read patches " + std::to_string(first) + ".." +
                        std::to_string(first + count - 1) + " (damaged file?)");
  }

 private:
  fs::path x_path_;
  std::unique_ptr<H5Handle> file_, x_;
  int64_t n_ = 0;
  int p_ = 0;
  std::vector<int> labels_;
};

// ---- Kaggle ----

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) out.push_back(std::move(cur)), cur.clear();
    else if (c != '\r') cur += c;
  }
  out.push_back(cur);
  return out;
}

class KaggleSet final : public PatchSet {
 public:
  explicit KaggleSet(const fs::path& csv) : csv_(csv) {
    std::ifstream in(csv);
    if (!in) throw ConfigError(csv.string() + ": cannot open the labels CSV");
    std::string line;
    std::getline(in, line);
    const auto header = split_line(line);
    int id_col = -1, label_col = -1;
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == "id") id_col = static_cast<int>(i);
      if (header[i] == "label") label_col = static_cast<int>(i);
    }
    if (id_col < 0 || label_col < 0)
      throw ConfigError(csv.string() + ": the header must have columns \"id\" and \"label\" (Kaggle's train_labels.csv)");
    std::string stem = csv.stem().string();
    const auto at = stem.rfind("_labels");
    const std::string split = at == std::string::npos ? stem : stem.substr(0, at);
    dir_ = fs::is_directory(csv.parent_path() / split) ? csv.parent_path() / split : csv.parent_path();
    for (int row = 2; std::getline(in, line); ++row) {
      if (line.empty() || line == "\r") continue;
      const auto f = split_line(line);
      if (static_cast<int>(f.size()) <= std::max(id_col, label_col))
        throw ConfigError(csv.string() + ": line " + std::to_string(row) + " has too few columns");
      const std::string& l = f[static_cast<size_t>(label_col)];
      if (l != "0" && l != "1")
        throw ConfigError(csv.string() + ": line " + std::to_string(row) + ": label must be 0 or 1, not '" + l + "'");
      ids_.push_back(f[static_cast<size_t>(id_col)]);
      labels_.push_back(l == "1");
    }
    if (ids_.empty()) throw ConfigError(csv.string() + ": no patches listed");
    p_ = static_cast<int>(read_one(0, nullptr));
  }

  int patch_size() const override { return p_; }
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  const std::vector<int>& labels() const override { return labels_; }
  std::string id(int64_t i) const override { return ids_[static_cast<size_t>(i)]; }
  std::string describe() const override {
    return "Kaggle " + csv_.string() + " (" + std::to_string(ids_.size()) + " patches in " + dir_.string() + ")";
  }
  void read(int64_t first, int64_t count, uint8_t* rgb) const override {
    const size_t bytes = static_cast<size_t>(p_) * static_cast<size_t>(p_) * 3;
    for (int64_t i = 0; i < count; ++i) read_one(first + i, rgb + static_cast<size_t>(i) * bytes);
  }

 private:
  // Reads patch i into `rgb` (when given) and returns its side. Decoded by read_image(), which
  // `predict` shares, so a patch gives the same pixels as a file there as listed here.
  uint32_t read_one(int64_t i, uint8_t* rgb) const {
    const fs::path path = dir_ / (ids_[static_cast<size_t>(i)] + ".tif");
    if (!fs::exists(path))
      throw ConfigError(path.string() + ": cannot open the patch listed in " + csv_.string() + " (no such file)");
    const RgbImage img = read_image(path);
    if (img.width != img.height || (p_ && img.width != p_))
      throw ConfigError(path.string() + ": patches must be square and all the same size (" +
                        std::to_string(img.width) + "x" + std::to_string(img.height) + ")");
    if (rgb) std::copy(img.pixels.begin(), img.pixels.end(), rgb);
    return static_cast<uint32_t>(img.width);
  }

  fs::path csv_, dir_;
  std::vector<std::string> ids_;
  std::vector<int> labels_;
  int p_ = 0;
};

}  // namespace

std::unique_ptr<PatchSet> open_patch_set(const fs::path& path, bool require_labels) {
  if (!fs::exists(path)) throw UsageError(path.string() + ": no such file or directory");
  if (fs::is_directory(path)) {
    if (fs::exists(path / "train_labels.csv")) return std::make_unique<KaggleSet>(path / "train_labels.csv");
    throw UsageError(path.string() + ": a directory must hold train_labels.csv (Kaggle layout); for PCam give the *_x.h5 file");
  }
  if (path.extension() == ".h5" || path.extension() == ".hdf5") return std::make_unique<PcamSet>(path, require_labels);
  if (path.extension() == ".csv") return std::make_unique<KaggleSet>(path);
  throw UsageError(path.string() + ": give a PCam *_x.h5 file, a Kaggle labels CSV, or a directory with train_labels.csv");
}

std::vector<PatchMeta> read_patch_meta(const fs::path& csv) {
  std::ifstream in(csv, std::ios::binary);
  if (!in) throw ConfigError(csv.string() + ": cannot open the meta CSV");
  std::string line;
  if (!std::getline(in, line)) throw ConfigError(csv.string() + ": empty file, not a meta CSV");
  const std::vector<std::string> header = detail::parse_csv_row(line);
  const auto column = [&](const char* name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw ConfigError(csv.string() + ": no column '" + name + "' (not a meta CSV written by extract)");
  };
  const size_t cy = column("coord_y"), cx = column("coord_x"), ct = column("tumor_patch"),
               cc = column("center_tumor_patch"), cw = column("wsi"), cl = column("label"),
               cf = column("tumour_fraction"), ck = column("copy"), ca = column("augment"), cv = column("level"),
               cs = column("patch_size_level0");
  std::vector<PatchMeta> rows;
  for (int64_t number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> f = detail::parse_csv_row(line);
    const auto where = [&] { return csv.string() + ":" + std::to_string(number) + ": "; };
    if (f.size() != header.size())
      throw ConfigError(where() + std::to_string(f.size()) + " columns where the header has " +
                        std::to_string(header.size()));
    PatchMeta m;
    try {
      m.y = std::stoll(f[cy]);
      m.x = std::stoll(f[cx]);
      m.size_level0 = std::stoll(f[cs]);
      m.level = std::stoi(f[cv]);
      m.tumour_fraction = std::stod(f[cf]);
      m.copy = std::stoi(f[ck]);
      const int label = std::stoi(f[cl]);
      if (label != 0 && label != 1) throw std::invalid_argument("label");
      m.label = static_cast<uint8_t>(label);
    } catch (const std::logic_error&) {
      throw ConfigError(where() + "a number column (coord_y, coord_x, label, ...) does not hold a number");
    }
    m.tumor_patch = f[ct] == "True";
    m.center_tumor_patch = f[cc] == "True";
    m.wsi = f[cw];
    m.augment = f[ca];
    rows.push_back(std::move(m));
  }
  return rows;
}

}  // namespace wsi
