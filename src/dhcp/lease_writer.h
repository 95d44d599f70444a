#pragma once
// Group commit for the lease file. The server loop hands over a full
// snapshot of the leases after each change, tagged with a generation that
// grows by one per change; one writer thread writes the newest snapshot to
// FILE.tmp, fsyncs it, renames it over FILE and fsyncs the directory, so the
// file always holds one whole snapshot, before or after a crash. Snapshots
// submitted while a write is in flight are coalesced: only the newest is
// written next, and it carries every change before it. The loop sends an ACK
// only once durable() has reached the generation of the change it carries.
//
// Threading: Submit(), Collect() and ready_fd() are for the one owner thread
// (the server loop); the writer thread is internal and joined by the
// destructor after it has finished the write in flight and the pending one.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "base/logging.h"
#include "base/unique_fd.h"

namespace isoboot::dhcp {

class LeaseWriter {
 public:
  // Starts the writer thread. Throws std::system_error if the eventfd fails.
  LeaseWriter(std::string path, Logger logger);
  ~LeaseWriter();
  LeaseWriter(const LeaseWriter&) = delete;
  LeaseWriter& operator=(const LeaseWriter&) = delete;

  // Queues `text` as the state at `generation` (greater than any before),
  // replacing a queued snapshot that has not started to be written yet.
  void Submit(uint64_t generation, std::string text);

  struct Progress {
    uint64_t durable = 0;  // every change up to this one is on disk
    uint64_t failed = 0;   // the last generation whose write failed
  };
  // Clears ready_fd() and returns how far writing has got.
  Progress Collect();
  // Readable after each finished write (poll it with the sockets).
  int ready_fd() const { return ready_fd_.get(); }
  // Blocks until nothing is queued or being written (for a clean stop).
  void WaitIdle();

  uint64_t writes() const;  // snapshots written (each: 2 fsyncs, 1 rename)

 private:
  void Loop();
  bool Write(const std::string& text);

  const std::string path_;
  Logger logger_;
  UniqueFd ready_fd_;  // eventfd
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_text_;  // guarded by mu_
  uint64_t pending_gen_ = 0;  // guarded by mu_; 0: nothing queued
  bool busy_ = false;         // guarded by mu_
  bool stop_ = false;         // guarded by mu_
  Progress progress_;         // guarded by mu_
  uint64_t writes_ = 0;       // guarded by mu_
  std::thread thread_;        // last: started once the rest is built
};

}  // namespace isoboot::dhcp
