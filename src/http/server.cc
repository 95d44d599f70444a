#include "http/server.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/log_throttle.h"
#include "base/strings.h"
#include "http/date.h"
#include "http/range.h"
#include "http/response.h"

namespace isoboot::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

class ServerCore {
 public:
  ServerCore(Server::TreeProvider tree, ServerOptions options, Logger logger)
      : tree(std::move(tree)),
        options(std::move(options)),
        log(std::move(logger)),
        boundary_salt(std::random_device{}()),
        acceptor(ioc),
        retry_timer(ioc) {
    for (unsigned i = 1; i < this->options.threads; ++i)
      extra_loops.push_back(std::make_unique<net::io_context>(1));
  }

  void Listen();
  void Accept();

  void AddBytes(const std::string& ip, uint64_t n) {
    std::lock_guard lock(mu);
    counters[ip].body_bytes += n;
  }
  // Counts a new connection from `ip` unless its share is taken.
  bool AdmitConnection(const std::string& ip) {
    std::lock_guard lock(mu);
    if (counters.size() >= kMaxClientsKept && !counters.contains(ip)) ForgetIdleClients();
    ClientCounters& c = counters[ip];
    if (c.connections >= options.max_connections_per_client) return false;
    c.connections++;
    return true;
  }
  // The counters are keyed by whoever connects: past kMaxClientsKept
  // addresses, those with no connection open are forgotten (their counts are
  // for tests and statistics only). At most max_connections addresses have
  // one open, so this runs once per that many new addresses or fewer.
  static constexpr size_t kMaxClientsKept = 8192;
  void ForgetIdleClients() {
    std::erase_if(counters, [](const auto& entry) { return entry.second.connections == 0; });
  }
  void DropConnection(const std::string& ip) {
    std::lock_guard lock(mu);
    counters[ip].connections--;
  }
  // For the accept loop (which runs on one thread): base/log_throttle.h.
  template <typename... Args>
  void ThrottledWarn(LogThrottle& t, fmt::format_string<Args...> f, Args&&... args) {
    uint64_t events = 0;
    if (!t.Allow(events)) return;
    log->warn("http: {} ({} time(s) in 10 s)", fmt::format(f, std::forward<Args>(args)...), events);
  }
  void Finished(const RequestRecord& record) {
    {
      std::lock_guard lock(mu);
      counters[record.client].requests++;
    }
    log->debug("{} {} {} -> {} ({} of {} bytes, {:.3f} s)", record.client,
               EscapeForLog(record.method), EscapeForLog(record.path), record.status, record.bytes,
               record.content_length, record.seconds);
    if (options.on_request) options.on_request(record);
  }
  std::string NextBoundary() {
    return fmt::format("isoboot-{:08x}{:016x}", boundary_salt, boundary_seq.fetch_add(1));
  }

  // Declared before ioc: connections destroyed with the io_context still
  // update the counters.
  const Server::TreeProvider tree;
  const ServerOptions options;
  const Logger log;
  mutable std::mutex mu;
  std::map<std::string, ClientCounters, std::less<>> counters;
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> accept_errors{0}, refused_full{0}, refused_per_client{0};
  LogThrottle accept_log, full_log, share_log;
  std::atomic<uint64_t> boundary_seq{0};
  const uint32_t boundary_salt;
  // ioc runs on the thread that called Run() and holds the acceptor; each
  // further thread runs an io_context of its own. Accepted connections go to
  // the loops in turn, so a connection's handlers always run on one thread
  // (no strand) and the loops share no scheduler lock. The extra loops are
  // declared first so they outlive ioc: a pending accept, destroyed with
  // ioc, holds a socket of the loop it was meant for.
  std::vector<std::unique_ptr<net::io_context>> extra_loops;
  net::io_context ioc;
  size_t next_loop = 0;
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;

  net::io_context& NextLoop() {
    size_t i = next_loop++ % (extra_loops.size() + 1);
    return i == 0 ? ioc : *extra_loops[i - 1];
  }
};

