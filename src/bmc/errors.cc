#include "bmc/errors.h"

#include <fmt/format.h>

namespace isoboot::bmc {
namespace {

using nlohmann::json;

const json* ExtendedInfo(const json& body) {
  if (!body.is_object()) return nullptr;
  const json* info = nullptr;
  if (auto e = body.find("error"); e != body.end() && e->is_object()) {
    if (auto i = e->find("@Message.ExtendedInfo"); i != e->end()) info = &*i;
  }
  if (!info) {
    if (auto i = body.find("@Message.ExtendedInfo"); i != body.end()) info = &*i;
  }
  return info && info->is_array() ? info : nullptr;
}

std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view FailureName(Failure f) {
  switch (f) {
    case Failure::kInternal:
      return "internal";
    case Failure::kUsage:
      return "usage";
    case Failure::kConnect:
      return "connect";
    case Failure::kAuth:
      return "auth";
    case Failure::kNoVirtualMedia:
      return "no-virtual-media";
    case Failure::kInsert:
      return "insert";
    case Failure::kNotMounted:
      return "not-mounted";
    case Failure::kBootOverride:
      return "boot-override";
    case Failure::kPower:
      return "power";
    case Failure::kTask:
      return "task";
    case Failure::kConsole:
      return "console";
    case Failure::kSomeHostsFailed:
      return "some-hosts-failed";
  }
  return "unknown";
}

BmcError Interrupted() {
  return BmcError(Failure::kInternal, "interrupted");
}

std::string DescribeError(long status, const json& body) {
  std::string out;
  if (const json* info = ExtendedInfo(body)) {
    for (const auto& m : *info) {
      if (!m.is_object()) continue;
      std::string text = StringAt(m, "Message");
      std::string id = StringAt(m, "MessageId");
      // Success entries ride along in iLO's error objects; they explain nothing.
      if (EndsWith(id, ".Success")) continue;
      if (text.empty()) text = id;
      if (text.empty()) continue;
      std::string resolution = StringAt(m, "Resolution");
      if (!out.empty()) out += "; ";
      out += text;
      if (!resolution.empty() && info->size() == 1) out += " (" + resolution + ")";
    }
  }
  if (out.empty() && body.is_object()) {
    if (auto e = body.find("error"); e != body.end() && e->is_object()) {
      out = StringAt(*e, "message");
      if (out.empty()) out = StringAt(*e, "code");
    }
  }
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (out.empty()) return fmt::format("HTTP {}", status);
  return fmt::format("HTTP {}: {}", status, out);
}

bool HasMessageId(const json& body, std::string_view suffix) {
  const json* info = ExtendedInfo(body);
  if (info) {
    for (const auto& m : *info) {
      if (m.is_object() && EndsWith(StringAt(m, "MessageId"), suffix)) return true;
    }
  }
  if (body.is_object()) {
    if (auto e = body.find("error"); e != body.end() && e->is_object()) {
      return EndsWith(StringAt(*e, "code"), suffix);
    }
  }
  return false;
}

bool MentionsProperty(const json& body, std::string_view property) {
  const json* info = ExtendedInfo(body);
  if (!info) return false;
  // Built once with fmt: GCC 12 at -O3 warns (-Wrestrict, a false positive)
  // on "'" + std::string(property) inside the loop.
  const std::string path_suffix = fmt::format("/{}", property);
  const std::string quoted = fmt::format("'{}'", property);
  const std::string parameter = fmt::format("parameter {} ", property);
  for (const auto& m : *info) {
    if (!m.is_object()) continue;
    if (auto r = m.find("RelatedProperties"); r != m.end() && r->is_array()) {
      for (const auto& p : *r) {
        if (!p.is_string()) continue;
        const auto& s = p.get_ref<const std::string&>();
        if (s == property || EndsWith(s, path_suffix)) return true;
      }
    }
    if (auto a = m.find("MessageArgs"); a != m.end() && a->is_array()) {
      for (const auto& p : *a) {
        if (p.is_string() && p.get_ref<const std::string&>() == property) return true;
      }
    }
    const std::string message = StringAt(m, "Message");
    if (message.find(quoted) != std::string::npos || message.find(parameter) != std::string::npos)
      return true;
  }
  return false;
}

}  // namespace isoboot::bmc
