// One slide in a child process, with a time limit; the lock on an output directory.
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "wsi/batch.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// The last line of the log that carries an error ("error:" anywhere), else its last non-empty line.
std::string last_error_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last, last_error;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Progress bars redraw with '\r': keep what follows the last one.
    const auto cr = line.rfind('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    last = line;
    if (line.find("error:") != std::string::npos) last_error = line;
  }
  return last_error.empty() ? last : last_error;
}

}  // namespace

BatchLock::BatchLock(const fs::path& lock_file, Mode mode) {
  fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw WriteError(lock_file, std::string("cannot create the lock file: ") + std::strerror(errno));
  if (::flock(fd_, (mode == Mode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw Error(lock_file.parent_path().string() + ": another batch run is using this output directory (" +
                  lock_file.filename().string() + " is locked); wait for it, or use another -o");
    throw WriteError(lock_file, std::string("cannot lock: ") + std::strerror(err));
  }
  // For people looking at the directory: who holds it (the lock itself is the flock; shared
  // holders leave the file as it is).
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (mode == Mode::exclusive && ::ftruncate(fd_, 0) == 0) (void)!::write(fd_, pid.data(), pid.size());
}

BatchLock::~BatchLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

ChildResult run_child(const std::vector<std::string>& argv, const fs::path& log, double timeout_s,
                      const volatile std::sig_atomic_t* cancel) {
  if (argv.empty()) throw Error("run_child: no command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0) throw WriteError(log, std::string("cannot create the log: ") + std::strerror(errno));
  const pid_t parent = ::getpid();
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out);
    throw Error(std::string("cannot start a process for ") + argv[0] + ": " + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: die with the batch (a SIGKILLed batch must not leave slides running behind it);
    // if the parent is already gone, stop here.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execv(args[0], args.data());
    const std::string msg = std::string("wsi-heatmap batch: error: cannot run ") + args[0] + ": " + std::strerror(errno) + "\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(out);
  // Woken the moment the child ends (a pidfd becomes readable), not at the next polling tick:
  // short slides would otherwise pay up to a tick each. Older kernels: plain polling.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  ChildResult r;
  bool term_sent = false;
  Clock::time_point term_at{};
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) throw Error(std::string("waiting for ") + argv[0] + ": " + std::strerror(errno));
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const bool stop = (timeout_s > 0 && elapsed > timeout_s) || (cancel && *cancel);
    if (stop && !term_sent) {
      r.timed_out = !(cancel && *cancel);
      ::kill(pid, SIGTERM);
      term_sent = true;
      term_at = Clock::now();
    } else if (term_sent && Clock::now() - term_at > std::chrono::seconds(10)) {
      ::kill(pid, SIGKILL);
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      (void)::poll(&p, 1, 50);  // the child ended, 50 ms passed (timeout checks), or a signal
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(elapsed < 1 ? 5 : 50));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.last_error = last_error_line(log);
  return r;
}

}  // namespace wsi
