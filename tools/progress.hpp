// A one-line progress bar with rate and ETA on stderr, drawn only when stderr is a terminal (so
// logs of batch jobs stay clean). Redraws at most 10 times a second; thread-compatible (call
// update() from one thread at a time).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace wsi::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled = ::isatty(STDERR_FILENO) != 0)
      : label_(std::move(label)), enabled_(enabled), start_(Clock::now()) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `extra` is appended to the line (e.g. "loss 0.312  val AUC 0.981").
  void update(int64_t done, int64_t total, const std::string& extra = "") {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    constexpr int kWidth = 28;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    char eta[32] = "--:--";
    if (rate > 0 && total >= done) {
      const auto left = static_cast<long>(static_cast<double>(total - done) / rate);
      std::snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
    }
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %lld/%lld  %.0f/s  ETA %s %s\033[K", label_.c_str(), bar.c_str(), frac * 100,
                 static_cast<long long>(done), static_cast<long long>(total), rate, eta, extra.c_str());
    std::fflush(stderr);
  }
  void set_label(std::string label) {
    if (label != label_) finish(), start_ = Clock::now();
    label_ = std::move(label);
  }
  void finish() {
    if (enabled_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  Clock::time_point start_, last_{};
  bool drawn_ = false;
};

}  // namespace wsi::cli
