#pragma once
// One authenticated SSH connection with an SFTP channel, for overlay/sftp.cc.
// Connecting checks the host key against known_hosts (never accepting an
// unknown or changed one) and authenticates as ssh does: agent, then the
// given or default keys, then a password typed at the terminal. Errors are
// one line: "URL: step: why". Single-threaded.

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <string>

#include "overlay/sftp.h"

namespace isoboot::overlay {

// "permission denied", "no such file or directory", ... for an SFTP status code.
std::string SftpCodeText(int code);

class SftpSession {
 public:
  // Connects, verifies the host key, authenticates and starts SFTP; throws.
  SftpSession(std::string url, const SshUrl& target, const TransportOptions& options);
  ~SftpSession();
  SftpSession(const SftpSession&) = delete;
  SftpSession& operator=(const SftpSession&) = delete;

  sftp_session sftp() { return sftp_; }
  bool Supports(const char* extension, const char* version = "1");

  // Throws "URL: WHAT: <why>", where why defaults to Why().
  [[noreturn]] void Fail(const std::string& what, const std::string& why = "");
  // The last SFTP status, or what happened to the connection.
  std::string Why();

 private:
  void Open(const SshUrl& target, const TransportOptions& options);
  void Close();
  std::string HostPort() const;
  void CheckHostKey();
  void Authenticate(const TransportOptions& options);

  std::string url_, host_, user_, known_hosts_;
  int port_ = 22;
  ssh_session ssh_ = nullptr;
  sftp_session sftp_ = nullptr;
  ssh_callbacks_struct callbacks_{};
};

}  // namespace isoboot::overlay
