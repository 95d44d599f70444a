#include "overlay/sftp.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <sys/mman.h>
#include <sys/random.h>
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
#include "overlay/restore.h"
#include "overlay/sftp_session.h"

namespace isoboot::overlay {
namespace {

// OpenSSH's sftp-server refuses messages over 256 KiB: writes are cut to this size.
constexpr size_t kChunk = 64 * 1024;
// Requests kept in flight: one round trip per 1 MiB, not per 64 KiB.
constexpr size_t kReadAhead = 16;
constexpr size_t kWritesInFlight = 16;

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
      : target_(OrThrow(ParseSshUrl(url))), session_(url, target_, options) {
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
  SshUrl target = OrThrow(ParseSshUrl(url));
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
  if (size > options.max_size) {
    throw std::runtime_error(
        fmt::format("{}: the backup is larger than the limit of {} (--max-size)", url,
                    SizeText(options.max_size)));
  }

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