namespace {

std::string_view Sv(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

// One client connection: read a request head, plan, send, repeat while
// keep-alive. All handlers run on the one thread of the connection's loop.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& core, tcp::socket socket, std::string ip)
      : core_(core),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(std::max<size_t>(2 * core.options.header_limit, 16 * 1024)),
        ip_(std::move(ip)) {}
  // Accept counted the connection (ServerCore::AdmitConnection).
  ~Connection() {
    if (in_response_) Report(false);
    core_.DropConnection(ip_);
    core_.connections--;
  }

  void Start() {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.native_non_blocking(true, ec);  // sendfile below must never block the loop
    ReadRequest();
  }

 private:
  // The timer fires at deadline_; moving the deadline later is just a store,
  // so progress while sending costs no timer operations.
  void SetDeadline(Clock::duration d) {
    deadline_ = Clock::now() + d;
    if (timer_waiting_ && timer_.expiry() <= deadline_) return;
    timer_.expires_at(deadline_);
    timer_waiting_ = true;
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->OnTimer(ec); });
  }
  void OnTimer(error_code ec) {
    if (ec == net::error::operation_aborted || closed_) return;
    timer_waiting_ = false;
    if (Clock::now() < deadline_) return SetDeadline(deadline_ - Clock::now());
    timed_out_ = true;
    core_.log->debug("{}: timed out, closing", ip_);
    Close();
  }

  void ReadRequest() {
    body_parser_.reset();
    received_ = 0;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(core_.options.header_limit));
    // No limit: bodies are read by the store only (or not at all). Not
    // boost::none, which Beast 1.74 compares as a limit of 0 here.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    SetDeadline(core_.options.request_timeout);
    // Only the head is read: GET and HEAD have no body, and a request that
    // comes with one is answered and the connection closed (see OnRead).
    bhttp::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(error_code ec) {
    if (ec) {
      static const auto& http_category =
          bhttp::make_error_code(bhttp::error::bad_method).category();
      if (timed_out_ || closed_ || ec == bhttp::error::end_of_stream ||
          ec == bhttp::error::partial_message || ec.category() != http_category) {
        return Close();
      }
      method_ = "-";
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        return Respond(ErrorResponse(431, "request header fields too large"));
      }
      return Respond(ErrorResponse(400, fmt::format("bad request: {}", ec.message())));
    }
    const auto& req = parser_->get();
    RequestHead head;
    method_ = std::string(Sv(req.method_string()));
    head.method = method_;
    head.target = Sv(req.target());
    head.version = req.version();
    head.has_host = req.count(bhttp::field::host) == 1;
    // Range and If-Range are singletons; several of them are ignored.
    if (req.count(bhttp::field::range) == 1) head.range = Sv(req[bhttp::field::range]);
    if (req.count(bhttp::field::if_range) == 1) head.if_range = Sv(req[bhttp::field::if_range]);
    keep_alive_ = req.keep_alive();
    http10_ = req.version() < 11;
    if (core_.options.store) {
      auto path = DecodeTarget(head.target);
      if (path && path->starts_with(core_.options.store_prefix)) {
        return OnStoreRequest(head, std::move(*path));
      }
    }
    std::shared_ptr<const vfs::Tree> tree = core_.tree ? core_.tree(ip_) : nullptr;
    PageFor pages;
    if (core_.options.pages) {
      size_t q = head.target.find('?');
      std::string query(q == std::string_view::npos ? "" : head.target.substr(q + 1));
      pages = [this, query = std::move(query)](const std::string& path) {
        return core_.options.pages(path, query, ip_);
      };
    }
    ResponsePlan plan = PlanResponse(head, tree.get(), core_.NextBoundary(), pages);
    // A body we would have to read and discard: answer, then close.
    if (!parser_->is_done()) plan.close = true;
    Respond(std::move(plan));
  }

  // --- the store (http/store.h) ---

  static ResponsePlan ReplyPlan(const StoreReply& reply, bool head_only, bool close) {
    ResponsePlan plan = ErrorResponse(reply.status, reply.message, head_only, close);
    for (const auto& field : reply.fields)
      plan.fields.push_back(field);
    return plan;
  }

  void OnStoreRequest(const RequestHead& head, std::string path) {
    const auto& req = parser_->get();
    StoreRequest sr;
    sr.method = method_;
    sr.name = path.substr(core_.options.store_prefix.size());
    if (size_t q = head.target.find('?'); q != std::string_view::npos) {
      sr.query = head.target.substr(q + 1);
    }
    if (req.count(bhttp::field::authorization) == 1) {
      sr.authorization = Sv(req[bhttp::field::authorization]);
    }
    sr.client = ip_;
    if (auto n = parser_->content_length()) sr.content_length = *n;
    const bool body_unread = !parser_->is_done();
    const bool head_only = method_ == "HEAD";

    if (method_ == "GET" || head_only) {
      auto got = core_.options.store->Get(sr);
      ResponsePlan plan;
      if (auto* reply = std::get_if<StoreReply>(&got)) {
        plan = ReplyPlan(*reply, head_only, body_unread);
      } else {
        vfs::Tree one;  // the tree's planning gives ranges and validators
        one.Add(vfs::NormalizeClientPath(path), std::get<vfs::SourcePtr>(got));
        plan = PlanResponse(head, &one, core_.NextBoundary());
        if (body_unread) plan.close = true;
      }
      plan.path = std::move(path);
      return Respond(std::move(plan));
    }
    if (method_ != "PUT") {
      ResponsePlan plan = ErrorResponse(405, "method not allowed", false, body_unread);
      plan.fields.emplace_back("Allow", "GET, HEAD, PUT");
      plan.path = std::move(path);
      return Respond(std::move(plan));
    }
    auto got = core_.options.store->Put(sr);
    if (auto* reply = std::get_if<StoreReply>(&got)) {
      // Refused before any body byte was read: say so and close, so the
      // client does not have to send what nobody will keep.
      ResponsePlan plan = ReplyPlan(*reply, false, body_unread);
      plan.path = std::move(path);
      return Respond(std::move(plan));
    }
    upload_ = std::move(std::get<std::unique_ptr<Upload>>(got));
    upload_path_ = std::move(path);
    const bool expect_continue = req.count(bhttp::field::expect) == 1 &&
                                 EqualsIgnoreCase(Sv(req[bhttp::field::expect]), "100-continue");
    body_parser_.emplace(std::move(*parser_));
    body_parser_->body_limit(
        std::numeric_limits<uint64_t>::max());  // the store enforces its own limit
    chunk_.resize(kChunkBytes);
    if (expect_continue && !http10_ && !body_parser_->is_done()) {
      // RFC 9110 §10.1.1: the client waits for this before sending the body.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      SetDeadline(core_.options.send_timeout);
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (ec) return self->Abort(ec);
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (body_parser_->is_done()) return FinishUpload();
    auto& body = body_parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    SetDeadline(core_.options.request_timeout);
    bhttp::async_read(socket_, buffer_, *body_parser_,
                      [self = shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(error_code ec) {
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      // Cut short: the Upload is destroyed unfinished, so nothing is kept.
      core_.log->info("{}: upload of {} aborted after {} bytes: {}", ip_,
                      EscapeForLog(upload_path_), received_, ec.message());
      upload_.reset();
      return Close();
    }
    const size_t got = chunk_.size() - body_parser_->get().body().size;
    if (got > 0) {
      received_ += got;
      if (auto reply = upload_->Write({chunk_.data(), got})) {
        upload_.reset();
        ResponsePlan plan = ReplyPlan(*reply, false, true);
        plan.path = std::move(upload_path_);
        return Respond(std::move(plan));
      }
    }
    ReadBody();
  }

  void FinishUpload() {
    StoreReply reply = upload_->Finish();
    upload_.reset();
    ResponsePlan plan = ReplyPlan(reply, false, false);
    plan.path = std::move(upload_path_);
    Respond(std::move(plan));
  }

  void Respond(ResponsePlan plan) {
    plan_ = std::move(plan);
    if (plan_.close) keep_alive_ = false;
    in_response_ = true;
    buffered_ = false;
    started_ = Clock::now();
    sent_ = 0;
    piece_ = 0;
    piece_done_ = 0;
    out_ = fmt::format("HTTP/1.1 {} {}\r\nServer: isoboot\r\nDate: {}\r\n", plan_.status,
                       Sv(bhttp::obsolete_reason(static_cast<bhttp::status>(plan_.status))),
                       FormatHttpDate(std::time(nullptr)));
    for (const auto& [name, value] : plan_.fields)
      fmt::format_to(std::back_inserter(out_), "{}: {}\r\n", name, value);
    fmt::format_to(std::back_inserter(out_), "Content-Length: {}\r\n", plan_.content_length);
    if (!keep_alive_) {
      out_ += "Connection: close\r\n";
    } else if (http10_) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "\r\n";
    SetDeadline(core_.options.send_timeout);
    WriteText(0);
  }

  // Writes out_ plus the text pieces that follow; `body_in_out` bytes of
  // out_ already are body.
  void WriteText(uint64_t body_in_out) {
    while (piece_ < plan_.body.size() && !plan_.body[piece_].from_source) {
      out_ += plan_.body[piece_].text;
      body_in_out += plan_.body[piece_].text.size();
      ++piece_;
    }
    size_t done = 0;
    if (piece_ < plan_.body.size() && plan_.body[piece_].length > 0) {
      // The file's bytes follow: send the head now with MSG_MORE, so the
      // kernel packs it into the first segment of the sendfile data instead
      // of a segment of its own, and the loop takes no turn in between.
      // (Never before an empty piece: nothing would push the head out.)
      ssize_t r = ::send(socket_.native_handle(), out_.data(), out_.size(),
                         MSG_MORE | MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r > 0) done = static_cast<size_t>(r);
      if (done == out_.size()) {
        Progress(body_in_out);
        out_.clear();
        return Continue();
      }
    }
    net::async_write(socket_, net::buffer(out_.data() + done, out_.size() - done),
                     [self = shared_from_this(), body_in_out](error_code ec, size_t) {
                       if (ec) return self->Abort(ec);
                       self->Progress(body_in_out);
                       self->out_.clear();
                       self->Continue();
                     });
  }

  void Progress(uint64_t n) {
    if (n == 0) return;
    sent_ += n;
    if (!plan_.page) core_.AddBytes(ip_, n);
    deadline_ = Clock::now() + core_.options.send_timeout;
  }

  void Continue() {
    if (piece_ == plan_.body.size()) return Finish();
    if (!plan_.body[piece_].from_source) return WriteText(0);
    SendSource();
  }

  void SendSource() {
    const BodyPiece& p = plan_.body[piece_];
    uint64_t budget = kTurnBytes;
    while (piece_done_ < p.length) {
      const uint64_t pos = p.offset + piece_done_;
      const uint64_t want = p.length - piece_done_;
      std::optional<vfs::FileSpan> span = buffered_ ? std::nullopt : plan_.source->Contiguous(pos);
      if (!span) return SendBuffered(pos, want);
      auto off = static_cast<off_t>(span->file_offset);
      size_t n = static_cast<size_t>(std::min({want, span->length, kTurnBytes}));
      ssize_t r = ::sendfile(socket_.native_handle(), span->fd, &off, n);
      if (r > 0) {
        piece_done_ += static_cast<uint64_t>(r);
        Progress(static_cast<uint64_t>(r));
        if (budget <= static_cast<uint64_t>(r)) return Yield();
        budget -= static_cast<uint64_t>(r);
        continue;
      }
      if (r == 0) {
        core_.log->warn("{}: {} ends before its extents do; closing", ip_,
                        EscapeForLog(plan_.path));
        return Close();
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
          if (ec) return self->Abort(ec);
          self->SendSource();
        });
        return;
      }
      if (errno == EINVAL || errno == ENOSYS) {
        buffered_ = true;  // a file the kernel cannot sendfile from
        continue;
      }
      return Abort(error_code(errno, boost::system::system_category()));
    }
    ++piece_;
    piece_done_ = 0;
    Continue();
  }

  // Lets other connections on this thread run between large sends.
  void Yield() {
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->SendSource(); });
  }

  // Generated text (or a file sendfile refuses): read a chunk, write it.
  void SendBuffered(uint64_t pos, uint64_t want) {
    chunk_.resize(static_cast<size_t>(std::min<uint64_t>(want, kChunkBytes)));
    auto got = plan_.source->Read(pos, chunk_);
    if (!got || *got == 0) {
      core_.log->warn("{}: reading {} failed: {}", ip_, EscapeForLog(plan_.path),
                      got ? "unexpected end" : got.error().message);
      return Close();
    }
    net::async_write(socket_, net::buffer(chunk_.data(), *got),
                     [self = shared_from_this()](error_code ec, size_t n) {
                       if (ec) return self->Abort(ec);
                       self->piece_done_ += n;
                       self->Progress(n);
                       self->SendSource();
                     });
  }

  void Report(bool complete) {
    in_response_ = false;
    RequestRecord r;
    r.client = ip_;
    r.method = method_;
    r.path = plan_.path;
    r.status = plan_.status;
    r.content_length = plan_.content_length;
    r.bytes = sent_;
    r.received = received_;
    r.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    r.complete = complete;
    core_.Finished(r);
  }

  void Finish() {
    Report(true);
    plan_ = {};
    if (keep_alive_) return ReadRequest();
    Linger();
  }

  void Abort(error_code ec) {
    if (!timed_out_ && !closed_)
      core_.log->debug("{}: {} aborted: {}", ip_, EscapeForLog(plan_.path), ec.message());
    Close();
  }

  // Lingering close, as nginx's lingering_close: we answered without
  // reading the whole request (a refused upload, a body on a GET), so the
  // client may still be sending. Closing now, with its bytes unread, would
  // send a TCP reset: the client's next send() fails and it reports "failed
  // sending data" instead of our status. So half-close (our answer and a
  // FIN go out), then read and discard until the client closes, which it
  // does once it has read the answer, for at most kLingerTime and
  // kMaxDrain bytes.
  void Linger() {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    SetDeadline(std::min<Clock::duration>(core_.options.request_timeout, kLingerTime));
    chunk_.resize(kDrainBytes);
    Drain(0);
  }
  void Drain(uint64_t drained) {
    socket_.async_read_some(
        net::buffer(chunk_), [self = shared_from_this(), drained](error_code ec, size_t n) {
          if (ec || drained + n > kMaxDrain) {
            if (!ec) {
              self->core_.log->debug("{}: still sending after {} bytes; closing", self->ip_,
                                     drained + n);
            }
            return self->Close();
          }
          self->Drain(drained + n);
        });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    timer_.cancel();
    socket_.close(ec);
  }

  static constexpr uint64_t kTurnBytes = 8 << 20;
  static constexpr uint64_t kChunkBytes = 64 << 10;
  static constexpr size_t kDrainBytes = 64 << 10;
  // A client stops sending within a round trip of reading our answer; these
  // only bound one that never does. (1 MiB was too little: on loopback a
  // client had sent more before it read the 413, and got a reset.)
  static constexpr uint64_t kMaxDrain = 64 << 20;
  static constexpr std::chrono::seconds kLingerTime{5};

  ServerCore& core_;
  tcp::socket socket_;
  net::steady_timer timer_;
  Clock::time_point deadline_;
  bool timer_waiting_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> parser_;
  // A PUT to the store: the same parser, taking the body in chunk_-sized pieces.
  std::optional<bhttp::request_parser<bhttp::buffer_body>> body_parser_;
  std::unique_ptr<Upload> upload_;
  std::string upload_path_;
  uint64_t received_ = 0;
  const std::string ip_;

  // The response in progress.
  ResponsePlan plan_;
  std::string method_;
  bool keep_alive_ = false;
  bool http10_ = false;
  bool in_response_ = false;
  bool buffered_ = false;
  Clock::time_point started_;
  std::string out_;
  std::vector<uint8_t> chunk_;
  size_t piece_ = 0;
  uint64_t piece_done_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace

