#include "nbd/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/log_throttle.h"
#include "nbd/allocation.h"
#include "nbd/tls.h"

namespace isoboot::nbd {
namespace {

using Clock = std::chrono::steady_clock;

std::system_error SysError(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

std::string PeerAddress(const sockaddr_storage& ss, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    *port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    *port = ntohs(in6->sin6_port);
  }
  return buf;
}

void SetTimeout(int fd, int option, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

}  // namespace

struct Server::Counters {
  std::atomic<uint64_t> connections{0}, active{0}, refused_full{0}, refused_per_client{0},
      handshake_failures{0}, handshake_timeouts{0}, bad_options{0}, bad_requests{0},
      protocol_errors{0}, requests{0}, bytes_read{0}, read_errors{0}, accept_errors{0},
      tls_sessions{0}, tls_handshake_failures{0};
  std::mutex log_mu;
  LogThrottle refused_log, bad_log;  // guarded by log_mu
};

// One client's connection, on its own thread.
class Server::Connection {
 public:
  Connection(Server& server, int fd, std::string peer)
      : s_(server), fd_(fd), peer_(std::move(peer)) {}

  void Run() {
    int index = Handshake();
    if (index < 0) return;
    const Export& e = s_.exports_[index];
    // The source is taken once, at the end of the handshake: the connection
    // reads the same bytes to its end.
    vfs::SourcePtr source = e.current ? e.current() : e.source;
    if (!source || source->size() != e.source->size()) source = e.source;
    Transmit(e, *source);
    if (tls_) tls_->Close();
  }

 private:
  enum class ReadStatus {
    kOk,
    kEof,
    kPartial,
    kTimeout,
    kError
  };

  // Reads exactly n bytes (through a small buffer, so pipelined request
  // headers cost one recv for several). With a deadline, waits at most
  // until then in all.
  ReadStatus ReadExact(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      if (buf_pos_ < buf_len_) {
        size_t take = std::min(n - got, buf_len_ - buf_pos_);
        std::copy_n(buf_ + buf_pos_, take, dst + got);
        buf_pos_ += take;
        got += take;
        continue;
      }
      const bool direct = n - got >= sizeof buf_;
      size_t r = 0;
      ReadStatus st = ReadSome(direct ? dst + got : buf_, direct ? n - got : sizeof buf_, &r);
      if (st == ReadStatus::kEof) return got == 0 ? ReadStatus::kEof : ReadStatus::kPartial;
      if (st != ReadStatus::kOk) return st;
      if (direct) {
        got += r;
      } else {
        buf_pos_ = 0;
        buf_len_ = r;
      }
    }
    return ReadStatus::kOk;
  }

