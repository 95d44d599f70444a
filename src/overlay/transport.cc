#include "overlay/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>

#include "base/file_io.h"
#include "base/strings.h"
#include "overlay/restore.h"
#include "overlay/sftp.h"

namespace isoboot::overlay {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

bool IsHttp(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

// Writes to a temporary file next to the destination; Commit makes it the
// destination atomically, so a crash or error never leaves a half backup
// under the final name and the previous backup stays until the new one is whole.
class FileSink : public Sink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {
    size_t slash = path_.rfind('/');
    dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    std::string name = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    if (name.empty())
      throw std::runtime_error(fmt::format("{}: is a directory name, not a file", path_));
    tmp_ = fmt::format("{}/.{}.isoboot-partial-XXXXXX", dir_, name);
    int fd = ::mkostemp(tmp_.data(), O_CLOEXEC);  // mode 0600: a backup holds /etc/shadow
    if (fd < 0) ThrowErrno(fmt::format("creating a temporary file in {}", dir_));
    fd_.Reset(fd);
  }
  ~FileSink() override {
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void Write(std::span<const uint8_t> data) override {
    try {
      WriteAll(fd_.get(), data);
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), fmt::format("writing {}", tmp_));
    }
  }
  void Commit() override {
    if (::fsync(fd_.get()) != 0) ThrowErrno(fmt::format("fsync {}", tmp_));
    if (::close(fd_.release()) != 0) ThrowErrno(fmt::format("close {}", tmp_));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) ThrowErrno(fmt::format("rename to {}", path_));
    committed_ = true;
    UniqueFd dir = OpenOrThrow(dir_, O_RDONLY | O_DIRECTORY);
    if (::fsync(dir.get()) != 0) ThrowErrno(fmt::format("fsync {}", dir_));
  }

 private:
  std::string path_, dir_, tmp_;
  UniqueFd fd_;
  bool committed_ = false;
};

class FdSink : public Sink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  void Write(std::span<const uint8_t> data) override { WriteAll(fd_, data); }
  void Commit() override {}

 private:
  int fd_;
};

void InitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// PUT with chunked transfer encoding: the archive is streamed through a pipe
// to a libcurl thread, so nothing is spooled in the (RAM-backed) live system.
// If the backup fails, the read side aborts the transfer instead of ending it,
// so the server never sees a complete upload.
class HttpSink : public Sink {
 public:
  HttpSink(const std::string& url, const TransportOptions& options) : url_(url) {
    InitCurl();
    // A failed upload shows as EPIPE in Write (main ignores SIGPIPE).
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) ThrowErrno("pipe");
    read_.Reset(p[0]);
    write_.Reset(p[1]);
    if (!options.bearer_token.empty()) auth_ = "Authorization: Bearer " + options.bearer_token;
    thread_ = std::thread([this] { Transfer(); });
  }
  ~HttpSink() override {
    if (thread_.joinable()) {
      aborted_ = true;
      write_.Reset();
      thread_.join();
    }
  }
  void Write(std::span<const uint8_t> data) override {
    try {
      WriteAll(write_.get(), data);
    } catch (const std::system_error&) {
      Finish();
      throw std::runtime_error(fmt::format("upload to {} failed: {}", url_, error_));
    }
  }
  void Commit() override {
    Finish();
    if (!error_.empty())
      throw std::runtime_error(fmt::format("upload to {} failed: {}", url_, error_));
  }

 private:
  void Finish() {
    write_.Reset();
    if (thread_.joinable()) thread_.join();
  }

  static size_t Read(char* buf, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<HttpSink*>(self_ptr);
    ssize_t r;
    do {
      r = ::read(self->read_.get(), buf, size * n);
    } while (r < 0 && errno == EINTR);
    if (r < 0 || (r == 0 && self->aborted_)) return CURL_READFUNC_ABORT;
    return static_cast<size_t>(r);
  }

  // Keeps the start of the server's answer: its reason, when it refuses.
  static size_t KeepReason(char* data, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<HttpSink*>(self_ptr);
    size_t room = kMaxReason - std::min(kMaxReason, self->reason_.size());
    self->reason_.append(data, std::min(room, size * n));
    return size * n;
  }

  void Transfer() {
    CURL* c = curl_easy_init();
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    if (!auth_.empty()) headers = curl_slist_append(headers, auth_.c_str());
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, Read);
    curl_easy_setopt(c, CURLOPT_READDATA, this);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, KeepReason);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300 || (status != 0 && rc != CURLE_OK)) {
      // The server's own words come first: "the store refused the backup
      // (HTTP 413): n1: more than 1 MiB, over the store's limit of 1 MiB".
      std::string reason(Trim(reason_));
      std::replace(reason.begin(), reason.end(), '\n', ' ');
      error_ = fmt::format("the store refused the backup (HTTP {}){}{}", status,
                           reason.empty() ? "" : ": ", reason);
    } else if (rc != CURLE_OK) {
      error_ = curl_easy_strerror(rc);
    } else if (status < 200) {
      error_ = fmt::format("server answered HTTP {}", status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    read_.Reset();  // a writer still blocked in write() now gets EPIPE
  }

  static constexpr size_t kMaxReason = 512;
  std::string url_, auth_, error_, reason_;
  UniqueFd read_, write_;
  std::atomic<bool> aborted_{false};
  std::thread thread_;
};

