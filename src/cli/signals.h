#pragma once
// The one place that handles signals (STYLE.md: servers never block, wait
// for or ignore signals). main ignores SIGPIPE once for the process:
// sendfile(2) has no MSG_NOSIGNAL, so a client that resets mid-transfer must
// give EPIPE, not kill the daemon. A command that runs until told to stop
// makes a StopOnSignal before it starts any thread: SIGINT and SIGTERM are
// then blocked in every thread it starts and taken by StopOnSignal's own
// thread alone, which asks the command to stop through a std::stop_token.
//
// Threading: construct and destroy StopOnSignal on the command's main
// thread, before starting (and after joining) the threads it protects.

#include <signal.h>

#include <atomic>
#include <stop_token>
#include <thread>

namespace isoboot::cli {

// Called once by main, before any thread exists.
void IgnoreSigpipe();

class StopOnSignal {
 public:
  enum class Hangup {
    kDefault,  // SIGHUP ends the process, as for any command in a terminal
    kReload,   // SIGHUP asks for a reload (TakeReload), as daemons do
  };
  // Blocks SIGINT and SIGTERM (and SIGHUP with kReload) in the calling
  // thread (so in every thread it starts from now on) and starts the thread
  // that waits for them.
  explicit StopOnSignal(Hangup hangup = Hangup::kDefault);
  // Stops waiting, joins, and restores the caller's signal mask.
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  // Stop is requested on the first SIGINT or SIGTERM (or by RequestStop()).
  std::stop_token token() const { return source_.get_token(); }
  void RequestStop() { source_.request_stop(); }
  // The signal that asked for the stop, or 0 (none yet, or RequestStop()).
  int signal() const { return signal_.load(); }
  // With Hangup::kReload: true once for any number of SIGHUPs since the
  // last call.
  bool TakeReload() { return reload_.exchange(false); }

  // For a child process (fork, before exec): the mask it should have, i.e.
  // the one the caller had before StopOnSignal blocked its signals. A child
  // inherits blocked signals across exec, so ipmitool or ssh would
  // otherwise ignore Ctrl-C.
  const sigset_t& original_mask() const { return original_; }

 private:
  std::stop_source source_;
  std::atomic<int> signal_{0};
  std::atomic<bool> reload_{false};
  sigset_t original_;
  std::jthread waiter_;
};

}  // namespace isoboot::cli
