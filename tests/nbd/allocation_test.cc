#include "nbd/allocation.h"

#include <fcntl.h>
#include <unistd.h>

#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "vfs/vfs.h"

namespace isoboot::nbd {
namespace {

constexpr uint64_t kMiB = 1 << 20;

}  // namespace

// For gtest's messages.
void PrintTo(const AllocationRun& r, std::ostream* os) {
  *os << "{" << r.length << (r.hole ? ", hole}" : ", data}");
}

namespace {

// A 16 MiB sparse file: data at [1, 2) MiB and [8, 8.5) MiB, holes elsewhere.
class SparseFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_ / "sparse.img").string();
    int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 16 * kMiB), 0);
    std::string data = test::RandomBytes(kMiB, 1);
    ASSERT_EQ(::pwrite(fd, data.data(), kMiB, kMiB), static_cast<ssize_t>(kMiB));
    ASSERT_EQ(::pwrite(fd, data.data(), kMiB / 2, 8 * kMiB), static_cast<ssize_t>(kMiB / 2));
    ::close(fd);
    auto source = vfs::HostFileSource(path_);
    ASSERT_TRUE(source);
    source_ = *source;
  }
  test::TempDir dir_{"nbd-allocation"};
  std::string path_;
  vfs::SourcePtr source_;
};

TEST_F(SparseFile, HolesAndData) {
  auto runs = FindAllocation(*source_, 0, 16 * kMiB, 2048);
  EXPECT_EQ(runs, (std::vector<AllocationRun>{{kMiB, true},
                                              {kMiB, false},
                                              {6 * kMiB, true},
                                              {kMiB / 2, false},
                                              {7 * kMiB + kMiB / 2, true}}));
}

TEST_F(SparseFile, ARangeInside) {
  // From inside the first hole to inside the second data run.
  auto runs = FindAllocation(*source_, kMiB / 2, 8 * kMiB, 2048);
  EXPECT_EQ(runs, (std::vector<AllocationRun>{
                      {kMiB / 2, true}, {kMiB, false}, {6 * kMiB, true}, {kMiB / 2, false}}));
  runs = FindAllocation(*source_, kMiB + 4096, 4096, 2048);
  EXPECT_EQ(runs, (std::vector<AllocationRun>{{4096, false}}));
  runs = FindAllocation(*source_, 12 * kMiB, 4 * kMiB, 2048);
  EXPECT_EQ(runs, (std::vector<AllocationRun>{{4 * kMiB, true}}));
}

TEST_F(SparseFile, BoundedRuns) {
  auto runs = FindAllocation(*source_, 0, 16 * kMiB, 2);
  EXPECT_EQ(runs, (std::vector<AllocationRun>{{kMiB, true}, {kMiB, false}}));
  runs = FindAllocation(*source_, 0, 16 * kMiB, 0);  // at least one
  EXPECT_EQ(runs, (std::vector<AllocationRun>{{kMiB, true}}));
}

TEST(NbdAllocation, GeneratedContentIsData) {
  auto text = vfs::TextSource(std::string(10000, 'x'));
  EXPECT_EQ(FindAllocation(*text, 100, 5000, 2048), (std::vector<AllocationRun>{{5000, false}}));
}

}  // namespace
}  // namespace isoboot::nbd
