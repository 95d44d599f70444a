#include "vfs/vfs.h"

#include <errno.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace isoboot::vfs {
namespace {

TEST(VfsHostFile, MissingFileIsNotFound) {
  auto source = HostFileSource("/nonexistent/isoboot-vfs-test");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(source.error().os_error, ENOENT);
}

TEST(VfsHostFile, DirectoryIsNotARegularFile) {
  auto source = HostFileSource("/");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().kind, ErrorKind::kInvalidInput);
}

TEST(VfsHostFile, ReadsTheFile) {
  std::string path = std::string(std::getenv("ISOBOOT_TEST_TMP")) + "/vfs-test.XXXXXX";
  int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  ::close(fd);
  auto source = HostFileSource(path);
  ::unlink(path.c_str());
  ASSERT_TRUE(source) << source.error().message;
  std::string buf(8, '\0');
  auto n = (*source)->Read(1, std::span(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(buf.substr(0, *n), "ello");
}

}  // namespace
}  // namespace isoboot::vfs
