#include "nbd/protocol.h"

#include <vector>

#include <gtest/gtest.h>

namespace isoboot::nbd {
namespace {

// Splits a run of option replies.
std::vector<OptionReply> Replies(const std::vector<uint8_t>& bytes) {
  std::vector<OptionReply> out;
  std::span<const uint8_t> rest(bytes);
  while (!rest.empty()) {
    auto r = ParseOptionReply(rest);
    EXPECT_TRUE(r);
    if (!r) break;
    out.push_back(*r);
    rest = rest.subspan(kOptionReplyHeaderSize + r->data.size());
  }
  return out;
}

std::vector<uint8_t> Info(const std::string& name, std::vector<uint16_t> requests) {
  std::vector<uint8_t> out;
  AppendInfoRequest({name, std::move(requests)}, out);
  return out;
}

class NbdHandshake : public ::testing::Test {
 protected:
  std::vector<ExportInfo> exports_ = {{"live.iso", "the live image", 1 << 20}, {"other", "", 4096}};
  Handshake hs_{exports_, Limits{}};
};

TEST_F(NbdHandshake, GoSendsExportBlockSizeAndAck) {
  auto step = hs_.OnOption(kOptGo, Info("other", {}));
  EXPECT_FALSE(step.bad);
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_EQ(step.export_index, 1);
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].type, kRepInfo);
  EXPECT_EQ(replies[0].data[1], kInfoExport);
  EXPECT_EQ(replies[0].data[10], 0x01);  // CAN_MULTI_CONN
  EXPECT_EQ(replies[0].data[11], kExportFlags & 0xff);
  EXPECT_EQ(replies[1].data[1], kInfoBlockSize);
  EXPECT_EQ(replies[2].type, kRepAck);
}

TEST_F(NbdHandshake, InfoWithNameAndDescriptionContinues) {
  auto step = hs_.OnOption(kOptInfo, Info("", {kInfoName, kInfoDescription}));
  EXPECT_EQ(step.next, Handshake::Next::kContinue);
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(std::string(replies[1].data.begin() + 2, replies[1].data.end()), "live.iso");
  EXPECT_EQ(std::string(replies[2].data.begin() + 2, replies[2].data.end()), "the live image");
}

TEST_F(NbdHandshake, UnknownExportAndBadLengths) {
  auto step = hs_.OnOption(kOptGo, Info("nope", {}));
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(step.next, Handshake::Next::kContinue);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnknown);
  std::vector<uint8_t> cut = Info("live.iso", {});
  cut.pop_back();
  step = hs_.OnOption(kOptGo, cut);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
  std::vector<uint8_t> big(4, 0);
  big[2] = 0x20;  // 8192-byte name
  big.resize(4 + 8192 + 2, 'a');
  big[4 + 8192] = 0, big[4 + 8193] = 0;
  step = hs_.OnOption(kOptInfo, big);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrTooBig);
  step = hs_.OnOption(kOptList, std::vector<uint8_t>{1});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
}

TEST_F(NbdHandshake, ListAbortUnknownStartTls) {
  auto step = hs_.OnOption(kOptList, {});
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].type, kRepServer);
  EXPECT_EQ(replies[2].type, kRepAck);
  step = hs_.OnOption(kOptStartTls, {});
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnsup);
  step = hs_.OnOption(99, {});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnsup);
  step = hs_.OnOption(kOptAbort, {});
  EXPECT_EQ(step.next, Handshake::Next::kClose);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepAck);
}

TEST_F(NbdHandshake, StructuredRepliesOnce) {
  EXPECT_FALSE(hs_.structured());
  auto step = hs_.OnOption(kOptStructuredReply, {});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepAck);
  EXPECT_TRUE(hs_.structured());
  step = hs_.OnOption(kOptStructuredReply, {});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
}

TEST_F(NbdHandshake, ExportName) {
  hs_.SetClientFlags(kClientFixedNewstyle | kClientNoZeroes);
  std::string name = "other";
  auto step = hs_.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 5});
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_EQ(step.export_index, 1);
  EXPECT_EQ(step.reply.size(), 10u);
  name = "nope";
  step = hs_.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 4});
  EXPECT_EQ(step.next, Handshake::Next::kClose);
  EXPECT_TRUE(step.reply.empty());
  EXPECT_TRUE(step.bad);
}

TEST_F(NbdHandshake, TooManyOptionsClose) {
  Handshake::Step step;
  for (unsigned i = 0; i <= Limits{}.max_options; ++i)
    step = hs_.OnOption(kOptList, {});
  EXPECT_EQ(step.next, Handshake::Next::kClose);
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(hs_.TooLong({kOptGo, 1 << 20}).next, Handshake::Next::kClose);
}

TEST(NbdDecide, Commands) {
  Limits l;
  const uint64_t size = 1 << 20;
  EXPECT_EQ(Decide({0, kCmdRead, 1, 0, 4096}, size, l).kind, Decision::Kind::kRead);
  EXPECT_EQ(Decide({0, kCmdRead, 1, size - 1, 1}, size, l).kind, Decision::Kind::kRead);
  auto d = Decide({0, kCmdRead, 1, size - 1, 2}, size, l);
  EXPECT_EQ(d.kind, Decision::Kind::kError);
  EXPECT_EQ(d.error, kEinval);
  EXPECT_EQ(Decide({0, kCmdRead, 1, ~0ull, 1}, size, l).error, kEinval);
  EXPECT_EQ(Decide({0, kCmdRead, 1, 0, 0xffffffff}, 1ull << 40, l).error, kEinval);
  EXPECT_EQ(Decide({0, kCmdRead, 1, 0, 0}, size, l).error, kEinval);
  d = Decide({0, kCmdWrite, 1, 0, 512}, size, l);
  EXPECT_EQ(d.error, kEperm);
  EXPECT_EQ(d.skip, 512u);
  EXPECT_EQ(Decide({0, kCmdWrite, 1, 0, 0xffffffff}, size, l).kind, Decision::Kind::kDisconnect);
  EXPECT_EQ(Decide({0, kCmdTrim, 1, 0, 512}, size, l).error, kEperm);
  EXPECT_EQ(Decide({0, kCmdTrim, 1, 0, 512}, size, l).skip, 0u);
  EXPECT_EQ(Decide({0, kCmdWriteZeroes, 1, 0, 512}, size, l).error, kEperm);
  EXPECT_EQ(Decide({0, kCmdFlush, 1, 0, 0}, size, l).kind, Decision::Kind::kOk);
  EXPECT_EQ(Decide({0, kCmdDisc, 1, 0, 0}, size, l).kind, Decision::Kind::kDisconnect);
  EXPECT_FALSE(Decide({0, kCmdDisc, 1, 0, 0}, size, l).bad);
  EXPECT_EQ(Decide({0, 77, 1, 0, 0}, size, l).error, kEinval);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, 0, 512}, size, l).error, kEinval);
}

}  // namespace
}  // namespace isoboot::nbd
