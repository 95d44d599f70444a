// Boost.Asio rather than a hand-written epoll loop: the HTTP server (Beast)
// needs it anyway, so every server uses one event-loop library, and Asio's
// timer queue gives each transfer its own timer without a timerfd each.
// Sockets are non-blocking and sends are synchronous: a UDP send either goes
// or is dropped (the retransmission timer covers drops).

#include "tftp/server.h"

#include <array>
#include <atomic>
#include <map>
#include <system_error>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

namespace isoboot::tftp {

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::udp;

namespace {

struct Session {
  Session(net::io_context& io, const udp::endpoint& peer_in)
      : socket(io), timer(io), peer(peer_in) {}
  udp::socket socket;
  net::steady_timer timer;
  udp::endpoint peer;
  std::unique_ptr<Transfer> transfer;
  TimePoint started;
  std::array<uint8_t, 1024> rx{};
};

}  // namespace

struct Server::Impl {
  Impl(ServerConfig c, TreeProvider t, Logger l)
      : config(std::move(c)), trees(std::move(t)), log(std::move(l)), listener(io) {}

  void StartReceive();
  void OnRequest(std::span<const uint8_t> bytes, const udp::endpoint& from);
  void SendOutput(Session& s);
  void Receive(const std::shared_ptr<Session>& s);
  void ArmTimer(const std::shared_ptr<Session>& s);
  void Finish(const std::shared_ptr<Session>& s);
  bool OpenTransferSocket(Session& s);
  bool Debug() const { return log->should_log(spdlog::level::debug); }

  ServerConfig config;
  TreeProvider trees;
  Logger log;
  net::io_context io;
  udp::socket listener;
  udp::endpoint from;
  std::array<uint8_t, 2048> rx{};
  std::map<udp::endpoint, std::shared_ptr<Session>> sessions;

  std::atomic<uint64_t> requests{0}, completed{0}, failed{0}, bad_packets{0}, duplicates{0},
      busy{0}, active{0};
};

Server::Server(ServerConfig config, TreeProvider trees, Logger logger)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(trees), std::move(logger))) {
  auto& im = *impl_;
  // Setup errors throw std::system_error (not Boost's), as the header says.
  auto fail = [&](const error_code& ec, const std::string& what) {
    throw std::system_error(ec.value(), std::system_category(), what);
  };
  error_code ec;
  auto addr = net::ip::make_address(im.config.address, ec);
  if (ec) fail(ec, fmt::format("tftp: bad listen address '{}'", im.config.address));
  udp::endpoint ep(addr, im.config.port);
  im.listener.open(ep.protocol(), ec);
  if (ec) fail(ec, fmt::format("tftp: cannot open a UDP socket for {}", im.config.address));
  im.listener.set_option(net::socket_base::receive_buffer_size(1 << 20), ec);  // bursts of RRQs
  im.listener.bind(ep, ec);
  if (ec) {
    std::string hint =
        ec == net::error::access_denied ? " (ports below 1024 need CAP_NET_BIND_SERVICE)" : "";
    fail(ec, fmt::format("tftp: cannot bind UDP {}:{}{}", im.config.address, im.config.port, hint));
  }
  im.listener.non_blocking(true, ec);
  if (ec) fail(ec, "tftp: cannot make the listening socket non-blocking");
}

Server::~Server() = default;

uint16_t Server::port() const {
  return impl_->listener.local_endpoint().port();
}

void Server::Run() {
  // No io.restart(): a Stop() that comes before Run() must still stop it.
  impl_->StartReceive();
  impl_->io.run();
}

void Server::Stop() {
  impl_->io.stop();
}

ServerStats Server::stats() const {
  const auto& im = *impl_;
  return ServerStats{im.requests,   im.completed, im.failed, im.bad_packets,
                     im.duplicates, im.busy,      im.active};
}

void Server::Impl::StartReceive() {
  listener.async_receive_from(net::buffer(rx), from, [this](error_code ec, size_t n) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      OnRequest(std::span<const uint8_t>(rx.data(), n), from);
    } else if (Debug()) {
      log->debug("receive on listening socket: {}", ec.message());
    }
    StartReceive();
  });
}

bool Server::Impl::OpenTransferSocket(Session& s) {
  error_code ec;
  s.socket.open(s.peer.protocol(), ec);
  udp::endpoint local;
  if (!ec) local = listener.local_endpoint(ec);
  if (!ec) s.socket.bind(udp::endpoint(local.address(), 0), ec);
  // Connected: the kernel then drops datagrams from any other TID for us.
  if (!ec) s.socket.connect(s.peer, ec);
  if (!ec) s.socket.non_blocking(true, ec);
  if (ec) {
    log->warn("cannot open a transfer socket for {}: {}", s.peer.address().to_string(),
              ec.message());
    return false;
  }
  return true;
}

