#pragma once
// An AoE initiator for users and tests: discover targets, read a device end
// to end (windowed, retransmitting), and load a target with many simulated
// clients (distinct source MACs) for benchmarks. Single-threaded: one
// Initiator per thread; it owns its socket and buffers.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aoe/codec.h"
#include "linux/packet_socket.h"

namespace isoboot::aoe {

struct TargetInfo {
  uint16_t shelf = 0;
  uint8_t slot = 0;
  Mac mac{};
  uint16_t buffer_count = 0;
  uint16_t firmware_version = 0;
  uint8_t max_sectors = 0;
  std::string config;
  uint64_t sectors = 0;  // from IDENTIFY
  std::string model, serial, firmware;
};

struct TransferStats {
  uint64_t bytes = 0;
  uint64_t requests = 0;  // completed
  uint64_t retransmits = 0;
  double seconds = 0;
};

class Initiator {
 public:
  // `promiscuous` is needed to receive answers addressed to simulated
  // client MACs (Bench).
  Initiator(const sys::InterfaceInfo& iface, bool promiscuous);
  ~Initiator();

  // Broadcasts Query Config for shelf.slot (0xffff / 0xff = any), collects
  // answers for `wait_ms`, then asks each for IDENTIFY. Sorted by shelf.slot.
  std::vector<TargetInfo> Discover(uint16_t shelf, uint8_t slot, int wait_ms);

  // Reads the whole device into out_fd (pwrite at the device offset) with up
  // to `window` requests outstanding. Throws if the target stops answering
  // or returns an error.
  TransferStats Read(const TargetInfo& target, int out_fd, unsigned window);

  // `clients` simulated initiators (own source MAC each), each with
  // `window` reads outstanding over its own part of the device, for `seconds`.
  TransferStats Bench(const TargetInfo& target, unsigned clients, unsigned window, double seconds);

 private:
  struct Engine;
  sys::InterfaceInfo iface_;
  std::unique_ptr<sys::PacketSocket> socket_;
};

}  // namespace isoboot::aoe
