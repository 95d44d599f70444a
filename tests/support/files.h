#pragma once
// Test support: whole-file reads and writes, reproducible random bytes and
// running shell commands, as the tests of several layers need them.
// Functions throw std::runtime_error on failure; all are thread-safe.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace isoboot::test {

// `n` pseudo-random bytes; the same seed gives the same bytes.
std::string RandomBytes(size_t n, uint32_t seed);
// The whole file; "" when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);
// Replaces `path` with `data`, creating the parent directories.
void WriteFile(const std::filesystem::path& path, std::string_view data);

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;  // stdout
};
// Runs `command` with /bin/sh, capturing stdout (stderr goes to the test log
// unless redirected in the command).
CommandResult RunCommand(const std::string& command);
// `s` in single quotes for /bin/sh.
std::string Quote(const std::string& s);
// $ISOBOOT_BIN, the isoboot binary under test (set by test_main.cc and ctest).
std::string IsobootBin();

}  // namespace isoboot::test