UniqueFd MemFile(const char* name) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) ThrowErrno("memfd_create");
  return UniqueFd(fd);
}

std::string TooBig(const std::string& src, uint64_t limit) {
  return fmt::format("{}: the backup is larger than the limit of {} (--max-size)", src,
                     SizeText(limit));
}

// The download on its way into the memfd, counted against the size limit.
struct Spool {
  int fd;
  uint64_t max;
  uint64_t bytes = 0;
  bool too_big = false;
  std::string error;
};

size_t AppendToSpool(char* buf, size_t size, size_t n, void* spool_ptr) {
  auto* spool = static_cast<Spool*>(spool_ptr);
  size_t len = size * n;
  if (len > spool->max - std::min(spool->max, spool->bytes)) {
    spool->too_big = true;
    return 0;  // curl aborts with CURLE_WRITE_ERROR
  }
  try {
    WriteAll(spool->fd, {reinterpret_cast<const uint8_t*>(buf), len});
    spool->bytes += len;
    return len;
  } catch (const std::exception& e) {
    spool->error = e.what();
    return 0;
  }
}

UniqueFd Download(const std::string& url, const TransportOptions& options) {
  InitCurl();
  UniqueFd out = MemFile("isoboot-overlay-download");
  Spool spool{out.get(), options.max_size, 0, false, {}};
  char errbuf[CURL_ERROR_SIZE] = "";
  CURL* c = curl_easy_init();
  struct curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + options.bearer_token;
  if (!options.bearer_token.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendToSpool);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &spool);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, options.max_time_s);
  // Refused before the body when the server announces a bigger one.
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_size));
  CURLcode rc = curl_easy_perform(c);
  curl_off_t connect_us = 0;
  long header_bytes = 0;
  curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
  curl_easy_getinfo(c, CURLINFO_HEADER_SIZE, &header_bytes);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc == CURLE_OK) return out;
  if (spool.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    throw std::runtime_error(TooBig(url, options.max_size));
  if (!spool.error.empty())
    throw std::runtime_error(fmt::format("{}: spooling the download: {}", url, spool.error));
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    if (connect_us == 0) {
      throw std::runtime_error(fmt::format("{}: no connection to the server within {} s", url,
                                           options.connect_timeout_s));
    }
    if (std::string_view(errbuf).find("too slow") == std::string_view::npos) {
      throw std::runtime_error(fmt::format("{}: the download took longer than {} s (--max-time)",
                                           url, options.max_time_s));
    }
    if (header_bytes == 0 && spool.bytes == 0) {
      throw std::runtime_error(
          fmt::format("{}: the server sent nothing for {} s", url, options.low_speed_time_s));
    }
    throw std::runtime_error(
        fmt::format("{}: the download stalled after {}: fewer than {} bytes/s for {} s", url,
                    SizeText(spool.bytes), options.low_speed_bytes, options.low_speed_time_s));
  }
  std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  throw std::runtime_error(fmt::format("{}: {}", url, why));
}

}  // namespace

std::unique_ptr<Sink> OpenSink(const std::string& dest, const TransportOptions& options) {
  if (dest == "-") {
    if (::isatty(STDOUT_FILENO)) {
      throw std::runtime_error("refusing to write a binary archive to a terminal; redirect stdout");
    }
    return std::make_unique<FdSink>(STDOUT_FILENO);
  }
  if (IsHttp(dest)) return std::make_unique<HttpSink>(dest, options);
  if (IsSshUrl(dest)) return OpenSftpSink(dest, options);
  if (dest.find("://") != std::string::npos) {
    throw std::runtime_error(
        fmt::format("{}: unsupported destination (file, -, http://, https://, ssh://)", dest));
  }
  return std::make_unique<FileSink>(dest);
}

UniqueFd OpenSource(const std::string& src, const TransportOptions& options) {
  if (IsHttp(src)) return Download(src, options);
  if (IsSshUrl(src)) return DownloadSftp(src, options);
  if (src == "-") {
    UniqueFd out = MemFile("isoboot-overlay-stdin");
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t total = 0;;) {
      ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ThrowErrno("reading stdin");
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
      if (total > options.max_size) throw std::runtime_error(TooBig("stdin", options.max_size));
      WriteAll(out.get(), {buf.data(), static_cast<size_t>(n)});
    }
    return out;
  }
  return OpenOrThrow(src, O_RDONLY);
}

}  // namespace isoboot::overlay
