#include "dhcp/lease_writer.h"

#include <poll.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace isoboot::dhcp {
namespace {

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LeaseWriterTest, WritesTheNewestSnapshotAndReportsIt) {
  test::TempDir dir;
  LeaseWriter w((dir / "leases").string(), GetLogger("dhcp"));
  for (uint64_t gen = 1; gen <= 100; ++gen)
    w.Submit(gen, "state " + std::to_string(gen) + "\n");
  w.WaitIdle();
  LeaseWriter::Progress p = w.Collect();
  EXPECT_EQ(p.durable, 100u);
  EXPECT_EQ(p.failed, 0u);
  EXPECT_EQ(Slurp(dir / "leases"), "state 100\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "leases.tmp"));
  // Snapshots queued during a write are coalesced, never written one by one
  // more often than submitted.
  EXPECT_GE(w.writes(), 1u);
  EXPECT_LE(w.writes(), 100u);
}

TEST(LeaseWriterTest, SignalsEachFinishedWrite) {
  test::TempDir dir;
  LeaseWriter w((dir / "leases").string(), GetLogger("dhcp"));
  w.Submit(7, "x\n");
  pollfd p{w.ready_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  EXPECT_EQ(w.Collect().durable, 7u);
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // cleared
}

TEST(LeaseWriterTest, AFailedWriteIsReported) {
  test::TempDir dir;
  LeaseWriter w((dir / "no-such-dir" / "leases").string(), GetLogger("dhcp"));
  w.Submit(3, "x\n");
  w.WaitIdle();
  LeaseWriter::Progress p = w.Collect();
  EXPECT_EQ(p.durable, 0u);
  EXPECT_EQ(p.failed, 3u);
}

}  // namespace
}  // namespace isoboot::dhcp
