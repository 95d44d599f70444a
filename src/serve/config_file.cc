#include "serve/config_file.h"

#include <fmt/format.h>
#include <toml++/toml.h>

namespace isoboot::serve {
namespace {

// The flag text of a scalar TOML value, or nothing for tables and the like.
std::optional<std::string> Scalar(const toml::node& node) {
  if (auto s = node.value<std::string>(); s && node.is_string()) return *s;
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_integer()) return std::to_string(*node.value<int64_t>());
  if (node.is_floating_point()) return fmt::format("{}", *node.value<double>());
  return std::nullopt;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ReadConfigFile(
    const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return MakeError(fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& [key, node] : table) {
    std::vector<std::string> values;
    if (const toml::array* array = node.as_array()) {
      for (const auto& item : *array) {
        auto v = Scalar(item);
        if (!v)
          return MakeError(
              fmt::format("{}: {}: arrays may only hold plain values", path, key.str()));
        values.push_back(*v);
      }
    } else if (auto v = Scalar(node)) {
      values.push_back(*v);
    } else {
      return MakeError(
          fmt::format("{}: {}: expected a string, number, boolean or array", path, key.str()));
    }
    out.emplace_back(std::string(key.str()), std::move(values));
  }
  return out;
}

}  // namespace isoboot::serve
