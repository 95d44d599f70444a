#include "tftp/protocol.h"

#include <errno.h>

#include <algorithm>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace isoboot::tftp {
namespace {

using std::chrono::milliseconds;

// Fake time: tests move `now` by hand and never sleep.
const TimePoint kT0 = TimePoint(std::chrono::hours(1));

std::vector<Packet> Out(const Transfer& t) {
  std::vector<Packet> out;
  for (const auto& bytes : t.output()) {
    auto p = Parse(bytes);
    EXPECT_TRUE(p) << p.error().message;
    if (p) out.push_back(*p);
  }
  return out;
}

std::string Summary(const Transfer& t) {
  std::string s;
  for (const auto& p : Out(t))
    s += (s.empty() ? "" : ", ") + Describe(p);
  return s;
}

Request Rrq(std::string name, std::vector<Option> options = {}, std::string mode = "octet") {
  return Request{false, std::move(name), std::move(mode), std::move(options)};
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TransferConfig Config() {
  return TransferConfig{};
}

// A source whose reads of a range reaching `fail_at` fail (a bad sector of
// an image on a dying disk), or, with `short_by`, end that many bytes before
// size(). Counts its reads.
class FailingSource final : public vfs::Source {
 public:
  FailingSource(uint64_t size, uint64_t fail_at, uint64_t short_by = 0)
      : size_(size), fail_at_(fail_at), short_by_(short_by) {}
  uint64_t size() const override { return size_; }
  int64_t mtime() const override { return 0; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    ++reads;
    if (offset + out.size() > fail_at_) return OsError(EIO, "read");  // a bad sector in range
    uint64_t end = size_ - short_by_;
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), end - std::min(end, offset)));
    std::fill_n(out.begin(), n, uint8_t{'x'});
    return n;
  }
  std::optional<vfs::FileSpan> Contiguous(uint64_t) const override { return std::nullopt; }
  std::string Etag() const override { return "failing"; }
  mutable int reads = 0;

 private:
  uint64_t size_, fail_at_, short_by_;
};

TEST(TftpTransfer, MissingFileGetsErrorAtOnce) {
  Transfer t(Rrq("pxelinux.cfg/01-52-54-00-12-34-56"), nullptr, Config(), kT0);
  EXPECT_EQ(Summary(t), "ERROR 1 file not found");
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(t.outcome(), Outcome::kRejected);
  EXPECT_FALSE(t.deadline());
}

TEST(TftpTransfer, WriteRequestIsAccessViolation) {
  Request wrq{true, "x", "octet", {}};
  Transfer t(wrq, vfs::TextSource("x"), Config(), kT0);
  EXPECT_EQ(Summary(t), "ERROR 2 read-only server: writes are not accepted");
  EXPECT_EQ(t.outcome(), Outcome::kRejected);
}

TEST(TftpTransfer, LockStepWithoutOptions) {
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(1000)), Config(), kT0);
  EXPECT_EQ(Summary(t), "DATA 1 (512 bytes)");
  t.OnPacket(Ack{1}, kT0);
  EXPECT_EQ(Summary(t), "DATA 2 (488 bytes)");
  t.OnPacket(Ack{2}, kT0);
  EXPECT_TRUE(t.output().empty());
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
  EXPECT_EQ(t.bytes_acked(), 1000u);
}

TEST(TftpTransfer, ExactMultipleEndsWithEmptyBlock) {
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(1024)), Config(), kT0);
  t.OnPacket(Ack{1}, kT0);
  EXPECT_EQ(Summary(t), "DATA 2 (512 bytes)");
  t.OnPacket(Ack{2}, kT0);
  EXPECT_EQ(Summary(t), "DATA 3 (0 bytes)");
  t.OnPacket(Ack{3}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
}

