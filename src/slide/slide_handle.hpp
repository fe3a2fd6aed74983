// A shared slide handle that is reopened after a failed read: OpenSlide's error state is sticky,
// so after one bad region every later read on that handle fails too. Readers take get(), and the
// first to see a failure swaps in a fresh handle (others keep theirs until they fail).
// Thread-safety: get() and reopen_after_failure() may be called from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "wsi/slide.hpp"

namespace wsi::detail {

class SlideHandle {
 public:
  SlideHandle(std::filesystem::path path, SlideOptions options)
      : path_(std::move(path)), options_(options), current_(std::make_shared<const Slide>(path_, options_)) {}
  std::shared_ptr<const Slide> get() {
    std::lock_guard lock(mutex_);
    return current_;
  }
  void reopen_after_failure(const std::shared_ptr<const Slide>& failed) {
    std::lock_guard lock(mutex_);
    if (current_ == failed) current_ = std::make_shared<const Slide>(path_, options_);
  }

 private:
  std::filesystem::path path_;
  SlideOptions options_;
  std::mutex mutex_;
  std::shared_ptr<const Slide> current_;
};

}  // namespace wsi::detail
