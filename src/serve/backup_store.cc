#include "serve/backup_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "base/file_io.h"
#include "base/strings.h"
#include "overlay/restore.h"
#include "overlay/sha256.h"

namespace isoboot::serve {
namespace {

constexpr std::string_view kPartialPrefix = ".partial-";
constexpr std::string_view kVersionSuffix = ".isoboot-overlay";

http::StoreReply Reply(unsigned status, std::string message) {
  return http::StoreReply{status, std::move(message), {}};
}

bool IsVersionName(std::string_view name) {
  return !name.starts_with('.') && name.ends_with(kVersionSuffix);
}

// Entries of `dir` (names only), or empty when it cannot be read.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "fsync " + dir);
  }
}

// The value of `key` in a query string "a=1&key=..." ("" when absent).
std::string_view QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      return pair.substr(key.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The first line of a token file, surrounding blanks dropped.
std::string ReadToken(int fd, const std::string& path) {
  std::string text(4096, '\0');
  size_t n = PreadFull(fd, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()), 0);
  text.resize(n);
  std::string_view token = Trim(std::string_view(text).substr(0, text.find('\n')), " \t\r");
  if (token.empty()) throw std::runtime_error(path + ": the token file is empty");
  return std::string(token);
}

std::string NewVersionName(uint64_t sequence) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  // Sorts by time; the sequence breaks ties within one microsecond.
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z-{}{}", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     now.tv_nsec / 1000, sequence, kVersionSuffix);
}

}  // namespace

