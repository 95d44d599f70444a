#include "dhcp/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "base/file_io.h"
#include "dhcp/lease_writer.h"

namespace isoboot::dhcp {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Replies waiting for one lease write: one per request received during an
// fsync, so a flood during a slow disk is dropped beyond this (the clients
// retransmit).
constexpr size_t kMaxHeld = 4096;

}  // namespace

Server::Server(ServerConfig config, Logger logger)
    : config_(std::move(config)), logger_(std::move(logger)), protocol_(config_.protocol) {
  if (config_.protocol.mode == Mode::kFull && config_.protocol.ranges.empty()) {
    throw std::runtime_error("full DHCP mode needs a range (--dhcp-range START,END)");
  }
  if (config_.protocol.server_ip == 0) {
    throw std::runtime_error("DHCP server needs the server's IPv4 address");
  }
  if (!config_.lease_file.empty()) {
    std::ifstream in(config_.lease_file);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      OrThrow(protocol_.LoadLeases(text.str()), "lease file " + config_.lease_file);
      leases_ = protocol_.leases().size();
      logger_->info("loaded {} leases from {}", protocol_.leases().size(), config_.lease_file);
    }
  }
  if (!config_.lease_file.empty()) {
    lease_writer_ = std::make_unique<LeaseWriter>(config_.lease_file, logger_);
  }
  dhcp_fd_ = OpenSocket(config_.server_port);
  if (config_.proxy_port) proxy_fd_ = OpenSocket(config_.proxy_port);
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) ThrowErrno("eventfd");
}

Server::~Server() = default;

UniqueFd Server::OpenSocket(uint16_t port) const {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) ThrowErrno("DHCP socket");
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) {
    ThrowErrno("DHCP socket options");
  }
  // A rack booting at once sends hundreds of DISCOVERs in a burst; the
  // default buffer (~200 KiB) holds about 90 of them. SO_RCVBUFFORCE passes
  // net.core.rmem_max as root; SO_RXQ_OVFL counts what still overflows.
  int size = kReceiveBuffer;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (!config_.interface.empty() &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, config_.interface.c_str(),
                   static_cast<socklen_t>(config_.interface.size())) != 0) {
    if (errno == EPERM) {
      ThrowErrno(fmt::format("binding the DHCP socket to {} needs CAP_NET_RAW", config_.interface));
    }
    ThrowErrno(fmt::format("binding the DHCP socket to interface {}", config_.interface));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EACCES) {
      ThrowErrno(fmt::format("binding UDP port {} needs CAP_NET_BIND_SERVICE", port));
    }
    ThrowErrno(fmt::format("binding UDP port {}", port));
  }
  return fd;
}

void Server::Run() {
  logger_->info("DHCP {} mode on {} (server {}, ports {}/{})",
                config_.protocol.mode == Mode::kFull ? "full" : "proxy",
                config_.interface.empty() ? "all interfaces" : config_.interface,
                FormatIp(config_.protocol.server_ip), config_.server_port, config_.proxy_port);
  while (!stop_.load()) {
    pollfd fds[4] = {{dhcp_fd_.get(), POLLIN, 0},
                     {wake_fd_.get(), POLLIN, 0},
                     {lease_writer_ ? lease_writer_->ready_fd() : -1, POLLIN, 0},
                     {proxy_fd_.valid() ? proxy_fd_.get() : -1, POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("poll on DHCP sockets");
    }
    if (fds[1].revents) break;
    if (fds[2].revents & POLLIN) ReleaseHeld();
    if (fds[0].revents & POLLIN) HandlePacket(dhcp_fd_.get(), false);
    if (fds[3].revents & POLLIN) HandlePacket(proxy_fd_.get(), true);
  }
  // A clean stop still sends the ACKs whose leases are being written.
  if (lease_writer_) {
    lease_writer_->WaitIdle();
    ReleaseHeld();
  }
}

void Server::ReleaseHeld() {
  LeaseWriter::Progress p = lease_writer_->Collect();
  while (!held_.empty() && held_.front().generation <= std::max(p.durable, p.failed)) {
    if (held_.front().generation <= p.durable) {
      Send(held_.front());
    } else {
      ++acks_dropped_;
      logger_->warn("not sending {} to {}: its lease could not be saved", held_.front().note,
                    held_.front().mac);
    }
    held_.pop_front();
  }
}

void Server::Stop() {
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);
}

ServerStats Server::stats() const {
  return ServerStats{received_.load(),
                     answered_.load(),
                     dropped_bad_.load(),
                     ignored_.load(),
                     no_range_.load(),
                     relayed_.load(),
                     lease_writer_ ? lease_writer_->writes() : 0,
                     acks_held_.load(),
                     acks_dropped_.load(),
                     leases_.load(),
                     buffer_drops_.load()};
}

