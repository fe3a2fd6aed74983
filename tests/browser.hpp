// A headless Chromium driven over the DevTools protocol, for the viewer's browser tests
// (tests/view_browser.cpp). No npm package: Chromium speaks CDP over a pipe (--remote-debugging-pipe:
// JSON messages separated by NUL bytes, commands on fd 3, replies and events on fd 4), and
// nlohmann parses it. Screenshots come back as PNG bytes (decode them with libvips).
//
// Thread-safety: one thread per Browser.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace wsi::test {

// Chromium's executable: $WSI_CHROMIUM, else Debian's /usr/bin/chromium; empty when neither exists.
inline std::string chromium_path() {
  if (const char* env = std::getenv("WSI_CHROMIUM"); env && *env) return env;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

inline std::string base64_decode(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (const unsigned char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+') d = 62;
    else if (c == '/') d = 63;
    else continue;
    val = (val << 6) + d;
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

class Browser {
 public:
  // Starts Chromium headless with a fresh profile in `profile_dir` and opens one page of
  // width x height CSS pixels (device scale 1). Throws std::runtime_error when it cannot.
  Browser(const std::string& chromium, const std::filesystem::path& profile_dir, int width, int height) {
    int to_chrome[2], from_chrome[2];
    if (::pipe(to_chrome) != 0 || ::pipe(from_chrome) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> args = {chromium, "--headless=new", "--disable-gpu", "--remote-debugging-pipe",
                                     "--user-data-dir=" + profile_dir.string(), "--no-first-run",
                                     "--no-default-browser-check", "--disable-background-networking",
                                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                                     "--hide-scrollbars", "--mute-audio", "--force-device-scale-factor=1",
                                     "--window-size=" + std::to_string(width) + "," + std::to_string(height)};
    if (::geteuid() == 0) args.push_back("--no-sandbox");  // Chromium refuses to run as root otherwise
    args.push_back("about:blank");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);  // its helpers (renderer, GPU, zygote) go with it
      // Move the pipe ends above 4 first, so that dup2 onto 3 and 4 never clobbers one of them.
      const int in = ::fcntl(to_chrome[0], F_DUPFD, 10), out = ::fcntl(from_chrome[1], F_DUPFD, 10);
      ::dup2(in, 3);
      ::dup2(out, 4);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      for (int fd = 5; fd < 1024; ++fd) ::close(fd);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(to_chrome[0]);
    ::close(from_chrome[1]);
    write_fd_ = to_chrome[1];
    read_fd_ = from_chrome[0];
    const nlohmann::json target = call("Target.createTarget", {{"url", "about:blank"}}, false);
    session_ = call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}, false)["sessionId"];
    for (const char* domain : {"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"}) call(domain);
    call("Emulation.setDeviceMetricsOverride",
         {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}});
  }
  ~Browser() {
    if (write_fd_ >= 0) {
      try {
        send("Browser.close", nlohmann::json::object(), false);
      } catch (...) {
      }
      ::close(write_fd_);
    }
    if (read_fd_ >= 0) ::close(read_fd_);
    for (int i = 0; i < 50 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, WNOHANG);
  }
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // A command on the page's session (or the browser's); its result. Throws on a protocol error.
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object(),
                      bool on_page = true) {
    const int id = send(method, params, on_page);
    while (true) {
      nlohmann::json m = next_message();
      if (m.contains("id") && m["id"] == id) {
        if (m.contains("error")) throw std::runtime_error(method + ": " + m["error"].dump());
        return m["result"];
      }
      events_.push_back(std::move(m));
    }
  }

  // Evaluates a JavaScript expression (promises awaited); its value.
  nlohmann::json eval(const std::string& expression) {
    const nlohmann::json r =
        call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (r.contains("exceptionDetails")) throw std::runtime_error("JavaScript threw: " + r["exceptionDetails"].dump());
    return r["result"].contains("value") ? r["result"]["value"] : nlohmann::json();
  }

  // Polls `expression` until it is true; false after `seconds`.
  bool wait_for(const std::string& expression, double seconds = 20) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (eval(expression) == true) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void navigate(const std::string& url) { call("Page.navigate", {{"url", url}}); }

  // Two animation frames: whatever a control changed has been drawn.
  void settle() { eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 50))))"); }

  // The page as PNG bytes.
  std::string screenshot() { return base64_decode(call("Page.captureScreenshot", {{"format", "png"}})["data"]); }

  // Everything the page said or did so far (console, exceptions, log entries, requests).
  const std::vector<nlohmann::json>& events() const { return events_; }

  // Console errors, uncaught exceptions and error log entries (failed loads), one line each.
  std::vector<std::string> errors() const {
    std::vector<std::string> out;
    for (const auto& e : events_) {
      const std::string m = e.value("method", "");
      if (m == "Runtime.exceptionThrown") out.push_back("exception: " + e["params"]["exceptionDetails"].dump());
      if (m == "Runtime.consoleAPICalled" && (e["params"]["type"] == "error" || e["params"]["type"] == "assert"))
        out.push_back("console: " + e["params"]["args"].dump());
      if (m == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
        out.push_back("log: " + e["params"]["entry"].dump());
    }
    return out;
  }

  // The URLs the page requested.
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    for (const auto& e : events_)
      if (e.value("method", "") == "Network.requestWillBeSent") out.push_back(e["params"]["request"]["url"]);
    return out;
  }

 private:
  int send(const std::string& method, const nlohmann::json& params, bool on_page) {
    nlohmann::json m = {{"id", ++last_id_}, {"method", method}, {"params", params}};
    if (on_page) m["sessionId"] = session_;
    const std::string text = m.dump() + '\0';
    for (size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(write_fd_, text.data() + done, text.size() - done);
      if (n <= 0) throw std::runtime_error("Chromium closed its DevTools pipe");
      done += static_cast<size_t>(n);
    }
    return last_id_;
  }

  nlohmann::json next_message() {
    while (true) {
      const size_t nul = buffer_.find('\0');
      if (nul != std::string::npos) {
        nlohmann::json m = nlohmann::json::parse(buffer_.substr(0, nul));
        buffer_.erase(0, nul + 1);
        return m;
      }
      pollfd p{read_fd_, POLLIN, 0};
      if (::poll(&p, 1, 60000) <= 0) throw std::runtime_error("Chromium did not answer within 60 s");
      char chunk[65536];
      const ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("Chromium closed its DevTools pipe (did it crash?)");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int write_fd_ = -1, read_fd_ = -1, last_id_ = 0;
  std::string session_, buffer_;
  std::vector<nlohmann::json> events_;
};

}  // namespace wsi::test
