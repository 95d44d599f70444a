#include "overlay/sftp.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "base/byte_io.h"
#include "base/file_io.h"

namespace isoboot::overlay {
namespace {

// OpenSSH's sftp-server refuses messages over 256 KiB: writes are cut to this size.
constexpr size_t kChunk = 64 * 1024;
// Requests kept in flight: one round trip per 1 MiB, not per 64 KiB.
constexpr size_t kReadAhead = 16;
constexpr size_t kWritesInFlight = 16;

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

std::string OptionString(ssh_session s, ssh_options_e which) {
  char* v = nullptr;
  if (ssh_options_get(s, which, &v) != SSH_OK || v == nullptr) return "";
  std::string out = v;
  ssh_string_free_char(v);
  return out;
}

// Reads exactly buf.size() bytes of the SFTP channel; false on EOF or error.
bool ReadChannel(ssh_channel channel, std::span<uint8_t> buf) {
  while (!buf.empty()) {
    int n = ssh_channel_read(channel, buf.data(), static_cast<uint32_t>(buf.size()), 0);
    if (n <= 0) return false;
    buf = buf.subspan(static_cast<size_t>(n));
  }
  return true;
}

constexpr uint8_t kFxpWrite = 6, kFxpStatus = 101, kFxpExtended = 200;

// Sends one SFTP request (length, type, id, body) on the channel without
// waiting for its answer. libssh 0.10 can do neither pipelined writes nor
// posix-rename@openssh.com, so the sink speaks those two requests itself; the
// channel carries nothing else meanwhile (each answer is read by ReadStatus
// before libssh's own calls resume).
bool SendRequest(sftp_session sftp, uint8_t type, uint32_t id, std::span<const uint8_t> body) {
  std::vector<uint8_t> packet;
  packet.reserve(body.size() + 9);
  ByteWriter w(packet);
  w.U32(static_cast<uint32_t>(body.size() + 5));
  w.U8(type);
  w.U32(id);
  w.Bytes(body);
  return ssh_channel_write(sftp->channel, packet.data(), static_cast<uint32_t>(packet.size())) ==
         static_cast<int>(packet.size());
}

// Reads the next answer, which must be the SSH_FXP_STATUS for ID (OpenSSH
// answers in order). Returns its status code, or -1 when the channel failed.
int ReadStatus(sftp_session sftp, uint32_t id) {
  uint8_t header[4];
  if (!ReadChannel(sftp->channel, header)) return -1;
  uint32_t len = ByteReader(header).U32();
  if (len < 9 || len > 64 * 1024) return -1;
  std::vector<uint8_t> reply(len);
  if (!ReadChannel(sftp->channel, reply)) return -1;
  ByteReader r(reply);
  uint8_t type = r.U8();
  uint32_t reply_id = r.U32();
  uint32_t code = r.U32();
  if (!r.ok() || type != kFxpStatus || reply_id != id) return -1;
  return static_cast<int>(code);
}

void PutString(ByteWriter& w, std::span<const uint8_t> s) {
  w.U32(static_cast<uint32_t>(s.size()));
  w.Bytes(s);
}

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// posix-rename@openssh.com: rename(2) on the server, atomic and replacing the
// destination. libssh 0.10's sftp_rename sends a plain SSH_FXP_RENAME, which
// OpenSSH refuses over an existing file (it links, then unlinks). Returns the
// SFTP status code, or -1 when the channel failed.
int PosixRename(sftp_session sftp, const std::string& from, const std::string& to) {
  uint32_t id = ++sftp->id_counter;  // as sftp_get_new_id does: never reused
  std::vector<uint8_t> body;
  ByteWriter b(body);
  PutString(b, AsBytes("posix-rename@openssh.com"));
  PutString(b, AsBytes(from));
  PutString(b, AsBytes(to));
  if (!SendRequest(sftp, kFxpExtended, id, body)) return -1;
  return ReadStatus(sftp, id);
}

// One authenticated SSH connection with an SFTP channel.
class SftpSession {
 public:
  SftpSession(std::string url, const SshUrl& target, const TransportOptions& options)
      : url_(std::move(url)) {
    try {
      Open(target, options);
    } catch (...) {
      Close();
      throw;
    }
  }
  ~SftpSession() { Close(); }
  SftpSession(const SftpSession&) = delete;
  SftpSession& operator=(const SftpSession&) = delete;

