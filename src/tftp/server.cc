// Boost.Asio rather than a hand-written epoll loop: the HTTP server (Beast)
// needs it anyway, so every server uses one event-loop library, and Asio's
// timer queue gives each transfer its own timer without a timerfd each.
// Sockets are non-blocking and sends are synchronous: a UDP send either goes
// or is dropped (the retransmission timer covers drops).
//
// Several loops (server.h): each owns its listening socket and the sessions
// it started; a session's Asio objects are touched only on its own loop.
// What the loops share is Impl's registry under `mu`. Ending a session of
// another loop (displacement) is posted to that loop.

#include "tftp/server.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
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

struct Session;

// One event loop: its thread runs `io`, which serves `listener` and the
// sessions started from it.
struct Loop {
  Loop() : io(1), listener(io) {}  // 1: one thread runs it (no locking inside Asio)
  net::io_context io;
  udp::socket listener;
  udp::endpoint from;
  std::array<uint8_t, 2048> rx{};
  // Received transfer packets, one batch at a time (Impl::Receive). A
  // client packet is an ACK or an ERROR: 1024 bytes hold any real one.
  static constexpr size_t kBatch = 4;
  std::array<std::array<uint8_t, 1024>, kBatch> batch{};
  // Sessions waiting for another loop to free a descriptor (Impl::Open).
  std::map<uint64_t, std::shared_ptr<Session>> waiting;
};

struct Session {
  Session(Loop& loop_in, const udp::endpoint& peer_in)
      : loop(loop_in),
        socket(loop_in.io),
        timer(loop_in.io),
        peer(peer_in),
        client(peer_in.address().to_string()) {}
  Loop& loop;
  udp::socket socket;
  net::steady_timer timer;
  udp::endpoint peer;
  std::string client;  // peer's address as text
  Admission::Id id = 0;
  bool registered = false;      // in Impl's registry (until Unregister)
  bool reported_acked = false;  // told admission it was acknowledged
  bool read_pending = false;    // an async_wait for a packet is queued
  std::unique_ptr<Transfer> transfer;
  TimePoint started;
  // The timer is armed lazily: a wait already due before the transfer's
  // deadline is left alone and re-armed when it fires, so a block's ACK
  // (which moves the deadline later) costs no timer cancel and re-arm.
  TimePoint timer_at{};
  bool timer_pending = false;
  uint64_t timer_seq = 0;  // the current wait; older handlers do nothing
};

bool OutOfDescriptors(const error_code& ec) {
  return ec == net::error::no_descriptors || ec.value() == ENFILE;
}

unsigned LoopCount(unsigned asked) {
  unsigned n = asked ? asked : std::thread::hardware_concurrency();
  return std::clamp(n, 1u, ServerConfig::kMaxThreads);
}

}  // namespace

struct Server::Impl {
  Impl(ServerConfig c, TreeProvider t, Logger l)
      : config(std::move(c)),
        trees(std::move(t)),
        log(std::move(l)),
        admission({config.max_transfers, config.max_transfers_per_client}) {
    for (unsigned i = LoopCount(config.threads); i > 0; --i)
      loops.push_back(std::make_unique<Loop>());
  }

  // Where a registered session runs, for ending it from another loop.
  struct Owner {
    Loop* loop = nullptr;
    std::weak_ptr<Session> session;
    udp::endpoint peer;
  };

