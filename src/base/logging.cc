#include "base/logging.h"

#include <stdexcept>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace isoboot {

Logger GetLogger(const std::string& module) {
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = spdlog::stderr_color_mt(module);
  logger->set_pattern("%^%Y-%m-%d %H:%M:%S.%e %-5n %l%$ %v");
  logger->set_level(spdlog::get_level());
  return logger;
}

void SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw std::invalid_argument("unknown log level: " + level);
  }
  spdlog::set_level(parsed);
  spdlog::apply_all([parsed](const Logger& l) { l->set_level(parsed); });
}

Logger NullLogger() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace isoboot