  // The connection's stream: at least one byte (*got), from TLS once it is
  // started, else from the socket; with a deadline, waits at most until
  // then.
  ReadStatus ReadSome(uint8_t* dst, size_t n, size_t* got) {
    if (tls_) return FromTls(tls_->Read(dst, n, got, deadline_));
    for (;;) {
      if (deadline_) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now());
        if (left.count() <= 0) return ReadStatus::kTimeout;
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000)));
        if (r == 0) continue;  // loop re-checks the deadline
        if (r < 0 && errno != EINTR) return ReadStatus::kError;
        if (r < 0) continue;
      }
      ssize_t r = ::recv(fd_, dst, n, 0);
      if (r == 0) return ReadStatus::kEof;
      if (r < 0) {
        if (errno == EINTR) continue;
        return ReadStatus::kError;
      }
      *got = static_cast<size_t>(r);
      return ReadStatus::kOk;
    }
  }

  static ReadStatus FromTls(TlsStream::Status st) {
    switch (st) {
      case TlsStream::Status::kOk:
        return ReadStatus::kOk;
      case TlsStream::Status::kEof:
        return ReadStatus::kEof;
      case TlsStream::Status::kTimeout:
        return ReadStatus::kTimeout;
      case TlsStream::Status::kError:
        break;
    }
    return ReadStatus::kError;
  }

  // Reads and drops n bytes (a write's payload).
  ReadStatus Skip(uint64_t n) {
    uint8_t sink[4096];
    while (n > 0) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, sizeof sink));
      if (ReadStatus st = ReadExact(sink, take); st != ReadStatus::kOk) return st;
      n -= take;
    }
    return ReadStatus::kOk;
  }

  bool SendAll(const uint8_t* data, size_t n, bool more) {
    if (tls_) return tls_->Write(data, n) == TlsStream::Status::kOk;
    while (n > 0) {
      ssize_t r = ::send(fd_, data, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
      if (r < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  bool SendAll(const std::vector<uint8_t>& v, bool more = false) {
    return SendAll(v.data(), v.size(), more);
  }

  template <typename... Args>
  void Bad(std::atomic<uint64_t>& counter, fmt::format_string<Args...> f, Args&&... args) {
    counter++;
    uint64_t events = 0;
    {
      std::lock_guard lock(s_.counters_->log_mu);
      if (!s_.counters_->bad_log.Allow(events)) return;
    }
    s_.log_->warn("nbd: {}: {} ({} refusal(s) in 10 s)", peer_,
                  fmt::format(f, std::forward<Args>(args)...), events);
  }

  void ReadFailed(ReadStatus st, const char* what) {
    Counters& c = *s_.counters_;
    switch (st) {
      case ReadStatus::kTimeout:
        Bad(c.handshake_timeouts, "handshake not done in {} ms ({})",
            s_.options_.handshake_timeout.count(), what);
        break;
      case ReadStatus::kEof:
      case ReadStatus::kPartial:
      case ReadStatus::kError:
        Bad(c.handshake_failures, "connection ended during the handshake ({})", what);
        break;
      case ReadStatus::kOk:
        break;
    }
  }

  // The fixed newstyle handshake; the chosen export's index, or -1.
  int Handshake() {
    Counters& c = *s_.counters_;
    deadline_ = Clock::now() + s_.options_.handshake_timeout;
    std::vector<uint8_t> out;
    AppendGreeting(kFlagFixedNewstyle | kFlagNoZeroes, out);
    if (!SendAll(out)) return -1;
    uint8_t flags_bytes[kClientFlagsSize];
    if (ReadStatus st = ReadExact(flags_bytes, sizeof flags_bytes); st != ReadStatus::kOk) {
      ReadFailed(st, "client flags");
      return -1;
    }
    auto flags = ParseClientFlags(flags_bytes);
    if (!flags) {
      Bad(c.handshake_failures, "{}", flags.error().message);
      return -1;
    }
    nbd::Handshake hs(s_.infos_, s_.options_.limits, s_.options_.tls);
    hs.SetClientFlags(*flags);
    std::vector<uint8_t> data;
    for (;;) {
      uint8_t header_bytes[kOptionHeaderSize];
      if (ReadStatus st = ReadExact(header_bytes, sizeof header_bytes); st != ReadStatus::kOk) {
        ReadFailed(st, "option header");
        return -1;
      }
      auto header = ParseOptionHeader(header_bytes);
      if (!header) {
        Bad(c.bad_options, "{}", header.error().message);
        return -1;
      }
      nbd::Handshake::Step step;
      if (header->length > s_.options_.limits.max_option_length) {
        step = hs.TooLong(*header);
      } else {
        data.resize(header->length);
        if (ReadStatus st = ReadExact(data.data(), data.size()); st != ReadStatus::kOk) {
          ReadFailed(st, "option data");
          return -1;
        }
        step = hs.OnOption(header->option, data);
      }
      if (step.bad) {
        Bad(c.bad_options, "{}", step.note);
      } else if (!step.note.empty()) {
        s_.log_->debug("nbd: {}: {}", peer_, step.note);
      }
      if (!step.reply.empty() && !SendAll(step.reply)) return -1;
      switch (step.next) {
        case nbd::Handshake::Next::kContinue:
          continue;
        case nbd::Handshake::Next::kClose:
          return -1;
        case nbd::Handshake::Next::kStartTls:
          if (!StartTls()) return -1;
          hs.TlsStarted();
          continue;
        case nbd::Handshake::Next::kTransmit:
          structured_ = hs.structured();
          block_status_ = hs.block_status();
          deadline_.reset();
          return step.export_index;
      }
    }
  }

  // After NBD_REP_ACK to NBD_OPT_STARTTLS: the TLS handshake, within the
  // handshake's deadline. False (logged, counted) when it fails.
  bool StartTls() {
    Counters& c = *s_.counters_;
    if (buf_pos_ < buf_len_) {
      // The client sent more before our ACK: those bytes would be taken for
      // TLS records, or lost. proto.md has the client wait for the reply.
      Bad(c.tls_handshake_failures, "data after NBD_OPT_STARTTLS before the reply");
      return false;
    }
    tls_ = std::make_unique<TlsStream>(*s_.options_.tls_context, fd_, s_.options_.send_timeout);
    if (tls_->Accept(deadline_) != TlsStream::Status::kOk) {
      Bad(c.tls_handshake_failures, "TLS handshake failed ({})", tls_->error());
      return false;
    }
    c.tls_sessions++;
    s_.log_->debug("nbd: {}: TLS started ({})", peer_, tls_->Describe());
    return true;
  }

  void Transmit(const Export& e, const vfs::Source& source) {
    Counters& c = *s_.counters_;
    const uint64_t size = source.size();
    s_.log_->info("nbd: {} reads export '{}' ({} bytes, {} replies{})", peer_, e.name, size,
                  structured_ ? "structured" : "simple",
                  tls_ ? ", " + tls_->Describe() : std::string());
    uint64_t requests = 0, bytes = 0;
    std::vector<uint8_t> out;
    const char* end = "closed";
    for (;;) {
      uint8_t header[kRequestSize];
      ReadStatus st = ReadExact(header, sizeof header);
      if (st == ReadStatus::kEof) break;
      if (st != ReadStatus::kOk) {
        if (st == ReadStatus::kPartial) Bad(c.protocol_errors, "connection ended mid-request");
        end = "lost";
        break;
      }
      auto q = ParseRequest(header);
      if (!q) {
        Bad(c.protocol_errors, "{}", q.error().message);
        end = "dropped";
        break;
      }
      Decision d = Decide(*q, size, s_.options_.limits, block_status_);
      if (d.kind == Decision::Kind::kDisconnect) {
        if (d.bad) Bad(c.protocol_errors, "{}", d.note);
        end = d.bad ? "dropped" : "disconnected";
        break;
      }
      c.requests++;
      requests++;
      s_.log_->trace("nbd: {}: {} at {} for {}", peer_, CommandName(q->type), q->offset, q->length);
      out.clear();
      if (d.kind == Decision::Kind::kRead) {
        if (!SendRead(source, *q)) {
          end = "lost mid-read";
          break;
        }
        bytes += q->length;
        c.bytes_read += q->length;
        continue;
      }
      if (d.kind == Decision::Kind::kBlockStatus) {
        if (!SendBlockStatus(source, *q)) {
          end = "lost";
          break;
        }
        continue;
      }
      if (d.kind == Decision::Kind::kError) {
        Bad(c.bad_requests, "{}", d.note);
        if (d.skip > 0 && Skip(d.skip) != ReadStatus::kOk) {
          end = "lost";
          break;
        }
        if (structured_ && (q->type == kCmdRead || q->type == kCmdBlockStatus)) {
          AppendErrorChunk(q->cookie, d.error, d.note, out);
        } else {
          AppendSimpleReply(d.error, q->cookie, out);
        }
      } else {
        AppendSimpleReply(0, q->cookie, out);
      }
      if (!SendAll(out)) {
        end = "lost";
        break;
      }
    }
    s_.log_->info("nbd: {} {} export '{}' after {} requests, {} bytes", peer_, end, e.name,
                  requests, bytes);
  }

  // The reply header, then the data: sendfile from the file where the
  // source is one, else the source's Read through a bounded buffer. The
  // header promised the data, so a failure past it closes the connection.
  bool SendRead(const vfs::Source& source, const Request& q) {
    std::vector<uint8_t> header;
    if (structured_) {
      AppendOffsetDataHeader(q.cookie, kReplyFlagDone, q.offset, q.length, header);
    } else {
      AppendSimpleReply(0, q.cookie, header);
    }
    if (tls_) return SendReadBuffered(source, q, header);
    if (!SendAll(header, true)) return false;
    uint64_t pos = q.offset, left = q.length;
    while (left > 0) {
      if (auto span = source.Contiguous(pos); span && span->length > 0) {
        uint64_t n = std::min(left, span->length);
        auto off = static_cast<off_t>(span->file_offset);
        while (n > 0) {
          ssize_t r = ::sendfile(fd_, span->fd, &off, static_cast<size_t>(n));
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) {
            if (r == 0) s_.counters_->read_errors++;  // the file shrank
            return false;
          }
          n -= static_cast<uint64_t>(r);
          left -= static_cast<uint64_t>(r);
          pos += static_cast<uint64_t>(r);
        }
        continue;
      }
      if (!copy_buf_) copy_buf_ = std::make_unique<uint8_t[]>(kCopyBuffer);
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, kCopyBuffer));
      auto got = source.Read(pos, {copy_buf_.get(), want});
      if (!got || *got == 0) {
        s_.counters_->read_errors++;
        s_.log_->error("nbd: {}: export at {}: {}", peer_, pos,
                       got ? "short read" : got.error().message);
        return false;
      }
      if (!SendAll(copy_buf_.get(), *got, *got < left)) return false;
      left -= *got;
      pos += *got;
    }
    return true;
  }

  // base:allocation for the request's range: one NBD_REPLY_TYPE_BLOCK_STATUS
  // chunk, at most limits.max_extents descriptors (Decide checked the range).
  bool SendBlockStatus(const vfs::Source& source, const Request& q) {
    const size_t most = s_.options_.limits.max_extents;
    std::vector<AllocationRun> runs = FindAllocation(source, q.offset, q.length, most);
    std::vector<BlockDescriptor> descriptors = BlockStatusDescriptors(q, runs, most);
    std::vector<uint8_t> out;
    AppendBlockStatusChunk(q.cookie, kBaseAllocationId, descriptors, out);
    return SendAll(out);
  }

  // TLS: no sendfile. The data is read into a bounded buffer, the header in
  // front of its first part (one TLS record fewer per read), and written.
  bool SendReadBuffered(const vfs::Source& source, const Request& q,
                        const std::vector<uint8_t>& header) {
    if (!copy_buf_) copy_buf_ = std::make_unique<uint8_t[]>(kCopyBuffer);
    std::copy(header.begin(), header.end(), copy_buf_.get());
    size_t used = header.size();
    uint64_t pos = q.offset, left = q.length;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, kCopyBuffer - used));
      auto got = source.Read(pos, {copy_buf_.get() + used, want});
      if (!got || *got == 0) {
        s_.counters_->read_errors++;
        s_.log_->error("nbd: {}: export at {}: {}", peer_, pos,
                       got ? "short read" : got.error().message);
        return false;
      }
      if (!SendAll(copy_buf_.get(), used + *got, false)) return false;
      used = 0;
      left -= *got;
      pos += *got;
    }
    return true;
  }

  static constexpr size_t kCopyBuffer = 128 * 1024;

  Server& s_;
  const int fd_;
  const std::string peer_;
  std::optional<Clock::time_point> deadline_;
  bool structured_ = false;
  bool block_status_ = false;  // base:allocation selected for this export
  uint8_t buf_[4096];
  size_t buf_pos_ = 0, buf_len_ = 0;
  std::unique_ptr<uint8_t[]> copy_buf_;  // sources that are not files, and TLS
  std::unique_ptr<TlsStream> tls_;       // after NBD_OPT_STARTTLS
};

