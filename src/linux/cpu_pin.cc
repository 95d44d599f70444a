#include "linux/cpu_pin.h"

#include <pthread.h>
#include <unistd.h>

namespace isoboot::sys {

std::vector<int> AllowedCpus() {
  std::vector<int> out;
  cpu_set_t set;
  if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  if (out.empty()) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (int c = 0; c < (n > 0 ? n : 1); ++c)
      out.push_back(c);
  }
  return out;
}

PinPolicy::Change PinPolicy::Observe(size_t frames) {
  if (frames == 0) return Change::kNone;
  depth_ += (static_cast<double>(frames) - depth_) / 16;
  if (pinned_ && depth_ > unpin_above_) {
    pinned_ = false;
    return Change::kUnpin;
  }
  if (!pinned_ && depth_ < kPinBelow) {
    pinned_ = true;
    return Change::kPin;
  }
  return Change::kNone;
}

AdaptivePin::AdaptivePin(int cpu, size_t batch_capacity) : cpu_(cpu), policy_(batch_capacity) {
  if (cpu_ < 0) return;
  if (pthread_getaffinity_np(pthread_self(), sizeof allowed_, &allowed_) != 0 ||
      cpu_ >= CPU_SETSIZE || !CPU_ISSET(cpu_, &allowed_)) {
    // Cannot restore what we cannot read, and never escape the CPUs the
    // operator confined the process to: leave the thread alone.
    cpu_ = -1;
    return;
  }
  Apply(true);
}

void AdaptivePin::Observe(size_t frames) {
  if (cpu_ < 0) return;
  switch (policy_.Observe(frames)) {
    case PinPolicy::Change::kPin:
      return Apply(true);
    case PinPolicy::Change::kUnpin:
      return Apply(false);
    case PinPolicy::Change::kNone:
      return;
  }
}

void AdaptivePin::Apply(bool pin) {
  cpu_set_t set = allowed_;
  if (pin) {
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
  }
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
}

}  // namespace isoboot::sys