TEST(TftpTransfer, EmptyFile) {
  Transfer t(Rrq("f", {{"tsize", "0"}}), vfs::TextSource(""), Config(), kT0);
  // tsize 0 is declined (curl rejects it), so no OACK: DATA straight away.
  EXPECT_EQ(Summary(t), "DATA 1 (0 bytes)");
  t.OnPacket(Ack{1}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
}

TEST(TftpTransfer, OackThenDataAfterAckZero) {
  // iPXE's request; the payload checks offsets are right with a large block.
  std::string file = Pattern(3000);
  Transfer t(Rrq("ipxe.efi", {{"blksize", "1432"}, {"tsize", "0"}}), vfs::TextSource(file),
             Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK blksize=1432 tsize=3000");
  t.OnPacket(Ack{1}, kT0);  // not the ACK of the OACK: ignored
  EXPECT_TRUE(t.output().empty());
  t.OnPacket(Ack{0}, kT0);
  auto out = Out(t);
  ASSERT_EQ(out.size(), 1u);
  auto d = std::get<Data>(out[0]);
  EXPECT_EQ(d.block, 1);
  EXPECT_EQ(std::string(d.data.begin(), d.data.end()), file.substr(0, 1432));
  t.OnPacket(Ack{1}, kT0);
  t.OnPacket(Ack{2}, kT0);
  out = Out(t);
  d = std::get<Data>(out.at(0));
  EXPECT_EQ(std::string(d.data.begin(), d.data.end()), file.substr(2864));
  t.OnPacket(Ack{3}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
}

TEST(TftpTransfer, DuplicateAckIsNotAnswered) {
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(5000)), Config(), kT0);
  t.OnPacket(Ack{1}, kT0);
  EXPECT_EQ(Summary(t), "DATA 2 (512 bytes)");
  // The client's retransmitted ACK 1 crosses our DATA 2: answering it would
  // send every later block twice (Sorcerer's Apprentice).
  t.OnPacket(Ack{1}, kT0);
  EXPECT_TRUE(t.output().empty());
  t.OnPacket(Ack{0}, kT0);
  EXPECT_TRUE(t.output().empty());
  t.OnPacket(Ack{9}, kT0);  // from the future: stray
  EXPECT_TRUE(t.output().empty());
  EXPECT_EQ(t.ignored_acks(), 3u);
  t.OnPacket(Ack{2}, kT0);
  EXPECT_EQ(Summary(t), "DATA 3 (512 bytes)");
}

TEST(TftpTransfer, RetransmitsOnTimeoutWithBackoffThenGivesUp) {
  TransferConfig c;
  c.initial_timeout = milliseconds(1000);
  c.max_timeout = milliseconds(4000);
  c.max_retries = 4;
  c.first_ack_timeout = milliseconds(60'000);  // the retries end it here, not the deadline
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(5000)), c, kT0);
  EXPECT_EQ(*t.deadline(), kT0 + milliseconds(1000));
  t.OnTimer(kT0 + milliseconds(999));  // early: nothing
  EXPECT_TRUE(t.output().empty());
  TimePoint now = kT0 + milliseconds(1000);
  std::vector<milliseconds> gaps;
  for (int i = 0; i < 4; ++i) {
    t.OnTimer(now);
    EXPECT_EQ(Summary(t), "DATA 1 (512 bytes)");
    gaps.push_back(std::chrono::duration_cast<milliseconds>(*t.deadline() - now));
    now = *t.deadline();
  }
  EXPECT_EQ(gaps, (std::vector<milliseconds>{milliseconds(2000), milliseconds(4000),
                                             milliseconds(4000), milliseconds(4000)}));
  t.OnTimer(now);
  EXPECT_TRUE(t.output().empty());
  EXPECT_EQ(t.outcome(), Outcome::kTimedOut);
  EXPECT_EQ(t.retransmits(), 4u);
}