Server::Server(std::vector<Export> exports, ServerOptions options, Logger logger)
    : exports_(std::move(exports)),
      options_(std::move(options)),
      log_(std::move(logger)),
      counters_(std::make_unique<Counters>()) {
  if (exports_.empty()) throw std::invalid_argument("nbd: no exports");
  if (options_.tls != TlsMode::kOff && !options_.tls_context) {
    throw std::invalid_argument("nbd: TLS on without credentials");
  }
  for (const Export& e : exports_) {
    if (!e.source) throw std::invalid_argument("nbd: export '" + e.name + "' has no source");
    if (e.name.size() > kMaxString) throw std::invalid_argument("nbd: export name too long");
    for (const ExportInfo& i : infos_) {
      if (i.name == e.name) throw std::invalid_argument("nbd: export '" + e.name + "' twice");
    }
    infos_.push_back({e.name, e.description, e.source->size()});
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(options_.port);
  if (int rc = ::getaddrinfo(options_.address.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "nbd: bad address " + options_.address + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  listen_fd_.Reset(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) throw SysError("nbd: socket");
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), res->ai_addr, res->ai_addrlen) != 0) {
    throw SysError(fmt::format("nbd: bind {} port {}", options_.address, options_.port));
  }
  if (::listen(listen_fd_.get(), 1024) != 0) throw SysError("nbd: listen");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  PeerAddress(ss, &port_);
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) throw SysError("nbd: eventfd");
}

