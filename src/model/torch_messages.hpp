// Private: LibTorch's errors and tensors as the one-line messages the torch-linked stages (model,
// feature maps, train) give users.
#pragma once

#include <torch/torch.h>

#include <string>

namespace wsi::detail {

// c10::Error messages carry a C++ backtrace after the first line, and TorchScript interpreter
// errors a TorchScript traceback before the Python-style "RuntimeError: ..." line; users need
// that one line (without LibTorch's "PytorchStreamReader failed reading zip archive: " before
// the reason, "not a ZIP archive").
inline std::string torch_first_line(const std::string& s) {
  const auto at = s.rfind("Error: ");
  const std::string tail = at == std::string::npos ? s : s.substr(s.rfind('\n', at) + 1);
  const auto nl = tail.find('\n');
  std::string line = nl == std::string::npos ? tail : tail.substr(0, nl);
  if (const std::string reader = "PytorchStreamReader failed reading zip archive: "; line.rfind(reader, 0) == 0)
    line.erase(0, reader.size());
  return line;
}

// "[2, 3, 96, 96]".
inline std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace wsi::detail