  sftp_session sftp() { return sftp_; }
  bool Supports(const char* extension, const char* version = "1") {
    return sftp_extension_supported(sftp_, extension, version) != 0;
  }

  // Throws "URL: WHAT: <why>", where why is the SFTP status or the ssh error.
  [[noreturn]] void Fail(const std::string& what, const std::string& why = "") {
    throw std::runtime_error(fmt::format("{}: {}: {}", url_, what, why.empty() ? Why() : why));
  }
  std::string Why() {
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

 private:
  void Open(const SshUrl& target, const TransportOptions& options) {
    ::signal(SIGPIPE, SIG_IGN);  // a dropped connection shows as an error, not a kill
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

  void Close() {
    if (sftp_ != nullptr) sftp_free(sftp_);
    sftp_ = nullptr;
    if (ssh_ == nullptr) return;
    if (ssh_is_connected(ssh_)) ssh_disconnect(ssh_);
    ssh_free(ssh_);
    ssh_ = nullptr;
  }

  std::string HostPort() const {
    return port_ == 22 ? host_ : fmt::format("[{}]:{}", host_, port_);
  }

  // Never accepts a key that known_hosts does not vouch for: a backup holds
  // /etc/shadow and private keys, and a live system's ~/.ssh is new at every
  // boot, so "accept new keys" would accept whoever answers, every time.
  void CheckHostKey() {
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

  void Authenticate(const TransportOptions& options) {
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
        if (ssh_pki_import_privkey_file(options.ssh_identity.c_str(), nullptr, AskPassphrase,
                                        nullptr, &key) != SSH_OK) {
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

  std::string url_, host_, user_, known_hosts_;
  int port_ = 22;
  ssh_session ssh_ = nullptr;
  sftp_session sftp_ = nullptr;
  ssh_callbacks_struct callbacks_{};
};

SshUrl ParseOrThrow(const std::string& url) {
  auto r = ParseSshUrl(url);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

std::string RandomSuffix() {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  uint8_t bytes[8];
  if (::getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes))
    throw std::system_error(errno, std::generic_category(), "getrandom");
  std::string s;
  for (uint8_t b : bytes)
    s.push_back(kAlphabet[b % (sizeof(kAlphabet) - 1)]);
  return s;
}

class SftpSink : public Sink {
 public:
  SftpSink(const std::string& url, const TransportOptions& options)
      : target_(ParseOrThrow(url)), session_(url, target_, options) {
    size_t slash = target_.path.rfind('/');
    dir_ = slash == std::string::npos ? "" : target_.path.substr(0, slash + 1);
    std::string name = target_.path.substr(dir_.size());
    tmp_ = fmt::format("{}.{}.isoboot-partial-{}", dir_, name, RandomSuffix());
    // 0600: a backup holds /etc/shadow. O_EXCL: never reuse someone's file.
    file_ = sftp_open(session_.sftp(), tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (file_ == nullptr) session_.Fail(fmt::format("cannot create a temporary file in {}", Dir()));
    buffer_.reserve(kChunk);
  }
  ~SftpSink() override {
    for (; !in_flight_.empty() && !broken_; in_flight_.pop_front())
      broken_ = ReadStatus(session_.sftp(), in_flight_.front()) < 0;
    if (file_ != nullptr) sftp_close(file_);
    if (!committed_) sftp_unlink(session_.sftp(), tmp_.c_str());  // best effort
  }

  void Write(std::span<const uint8_t> data) override {
    while (!data.empty()) {
      size_t n = std::min(data.size(), kChunk - buffer_.size());
      buffer_.insert(buffer_.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(n));
      data = data.subspan(n);
      if (buffer_.size() == kChunk) Flush();
    }
  }

  void Commit() override {
    Flush();
    Collect(0);
    if (session_.Supports("fsync@openssh.com") && sftp_fsync(file_) != 0)
      session_.Fail(fmt::format("fsync {}", tmp_));
    int rc = sftp_close(file_);
    file_ = nullptr;
    if (rc != SSH_NO_ERROR) session_.Fail(fmt::format("closing {}", tmp_));
    std::string what = fmt::format("renaming {} to {}", tmp_, target_.path);
    if (session_.Supports("posix-rename@openssh.com")) {
      int code = PosixRename(session_.sftp(), tmp_, target_.path);
      if (code < 0) session_.Fail(what, "connection lost");
      if (code != SSH_FX_OK) session_.Fail(what, SftpCodeText(code));
    } else if (sftp_rename(session_.sftp(), tmp_.c_str(), target_.path.c_str()) != SSH_NO_ERROR) {
      session_.Fail(what, session_.Why() +
                              " (the server has no posix-rename@openssh.com; plain SFTP rename "
                              "does not replace an existing file)");
    }
    committed_ = true;
  }

 private:
  std::string Dir() const { return dir_.empty() ? "the login directory" : dir_; }

  // Sends the buffer as one SSH_FXP_WRITE and waits only when kWritesInFlight
  // are unanswered: a synchronous write per 64 KiB idles the link for one
  // round trip each time.
  void Flush() {
    if (buffer_.empty()) return;
    std::vector<uint8_t> body;
    body.reserve(buffer_.size() + 64);
    ByteWriter w(body);
    size_t handle_len = ssh_string_len(file_->handle);
    PutString(w, {static_cast<const uint8_t*>(ssh_string_data(file_->handle)), handle_len});
    w.U64(offset_);
    PutString(w, buffer_);
    uint32_t id = ++session_.sftp()->id_counter;
    if (!SendRequest(session_.sftp(), kFxpWrite, id, body)) FailWrite(-1);
    in_flight_.push_back(id);
    offset_ += buffer_.size();
    buffer_.clear();
    Collect(kWritesInFlight - 1);
  }

  void Collect(size_t keep) {
    while (in_flight_.size() > keep) {
      int code = ReadStatus(session_.sftp(), in_flight_.front());
      in_flight_.pop_front();
      if (code != SSH_FX_OK) FailWrite(code);
    }
  }

  [[noreturn]] void FailWrite(int code) {
    std::string why;
    if (code < 0) {
      broken_ = true;
      why = session_.Why();
      if (!why.starts_with("connection lost")) why = "connection lost (" + why + ")";
    } else {
      // Read the other answers, so that the channel is idle for statvfs.
      for (; !in_flight_.empty() && !broken_; in_flight_.pop_front())
        broken_ = ReadStatus(session_.sftp(), in_flight_.front()) < 0;
      why = SftpCodeText(code);
      if (code == SSH_FX_FAILURE && !broken_) why += DiskFull();
    }
    in_flight_.clear();
    session_.Fail(fmt::format("writing {}", tmp_), why);
  }

  // OpenSSH reports ENOSPC as a plain "failure"; statvfs tells whether that was it.
  std::string DiskFull() {
    if (!session_.Supports("statvfs@openssh.com", "2")) return "";
    sftp_statvfs_t st = sftp_statvfs(session_.sftp(), dir_.empty() ? "." : dir_.c_str());
    if (st == nullptr) return "";
    uint64_t free_bytes = st->f_bavail * st->f_frsize;
    sftp_statvfs_free(st);
    if (free_bytes >= 2 * kChunk) return "";
    return fmt::format(" (disk full: {} bytes free in {} on the server)", free_bytes, Dir());
  }

  SshUrl target_;
  SftpSession session_;
  std::string dir_, tmp_;
  sftp_file file_ = nullptr;
  std::vector<uint8_t> buffer_;
  uint64_t offset_ = 0;
  std::deque<uint32_t> in_flight_;  // ids of unanswered writes, oldest first
  bool broken_ = false;             // the channel is out of step: send nothing more
  bool committed_ = false;
};

}  // namespace

bool IsSshUrl(std::string_view s) {
  return s.starts_with("ssh://") || s.starts_with("sftp://");
}

Result<SshUrl> ParseSshUrl(std::string_view url) {
  const std::string form = "ssh://[user@]host[:port]/path";
  std::string_view rest = url;
  if (rest.starts_with("ssh://")) {
    rest.remove_prefix(6);
  } else if (rest.starts_with("sftp://")) {
    rest.remove_prefix(7);
  } else {
    return MakeError(fmt::format("{}: not an ssh:// URL ({})", url, form));
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos)
    return MakeError(fmt::format("{}: no path after the host ({})", url, form));
  std::string_view authority = rest.substr(0, slash), path = rest.substr(slash);
  SshUrl out;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    out.user = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    if (out.user.empty()) return MakeError(fmt::format("{}: empty user name", url));
  }
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return MakeError(fmt::format("{}: unterminated [IPv6 address]", url));
    out.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':'))
      return MakeError(fmt::format("{}: junk after the [IPv6 address]", url));
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    out.host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    has_port = true;
  } else {
    out.host = authority;
  }
  if (out.host.empty()) return MakeError(fmt::format("{}: no host ({})", url, form));
  if (has_port) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535)
      return MakeError(fmt::format("{}: bad port \"{}\"", url, port));
    out.port = p;
  }
  if (path.starts_with("/~/")) path.remove_prefix(3);  // relative to the login directory
  if (path.empty() || path.ends_with('/'))
    return MakeError(fmt::format("{}: the path names a directory, not a file", url));
  out.path = path;
  return out;
}

std::unique_ptr<Sink> OpenSftpSink(const std::string& url, const TransportOptions& options) {
  return std::make_unique<SftpSink>(url, options);
}

UniqueFd DownloadSftp(const std::string& url, const TransportOptions& options) {
  SshUrl target = ParseOrThrow(url);
  SftpSession session(url, target, options);
  sftp_file file = sftp_open(session.sftp(), target.path.c_str(), O_RDONLY, 0);
  if (file == nullptr) session.Fail("cannot open");
  struct Closer {
    sftp_file f;
    ~Closer() { sftp_close(f); }
  } closer{file};
  sftp_attributes attrs = sftp_fstat(file);
  if (attrs == nullptr) session.Fail("cannot stat");
  uint64_t size = attrs->size;
  bool regular = attrs->type == SSH_FILEXFER_TYPE_REGULAR;
  sftp_attributes_free(attrs);
  if (!regular) throw std::runtime_error(fmt::format("{}: not a regular file", url));

  int fd = ::memfd_create("isoboot-overlay-sftp", MFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
  UniqueFd out(fd);
  // Several reads in flight, answered in order: the link stays busy instead
  // of idling one round trip per chunk.
  std::deque<uint32_t> ids;
  std::vector<uint8_t> buf(kChunk);
  uint64_t requested = 0, received = 0;
  while (received < size) {
    while (ids.size() < kReadAhead && requested < size) {
      auto len = static_cast<uint32_t>(std::min<uint64_t>(kChunk, size - requested));
      int id = sftp_async_read_begin(file, len);
      if (id < 0) session.Fail("reading");
      ids.push_back(static_cast<uint32_t>(id));
      requested += len;
    }
    auto want = static_cast<uint32_t>(std::min<uint64_t>(kChunk, size - received));
    int n = sftp_async_read(file, buf.data(), want, ids.front());
    ids.pop_front();
    if (n < 0) session.Fail(fmt::format("reading at byte {}", received));
    if (static_cast<uint32_t>(n) != want)
      throw std::runtime_error(
          fmt::format("{}: the file shrank while it was read (at byte {} of {})", url,
                      received + static_cast<uint64_t>(n), size));
    WriteAll(out.get(), {buf.data(), static_cast<size_t>(n)});
    received += want;
  }
  if (::lseek(out.get(), 0, SEEK_SET) != 0)
    throw std::system_error(errno, std::generic_category(), "lseek");
  return out;
}

}  // namespace isoboot::overlay
