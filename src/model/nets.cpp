// Built-in networks (see nets.hpp) and their native save format.
#include "model/nets.hpp"

#include <cmath>

#include "core/pending_file.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace nn = torch::nn;
namespace fs = std::filesystem;

namespace {

// "s0c1"-style module names. (Built by appending: GCC 12's -Wrestrict misfires on
// "s" + std::to_string(...) chains.)
std::string name2(char a, int i, char b, int j) {
  std::string n(1, a);
  n += std::to_string(i);
  n += b;
  n += std::to_string(j);
  return n;
}

double conv_macs(int64_t cin, int64_t cout, int64_t k, int64_t groups, int64_t out_side) {
  return static_cast<double>(cin / groups * cout * k * k * out_side * out_side);
}

// Keras' SeparableConv2D (depthwise 3x3 + pointwise 1x1), then ReLU and batch norm as CancerNet.
class SepConv : public nn::Module {
 public:
  SepConv(int64_t in, int64_t out)
      : in_(in), out_(out),
        dw_(register_module("dw", nn::Conv2d(nn::Conv2dOptions(in, in, 3).padding(1).groups(in).bias(false)))),
        pw_(register_module("pw", nn::Conv2d(nn::Conv2dOptions(in, out, 1)))),
        bn_(register_module("bn", nn::BatchNorm2d(out))) {}
  torch::Tensor forward(const torch::Tensor& x) { return bn_(conv_relu(x)); }
  torch::Tensor conv_relu(const torch::Tensor& x) { return torch::relu(pw_(dw_(x))); }
  double macs(int64_t side) const { return conv_macs(in_, in_, 3, in_, side) + conv_macs(in_, out_, 1, 1, side); }

 private:
  int64_t in_, out_;
  nn::Conv2d dw_;
  nn::Conv2d pw_;
  nn::BatchNorm2d bn_;
};

class CancerNet : public NetImpl {
 public:
  CancerNet(int w, double dropout) : dropout_(dropout) {
    const int64_t widths[3] = {w, 2 * w, 4 * w};
    const int convs[3] = {1, 2, 3};
    int64_t in = 3;
    for (int s = 0; s < 3; ++s) {
      for (int c = 0; c < convs[s]; ++c) {
        convs_.push_back(register_module(name2('s', s, 'c', c),
                                         std::make_shared<SepConv>(in, widths[s])));
        stage_of_.push_back(s);
        in = widths[s];
      }
    }
    channels_ = in;
    fc1_ = register_module("fc1", nn::Linear(in, 256));
    bn1_ = register_module("bn1", nn::BatchNorm1d(256));
    fc2_ = register_module("fc2", nn::Linear(256, 1));
  }
  torch::Tensor features(const torch::Tensor& x) override {
    torch::Tensor h = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      h = convs_[i]->forward(h);
      if (i + 1 == convs_.size() || stage_of_[i + 1] != stage_of_[i])
        h = torch::dropout(torch::max_pool2d(h, 2), dropout_ / 2, is_training());
    }
    return h;
  }
  NetLayer first_layer(const torch::Tensor& x) override {
    return {"s0c0", "separable conv + ReLU, before batch norm", convs_.front()->conv_relu(x)};
  }
  torch::Tensor classify(const torch::Tensor& a) override {
    torch::Tensor h = a.mean({2, 3});
    h = torch::dropout(bn1_(torch::relu(fc1_(h))), dropout_, is_training());
    return fc2_(h);
  }
  double macs(int input) const override {
    double m = 0;
    int64_t side = input;
    for (size_t i = 0; i < convs_.size(); ++i) {
      m += convs_[i]->macs(side);
      if (i + 1 == convs_.size() || stage_of_[i + 1] != stage_of_[i]) side /= 2;
    }
    return m + static_cast<double>(channels_ * 256 + 256);
  }

 private:
  double dropout_;
  std::vector<std::shared_ptr<SepConv>> convs_;
  std::vector<int> stage_of_;
  int64_t channels_ = 0;
  nn::Linear fc1_{nullptr}, fc2_{nullptr};
  nn::BatchNorm1d bn1_{nullptr};
};

