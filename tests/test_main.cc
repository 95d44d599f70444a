// main for every <layer>_test binary: fills in the environment the tests use
// (ISOBOOT_BIN, ISOBOOT_SOURCE_DIR, ISOBOOT_TEST_TMP) from the build when the
// binary is run by hand or by ctest, then runs GoogleTest.

#include <signal.h>
#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

int main(int argc, char** argv) {
  // As isoboot's main does (cli/signals.h): sendfile has no MSG_NOSIGNAL.
  signal(SIGPIPE, SIG_IGN);
  setenv("ISOBOOT_BIN", ISOBOOT_TEST_BIN, /*overwrite=*/0);
  setenv("ISOBOOT_SOURCE_DIR", ISOBOOT_TEST_SOURCE_DIR, 0);
  setenv("ISOBOOT_TEST_TMP", ISOBOOT_TEST_TMP_DIR, 0);
  std::filesystem::create_directories(getenv("ISOBOOT_TEST_TMP"));
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