  void Bind();
  void StartReceive(Loop& loop);
  void OnRequest(Loop& loop, std::span<const uint8_t> bytes, const udp::endpoint& from);
  // Opens the transfer socket of `s` (its transfer made), taking the
  // descriptor of a never-acknowledged session when none is left, then
  // sends the first answer.
  void Open(const std::shared_ptr<Session>& s, bool may_displace);
  void Begin(const std::shared_ptr<Session>& s, error_code ec);
  void SendOutput(Session& s);
  void Receive(const std::shared_ptr<Session>& s);
  // Reads what the socket of `s` holds, then waits again.
  void Drain(const std::shared_ptr<Session>& s);
  // One packet from the client of `s`; may finish it.
  void OnPacket(const std::shared_ptr<Session>& s, std::span<const uint8_t> bytes);
  void ArmTimer(const std::shared_ptr<Session>& s);
  void Finish(const std::shared_ptr<Session>& s);
  error_code OpenTransferSocket(Session& s);
  // Under mu: takes session `id` out of the registry (its slot is free at
  // once) and returns where it runs; nullopt when it was no longer there.
  std::optional<Owner> Unregister(Admission::Id id);
  // Ends the session `owner` names (on its loop, now or posted there) as
  // displaced, then runs `then` on `from`'s loop (if given).
  void EndDisplaced(Loop& from, Owner owner, std::string why, std::function<void()> then = nullptr);
  void Displace(const std::shared_ptr<Session>& s, const std::string& why);
  // An ERROR from the listening socket: for answers that must not cost a
  // descriptor (refusals while full, or when none is left).
  void ReplyFromListener(Loop& loop, const udp::endpoint& peer, ErrorCode code,
                         std::string_view message);
  bool Allow(LogThrottle& throttle, uint64_t& events) {
    std::lock_guard lock(log_mu);
    return throttle.Allow(events);
  }
  bool Debug() const { return log->should_log(spdlog::level::debug); }

  ServerConfig config;
  TreeProvider trees;
  Logger log;
  std::vector<std::unique_ptr<Loop>> loops;  // loops[0] runs on Run()'s thread

  std::mutex mu;
  Admission admission;                             // guarded by mu
  std::map<udp::endpoint, Admission::Id> by_peer;  // guarded by mu
  std::map<Admission::Id, Owner> by_id;            // guarded by mu
  Admission::Id next_id = 1;                       // guarded by mu

  std::mutex log_mu;
  LogThrottle busy_log, no_socket_log, unacked_log;  // guarded by log_mu

  std::mutex failure_mu;
  std::exception_ptr failure;  // guarded by failure_mu: the first loop's exception

  std::atomic<uint64_t> requests{0}, completed{0}, failed{0}, bad_packets{0}, duplicates{0},
      busy{0}, client_busy{0}, displaced{0}, unacknowledged{0}, no_socket{0}, active{0};
};

Server::Server(ServerConfig config, TreeProvider trees, Logger logger)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(trees), std::move(logger))) {
  impl_->Bind();
}

