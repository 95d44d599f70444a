#pragma once
// TLS for NBD connections after NBD_OPT_STARTTLS (proto.md "TLS support"),
// with OpenSSL; the only file of the NBD server that sees it. Credentials
// come from a directory laid out as nbdkit's and qemu's x509 directories
// are: server-cert.pem (the certificate, chain after it), server-key.pem, and
// for client certificates ca-cert.pem. TLS 1.2 and later only.
//
// A TlsStream puts its socket into non-blocking mode and waits with poll:
// every wait ends at a deadline (the handshake's) or after the send timeout,
// so a client that stalls mid-record never holds the thread forever, and
// bytes OpenSSL already decrypted (SSL_pending) are used before any wait.
//
// Threading: a TlsContext is immutable once loaded and shared by every
// connection thread; a TlsStream belongs to one connection thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

struct ssl_ctx_st;
struct ssl_st;

namespace isoboot::nbd {

class TlsContext {
 public:
  // Reads DIR/server-cert.pem and DIR/server-key.pem, and with verify_peer
  // DIR/ca-cert.pem (clients must then present a certificate it signed).
  // Throws std::runtime_error "FLAG DIR: ..." naming the file and the
  // problem (missing, unreadable, not PEM, key not matching); FLAG is the
  // option that named DIR.
  static std::shared_ptr<const TlsContext> Load(const std::string& dir, bool verify_peer,
                                                const std::string& flag = "--tls-certificates");
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool verify_peer() const { return verify_peer_; }

 private:
  friend class TlsStream;
  TlsContext(ssl_ctx_st* ctx, bool verify_peer) : ctx_(ctx), verify_peer_(verify_peer) {}
  ssl_ctx_st* ctx_;
  bool verify_peer_;
};

class TlsStream {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Status {
    kOk,
    kEof,      // the peer closed (close_notify or TCP)
    kTimeout,  // the deadline or the send timeout passed
    kError,    // a TLS or socket error: error() says which
  };

  // `fd` must outlive the stream; it is made non-blocking here.
  // `send_timeout` bounds each wait for the peer to take data.
  TlsStream(const TlsContext& context, int fd, std::chrono::milliseconds send_timeout);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // The server side of the TLS handshake, done by `deadline`.
  Status Accept(std::optional<Clock::time_point> deadline);
  // At least one and at most n bytes into dst (*got), waiting until
  // `deadline` if set, else as long as it takes.
  Status Read(uint8_t* dst, size_t n, size_t* got, std::optional<Clock::time_point> deadline);
  // All n bytes.
  Status Write(const uint8_t* data, size_t n);
  // Sends close_notify if the socket takes it right away; never waits.
  void Close();

  // Why the last call failed, for the log.
  const std::string& error() const { return error_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384", after Accept.
  std::string Describe() const;

 private:
  // After an SSL call returned r <= 0: waits as OpenSSL asks, or fails.
  Status Wait(int r, std::optional<Clock::time_point> deadline, const char* what);

  ssl_st* ssl_;
  int fd_;
  std::chrono::milliseconds send_timeout_;
  std::string error_;
};

}  // namespace isoboot::nbd