TEST(TftpTransfer, ProgressResetsBackoff) {
  Transfer t(Rrq("f", {{"timeout", "3"}}), vfs::TextSource(Pattern(5000)), Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK timeout=3");
  EXPECT_EQ(*t.deadline(), kT0 + std::chrono::seconds(3));
  t.OnTimer(kT0 + std::chrono::seconds(3));
  EXPECT_EQ(Summary(t), "OACK timeout=3");
  EXPECT_EQ(*t.deadline(), kT0 + std::chrono::seconds(9));
  t.OnPacket(Ack{0}, kT0 + std::chrono::seconds(4));
  EXPECT_EQ(*t.deadline(), kT0 + std::chrono::seconds(7));
}

TEST(TftpTransfer, NeverAcknowledgedEndsAtTheFirstAckDeadline) {
  // The default config: 1 s, doubling; the first ACK must come within 10 s.
  Transfer t(Rrq("f", {{"tsize", "0"}}), vfs::TextSource(Pattern(5000)), Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK tsize=5000");
  EXPECT_FALSE(t.acknowledged());
  std::vector<TimePoint> sends;
  while (t.deadline()) {
    TimePoint at = *t.deadline();
    t.OnTimer(at);
    if (!t.output().empty()) sends.push_back(at);
  }
  EXPECT_EQ(sends,
            (std::vector<TimePoint>{kT0 + std::chrono::seconds(1), kT0 + std::chrono::seconds(3),
                                    kT0 + std::chrono::seconds(7)}));
  EXPECT_EQ(t.outcome(), Outcome::kTimedOut);
  EXPECT_NE(t.detail().find("no ACK"), std::string::npos) << t.detail();
  EXPECT_FALSE(t.acknowledged());
}

TEST(TftpTransfer, FirstAckDeadlineCutsALongClientTimeout) {
  // timeout=10 (the largest accepted): one answer, no retransmission before
  // the 10 s deadline; a spoofed request costs one packet and 10 s.
  Transfer t(Rrq("f", {{"timeout", "10"}}), vfs::TextSource(Pattern(5000)), Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK timeout=10");
  EXPECT_EQ(*t.deadline(), kT0 + std::chrono::seconds(10));
  t.OnTimer(kT0 + std::chrono::seconds(10));
  EXPECT_TRUE(t.output().empty());
  EXPECT_EQ(t.outcome(), Outcome::kTimedOut);
  EXPECT_EQ(t.retransmits(), 0u);
  // timeout=255 is declined: the server's 1 s timer and the 10 s deadline.
  Transfer u(Rrq("f", {{"timeout", "255"}}), vfs::TextSource(Pattern(5000)), Config(), kT0);
  EXPECT_EQ(Summary(u), "DATA 1 (512 bytes)");
  EXPECT_EQ(*u.deadline(), kT0 + std::chrono::seconds(1));
  TimePoint last = kT0;
  while (u.deadline()) {
    last = *u.deadline();
    u.OnTimer(last);
  }
  EXPECT_EQ(last, kT0 + std::chrono::seconds(10));
  EXPECT_EQ(u.outcome(), Outcome::kTimedOut);
}

TEST(TftpTransfer, AnAckLiftsTheFirstAckDeadline) {
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(5000)), Config(), kT0);
  TimePoint now = kT0 + std::chrono::seconds(9);
  t.OnPacket(Ack{1}, now);
  EXPECT_TRUE(t.acknowledged());
  EXPECT_EQ(Summary(t), "DATA 2 (512 bytes)");
  // Past the first-ACK deadline, the normal timer and retries apply.
  EXPECT_EQ(*t.deadline(), now + std::chrono::seconds(1));
  t.OnTimer(*t.deadline());
  EXPECT_EQ(Summary(t), "DATA 2 (512 bytes)");
  EXPECT_EQ(t.outcome(), Outcome::kRunning);
}

TEST(TftpTransfer, SessionLifetimeEndsASlowTransfer) {
  TransferConfig c;
  c.max_lifetime = std::chrono::seconds(60);
  // 200 blocks; the client ACKs one block every 0.9 s, just inside the timer.
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(512 * 200)), c, kT0);
  TimePoint now = kT0;
  uint16_t block = 1;
  while (!t.finished() && now < kT0 + std::chrono::minutes(5)) {
    now += milliseconds(900);
    if (now >= *t.deadline()) t.OnTimer(*t.deadline());
    if (t.finished()) break;
    t.OnPacket(Ack{block++}, now);
  }
  EXPECT_EQ(t.outcome(), Outcome::kTimedOut);
  EXPECT_TRUE(t.acknowledged());
  EXPECT_NE(t.detail().find("60 s session lifetime"), std::string::npos) << t.detail();
  EXPECT_LE(now, kT0 + std::chrono::seconds(61));
  EXPECT_GT(t.bytes_acked(), 0u);
  // The default lifetime lets the same client finish.
  Transfer u(Rrq("f"), vfs::TextSource(Pattern(512 * 200)), Config(), kT0);
  now = kT0;
  for (uint16_t b = 1; !u.finished(); ++b) {
    now += milliseconds(900);
    u.OnPacket(Ack{b}, now);
  }
  EXPECT_EQ(u.outcome(), Outcome::kComplete);
}