void Server::Impl::Bind() {
  // Setup errors throw std::system_error (not Boost's), as the header says.
  auto fail = [&](const error_code& ec, const std::string& what) {
    throw std::system_error(ec.value(), std::system_category(), what);
  };
  error_code ec;
  auto addr = net::ip::make_address(config.address, ec);
  if (ec) fail(ec, fmt::format("tftp: bad listen address '{}'", config.address));
  udp::endpoint ep(addr, config.port);
  for (auto& loop : loops) {
    udp::socket& l = loop->listener;
    l.open(ep.protocol(), ec);
    if (ec) fail(ec, fmt::format("tftp: cannot open a UDP socket for {}", config.address));
    l.set_option(net::socket_base::receive_buffer_size(1 << 20), ec);  // bursts of RRQs
    if (loops.size() > 1) {
      // One socket per loop on the same port. Linux groups only sockets of
      // the same effective user, so no other user's process can join.
      int one = 1;
      if (::setsockopt(l.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        fail(error_code(errno, boost::system::system_category()),
             "tftp: cannot set SO_REUSEPORT for several event loops");
    }
    l.bind(ep, ec);
    if (ec) {
      std::string hint =
          ec == net::error::access_denied ? " (ports below 1024 need CAP_NET_BIND_SERVICE)" : "";
      fail(ec, fmt::format("tftp: cannot bind UDP {}:{}{}", config.address, ep.port(), hint));
    }
    if (ep.port() == 0) ep.port(l.local_endpoint().port());  // the others join the one picked
    l.non_blocking(true, ec);
    if (ec) fail(ec, "tftp: cannot make the listening socket non-blocking");
  }
}

Server::~Server() = default;

uint16_t Server::port() const {
  return impl_->loops[0]->listener.local_endpoint().port();
}

void Server::Run() {
  auto& im = *impl_;
  // No io.restart(): a Stop() that comes before Run() must still stop it.
  auto run = [&im](Loop& loop) {
    try {
      im.StartReceive(loop);
      loop.io.run();
    } catch (...) {
      {
        std::lock_guard lock(im.failure_mu);
        if (!im.failure) im.failure = std::current_exception();
      }
      for (auto& l : im.loops)
        l->io.stop();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < im.loops.size(); ++i)
    threads.emplace_back(run, std::ref(*im.loops[i]));
  run(*im.loops[0]);
  for (auto& l : im.loops)
    l->io.stop();
  for (auto& t : threads)
    t.join();
  std::lock_guard lock(im.failure_mu);
  if (im.failure) std::rethrow_exception(im.failure);
}

void Server::Stop() {
  for (auto& loop : impl_->loops)
    loop->io.stop();
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
  st.threads = static_cast<unsigned>(im.loops.size());
  return st;
}

void Server::Impl::StartReceive(Loop& loop) {
  loop.listener.async_receive_from(
      net::buffer(loop.rx), loop.from, [this, &loop](error_code ec, size_t n) {
        if (ec == net::error::operation_aborted) return;
        if (!ec) {
          OnRequest(loop, std::span<const uint8_t>(loop.rx.data(), n), loop.from);
        } else if (Debug()) {
          log->debug("receive on listening socket: {}", ec.message());
        }
        StartReceive(loop);
      });
}

error_code Server::Impl::OpenTransferSocket(Session& s) {
  error_code ec;
  s.socket.open(s.peer.protocol(), ec);
  udp::endpoint local;
  if (!ec) local = s.loop.listener.local_endpoint(ec);
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

void Server::Impl::ReplyFromListener(Loop& loop, const udp::endpoint& peer, ErrorCode code,
                                     std::string_view message) {
  std::vector<uint8_t> out;
  Append(ErrorPacket{code, std::string(message)}, out);
  error_code ec;
  loop.listener.send_to(net::buffer(out), peer, 0, ec);
}

std::optional<Server::Impl::Owner> Server::Impl::Unregister(Admission::Id id) {
  auto it = by_id.find(id);
  if (it == by_id.end()) return std::nullopt;
  Owner owner = it->second;
  by_id.erase(it);
  auto peer = by_peer.find(owner.peer);
  if (peer != by_peer.end() && peer->second == id) by_peer.erase(peer);
  admission.Remove(id);
  --active;
  return owner;
}

void Server::Impl::Displace(const std::shared_ptr<Session>& s, const std::string& why) {
  if (!s->transfer || s->transfer->finished()) return;
  s->transfer->Displace(why);
  Finish(s);
}

void Server::Impl::EndDisplaced(Loop& from, Owner owner, std::string why,
                                std::function<void()> then) {
  if (owner.loop == &from) {
    if (auto s = owner.session.lock()) Displace(s, why);
    if (then) then();
    return;
  }
  // Only weak references cross loops: a session must die on its own loop.
  net::post(owner.loop->io, [this, &from, w = owner.session, why = std::move(why),
                             then = std::move(then)]() mutable {
    if (auto s = w.lock()) Displace(s, why);
    if (then) net::post(from.io, std::move(then));
  });
}

void Server::Impl::OnRequest(Loop& loop, std::span<const uint8_t> bytes,
                             const udp::endpoint& peer) {
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
  {
    // A request from the address and port of a running transfer: if that
    // client has ended it (an ERROR after a tsize probe, then a new request
    // from the same port, as some PXE ROMs do), the ERROR may still wait in
    // the transfer's socket. Read it first, so the new request is not taken
    // for a repeat. Such a request reaches the loop of that transfer, the
    // kernel choosing the listening socket by address and port.
    std::optional<Owner> running;
    {
      std::lock_guard lock(mu);
      if (auto it = by_peer.find(peer); it != by_peer.end()) running = by_id.at(it->second);
    }
    if (running && running->loop == &loop)
      if (auto old = running->session.lock()) Drain(old);
  }
  auto s = std::make_shared<Session>(loop, peer);
  s->started = Clock::now();
  // Admission comes before the lookup and the Transfer (which reads a whole
  // netascii file): a refused request costs nothing but its answer. The
  // slot is taken at once, under the same lock as the decision.
  Admission::Decision d;
  std::optional<Owner> victim;
  size_t running = 0, from_client = 0;
  {
    std::lock_guard lock(mu);
    if (by_peer.count(peer)) {
      // The client repeated its request before our answer arrived; the
      // transfer already running retransmits on its own timer.
      ++duplicates;
      return;
    }
    ++requests;
    d = admission.Decide(s->client);
    if (d.verdict == Admission::Verdict::kClientFull ||
        d.verdict == Admission::Verdict::kServerFull) {
      running = by_peer.size();
      from_client = admission.CountFor(s->client);
    } else {
      if (d.displace && (victim = Unregister(*d.displace))) ++displaced;
      s->id = next_id++;
      by_peer.emplace(peer, s->id);
      by_id.emplace(s->id, Owner{&loop, s, peer});
      admission.Add(s->id, s->client);
      s->registered = true;
      ++active;
    }
  }
  if (!s->registered) {
    const bool share = d.verdict == Admission::Verdict::kClientFull;
    ++(share ? client_busy : busy);
    ++failed;
    ReplyFromListener(loop, peer, ErrorCode::kNotDefined, "server busy, try again");
    uint64_t n = 0;
    if (Allow(busy_log, n))
      log->warn(
          "busy: refused {} request(s) in 10 s, the last {} from {} ({} transfers running, "
          "{} from that address)",
          n, EscapeForLog(req->filename), s->client, running, from_client);
    return;
  }
  if (victim) EndDisplaced(loop, *victim, "displaced by a newer request before any ACK");

  auto tree = trees && IsPrintableAscii(req->filename) ? trees(s->client) : nullptr;
  vfs::SourcePtr source = tree ? tree->Lookup(req->filename) : nullptr;
  s->transfer = std::make_unique<Transfer>(*req, std::move(source), config.transfer, s->started);
  Open(s, true);
}

void Server::Impl::Open(const std::shared_ptr<Session>& s, bool may_displace) {
  if (!may_displace && s->transfer->finished()) return;  // displaced while it waited
  error_code ec = OpenTransferSocket(*s);
  if (ec && may_displace && OutOfDescriptors(ec) && !s->transfer->finished()) {
    // No descriptor left: one that a never-acknowledged transfer holds is
    // better spent on this request.
    std::optional<Owner> victim;
    {
      std::lock_guard lock(mu);
      auto oldest = admission.OldestUnacknowledged();
      if (oldest && *oldest == s->id) oldest.reset();  // the oldest may be this one
      if (oldest && (victim = Unregister(*oldest))) ++displaced;
    }
    if (victim) {
      // Try again once the victim's socket is closed (on its own loop).
      // Meanwhile this loop holds the session: only weak references cross.
      Loop& loop = s->loop;
      loop.waiting.emplace(s->id, s);
      EndDisplaced(loop, *victim, "its descriptor went to a newer request",
                   [this, &loop, id = s->id] {
                     auto it = loop.waiting.find(id);
                     if (it == loop.waiting.end()) return;
                     auto waiting = std::move(it->second);
                     loop.waiting.erase(it);
                     Open(waiting, false);
                   });
      return;
    }
  }
  Begin(s, ec);
}

void Server::Impl::Begin(const std::shared_ptr<Session>& s, error_code ec) {
  if (ec) {
    ++no_socket;
    error_code ignored;
    const uint16_t port = s->loop.listener.local_endpoint(ignored).port();
    if (s->transfer->finished()) {
      // An immediate answer (not found, WRQ): it can come from port 69.
      for (const auto& p : s->transfer->output()) {
        error_code ignored;
        s->loop.listener.send_to(net::buffer(p), s->peer, 0, ignored);
      }
    } else {
      s->transfer->Abandon("no transfer socket: " + ec.message());
      ReplyFromListener(s->loop, s->peer, ErrorCode::kNotDefined,
                        "server out of resources, try again");
    }
    uint64_t n = 0;
    if (Allow(no_socket_log, n))
      log->warn(
          "cannot open a transfer socket ({}): answered {} request(s) in 10 s from port "
          "{} instead, the last from {}",
          ec.message(), n, port, s->client);
    Finish(s);
    return;
  }
  SendOutput(*s);
  if (s->transfer->finished()) {
    Finish(s);
    return;
  }
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
  // Wait for readability, then drain with recvmmsg: one system call per
  // wake-up where async_receive costs two (its speculative read before
  // waiting almost always finds nothing, the client not having had the DATA
  // yet). Safe with Asio's edge-triggered epoll: this loop's thread is the
  // only one waiting in epoll, and the wait is queued again before it does;
  // a datagram arriving after a short batch raises a new edge.
  if (s->read_pending) return;  // one wait at a time (Drain also runs from OnRequest)
  s->read_pending = true;
  s->socket.async_wait(udp::socket::wait_read, [this, s](error_code ec) {
    s->read_pending = false;
    if (ec == net::error::operation_aborted || !s->socket.is_open()) return;
    Drain(s);
  });
}

void Server::Impl::Drain(const std::shared_ptr<Session>& s) {
  if (!s->socket.is_open()) return;
  Loop& loop = s->loop;
  error_code ec;
  // Bounded, so that a flood on one transfer port leaves the others their turn.
  for (int round = 0; round < 16; ++round) {
    std::array<mmsghdr, Loop::kBatch> msgs{};
    std::array<iovec, Loop::kBatch> iov{};
    for (size_t i = 0; i < Loop::kBatch; ++i) {
      iov[i] = {loop.batch[i].data(), loop.batch[i].size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(s->socket.native_handle(), msgs.data(), Loop::kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      ec = error_code(errno, boost::system::system_category());
    if (ec) {
      // Typically ECONNREFUSED (ICMP port unreachable: the client is gone).
      // Waiting again on an error that persists would spin, so any error ends it.
      s->transfer->Abandon("receive failed: " + ec.message());
      Finish(s);
      return;
    }
    for (int i = 0; i < n; ++i) {
      OnPacket(s, std::span<const uint8_t>(loop.batch[i].data(), msgs[i].msg_len));
      if (s->transfer->finished()) return;  // Finished in OnPacket
    }
    // A short batch emptied the queue: the next datagram raises a new edge.
    if (n < static_cast<int>(Loop::kBatch)) {
      Receive(s);
      return;
    }
  }
  // Still more queued, and no new edge may come for it: read on, after the others.
  net::post(loop.io, [this, s] { Drain(s); });
}

void Server::Impl::OnPacket(const std::shared_ptr<Session>& s, std::span<const uint8_t> bytes) {
  auto packet = Parse(bytes);
  if (!packet) {
    ++bad_packets;
    if (Debug())
      log->debug("dropped from {}: {}", s->peer.address().to_string(), packet.error().message);
    return;
  }
  if (Debug())
    log->debug("{}:{} -> {}", s->peer.address().to_string(), s->peer.port(), Describe(*packet));
  s->transfer->OnPacket(*packet, Clock::now());
  if (!s->reported_acked && s->transfer->acknowledged()) {
    s->reported_acked = true;
    std::lock_guard lock(mu);
    admission.Acknowledged(s->id);  // nothing if it was displaced meanwhile
  }
  SendOutput(*s);
  if (s->transfer->finished()) {
    Finish(s);
    return;
  }
  if (s->transfer->output().size() > 0) ArmTimer(s);  // progress: new deadline
}

void Server::Impl::ArmTimer(const std::shared_ptr<Session>& s) {
  TimePoint due = *s->transfer->deadline();
  if (s->timer_pending && s->timer_at <= due) return;  // it fires first and re-arms
  s->timer_at = due;
  s->timer_pending = true;
  const uint64_t seq = ++s->timer_seq;
  s->timer.expires_at(due);  // cancels a later wait, whose handler then does nothing
  s->timer.async_wait([this, s, seq](error_code ec) {
    if (ec == net::error::operation_aborted || seq != s->timer_seq) return;
    s->timer_pending = false;
    if (!s->socket.is_open() || s->transfer->finished()) return;
    TimePoint now = Clock::now();
    if (now < *s->transfer->deadline()) {  // the deadline moved on since
      ArmTimer(s);
      return;
    }
    s->transfer->OnTimer(now);
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
  if (s->registered) {
    s->registered = false;
    std::lock_guard lock(mu);
    Unregister(s->id);  // nothing if it was displaced from another loop
  }
  error_code ec;
  ++s->timer_seq;
  s->timer_pending = false;
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
