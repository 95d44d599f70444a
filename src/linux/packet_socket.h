#pragma once
// Raw Ethernet frames on one interface through an AF_PACKET socket, received
// and sent in batches (recvmmsg/sendmmsg) so a busy server makes two system
// calls per batch rather than two per frame. Several sockets can share the
// load through a PACKET_FANOUT group. One socket per thread: a PacketSocket
// is not thread-safe, and owns its batch arrays so no call allocates.

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace isoboot::sys {

struct InterfaceInfo {
  std::string name;
  int index = 0;
  std::array<uint8_t, 6> mac{};
  unsigned mtu = 1500;
};

// Throws std::system_error naming the interface if it does not exist.
InterfaceInfo LookupInterface(const std::string& name);

struct PacketSocketOptions {
  uint16_t ethertype = 0;     // frames received; 0 = send-only socket
  int fanout_group = -1;      // >= 0: join this PACKET_FANOUT group
  bool fanout_by_cpu = true;  // PACKET_FANOUT_CPU (else round-robin PACKET_FANOUT_LB)
  int receive_buffer = 0;     // bytes; 0 = kernel default
  bool promiscuous = false;   // also receive frames for other MACs
  size_t batch = 32;          // frames per recvmmsg/sendmmsg
};

class PacketSocket {
 public:
  // Throws std::runtime_error with the exact missing capability on EPERM,
  // std::system_error otherwise.
  PacketSocket(const InterfaceInfo& iface, const PacketSocketOptions& options);
  ~PacketSocket();
  PacketSocket(const PacketSocket&) = delete;
  PacketSocket& operator=(const PacketSocket&) = delete;

  int fd() const { return fd_.get(); }
  size_t batch() const { return batch_; }
  // The receive buffer the kernel actually granted (bytes).
  int receive_buffer() const { return receive_buffer_; }

  // Waits up to timeout_ms for frames, then receives up to
  // min(bufs.size(), batch()) of them without blocking. lens[i] gets each
  // frame's length (truncated to the buffer). Returns the count; 0 on timeout
  // or EINTR. Throws std::system_error on any other failure, e.g. ENETDOWN
  // (once) when the interface goes down or is removed.
  size_t Receive(std::span<const std::span<uint8_t>> bufs, std::span<size_t> lens, int timeout_ms);

  // Sends the frames (each a complete Ethernet frame) in batches; returns how
  // many the kernel accepted. A full transmit queue waits briefly, then drops.
  size_t Send(std::span<const std::span<const uint8_t>> frames);
  bool SendOne(std::span<const uint8_t> frame);

 private:
  UniqueFd fd_;
  size_t batch_;
  int receive_buffer_ = 0;
  int timeout_ms_ = -1;  // SO_RCVTIMEO currently set
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
};

}  // namespace isoboot::sys
