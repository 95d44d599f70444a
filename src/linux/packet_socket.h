#pragma once
// Raw Ethernet frames on one interface through an AF_PACKET socket, received
// and sent in batches (recvmmsg/sendmmsg) so a busy server makes two system
// calls per batch rather than two per frame. Several sockets can share the
// load through a PACKET_FANOUT group. One socket per thread: a PacketSocket
// is not thread-safe, and owns its batch arrays so no call allocates.
//
// With a receive ring (PacketSocketOptions::receive_ring), received frames
// come through memory shared with the kernel (PACKET_RX_RING, TPACKET_V2):
// the kernel writes each frame into the ring from its receive path, on the
// CPU that took the frame off the wire, and Peek hands it over in place: no
// system call while frames are waiting, no per-frame message headers, no
// copy on the reading CPU. (A send ring, PACKET_TX_RING, was measured and
// left out: its frames reference the ring's pages, which a veth copies into
// fresh pages for every frame, more than sendmmsg's one copy costs.)

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

// How a PACKET_FANOUT group shares the frames among its sockets.
enum class Fanout {
  kCpu,         // the socket of the CPU that received the frame (PACKET_FANOUT_CPU)
  kSourceMac,   // a hash of the source MAC (classic-BPF program): one sender, one socket
  kRoundRobin,  // PACKET_FANOUT_LB
};

struct PacketSocketOptions {
  uint16_t ethertype = 0;  // frames received; 0 = send-only socket
  int fanout_group = -1;   // >= 0: join this PACKET_FANOUT group
  Fanout fanout = Fanout::kCpu;
  int receive_buffer = 0;    // bytes; 0 = kernel default
  bool promiscuous = false;  // also receive frames for other MACs
  size_t batch = 32;         // frames per recvmmsg/sendmmsg
  // Receive through a ring of about this many bytes (0: recvmmsg). It
  // replaces receive_buffer: the ring is what the kernel can queue.
  size_t receive_ring = 0;
  unsigned mtu = 1500;  // with a ring: the largest frame's payload
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
  // With a receive ring: how many frames it holds (else 0).
  size_t ring_frames() const { return rx_.frames; }

  // Without a receive ring (with one, use Peek): waits up to timeout_ms for
  // frames, then receives up to min(bufs.size(), batch()) of them without
  // blocking. lens[i] gets each frame's length (truncated to the buffer).
  // Returns the count; 0 on timeout or EINTR. Throws std::system_error on
  // any other failure, e.g. ENETDOWN (once) when the interface goes down or
  // is removed.
  size_t Receive(std::span<const std::span<uint8_t>> bufs, std::span<size_t> lens, int timeout_ms);

  // Sends the frames (each a complete Ethernet frame) in batches; returns how
  // many the kernel accepted. A full transmit queue waits briefly, then drops.
  size_t Send(std::span<const std::span<const uint8_t>> frames);
  bool SendOne(std::span<const uint8_t> frame);

  // With a receive ring: waits up to timeout_ms for frames, then points `out`
  // at up to out.size() received frames, in the ring, in arrival order. They
  // stay valid until Release() or the next Peek, which releases them first
  // (a caller done with them early gives the slots back sooner). Returns
  // the count; 0 on timeout. Throws std::system_error on a socket error
  // (ENETDOWN once when the interface goes down or is removed).
  size_t Peek(std::span<std::span<const uint8_t>> out, int timeout_ms);
  // Gives the frames of the last Peek back to the kernel.
  void Release();

 private:
  struct Ring {
    uint8_t* base = nullptr;  // the ring's frames, one after another
    size_t frame_size = 0;
    size_t frames = 0;
    size_t head = 0;  // next frame to look at
    uint8_t* Frame(size_t i) const { return base + (i % frames) * frame_size; }
  };
  void SetUpRing(const PacketSocketOptions& options, const std::string& iface);

  UniqueFd fd_;
  size_t batch_;
  int receive_buffer_ = 0;
  int timeout_ms_ = -1;  // SO_RCVTIMEO currently set
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  void* map_ = nullptr;  // the receive ring
  size_t map_size_ = 0;
  Ring rx_;
  size_t peeked_ = 0;
};

}  // namespace isoboot::sys
