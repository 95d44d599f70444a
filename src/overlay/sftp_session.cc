#include "overlay/sftp_session.h"

#include <fcntl.h>
#include <libssh/callbacks.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace isoboot::overlay {
namespace {

// Reads a line with echo off from the controlling terminal, as ssh does (not
// stdin: it may carry data). False when there is no terminal (scripts, CI).
bool ReadSecret(const std::string& prompt, std::string& out) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  UniqueFd tty(fd);
  termios old{};
  bool restore = ::tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  if (::write(fd, prompt.data(), prompt.size()) < 0) return false;
  out.clear();
  char c;
  while (out.size() < 4096 && ::read(fd, &c, 1) == 1 && c != '\n')
    out.push_back(c);
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &old);
  return true;
}

// libssh asks this for the passphrase of an encrypted private key.
int AskPassphrase(const char* prompt, char* buf, size_t len, int, int, void*) {
  std::string s;
  if (!ReadSecret(prompt ? prompt : "Passphrase: ", s) || s.size() + 1 > len) return -1;
  ::memcpy(buf, s.c_str(), s.size() + 1);
  ::explicit_bzero(s.data(), s.size());
  return 0;
}

std::string OptionString(ssh_session s, ssh_options_e which) {
  char* v = nullptr;
  if (ssh_options_get(s, which, &v) != SSH_OK || v == nullptr) return "";
  std::string out = v;
  ssh_string_free_char(v);
  return out;
}

}  // namespace

std::string SftpCodeText(int code) {
  switch (code) {
    case SSH_FX_EOF:
      return "unexpected end of file";
    case SSH_FX_NO_SUCH_FILE:
      return "no such file or directory";
    case SSH_FX_PERMISSION_DENIED:
      return "permission denied";
    case SSH_FX_BAD_MESSAGE:
      return "bad message (the server did not understand the request)";
    case SSH_FX_NO_CONNECTION:
    case SSH_FX_CONNECTION_LOST:
      return "connection lost";
    case SSH_FX_OP_UNSUPPORTED:
      return "operation not supported by the server";
    case SSH_FX_FILE_ALREADY_EXISTS:
      return "file exists";
    case SSH_FX_WRITE_PROTECT:
      return "read-only filesystem";
    default:
      return "failure";  // OpenSSH's answer for every other errno (ENOSPC, EROFS, ...)
  }
}

SftpSession::SftpSession(std::string url, const SshUrl& target, const TransportOptions& options)
    : url_(std::move(url)) {
  try {
    Open(target, options);
  } catch (...) {
    Close();
    throw;
  }
}
SftpSession::~SftpSession() {
  Close();
}

bool SftpSession::Supports(const char* extension, const char* version) {
  return sftp_extension_supported(sftp_, extension, version) != 0;
}

void SftpSession::Fail(const std::string& what, const std::string& why) {
  throw std::runtime_error(fmt::format("{}: {}: {}", url_, what, why.empty() ? Why() : why));
}
std::string SftpSession::Why() {
  if (sftp_ != nullptr && !ssh_is_connected(ssh_)) {
    std::string e = ssh_get_error(ssh_);
    return "connection lost" + (e.empty() ? "" : " (" + e + ")");
  }
  if (sftp_ != nullptr &&
      (ssh_channel_is_closed(sftp_->channel) || ssh_channel_is_eof(sftp_->channel)))
    return "connection lost (the server ended the SFTP session)";
  if (sftp_ != nullptr) {
    int code = sftp_get_error(sftp_);
    if (code != SSH_FX_OK) return SftpCodeText(code);
  }
  std::string e = ssh_get_error(ssh_);
  return e.empty() ? "unknown error" : e;
}

void SftpSession::Open(const SshUrl& target, const TransportOptions& options) {
  // A dropped connection shows as an error, not a kill: main ignores SIGPIPE.
  ssh_ = ssh_new();
  if (ssh_ == nullptr) throw std::runtime_error("ssh_new failed");
  ssh_options_set(ssh_, SSH_OPTIONS_HOST, target.host.c_str());
  // ~/.ssh/config and /etc/ssh/ssh_config (Host aliases, User, Port) as ssh
  // reads them; what the URL and flags say is set afterwards and wins.
  if (ssh_options_parse_config(ssh_, nullptr) != 0) Fail("reading the ssh configuration");
  if (!target.user.empty()) ssh_options_set(ssh_, SSH_OPTIONS_USER, target.user.c_str());
  if (target.port != 0) ssh_options_set(ssh_, SSH_OPTIONS_PORT, &target.port);
  if (!options.known_hosts.empty())
    ssh_options_set(ssh_, SSH_OPTIONS_KNOWNHOSTS, options.known_hosts.c_str());
  long timeout = 60;  // seconds without an answer before a call fails
  ssh_options_set(ssh_, SSH_OPTIONS_TIMEOUT, &timeout);
  // Each SFTP write waits for its answer; with Nagle's algorithm the next
  // request then waits for a delayed ACK (~40 ms per 64 KiB: 2 MB/s).
  int nodelay = 1;
  ssh_options_set(ssh_, SSH_OPTIONS_NODELAY, &nodelay);
  ssh_callbacks_init(&callbacks_);
  callbacks_.auth_function = AskPassphrase;
  ssh_set_callbacks(ssh_, &callbacks_);
  host_ = OptionString(ssh_, SSH_OPTIONS_HOST);
  user_ = OptionString(ssh_, SSH_OPTIONS_USER);
  unsigned int port = 22;
  ssh_options_get_port(ssh_, &port);
  port_ = static_cast<int>(port);
  known_hosts_ = options.known_hosts.empty() ? "~/.ssh/known_hosts" : options.known_hosts;

  if (ssh_connect(ssh_) != SSH_OK) Fail(fmt::format("cannot connect to {}", HostPort()));
  CheckHostKey();
  Authenticate(options);
  sftp_ = sftp_new(ssh_);
  if (sftp_ == nullptr || sftp_init(sftp_) != SSH_OK)
    Fail("cannot start SFTP (is the sftp subsystem enabled in the server's sshd_config?)");
}