// He et al.'s basic block: two 3x3 convs with batch norm, identity or 1x1 projection shortcut.
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride)
      : in_(in), out_(out), stride_(stride),
        c1_(register_module("c1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)))),
        b1_(register_module("b1", nn::BatchNorm2d(out))),
        c2_(register_module("c2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)))),
        b2_(register_module("b2", nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      proj_ = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      projbn_ = register_module("projbn", nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = torch::relu(b1_(c1_(x)));
    h = b2_(c2_(h));
    return torch::relu(h + (proj_ ? projbn_(proj_(x)) : x));
  }
  // `side` is the input side; returns the MACs and updates it to the output side.
  double macs(int64_t& side) const {
    const int64_t o = (side + stride_ - 1) / stride_;
    double m = conv_macs(in_, out_, 3, 1, o) + conv_macs(out_, out_, 3, 1, o);
    if (proj_) m += conv_macs(in_, out_, 1, 1, o);
    side = o;
    return m;
  }

 private:
  int64_t in_, out_, stride_;
  nn::Conv2d c1_;
  nn::BatchNorm2d b1_;
  nn::Conv2d c2_;
  nn::BatchNorm2d b2_;
  nn::Conv2d proj_{nullptr};
  nn::BatchNorm2d projbn_{nullptr};
};

class ResNet : public NetImpl {
 public:
  ResNet(int w, int blocks, double dropout) : width_(w), dropout_(dropout) {
    stem_ = register_module("stem", nn::Conv2d(nn::Conv2dOptions(3, w, 3).stride(2).padding(1).bias(false)));
    stembn_ = register_module("stembn", nn::BatchNorm2d(w));
    int64_t in = w;
    for (int s = 0; s < 4; ++s) {
      const int64_t out = int64_t{w} << s;
      for (int b = 0; b < blocks; ++b) {
        blocks_.push_back(register_module(name2('l', s, 'b', b),
                                          std::make_shared<BasicBlock>(in, out, b == 0 && s > 0 ? 2 : 1)));
        in = out;
      }
    }
    channels_ = in;
    fc_ = register_module("fc", nn::Linear(in, 1));
  }
  torch::Tensor features(const torch::Tensor& x) override {
    torch::Tensor h = torch::relu(stembn_(stem_(x)));
    for (auto& b : blocks_) h = b->forward(h);
    return h;
  }
  NetLayer first_layer(const torch::Tensor& x) override {
    return {"stem", "conv + batch norm + ReLU", torch::relu(stembn_(stem_(x)))};
  }
  torch::Tensor classify(const torch::Tensor& a) override {
    torch::Tensor h = a.mean({2, 3});
    if (dropout_ > 0) h = torch::dropout(h, dropout_, is_training());
    return fc_(h);
  }
  double macs(int input) const override {
    int64_t side = (input + 1) / 2;
    double m = conv_macs(3, width_, 3, 1, side);
    for (const auto& b : blocks_) m += b->macs(side);
    return m + static_cast<double>(channels_);
  }

 private:
  int64_t width_;
  double dropout_;
  nn::Conv2d stem_{nullptr};
  nn::BatchNorm2d stembn_{nullptr};
  std::vector<std::shared_ptr<BasicBlock>> blocks_;
  int64_t channels_ = 0;
  nn::Linear fc_{nullptr};
};

}  // namespace

double default_dropout(const std::string& arch) { return arch == "cancernet" ? 0.5 : 0.0; }

std::shared_ptr<NetImpl> make_net(const ModelSpec::BuiltinNet& arch, double dropout) {
  if (dropout < 0) dropout = default_dropout(arch.name);
  std::shared_ptr<NetImpl> net;
  if (arch.name == "cancernet") net = std::make_shared<CancerNet>(arch.width, dropout);
  else if (arch.name == "resnet") net = std::make_shared<ResNet>(arch.width, arch.blocks, dropout);
  else throw ConfigError("unknown architecture '" + arch.name + "': use cancernet or resnet");
  // He initialisation for convolutions (the ReLU networks' standard); biases zero.
  torch::NoGradGuard no_grad;
  for (auto& m : net->modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      if (c->options.bias()) nn::init::zeros_(c->bias);
    }
  }
  return net;
}

void save_net(NetImpl& net, const fs::path& path) {
  PendingFile out(path);
  try {
    torch::serialize::OutputArchive archive;
    net.save(archive);
    archive.save_to(out.tmp().string());
  } catch (const c10::Error& e) {
    throw WriteError(path, std::string("cannot save the network: ") + e.what_without_backtrace());
  }
  out.commit();
}

void load_net(NetImpl& net, const fs::path& path, const torch::Device& device) {
  const auto mismatch = [&](const std::string& what) {
    return ModelError(path, "not a weight archive of the architecture its sidecar names (" + what +
                                "); was it saved by wsi-heatmap train with the same architecture, width and blocks?");
  };
  // Module::load replaces tensors whatever their shape, so check the shapes ourselves.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : net.named_parameters()) expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : net.named_buffers()) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string(), device);
    net.load(archive);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    what = what.substr(0, what.find('\n'));
    // "PytorchStreamReader failed reading zip archive: not a ZIP archive": LibTorch's class name
    // says nothing to the user; the reason does.
    if (const std::string reader = "PytorchStreamReader failed reading zip archive: "; what.rfind(reader, 0) == 0)
      what.erase(0, reader.size());
    throw mismatch(what);
  }
  const auto params = net.named_parameters();
  const auto buffers = net.named_buffers();
  for (const auto& [name, sizes] : expected) {
    const torch::Tensor* t = params.find(name);
    if (!t) t = buffers.find(name);
    if (!t || t->sizes().vec() != sizes) throw mismatch("tensor '" + name + "' has another shape");
  }
  net.to(device);
}

}  // namespace wsi::detail
