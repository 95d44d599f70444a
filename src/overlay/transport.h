#pragma once
// Where backups go and where restores come from. A Sink receives the archive
// bytes as they are produced; nothing is visible at the destination under its
// final name until Commit() (files: temp name in the same directory, fsync,
// rename, fsync of the directory; HTTP: the PUT completes). A Sink destroyed
// without Commit() discards what it received. Single-threaded, except the
// HTTP sink, which runs libcurl on its own thread fed through a pipe. ssh://
// (SFTP) lives in overlay/sftp.h.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/unique_fd.h"

namespace isoboot::overlay {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Write(std::span<const uint8_t> data) = 0;
  virtual void Commit() = 0;
};

struct TransportOptions {
  std::string bearer_token;  // for http(s): "Authorization: Bearer ..."
  std::string ssh_identity;  // for ssh://: a private key file (else agent and default keys)
  std::string known_hosts;   // for ssh://: instead of ~/.ssh/known_hosts
  // Restore downloads (OpenSource), so that a stalled or hostile server
  // cannot hang a node's boot or fill its RAM (downloads are spooled to a
  // memfd). http(s): all of them, as curl's --connect-timeout,
  // --speed-limit/--speed-time and --max-time (0: none); ssh:// and stdin:
  // max_size.
  long connect_timeout_s = 30;
  long low_speed_bytes = 1024;  // abort when fewer bytes than this per second ...
  long low_speed_time_s = 30;   // ... arrive for this many seconds
  long max_time_s = 0;
  uint64_t max_size = uint64_t{8} << 30;
};

// DEST is a file path, "-" (stdout, refused when it is a terminal), an
// http:// or https:// URL (PUT) or ssh://[user@]host[:port]/path (SFTP, see
// overlay/sftp.h). Throws on setup errors.
std::unique_ptr<Sink> OpenSink(const std::string& dest, const TransportOptions& options);

// SRC is a file path, "-" (stdin), an http(s) URL (GET) or an ssh:// URL. Returns a seekable
// file: stdin and downloads are spooled to an anonymous memory file first,
// because a restore reads the archive twice (verify, then apply). Throws
// std::runtime_error with a one-line reason (a timeout, the size limit).
UniqueFd OpenSource(const std::string& src, const TransportOptions& options);

}  // namespace isoboot::overlay