void ServerCore::Listen() {
  error_code ec;
  auto address = net::ip::make_address(options.address, ec);
  if (ec) throw std::runtime_error(fmt::format("http: bad listen address '{}'", options.address));
  tcp::endpoint endpoint(address, options.port);
  auto fail = [&](const char* what) {
    std::string hint = ec == net::error::access_denied && options.port < 1024
                           ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                           : "";
    throw std::system_error(
        ec.value(), std::system_category(),
        fmt::format("http: cannot {} {}:{}{}", what, options.address, options.port, hint));
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open a socket for");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
}

void ServerCore::Accept() {
  acceptor.async_accept(NextLoop(), [this](error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Typically EMFILE: back off instead of spinning on a full fd table
      // (the pending connection stays queued until a descriptor is free).
      ++accept_errors;
      ThrottledWarn(accept_log, "accept failed: {}; retrying every 100 ms", ec.message());
      retry_timer.expires_after(std::chrono::milliseconds(100));
      retry_timer.async_wait([this](error_code e) {
        if (!e) Accept();
      });
      return;
    }
    error_code peer_ec;
    auto peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) return Accept();
    std::string ip = peer.address().to_string();
    if (connections.load() >= options.max_connections) {
      ++refused_full;
      ThrottledWarn(full_log, "{} connections open; refused {}", connections.load(), ip);
      socket.close(peer_ec);
      return Accept();
    }
    if (!AdmitConnection(ip)) {
      ++refused_per_client;
      ThrottledWarn(share_log, "{} has {} connections open; refused another", ip,
                    options.max_connections_per_client);
      socket.close(peer_ec);
      return Accept();
    }
    connections++;
    std::make_shared<Connection>(*this, std::move(socket), std::move(ip))->Start();
    Accept();
  });
}

