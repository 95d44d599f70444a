#pragma once
// What to answer to one HTTP request, decided without any I/O: status,
// header fields and the body as a list of pieces (literal text, or a byte
// range of a vfs Source that the server sends zero-copy). The server only
// parses the request head (Boost.Beast), calls PlanResponse and writes.
// Pure apart from reading the Sources' metadata; thread-safe.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "vfs/vfs.h"

namespace isoboot::http {

// The parts of a request head that matter here.
struct RequestHead {
  std::string_view method;  // "GET", case-sensitive as RFC 9110 §9.1 says
  std::string_view target;  // request-target as sent: "/live.iso?x=1"
  unsigned version = 11;    // 10 = HTTP/1.0, 11 = HTTP/1.1
  bool has_host = true;     // a Host field was present (HTTP/1.1 requires one)
  std::optional<std::string_view> range;
  std::optional<std::string_view> if_range;
};

// A run of the body: `text`, or when `from_source`, `length` bytes of the
// source starting at `offset`.
struct BodyPiece {
  bool from_source = false;
  std::string text;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t size() const { return from_source ? length : text.size(); }
};

struct ResponsePlan {
  unsigned status = 200;
  // Fields besides Date, Server, Connection and Content-Length (the server adds those).
  std::vector<std::pair<std::string, std::string>> fields;
  uint64_t content_length = 0;
  std::vector<BodyPiece> body;  // empty for HEAD; sums to content_length for GET
  vfs::SourcePtr source;        // what `from_source` pieces read from
  std::string path;             // decoded request path, for logs
  bool close = false;           // the connection must close after this response
  bool page = false;            // made by a PageFor, not read from the tree
};

// A response made for one request (a status page, metrics), not read from
// the tree. Sent with Cache-Control: no-store; HEAD gets its head only.
struct Page {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;  // more header fields
};

// Asked for the decoded path of every GET and HEAD before the tree is;
// nullopt: the tree answers.
using PageFor = std::function<std::optional<Page>(const std::string& path)>;

// Turns a request-target (origin-form "/a/b?q" or absolute-form
// "http://host/a/b") into the path to look up, percent-decoded, without the
// query. Errors: not a form a GET may use, or a bad %-escape.
Result<std::string> DecodeTarget(std::string_view target);

// The Content-Type for `name` served from `source`.
std::string ContentTypeFor(std::string_view name, const vfs::Source& source);

// The quoted strong ETag for `source`.
std::string EtagFor(const vfs::Source& source);

// Plans the answer to `req` from `pages` (may be empty), else from `tree`
// (null: nothing is served, 404). `boundary` separates multipart/byteranges
// parts; it must not occur in the content, so callers pass a fresh random
// string.
ResponsePlan PlanResponse(const RequestHead& req, const vfs::Tree* tree, std::string_view boundary,
                          const PageFor& pages = {});

// A short text/plain error (or 431/400 for a request head that did not
// parse) that closes the connection when `close`.
ResponsePlan ErrorResponse(unsigned status, std::string_view message, bool head_only = false,
                           bool close = true);

}  // namespace isoboot::http
