#include "nbd/allocation.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <span>
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

// The sparse file seen through 256 KiB spans, as a file inside an image is
// seen through its extents.
class Pieces final : public vfs::Source {
 public:
  explicit Pieces(vfs::SourcePtr file) : file_(std::move(file)) {}
  uint64_t size() const override { return file_->size(); }
  int64_t mtime() const override { return 0; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    return file_->Read(offset, out);
  }
  std::optional<vfs::FileSpan> Contiguous(uint64_t offset) const override {
    auto span = file_->Contiguous(offset);
    if (span) span->length = std::min(span->length, kSpan - offset % kSpan);
    return span;
  }
  std::string Etag() const override { return ""; }
  static constexpr uint64_t kSpan = kMiB / 4;

 private:
  vfs::SourcePtr file_;
};

TEST_F(SparseFile, RunsMergeAcrossSpans) {
  Pieces pieces(source_);
  EXPECT_EQ(FindAllocation(pieces, 0, 16 * kMiB, 2048),
            FindAllocation(*source_, 0, 16 * kMiB, 2048));
  // Bounded by spans too: 4 * max_runs of them (here 8 of the 28 in the
  // last hole), then the client asks again.
  EXPECT_EQ(FindAllocation(pieces, 9 * kMiB, 7 * kMiB, 2),
            (std::vector<AllocationRun>{{2 * kMiB, true}}));
  EXPECT_EQ(FindAllocation(pieces, 9 * kMiB, 7 * kMiB, 2048),
            (std::vector<AllocationRun>{{7 * kMiB, true}}));
}

TEST(NbdAllocation, GeneratedContentIsData) {
  auto text = vfs::TextSource(std::string(10000, 'x'));
  EXPECT_EQ(FindAllocation(*text, 100, 5000, 2048), (std::vector<AllocationRun>{{5000, false}}));
}

}  // namespace
}  // namespace isoboot::nbd
