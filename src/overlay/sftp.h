#pragma once
// ssh:// destinations and sources for overlay backups, over SFTP (libssh), for
// people who used to `scp` their tarball away. Authentication and host key
// checks follow ssh(1): agent, then keys, then a password typed at a terminal;
// a host key not in known_hosts is refused with the command that adds it.
// Single-threaded: one SSH session per Sink or download, used by its caller only.

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "overlay/transport.h"

namespace isoboot::overlay {

// ssh://[user@]host[:port]/path. The path is absolute on the server;
// ssh://host/~/path is relative to the login directory (stored as "path").
struct SshUrl {
  std::string user;  // empty: ~/.ssh/config or the local user name
  std::string host;  // without the brackets of an IPv6 literal
  int port = 0;      // 0: ~/.ssh/config or 22
  std::string path;
};

bool IsSshUrl(std::string_view s);
Result<SshUrl> ParseSshUrl(std::string_view url);

// Uploads to a temporary name in the destination's directory; Commit fsyncs it
// (when the server offers fsync@openssh.com) and renames it over the
// destination (posix-rename@openssh.com, atomic). Throws on setup errors.
std::unique_ptr<Sink> OpenSftpSink(const std::string& url, const TransportOptions& options);

// Downloads the file into an anonymous memory file and returns it, rewound.
UniqueFd DownloadSftp(const std::string& url, const TransportOptions& options);

}  // namespace isoboot::overlay
