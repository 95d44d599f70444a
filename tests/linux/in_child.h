#pragma once
// Runs a test body in a forked child, for tests that change credentials or
// install a seccomp filter: the test binary itself stays root and unfiltered.
// The child reports each failed check, then "done", through a pipe; a body
// that never finishes (an execve that worked, a kill) shows as not done.
// Call from a single-threaded test.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::sys::testing {

// A test's checks inside the child; failures go to the parent.
class ChildChecks {
 public:
  explicit ChildChecks(int fd) : fd_(fd) {}

  void Expect(bool ok, std::string_view what) {
    if (ok) passes_.emplace_back(what);
    if (!ok) Fail(what);
  }
  // `rc` must be -1 with errno `want` (errno is read first).
  void ExpectErrno(long rc, int want, std::string_view what) {
    int err = errno;
    if (rc == -1 && err == want) {
      passes_.emplace_back(what);
      return;
    }
    Fail(std::string(what) + ": want -1/" + strerrorname(want) + ", got " + std::to_string(rc) +
         (rc == -1 ? std::string("/") + strerrorname(err) : std::string()));
  }
  void Fail(std::string_view what) {
    failed_ = true;
    Write("FAIL " + std::string(what) + "\n");
  }
  void Write(const std::string& s) {
    for (size_t done = 0; done < s.size();) {
      ssize_t n = ::write(fd_, s.data() + done, s.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  bool failed() const { return failed_; }
  // The checks that passed, by name (to show that a probe can fail).
  const std::vector<std::string>& passes() const { return passes_; }

 private:
  static std::string strerrorname(int err) {
    const char* name = strerrorname_np(err);
    return name ? name : std::to_string(err);
  }
  int fd_;
  bool failed_ = false;
  std::vector<std::string> passes_;
};

struct ChildResult {
  bool done = false;   // the body returned
  int exit_code = -1;  // -1: killed
  int signal = 0;      // the signal that ended it
  std::string report;  // the FAIL lines
  bool timed_out = false;
};

// exit_normally: end the child with exit() (atexit handlers and sanitizers'
// checks run) rather than _exit().
inline ChildResult RunInChild(const std::function<void(ChildChecks&)>& body,
                              bool exit_normally = false,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  ChildResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.report = "pipe failed";
    return result;
  }
  pid_t pid = fork();
  if (pid < 0) {
    result.report = "fork failed";
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    ChildChecks checks(fds[1]);
    body(checks);
    checks.Write("done\n");
    int code = checks.failed() ? 1 : 0;
    if (exit_normally) std::exit(code);
    _exit(code);
  }
  close(fds[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {  // bounded by the deadline
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);  // our own child, by its pid
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (!p.revents) continue;
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is gone (or exec'd with O_CLOEXEC)
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) == pid) {
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  }
  size_t done = out.rfind("done\n");
  result.done = done != std::string::npos;
  result.report = out.substr(0, result.done ? done : out.size());
  return result;
}

// The child ran to its end with every check passed.
inline ::testing::AssertionResult Passed(const ChildResult& r) {
  if (r.done && r.exit_code == 0 && r.report.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "child "
         << (r.timed_out ? "timed out"
             : r.done    ? "finished"
                         : "did not finish")
         << ", exit " << r.exit_code << ", signal " << r.signal << "\n"
         << r.report;
}

}  // namespace isoboot::sys::testing

// Tests that change credentials need root; CI runs linux_test as root.
#define ISOBOOT_REQUIRE_ROOT()                                                          \
  if (geteuid() != 0)                                                                   \
  GTEST_SKIP() << "needs root to change credentials (CI runs linux_test as root); run " \
                  "`sudo build/release/tests/linux_test`"
