// Boost.Asio rather than a hand-written epoll loop: the HTTP server (Beast)
// needs it anyway, so every server uses one event-loop library, and Asio's
// timer queue gives each transfer its own timer without a timerfd each.
// Sockets are non-blocking and sends are synchronous: a UDP send either goes
// or is dropped (the retransmission timer covers drops).

#include "tftp/server.h"

#include <errno.h>

#include <array>
#include <atomic>
#include <map>
#include <system_error>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "base/log_throttle.h"
#include "base/strings.h"
#include "tftp/admission.h"

namespace isoboot::tftp {

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::udp;

namespace {

struct Session {
  Session(net::io_context& io, const udp::endpoint& peer_in, Admission::Id id_in)
      : socket(io), timer(io), peer(peer_in), client(peer_in.address().to_string()), id(id_in) {}
  udp::socket socket;
  net::steady_timer timer;
  udp::endpoint peer;
  std::string client;  // peer's address as text
  Admission::Id id;
  bool admitted = false;  // counted in Impl::admission
  std::unique_ptr<Transfer> transfer;
  TimePoint started;
  std::array<uint8_t, 1024> rx{};
};

bool OutOfDescriptors(const error_code& ec) {
  return ec == net::error::no_descriptors || ec.value() == ENFILE;
}

}  // namespace

struct Server::Impl {
  Impl(ServerConfig c, TreeProvider t, Logger l)
      : config(std::move(c)),
        trees(std::move(t)),
        log(std::move(l)),
        listener(io),
        admission({config.max_transfers, config.max_transfers_per_client}) {}

  void StartReceive();
  void OnRequest(std::span<const uint8_t> bytes, const udp::endpoint& from);
  void SendOutput(Session& s);
  void Receive(const std::shared_ptr<Session>& s);
  void ArmTimer(const std::shared_ptr<Session>& s);
  void Finish(const std::shared_ptr<Session>& s);
  error_code OpenTransferSocket(Session& s);
  // Ends the never-acknowledged session `id` to give its slot or its
  // descriptor to a new request.
  void Displace(Admission::Id id, std::string_view why);
  // An ERROR from the listening socket: for answers that must not cost a
  // descriptor (refusals while full, or when none is left).
  void ReplyFromListener(const udp::endpoint& peer, ErrorCode code, std::string_view message);
  bool Debug() const { return log->should_log(spdlog::level::debug); }

  ServerConfig config;
  TreeProvider trees;
  Logger log;
  net::io_context io;
  udp::socket listener;
  udp::endpoint from;
  std::array<uint8_t, 2048> rx{};
  std::map<udp::endpoint, std::shared_ptr<Session>> sessions;
  std::map<Admission::Id, std::shared_ptr<Session>> by_id;
  Admission admission;
  Admission::Id next_id = 1;
  LogThrottle busy_log, no_socket_log, unacked_log;  // base/log_throttle.h