Server::~Server() = default;

void Server::Stop() {
  stop_ = true;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);
}

ServerStats Server::Stats() const {
  const Counters& c = *counters_;
  ServerStats s;
  s.connections = c.connections;
  s.active = c.active;
  s.refused_full = c.refused_full;
  s.refused_per_client = c.refused_per_client;
  s.handshake_failures = c.handshake_failures;
  s.handshake_timeouts = c.handshake_timeouts;
  s.bad_options = c.bad_options;
  s.bad_requests = c.bad_requests;
  s.protocol_errors = c.protocol_errors;
  s.requests = c.requests;
  s.bytes_read = c.bytes_read;
  s.read_errors = c.read_errors;
  s.accept_errors = c.accept_errors;
  s.tls_sessions = c.tls_sessions;
  s.tls_handshake_failures = c.tls_handshake_failures;
  return s;
}

bool Server::Admit(const std::string& client) {
  std::lock_guard lock(mu_);
  size_t& n = per_client_[client];
  if (n >= options_.max_connections_per_client) return false;
  n++;
  return true;
}

void Server::Release(const std::string& client) {
  auto it = per_client_.find(client);  // mu_ held by the caller
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

void Server::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : finished_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& t : done)
    t.join();
}

void Server::Serve(UniqueFd fd, std::string ip, std::string peer, uint64_t id) {
  {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SetTimeout(fd.get(), SO_SNDTIMEO, options_.send_timeout);
    if (options_.on_connect) options_.on_connect(ip);
    Connection(*this, fd.get(), std::move(peer)).Run();
  }
  std::lock_guard lock(mu_);
  open_sockets_.erase(id);  // before the close: Run() may shut it down
  fd.Reset();
  counters_->active--;
  Release(ip);
  finished_.push_back(id);
}