void Server::Impl::OnRequest(std::span<const uint8_t> bytes, const udp::endpoint& peer) {
  auto packet = Parse(bytes);
  const Request* req = packet ? std::get_if<Request>(&*packet) : nullptr;
  if (!req) {
    ++bad_packets;
    if (Debug())
      log->debug("dropped from {}: {}", peer.address().to_string(),
                 packet ? "not a request: " + Describe(*packet) : packet.error().message);
    return;
  }
  if (Debug())
    log->debug("{}:{} -> {}", peer.address().to_string(), peer.port(), Describe(*packet));
  if (sessions.count(peer)) {
    // The client repeated its request before our answer arrived; the transfer
    // already running retransmits on its own timer.
    ++duplicates;
    return;
  }
  ++requests;
  auto s = std::make_shared<Session>(io, peer);
  s->started = Clock::now();
  if (sessions.size() >= config.max_transfers) {
    ++busy;
    ++failed;
    if (OpenTransferSocket(*s)) {
      std::vector<uint8_t> out;
      Append(ErrorPacket{ErrorCode::kNotDefined, "server busy, try again"}, out);
      error_code ec;
      s->socket.send(net::buffer(out), 0, ec);
    }
    log->warn("busy: refused {} from {} ({} transfers running)", req->filename,
              peer.address().to_string(), sessions.size());
    return;
  }
  auto tree = trees ? trees(peer.address().to_string()) : nullptr;
  vfs::SourcePtr source = tree ? tree->Lookup(req->filename) : nullptr;
  s->transfer = std::make_unique<Transfer>(*req, std::move(source), config.transfer, s->started);
  if (!OpenTransferSocket(*s)) {
    ++failed;
    return;
  }
  SendOutput(*s);
  if (s->transfer->finished()) {
    Finish(s);
    return;
  }
  sessions.emplace(peer, s);
  ++active;
  Receive(s);
  ArmTimer(s);
}

void Server::Impl::SendOutput(Session& s) {
  for (const auto& p : s.transfer->output()) {
    error_code ec;
    s.socket.send(net::buffer(p), 0, ec);
    if (Debug()) {
      auto parsed = Parse(p);
      log->debug("{}:{} <- {}{}", s.peer.address().to_string(), s.peer.port(),
                 parsed ? Describe(*parsed) : "?",
                 ec ? " (send failed: " + ec.message() + ")" : "");
    }
  }
}

void Server::Impl::Receive(const std::shared_ptr<Session>& s) {
  s->socket.async_receive(net::buffer(s->rx), [this, s](error_code ec, size_t n) {
    if (ec == net::error::operation_aborted || !s->socket.is_open()) return;
    if (ec) {
      // Typically ECONNREFUSED (ICMP port unreachable: the client is gone).
      // Re-arming on an error that persists would spin, so any error ends it.
      s->transfer->Abandon("receive failed: " + ec.message());
      Finish(s);
      return;
    }
    auto packet = Parse(std::span<const uint8_t>(s->rx.data(), n));
    if (!packet) {
      ++bad_packets;
      if (Debug())
        log->debug("dropped from {}: {}", s->peer.address().to_string(), packet.error().message);
      Receive(s);
      return;
    }
    if (Debug())
      log->debug("{}:{} -> {}", s->peer.address().to_string(), s->peer.port(), Describe(*packet));
    s->transfer->OnPacket(*packet, Clock::now());
    SendOutput(*s);
    if (s->transfer->finished()) {
      Finish(s);
      return;
    }
    if (s->transfer->output().size() > 0) ArmTimer(s);  // progress: new deadline
    Receive(s);
  });
}

void Server::Impl::ArmTimer(const std::shared_ptr<Session>& s) {
  s->timer.expires_at(*s->transfer->deadline());
  s->timer.async_wait([this, s](error_code ec) {
    if (ec == net::error::operation_aborted || !s->socket.is_open()) return;
    s->transfer->OnTimer(Clock::now());
    SendOutput(*s);
    if (s->transfer->finished()) {
      Finish(s);
      return;
    }
    ArmTimer(s);
  });
}

void Server::Impl::Finish(const std::shared_ptr<Session>& s) {
  const Transfer& t = *s->transfer;
  if (sessions.erase(s->peer)) --active;
  error_code ec;
  s->timer.cancel();
  s->socket.close(ec);
  TransferRecord r;
  r.client_address = s->peer.address().to_string();
  r.client_port = s->peer.port();
  r.filename = t.filename();
  r.outcome = t.outcome();
  r.detail = t.detail();
  r.size = t.size();
  r.bytes = t.bytes_acked();
  r.seconds = std::chrono::duration<double>(Clock::now() - s->started).count();
  r.blksize = t.negotiated().blksize;
  r.windowsize = t.negotiated().windowsize;
  r.retransmits = t.retransmits();
  // With a hook, its owner writes the milestone line (e.g. with the client's
  // MAC); this one drops to debug so each transfer is logged once.
  auto milestone = config.on_transfer ? spdlog::level::debug : spdlog::level::info;
  if (r.outcome == Outcome::kComplete) {
    ++completed;
    log->log(
        milestone, "sent {} ({} bytes) to {} in {:.1f} s (blksize {}, window {}, {} retransmits)",
        r.filename, r.size, r.client_address, r.seconds, r.blksize, r.windowsize, r.retransmits);
  } else {
    ++failed;
    // Misses (pxelinux probes a dozen names) and tsize probes are routine.
    bool routine =
        r.outcome == Outcome::kRejected || (r.outcome == Outcome::kAborted && r.bytes == 0);
    log->log(routine ? spdlog::level::debug : milestone,
             "{} {} to {}: {} after {} of {} bytes ({})",
             r.outcome == Outcome::kRejected ? "refused" : "failed sending", r.filename,
             r.client_address, OutcomeName(r.outcome), r.bytes, r.size, r.detail);
  }
  if (config.on_transfer) config.on_transfer(r);
}

}  // namespace isoboot::tftp
