#include "nbd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace isoboot::nbd {
namespace {

// The oldest queued OpenSSL error, as text, and the queue cleared.
std::string Reason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  if (const char* r = ERR_reason_error_string(e)) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::Load(const std::string& dir, bool verify_peer,
                                                   const std::string& flag) {
  auto fail = [&](const std::string& why) {
    return std::runtime_error(fmt::format("{} {}: {}", flag, dir, why));
  };
  const std::string cert = dir + "/server-cert.pem";
  const std::string key = dir + "/server-key.pem";
  const std::string ca = dir + "/ca-cert.pem";
  std::vector<std::string> files = {cert, key};
  if (verify_peer) files.push_back(ca);
  for (const std::string& f : files) {
    if (::access(f.c_str(), R_OK) != 0) throw fail(fmt::format("{}: {}", f, std::strerror(errno)));
  }
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        SSL_CTX_free);
  if (!ctx) throw fail("SSL_CTX_new: " + Reason());
  // proto.md "TLS versions": 1.2 at least, older only by configuration.
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    throw fail("TLS 1.2: " + Reason());
  }
  // No renegotiation (a client could make the server redo handshakes at
  // will), no session resumption (nothing to gain on connections that
  // last a whole boot); a TCP close without close_notify reads as the end
  // of the connection, as it does without TLS (NBD frames its own data, so
  // a truncation cannot pass for a complete reply).
  uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
  SSL_CTX_set_options(ctx.get(), options);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    throw fail(fmt::format("{}: {}", cert, Reason()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate while loading it.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      throw fail("server-key.pem is not the key of server-cert.pem");
    }
    throw fail(fmt::format("{}: {}", key, Reason()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    throw fail("server-key.pem is not the key of server-cert.pem");
  }
  if (verify_peer) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
      throw fail(fmt::format("{}: {}", ca, Reason()));
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str())) {
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  ERR_clear_error();
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx.release(), verify_peer));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

TlsStream::TlsStream(const TlsContext& context, int fd, std::chrono::milliseconds send_timeout)
    : ssl_(SSL_new(context.ctx_)), fd_(fd), send_timeout_(send_timeout) {
  if (ssl_ && SSL_set_fd(ssl_, fd) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (!ssl_) error_ = "SSL_new: " + Reason();
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);
}

TlsStream::Status TlsStream::Wait(int r, std::optional<Clock::time_point> deadline,
                                  const char* what) {
  const int saved_errno = errno;
  short events = 0;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      events = POLLIN;
      break;
    case SSL_ERROR_WANT_WRITE:
      events = POLLOUT;
      break;
    case SSL_ERROR_ZERO_RETURN:
      error_ = fmt::format("{}: the peer closed TLS", what);
      return Status::kEof;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        ERR_clear_error();
        if (saved_errno == 0) {
          error_ = fmt::format("{}: connection closed", what);
          return Status::kEof;
        }
        error_ = fmt::format("{}: {}", what, std::strerror(saved_errno));
        return Status::kError;
      }
      [[fallthrough]];
    default:
      error_ = fmt::format("{}: {}", what, Reason());
      return Status::kError;
  }
  for (;;) {
    int ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) {
        error_ = fmt::format("{}: timed out", what);
        return Status::kTimeout;
      }
      ms = static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000));
    }
    pollfd p{fd_, events, 0};
    int pr = ::poll(&p, 1, ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      error_ = fmt::format("{}: poll: {}", what, std::strerror(errno));
      return Status::kError;
    }
    if (pr > 0) return Status::kOk;  // ready (or hung up): the SSL call tells which
  }
}

TlsStream::Status TlsStream::Accept(std::optional<Clock::time_point> deadline) {
  if (!ssl_) return Status::kError;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_accept(ssl_);
    if (r == 1) return Status::kOk;
    if (Status st = Wait(r, deadline, "TLS handshake"); st != Status::kOk) return st;
  }
}

TlsStream::Status TlsStream::Read(uint8_t* dst, size_t n, size_t* got,
                                  std::optional<Clock::time_point> deadline) {
  // SSL_read first, poll only when it wants more: records OpenSSL already
  // holds (SSL_pending) are never left waiting for the socket.
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(ssl_, dst, n, got);
    if (r == 1) return Status::kOk;
    if (Status st = Wait(r, deadline, "TLS read"); st != Status::kOk) return st;
  }
}

TlsStream::Status TlsStream::Write(const uint8_t* data, size_t n) {
  while (n > 0) {
    ERR_clear_error();
    errno = 0;
    size_t written = 0;
    // After a WANT_*, OpenSSL wants the same call again (same data, same n).
    int r = SSL_write_ex(ssl_, data, n, &written);
    if (r == 1) {
      data += written;
      n -= written;
      continue;
    }
    if (Status st = Wait(r, Clock::now() + send_timeout_, "TLS write"); st != Status::kOk) {
      return st;
    }
  }
  return Status::kOk;
}

void TlsStream::Close() {
  if (!ssl_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsStream::Describe() const {
  if (!ssl_) return "no TLS";
  const char* cipher = SSL_get_cipher_name(ssl_);
  return fmt::format("{} {}", SSL_get_version(ssl_), cipher ? cipher : "?");
}

}  // namespace isoboot::nbd
