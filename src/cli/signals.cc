#include "cli/signals.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <csignal>

namespace isoboot::cli {

void IgnoreSigpipe() {
  std::signal(SIGPIPE, SIG_IGN);
}

namespace {
sigset_t WaitedSignals(StopOnSignal::Hangup hangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (hangup == StopOnSignal::Hangup::kReload) sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

StopOnSignal::StopOnSignal(Hangup hangup) {
  const sigset_t set = WaitedSignals(hangup);
  pthread_sigmask(SIG_BLOCK, &set, &original_);
  waiter_ = std::jthread([this, set](std::stop_token done) {
    // Polls `done` (the destructor) between waits: a bounded loop that
    // needs no self-pipe. 100 ms is the latency of a normal shutdown only
    // when no signal came, which nobody waits for.
    while (!done.stop_requested()) {
      timespec timeout{0, 100'000'000};
      int sig = sigtimedwait(&set, nullptr, &timeout);
      if (sig == SIGHUP) {
        reload_.store(true);
        continue;
      }
      if (sig != SIGINT && sig != SIGTERM) continue;
      int none = 0;
      if (!signal_.compare_exchange_strong(none, sig)) {
        // A second signal while stopping: the user insists.
        _exit(128 + sig);
      }
      source_.request_stop();
    }
  });
}

StopOnSignal::~StopOnSignal() {
  waiter_.request_stop();
  waiter_.join();
  pthread_sigmask(SIG_SETMASK, &original_, nullptr);
}

}  // namespace isoboot::cli