Server::Server(TreeProvider tree, ServerOptions options, Logger logger)
    : core_(std::make_unique<ServerCore>(std::move(tree), std::move(options), std::move(logger))) {
  core_->Listen();
  core_->Accept();
}

Server::~Server() = default;

uint16_t Server::port() const {
  return core_->acceptor.local_endpoint().port();
}

void Server::Run() {
  std::vector<std::thread> extra;
  for (auto& loop : core_->extra_loops) {
    extra.emplace_back([&loop] {
      auto work = net::make_work_guard(*loop);  // idle until Stop()
      loop->run();
    });
  }
  core_->log->info("http: serving on {}:{}", core_->options.address, port());
  core_->ioc.run();
  for (auto& t : extra)
    t.join();
}

void Server::Stop() {
  core_->ioc.stop();
  for (auto& loop : core_->extra_loops)
    loop->stop();
}

std::map<std::string, ClientCounters> Server::Counters() const {
  std::lock_guard lock(core_->mu);
  return {core_->counters.begin(), core_->counters.end()};
}

ServerStats Server::Stats() const {
  return ServerStats{core_->accept_errors, core_->refused_full, core_->refused_per_client};
}

ClientCounters Server::CountersFor(std::string_view ip) const {
  std::lock_guard lock(core_->mu);
  auto it = core_->counters.find(ip);
  return it == core_->counters.end() ? ClientCounters{} : it->second;
}

}  // namespace isoboot::http
