#pragma once
// The overlay backup store of `isoboot serve`: `isoboot overlay backup
// http://server:8080/overlay/NAME` PUTs an archive here, a node's boot
// fetches it back (contrib/dracut/95isoboot-overlay). On disk:
//   DIR/NAME/20261122T081500.123456Z.ibo   one file per version, mode 0600
//   DIR/NAME/.partial-XXXXXX               an upload in progress
// An upload is written to a temporary file, verified completely as an
// isoboot overlay archive (checksum trailer, manifest, safe paths), fsynced
// and renamed to a new version name, so a cut or corrupt upload never
// replaces what was there; the newest `keep` versions are kept.
//
// Access (docs/overlay.md, "Who can read and write what"):
//  - the store's token (the admin's) reads and writes every name;
//  - a name's write key reads and writes that name only: a node backs up
//    with it as its bearer token (`isoboot overlay key NAME --write` prints
//    it), so no node holds a secret that reaches another node's backups;
//  - a name's read key (`?key=`) reads that name only: serve puts it on that
//    node's kernel command line, in boot entries served to that node alone.
// Keys are HMAC-SHA256 of the right and the name under the token, so they
// need no storage, survive restarts and all change with the token.
// Names: 1-128 of [A-Za-z0-9._:-], not starting with '.'; a MAC address in
// any form is stored under "52-54-00-12-34-56" (what iPXE's ${mac:hexhyp}
// and pxelinux's 01-… names use), so per-node boot entries can find it.
//
// Threading: all methods may be called from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/logging.h"
#include "base/mac.h"
#include "http/store.h"

namespace isoboot::serve {

enum class KeyRight {
  kRead,   // GET/HEAD of the name, its versions and their list
  kWrite,  // that, and PUT
};

// The key for `right` on the stored name `name` under the store's token
// (hex, 128 bits).
std::string DeriveKey(std::string_view token, std::string_view name, KeyRight right);

struct BackupStoreOptions {
  std::string dir;
  // The token, or else the file it is in (default DIR/.token, created with a
  // random token when missing: see LoadOrCreateToken).
  std::string token;
  std::string token_file;
  uint64_t max_bytes = 8ull << 30;  // per upload
  // What an upload may unpack to (its files' sizes, holes included) when it
  // is checked; the daemon makes it 8 x max_bytes, at least 1 GiB.
  uint64_t max_content_bytes = 64ull << 30;
  unsigned keep = 5;  // versions per name
};

class BackupStore : public http::StoreHandler {
 public:
  // Called after a new version of `name` was committed.
  using CommitHook = std::function<void(const std::string& name)>;

  // Creates `dir` (mode 0700) if needed. Throws when it or the token file
  // cannot be used.
  BackupStore(BackupStoreOptions options, Logger log);

  void set_on_commit(CommitHook hook) { on_commit_ = std::move(hook); }

  std::variant<vfs::SourcePtr, http::StoreReply> Get(const http::StoreRequest& request) override;
  std::variant<std::unique_ptr<http::Upload>, http::StoreReply> Put(
      const http::StoreRequest& request) override;

  // The canonical stored name for what a client asked for, or nullopt for a
  // name the store refuses.
  static std::optional<std::string> CanonicalName(std::string_view name);
  // The key for `right` on `name` (a canonical name).
  std::string Key(const std::string& name, KeyRight right) const {
    return DeriveKey(options_.token, name, right);
  }
  // Whether `query` ("a=1&key=...") carries the key for `right` on `name`
  // (compared in constant time).
  bool KeyInQuery(const std::string& name, KeyRight right, std::string_view query) const;
  // Stored versions of `name`, oldest first (file names).
  std::vector<std::string> Versions(const std::string& name) const;
  // MAC addresses that have at least one stored version.
  std::vector<MacAddress> Nodes() const;

  const BackupStoreOptions& options() const { return options_; }

 private:
  friend class StoreUpload;
  // Nullopt when `request` may use `right` on the canonical `name`, else
  // the refusal (401 without credentials, 403 with wrong ones).
  std::optional<http::StoreReply> Authorize(const http::StoreRequest& request,
                                            const std::string& name, KeyRight right) const;
  // Renames the verified upload to a new version and drops the oldest ones.
  http::StoreReply Commit(const std::string& name, const std::string& tmp, uint64_t bytes);

  BackupStoreOptions options_;  // set up by the constructor, then constant
  const Logger log_;
  CommitHook on_commit_;
  std::mutex commit_mu_;  // version names and pruning
  std::atomic<uint64_t> sequence_{0};
};

// Reads the store's token from `path` (first line, surrounding blanks
// dropped); when the file does not exist, creates it (mode 0600) with a new
// random token and says so in the log.
std::string LoadOrCreateToken(const std::string& path, const Logger& log);

// The token in an existing file (as LoadOrCreateToken); throws when missing.
std::string LoadExistingToken(const std::string& path);

// "8G", "512M", "1024K", "123" (bytes).
std::optional<uint64_t> ParseSize(std::string_view text);

}  // namespace isoboot::serve
