// A shared slide handle that is reopened after a failed read: OpenSlide's error state is sticky,
// so after one bad region every later read on that handle fails too. As a PatchSource, a read
// that fails swaps in a fresh handle (unless another reader already did) and rethrows, so the
// next read starts clean; readers that hold the old handle keep it until they fail too.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "wsi/error.hpp"
#include "wsi/patch_source.hpp"
#include "wsi/slide.hpp"

namespace wsi::detail {

class SlideHandle final : public PatchSource {
 public:
  SlideHandle(std::filesystem::path path, SlideOptions options)
      : path_(std::move(path)), options_(options), current_(std::make_shared<const Slide>(path_, options_)) {}
  std::shared_ptr<const Slide> get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  void reopen_after_failure(const std::shared_ptr<const Slide>& failed) const {
    std::lock_guard lock(mutex_);
    if (current_ == failed) current_ = std::make_shared<const Slide>(path_, options_);
  }
  // Throws RegionReadError (after reopening) when the region cannot be decoded.
  void read_region(const Region& region, uint8_t* rgb_out) const override {
    const std::shared_ptr<const Slide> s = get();
    try {
      s->read_region(region, rgb_out);
    } catch (const RegionReadError&) {
      reopen_after_failure(s);
      throw;
    }
  }

 private:
  std::filesystem::path path_;
  SlideOptions options_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const Slide> current_;  // swapped by reopen_after_failure
};

}  // namespace wsi::detail
