#include "nbd/protocol.h"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::nbd {

// For gtest's messages.
void PrintTo(const BlockDescriptor& d, std::ostream* os) {
  *os << "{" << d.length << ", " << d.flags << "}";
}

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

std::vector<uint8_t> Meta(const std::string& name, std::vector<std::string> queries) {
  std::vector<uint8_t> out;
  AppendMetaContextRequest({name, std::move(queries)}, out);
  return out;
}

// An NBD_REP_META_CONTEXT's id and name.
std::pair<uint32_t, std::string> Context(const OptionReply& r) {
  EXPECT_EQ(r.type, kRepMetaContext);
  EXPECT_GE(r.data.size(), 4u);
  if (r.data.size() < 4) return {};
  uint32_t id = uint32_t{r.data[0]} << 24 | uint32_t{r.data[1]} << 16 | r.data[2] << 8 | r.data[3];
  return {id, std::string(r.data.begin() + 4, r.data.end())};
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

TEST_F(NbdHandshake, TlsOffStartTlsIsUnsupported) {
  auto step = hs_.OnOption(kOptStartTls, {});
  EXPECT_EQ(step.next, Handshake::Next::kContinue);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnsup);
  EXPECT_FALSE(hs_.tls());
  // Nothing else is refused for want of TLS.
  step = hs_.OnOption(kOptGo, Info("", {}));
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
}

TEST_F(NbdHandshake, TlsOnAllowsPlaintextAndStartsTlsOnce) {
  Handshake hs(exports_, Limits{}, TlsMode::kOn);
  auto step = hs.OnOption(kOptList, {});
  EXPECT_EQ(Replies(step.reply).back().type, kRepAck);
  step = hs.OnOption(kOptStructuredReply, {});
  EXPECT_TRUE(hs.structured());
  step = hs.OnOption(kOptStartTls, {});
  EXPECT_FALSE(step.bad);
  EXPECT_EQ(step.next, Handshake::Next::kStartTls);
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].option, kOptStartTls);
  EXPECT_EQ(replies[0].type, kRepAck);
  hs.TlsStarted();
  EXPECT_TRUE(hs.tls());
  // Negotiated in plaintext, so forgotten (proto.md: nothing from before TLS
  // carries over).
  EXPECT_FALSE(hs.structured());
  step = hs.OnOption(kOptStartTls, {});
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(step.next, Handshake::Next::kContinue);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
  step = hs.OnOption(kOptGo, Info("other", {}));
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
}

TEST_F(NbdHandshake, TlsForgetsTheMetaContextSelectedBefore) {
  Handshake hs(exports_, Limits{}, TlsMode::kOn);
  hs.OnOption(kOptStructuredReply, {});
  hs.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation"}));
  EXPECT_EQ(hs.OnOption(kOptStartTls, {}).next, Handshake::Next::kStartTls);
  hs.TlsStarted();
  hs.OnOption(kOptStructuredReply, {});
  auto step = hs.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_FALSE(hs.block_status());
}

TEST_F(NbdHandshake, StartTlsWithDataIsInvalid) {
  for (TlsMode mode : {TlsMode::kOn, TlsMode::kRequire}) {
    Handshake hs(exports_, Limits{}, mode);
    const uint8_t data[] = {1, 2, 3};
    auto step = hs.OnOption(kOptStartTls, data);
    EXPECT_TRUE(step.bad);
    EXPECT_EQ(step.next, Handshake::Next::kContinue);
    EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
    EXPECT_FALSE(hs.tls());
  }
}

TEST_F(NbdHandshake, TlsRequireRefusesEverythingButStartTlsAndAbort) {
  Handshake hs(exports_, Limits{}, TlsMode::kRequire);
  for (uint32_t option : {kOptList, kOptGo, kOptInfo, kOptStructuredReply, kOptListMetaContext,
                          kOptSetMetaContext, 99u}) {
    auto step = hs.OnOption(
        option, option == kOptGo || option == kOptInfo ? Info("", {}) : std::vector<uint8_t>{});
    EXPECT_TRUE(step.bad) << option;
    EXPECT_EQ(step.next, Handshake::Next::kContinue) << option;
    auto replies = Replies(step.reply);
    ASSERT_EQ(replies.size(), 1u) << option;
    EXPECT_EQ(replies[0].option, option);
    EXPECT_EQ(replies[0].type, kRepErrTlsReqd) << option;
  }
  EXPECT_FALSE(hs.structured());
  // EXPORT_NAME has no error reply: it closes, sending nothing.
  std::string name = "other";
  auto step = hs.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 5});
  EXPECT_EQ(step.next, Handshake::Next::kClose);
  EXPECT_TRUE(step.reply.empty());
  EXPECT_TRUE(step.bad);

  Handshake aborted(exports_, Limits{}, TlsMode::kRequire);
  step = aborted.OnOption(kOptAbort, {});
  EXPECT_EQ(step.next, Handshake::Next::kClose);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepAck);
}

