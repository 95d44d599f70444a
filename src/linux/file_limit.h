#pragma once
// The open-file limit (RLIMIT_NOFILE) against what the servers may hold:
// every HTTP connection and every TFTP transfer is one descriptor. systemd
// (240 and later) starts services with a soft limit of 1024 and a hard one
// of 524288, expecting programs that never use select(2) to raise the soft
// limit themselves; isoboot uses epoll only (Asio) and does.
//
// Thread safety: RaiseFileLimit changes a process-wide limit; call it at
// start-up, before the servers. CheckFileLimit is pure.
// (Not named linux/limits.h: glibc's <limits.h> includes the kernel's
// <linux/limits.h> for PATH_MAX, and src/ is on the include path.)

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace isoboot::sys {

struct FileLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard one and returns the limits then
// in force (unchanged if the kernel refused). Throws std::system_error if
// the limit cannot be read.
FileLimit RaiseFileLimit();

// Descriptors the servers may want at once.
struct FileNeeds {
  size_t http_connections = 0;  // http::ServerOptions::max_connections
  size_t tftp_sessions = 0;     // tftp::ServerConfig::max_transfers
  // Listening sockets, the image, logs, AoE and DHCP sockets, eventfds,
  // epoll, files opened for uploads.
  size_t slack = 64;
};

// nullopt when `limit.soft` covers `needs`; otherwise one line for the log:
// "open files limited to 1024, fewer than the 4096 HTTP connections and 2048
// TFTP sessions configured: raise LimitNOFILE".
std::optional<std::string> CheckFileLimit(const FileLimit& limit, const FileNeeds& needs);

}  // namespace isoboot::sys
