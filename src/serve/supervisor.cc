#include "serve/supervisor.h"

#include <exception>
#include <utility>

namespace isoboot::serve {

Supervisor::~Supervisor() {
  StopAll();
}

void Supervisor::Start(std::string name, std::function<void()> run, std::function<void()> stop) {
  Entry& e = entries_.emplace_back(Entry{name, std::move(stop), {}});
  e.thread = std::thread([this, name = std::move(name), run = std::move(run)] {
    try {
      run();
      Ended(name, "stopped by itself");
    } catch (const std::exception& ex) {
      Ended(name, ex.what());
    } catch (...) {
      Ended(name, "unknown exception");
    }
  });
}

void Supervisor::Ended(const std::string& name, std::string what) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || failure_) return;  // asked to end, or not the first
    failure_ = name + ": " + what;
  }
  ended_.notify_all();
}

bool Supervisor::WaitFor(std::stop_token stop, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  bool ended = ended_.wait_for(lock, stop, timeout, [this] { return failure_.has_value(); });
  return !ended && !stop.stop_requested();
}

std::optional<std::string> Supervisor::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void Supervisor::StopAll() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->thread.joinable()) it->stop();
  }
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->thread.joinable()) it->thread.join();
  }
}

}  // namespace isoboot::serve