void SftpSession::Close() {
  if (sftp_ != nullptr) sftp_free(sftp_);
  sftp_ = nullptr;
  if (ssh_ == nullptr) return;
  if (ssh_is_connected(ssh_)) ssh_disconnect(ssh_);
  ssh_free(ssh_);
  ssh_ = nullptr;
}

std::string SftpSession::HostPort() const {
  return port_ == 22 ? host_ : fmt::format("[{}]:{}", host_, port_);
}

// Never accepts a key that known_hosts does not vouch for: a backup holds
// /etc/shadow and private keys, and a live system's ~/.ssh is new at every
// boot, so "accept new keys" would accept whoever answers, every time.
void SftpSession::CheckHostKey() {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(ssh_, &key) != SSH_OK) Fail("no host key from the server");
  std::string type = ssh_key_type_to_char(ssh_key_type(key));
  std::string fingerprint = "?";
  unsigned char* hash = nullptr;
  size_t hash_len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0) {
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
    if (fp != nullptr) fingerprint = fp;
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
  }
  ssh_key_free(key);
  std::string scan = port_ == 22
                         ? fmt::format("ssh-keyscan {} >> {}", host_, known_hosts_)
                         : fmt::format("ssh-keyscan -p {} {} >> {}", port_, host_, known_hosts_);
  switch (ssh_session_is_known_server(ssh_)) {
    case SSH_KNOWN_HOSTS_OK:
      return;
    case SSH_KNOWN_HOSTS_CHANGED:
      Fail("host key verification failed",
           fmt::format("the {} key of {} has CHANGED (now {}); someone may be intercepting "
                       "the connection. If the server was reinstalled, check the new key and "
                       "replace the old one: ssh-keygen -R '{}' -f {}; {}",
                       type, HostPort(), fingerprint, HostPort(), known_hosts_, scan));
    case SSH_KNOWN_HOSTS_OTHER:
      Fail("host key verification failed",
           fmt::format("{} offered a {} key ({}) but {} holds a key of another type for it; "
                       "check it and add it: {}",
                       HostPort(), type, fingerprint, known_hosts_, scan));
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      Fail("host key verification failed",
           fmt::format("{} is not in {} (its {} key is {}); check the fingerprint and add "
                       "it: {} (or pass --known-hosts FILE)",
                       HostPort(), known_hosts_, type, fingerprint, scan));
    default:
      Fail(fmt::format("cannot check the host key against {}", known_hosts_));
  }
}

void SftpSession::Authenticate(const TransportOptions& options) {
  const char* who = user_.c_str();
  int rc = ssh_userauth_none(ssh_, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return;
  if (rc == SSH_AUTH_ERROR) Fail("authentication");
  int methods = ssh_userauth_list(ssh_, nullptr);
  std::vector<std::string> tried;
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    if (!options.ssh_identity.empty()) {
      if (::getenv("SSH_AUTH_SOCK") != nullptr) {
        tried.push_back("ssh agent");
        if (ssh_userauth_agent(ssh_, who) == SSH_AUTH_SUCCESS) return;
      }
      ssh_key key = nullptr;
      if (ssh_pki_import_privkey_file(options.ssh_identity.c_str(), nullptr, AskPassphrase, nullptr,
                                      &key) != SSH_OK) {
        throw std::runtime_error(
            fmt::format("{}: cannot read the private key (or its passphrase was not given)",
                        options.ssh_identity));
      }
      tried.push_back("key " + options.ssh_identity);
      rc = ssh_userauth_publickey(ssh_, who, key);
      ssh_key_free(key);
      if (rc == SSH_AUTH_SUCCESS) return;
    } else {
      tried.push_back("ssh agent, ~/.ssh/id_ed25519, id_ecdsa, id_rsa");
      if (ssh_userauth_publickey_auto(ssh_, who, nullptr) == SSH_AUTH_SUCCESS) return;
    }
  }
  if (methods & SSH_AUTH_METHOD_PASSWORD) {
    std::string password;
    if (ReadSecret(fmt::format("{}@{}'s password: ", user_, host_), password)) {
      tried.push_back("password");
      rc = ssh_userauth_password(ssh_, who, password.c_str());
      ::explicit_bzero(password.data(), password.size());
      if (rc == SSH_AUTH_SUCCESS) return;
    } else {
      tried.push_back("no password (no terminal to ask on)");
    }
  }
  std::vector<std::string> offered;
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) offered.push_back("publickey");
  if (methods & SSH_AUTH_METHOD_PASSWORD) offered.push_back("password");
  if (methods & SSH_AUTH_METHOD_INTERACTIVE) offered.push_back("keyboard-interactive");
  if (methods & SSH_AUTH_METHOD_GSSAPI_MIC) offered.push_back("gssapi");
  Fail(fmt::format("authentication failed for {}@{}", user_, HostPort()),
       fmt::format(
           "tried {}; the server accepts {}",
           tried.empty() ? "nothing" : fmt::format("{}", fmt::join(tried, "; ")),
           offered.empty() ? "nothing we can do" : fmt::format("{}", fmt::join(offered, ", "))));
}

}  // namespace isoboot::overlay
