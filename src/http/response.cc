#include "http/response.h"

#include <fmt/format.h>

#include "base/strings.h"
#include "http/date.h"
#include "http/range.h"

namespace isoboot::http {
namespace {

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

void AddValidators(ResponsePlan& plan, const vfs::Source& source) {
  plan.fields.emplace_back("ETag", EtagFor(source));
  if (source.mtime() > 0) plan.fields.emplace_back("Last-Modified", FormatHttpDate(source.mtime()));
}

}  // namespace

Result<std::string> DecodeTarget(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    // absolute-form (RFC 9112 §3.2.2): the authority is not ours to check.
    target.remove_prefix(target.find("//") + 2);
    size_t slash = target.find('/');
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.empty() || target.front() != '/') {
    return MakeError("request-target is not an absolute path");
  }
  target = target.substr(0, target.find_first_of("?#"));
  std::string out;
  out.reserve(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      out.push_back(target[i]);
      continue;
    }
    auto byte = HexByte(target.substr(i + 1, 2));
    if (!byte) return MakeError("bad percent-escape in the request-target");
    out.push_back(static_cast<char>(*byte));
    i += 2;
  }
  return out;
}

std::string ContentTypeFor(std::string_view name, const vfs::Source& source) {
  if (EndsWithIgnoreCase(name, ".iso")) return "application/x-iso9660-image";
  for (std::string_view text : {".txt", ".cfg", ".ipxe", ".conf", ".sh"}) {
    if (EndsWithIgnoreCase(name, text)) return "text/plain; charset=utf-8";
  }
  // Generated content (menus, scripts) has no file bytes behind it.
  if (source.size() > 0 && !source.Contiguous(0)) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::string EtagFor(const vfs::Source& source) {
  return fmt::format("\"{}\"", source.Etag());
}

ResponsePlan ErrorResponse(unsigned status, std::string_view message, bool head_only, bool close) {
  ResponsePlan plan;
  plan.status = status;
  plan.close = close;
  std::string text = fmt::format("{} {}\n", status, message);
  plan.fields.emplace_back("Content-Type", "text/plain; charset=utf-8");
  plan.content_length = text.size();
  if (!head_only) plan.body.push_back(BodyPiece{false, std::move(text), 0, 0});
  return plan;
}

ResponsePlan PlanResponse(const RequestHead& req, const vfs::Tree* tree, std::string_view boundary,
                          const PageFor& pages) {
  const bool head = req.method == "HEAD";
  if (req.version >= 20) return ErrorResponse(505, "HTTP version not supported", head);
  if (req.version >= 11 && !req.has_host) {
    return ErrorResponse(400, "bad request: no Host field", head);  // RFC 9112 §3.2
  }
  if (req.method != "GET" && !head) {
    ResponsePlan plan = ErrorResponse(405, "method not allowed", false, false);
    plan.fields.emplace_back("Allow", "GET, HEAD");
    return plan;
  }
  auto path = DecodeTarget(req.target);
  if (!path) return ErrorResponse(400, fmt::format("bad request: {}", path.error().message), head);
  if (std::optional<Page> page = pages ? pages(*path) : std::nullopt) {
    ResponsePlan plan;
    plan.page = true;
    plan.status = page->status;
    plan.path = std::move(*path);
    plan.fields.emplace_back("Content-Type", std::move(page->content_type));
    plan.fields.emplace_back("Cache-Control", "no-store");
    for (auto& field : page->fields)
      plan.fields.push_back(std::move(field));
    plan.content_length = page->body.size();
    if (!head) plan.body.push_back(BodyPiece{false, std::move(page->body), 0, 0});
    return plan;
  }
  vfs::SourcePtr source = tree ? tree->Lookup(*path) : nullptr;
  if (!source || path->find('\0') != std::string::npos) {
    ResponsePlan plan = ErrorResponse(404, "not found", head, false);
    plan.path = std::move(*path);
    return plan;
  }

  ResponsePlan plan;
  plan.path = std::move(*path);
  plan.source = source;
  const uint64_t length = source->size();
  const std::string type = ContentTypeFor(plan.path, *source);
  plan.fields.emplace_back("Accept-Ranges", "bytes");
  AddValidators(plan, *source);

  // Range is defined for GET only (RFC 9110 §14.2); If-Range gates it.
  RangeDecision ranges;
  if (!head && req.range &&
      (!req.if_range || IfRangeMatches(*req.if_range, {EtagFor(*source), source->mtime()}))) {
    ranges = DecideRanges(req.range, length);
  }

  switch (ranges.outcome) {
    case RangeOutcome::kFull:
      plan.fields.emplace_back("Content-Type", type);
      plan.content_length = length;
      if (!head && length > 0) plan.body.push_back(BodyPiece{true, {}, 0, length});
      return plan;
    case RangeOutcome::kUnsatisfiable:
      plan.status = 416;
      plan.fields.emplace_back("Content-Range", fmt::format("bytes */{}", length));
      return plan;
    case RangeOutcome::kPartial:
      break;
  }
  plan.status = 206;
  if (ranges.ranges.size() == 1) {
    const ByteRange& r = ranges.ranges[0];
    plan.fields.emplace_back("Content-Type", type);
    plan.fields.emplace_back("Content-Range",
                             fmt::format("bytes {}-{}/{}", r.first, r.last, length));
    plan.content_length = r.length();
    plan.body.push_back(BodyPiece{true, {}, r.first, r.length()});
    return plan;
  }
  // multipart/byteranges (RFC 9110 §14.6); the CRLF before each boundary
  // belongs to the delimiter, so the first part starts with "--".
  plan.fields.emplace_back("Content-Type",
                           fmt::format("multipart/byteranges; boundary={}", boundary));
  for (size_t i = 0; i < ranges.ranges.size(); ++i) {
    const ByteRange& r = ranges.ranges[i];
    plan.body.push_back(
        BodyPiece{false,
                  fmt::format("{}--{}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                              i == 0 ? "" : "\r\n", boundary, type, r.first, r.last, length),
                  0, 0});
    plan.body.push_back(BodyPiece{true, {}, r.first, r.length()});
  }
  plan.body.push_back(BodyPiece{false, fmt::format("\r\n--{}--\r\n", boundary), 0, 0});
  for (const BodyPiece& p : plan.body)
    plan.content_length += p.size();
  return plan;
}

}  // namespace isoboot::http
