#pragma once
// Logging: one named spdlog logger per module ("iso", "aoe", "tftp", ...),
// created in main and passed to the objects that log. Pure code never logs.

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace isoboot {

using Logger = std::shared_ptr<spdlog::logger>;

// Returns the logger for `module`, creating it on first use. All loggers write
// to stderr with one format; the level is set once by SetLogLevel.
Logger GetLogger(const std::string& module);

// "trace", "debug", "info", "warn", "error", "off". Unknown names throw.
void SetLogLevel(const std::string& level);

// A logger that discards everything, for tests.
Logger NullLogger();

}  // namespace isoboot