void Server::Run() {
  Counters& c = *counters_;
  uint64_t next_id = 0;
  while (!stop_) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, 1000);
    ReapFinished();
    if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    UniqueFd fd(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;
      c.accept_errors++;
      log_->warn("nbd: accept: {}", std::strerror(errno));
      ::usleep(100'000);  // EMFILE and the like: let connections end
      continue;
    }
    uint16_t peer_port = 0;
    std::string ip = PeerAddress(ss, &peer_port);
    const char* refused = nullptr;
    if (c.active >= options_.max_connections) {
      c.refused_full++;
      refused = "max connections open";
    } else if (!Admit(ip)) {
      c.refused_per_client++;
      refused = "its connection share open";
    }
    if (refused) {
      uint64_t events = 0;
      std::lock_guard lock(c.log_mu);
      if (c.refused_log.Allow(events)) {
        log_->warn("nbd: refused {} ({}; {} refusal(s) in 10 s)", ip, refused, events);
      }
      continue;
    }
    c.connections++;
    c.active++;
    std::string peer = ip.find(':') == std::string::npos ? fmt::format("{}:{}", ip, peer_port)
                                                         : fmt::format("[{}]:{}", ip, peer_port);
    std::lock_guard lock(mu_);
    uint64_t id = next_id++;
    open_sockets_[id] = fd.get();
    threads_[id] = std::thread(&Server::Serve, this, std::move(fd), ip, peer, id);
  }
  // Stop: end every connection (a thread blocked in recv or sendfile wakes
  // on the shutdown), then join them all.
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, fd] : open_sockets_)
      ::shutdown(fd, SHUT_RDWR);
  }
  for (;;) {
    std::map<uint64_t, std::thread> left;
    {
      std::lock_guard lock(mu_);
      left.swap(threads_);
      finished_.clear();
    }
    if (left.empty()) break;
    for (auto& [id, t] : left)
      t.join();
  }
}

}  // namespace isoboot::nbd
