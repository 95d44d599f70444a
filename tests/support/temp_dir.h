#pragma once
// Test support shared by every <layer>_test: a scratch directory that cleans
// up after itself. Not thread-safe: one test owns one TempDir.

#include <filesystem>
#include <string>
#include <string_view>

namespace isoboot::test {

// A fresh, unique directory $ISOBOOT_TEST_TMP/<prefix>-XXXXXX (or under /tmp
// when ISOBOOT_TEST_TMP is unset), removed with everything in it at
// destruction. Throws std::system_error when it cannot be made.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "isoboot-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string string() const { return path_.string(); }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace isoboot::test