TEST_F(NbdHandshake, TlsRequireAfterStartTlsServes) {
  Handshake hs(exports_, Limits{}, TlsMode::kRequire);
  EXPECT_EQ(hs.OnOption(kOptStartTls, {}).next, Handshake::Next::kStartTls);
  hs.TlsStarted();
  auto step = hs.OnOption(kOptList, {});
  EXPECT_FALSE(step.bad);
  EXPECT_EQ(Replies(step.reply).back().type, kRepAck);
  step = hs.OnOption(kOptStructuredReply, {});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepAck);
  step = hs.OnOption(kOptStartTls, {});
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
  std::string name = "live.iso";
  step = hs.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 8});
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_EQ(step.export_index, 0);
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

TEST_F(NbdHandshake, ListMetaContexts) {
  // No queries: every context; "base:": the namespace's; other namespaces
  // and unknown base: leaves: nothing, and no error. Ids are 0 for LIST.
  for (const auto& queries : std::vector<std::vector<std::string>>{
           {}, {"base:"}, {"base:allocation"}, {"qemu:dirty-bitmap:x", "base:"}}) {
    auto step = hs_.OnOption(kOptListMetaContext, Meta("live.iso", queries));
    EXPECT_FALSE(step.bad);
    EXPECT_EQ(step.next, Handshake::Next::kContinue);
    auto replies = Replies(step.reply);
    ASSERT_EQ(replies.size(), 2u) << queries.size();
    EXPECT_EQ(Context(replies[0]), std::make_pair(0u, std::string("base:allocation")));
    EXPECT_EQ(replies[1].type, kRepAck);
  }
  for (const auto& queries :
       std::vector<std::vector<std::string>>{{"qemu:"}, {"base:nope"}, {"x-foo:base:allocation"}}) {
    auto step = hs_.OnOption(kOptListMetaContext, Meta("", queries));
    EXPECT_FALSE(step.bad);
    auto replies = Replies(step.reply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].type, kRepAck);
  }
  // LIST selects nothing.
  hs_.OnOption(kOptStructuredReply, {});
  hs_.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_FALSE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextThenGo) {
  hs_.OnOption(kOptStructuredReply, {});
  auto step = hs_.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation"}));
  EXPECT_FALSE(step.bad);
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(Context(replies[0]), std::make_pair(kBaseAllocationId, std::string(kBaseAllocation)));
  EXPECT_EQ(replies[1].type, kRepAck);
  step = hs_.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_TRUE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextForTheDefaultExport) {
  // "" is exports[0]: the same export as its name.
  hs_.OnOption(kOptStructuredReply, {});
  hs_.OnOption(kOptSetMetaContext, Meta("", {"base:allocation"}));
  std::string name = "live.iso";
  hs_.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
  EXPECT_TRUE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextThenGoElsewhere) {
  // proto.md: the selection is for the export it named; GO to another one
  // leaves none.
  hs_.OnOption(kOptStructuredReply, {});
  hs_.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation"}));
  auto step = hs_.OnOption(kOptGo, Info("other", {}));
  EXPECT_EQ(step.next, Handshake::Next::kTransmit);
  EXPECT_FALSE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextWithoutStructuredReplies) {
  auto step = hs_.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation"}));
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(step.next, Handshake::Next::kContinue);
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, kRepErrInvalid);
  hs_.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_FALSE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextUnknownContextsSelectNothing) {
  hs_.OnOption(kOptStructuredReply, {});
  // "base:" MUST be ignored by SET; no queries select nothing.
  for (const auto& queries : std::vector<std::vector<std::string>>{
           {"base:"}, {"base:nope"}, {"qemu:dirty-bitmap:x"}, {}}) {
    auto step = hs_.OnOption(kOptSetMetaContext, Meta("live.iso", queries));
    EXPECT_FALSE(step.bad);
    auto replies = Replies(step.reply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].type, kRepAck);
  }
  hs_.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_FALSE(hs_.block_status());
}

TEST_F(NbdHandshake, SetMetaContextReplacesTheSelection) {
  hs_.OnOption(kOptStructuredReply, {});
  auto step =
      hs_.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation", kBaseAllocation}));
  auto replies = Replies(step.reply);
  ASSERT_EQ(replies.size(), 2u);  // one context, however often asked for
  // A later SET that selects nothing, or fails, clears it.
  hs_.OnOption(kOptSetMetaContext, Meta("live.iso", {"x-other:thing"}));
  hs_.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_FALSE(hs_.block_status());

  Handshake again(exports_, Limits{});
  again.OnOption(kOptStructuredReply, {});
  again.OnOption(kOptSetMetaContext, Meta("live.iso", {"base:allocation"}));
  step = again.OnOption(kOptSetMetaContext, Meta("nope", {"base:allocation"}));
  EXPECT_TRUE(step.bad);
  EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnknown);
  again.OnOption(kOptGo, Info("live.iso", {}));
  EXPECT_FALSE(again.block_status());
}

