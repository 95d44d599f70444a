#pragma once
// Logging: one named spdlog logger per module ("serve", "aoe", "tftp", ...).
// The code that wires a command gets them with GetLogger (a cli/ subcommand,
// or serve::Daemon as it builds each server) and passes them to the objects
// that log; those never call GetLogger themselves. main only sets the level
// (--log-level, SetLogLevel). Pure code never logs. Thread-safe (spdlog's _mt
// loggers and registry).

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
