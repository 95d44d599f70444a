#pragma once
// Runs servers on threads of their own and notices the first one that ends:
// a server's Run() returns only after its Stop(), so returning earlier, or
// throwing, is a failure that stops the daemon (never std::terminate).
//
// Threading: Start(), WaitFor(), StopAll() and the destructor are for the
// owner's thread; the servers' threads only report how they ended.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace isoboot::serve {

class Supervisor {
 public:
  Supervisor() = default;
  ~Supervisor();  // StopAll()
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts `run` on a new thread. `stop` must make `run` return soon; it is
  // called from the owner's thread.
  void Start(std::string name, std::function<void()> run, std::function<void()> stop);

  // Waits up to `timeout`. Returns false when `stop` was requested or a
  // server has ended (see failure()), true when the time passed.
  bool WaitFor(std::stop_token stop, std::chrono::milliseconds timeout);

  // The first server that ended before StopAll(): "NAME: WHAT" (its
  // exception's what()) or "NAME: stopped by itself".
  std::optional<std::string> failure() const;

  // Calls every server's stop, the last started first, and joins them.
  // Idempotent.
  void StopAll();

 private:
  struct Entry {
    std::string name;
    std::function<void()> stop;
    std::thread thread;
  };
  void Ended(const std::string& name, std::string what);

  std::vector<Entry> entries_;  // owner's thread only
  mutable std::mutex mu_;
  std::condition_variable_any ended_;
  std::optional<std::string> failure_;  // guarded by mu_
  bool stopping_ = false;               // guarded by mu_
};

}  // namespace isoboot::serve