TEST_F(NbdHandshake, MalformedMetaContextOptions) {
  hs_.OnOption(kOptStructuredReply, {});
  for (uint32_t option : {kOptListMetaContext, kOptSetMetaContext}) {
    auto step = hs_.OnOption(option, Meta("nope", {"base:allocation"}));
    EXPECT_TRUE(step.bad);
    EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrUnknown);
    std::vector<uint8_t> cut = Meta("live.iso", {"base:allocation"});
    cut.pop_back();
    step = hs_.OnOption(option, cut);
    EXPECT_TRUE(step.bad);
    EXPECT_EQ(step.next, Handshake::Next::kContinue);
    EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
    step = hs_.OnOption(option, Meta("live.iso", {"allocation"}));
    EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrInvalid);
    step = hs_.OnOption(option, Meta("live.iso", std::vector<std::string>(17, "base:")));
    EXPECT_TRUE(step.bad);
    EXPECT_EQ(Replies(step.reply).at(0).type, kRepErrTooBig);
  }
}

TEST(NbdDecide, BlockStatus) {
  Limits l;
  const uint64_t size = 1 << 20;
  // Not selected (no SET, or structured replies not negotiated): EINVAL.
  auto d = Decide({0, kCmdBlockStatus, 1, 0, 512}, size, l, false);
  EXPECT_EQ(d.kind, Decision::Kind::kError);
  EXPECT_EQ(d.error, kEinval);
  EXPECT_TRUE(d.bad);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, 0, 512}, size, l, true).kind,
            Decision::Kind::kBlockStatus);
  EXPECT_EQ(Decide({kCmdFlagReqOne, kCmdBlockStatus, 1, 0, size}, size, l, true).kind,
            Decision::Kind::kBlockStatus);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, size - 1, 1}, size, l, true).kind,
            Decision::Kind::kBlockStatus);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, 0, 0}, size, l, true).error, kEinval);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, size - 1, 2}, size, l, true).error, kEinval);
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, ~0ull, 1}, size, l, true).error, kEinval);
  // Not bound by the maximum block size: no data is sent.
  EXPECT_EQ(Decide({0, kCmdBlockStatus, 1, 0, 0xffffffff}, 1ull << 40, l, true).kind,
            Decision::Kind::kBlockStatus);
}

TEST(NbdBlockStatus, DescriptorsFromRuns) {
  constexpr uint32_t kHole = kStateHole | kStateZero;
  Request q{0, kCmdBlockStatus, 1, 4096, 3 * 65536};
  std::vector<AllocationRun> runs = {{65536, false}, {0, true},     {4096, false},
                                     {65536, true},  {65536, true}, {1 << 20, false}};
  // Adjacent runs of one status merge, empty ones go, the last is clipped
  // to the request.
  EXPECT_EQ(BlockStatusDescriptors(q, runs, 2048),
            (std::vector<BlockDescriptor>{{69632, 0}, {126976, kHole}}));
  q.length = 300000;
  EXPECT_EQ(BlockStatusDescriptors(q, runs, 2048),
            (std::vector<BlockDescriptor>{{69632, 0}, {131072, kHole}, {99296, 0}}));
  // Bounded: the first max_extents descriptors, less than the range.
  EXPECT_EQ(BlockStatusDescriptors(q, runs, 2),
            (std::vector<BlockDescriptor>{{69632, 0}, {131072, kHole}}));
  // NBD_CMD_FLAG_REQ_ONE: exactly one, within the request's length.
  q.flags = kCmdFlagReqOne;
  EXPECT_EQ(BlockStatusDescriptors(q, runs, 2048), (std::vector<BlockDescriptor>{{69632, 0}}));
  q.length = 1000;
  EXPECT_EQ(BlockStatusDescriptors(q, runs, 2048), (std::vector<BlockDescriptor>{{1000, 0}}));
  std::vector<AllocationRun> hole_first = {{1 << 20, true}, {512, false}};
  EXPECT_EQ(BlockStatusDescriptors(q, hole_first, 2048),
            (std::vector<BlockDescriptor>{{1000, kHole}}));
  // Nothing known: one data descriptor for the whole request.
  q.flags = 0;
  EXPECT_EQ(BlockStatusDescriptors(q, {}, 2048), (std::vector<BlockDescriptor>{{1000, 0}}));
  std::vector<AllocationRun> empty = {{0, true}};
  EXPECT_EQ(BlockStatusDescriptors(q, empty, 2048), (std::vector<BlockDescriptor>{{1000, 0}}));
}

}  // namespace
}  // namespace isoboot::nbd