  std::atomic<uint64_t> requests{0}, completed{0}, failed{0}, bad_packets{0}, duplicates{0},
      busy{0}, client_busy{0}, displaced{0}, unacknowledged{0}, no_socket{0}, active{0};
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
  ServerStats st;
  st.requests = im.requests;
  st.completed = im.completed;
  st.failed = im.failed;
  st.bad_packets = im.bad_packets;
  st.duplicate_requests = im.duplicates;
  st.busy = im.busy;
  st.client_busy = im.client_busy;
  st.displaced = im.displaced;
  st.unacknowledged = im.unacknowledged;
  st.no_socket = im.no_socket;
  st.active = im.active;
  return st;
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

error_code Server::Impl::OpenTransferSocket(Session& s) {
  error_code ec;
  s.socket.open(s.peer.protocol(), ec);
  udp::endpoint local;
  if (!ec) local = listener.local_endpoint(ec);
  if (!ec) s.socket.bind(udp::endpoint(local.address(), 0), ec);
  // Connected: the kernel then drops datagrams from any other TID for us.
  if (!ec) s.socket.connect(s.peer, ec);
  if (!ec) s.socket.non_blocking(true, ec);
  if (ec) {
    error_code ignored;
    s.socket.close(ignored);
  }
  return ec;
}

void Server::Impl::ReplyFromListener(const udp::endpoint& peer, ErrorCode code,
                                     std::string_view message) {
  std::vector<uint8_t> out;
  Append(ErrorPacket{code, std::string(message)}, out);
  error_code ec;
  listener.send_to(net::buffer(out), peer, 0, ec);
}

void Server::Impl::Displace(Admission::Id id, std::string_view why) {
  auto it = by_id.find(id);
  if (it == by_id.end()) return;
  auto s = it->second;
  ++displaced;
  s->transfer->Displace(std::string(why));
  Finish(s);
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
  auto s = std::make_shared<Session>(io, peer, next_id++);
  s->started = Clock::now();
  // Admission comes before the lookup and the Transfer (which reads a whole
  // netascii file): a refused request costs nothing but its answer.
  Admission::Decision d = admission.Decide(s->client);
  if (d.verdict == Admission::Verdict::kClientFull ||
      d.verdict == Admission::Verdict::kServerFull) {
    const bool share = d.verdict == Admission::Verdict::kClientFull;
    ++(share ? client_busy : busy);
    ++failed;
    ReplyFromListener(peer, ErrorCode::kNotDefined, "server busy, try again");
    uint64_t n = 0;
    if (busy_log.Allow(n))
      log->warn(
          "busy: refused {} request(s) in 10 s, the last {} from {} ({} transfers running, "
          "{} from that address)",
          n, EscapeForLog(req->filename), s->client, sessions.size(),
          admission.CountFor(s->client));
    return;
  }
  if (d.displace) Displace(*d.displace, "displaced by a newer request before any ACK");

  auto tree = trees && IsPrintableAscii(req->filename) ? trees(s->client) : nullptr;
  vfs::SourcePtr source = tree ? tree->Lookup(req->filename) : nullptr;
  s->transfer = std::make_unique<Transfer>(*req, std::move(source), config.transfer, s->started);
  error_code ec = OpenTransferSocket(*s);
  if (ec && OutOfDescriptors(ec) && !s->transfer->finished()) {
    // No descriptor left: one that a never-acknowledged transfer holds is
    // better spent on this request.
    if (auto victim = admission.OldestUnacknowledged()) {
      Displace(*victim, "its descriptor went to a newer request");
      ec = OpenTransferSocket(*s);
    }
  }
  if (ec) {
    ++no_socket;
    if (s->transfer->finished()) {
      // An immediate answer (not found, WRQ): it can come from port 69.
      for (const auto& p : s->transfer->output()) {
        error_code ignored;
        listener.send_to(net::buffer(p), peer, 0, ignored);
      }
    } else {
      s->transfer->Abandon("no transfer socket: " + ec.message());
      ReplyFromListener(peer, ErrorCode::kNotDefined, "server out of resources, try again");
    }
    uint64_t n = 0;
    if (no_socket_log.Allow(n))
      log->warn(
          "cannot open a transfer socket ({}): answered {} request(s) in 10 s from port "
          "{} instead, the last from {}",
          ec.message(), n, listener.local_endpoint().port(), s->client);
    Finish(s);
    return;
  }
  SendOutput(*s);
  if (s->transfer->finished()) {
    Finish(s);
    return;
  }
  sessions.emplace(peer, s);
  by_id.emplace(s->id, s);
  admission.Add(s->id, s->client);
  s->admitted = true;
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
    if (s->admitted && s->transfer->acknowledged()) admission.Acknowledged(s->id);
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
  auto it = sessions.find(s->peer);
  if (it != sessions.end() && it->second == s) {
    sessions.erase(it);
    --active;
  }
  by_id.erase(s->id);
  if (s->admitted) admission.Remove(s->id);
  s->admitted = false;
  error_code ec;
  s->timer.cancel();
  s->socket.close(ec);
  TransferRecord r;
  r.client_address = s->peer.address().to_string();
  r.client_port = s->peer.port();
  r.filename = t.filename();
  r.outcome = t.outcome();
  r.detail = t.detail();
  r.acknowledged = t.acknowledged();
  r.size = t.size();
  r.bytes = t.bytes_acked();
  r.seconds = std::chrono::duration<double>(Clock::now() - s->started).count();
  r.blksize = t.negotiated().blksize;
  r.windowsize = t.negotiated().windowsize;
  r.retransmits = t.retransmits();
  // With a hook, its owner writes the milestone line (e.g. with the client's
  // MAC); this one drops to debug so each transfer is logged once.
  auto milestone = config.on_transfer ? spdlog::level::debug : spdlog::level::info;
  const std::string name = EscapeForLog(r.filename);
  if (r.outcome == Outcome::kComplete) {
    ++completed;
    log->log(milestone,
             "sent {} ({} bytes) to {} in {:.1f} s (blksize {}, window {}, {} retransmits)", name,
             r.size, r.client_address, r.seconds, r.blksize, r.windowsize, r.retransmits);
  } else {
    ++failed;
    // Misses (pxelinux probes a dozen names) and tsize probes are routine.
    bool routine =
        r.outcome == Outcome::kRejected || (r.outcome == Outcome::kAborted && r.bytes == 0);
    // Never acknowledged: maybe a spoofed source, one line per 10 s at most.
    bool silent =
        !r.acknowledged && (r.outcome == Outcome::kTimedOut || r.outcome == Outcome::kDisplaced);
    if (silent) {
      ++unacknowledged;
      uint64_t n = 0;
      if (unacked_log.Allow(n))
        log->info("{} transfer(s) in 10 s ended without any ACK, the last of {} to {} ({})", n,
                  name, r.client_address, EscapeForLog(r.detail));
    }
    log->log(routine || silent ? spdlog::level::debug : milestone,
             "{} {} to {}: {} after {} of {} bytes ({})",
             r.outcome == Outcome::kRejected ? "refused" : "failed sending", name, r.client_address,
             OutcomeName(r.outcome), r.bytes, r.size, EscapeForLog(r.detail));
  }
  if (config.on_transfer) config.on_transfer(r);
}

}  // namespace isoboot::tftp
