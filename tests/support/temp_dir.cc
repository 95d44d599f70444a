#include "tests/support/temp_dir.h"

#include <errno.h>
#include <stdlib.h>

#include <system_error>

namespace isoboot::test {

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("ISOBOOT_TEST_TMP");
  std::filesystem::path root = base && *base ? base : "/tmp";
  std::filesystem::create_directories(root);
  std::string templ = (root / prefix).string() + "-XXXXXX";
  if (!::mkdtemp(templ.data())) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;  // a test that failed half-way may have left anything
  std::filesystem::remove_all(path_, ec);
}

}  // namespace isoboot::test