// One PUT being received into DIR/NAME/.partial-XXXXXX.
class StoreUpload : public http::Upload {
 public:
  StoreUpload(BackupStore& store, std::string name, std::string tmp, UniqueFd fd)
      : store_(store), name_(std::move(name)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  ~StoreUpload() override {
    if (!committed_) ::unlink(tmp_.c_str());
  }

  std::optional<http::StoreReply> Write(std::span<const uint8_t> data) override {
    bytes_ += data.size();
    if (bytes_ > store_.options_.max_bytes) {
      // The body is streamed: its size is known only to be more than this.
      return Reply(413, fmt::format("{}: more than {}, over the store's limit of {}", name_,
                                    FormatSize(store_.options_.max_bytes),
                                    FormatSize(store_.options_.max_bytes)));
    }
    try {
      WriteAll(fd_.get(), data);
    } catch (const std::system_error& e) {
      store_.log_->error("backup {}: {}", name_, e.what());
      if (e.code().value() == ENOSPC || e.code().value() == EDQUOT)
        return Reply(507, fmt::format("{}: the store's disk is full", name_));
      return Reply(500, fmt::format("{}: writing failed on the server", name_));
    }
    return std::nullopt;
  }

  http::StoreReply Finish() override {
    // Only a whole, intact isoboot overlay archive becomes a version: a
    // client that sent something else must not push out a good backup.
    // Unpacking is bounded too: a small archive may expand without limit
    // (a zstd bomb), and this runs on an HTTP thread.
    overlay::VerifyLimits limits;
    limits.max_bytes = store_.options_.max_content_bytes;
    auto verified = overlay::Verify(fd_.get(), nullptr, limits);
    if (!verified) {
      store_.log_->warn("backup {}: refused ({} bytes): {}", name_, bytes_,
                        verified.error().message);
      if (verified.error().kind == ErrorKind::kExhausted) {
        return Reply(413, fmt::format("{}: unpacks to more than the store's limit of {}", name_,
                                      FormatSize(limits.max_bytes)));
      }
      return Reply(422, fmt::format("{}: not a complete isoboot overlay backup: {}", name_,
                                    verified.error().message));
    }
    if (::fsync(fd_.get()) != 0) {
      store_.log_->error("backup {}: fsync {}: {}", name_, tmp_, std::strerror(errno));
      return Reply(500, fmt::format("{}: writing failed on the server", name_));
    }
    http::StoreReply reply = store_.Commit(name_, tmp_, bytes_);
    committed_ = reply.status == 201;
    return reply;
  }

 private:
  BackupStore& store_;
  const std::string name_;
  const std::string tmp_;
  UniqueFd fd_;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

BackupStore::BackupStore(BackupStoreOptions options, Logger log)
    : options_(std::move(options)), log_(std::move(log)) {
  if (options_.keep == 0) throw std::runtime_error("the backup store must keep at least 1 version");
  if (::mkdir(options_.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::system_error(errno, std::generic_category(), "creating " + options_.dir);
  }
  struct stat st {};
  if (::stat(options_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(options_.dir + ": not a directory");
  }
  if (options_.token.empty()) {
    if (options_.token_file.empty()) options_.token_file = options_.dir + "/.token";
    options_.token = LoadOrCreateToken(options_.token_file, log_);
  }
  // Uploads cut short by a crash of an earlier run.
  for (const auto& name : ListDir(options_.dir)) {
    for (const auto& file : ListDir(options_.dir + "/" + name)) {
      if (!file.starts_with(kPartialPrefix)) continue;
      std::string path = fmt::format("{}/{}/{}", options_.dir, name, file);
      if (::unlink(path.c_str()) == 0) log_->info("removed an unfinished upload: {}", path);
    }
  }
}

std::optional<std::string> BackupStore::CanonicalName(std::string_view name) {
  if (auto mac = ParseMac(name)) {
    const MacAddress& m = *mac;
    return fmt::format("{:02x}-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}", m[0], m[1], m[2], m[3], m[4],
                       m[5]);
  }
  if (name.empty() || name.size() > 128 || name.front() == '.') return std::nullopt;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return std::nullopt;
  }
  return std::string(name);
}

bool BackupStore::KeyInQuery(const std::string& name, KeyRight right,
                             std::string_view query) const {
  std::string_view key = QueryValue(query, "key");
  return !key.empty() && SameSecret(key, Key(name, right));
}

std::string DeriveKey(std::string_view token, std::string_view name, KeyRight right) {
  // The read key's message is the one keys were made with before write
  // keys existed, so boot entries stay valid across the upgrade.
  const std::string message =
      fmt::format("isoboot-overlay-{}:{}", right == KeyRight::kRead ? "read" : "write", name);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned length = 0;
  ::HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()),
         reinterpret_cast<const uint8_t*>(message.data()), message.size(), mac, &length);
  return overlay::Hex(std::span<const uint8_t>(mac, 16));  // 128 bits
}

std::optional<http::StoreReply> BackupStore::Authorize(const http::StoreRequest& req,
                                                       const std::string& name,
                                                       KeyRight right) const {
  constexpr std::string_view kBearer = "Bearer ";
  const std::string write_key = Key(name, KeyRight::kWrite);
  std::string_view key = QueryValue(req.query, "key");
  if (!req.authorization.empty()) {
    std::string_view bearer = req.authorization.starts_with(kBearer)
                                  ? req.authorization.substr(kBearer.size())
                                  : std::string_view{};
    // Both compared in constant time, whichever matches.
    const bool admin = SameSecret(bearer, options_.token);
    const bool writer = SameSecret(bearer, write_key);
    if (admin || writer) return std::nullopt;
    return Reply(403, right == KeyRight::kWrite ? fmt::format("this token may not write {}", name)
                                                : fmt::format("this token may not read {}", name));
  }
  if (!key.empty()) {
    if (SameSecret(key, write_key)) return std::nullopt;
    if (right == KeyRight::kRead && SameSecret(key, Key(name, KeyRight::kRead)))
      return std::nullopt;
    return Reply(403, right == KeyRight::kWrite ? fmt::format("this key may not write {}", name)
                                                : fmt::format("wrong key for {}", name));
  }
  http::StoreReply r =
      Reply(401, right == KeyRight::kWrite
                     ? fmt::format("writing {} needs a bearer token: the store's or {}'s write key "
                                   "(isoboot overlay backup --token-file)",
                                   name, name)
                     : fmt::format("reading {} needs its key (?key=) or a bearer token", name));
  r.fields.emplace_back("WWW-Authenticate", "Bearer realm=\"isoboot\"");
  return r;
}

std::vector<std::string> BackupStore::Versions(const std::string& name) const {
  std::vector<std::string> versions;
  for (auto& file : ListDir(options_.dir + "/" + name)) {
    if (IsVersionName(file)) versions.push_back(std::move(file));
  }
  return versions;  // sorted: names begin with the UTC time
}

std::vector<MacAddress> BackupStore::Nodes() const {
  std::vector<MacAddress> nodes;
  for (const auto& name : ListDir(options_.dir)) {
    auto mac = ParseMac(name);
    if (mac && CanonicalName(name) == name && !Versions(name).empty()) nodes.push_back(*mac);
  }
  return nodes;
}

std::variant<vfs::SourcePtr, http::StoreReply> BackupStore::Get(const http::StoreRequest& req) {
  // NAME (newest), NAME/VERSION, or NAME/ (the list of versions).
  std::string_view path = req.name;
  size_t slash = path.find('/');
  auto name = CanonicalName(path.substr(0, slash));
  if (!name) return Reply(404, "no such backup");
  std::string_view version = slash == std::string_view::npos ? "" : path.substr(slash + 1);
  const bool listing = slash != std::string_view::npos && version.empty();
  if (auto denied = Authorize(req, *name, KeyRight::kRead)) return *denied;
  std::vector<std::string> versions = Versions(*name);
  if (versions.empty()) return Reply(404, fmt::format("no backup named {}", *name));
  if (listing) {
    std::string text;
    for (const auto& v : versions) {
      struct stat st {};
      ::stat(fmt::format("{}/{}/{}", options_.dir, *name, v).c_str(), &st);
      text += fmt::format("{} {}\n", v, st.st_size);
    }
    return vfs::TextSource(std::move(text));
  }
  std::string file = versions.back();
  if (!version.empty()) {
    if (std::find(versions.begin(), versions.end(), version) == versions.end())
      return Reply(404, fmt::format("{} has no version {}", *name, version));
    file = version;
  }
  auto source = vfs::HostFileSource(fmt::format("{}/{}/{}", options_.dir, *name, file));
  if (!source) return Reply(404, fmt::format("no backup named {}", *name));  // pruned just now
  return *source;
}

std::variant<std::unique_ptr<http::Upload>, http::StoreReply> BackupStore::Put(
    const http::StoreRequest& req) {
  auto name = CanonicalName(req.name);
  if (!name) {
    return Reply(400, "a backup name is 1-128 of A-Z a-z 0-9 . _ : - and does not start with '.'");
  }
  if (auto denied = Authorize(req, *name, KeyRight::kWrite)) {
    log_->warn("backup {}: upload from {} refused: {}", *name, req.client, denied->message);
    return *denied;
  }
  if (req.content_length && *req.content_length > options_.max_bytes) {
    return Reply(413, fmt::format("{}: {} is over the store's limit of {}", *name,
                                  FormatSize(*req.content_length), FormatSize(options_.max_bytes)));
  }
  const std::string dir = fmt::format("{}/{}", options_.dir, *name);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log_->error("backup {}: creating {}: {}", *name, dir, std::strerror(errno));
    return Reply(500, fmt::format("{}: cannot store it on the server", *name));
  }
  std::string tmp = fmt::format("{}/{}XXXXXX", dir, kPartialPrefix);
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // 0600: a backup holds /etc/shadow
  if (fd < 0) {
    log_->error("backup {}: creating a file in {}: {}", *name, dir, std::strerror(errno));
    return Reply(errno == ENOSPC ? 507 : 500,
                 fmt::format("{}: cannot store it on the server", *name));
  }
  log_->info("backup {}: upload from {} started", *name, req.client);
  return std::make_unique<StoreUpload>(*this, *name, std::move(tmp), UniqueFd(fd));
}

