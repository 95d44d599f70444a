#include "linux/mapped_copy.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::sys {
namespace {

constexpr size_t kPage = 4096;

// A file of `pages` pages of known bytes, mapped whole.
struct MappedFile {
  explicit MappedFile(size_t pages) : size(pages * kPage) {
    char name[] = "/tmp/isoboot-mapped-copy-XXXXXX";
    fd = mkstemp(name);
    unlink(name);
    std::vector<uint8_t> bytes(size);
    for (size_t i = 0; i < size; ++i)
      bytes[i] = static_cast<uint8_t>(i * 7 + i / kPage);
    EXPECT_EQ(write(fd, bytes.data(), size), static_cast<ssize_t>(size));
    data = static_cast<const uint8_t*>(mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0));
    EXPECT_NE(data, MAP_FAILED);
  }
  ~MappedFile() {
    munmap(const_cast<uint8_t*>(data), size);
    close(fd);
  }
  uint8_t Expected(size_t i) const { return static_cast<uint8_t>(i * 7 + i / kPage); }
  int fd = -1;
  size_t size;
  const uint8_t* data = nullptr;
};

TEST(CopyFromMapping, CopiesTheBytes) {
  MappedFile f(4);
  std::vector<uint8_t> out(3000);
  ASSERT_TRUE(CopyFromMapping(out, f.data + 5000));
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(out[i], f.Expected(5000 + i)) << i;
}

TEST(CopyFromMapping, APagePastTheEndOfAShrunkFileFailsThatCopyAlone) {
  MappedFile f(4);
  ASSERT_EQ(ftruncate(f.fd, 2 * kPage), 0);
  std::vector<uint8_t> out(1024);
  // Past the new end: SIGBUS, caught; again, to show the handler stays armed.
  EXPECT_FALSE(CopyFromMapping(out, f.data + 3 * kPage));
  EXPECT_FALSE(CopyFromMapping(out, f.data + 2 * kPage + 100));
  // Across the new end.
  EXPECT_FALSE(CopyFromMapping(std::span(out).first(1024), f.data + 2 * kPage - 512));
  // Within the new size: the right bytes.
  ASSERT_TRUE(CopyFromMapping(out, f.data + kPage + 10));
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(out[i], f.Expected(kPage + 10 + i)) << i;
}

TEST(CopyFromMapping, FaultsOnManyThreadsAtOnceAreEachTheirOwn) {
  MappedFile f(8);
  ASSERT_EQ(ftruncate(f.fd, 4 * kPage), 0);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> out(512);
      for (int i = 0; i < 1000; ++i) {
        bool past = (i + static_cast<int>(t)) % 2 == 0;
        size_t at = past ? 5 * kPage + t * 512 : t * 512;
        bool ok = CopyFromMapping(out, f.data + at);
        if (ok == past) ++failures[t];
        if (ok && out[0] != f.Expected(at)) ++failures[t];
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// Died of the fault: the default action (killed by SIGBUS) or, under
// AddressSanitizer, the handler it had installed before ours (a report,
// then a failing exit). Exit 0 would mean the fault was swallowed.
bool DiedOfTheFault(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGBUS || WTERMSIG(status) == SIGABRT;
  return WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3;
}

TEST(CopyFromMapping, ASigbusElsewhereStillKillsTheProcess) {
  // A fault outside a guarded copy must keep the effect it had before.
  EXPECT_EXIT(
      {
        MappedFile f(2);
        std::vector<uint8_t> out(16);
        (void)CopyFromMapping(out, f.data);  // installs the handler
        if (ftruncate(f.fd, 0) != 0) std::_Exit(3);
        volatile uint8_t b = f.data[kPage + 1];
        (void)b;
        std::_Exit(0);
      },
      DiedOfTheFault, "");
}

}  // namespace
}  // namespace isoboot::sys
