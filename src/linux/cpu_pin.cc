#include "linux/cpu_pin.h"

#include <pthread.h>

namespace isoboot::sys {

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
  if (pthread_getaffinity_np(pthread_self(), sizeof allowed_, &allowed_) != 0) {
    cpu_ = -1;  // cannot restore what we cannot read: leave the thread alone
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