http::StoreReply BackupStore::Commit(const std::string& name, const std::string& tmp,
                                     uint64_t bytes) {
  const std::string dir = fmt::format("{}/{}", options_.dir, name);
  std::string version;
  {
    std::lock_guard lock(commit_mu_);
    for (int attempt = 0;; ++attempt) {
      version = NewVersionName(sequence_++);
      std::string path = fmt::format("{}/{}", dir, version);
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) break;
      if (errno != EEXIST || attempt == 10) {
        log_->error("backup {}: rename to {}: {}", name, path, std::strerror(errno));
        return Reply(500, fmt::format("{}: cannot store it on the server", name));
      }
    }
    try {
      FsyncDir(dir);
    } catch (const std::system_error& e) {
      log_->error("backup {}: {}", name, e.what());
      return Reply(500, fmt::format("{}: cannot store it on the server", name));
    }
    std::vector<std::string> versions = Versions(name);
    for (size_t i = 0; i + options_.keep < versions.size(); ++i) {
      ::unlink(fmt::format("{}/{}", dir, versions[i]).c_str());
    }
  }
  log_->info("backup {}: stored version {} ({} bytes)", name, version, bytes);
  if (on_commit_) on_commit_(name);
  http::StoreReply reply =
      Reply(201, fmt::format("stored {} version {} ({} bytes)", name, version, bytes));
  reply.fields.emplace_back("Location", fmt::format("{}/{}", name, version));
  return reply;
}

std::string LoadExistingToken(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw std::system_error(errno, std::generic_category(), "reading " + path);
  return ReadToken(fd.get(), path);
}

std::string LoadOrCreateToken(const std::string& path, const Logger& log) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() && errno == ENOENT) {
    uint8_t random[32];
    if (::getrandom(random, sizeof random, 0) != sizeof random) {
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    std::string token = overlay::Hex(random);
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out.valid()) throw std::system_error(errno, std::generic_category(), "creating " + path);
    std::string line = token + "\n";
    WriteAll(out.get(), std::span(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
    log->info(
        "created the backup store's token in {} (give it to `isoboot overlay backup --token-file`)",
        path);
    return token;
  }
  if (!fd.valid()) throw std::system_error(errno, std::generic_category(), "reading " + path);
  return ReadToken(fd.get(), path);
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  unsigned shift = 0;
  if (unit == "K" || unit == "k")
    shift = 10;
  else if (unit == "M")
    shift = 20;
  else if (unit == "G")
    shift = 30;
  else if (unit == "T")
    shift = 40;
  else if (!unit.empty())
    return std::nullopt;
  if (shift && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

}  // namespace isoboot::serve
