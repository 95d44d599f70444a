#pragma once
// A writable corner of the HTTP server's name space: requests for paths
// under a prefix (isoboot serve's overlay backup store, "/overlay/") go to a
// StoreHandler instead of the read-only tree. The handler decides on access
// and answers GET/HEAD with a vfs Source (served like any tree file: ranges,
// ETag, sendfile) and PUT with an Upload that receives the body as it
// arrives; nothing of an upload may become visible before Finish(), and an
// Upload destroyed without Finish() (client gone, body cut short, an error
// reply) must discard what it got.
//
// Threading: Get/Put/Write/Finish run on the HTTP server's threads, several
// at once when it has several; they block that thread while they work, so
// they should do file I/O only (Finish may fsync).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "vfs/vfs.h"

namespace isoboot::http {

struct StoreRequest {
  std::string_view method;                 // "GET", "HEAD" or "PUT"
  std::string name;                        // decoded path below the prefix ("node-a")
  std::string_view query;                  // raw text after '?', "" when none
  std::string_view authorization;          // the Authorization field, "" when none
  std::string_view client;                 // peer IP address
  std::optional<uint64_t> content_length;  // PUT: declared length; nullopt when chunked
};

// An answer without a source body: `message` becomes a one-line text/plain
// body ("201 stored node-a (12345 bytes)").
struct StoreReply {
  unsigned status = 200;
  std::string message;
  std::vector<std::pair<std::string, std::string>> fields;
};

class Upload {
 public:
  virtual ~Upload() = default;
  // The next bytes of the body. A reply ends the upload with that answer
  // (e.g. 413 past the size limit, 507 on a full disk).
  virtual std::optional<StoreReply> Write(std::span<const uint8_t> data) = 0;
  // The whole body arrived: commit it, or refuse it.
  virtual StoreReply Finish() = 0;
};

class StoreHandler {
 public:
  virtual ~StoreHandler() = default;
  virtual std::variant<vfs::SourcePtr, StoreReply> Get(const StoreRequest& request) = 0;
  virtual std::variant<std::unique_ptr<Upload>, StoreReply> Put(const StoreRequest& request) = 0;
};

}  // namespace isoboot::http