void Server::HandlePacket(int fd, bool proxy_port) {
  std::vector<uint8_t> buf(4096);
  sockaddr_in from{};
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got = ::recvmsg(fd, &msg, MSG_TRUNC);
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      logger_->warn("DHCP receive: {}", std::strerror(errno));
    }
    return;
  }
  ++received_;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
    // The socket's drops so far, as counted when this packet was queued: a
    // burst's drops show on the first packet queued after it.
    uint32_t total = 0;
    std::memcpy(&total, CMSG_DATA(c), sizeof total);
    uint32_t& seen = overflow_seen_[proxy_port ? 1 : 0];
    if (total != seen) {
      buffer_drops_ += static_cast<uint32_t>(total - seen);
      seen = total;
    }
  }
  Ip4 src_ip = ntohl(from.sin_addr.s_addr);
  uint16_t src_port = ntohs(from.sin_port);
  if (static_cast<size_t>(got) > buf.size()) {
    ++dropped_bad_;
    logger_->debug("dropped {}-byte packet from {}: too large", got, FormatIp(src_ip));
    return;
  }
  auto request = Parse(std::span<const uint8_t>(buf.data(), static_cast<size_t>(got)));
  if (!request) {
    ++dropped_bad_;
    logger_->debug("dropped packet from {}:{}: {}", FormatIp(src_ip), src_port,
                   request.error().message);
    return;
  }
  std::string mac = FormatMac(request->Mac());
  Outcome out = protocol_.Handle(*request, proxy_port, src_ip, src_port, std::time(nullptr));
  if (out.client && config_.on_client) {
    config_.on_client(*out.client);
  }
  leases_ = protocol_.leases().size();
  if (out.leases_changed && lease_writer_) {
    lease_writer_->Submit(++generation_, protocol_.SaveLeases());
  }
  if (out.no_range) {
    ++no_range_;
    if (uint64_t n = 0; no_range_log_.Allow(n)) {
      logger_->warn("{} from {}: dropped: {}{}",
                    request->Type() ? TypeName(*request->Type()) : "BOOTP", mac, out.note,
                    n > 1 ? fmt::format(" ({} such requests since the last line)", n) : "");
    }
  }
  if (out.relayed_by && !config_.relayed_problem.empty()) {
    if (uint64_t n = 0; relayed_problem_log_.Allow(n)) {
      logger_->warn("{}: relayed through {}: {}{}", mac, FormatIp(out.relayed_by),
                    config_.relayed_problem,
                    n > 1 ? fmt::format(" ({} relayed requests since the last line)", n) : "");
    }
  }
  if (!out.reply) {
    ++ignored_;
    logger_->debug("{} from {}: no answer ({})",
                   request->Type() ? TypeName(*request->Type()) : "BOOTP", mac, out.note);
    return;
  }
  Reply reply;
  reply.generation = out.leases_changed && lease_writer_ ? generation_ : 0;
  reply.fd = fd;
  reply.proxy_port = proxy_port;
  Append(*out.reply, reply.bytes);
  reply.to.sin_family = AF_INET;
  reply.to.sin_addr.s_addr = htonl(out.dest_ip);
  uint16_t port = out.dest_port;
  if (!proxy_port) port = port == 67 ? config_.server_port : config_.client_port;
  reply.to.sin_port = htons(port);
  if (out.relayed_by) {
    ++relayed_;
    out.note += fmt::format(" via relay {}", FormatIp(out.relayed_by));
  }
  reply.note = std::move(out.note);
  reply.mac = std::move(mac);
  if (reply.generation == 0) {
    Send(reply);
    return;
  }
  if (held_.size() >= kMaxHeld) {
    ++acks_dropped_;
    logger_->warn("not sending {} to {}: {} replies already wait for the lease file", reply.note,
                  reply.mac, held_.size());
    return;
  }
  ++acks_held_;
  held_.push_back(std::move(reply));
}

void Server::Send(const Reply& reply) {
  if (::sendto(reply.fd, reply.bytes.data(), reply.bytes.size(), 0,
               reinterpret_cast<const sockaddr*>(&reply.to), sizeof reply.to) < 0) {
    logger_->warn("sending {} to {} ({}:{}): {}", reply.note, reply.mac,
                  FormatIp(ntohl(reply.to.sin_addr.s_addr)), ntohs(reply.to.sin_port),
                  std::strerror(errno));
    return;
  }
  ++answered_;
  logger_->info("{} to {}{}", reply.note, reply.mac, reply.proxy_port ? " (PXE port)" : "");
}

}  // namespace isoboot::dhcp
