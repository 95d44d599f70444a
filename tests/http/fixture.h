#pragma once
// Shared by the HTTP server tests: a vfs tree built from an ISO made by
// xorriso (plus generated text and a deliberately fragmented source), a
// Server running on a thread on 127.0.0.1, and helpers to run curl and to
// parse what it saved (header dumps, multipart/byteranges bodies).

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "http/server.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "vfs/vfs.h"

namespace isoboot::http::testing {

using test::RandomBytes;
using test::ReadFile;
using test::TempDir;
using test::WriteFile;

// Runs a shell command; returns its exit status, -1 when it was killed
// (stdout kept in *out if given).
int Sh(const std::string& command, std::string* out = nullptr);

// One HTTP response head as dumped by curl -D (the last one in the file).
struct Head {
  unsigned status = 0;
  std::map<std::string, std::string> fields;  // lowercased names
  std::string Get(const std::string& lower_name) const {
    auto it = fields.find(lower_name);
    return it == fields.end() ? "" : it->second;
  }
};
Head ParseHead(std::string_view text);

struct Part {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t total = 0;
  std::string data;
};
// Parses "bytes a-b/total"; false when malformed.
bool ParseContentRange(std::string_view value, Part& part);
// Splits a multipart/byteranges body; nullopt (with a gtest failure) when malformed.
std::optional<std::vector<Part>> ParseMultipart(std::string_view body, std::string_view boundary);

// A source whose bytes are scattered over a file in many small extents, in a
// shuffled order, so every range request crosses extent boundaries.
vfs::SourcePtr FragmentedSource(const std::string& file, const std::string& content, uint32_t seed);

// The served tree: files inside an ISO made by xorriso, the whole ISO as
// "live.iso", generated text as "menu.ipxe", a fragmented source as
// "frag.bin". `expected` holds every name's bytes.
// "big.bin" is a sparse host file over 4 GiB with random bytes around
// 4 GiB and at its end (64-bit offsets); read it back with BigBytes.
struct ServedTree {
  explicit ServedTree(const TempDir& dir);
  std::string BigBytes(uint64_t offset, uint64_t length) const;
  std::shared_ptr<const vfs::Tree> tree;
  std::map<std::string, std::string> expected;
  std::string big_path;
  uint64_t big_size = 0;
};

// A Server on 127.0.0.1:<any port>, run on its own thread until destroyed.
class RunningServer {
 public:
  RunningServer(std::shared_ptr<const vfs::Tree> tree, ServerOptions options);
  ~RunningServer();
  std::string Url(std::string_view name) const;
  uint16_t port() const { return server_->port(); }
  Server& server() { return *server_; }
  std::vector<RequestRecord> Records();
  // Records once there are at least `n` (or after 10 s): a client can exit
  // before the server thread has recorded its last response.
  std::vector<RequestRecord> RecordsAtLeast(size_t n);

 private:
  std::mutex mu_;
  std::vector<RequestRecord> records_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// A raw TCP connection to 127.0.0.1:port with a receive timeout, for
// requests curl will not send.
class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient();
  bool Send(std::string_view data);  // false once the server has closed
  // Reads until the server closes (or `limit` bytes, or 30 s without data).
  std::string ReadToEnd(size_t limit = 64 << 20);
  // True when the server closed the connection (EOF or reset) within 30 s.
  bool WaitClosed();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace isoboot::http::testing