TEST(TftpTransfer, DisplaceEndsQuietly) {
  Transfer t(Rrq("f"), vfs::TextSource(Pattern(5000)), Config(), kT0);
  t.Displace("a newer request");
  EXPECT_EQ(t.outcome(), Outcome::kDisplaced);
  EXPECT_TRUE(t.output().empty());
  EXPECT_FALSE(t.deadline());
}

TEST(TftpTransfer, NonPrintableFileNamesAreRefused) {
  for (std::string name : {std::string("pxelinux.cfg/default\nforged line"), std::string("a\0b", 3),
                           std::string("\x1b[2Jx"), std::string("caf\xc3\xa9")}) {
    Transfer t(Rrq(name), vfs::TextSource("abc"), Config(), kT0);
    EXPECT_EQ(Summary(t), "ERROR 1 illegal file name");
    EXPECT_EQ(t.outcome(), Outcome::kRejected);
  }
}

TEST(TftpTransfer, ClientErrorAbortsTsizeProbe) {
  Transfer t(Rrq("f", {{"tsize", "0"}}), vfs::TextSource("abc"), Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK tsize=3");
  t.OnPacket(ErrorPacket{ErrorCode::kOptionRefused, "tsize probe"}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kAborted);
  EXPECT_TRUE(t.output().empty());
}

TEST(TftpTransfer, WindowsAndLossRecovery) {
  Transfer t(Rrq("f", {{"windowsize", "4"}, {"blksize", "8"}}), vfs::TextSource(Pattern(80)),
             Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK windowsize=4 blksize=8");
  t.OnPacket(Ack{0}, kT0);
  EXPECT_EQ(Summary(t), "DATA 1 (8 bytes), DATA 2 (8 bytes), DATA 3 (8 bytes), DATA 4 (8 bytes)");
  t.OnPacket(Ack{4}, kT0);
  EXPECT_EQ(Summary(t), "DATA 5 (8 bytes), DATA 6 (8 bytes), DATA 7 (8 bytes), DATA 8 (8 bytes)");
  // Block 7 lost: the client acks 6 (RFC 7440); the window restarts at 7.
  t.OnPacket(Ack{6}, kT0);
  EXPECT_EQ(Summary(t), "DATA 7 (8 bytes), DATA 8 (8 bytes), DATA 9 (8 bytes), DATA 10 (8 bytes)");
  t.OnPacket(Ack{6}, kT0);  // stale duplicate
  EXPECT_TRUE(t.output().empty());
  // Timeout resends the window from the first unacknowledged block.
  t.OnTimer(*t.deadline());
  EXPECT_EQ(Summary(t), "DATA 7 (8 bytes), DATA 8 (8 bytes), DATA 9 (8 bytes), DATA 10 (8 bytes)");
  t.OnPacket(Ack{10}, kT0);
  EXPECT_EQ(Summary(t), "DATA 11 (0 bytes)");
  t.OnPacket(Ack{11}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
}

TEST(TftpTransfer, BlockNumbersWrapToZero) {
  const uint64_t blocks = 70000;  // > 65535
  std::string file = Pattern(blocks * 8 + 3);
  Transfer t(Rrq("f", {{"blksize", "8"}, {"windowsize", "3"}}), vfs::TextSource(file), Config(),
             kT0);
  t.OnPacket(Ack{0}, kT0);
  std::string received;
  uint64_t expect_abs = 1;
  while (!t.finished()) {
    auto out = Out(t);
    ASSERT_FALSE(out.empty());
    uint16_t last = 0;
    for (const auto& p : out) {
      const auto& d = std::get<Data>(p);
      ASSERT_EQ(d.block, static_cast<uint16_t>(expect_abs)) << expect_abs;
      received.append(d.data.begin(), d.data.end());
      last = d.block;
      ++expect_abs;
    }
    t.OnPacket(Ack{last}, kT0);
  }
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
  EXPECT_EQ(received, file);
  EXPECT_EQ(expect_abs - 1, blocks + 1);
}

TEST(TftpTransfer, NetasciiConvertsLineEnds) {
  Transfer t(Rrq("cfg", {}, "netascii"), vfs::TextSource("a\nb\rc"), Config(), kT0);
  auto out = Out(t);
  ASSERT_EQ(out.size(), 1u);
  auto d = std::get<Data>(out[0]);
  EXPECT_EQ(std::string(d.data.begin(), d.data.end()), std::string("a\r\nb\r\0c", 7));

  TransferConfig small;
  small.max_netascii_size = 2;
  Transfer big(Rrq("cfg", {}, "netascii"), vfs::TextSource("abc"), small, kT0);
  EXPECT_EQ(big.outcome(), Outcome::kRejected);
  Transfer mail(Rrq("cfg", {}, "mail"), vfs::TextSource("abc"), Config(), kT0);
  EXPECT_EQ(Summary(mail), "ERROR 4 mail mode is not supported");
}

TEST(TftpTransfer, SourceReadErrorEndsAsReadError) {
  Transfer t(Rrq("f"), std::make_shared<FailingSource>(1000, 0), Config(), kT0);
  EXPECT_EQ(Summary(t), "ERROR 0 read error");
  EXPECT_EQ(t.outcome(), Outcome::kReadError);
  EXPECT_EQ(t.detail(), "read: Input/output error");
  EXPECT_FALSE(t.deadline());
}

TEST(TftpTransfer, ReadErrorMidTransferSendsNoPartialWindow) {
  std::vector<Option> options{{"windowsize", "4"}};
  Transfer t(Rrq("f", options), std::make_shared<FailingSource>(10 * 512, 3 * 512), Config(), kT0);
  EXPECT_EQ(Summary(t), "OACK windowsize=4");
  t.OnPacket(Ack{0}, kT0);
  EXPECT_EQ(Summary(t), "ERROR 0 read error");  // block 4 failed: none of 1-4 goes out
  EXPECT_EQ(t.outcome(), Outcome::kReadError);
}

// Once the client has answered, blocks come from a 32 KiB read-ahead: a
// 100-block file takes 3 reads, not 101; a retransmitted window is read again
// from the buffer; a bad sector past the window costs only that read-ahead.
TEST(TftpTransfer, AcknowledgedTransfersReadAhead) {
  auto source = std::make_shared<FailingSource>(100 * 512 + 1, 1u << 30);
  Transfer t(Rrq("f"), source, Config(), kT0);
  EXPECT_EQ(source->reads, 1);  // DATA 1: no buffer before any ACK
  for (uint16_t b = 1; b <= 100; ++b) {
    t.OnPacket(Ack{b}, kT0);
    ASSERT_EQ(Summary(t), fmt::format("DATA {} ({} bytes)", b + 1, b < 100 ? 512 : 1)) << b;
    if (b == 50) {
      t.OnTimer(kT0 + std::chrono::seconds(1));  // lost: DATA 51 again, from the buffer
      ASSERT_EQ(Summary(t), "DATA 51 (512 bytes)");
    }
  }
  t.OnPacket(Ack{101}, kT0);
  EXPECT_EQ(t.outcome(), Outcome::kComplete);
  EXPECT_EQ(source->reads, 3);  // DATA 1; 2-65; 66-101

  // The bad sector is in block 70: the read-ahead from block 66 fails, so
  // 66-69 are read one by one and still go out; block 70 is the read error.
  auto bad = std::make_shared<FailingSource>(100 * 512, 69 * 512 + 10);
  Transfer u(Rrq("f"), bad, Config(), kT0);
  for (uint16_t b = 1; b < 69; ++b)
    u.OnPacket(Ack{b}, kT0);
  EXPECT_EQ(Summary(u), "DATA 69 (512 bytes)");
  u.OnPacket(Ack{69}, kT0);
  EXPECT_EQ(Summary(u), "ERROR 0 read error");
  EXPECT_EQ(u.outcome(), Outcome::kReadError);
}

TEST(TftpTransfer, SourceShorterThanItsSizeIsReadError) {
  Transfer t(Rrq("f"), std::make_shared<FailingSource>(1000, 10'000, 100), Config(), kT0);
  t.OnPacket(Ack{1}, kT0);
  EXPECT_EQ(Summary(t), "ERROR 0 read error");
  EXPECT_EQ(t.outcome(), Outcome::kReadError);
  EXPECT_EQ(t.detail(), "source shorter than its size");
}

TEST(TftpTransfer, NetasciiReadErrorIsReadError) {
  Transfer t(Rrq("cfg", {}, "netascii"), std::make_shared<FailingSource>(100, 0), Config(), kT0);
  EXPECT_EQ(Summary(t), "ERROR 0 read error");
  EXPECT_EQ(t.outcome(), Outcome::kReadError);
}

}  // namespace
}  // namespace isoboot::tftp
