#pragma once
// Adaptive CPU pinning for a packet worker fed by PACKET_FANOUT_CPU. The
// fanout hands the worker every frame received on its CPU; pinned to that
// CPU it answers without a cross-CPU wakeup, the lowest latency for a client
// with few requests outstanding. But that CPU also runs the receive path
// (and, on a veth, the sending client; on a NIC whose RSS puts all non-IP
// frames on one queue, every client's frames). A worker whose receive
// batches stay deep is falling behind there: it lets the scheduler move it to
// an idle CPU, and pins itself again once its batches are shallow.
//
// PinPolicy is the decision alone (pure, unit-tested); AdaptivePin applies it
// to the calling thread. Pinning never leaves the CPUs the process was given
// (taskset, systemd's CPUAffinity=): a worker whose CPU is outside them is
// left alone.

#include <sched.h>

#include <cstddef>
#include <vector>

namespace isoboot::sys {

class PinPolicy {
 public:
  enum class Change {
    kNone,
    kPin,
    kUnpin
  };
  // `batch_capacity`: the most frames one receive returns.
  explicit PinPolicy(size_t batch_capacity)
      : unpin_above_(static_cast<double>(batch_capacity) / 4) {}
  // One receive returned `frames` frames (0: a timeout, ignored). Depth is
  // averaged over the last ~16 receives; a band between the two thresholds
  // keeps it from flapping.
  Change Observe(size_t frames);
  bool pinned() const { return pinned_; }

 private:
  static constexpr double kPinBelow = 4;
  const double unpin_above_;
  double depth_ = 0;
  bool pinned_ = true;
};

// The CPUs the calling thread may run on, in increasing order (all online
// CPUs if the affinity cannot be read).
std::vector<int> AllowedCpus();

class AdaptivePin {
 public:
  // Pins the calling thread to `cpu` (and does nothing at all if cpu < 0 or
  // the thread may not run there); unpinning restores the affinity the
  // thread had before.
  AdaptivePin(int cpu, size_t batch_capacity);
  void Observe(size_t frames);

 private:
  void Apply(bool pin);
  int cpu_;
  PinPolicy policy_;
  cpu_set_t allowed_{};
};

}  // namespace isoboot::sys
